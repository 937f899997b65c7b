//! Startup: spawn → greeting (fd 3 a socketpair end; fd 3 an inherited listener; `path=` with
//! connect retries every 100 µs) and spawn → first reply (to `qmp_capabilities`).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::conn::{err, Conn, QMP_CAPABILITIES};
use crate::target::{argv, pairs, spawn, Via};
use crate::{Cfg, Results};

pub fn run(cfg: &Cfg, r: &mut Results) {
    for round in 0..cfg.rounds_fast {
        for k in crate::in_turn(&cfg.kinds, round) {
            r.sample("startup: spawn → greeting, fd 3 a socketpair end", "ms", k, pair(cfg, k, false));
            r.sample("startup: spawn → greeting, fd 3 an inherited listener", "ms", k, listener(cfg, k, round));
            r.sample("startup: spawn → greeting, path= (connect retried every 100 µs)", "ms", k, path(cfg, k, round));
            r.sample("first reply: spawn → reply to qmp_capabilities", "ms", k, pair(cfg, k, true));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pair(cfg: &Cfg, k: crate::target::Kind, reply: bool) -> std::io::Result<f64> {
    let (mut ours, theirs) = pairs(1)?;
    let a = argv(&cfg.p, k, Via::Pair, 1, cfg.scratch.0.as_path());
    let t0 = Instant::now();
    let proc = spawn(&[], &a, &[theirs[0].as_raw_fd()])?;
    drop(theirs);
    let mut c = Conn::new(ours.remove(0));
    c.lines(1, cfg.timeout)?;
    if reply {
        c.cmd(QMP_CAPABILITIES, cfg.timeout)?;
    }
    let d = t0.elapsed();
    drop(proc);
    Ok(ms(d))
}

fn listener(cfg: &Cfg, k: crate::target::Kind, round: usize) -> std::io::Result<f64> {
    let p = cfg.scratch.0.join(format!("l{round}-{}.sock", k.name()));
    let l = crate::sys::listener(&p)?;
    let s = UnixStream::connect(&p); // queued by the kernel before the target exists
    let _ = std::fs::remove_file(&p);
    let s = s?;
    let a = argv(&cfg.p, k, Via::Listener, 1, cfg.scratch.0.as_path());
    let t0 = Instant::now();
    let proc = spawn(&[], &a, &[l.as_raw_fd()])?;
    drop(l);
    let mut c = Conn::new(s);
    c.lines(1, cfg.timeout)?;
    let d = t0.elapsed();
    drop(proc);
    Ok(ms(d))
}

fn path(cfg: &Cfg, k: crate::target::Kind, round: usize) -> std::io::Result<f64> {
    let p = cfg.scratch.0.join(format!("p{round}-{}.sock", k.name()));
    let a = argv(&cfg.p, k, Via::Path, 1, &p);
    let t0 = Instant::now();
    let mut proc = spawn(&[], &a, &[])?;
    let end = t0 + cfg.timeout;
    let s = loop {
        match UnixStream::connect(&p) {
            Ok(s) => break Ok(s),
            Err(_) if Instant::now() < end => {
                if let Ok(Some(_)) = proc.child.try_wait() {
                    break Err(err("the target exited before it listened"));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(_) => break Err(err("timed out connecting to path=")),
        }
    };
    let r = s.and_then(|s| {
        let mut c = Conn::new(s);
        c.lines(1, cfg.timeout)?;
        Ok(ms(t0.elapsed()))
    });
    drop(proc);
    let _ = std::fs::remove_file(&p);
    r
}
