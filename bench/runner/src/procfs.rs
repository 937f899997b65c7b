//! Figures read from /proc.

/// A `Key:   N kB` field of /proc/PID/status (or smaps_rollup), in kB.
fn field(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

pub fn status(pid: u32, key: &str) -> Option<f64> {
    field(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, key)
}

pub fn pss_kb(pid: u32) -> Option<f64> {
    field(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?, "Pss")
}

/// utime + stime of the whole process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
}

/// Voluntary + nonvoluntary context switches summed over every thread (wake-ups).
pub fn ctxt_switches(pid: u32) -> Option<f64> {
    let mut total = 0.0;
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(t) = std::fs::read_to_string(e.path().join("status")) else { continue };
        total += field(&t, "voluntary_ctxt_switches").unwrap_or(0.0);
        total += field(&t, "nonvoluntary_ctxt_switches").unwrap_or(0.0);
    }
    Some(total)
}
