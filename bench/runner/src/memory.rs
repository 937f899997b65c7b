//! Memory: VmHWM, RssAnon (/proc/PID/status) and Pss (/proc/PID/smaps_rollup), with one
//! negotiated monitor and with 256 (each a `-chardev socket,fd=N` + `-mon` pair on a socketpair).

use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::conn::{err, Conn, QMP_CAPABILITIES, QUERY_STATUS};
use crate::procfs;
use crate::target::{argv, pairs, spawn, Kind, Proc, Via};
use crate::{Cfg, Results};

pub const MANY: usize = 256;

/// Spawns `k` with `n` socketpair monitors, reads every greeting and negotiates every monitor.
pub fn start(cfg: &Cfg, k: Kind, n: usize) -> std::io::Result<(Proc, Vec<Conn>)> {
    let (ours, theirs) = pairs(n)?;
    let a = argv(&cfg.p, k, Via::Pair, n, cfg.scratch.0.as_path());
    let fds: Vec<_> = theirs.iter().map(|f| f.as_raw_fd()).collect();
    let proc = spawn(&[], &a, &fds)?;
    drop(theirs);
    let mut conns: Vec<Conn> = ours.into_iter().map(Conn::new).collect();
    for c in &mut conns {
        c.lines(1, cfg.timeout)?;
    }
    for c in &mut conns {
        c.cmd(QMP_CAPABILITIES, cfg.timeout)?;
    }
    Ok((proc, conns))
}

pub fn run(cfg: &Cfg, r: &mut Results) {
    for round in 0..cfg.rounds_slow {
        for k in crate::in_turn(&cfg.kinds_threads, round) {
            for n in [1, MANY] {
                if n == 1 && k == Kind::FloorThreads {
                    continue; // one thread for one monitor: the floor itself
                }
                let s = sample(cfg, k, n);
                let label = if n == 1 { "idle, 1 monitor" } else { "256 monitors" };
                let (h, a, p) = match s {
                    Ok(v) => (Ok(v.0), Ok(v.1), Ok(v.2)),
                    Err(e) => (Err(err(&e.to_string())), Err(err(&e.to_string())), Err(e)),
                };
                r.sample(&format!("memory: VmHWM, {label}"), "KiB", k, h);
                r.sample(&format!("memory: RssAnon, {label}"), "KiB", k, a);
                r.sample(&format!("memory: Pss, {label}"), "KiB", k, p);
            }
        }
    }
}

fn sample(cfg: &Cfg, k: Kind, n: usize) -> std::io::Result<(f64, f64, f64)> {
    let (proc, mut conns) = start(cfg, k, n)?;
    conns[0].cmd(QUERY_STATUS, cfg.timeout)?;
    std::thread::sleep(Duration::from_millis(20));
    let pid = proc.pid();
    let hwm = procfs::status(pid, "VmHWM").ok_or_else(|| err("no VmHWM"))?;
    let anon = procfs::status(pid, "RssAnon").ok_or_else(|| err("no RssAnon"))?;
    let pss = procfs::pss_kb(pid).ok_or_else(|| err("no Pss"))?;
    drop(proc);
    Ok((hwm, anon, pss))
}
