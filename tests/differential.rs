//! Differential tests: the same exchanges against fdmon and against QEMU itself
//! (`qemu-system-x86_64 -machine none`), compared line by line after removing what is meant to
//! differ (timestamps, version numbers). QEMU 7.2's transcripts are recorded in
//! `tests/golden/differential/` (`make golden`), so every case asserts on every run; with QEMU
//! installed, each one also runs against QEMU live (see `tests/common/golden.rs`).

mod common;

use common::golden::{items, Golden, Transcript};
use common::*;

/// The QMP monitor on the socketpair at fd 3 that every session case talks to.
const QMP_MON: [&str; 4] = ["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"];
const NO_EXTRA: &[&str] = &[];

/// Replaces what legitimately differs: event timestamps, the version triple and package.
fn normalize(line: &str) -> String {
    let mut l = if line.starts_with(r#"{"timestamp": "#) { strip_timestamp(line) } else { line.to_string() };
    if let Some(i) = l.find(r#"{"qemu": {"micro": "#) {
        if let Some(j) = l[i..].find(r#""package": ""#) {
            let start = i + j + r#""package": ""#.len();
            if let Some(k) = l[start..].find('"') {
                l = format!("{}VERSION{}", &l[..i], &l[start + k + 1..].trim_start_matches('}'));
            }
        }
    }
    l.replace("qemu-system-x86_64", "PROG").replace("fdmon", "PROG").replace("QEMU", "PROG")
}

/// Sends each request and collects every line up to the sentinel reply that follows it.
fn transcript(c: &mut Client, requests: &[&str]) -> Vec<Vec<String>> {
    let each = |(i, r): (usize, &&str)| differential::exchange(c, i, r, &[]).iter().map(|l| normalize(l)).collect();
    requests.iter().enumerate().map(each).collect()
}

fn qmp_pair_session(imp: Imp, extra: &[&str], requests: &[&str]) -> Vec<Vec<String>> {
    let (_p, mut c) = differential::pair_session(imp, &QMP_MON, extra, Vec::new());
    let g = normalize(&c.line());
    let mut t = vec![vec![g]];
    t.extend(transcript(&mut c, requests));
    t
}

/// A QMP session as a transcript: the greeting, then each request's lines.
fn qmp_transcript(imp: Imp, extra: &[&str], requests: &[&str]) -> Transcript {
    let t = qmp_pair_session(imp, extra, requests);
    let mut labels = vec!["greeting".to_string()];
    labels.extend(requests.iter().enumerate().map(|(i, r)| format!("{} {}", i + 1, r.trim_end())));
    labels.into_iter().zip(t.iter().map(|l| l.join("\n"))).collect()
}

/// fdmon's deliberate differences in the sessions below, as data: `(case, request or HMP
/// line)` pairs whose reply is recorded in the golden file but not compared with fdmon's. Add
/// a line here (and to README's list) when fdmon differs from QEMU on purpose.
const DELIBERATE: &[(&str, &str)] = &[];

/// The transcript labels of `case`'s deliberate differences (`N request`, numbered from 1).
fn deliberate(case: &str, requests: &[&str]) -> Vec<String> {
    requests
        .iter()
        .enumerate()
        .filter(|(_, r)| DELIBERATE.contains(&(case, **r)))
        .map(|(i, r)| format!("{} {}", i + 1, r.trim_end()))
        .collect()
}

/// One QMP session case in the test's golden file.
fn compare_in(g: &Golden, name: &str, extra: &[&str], requests: &[&str]) {
    let ignore = deliberate(name, requests);
    let ignore: Vec<&str> = ignore.iter().map(String::as_str).collect();
    g.check(name, &ignore, |imp| qmp_transcript(imp, extra, requests));
}

/// A test made of one QMP session case.
fn compare(name: &str, extra: &[&str], requests: &[&str]) {
    let g = Golden::open(&format!("differential/{}", name.replace([' ', '/'], "_")));
    compare_in(&g, name, extra, requests);
    g.finish();
}

#[test]
fn differential_negotiation() {
    compare(
        "negotiation",
        &[],
        &[
            r#"{"execute":"query-status"}"#,
            r#"{"execute":"nonexistent","id":1}"#,
            r#"{"exec-oob":"query-status","id":6}"#,
            r#"{"execute":"qmp_capabilities","arguments":{"enable":["foo"]},"id":"a"}"#,
            r#"{"execute":"qmp_capabilities","arguments":{"enable":"oob"},"id":"b"}"#,
            r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#,
            r#"{"execute":"qmp_capabilities"}"#,
            r#"{"exec-oob":"query-name","id":"e"}"#,
            r#"{"exec-oob":"nonexist","id":"g"}"#,
            r#"{"execute":"query-name","exec-oob":"query-name","id":"h"}"#,
        ],
    );
}

const VALIDATION: &[&str] = &[
    r#"{"execute":"qmp_capabilities"}"#,
    "42\n",
    r#""hi""#,
    "[1,2]",
    "null\n",
    "{}",
    r#"{"id":7}"#,
    r#"{"execute":1,"id":1}"#,
    r#"{"execute":"query-name","arguments":[],"id":2}"#,
    r#"{"execute":"query-name","arguments":null,"id":3}"#,
    r#"{"execute":"query-name","foo":1,"id":4}"#,
    r#"{"execute":"query-name","":1}"#,
    r#"{"execute":"nope","id":8}"#,
    r#"{"execute":"getfd","id":9}"#,
    r#"{"execute":"getfd","arguments":{"fdname":1}}"#,
    r#"{"execute":"getfd","arguments":{"fdname":"x","bogus":1}}"#,
    r#"{"execute":"getfd","arguments":{"fdname":"x"}}"#,
    r#"{"execute":"closefd","arguments":{"fdname":"nosuch"}}"#,
    r#"{"execute":"query-name","arguments":{"x":1}}"#,
    r#"{"execute":"query-name","arguments":{}}"#,
    r#"{"execute":"query-uuid","id":{"a":[true,false,null,1.5,-0,1E2]}}"#,
    r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":"1"}}"#,
    r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1.5}}"#,
    r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1,"format":"bogus"}}"#,
    r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1}}"#,
    r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"null"}}}"#,
    r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"socket","data":{"addr":{"type":"fd","str":"x"}}}}}"#,
    r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"socket","data":{"addr":{"type":"sockets","data":{}}}}}}"#,
    r#"{"execute":"chardev-remove","arguments":{"id":"zz"}}"#,
    r#"{"execute":"chardev-remove","arguments":{"id":"mon"}}"#,
    r#"{"execute":"remove-fd","arguments":{"fdset-id":99}}"#,
    r#"{"execute":"remove-fd","arguments":{"fdset-id":2,"fd":999}}"#,
    r#"{"execute":"add-fd","arguments":{"fdset-id":-1}}"#,
    r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#,
    r#"{"execute":"query-fdsets"}"#,
];

#[test]
fn differential_validation() {
    compare("validation", &[], VALIDATION);
}

const PARSER: &[&str] = &[
    r#"{"execute":"qmp_capabilities"}"#,
    r#"{"execute":"query-name"}{"execute":"query-uuid"}"#,
    "{'execute':'query-name','id':'it''s'}",
    "{'execute':'query-name','id':\"a'b\"}",
    r#"{"execute":"query-name","id":"\u00e9\ud83d\ude00\u0000/\\"}"#,
    "{\"execute\":\"query-name\",\"id\":\"\u{e9}\u{7f}\"}",
    "/* c */",
    "NaN\n",
    "foo\n",
    "+1\n",
    "012\n",
    "[1.}\n",
    r#"{"a":1,"a":2}"#,
    "\"a\tb\"",
    r#""\ud83d""#,
    r#""\uffff""#,
    r#""\x""#,
    "%d\n",
    r#"{"a":1,}"#,
    "[1,]",
    "}",
    "]",
    r#"{"execute" "x"}"#,
    "{1:2}",
    r#"{"execute":"query-name", @ "id":6}{"execute":"query-name","id":7}"#,
    "xyz {\"execute\":\"query-name\",\"id\":8}",
    "\"abc\n",
    r#"{"execute":"query-name","id":18446744073709551615}"#,
    r#"{"execute":"query-name","id":18446744073709551616}"#,
    r#"{"execute":"query-name","id":-9223372036854775808}"#,
    r#"{"execute":"query-name","id":-9223372036854775809}"#,
    r#"{"execute":"query-name","id":0.1}"#,
    r#"{"execute":"query-name","id":[1,[2,[3,{}]],{"x":[]}]}"#,
];

#[test]
fn differential_json_dialect() {
    compare("json", &[], PARSER);
}

#[test]
fn differential_json_invalid_bytes() {
    // Raw bytes cannot go through &str requests: send them directly.
    let cases: &[&[u8]] = &[b"\xff", b"\x00", b"\"\xc3b\"", b"\"\xf4\x8f\xbf\xbf\"", b"\"\xc0\x80\"", b"[\"\xe9\"]"];
    golden::check_one("differential/json_invalid_bytes", "invalid bytes", &[], |imp| {
        let (_p, mut c) = differential::pair_session(imp, &QMP_MON, NO_EXTRA, Vec::new());
        c.negotiate();
        let mut t = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            c.send_bytes(case);
            c.send(&format!("\n{{\"execute\":\"query-name\",\"id\":{i}}}"));
            let mut lines = Vec::new();
            loop {
                let l = c.line();
                if l.ends_with(&format!("\"id\": {i}}}")) {
                    break;
                }
                lines.push(l);
            }
            t.push((format!("{i} {:?}", String::from_utf8_lossy(case)), lines.join("\n")));
        }
        t
    });
}

#[test]
fn differential_run_states() {
    let reqs = &[
        r#"{"execute":"qmp_capabilities"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"stop"}"#,
        r#"{"execute":"stop"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"cont"}"#,
        r#"{"execute":"cont"}"#,
        r#"{"execute":"system_reset"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"system_powerdown"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"stop"}"#,
        r#"{"execute":"system_reset"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"cont"}"#,
        r#"{"execute":"query-status"}"#,
    ];
    let g = Golden::open("differential/run_states");
    compare_in(&g, "runstate", &[], reqs);
    compare_in(&g, "runstate -S", &["-S"], reqs);
    compare_in(
        &g,
        "runstate -S -no-shutdown -name",
        &["-S", "-no-shutdown", "-name", "vm1"],
        &[
            r#"{"execute":"qmp_capabilities"}"#,
            r#"{"execute":"query-status"}"#,
            r#"{"execute":"query-name"}"#,
            r#"{"execute":"query-uuid"}"#,
            r#"{"execute":"system_reset"}"#,
            r#"{"execute":"query-status"}"#,
            r#"{"execute":"cont"}"#,
            r#"{"execute":"query-status"}"#,
        ],
    );
    g.finish();
}

#[test]
fn differential_quit() {
    golden::check_one("differential/quit", "quit", &[], |imp| {
        let (mut p, mut c) = differential::pair_session(imp, &QMP_MON, NO_EXTRA, Vec::new());
        c.negotiate();
        c.send(r#"{"execute":"quit","id":1}{"execute":"query-name","id":2}"#);
        let ev = normalize(&c.line());
        let reply = c.line();
        c.expect_eof();
        let code = p.wait().code();
        items([("event", ev), ("reply", reply), ("exit", format!("{code:?}"))])
    });
}

/// `terminating on signal 15 from pid 1234` -> `... from pid PID`.
fn normalize_pid(text: &str) -> String {
    match text.find("from pid ") {
        Some(i) => {
            let s = i + "from pid ".len();
            let n = text[s..].bytes().take_while(u8::is_ascii_digit).count();
            format!("{}PID{}", &text[..s], &text[s + n..])
        }
        None => text.to_string(),
    }
}

#[test]
fn differential_sigterm() {
    golden::check_one("differential/sigterm", "sigterm", &[], |imp| {
        let (mut p, mut c) = differential::pair_session(imp, &QMP_MON, NO_EXTRA, Vec::new());
        c.negotiate();
        p.signal(libc::SIGTERM);
        let ev = normalize(&c.line());
        c.expect_eof();
        let (code, err) = p.wait_output();
        let err = normalize(&err);
        // The sender's name in parentheses is the test binary's.
        let err = normalize_pid(err.split(" (").next().unwrap_or(""));
        items([("event", ev), ("exit", format!("{code:?}")), ("stderr", err)])
    });
}

#[test]
fn differential_pretty() {
    golden::check_one("differential/pretty", "pretty", &[], |imp| {
        let mon = ["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control,pretty=on"];
        let (_p, mut c) = differential::pair_session(imp, &mon, NO_EXTRA, Vec::new());
        c.until("}\r\n}\r\n");
        c.send(r#"{"execute":"qmp_capabilities","id":1}"#);
        let mut t = vec![("qmp_capabilities", c.until("\r\n}\r\n"))];
        c.send(r#"{"execute":"bogus","id":[]}"#);
        t.push(("bogus", c.until("\r\n}\r\n")));
        c.send(r#"{"execute":"query-status","id":{"a":[1,{}]}}"#);
        t.push(("query-status", c.until("\r\n}\r\n")));
        items(t)
    });
}

/// One HMP session: the bytes that come back for each line (echo included), banner removed.
fn hmp_session(imp: Imp, extra: &[&str], lines: &[&str]) -> Transcript {
    let mon = ["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=readline"];
    let (_p, mut c) = differential::pair_session(imp, &mon, extra, Vec::new());
    let banner = c.until("(qemu) ");
    assert!(banner.ends_with("monitor - type 'help' for more information\r\n(qemu) "), "{banner:?}");
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        c.send(&format!("{l}\n"));
        out.push((format!("{} {}", i + 1, l.trim_end()), normalize(&c.until("(qemu) "))));
    }
    out
}

#[test]
fn differential_hmp() {
    let lines = [
        "info status",
        "stop",
        "info status",
        "s",
        "c",
        "info status",
        "system_reset",
        "info status",
        "system_powerdown",
        "info name",
        "info uuid",
        "bogus",
        "info bogus",
        "INFO STATUS",
        "info ver",
        "",
        "  info   status  ",
        "stop now",
        "q now",
        "getfd",
        "getfd myfd",
        "closefd nosuch",
        "chardev-add null,id=n1",
        "chardev-add ringbuf,id=r1,size=16",
        "ringbuf_write r1 hello",
        "ringbuf_write r1 \"quoted str\"",
        "ringbuf_read r1 100",
        "ringbuf_read r1",
        "ringbuf_read r1 abc",
        "ringbuf_read r1 0",
        "ringbuf_read nope 1",
        "ringbuf_write n1 x",
        "chardev-remove n1",
        "chardev-remove n1",
        "chardev-add null",
        "chardev-add socket,path=/nonexistent/x.sock,server=on,wait=off,id=c4,bogus=1",
        "chardev-add socket,fd=3,server=on,wait=off,id=c2",
        "chardev-add socket,fd=lf,server,nowait,id=c3",
        "chardev-add ringbuf,id=r2,size=15",
        "chardev-remove mon",
        // In QEMU's hash-table order, as query-chardev.
        "info chardev",
    ];
    let ignore = deliberate("hmp -name vm1", &lines);
    let ignore: Vec<&str> = ignore.iter().map(String::as_str).collect();
    golden::check_one("differential/hmp", "hmp -name vm1", &ignore, |imp| hmp_session(imp, &["-name", "vm1"], &lines));
}

#[test]
fn differential_hmp_editing_and_quit() {
    golden::check_one("differential/hmp_editing_and_quit", "editing and quit", &[], |imp| {
        let mon = ["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=readline"];
        let (mut p, mut c) = differential::pair_session(imp, &mon, NO_EXTRA, Vec::new());
        c.until("(qemu) ");
        let mut t = Vec::new();
        // backspace, Ctrl-C, history up, \r\n as two Enters, cursor keys
        for bytes in
            [&b"infx\x7fo status\n"[..], b"\x03info name\n", b"\x1b[A\n", b"info uuid\r\n", b"stip\x1b[D\x1b[D\x7fo\n"]
        {
            c.send_bytes(bytes);
            let n = bytes.iter().filter(|b| **b == b'\n' || **b == b'\r').count();
            let mut got = String::new();
            for _ in 0..n {
                got.push_str(&c.until("(qemu) "));
            }
            t.push((format!("{:?}", String::from_utf8_lossy(bytes)), got));
        }
        c.send("quit\n");
        t.push(("quit".to_string(), c.until("\r\n")));
        c.expect_eof();
        t.push(("exit".to_string(), format!("{:?}", p.wait().code())));
        t
    });
}

#[test]
fn differential_human_monitor_command() {
    compare(
        "human-monitor-command",
        &[],
        &[
            r#"{"execute":"qmp_capabilities"}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"stop"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"c"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"bogus"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"closefd nope"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":""}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status\ninfo name"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"getfd x"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"chardev-add ringbuf,id=r1,size=16"}}"#,
            r#"{"execute":"ringbuf-write","arguments":{"device":"r1","data":"a\u0001\tb\nc\\d\u007fe\u00e9"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"ringbuf_read r1 100"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info chardev"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"chardev-remove r1"}}"#,
            r#"{"execute":"human-monitor-command"}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":1}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status","cpu-index":5}}"#,
        ],
    );
}

/// The golden file format keeps every byte of a transcript (control characters, CR, a final
/// newline or none) and fails on a malformed file.
#[test]
fn golden_file_format_round_trips() {
    let mut cases = std::collections::BTreeMap::new();
    cases.insert(
        "a case\twith tab".to_string(),
        items([("x", "line\r\n\x1b[K\\n back\\slash\n"), ("empty", ""), ("é \u{7f}", "no newline")]),
    );
    cases.insert("b".to_string(), items([("only", "\n\n")]));
    let text = golden::format_file(&cases, "header\nsecond");
    assert!(text
        .starts_with("# header\n# second\n=== a case\\twith tab\n--- x\n|line\\r\n|\\x1b[K\\\\n back\\\\slash\n|\n"));
    assert_eq!(golden::parse_file(&text), cases);
    assert!(std::panic::catch_unwind(|| golden::parse_file("=== a\nbogus\n")).is_err());
    assert_eq!(golden::replace_number("port 4000, 40000 and 4000", 4000, "$P"), "port $P, 40000 and $P");
}

/// A deterministic pseudo-random sequence (an LCG): the same ids and operations every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One chardev-order scenario: command-line chardevs `cli`, then `ops` at run time (`+id`
/// adds a null or ringbuf chardev, `-id` removes one), with `query-chardev` and HMP
/// `info chardev` at every `?`.
fn chardev_order_session(imp: Imp, cli: &[String], ops: &[String]) -> Transcript {
    let mut args: Vec<String> = Vec::new();
    for id in cli {
        args.push("-chardev".into());
        args.push(format!("null,id={id}"));
    }
    let (_p, mut c) = differential::pair_session(imp, &QMP_MON, &args, Vec::new());
    c.negotiate();
    let mut t = Vec::new();
    let mut replies = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op == "?" {
            t.push((format!("{i} replies"), std::mem::take(&mut replies).join("\n")));
            t.push((format!("{i} query-chardev"), c.cmd(r#"{"execute":"query-chardev"}"#)));
            let h = r#"{"execute":"human-monitor-command","arguments":{"command-line":"info chardev"}}"#;
            t.push((format!("{i} info chardev"), c.cmd(h)));
            continue;
        }
        let (kind, id) = op.split_at(1);
        let req = if kind == "+" {
            let backend = if id.len() % 2 == 0 {
                r#"{"type":"null","data":{}}"#
            } else {
                r#"{"type":"ringbuf","data":{"size":16}}"#
            };
            format!(r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{backend}}}}}"#)
        } else {
            format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"{id}"}}}}"#)
        };
        replies.push(format!("{op} {}", c.cmd(&req)));
    }
    t
}

/// `query-chardev` (and `info chardev`) list chardevs in QEMU's hash-table order, whatever the
/// ids and whatever was added and removed before: grown and shrunk tables, tombstones reused,
/// ids that collide, a removed command-line chardev, re-added ids.
#[test]
fn differential_chardev_order() {
    let g = Golden::open("differential/chardev_order");
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
    g.check("command line only", &[], |imp| {
        chardev_order_session(imp, &s(&["a", "b", "c", "serial0", "x.y", "A_b-c", "z9"]), &s(&["?"]))
    });
    g.check("run time adds come before the monitor", &[], |imp| {
        chardev_order_session(imp, &[], &s(&["+c1", "?", "+d1", "+c3", "?", "-c1", "?", "+c1", "?"]))
    });
    g.check("remove a command-line chardev, re-add it", &[], |imp| {
        chardev_order_session(imp, &s(&["n1", "n2", "n3"]), &s(&["-n2", "?", "+n4", "+n2", "?", "-n1", "-n3", "?"]))
    });
    // Growth to 128 buckets, then removals down to a few (tombstones, no shrink), then adds.
    g.check("grow, empty, refill", &[], |imp| {
        let mut ops = Vec::new();
        ops.extend((0..70).map(|i| format!("+c{i}")));
        ops.push("?".into());
        ops.extend((0..66).map(|i| format!("-c{i}")));
        ops.push("?".into());
        ops.extend((0..12).map(|i| format!("+r{i}")));
        ops.push("?".into());
        chardev_order_session(imp, &[], &ops)
    });
    // Pseudo-random churn over a small id space: inserts land on tombstones and on fresh buckets.
    for seed in [1u64, 7, 42, 1234] {
        g.check(&format!("churn seed {seed}"), &[], |imp| {
            let mut r = Lcg(seed);
            let mut ops = Vec::new();
            let mut live: Vec<String> = Vec::new();
            for step in 0..150 {
                if !live.is_empty() && r.next(100) < 45 {
                    let k = live.remove(r.next(live.len() as u64) as usize);
                    ops.push(format!("-{k}"));
                } else {
                    let k = format!("{}{}", ["c", "id", "dev.", "X_"][r.next(4) as usize], r.next(40));
                    if !live.contains(&k) {
                        live.push(k.clone());
                    }
                    ops.push(format!("+{k}"));
                }
                if step % 50 == 49 {
                    ops.push("?".into());
                }
            }
            chardev_order_session(imp, &[], &ops)
        });
    }
    g.finish();
}
