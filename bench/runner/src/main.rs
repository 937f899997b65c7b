//! fdmon's benchmark runner: every figure measured side by side, in interleaved rounds
//! (A B C, A B C, ...) so machine noise hits every target alike, against the floor program
//! (`bench/floor`) and, when installed, QEMU 7.2 with the same `-chardev`/`-mon` arguments.
//!
//! `fdmon-bench --fdmon BIN --floor BIN [--out BENCHMARKS.md] [--smoke]`
//!
//! `--smoke` runs every figure that needs no tool (no valgrind, strace or QEMU) once with tiny
//! counts, prints the table and fails if a figure is missing; it writes no file. Without it the
//! full suite runs (valgrind and strace required) and the report goes to `--out` (stdout if
//! absent); the hand-written section "What each optimisation bought" of an existing `--out`
//! file is kept.

mod conn;
mod idle;
mod memory;
mod procfs;
mod report;
mod rtt;
mod startup;
mod stats;
mod sys;
mod target;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use target::{Kind, Programs, Scratch};

/// How much of everything one run does.
/// `kinds` in a different order each round: round `r` takes the `r`-th of all orders
/// (permutations), so over `n!` rounds each target runs first, last and after each other
/// target equally often. A fixed order (or a rotation, which keeps who follows whom) charged
/// one target alone with what the previous one leaves behind: the spawn right after QEMU
/// (a 30 MB process torn down) pays about 0.3 ms more, whichever binary it is.
pub fn in_turn(kinds: &[target::Kind], round: usize) -> Vec<target::Kind> {
    let mut left: Vec<target::Kind> = kinds.to_vec();
    let mut out = Vec::with_capacity(left.len());
    let mut r = round % (1..=left.len()).product::<usize>().max(1);
    while !left.is_empty() {
        let rest: usize = (1..left.len()).product();
        out.push(left.remove(r / rest));
        r %= rest;
    }
    out
}

pub struct Cfg {
    pub p: Programs,
    pub smoke: bool,
    /// The targets of most figures, and those plus the thread-per-monitor floor.
    pub kinds: Vec<Kind>,
    pub kinds_threads: Vec<Kind>,
    pub rounds_fast: usize,
    pub rounds_mid: usize,
    pub rounds_slow: usize,
    pub rounds_tools: usize,
    pub rtt_n: usize,
    pub pipe_n: usize,
    pub many_n: usize,
    pub tool_k: usize,
    pub idle_window: Duration,
    /// The longest one wait may take, and one measurement loop may run.
    pub timeout: Duration,
    pub tool_timeout: Duration,
    pub budget: Duration,
    /// The longest one throughput run may take (a slow target is measured over what it did).
    pub run_cap: Duration,
    pub scratch: Scratch,
}

/// One figure: per-target samples (one per round) and the errors met.
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub values: BTreeMap<Kind, Vec<f64>>,
    pub errors: Vec<String>,
}

#[derive(Default)]
pub struct Results {
    pub figs: Vec<Figure>,
}

impl Results {
    pub fn sample(&mut self, name: &str, unit: &'static str, k: Kind, v: std::io::Result<f64>) {
        let i = match self.figs.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.figs.push(Figure { name: name.into(), unit, values: BTreeMap::new(), errors: vec![] });
                self.figs.len() - 1
            }
        };
        let f = &mut self.figs[i];
        match v {
            Ok(x) if x.is_finite() => f.values.entry(k).or_default().push(x),
            Ok(_) => f.errors.push(format!("{}: no value", k.name())),
            Err(e) => {
                eprintln!("fdmon-bench: {name}: {}: {e}", k.name());
                f.errors.push(format!("{}: {e}", k.name()))
            }
        }
    }
}

/// `prog` found on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}

fn usage() -> ! {
    eprintln!("usage: fdmon-bench --fdmon BIN --floor BIN [--out FILE] [--smoke] [--only startup|memory|request path|idle|size|tools]");
    std::process::exit(2)
}

fn sizes(cfg: &Cfg, r: &mut Results) {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1024.0);
    r.sample("binary size (stripped release binary; QEMU: as installed)", "KiB", Kind::Fdmon, len(&cfg.p.fdmon));
    r.sample("binary size (stripped release binary; QEMU: as installed)", "KiB", Kind::Floor, len(&cfg.p.floor));
    if let (Some(q), false) = (&cfg.p.qemu, cfg.smoke) {
        r.sample("binary size (stripped release binary; QEMU: as installed)", "KiB", Kind::Qemu, len(q));
    }
}

fn main() {
    let (mut fdmon, mut floor, mut out, mut smoke, mut only) = (None, None, None, false, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fdmon" => fdmon = args.next().map(PathBuf::from),
            "--floor" => floor = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--smoke" => smoke = true,
            "--only" => only = args.next(),
            _ => usage(),
        }
    }
    let (Some(fdmon), Some(floor)) = (fdmon, floor) else { usage() };
    let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let qemu = which(target::QEMU);
    let mut notes = Vec::new();
    if smoke {
        println!("fdmon-bench --smoke: tiny counts, no timing claims; skipped: QEMU, and the instruction, syscall and allocation counts (they need valgrind and strace; `make bench` runs them)");
    } else {
        let missing: Vec<&str> = ["valgrind", "strace"].into_iter().filter(|t| which(t).is_none()).collect();
        if !missing.is_empty() {
            eprintln!(
                "make bench: {} not installed; the instruction, syscall and allocation counts need them (apt-get install -y valgrind strace)",
                missing.join(" and ")
            );
            std::process::exit(1);
        }
        if qemu.is_none() {
            notes.push(format!("{} is not installed: no QEMU column.", target::QEMU));
        }
    }
    let nofile = sys::raise_nofile();
    if nofile < 2048 {
        eprintln!("fdmon-bench: RLIMIT_NOFILE is {nofile}; 256 monitors need about 1,100 fds");
        std::process::exit(1);
    }
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fdmon-bench: {e}");
            std::process::exit(1);
        }
    };
    let mut kinds = vec![Kind::Fdmon, Kind::Floor];
    if qemu.is_some() && !smoke {
        kinds.push(Kind::Qemu);
    }
    let mut kinds_threads = kinds.clone();
    kinds_threads.insert(2, Kind::FloorThreads);
    let s = smoke;
    let cfg = Cfg {
        p: Programs { fdmon: abs(fdmon), floor: abs(floor), qemu: if s { None } else { qemu } },
        smoke,
        kinds,
        kinds_threads,
        rounds_fast: if s { 1 } else { 24 },
        rounds_mid: if s { 1 } else { 7 },
        rounds_slow: if s { 1 } else { 3 },
        rounds_tools: 1,
        rtt_n: if s { 20 } else { 5000 },
        pipe_n: if s { 50 } else { 100_000 },
        many_n: if s { 512 } else { 50_000 },
        tool_k: if s { 5 } else { 10 },
        idle_window: if s { Duration::from_millis(200) } else { Duration::from_secs(2) },
        timeout: Duration::from_secs(20),
        tool_timeout: Duration::from_secs(300),
        budget: Duration::from_secs(if s { 10 } else { 60 }),
        run_cap: Duration::from_secs(if s { 5 } else { 8 }),
        scratch,
    };
    let t0 = Instant::now();
    let mut r = Results::default();
    let families: &[(&str, fn(&Cfg, &mut Results))] = &[
        ("startup", startup::run),
        ("memory", memory::run),
        ("request path", rtt::run),
        ("idle", idle::run),
        ("size", sizes),
        ("tools", tools::run),
    ];
    for (name, f) in families {
        if (smoke && *name == "tools") || only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let t = Instant::now();
        f(&cfg, &mut r);
        eprintln!("fdmon-bench: {name} done in {:.1} s", t.elapsed().as_secs_f64());
    }
    let elapsed = t0.elapsed();
    let text = report::render(&cfg, &r, &notes, elapsed, out.as_deref());
    let incomplete: Vec<String> = r
        .figs
        .iter()
        .flat_map(|f| {
            let want: &[Kind] = if f.name.starts_with("256 monitors") { &cfg.kinds_threads } else { &cfg.kinds };
            want.iter()
                .filter(|k| !f.values.contains_key(k) && !(f.name.contains("1 monitor") && **k == Kind::FloorThreads))
                .filter(|k| f.name.starts_with("binary") == false || **k != Kind::Qemu || cfg.p.qemu.is_some())
                .map(|k| format!("{} ({})", f.name, k.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    match out {
        Some(p) if !smoke => {
            if let Err(e) = std::fs::write(&p, &text) {
                eprintln!("fdmon-bench: cannot write {}: {e}", p.display());
                std::process::exit(1);
            }
            eprintln!("fdmon-bench: wrote {} in {:.0} s", p.display(), elapsed.as_secs_f64());
        }
        _ => print!("{text}"),
    }
    if !incomplete.is_empty() {
        eprintln!("fdmon-bench: figures without a value:\n  {}", incomplete.join("\n  "));
        if smoke {
            std::process::exit(1);
        }
    }
}
