//! Counts under tools, per session (exec → greeting → `qmp_capabilities` → `quit` → exit) and
//! per `query-status` ((X(N+K) − X(N)) / K), alone and beside 255 idle monitors:
//! instructions (valgrind --tool=callgrind, total Ir), syscalls (lines of `strace -f`, every
//! thread) and heap allocations (valgrind memcheck's "total heap usage: N allocs").
//! Every target is counted the same way, fdmon, the floor and QEMU alike (fdmon runs under
//! valgrind since it stopped using the signal valgrind reserves, SIGRTMAX).
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

/// One session counted by `tool`: `mons` monitors, `cmds` query-status on the first one.
fn session(cfg: &Cfg, tool: Tool, k: Kind, mons: usize, cmds: usize) -> std::io::Result<f64> {
    let out = cfg.scratch.0.join("tool.out");
    let _ = std::fs::remove_file(&out);
    let (ours, theirs) = pairs(mons)?;
    let a = argv(&cfg.p, k, Via::Pair, mons, cfg.scratch.0.as_path());
    let fds: Vec<_> = theirs.iter().map(|f| f.as_raw_fd()).collect();
    let mut proc = spawn(&tool.prefix(&out), &a, &fds)?;
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
    talk()?;
    if !proc.wait_exit(t) {
        return Err(err("the target did not exit after quit"));
    }
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    tool.parse(&text?).ok_or_else(|| err("no count in the tool's output"))
}

type Pair = (std::io::Result<f64>, std::io::Result<f64>);

/// Per session (0 commands) and per query-status ((X(N0+K) − X(N0)) / K).
fn counts(cfg: &Cfg, tool: Tool, k: Kind, mons: usize) -> Pair {
    let s0 = session(cfg, tool, k, mons, 0);
    let per = (|| {
        let n = session(cfg, tool, k, mons, N0)?;
        let nk = session(cfg, tool, k, mons, N0 + cfg.tool_k)?;
        Ok((nk - n) / cfg.tool_k as f64)
    })();
    (s0, per)
}

fn put(r: &mut Results, what: &str, unit: &'static str, beside: &str, k: Kind, c: &Pair) {
    let pick = |x: &std::io::Result<f64>| match x {
        Ok(v) => Ok(*v),
        Err(e) => Err(err(&e.to_string())),
    };
    r.sample(&format!("{what} per session (exec → greeting → exit), {beside}"), unit, k, pick(&c.0));
    r.sample(&format!("{what} per query-status, {beside}"), unit, k, pick(&c.1));
}

pub fn run(cfg: &Cfg, r: &mut Results) {
    for _ in 0..cfg.rounds_tools {
        for mons in [1, MANY] {
            let beside = if mons == 1 { "alone" } else { "beside 255 idle monitors" };
            for &k in &cfg.kinds {
                let c = counts(cfg, Tool::Callgrind, k, mons);
                put(r, "instructions", "Ir", beside, k, &c);
                let c = counts(cfg, Tool::Memcheck, k, mons);
                put(r, "allocations", "allocs", beside, k, &c);
                let c = counts(cfg, Tool::Strace, k, mons);
                put(r, "syscalls", "calls", beside, k, &c);
            }
        }
    }
}
