//! Idle CPU (utime+stime, /proc/PID/stat) and wake-ups (voluntary + nonvoluntary context
//! switches over all threads, /proc/PID/task/*/status) over a window: with a negotiated client
//! connected through an inherited listener, and after that client hung up. All targets idle in
//! the same window.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::conn::{err, Conn, QMP_CAPABILITIES, QUERY_STATUS};
use crate::procfs::{cpu_ticks, ctxt_switches};
use crate::target::{argv, spawn, Kind, Proc, Via};
use crate::{Cfg, Results};

struct Idle {
    kind: Kind,
    proc: Proc,
    conn: Option<Conn>,
}

fn start(cfg: &Cfg, k: Kind, round: usize) -> std::io::Result<Idle> {
    let p = cfg.scratch.0.join(format!("i{round}-{}.sock", k.name()));
    let l = crate::sys::listener(&p)?;
    let s = UnixStream::connect(&p);
    let _ = std::fs::remove_file(&p);
    let s = s?;
    let a = argv(&cfg.p, k, Via::Listener, 1, cfg.scratch.0.as_path());
    let proc = spawn(&[], &a, &[l.as_raw_fd()])?;
    drop(l);
    let mut c = Conn::new(s);
    c.lines(1, cfg.timeout)?;
    c.cmd(QMP_CAPABILITIES, cfg.timeout)?;
    c.cmd(QUERY_STATUS, cfg.timeout)?;
    Ok(Idle { kind: k, proc, conn: Some(c) })
}

type Snap = Vec<Option<(f64, f64)>>;

fn snap(all: &[Idle]) -> Snap {
    all.iter().map(|i| Some((cpu_ticks(i.proc.pid())?, ctxt_switches(i.proc.pid())?))).collect()
}

fn record(cfg: &Cfg, r: &mut Results, all: &[Idle], a: &Snap, b: &Snap, what: &str) {
    let tck = crate::sys::clk_tck();
    let secs = cfg.idle_window.as_secs_f64();
    for (i, t) in all.iter().enumerate() {
        let d = match (a[i], b[i]) {
            (Some(x), Some(y)) => Ok((((y.0 - x.0) / tck * 1e3) / secs, (y.1 - x.1) / secs)),
            _ => Err(err("the target exited while idle")),
        };
        let (c, w) = match d {
            Ok((c, w)) => (Ok(c), Ok(w)),
            Err(e) => (Err(err(&e.to_string())), Err(e)),
        };
        r.sample(&format!("idle CPU, {what}"), "ms/s", t.kind, c);
        r.sample(&format!("idle wake-ups, {what}"), "/s", t.kind, w);
    }
}

pub fn run(cfg: &Cfg, r: &mut Results) {
    for round in 0..cfg.rounds_slow {
        let mut all = Vec::new();
        for &k in &cfg.kinds {
            match start(cfg, k, round) {
                Ok(i) => all.push(i),
                Err(e) => {
                    r.sample("idle CPU, client connected", "ms/s", k, Err(err(&e.to_string())));
                    r.sample("idle wake-ups, client connected", "/s", k, Err(e));
                }
            }
        }
        std::thread::sleep(cfg.idle_window / 4);
        let a = snap(&all);
        std::thread::sleep(cfg.idle_window);
        let b = snap(&all);
        record(cfg, r, &all, &a, &b, "client connected");
        for i in &mut all {
            i.conn = None; // hang up
        }
        std::thread::sleep(cfg.idle_window / 4 + Duration::from_millis(20));
        let a = snap(&all);
        std::thread::sleep(cfg.idle_window);
        let b = snap(&all);
        record(cfg, r, &all, &a, &b, "after the client hung up");
    }
}
