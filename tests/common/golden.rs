//! Golden transcripts: QEMU 7.2's normalized outputs, recorded in `tests/golden/`, so every
//! differential case asserts on every run, with or without QEMU installed.
//!
//! A differential case is a closure that runs one implementation ([`Imp`]) and returns its
//! [`Transcript`]: labelled texts, already normalized (timestamps, versions, scratch paths,
//! ports, fd numbers replaced). [`Golden::check`] then
//! - always compares fdmon's transcript with the recorded QEMU one;
//! - when QEMU 7.2 is installed, also runs QEMU live: fdmon against live QEMU (the original
//!   differential test), and the recording against live QEMU (a QEMU that drifted, or a
//!   normalization that lets something run-dependent through);
//! - with `FDMON_RECORD_GOLDEN=1` (`make golden`), records live QEMU's transcript instead, and
//!   refuses to record from a QEMU that is not 7.2.
//!
//! fdmon's deliberate differences from QEMU are data: the `ignore` labels of a case name the
//! items that are recorded but not compared with fdmon's (e.g. `stderr` of a row whose texts
//! differ by design). Changing an exception is a one-line change in the test's table, and the
//! recording does not need to change, because QEMU's full output is always recorded.
//!
//! File format (`tests/golden/<binary>/<test>.txt`), line based and diff-friendly:
//! ```text
//! # comment
//! === case name
//! --- item label
//! |first line of the item's text
//! |second line
//! ```
//! Text lines are the item split at `\n`; `\\`, `\r`, `\t` and other control characters are
//! escaped (`\x1b`), everything else is written as is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::{Imp, QEMU};

/// Labelled texts that must agree, in order.
pub type Transcript = Vec<(String, String)>;

/// The environment variable that switches to recording.
pub const RECORD_VAR: &str = "FDMON_RECORD_GOLDEN";
/// Set (as CI does) to fail instead of running without live QEMU.
pub const REQUIRE_VAR: &str = "FDMON_REQUIRE_QEMU";
/// Set to run as if QEMU were not installed (golden files only).
pub const NO_QEMU_VAR: &str = "FDMON_NO_QEMU";

/// `QEMU emulator version 7.2.22 (...)`, or None when QEMU cannot be run.
pub fn qemu_version() -> Option<String> {
    static V: OnceLock<Option<String>> = OnceLock::new();
    V.get_or_init(|| {
        if env_on(NO_QEMU_VAR) {
            return None;
        }
        let out = Command::new(QEMU).arg("-version").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string())
    })
    .clone()
}

/// Whether the installed QEMU is the reference, 7.2.x.
pub fn qemu_is_reference() -> bool {
    qemu_version().is_some_and(|v| v.starts_with("QEMU emulator version 7.2."))
}

fn env_on(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0")
}

pub fn recording() -> bool {
    env_on(RECORD_VAR)
}

/// Whether differential cases also run live QEMU. Panics when QEMU 7.2 is required (CI,
/// recording) but missing, so a broken install fails instead of silently asserting less.
pub fn live_qemu() -> bool {
    let ok = qemu_is_reference();
    if !ok && (recording() || env_on(REQUIRE_VAR)) {
        panic!(
            "{QEMU} 7.2 is required ({} set) but {}; refusing to run without it",
            if recording() { RECORD_VAR } else { REQUIRE_VAR },
            match qemu_version() {
                Some(v) => format!("the installed one says {v:?}"),
                None => "it is not installed".to_string(),
            }
        );
    }
    ok
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn escape(line: &str) -> String {
    let mut o = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn unescape(line: &str) -> String {
    let mut o = String::with_capacity(line.len());
    let mut it = line.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => o.push('\\'),
            Some('r') => o.push('\r'),
            Some('t') => o.push('\t'),
            Some('x') => {
                let h: String = it.by_ref().take(2).collect();
                o.push(char::from(u8::from_str_radix(&h, 16).unwrap_or(b'?')));
            }
            Some(other) => {
                o.push('\\');
                o.push(other);
            }
            None => o.push('\\'),
        }
    }
    o
}

/// Parses a golden file; panics on a malformed one (it is in the repository).
pub fn parse_file(text: &str) -> BTreeMap<String, Transcript> {
    let mut out: BTreeMap<String, Transcript> = BTreeMap::new();
    let mut case: Option<String> = None;
    let mut lines: Option<Vec<String>> = None;
    let flush = |out: &mut BTreeMap<String, Transcript>, case: &Option<String>, lines: &mut Option<Vec<String>>| {
        if let (Some(c), Some(l)) = (case, lines.take()) {
            if let Some(t) = out.get_mut(c) {
                if let Some(last) = t.last_mut() {
                    last.1 = l.join("\n");
                }
            }
        }
    };
    for (n, line) in text.lines().enumerate() {
        if let Some(name) = line.strip_prefix("=== ") {
            flush(&mut out, &case, &mut lines);
            let name = unescape(name);
            out.entry(name.clone()).or_default();
            case = Some(name);
        } else if let Some(label) = line.strip_prefix("--- ") {
            flush(&mut out, &case, &mut lines);
            let c = case.as_ref().unwrap_or_else(|| panic!("golden line {}: item before any case", n + 1));
            out.get_mut(c).unwrap().push((unescape(label), String::new()));
            lines = Some(Vec::new());
        } else if let Some(t) = line.strip_prefix('|') {
            lines.as_mut().unwrap_or_else(|| panic!("golden line {}: text outside an item", n + 1)).push(unescape(t));
        } else if !(line.is_empty() || line.starts_with('#')) {
            panic!("golden line {}: cannot parse {line:?}", n + 1);
        }
    }
    flush(&mut out, &case, &mut lines);
    out
}

pub fn format_file(cases: &BTreeMap<String, Transcript>, header: &str) -> String {
    let mut o = String::new();
    for h in header.lines() {
        o.push_str(&format!("# {h}\n"));
    }
    for (name, t) in cases {
        o.push_str(&format!("=== {}\n", escape(name)));
        for (label, text) in t {
            o.push_str(&format!("--- {}\n", escape(label)));
            for l in text.split('\n') {
                o.push_str(&format!("|{}\n", escape(l)));
            }
        }
    }
    o
}

/// Shows the first items that differ, both sides.
fn diff(name: &str, left: &str, right: &str, a: &Transcript, b: &Transcript, ignore: &[&str]) -> Option<String> {
    let keep = |t: &Transcript| -> Vec<(String, String)> {
        t.iter().filter(|(l, _)| !ignore.contains(&l.as_str())).cloned().collect()
    };
    let (ka, kb) = (keep(a), keep(b));
    if ka == kb {
        return None;
    }
    let mut r = format!("{name}: {left} and {right} differ\n");
    let n = ka.len().max(kb.len());
    for i in 0..n {
        let (x, y) = (ka.get(i), kb.get(i));
        if x == y {
            continue;
        }
        let show = |e: Option<&(String, String)>| match e {
            Some((l, t)) => format!("[{l}] {t:?}"),
            None => "(nothing)".to_string(),
        };
        r.push_str(&format!("  {left:>7}: {}\n  {right:>7}: {}\n", show(x), show(y)));
    }
    Some(r)
}

/// The golden file of one test, and the results of its cases.
pub struct Golden {
    name: String,
    stored: BTreeMap<String, Transcript>,
    recorded: Mutex<BTreeMap<String, Transcript>>,
    failures: Mutex<Vec<String>>,
    checked: Mutex<Vec<String>>,
    live: bool,
    record: bool,
}

impl Golden {
    /// `tests/golden/NAME.txt`, e.g. `Golden::open("differential/validation")`.
    pub fn open(name: &str) -> Golden {
        let record = recording();
        let live = live_qemu();
        let path = golden_dir().join(format!("{name}.txt"));
        let stored = match std::fs::read_to_string(&path) {
            Ok(t) => parse_file(&t),
            Err(_) if record => BTreeMap::new(),
            Err(e) => panic!("{}: {e}; record it from QEMU 7.2 with `make golden`", path.display()),
        };
        Golden {
            name: name.to_string(),
            stored,
            recorded: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
            checked: Mutex::new(Vec::new()),
            live,
            record,
        }
    }

    /// Whether QEMU runs live in this test run.
    pub fn live(&self) -> bool {
        self.live
    }

    /// One differential case. `run` is called for fdmon and, when QEMU 7.2 is installed, for
    /// QEMU; items labelled in `ignore` are fdmon's deliberate differences (recorded, not
    /// compared with fdmon). Safe to call from several threads.
    pub fn check(&self, case: &str, ignore: &[&str], run: impl Fn(Imp) -> Transcript) {
        self.checked.lock().unwrap().push(case.to_string());
        let ours = run(Imp::Fdmon);
        let mut fails = Vec::new();
        let theirs = if self.live { Some(run(Imp::Qemu)) } else { None };
        if self.record {
            let q = theirs.clone().unwrap();
            self.recorded.lock().unwrap().insert(case.to_string(), q);
        } else {
            match self.stored.get(case) {
                Some(g) => {
                    fails.extend(diff(case, "fdmon", "golden", &ours, g, ignore));
                    if let Some(q) = &theirs {
                        fails.extend(diff(case, "golden", "QEMU", g, q, ignore));
                    }
                }
                None => fails.push(format!("{case}: no golden transcript; record it with `make golden`")),
            }
        }
        if let Some(q) = &theirs {
            fails.extend(diff(case, "fdmon", "QEMU", &ours, q, ignore));
        }
        self.failures.lock().unwrap().extend(fails);
    }

    /// Records a failure of the harness itself (e.g. a case that panicked).
    pub fn fail(&self, msg: String) {
        self.failures.lock().unwrap().push(msg);
    }

    /// Writes the recording (record mode) and fails with every difference found.
    pub fn finish(self) {
        let checked = self.checked.into_inner().unwrap();
        if self.record {
            let path = golden_dir().join(format!("{}.txt", self.name));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let header = format!(
                "Golden transcripts for {}: normalized outputs of {QEMU} -machine none -nodefaults -display none.\n\
                 Recorded from {}. Re-record with `make golden`; do not edit by hand.",
                self.name,
                qemu_version().unwrap_or_default()
            );
            std::fs::write(&path, format_file(&self.recorded.into_inner().unwrap(), &header)).unwrap();
        } else {
            let stale: Vec<&String> = self.stored.keys().filter(|k| !checked.contains(k)).collect();
            if !stale.is_empty() {
                eprintln!(
                    "{}: {} golden transcripts no case uses (re-record with `make golden`)",
                    self.name,
                    stale.len()
                );
            }
        }
        let failures = self.failures.into_inner().unwrap();
        eprintln!(
            "{}: {} cases against golden{}, {} differences",
            self.name,
            checked.len(),
            if self.live { " and live QEMU" } else { " (QEMU 7.2 not installed: golden only)" },
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{}: {} difference(s):\n{}\n(fdmon must match QEMU 7.2. If it differs on purpose, mark the item as an \
             exception in the test's table, e.g. status(...) in tests/cli.rs or own(...) in tests/fdpass.rs, and list it \
             in README's deliberate differences. If the case is new or QEMU's output changed, re-record with \
             `make golden`.)",
            self.name,
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Runs one case as its own `Golden` file entry: `open`, `check`, `finish`.
pub fn check_one(name: &str, case: &str, ignore: &[&str], run: impl Fn(Imp) -> Transcript) {
    let g = Golden::open(name);
    g.check(case, ignore, run);
    g.finish();
}

/// Builds a transcript from `(label, text)` pairs.
pub fn items<L: ToString, T: ToString>(v: impl IntoIterator<Item = (L, T)>) -> Transcript {
    v.into_iter().map(|(l, t)| (l.to_string(), t.to_string())).collect()
}

/// Replaces the number `n` with `token` where it stands alone (not inside a longer number).
pub fn replace_number(text: &str, n: u64, token: &str) -> String {
    let pat = n.to_string();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(&pat) {
            let before = i > 0 && b[i - 1].is_ascii_digit();
            let j = i + pat.len();
            let after = j < b.len() && b[j].is_ascii_digit();
            if !before && !after {
                out.push_str(token);
                i = j;
                continue;
            }
        }
        let c = text[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}
