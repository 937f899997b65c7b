//! Safe defaults and hostile clients (issue 12, issue 8's smaller mismatches): private socket
//! files, no accidental wildcard listeners, exit clean-up that only removes fdmon's own socket,
//! inherited fds adopted before fdmon opens its own, chardev slots that do not grow, fd-passing
//! limits, and run-time `chardev-add` refusals with QEMU's texts.

mod common;

use common::*;

/// A field of /proc/PID/status in kB.
fn status_kb(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `n` chardev-add/chardev-remove cycles, pipelined in batches (replies are checked).
fn add_remove_cycles(c: &mut Client, n: usize, kind: &str) {
    let backend = match kind {
        "ringbuf" => r#"{"type":"ringbuf","data":{"size":16}}"#,
        _ => r#"{"type":"null","data":{}}"#,
    };
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(100);
        let mut req = String::new();
        for k in i..i + batch {
            req.push_str(&format!(r#"{{"execute":"chardev-add","arguments":{{"id":"c{k}","backend":{backend}}}}}"#));
            req.push_str(&format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"c{k}"}}}}"#));
        }
        c.send(&req);
        for _ in 0..2 * batch {
            assert_eq!(c.reply(), r#"{"return": {}}"#);
        }
        i += batch;
    }
}

#[test]
fn chardev_add_remove_cycles_do_not_grow_memory() {
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    // Warm-up: allocator pools, buffers and the reply path reach their steady size.
    add_remove_cycles(&mut c, 500, "null");
    add_remove_cycles(&mut c, 500, "ringbuf");
    let before = status_kb(f.pid(), "RssAnon");
    let fds_before = f.fd_count();
    add_remove_cycles(&mut c, 1500, "null");
    add_remove_cycles(&mut c, 1500, "ringbuf");
    let after = status_kb(f.pid(), "RssAnon");
    // Before the fix every cycle left a ~270-byte slot behind: 3,000 cycles grew ~800 kB.
    assert!(after <= before + 128, "RssAnon grew from {before} kB to {after} kB over 3,000 cycles");
    assert_eq!(f.fd_count(), fds_before);
    // The table still works: a new chardev is listed with the monitor's, nothing else.
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"last","backend":{"type":"null","data":{}}}}"#),
        r#"{"return": {}}"#
    );
    let list = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert_eq!(list.matches("\"label\"").count(), 2, "{list}");
    assert!(list.contains(r#""label": "last""#) && list.contains(r#""label": "mon""#), "{list}");
    assert!(c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c5"}}"#).contains("Chardev 'c5' not found"));
}
