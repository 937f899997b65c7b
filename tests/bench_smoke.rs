//! `make bench`'s smoke run: the benchmark runner (bench/runner) and the floor (bench/floor),
//! built into target/bench (a target dir of their own, so the nested cargo does not wait for
//! this test's build lock), run every figure that needs no tool once with tiny counts against
//! this build of fdmon. Only that every figure was produced is checked, never a timing; the
//! runner writes no file (its scratch dir under TMPDIR is removed, `make test` checks that).
use std::path::Path;
use std::process::Command;

/// Figures the smoke run must produce, each with a value for fdmon and the floor.
const FIGURES: &[&str] = &[
    "startup: spawn → greeting, fd 3 a socketpair end",
    "startup: spawn → greeting, fd 3 an inherited listener",
    "startup: spawn → greeting, path= (connect retried every 100 µs)",
    "first reply: spawn → reply to qmp_capabilities",
    "memory: VmHWM, idle, 1 monitor",
    "memory: RssAnon, idle, 1 monitor",
    "memory: Pss, idle, 1 monitor",
    "memory: VmHWM, 256 monitors",
    "memory: RssAnon, 256 monitors",
    "memory: Pss, 256 monitors",
    "rtt: query-status ping-pong p50",
    "rtt: query-status ping-pong p99",
    "pipelined: query-status back to back",
    "256 monitors, one command outstanding each: aggregate",
    "256 monitors, one command outstanding each: p99",
    "256 monitors, one command outstanding each: threads",
    "idle CPU, client connected",
    "idle wake-ups, client connected",
    "idle CPU, after the client hung up",
    "idle wake-ups, after the client hung up",
    "binary size",
];

fn build(root: &Path, krate: &str) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let out = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(root.join("target/bench"))
        .arg("--manifest-path")
        .arg(root.join("bench").join(krate).join("Cargo.toml"))
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "building bench/{krate} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bench_smoke_produces_every_figure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    build(root, "floor");
    build(root, "runner");
    let before = std::fs::read_dir(root).unwrap().count();
    let out = Command::new(root.join("target/bench/release/fdmon-bench"))
        .arg("--smoke")
        .arg("--fdmon")
        .arg(env!("CARGO_BIN_EXE_fdmon"))
        .arg("--floor")
        .arg(root.join("target/bench/release/floor"))
        .output()
        .expect("run fdmon-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fdmon-bench --smoke failed:\n{stderr}\n{stdout}");
    for f in FIGURES {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {f}")))
            .unwrap_or_else(|| panic!("no row {f:?}:\n{stdout}"));
        // | figure | unit | fdmon | floor | ...
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, who) in [(3, "fdmon"), (4, "floor")] {
            let v = cells[i].split_whitespace().next().unwrap_or("");
            assert!(v.replace(',', "").parse::<f64>().is_ok(), "{f}: no value for {who} in {row:?}");
        }
    }
    assert!(stdout.contains("skipped: QEMU"), "the smoke run does not say what it skipped:\n{stdout}");
    assert_eq!(std::fs::read_dir(root).unwrap().count(), before, "the smoke run left a file in the checkout");
}
