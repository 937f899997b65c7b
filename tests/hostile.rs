//! Hostile peers: inputs built to exhaust the stack or memory. fdmon answers with an error
//! and keeps serving the same connection.

mod common;

use common::*;

const STATUS: &str = r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#;

fn alive(c: &mut Client) {
    assert_eq!(c.cmd(r#"{"execute":"query-status"}"#), STATUS);
}

fn hmp(c: &mut Client, line: &str) -> String {
    let req = format!(
        r#"{{"execute":"human-monitor-command","arguments":{{"command-line":{}}}}}"#,
        fdmon::json::to_string(&fdmon::json::Value::from(line))
    );
    c.cmd(&req)
}

/// 200,000 nested parentheses in an HMP expression (QEMU 7.2 overflows its stack and
/// segfaults): fdmon refuses the expression and keeps serving.
#[test]
fn deep_hmp_expression_is_an_error_not_a_crash() {
    let (mut f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x"]);
    c.negotiate();
    let n = 200_000;
    let line = format!("ringbuf_read x {}1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "expression too deeply nested\r\nTry \"help ringbuf_read\" for more information\r\n"}"#
    );
    // Unary operators nest the same way.
    let line = format!("ringbuf_read x {}1", "-~".repeat(n));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "expression too deeply nested\r\nTry \"help ringbuf_read\" for more information\r\n"}"#
    );
    alive(&mut c);
    // A modest depth still evaluates.
    let line = format!("ringbuf_read x {}1{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(hmp(&mut c, &line), r#"{"return": "\r\n"}"#);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}

/// `ringbuf-write` base64 accepts and refuses what QEMU 7.2 does (the full table is the unit
/// test in `src/base64.rs`): `\n` is skipped, spaces are refused, `=` is a zero digit anywhere,
/// an incomplete last group is dropped.
#[test]
fn ringbuf_base64_like_qemu() {
    let (f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x"]);
    c.negotiate();
    let invalid = r#"{"error": {"class": "GenericError", "desc": "Base64 data contains invalid characters"}}"#;
    for (data, read) in [("aG\\nk=", Some("aGk=")), ("a=Gk", Some("aAGk")), ("aGVsbG8", Some("aGVs")), ("aGk= ", None)]
    {
        let w = c.cmd(&format!(
            r#"{{"execute":"ringbuf-write","arguments":{{"device":"x","data":"{data}","format":"base64"}}}}"#
        ));
        let r = c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":100,"format":"base64"}}"#);
        match read {
            Some(want) => {
                assert_eq!(w, r#"{"return": {}}"#, "{data}");
                assert_eq!(r, format!(r#"{{"return": "{want}"}}"#), "{data}");
            }
            None => {
                assert_eq!(w, invalid, "{data}");
                assert_eq!(r, r#"{"return": ""}"#, "{data}");
            }
        }
    }
    drop(f);
}

/// 200,000 unclosed `[` (and `{"a":` pairs): each 1025th level is "JSON nesting depth limit
/// exceeded" (QEMU's limit and text); a lexical error resynchronises and the connection
/// answers again.
#[test]
fn deep_json_is_an_error_not_a_crash() {
    let (mut f, mut c) = qmp_pair(&[]);
    c.negotiate();
    for open in ["[", r#"{"a":"#] {
        c.send(&open.repeat(200_000));
        c.send_bytes(b"\xff\n");
        c.send(r#"{"execute":"query-status"}"#);
        let mut depth_errors = 0;
        loop {
            let l = c.line();
            if l == STATUS {
                break;
            }
            depth_errors += usize::from(l.contains("JSON nesting depth limit exceeded"));
            assert!(l.starts_with(r#"{"error": {"class": "GenericError", "desc": "#), "{l}");
        }
        assert!(depth_errors > 0, "{open}");
    }
    // Deep arguments go through schema validation (which follows the schema, not the value).
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    assert_eq!(
        c.cmd(&format!(r#"{{"execute":"ringbuf-write","arguments":{{"device":"x","data":{deep}}}}}"#)),
        r#"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'data', expected: string"}}"#
    );
    assert_eq!(
        c.cmd(&format!(r#"{{"execute":"query-status","arguments":{{"x":{deep}}}}}"#)),
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}"#
    );
    alive(&mut c);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A 1 MiB `chardev-add a,a,a,...` line: QEMU's first warning and error, and fdmon never
/// holds more than a few MiB for it (it used to peak at ~200 MiB: hundreds of bytes kept per
/// item of the option string).
#[test]
fn huge_option_string_is_bounded() {
    let (mut f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let line = format!("chardev-add null,id=n,{}", "a,".repeat(500_000));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "warning: short-form boolean option 'a' deprecated\r\nPlease use a=on instead\r\nInvalid parameter 'a'\r\nError: Parsing chardev args failed\r\n"}"#
    );
    let line = format!("chardev-add null,id=n,{}", "logfile=x,".repeat(100_000));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "too many options (fdmon takes at most 4096 in one string)\r\nError: Parsing chardev args failed\r\n"}"#
    );
    alive(&mut c);
    let peak = peak_rss_kib(f.pid());
    assert!(peak < 32 * 1024, "fdmon peaked at {peak} KiB");
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}
