//! QMP over an inherited fd, end to end: the real binary, real sockets, exact bytes.

mod common;

use common::*;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 0}, "package": "fdmon"}, "capabilities": ["oob"]}}"#;

#[test]
fn greeting_on_inherited_listener_is_exact_and_crlf_terminated() {
    let dir = TempDir::new("greet");
    let (f, path) = qmp_server(&dir, &[]);
    let mut c = Client::connect(&path);
    let raw = c.until("\r\n");
    assert_eq!(raw, format!("{GREETING}\r\n"));
    drop(f);
}

#[test]
fn full_session_over_inherited_listener() {
    let dir = TempDir::new("vertical");
    let (mut f, path) = qmp_server(&dir, &[]);
    let mut c = Client::connect(&path);
    assert_eq!(c.negotiate(), GREETING);
    assert_eq!(
        c.cmd(r#"{"execute":"query-status","id":1}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 1}"#
    );
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    c.expect_eof();
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(0));
    assert_eq!(err, "");
    // An inherited listener's path belongs to the parent: fdmon leaves it alone.
    assert!(path.exists());
}

#[test]
fn full_session_over_socketpair_end() {
    let (mut f, mut c) = qmp_pair(&[]);
    assert_eq!(c.negotiate(), GREETING);
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    c.send(r#"{"execute":"quit","id":"q"}"#);
    assert!(c.line().contains(r#""event": "SHUTDOWN""#));
    assert_eq!(c.line(), r#"{"return": {}, "id": "q"}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn negotiation_mode_rules() {
    let (_f, mut c) = qmp_pair(&[]);
    assert_eq!(c.line(), GREETING);
    let neg = r#"{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#;
    assert_eq!(c.cmd(r#"{"execute":"query-status"}"#), neg);
    assert_eq!(c.cmd(r#"{"execute":"nonexistent"}"#), neg);
    assert_eq!(
        c.cmd(r#"{"execute":"query-status","id":5}"#),
        r#"{"id": 5, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"exec-oob":"query-status","id":6}"#),
        r#"{"id": 6, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"qmp_capabilities","arguments":{"enable":["foo"]},"id":"a"}"#),
        r#"{"id": "a", "error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'foo'"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"qmp_capabilities","arguments":{"enable":"oob"},"id":"b"}"#),
        r#"{"id": "b", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable', expected: array"}}"#
    );
    // A failed negotiation leaves the monitor in negotiation mode.
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), neg);
    assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities","arguments":{"enable":[]}}"#), r#"{"return": {}}"#);
    assert_eq!(
        c.cmd(r#"{"execute":"qmp_capabilities"}"#),
        r#"{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}"#
    );
    // Negotiated without oob: exec-oob stays unexpected.
    assert_eq!(
        c.cmd(r#"{"exec-oob":"query-name"}"#),
        r#"{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}"#
    );
}

#[test]
fn oob_negotiation_and_exec_oob_errors() {
    let (_f, mut c) = qmp_pair(&[]);
    c.line();
    assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#), r#"{"return": {}}"#);
    assert_eq!(
        c.cmd(r#"{"exec-oob":"query-name","id":"e"}"#),
        r#"{"id": "e", "error": {"class": "GenericError", "desc": "The command query-name does not support OOB"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"exec-oob":"nonexist","id":"g"}"#),
        r#"{"id": "g", "error": {"class": "CommandNotFound", "desc": "The command nonexist has not been found"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"query-name","exec-oob":"query-name","id":"h"}"#),
        r#"{"id": "h", "error": {"class": "GenericError", "desc": "QMP input member 'execute' clashes with 'exec-oob'"}}"#
    );
}

#[test]
fn request_validation_errors_are_exact() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let cases: &[(&str, &str)] = &[
        ("42\n", r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#),
        (r#""hi""#, r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#),
        ("[1,2]", r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#),
        ("null\n", r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#),
        ("{}", r#"{"error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}"#),
        (r#"{"id":7}"#, r#"{"id": 7, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}"#),
        (
            r#"{"execute":1,"id":1}"#,
            r#"{"id": 1, "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}"#,
        ),
        (
            r#"{"execute":"query-name","arguments":[],"id":2}"#,
            r#"{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}"#,
        ),
        (
            r#"{"execute":"query-name","arguments":null,"id":3}"#,
            r#"{"id": 3, "error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}"#,
        ),
        (
            r#"{"execute":"query-name","foo":1,"id":4}"#,
            r#"{"id": 4, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}"#,
        ),
        (
            r#"{"execute":"query-name","control":1}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input member 'control' is unexpected"}}"#,
        ),
        (
            r#"{"execute":"nope","id":8}"#,
            r#"{"id": 8, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#,
        ),
        (
            r#"{"execute":"getfd","id":9}"#,
            r#"{"id": 9, "error": {"class": "GenericError", "desc": "Parameter 'fdname' is missing"}}"#,
        ),
        (
            r#"{"execute":"getfd","arguments":{}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'fdname' is missing"}}"#,
        ),
        (
            r#"{"execute":"getfd","arguments":{"fdname":1}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'fdname', expected: string"}}"#,
        ),
        (
            r#"{"execute":"getfd","arguments":{"fdname":"x","bogus":1}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'bogus' is unexpected"}}"#,
        ),
        (
            r#"{"execute":"query-name","arguments":{"x":1}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}"#,
        ),
        (r#"{"execute":"query-name","arguments":{}}"#, r#"{"return": {}}"#),
        (
            r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":"1"}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'size', expected: integer"}}"#,
        ),
        (
            r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1,"format":"bogus"}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'format' does not accept value 'bogus'"}}"#,
        ),
        (
            r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"null"}}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'backend.data' is missing"}}"#,
        ),
        (
            r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"bogus","data":{}}}}"#,
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'type' does not accept value 'bogus'"}}"#,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(&c.cmd(req), want, "request {req}");
    }
}

#[test]
fn id_is_echoed_verbatim_in_any_json_type() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    for id in [r#""s""#, "12", "null", "true", r#"[1, {"a": null}]"#, r#"{"k": "v"}"#, "18446744073709551615", "-1.5"] {
        assert_eq!(
            c.cmd(&format!(r#"{{"execute":"query-name","id":{id}}}"#)),
            format!(r#"{{"return": {{}}, "id": {id}}}"#)
        );
    }
    assert_eq!(
        c.cmd(r#"{"execute":"bogus","id":[]}"#),
        r#"{"id": [], "error": {"class": "CommandNotFound", "desc": "The command bogus has not been found"}}"#
    );
}

#[test]
fn streaming_parser_on_the_wire() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    c.send(r#"{"execute":"query-name"}{"execute":"query-uuid"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(c.line(), r#"{"return": {"UUID": "00000000-0000-0000-0000-000000000000"}}"#);
    c.send(r#"{"execute":"#);
    c.expect_silence();
    c.send(r#" "query-name", "id": 2}"#);
    assert_eq!(c.line(), r#"{"return": {}, "id": 2}"#);
    c.send("\n\t\r\n {\"execute\" : \"query-name\" , \"id\" : [1,{\"a\":null}] }");
    assert_eq!(c.line(), r#"{"return": {}, "id": [1, {"a": null}]}"#);
    // Resynchronisation after a lexical error.
    c.send("{\"execute\":\"query-name\"\n");
    c.expect_silence();
    c.send_bytes(b"\xff");
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}"#);
    assert_eq!(c.cmd(r#"{"execute":"query-name","id":1}"#), r#"{"return": {}, "id": 1}"#);
    c.send(r#"{"execute":"query-name", @ "id":6}{"execute":"query-name","id":7}"#);
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON parse error, stray '@'"}}"#);
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#);
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#);
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#);
    assert_eq!(c.line(), r#"{"return": {}, "id": 7}"#);
    // Single quotes are QEMU's dialect.
    assert_eq!(c.cmd("{'execute':'query-name'}"), r#"{"return": {}}"#);
    assert_eq!(
        c.cmd("{\"execute\":\"query-name\",\"execute\":\"query-name\"}"),
        r#"{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}"#
    );
}

#[test]
fn oversized_message_is_refused_early_and_connection_recovers() {
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    // 2 MiB inside one string: the cap (1 MiB) is hit before the string ends.
    let mut big = Vec::from(&b"{\"execute\":\"query-name\",\"id\":\""[..]);
    big.extend(std::iter::repeat(b'a').take(2 << 20));
    big.extend_from_slice(b"\"}\n");
    let mut w = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || w.write_all(&big).unwrap());
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}"#);
    t.join().unwrap();
    // The tail of the string is garbage until resync; a stray byte then a good request works.
    c.send_bytes(b"\xff");
    let mut got = c.line();
    while got.contains("error") {
        got = c.cmd(r#"{"execute":"query-name","id":"ok"}"#);
    }
    assert_eq!(got, r#"{"return": {}, "id": "ok"}"#);
    let status = std::fs::read_to_string(format!("/proc/{}/status", f.pid())).unwrap();
    let rss: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rss < 64 * 1024, "fdmon RSS grew to {rss} kB");
}

#[test]
fn nesting_limit() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let ok = format!(r#"{{"execute":"query-name","id":{}{}}}"#, "[".repeat(1023), "]".repeat(1023));
    let want = format!(r#"{{"return": {{}}, "id": {}{}}}"#, "[".repeat(1023), "]".repeat(1023));
    assert_eq!(c.cmd(&ok), want);
    c.send(&format!("{}{}", "[".repeat(1025), "]".repeat(1025)));
    assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}"#);
    for _ in 0..1025 {
        assert_eq!(c.line(), r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#);
    }
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
}

#[test]
fn queries() {
    let (_f, mut c) = qmp_pair(&["-name", "vm1"]);
    c.negotiate();
    assert_eq!(
        c.cmd(r#"{"execute":"query-version"}"#),
        r#"{"return": {"qemu": {"micro": 0, "minor": 1, "major": 0}, "package": "fdmon"}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {"name": "vm1"}}"#);
    assert_eq!(c.cmd(r#"{"execute":"query-uuid"}"#), r#"{"return": {"UUID": "00000000-0000-0000-0000-000000000000"}}"#);
    let cmds = c.cmd(r#"{"execute":"query-commands"}"#);
    for name in [
        "qmp_capabilities",
        "query-status",
        "stop",
        "cont",
        "system_reset",
        "system_powerdown",
        "quit",
        "query-qmp-schema",
    ] {
        assert!(cmds.contains(&format!(r#"{{"name": "{name}"}}"#)), "{name} missing from {cmds}");
    }
    assert!(!cmds.contains("query-events"));
    let schema = c.cmd(r#"{"execute":"query-qmp-schema"}"#);
    let v = parse(&schema);
    let entities = v.as_object().unwrap().get("return").unwrap().as_array().unwrap();
    let find = |name: &str| {
        entities.iter().find(|e| e.as_object().unwrap().get("name").unwrap().as_str() == Some(name)).cloned()
    };
    // Every command of query-commands appears as a command entity, and its types resolve.
    let listed = parse(&cmds);
    for c in listed.as_object().unwrap().get("return").unwrap().as_array().unwrap() {
        let name = c.as_object().unwrap().get("name").unwrap().as_str().unwrap();
        let e = find(name).unwrap_or_else(|| panic!("{name} not in schema"));
        let e = e.as_object().unwrap();
        assert_eq!(e.get("meta-type").unwrap().as_str(), Some("command"));
        for k in ["arg-type", "ret-type"] {
            let t = e.get(k).unwrap().as_str().unwrap();
            assert!(find(t).is_some(), "{name}.{k} = {t} unresolved");
        }
    }
    let shutdown = find("SHUTDOWN").unwrap();
    assert_eq!(shutdown.as_object().unwrap().get("meta-type").unwrap().as_str(), Some("event"));
    let status_ret =
        find("query-status").unwrap().as_object().unwrap().get("ret-type").unwrap().as_str().unwrap().to_string();
    let st = fdmon::json::to_string(&find(&status_ret).unwrap());
    assert!(st.contains(r#"{"name": "running", "type": "bool"}"#), "{st}");
}

#[test]
fn run_state_machine_and_events() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let status = |c: &mut Client| c.cmd(r#"{"execute":"query-status"}"#);
    c.send(r#"{"execute":"stop"}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(status(&mut c), r#"{"return": {"status": "paused", "singlestep": false, "running": false}}"#);
    // stop while paused: no event.
    assert_eq!(c.cmd(r#"{"execute":"stop"}"#), r#"{"return": {}}"#);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    // cont while running: no event.
    assert_eq!(c.cmd(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    c.send(r#"{"execute":"system_reset"}"#);
    assert_eq!(c.event(), r#"{"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(status(&mut c), r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#);
    c.send(r#"{"execute":"system_powerdown"}"#);
    assert_eq!(c.event(), r#"{"event": "POWERDOWN"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(status(&mut c), r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#);
    // reset from paused lands in prelaunch
    c.send(r#"{"execute":"stop"}"#);
    c.event();
    c.line();
    c.send(r#"{"execute":"system_reset"}"#);
    c.event();
    c.line();
    assert_eq!(status(&mut c), r#"{"return": {"status": "prelaunch", "singlestep": false, "running": false}}"#);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    c.line();
}

#[test]
fn start_paused_with_dash_s() {
    let (_f, mut c) = qmp_pair(&["-S"]);
    c.negotiate();
    assert_eq!(
        c.cmd(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "prelaunch", "singlestep": false, "running": false}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"stop"}"#), r#"{"return": {}}"#);
    c.send(r#"{"execute":"system_reset"}"#);
    assert!(c.event().contains("RESET"));
    c.line();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("prelaunch"));
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
}

#[test]
fn quit_reply_is_delivered_even_with_more_input_behind_it() {
    let (mut f, mut c) = qmp_pair(&[]);
    c.negotiate();
    c.send(r#"{"execute":"quit","id":1}{"execute":"query-name","id":2}{"execute":"query-name","id":3}"#);
    assert!(c.event().contains("host-qmp-quit"));
    assert_eq!(c.line(), r#"{"return": {}, "id": 1}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn signals_send_shutdown_to_negotiated_clients_and_exit_zero() {
    for (sig, num) in [(libc::SIGTERM, 15), (libc::SIGINT, 2), (libc::SIGHUP, 1)] {
        let (mut f, mut c) = qmp_pair(&[]);
        c.negotiate();
        f.signal(sig);
        assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#);
        c.expect_eof();
        let (code, err) = f.wait_output();
        assert_eq!(code, Some(0));
        let me = std::process::id();
        let want = format!("fdmon: terminating on signal {num} from pid {me} (");
        assert!(err.starts_with(&want), "{err:?}");
        assert!(err.ends_with(")\n"), "{err:?}");
    }
}

#[test]
fn no_events_before_negotiation() {
    let (mut f, mut c) = qmp_pair(&[]);
    assert_eq!(c.line(), GREETING);
    f.signal(libc::SIGTERM);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn pretty_output() {
    let (a, b) = UnixStream::pair().unwrap();
    let _f = spawn_with_fds(
        &["-chardev", "socket,fd=3,id=mon", "-mon", "chardev=mon,mode=control,pretty=on"],
        vec![OwnedFd::from(b)],
    );
    let mut c = Client::new(a);
    let greeting = c.until("}\r\n}\r\n");
    assert!(greeting.starts_with("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n"), "{greeting:?}");
    c.send(r#"{"execute":"qmp_capabilities","id":1}"#);
    assert_eq!(c.until("\r\n}\r\n"), "{\r\n    \"return\": {\r\n    },\r\n    \"id\": 1\r\n}\r\n");
    c.send(r#"{"execute":"bogus","id":[]}"#);
    assert_eq!(
        c.until("\r\n}\r\n"),
        "{\r\n    \"id\": [\r\n    ],\r\n    \"error\": {\r\n        \"class\": \"CommandNotFound\",\r\n        \"desc\": \"The command bogus has not been found\"\r\n    }\r\n}\r\n"
    );
}

#[test]
fn non_ascii_output_is_escaped() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    assert_eq!(
        c.cmd("{\"execute\":\"query-name\",\"id\":\"\u{e9}\u{1F600}\\u0000\u{7f}/\"}"),
        r#"{"return": {}, "id": "\u00E9\uD83D\uDE00\u0000\u007F/"}"#
    );
}

#[test]
fn second_client_waits_until_first_leaves() {
    let dir = TempDir::new("queue");
    let (_f, path) = qmp_server(&dir, &[]);
    let mut a = Client::connect(&path);
    a.negotiate();
    let mut b = Client::connect(&path); // the kernel queues it
    b.expect_silence();
    drop(a);
    assert_eq!(b.line(), GREETING);
    // A fresh session: negotiation again.
    assert!(b.cmd(r#"{"execute":"query-status"}"#).contains("Expecting capabilities negotiation"));
}

#[test]
fn peer_hangup_on_connected_fd_leaves_fdmon_running() {
    let (a, b) = UnixStream::pair().unwrap();
    let dir = TempDir::new("hangup");
    let (l, p) = listener(&dir, "q.sock");
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=pair",
            "-mon",
            "chardev=pair,mode=control",
            "-chardev",
            "socket,fd=4,server=on,wait=off,id=mon",
            "-mon",
            "chardev=mon,mode=control",
        ],
        vec![OwnedFd::from(b), OwnedFd::from(l)],
    );
    let mut c = Client::new(a);
    c.negotiate();
    drop(c);
    let mut m = Client::connect(&p);
    m.negotiate();
    let list = m.cmd(r#"{"execute":"query-chardev"}"#);
    assert!(list.contains(r#"{"frontend-open": true, "filename": "disconnected:fd:3", "label": "pair"}"#), "{list}");
    assert!(f.fd_count() > 0);
}

#[test]
fn stalled_reader_gets_backpressure_not_unbounded_buffers() {
    let dir = TempDir::new("stall");
    let (l, p) = listener(&dir, "b.sock");
    let (a, b) = UnixStream::pair().unwrap();
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=slow",
            "-mon",
            "chardev=slow,mode=control",
            "-chardev",
            "socket,fd=4,server=on,wait=off,id=mon",
            "-mon",
            "chardev=mon,mode=control",
        ],
        vec![OwnedFd::from(b), OwnedFd::from(l)],
    );
    let mut slow = Client::new(a);
    slow.negotiate();
    // Flood requests and never read replies (each reply is much larger than the request).
    let mut w = slow.stream.try_clone().unwrap();
    w.set_nonblocking(true).unwrap();
    let req = br#"{"execute":"query-qmp-schema"}"#.repeat(64);
    let mut sent = 0usize;
    for _ in 0..20000 {
        match w.write(&req) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent > 0);
    // The other monitor still answers promptly.
    let mut m = Client::connect(&p);
    m.negotiate();
    assert_eq!(m.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    let status = std::fs::read_to_string(format!("/proc/{}/status", f.pid())).unwrap();
    let rss: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rss < 64 * 1024, "fdmon RSS grew to {rss} kB");
}

#[test]
fn sigpipe_does_not_kill_fdmon() {
    let dir = TempDir::new("pipe");
    let (f, path) = qmp_server(&dir, &[]);
    for _ in 0..5 {
        let mut c = Client::connect(&path);
        c.negotiate();
        c.send(&r#"{"execute":"query-qmp-schema"}"#.repeat(50));
        drop(c); // vanish with replies pending
    }
    let mut c = Client::connect(&path);
    c.negotiate();
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    drop(f);
}

/// Deterministic garbage (xorshift) at a QMP and an HMP monitor: fdmon survives and both
/// connections keep working afterwards.
#[test]
fn garbage_never_crashes_fdmon() {
    let dir = TempDir::new("garbage");
    let (l, p) = listener(&dir, "h.sock");
    let (a, b) = UnixStream::pair().unwrap();
    let mut f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=q",
            "-mon",
            "chardev=q,mode=control",
            "-chardev",
            "socket,fd=4,server=on,wait=off,id=h",
            "-mon",
            "chardev=h,mode=readline",
        ],
        vec![OwnedFd::from(b), OwnedFd::from(l)],
    );
    let mut q = Client::new(a);
    q.negotiate();
    let mut h = Client::connect(&p);
    h.until("(qemu) ");
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"{}[]:,\"'\\ \n\r\tabcdefqxyz0123456789-+.eE\x00\x1b\x7f\xc3\xa9\xff";
    // Readers drain the replies (so backpressure never stalls the writers) until a marker.
    fn reader(mut s: UnixStream, marker: &'static str) -> std::thread::JoinHandle<bool> {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut seen = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => {
                        seen.extend_from_slice(&buf[..n]);
                        if seen.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                            return true;
                        }
                        let keep = seen.len().saturating_sub(marker.len());
                        seen.drain(..keep);
                    }
                }
            }
        })
    }
    let t1 = reader(q.stream.try_clone().unwrap(), r#""id": "alive""#);
    let t2 = reader(h.stream.try_clone().unwrap(), "VM status: running");
    for _ in 0..200 {
        let n = (next() % 2000) as usize;
        let chunk: Vec<u8> = (0..n).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        q.send_bytes(&chunk);
        // HMP: no "q"/"quit" commands in the garbage (they would end the test early).
        let hchunk: Vec<u8> = chunk.iter().map(|&c| if c == b'q' { b'x' } else { c }).collect();
        h.send_bytes(&hchunk);
    }
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    // Both connections still work: resynchronise, then ask (twice, in case the first request
    // lands inside leftover garbage).
    for _ in 0..2 {
        q.send_bytes(b"\xff\n{\"execute\":\"query-name\",\"id\":\"alive\"}");
        h.send_bytes(b"\n\ninfo status\n");
    }
    assert!(t1.join().unwrap(), "QMP connection stopped answering");
    assert!(t2.join().unwrap(), "HMP connection stopped answering");
    f.signal(libc::SIGTERM);
    assert_eq!(f.wait().code(), Some(0));
}
