//! Request path: `query-status` ping-pong rtt (p50/p99), pipelined commands/s, and 256 monitors
//! each with one command outstanding (aggregate commands/s, p99, the target's thread count).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::conn::{err, QUERY_STATUS};
use crate::memory::{start, MANY};
use crate::procfs;
use crate::stats::quantile;
use crate::target::Kind;
use crate::{Cfg, Results};

pub fn run(cfg: &Cfg, r: &mut Results) {
    for round in 0..cfg.rounds_mid {
        for k in crate::in_turn(&cfg.kinds, round) {
            match pingpong(cfg, k) {
                Ok((p50, p99)) => {
                    r.sample("rtt: query-status ping-pong p50", "µs", k, Ok(p50));
                    r.sample("rtt: query-status ping-pong p99", "µs", k, Ok(p99));
                }
                Err(e) => {
                    r.sample("rtt: query-status ping-pong p50", "µs", k, Err(err(&e.to_string())));
                    r.sample("rtt: query-status ping-pong p99", "µs", k, Err(e));
                }
            }
            r.sample("pipelined: query-status back to back", "cmd/s", k, pipelined(cfg, k));
        }
        for k in crate::in_turn(&cfg.kinds_threads, round) {
            match many(cfg, k) {
                Ok((rate, p99, threads)) => {
                    r.sample("256 monitors, one command outstanding each: aggregate", "cmd/s", k, Ok(rate));
                    r.sample("256 monitors, one command outstanding each: p99", "µs", k, Ok(p99));
                    r.sample("256 monitors, one command outstanding each: threads", "", k, Ok(threads));
                }
                Err(e) => {
                    let m = e.to_string();
                    r.sample("256 monitors, one command outstanding each: aggregate", "cmd/s", k, Err(err(&m)));
                    r.sample("256 monitors, one command outstanding each: p99", "µs", k, Err(err(&m)));
                    r.sample("256 monitors, one command outstanding each: threads", "", k, Err(e));
                }
            }
        }
    }
}

fn pingpong(cfg: &Cfg, k: Kind) -> std::io::Result<(f64, f64)> {
    let (proc, mut conns) = start(cfg, k, 1)?;
    let c = &mut conns[0];
    for _ in 0..cfg.rtt_n / 10 + 1 {
        c.cmd(QUERY_STATUS, cfg.timeout)?; // warm-up
    }
    let end = Instant::now() + cfg.budget;
    let mut v = Vec::with_capacity(cfg.rtt_n);
    while v.len() < cfg.rtt_n && Instant::now() < end {
        let t0 = Instant::now();
        c.cmd(QUERY_STATUS, cfg.timeout)?;
        v.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    drop(proc);
    Ok((quantile(&v, 0.5), quantile(&v, 0.99)))
}

fn nonblocking(fd: i32) {
    // SAFETY: fcntl on our own socket end (never shared with the target).
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn count_nl(b: &[u8]) -> usize {
    b.iter().filter(|&&x| x == b'\n').count()
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted
}

fn pipelined(cfg: &Cfg, k: Kind) -> std::io::Result<f64> {
    let (proc, mut conns) = start(cfg, k, 1)?;
    let s = &mut conns[0].s;
    nonblocking(s.as_raw_fd());
    let n = cfg.pipe_n;
    let req: Vec<u8> = QUERY_STATUS.repeat(n);
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = vec![0u8; 1 << 16];
    let t0 = Instant::now();
    let end = t0 + cfg.run_cap;
    // A slow target stops at the time cap: the rate is over the replies it sent by then.
    while got < n && Instant::now() < end {
        let ev = if sent < req.len() { libc::POLLIN | libc::POLLOUT } else { libc::POLLIN };
        let mut p = [libc::pollfd { fd: s.as_raw_fd(), events: ev, revents: 0 }];
        crate::sys::poll(&mut p, Duration::from_millis(100))?;
        if sent < req.len() {
            match s.write(&req[sent..]) {
                Ok(w) => sent += w,
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(e),
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return Err(err("the target hung up")),
            Ok(m) => got += count_nl(&buf[..m]),
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let rate = got as f64 / t0.elapsed().as_secs_f64();
    drop(proc);
    if got == 0 {
        return Err(err("no reply within the time cap"));
    }
    Ok(rate)
}

fn many(cfg: &Cfg, k: Kind) -> std::io::Result<(f64, f64, f64)> {
    let (proc, mut conns) = start(cfg, k, MANY)?;
    for c in &conns {
        nonblocking(c.s.as_raw_fd());
    }
    let total = cfg.many_n.max(MANY);
    let mut pfds: Vec<libc::pollfd> =
        conns.iter().map(|c| libc::pollfd { fd: c.s.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let mut since = vec![Instant::now(); MANY];
    let mut lat = Vec::with_capacity(total);
    let mut buf = [0u8; 4096];
    let mut threads = f64::NAN;
    let t0 = Instant::now();
    let end = t0 + cfg.run_cap;
    let mut sent = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        since[i] = Instant::now();
        c.s.write_all(QUERY_STATUS)?;
        sent += 1;
    }
    // A slow target stops at the time cap: the rate is over the replies it sent by then.
    while lat.len() < total && Instant::now() < end {
        if crate::sys::poll(&mut pfds, Duration::from_millis(100))? == 0 {
            continue;
        }
        for i in 0..MANY {
            if pfds[i].revents == 0 {
                continue;
            }
            pfds[i].revents = 0;
            let m = match conns[i].s.read(&mut buf) {
                Ok(0) => return Err(err("the target hung up")),
                Ok(m) => m,
                Err(e) if would_block(&e) => continue,
                Err(e) => return Err(e),
            };
            for _ in 0..count_nl(&buf[..m]) {
                lat.push(since[i].elapsed().as_secs_f64() * 1e6);
                if sent < total {
                    since[i] = Instant::now();
                    conns[i].s.write_all(QUERY_STATUS)?;
                    sent += 1;
                }
            }
        }
        if threads.is_nan() && lat.len() >= total / 2 {
            threads = procfs::status(proc.pid(), "Threads").unwrap_or(f64::NAN);
        }
    }
    let rate = lat.len() as f64 / t0.elapsed().as_secs_f64();
    if threads.is_nan() {
        threads = procfs::status(proc.pid(), "Threads").unwrap_or(f64::NAN);
    }
    drop(proc);
    if lat.is_empty() {
        return Err(err("no reply within the time cap"));
    }
    Ok((rate, quantile(&lat, 0.99), threads))
}
