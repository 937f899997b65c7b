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
