//! Counts under tools, per session (exec → greeting → `qmp_capabilities` → `quit` → exit) and
//! per `query-status` ((X(N+K) − X(N)) / K), alone and beside 255 idle monitors:
//! instructions (valgrind --tool=callgrind, total Ir), syscalls (lines of `strace -f`, every
//! thread) and heap allocations (valgrind memcheck's "total heap usage: N allocs").
//! fdmon and the floor are counted by ptrace single-step (`step.rs`), QEMU by valgrind; the floor also by valgrind, as a calibration of the two methods.
//! The floor ignores `quit` (it answers it like any line) and exits when its clients hang up.

use std::os::fd::AsRawFd;
use std::path::Path;

use crate::conn::{err, Conn, QMP_CAPABILITIES, QUERY_STATUS, QUIT};
use crate::memory::MANY;
use crate::target::{argv, pairs, spawn, Kind, Via};
use crate::{Cfg, Results};

/// Commands before the measured ones, so lazy first-use work is not counted per command.
pub const N0: usize = 2;

#[derive(Clone, Copy)]
enum Tool {
    Callgrind,
    Strace,
    Memcheck,
}

impl Tool {
    pub fn prefix(self, out: &Path) -> Vec<String> {
        let o = out.display();
        match self {
            Tool::Callgrind => {
                vec!["valgrind".into(), "--tool=callgrind".into(), format!("--callgrind-out-file={o}")]
            }
            Tool::Strace => vec!["strace".into(), "-f".into(), "-o".into(), o.to_string()],
            Tool::Memcheck => {
                vec!["valgrind".into(), "--tool=memcheck".into(), "--leak-check=no".into(), format!("--log-file={o}")]
            }
        }
    }

    fn parse(self, text: &str) -> Option<f64> {
        match self {
            Tool::Callgrind => text.lines().find_map(|l| {
                l.strip_prefix("summary:")
                    .or_else(|| l.strip_prefix("totals:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            }),
            Tool::Strace => Some(
                text.lines()
                    .filter(|l| {
                        let body = l.split_once(' ').map_or(*l, |(_, b)| b.trim_start());
                        !body.is_empty()
                            && !body.starts_with("+++")
                            && !body.starts_with("---")
                            && !body.contains("resumed>")
                    })
                    .count() as f64,
            ),
            Tool::Memcheck => text.lines().find_map(|l| {
                let at = l.find("total heap usage:")? + "total heap usage:".len();
                l[at..].split_whitespace().next()?.replace(',', "").parse().ok()
            }),
        }
    }
}

/// Describes the tool command lines for the report.
pub fn commands() -> Vec<String> {
    let p = Path::new("OUT");
    [Tool::Callgrind, Tool::Strace, Tool::Memcheck].iter().map(|t| t.prefix(p).join(" ") + " TARGET...").collect()
}

#[derive(Clone, Copy)]
enum Method {
    Tool(Tool),
    Step,
}

/// One session counted by `m`: `mons` monitors, `cmds` query-status on the first one.
/// Step gives [instructions, allocations]; a tool its one count.
fn session(cfg: &Cfg, m: Method, k: Kind, mons: usize, cmds: usize) -> std::io::Result<Vec<f64>> {
    let out = cfg.scratch.0.join("tool.out");
    let _ = std::fs::remove_file(&out);
    let (ours, theirs) = pairs(mons)?;
    let a = argv(&cfg.p, k, Via::Pair, mons, cfg.scratch.0.as_path());
    let fds: Vec<_> = theirs.iter().map(|f| f.as_raw_fd()).collect();
    let (mut proc, stepped) = match m {
        Method::Tool(tool) => (Some(spawn(&tool.prefix(&out), &a, &fds)?), None),
        Method::Step => (None, Some(crate::step::spawn(&a, &fds)?)),
    };
    drop(theirs);
    let t = cfg.tool_timeout;
    let talk = || -> std::io::Result<()> {
        let mut conns: Vec<Conn> = ours.into_iter().map(Conn::new).collect();
        for c in &mut conns {
            c.lines(1, t)?;
        }
        let c = &mut conns[0];
        c.cmd(QMP_CAPABILITIES, t)?;
        for _ in 0..cmds {
            c.cmd(QUERY_STATUS, t)?;
        }
        c.cmd(QUIT, t)
    };
    let talked = talk();
    if let Some((pid, rx)) = stepped {
        let r = rx.recv_timeout(t);
        if r.is_err() {
            // SAFETY: kill on the pid of our own traced child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = rx.recv_timeout(t);
        }
        talked?;
        let c = r.map_err(|_| err("the traced target did not exit after quit"))??;
        return Ok(vec![c.instructions, c.allocs]);
    }
    talked?;
    let (Method::Tool(tool), Some(p)) = (m, proc.as_mut()) else { return Err(err("no process")) };
    if !p.wait_exit(t) {
        return Err(err("the target did not exit after quit"));
    }
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    Ok(vec![tool.parse(&text?).ok_or_else(|| err("no count in the tool's output"))?])
}

type Pair = (std::io::Result<Vec<f64>>, std::io::Result<Vec<f64>>);

/// Per session (0 commands) and per query-status ((X(N0+K) − X(N0)) / K).
fn counts(cfg: &Cfg, m: Method, k: Kind, mons: usize) -> Pair {
    if matches!(m, Method::Step) && mons > 1 {
        return stepped_beside(cfg, k, mons);
    }
    let s0 = session(cfg, m, k, mons, 0);
    let per = (|| {
        let n = session(cfg, m, k, mons, N0)?;
        let nk = session(cfg, m, k, mons, N0 + cfg.tool_k)?;
        Ok(n.iter().zip(&nk).map(|(a, b)| (b - a) / cfg.tool_k as f64).collect())
    })();
    (s0, per)
}

/// Beside 255 idle monitors, single-stepping a whole fdmon session takes too long (its start-up
/// with 256 monitors ran for over 6 minutes): per query-status, the target starts untraced and
/// is attached to for K commands after N0 warm-up ones (steps / K). Only the floor's session
/// is stepped.
fn stepped_beside(cfg: &Cfg, k: Kind, mons: usize) -> Pair {
    let s0 = if k == Kind::Floor {
        session(cfg, Method::Step, k, mons, 0)
    } else {
        Err(err("not measured: single-stepping fdmon's start-up with 256 monitors takes over 6 minutes"))
    };
    (s0, per_query_attached(cfg, k, mons))
}

fn per_query_attached(cfg: &Cfg, k: Kind, mons: usize) -> std::io::Result<Vec<f64>> {
    let (proc, mut conns) = crate::memory::start(cfg, k, mons)?;
    let t = cfg.tool_timeout;
    for _ in 0..N0 {
        conns[0].cmd(QUERY_STATUS, t)?;
    }
    let a = crate::step::attach(proc.pid() as i32)?;
    let mut talked = Ok(());
    for _ in 0..cfg.tool_k {
        talked = conns[0].cmd(QUERY_STATUS, t);
        if talked.is_err() {
            break;
        }
    }
    let c = a.finish(t);
    drop(proc);
    talked?;
    let c = c?;
    Ok(vec![c.instructions / cfg.tool_k as f64, c.allocs / cfg.tool_k as f64])
}

fn put(r: &mut Results, what: &str, unit: &'static str, beside: &str, k: Kind, c: &Pair, i: usize) {
    let pick = |x: &std::io::Result<Vec<f64>>| match x {
        Ok(v) => Ok(v[i]),
        Err(e) => Err(err(&e.to_string())),
    };
    r.sample(&format!("{what} per session (exec → greeting → exit), {beside}"), unit, k, pick(&c.0));
    r.sample(&format!("{what} per query-status, {beside}"), unit, k, pick(&c.1));
}

pub fn run(cfg: &Cfg, r: &mut Results) {
    let step_kinds = [Kind::Fdmon, Kind::Floor];
    for _ in 0..cfg.rounds_tools {
        for mons in [1, MANY] {
            let beside = if mons == 1 { "alone" } else { "beside 255 idle monitors" };
            for &k in &cfg.kinds {
                // Instructions and allocations: single-step for fdmon and the floor, valgrind for QEMU.
                if step_kinds.contains(&k) {
                    let c = counts(cfg, Method::Step, k, mons);
                    put(r, "instructions", "Ir", beside, k, &c, 0);
                    put(r, "allocations", "allocs", beside, k, &c, 1);
                } else {
                    let c = counts(cfg, Method::Tool(Tool::Callgrind), k, mons);
                    put(r, "instructions", "Ir", beside, k, &c, 0);
                    let c = counts(cfg, Method::Tool(Tool::Memcheck), k, mons);
                    put(r, "allocations", "allocs", beside, k, &c, 0);
                }
                let c = counts(cfg, Method::Tool(Tool::Strace), k, mons);
                put(r, "syscalls", "calls", beside, k, &c, 0);
            }
        }
        // Calibration: the floor by valgrind too, beside its single-step counts above.
        let c = counts(cfg, Method::Tool(Tool::Callgrind), Kind::Floor, 1);
        put(r, "calibration, callgrind: instructions", "Ir", "alone", Kind::Floor, &c, 0);
        let c = counts(cfg, Method::Tool(Tool::Memcheck), Kind::Floor, 1);
        put(r, "calibration, memcheck: allocations", "allocs", "alone", Kind::Floor, &c, 0);
    }
}
