//! Monitors at run time (fdmon's `monitor-add`/`monitor-remove`, QMP and HMP): a second
//! monitor on a socket hot-added from a passed fd (getfd over SCM_RIGHTS, chardev-add
//! `fd=NAME`) without a restart, in both modes; busy chardevs; removal, also of a monitor by
//! itself (its reply first) and of command-line monitors named with `-mon id=`.

mod common;

use common::*;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};

use fdmon::json::Value;

const OK: &str = r#"{"return": {}}"#;

fn jstr(s: &str) -> String {
    fdmon::json::to_string(&Value::from(s))
}

fn gerr(desc: &str) -> String {
    format!(r#"{{"error": {{"class": "GenericError", "desc": {}}}}}"#, jstr(desc))
}

fn getfd(name: &str) -> String {
    format!(r#"{{"execute":"getfd","arguments":{{"fdname":"{name}"}}}}"#)
}

/// chardev-add of a socket backend on the named fd.
fn chardev_add_fd(id: &str, name: &str, server: bool) -> String {
    let extra = if server { r#","server":true,"wait":false"# } else { r#","server":false"# };
    format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"socket","data":{{"addr":{{"type":"fd","data":{{"str":"{name}"}}}}{extra}}}}}}}}}"#
    )
}

fn chardev_remove(id: &str) -> String {
    format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"{id}"}}}}"#)
}

fn monitor_add(id: &str, chardev: &str, mode: &str, extra: &str) -> String {
    format!(r#"{{"execute":"monitor-add","arguments":{{"id":"{id}","chardev":"{chardev}","mode":"{mode}"{extra}}}}}"#)
}

fn monitor_remove(id: &str) -> String {
    format!(r#"{{"execute":"monitor-remove","arguments":{{"id":"{id}"}}}}"#)
}

fn chardev_entry(c: &mut Client, id: &str) -> Value {
    let v = parse(&c.cmd(r#"{"execute":"query-chardev"}"#));
    let list = v.as_object().unwrap().get("return").unwrap().as_array().unwrap().clone();
    list.into_iter()
        .find(|e| e.as_object().unwrap().get("label").unwrap().as_str() == Some(id))
        .unwrap_or_else(|| panic!("no chardev {id}"))
}

fn frontend_open(c: &mut Client, id: &str) -> bool {
    chardev_entry(c, id).as_object().unwrap().get("frontend-open").unwrap().as_bool().unwrap()
}

/// Passes `fd` with getfd as `name` and creates chardev `id` on it.
fn hot_add_socket(c: &mut Client, fd: &dyn std::os::fd::AsFd, name: &str, id: &str, server: bool) {
    c.send_fds(&getfd(name), &[fd]);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&chardev_add_fd(id, name, server)), OK);
}

/// fdmon with a QMP monitor on a socketpair, negotiated, and a connected socket hot-added as
/// chardev `c2` from a passed socketpair end; returns our end of that socket too.
fn with_hot_pair() -> (Fdmon, Client, UnixStream) {
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let (ours, theirs) = pair();
    hot_add_socket(&mut c, &theirs, "sp", "c2", false);
    drop(theirs);
    (f, c, ours)
}

#[test]
fn qmp_monitor_on_a_passed_connected_socket_greets_at_once_and_serves() {
    let (f, mut c, ours) = with_hot_pair();
    let base = f.fd_count();
    assert!(!frontend_open(&mut c, "c2"));
    let mut peer = Client::new(ours);
    peer.expect_silence();
    assert_eq!(c.cmd(&monitor_add("m2", "c2", "control", "")), OK);
    assert!(frontend_open(&mut c, "c2"));
    // A second monitor without a restart: greeting, negotiation, commands, events.
    let g = peer.negotiate();
    assert_eq!(
        g,
        r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 0}, "package": "fdmon"}, "capabilities": ["oob"]}}"#
    );
    assert_eq!(
        peer.cmd(r#"{"execute":"query-status","id":7}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 7}"#
    );
    c.send(r#"{"execute":"stop"}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.line(), OK);
    assert_eq!(peer.event(), r#"{"event": "STOP"}"#);
    // Its own getfd names are its own.
    let (_p, w) = pair();
    peer.send_fds(&getfd("mine"), &[&w]);
    drop(w);
    assert_eq!(peer.line(), OK);
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(
        c.cmd(r#"{"execute":"closefd","arguments":{"fdname":"mine"}}"#),
        gerr("File descriptor named 'mine' not found")
    );
    // Removal closes the monitor's names; the chardev and its connection stay.
    assert_eq!(c.cmd(&monitor_remove("m2")), OK);
    assert_eq!(f.fd_count(), base, "the removed monitor's getfd names are closed");
    assert!(!frontend_open(&mut c, "c2"));
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), OK);
    peer.send(r#"{"execute":"query-status"}"#);
    peer.expect_silence();
    // Free again: chardev-remove succeeds and closes the connection.
    assert_eq!(c.cmd(&chardev_remove("c2")), OK);
    peer.expect_eof();
    assert_eq!(f.fd_count(), base - 1);
}

#[test]
fn hmp_monitor_on_a_passed_listening_socket_greets_every_client() {
    let dir = TempDir::new("mon-listen");
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let path = dir.path("hmp.sock");
    let l = UnixListener::bind(&path).unwrap();
    hot_add_socket(&mut c, &l, "lf", "h", true);
    drop(l);
    assert_eq!(c.cmd(&monitor_add("hm", "h", "readline", "")), OK);
    assert!(frontend_open(&mut c, "h"), "a listener's frontend is open before any client");
    for round in 0..2 {
        let mut peer = Client::connect(&path);
        assert_eq!(peer.until(HMP_PROMPT), hmp_banner(), "client {round}");
        assert_eq!(hmp_line(&mut peer, "info status"), "VM status: running\r\n");
        assert_eq!(hmp_line(&mut peer, "info chardev").lines().count(), 2);
        drop(peer);
    }
    // HMP commands act on the same state: a stop from the hot-added HMP reaches QMP.
    let mut peer = Client::connect(&path);
    assert_eq!(peer.until(HMP_PROMPT), hmp_banner());
    assert_eq!(hmp_line(&mut peer, "stop"), "");
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"h"}}"#), gerr("Chardev 'h' is busy"));
    assert_eq!(c.cmd(&monitor_remove("hm")), OK);
    peer.send("info status\n");
    peer.expect_silence();
    assert_eq!(c.cmd(&chardev_remove("h")), OK);
    peer.expect_eof();
    drop(f);
}

#[test]
fn pretty_qmp_monitor_and_pretty_readline_is_refused() {
    let (_f, mut c, ours) = with_hot_pair();
    assert_eq!(
        c.cmd(&monitor_add("m2", "c2", "readline", r#","pretty":true"#)),
        gerr("'pretty' is not compatible with HMP monitors")
    );
    assert_eq!(c.cmd(&monitor_add("m2", "c2", "control", r#","pretty":true"#)), OK);
    let mut peer = Client::new(ours);
    let g = peer.until("\r\n}\r\n");
    assert!(g.starts_with("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n"), "{g:?}");
    peer.send(r#"{"execute":"qmp_capabilities"}"#);
    assert_eq!(peer.until("\r\n}\r\n"), "{\r\n    \"return\": {\r\n    }\r\n}\r\n");
}

#[test]
fn busy_chardevs_bad_ids_and_unknown_ids() {
    let (_f, mut c, ours) = with_hot_pair();
    assert_eq!(c.cmd(&monitor_add("m2", "c2", "control", "")), OK);
    let mut peer = Client::new(ours);
    peer.negotiate();
    assert_eq!(c.cmd(&chardev_remove("c2")), gerr("Chardev 'c2' is busy"));
    // A chardev with a frontend takes no second monitor (QEMU's text for two -mon on one).
    assert_eq!(c.cmd(&monitor_add("m3", "c2", "control", "")), gerr("Device 'c2' is in use"));
    assert_eq!(c.cmd(&monitor_add("m4", "mon", "readline", "")), gerr("Device 'mon' is in use"));
    assert_eq!(c.cmd(&monitor_add("m2", "nope", "control", "")), gerr("Duplicate ID 'm2' for mon"));
    assert_eq!(c.cmd(&monitor_add("m5", "nope", "control", "")), gerr("chardev \"nope\" not found"));
    assert_eq!(c.cmd(&monitor_add("1m", "c2", "control", "")), gerr("Parameter 'id' expects an identifier"));
    assert_eq!(c.cmd(&monitor_add("m6", "c2", "bogus", "")), gerr("Parameter 'mode' does not accept value 'bogus'"));
    assert_eq!(
        c.cmd(r#"{"execute":"monitor-add","arguments":{"id":"m7","chardev":"c2"}}"#),
        gerr("Parameter 'mode' is missing")
    );
    assert_eq!(c.cmd(&monitor_remove("nope")), gerr("Monitor 'nope' not found"));
    // `-mon` without id= gives a monitor no id (as in QEMU): nothing can remove it by name.
    assert_eq!(c.cmd(&monitor_remove("mon")), gerr("Monitor 'mon' not found"));
    // Nothing of that disturbed the second monitor.
    assert_eq!(peer.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    // After removal the id and the chardev are free again; the same peer is greeted anew.
    assert_eq!(c.cmd(&monitor_remove("m2")), OK);
    assert_eq!(c.cmd(&monitor_remove("m2")), gerr("Monitor 'm2' not found"));
    assert_eq!(c.cmd(&monitor_add("m2", "c2", "readline", "")), OK);
    assert_eq!(peer.until(HMP_PROMPT), hmp_banner());
    assert_eq!(hmp_line(&mut peer, "info status"), "VM status: running\r\n");
}

#[test]
fn a_monitor_removing_itself_gets_its_reply_first() {
    let (_f, mut c, ours) = with_hot_pair();
    assert_eq!(c.cmd(&monitor_add("m2", "c2", "control", "")), OK);
    let mut peer = Client::new(ours);
    peer.negotiate();
    // The reply comes; what follows in the same write is not run.
    peer.send(r#"{"execute":"monitor-remove","arguments":{"id":"m2"},"id":"bye"}{"execute":"stop"}"#);
    assert_eq!(peer.line(), r#"{"return": {}, "id": "bye"}"#);
    peer.send(r#"{"execute":"query-status"}"#);
    // Events no longer reach it, and the connection stays open, unattached.
    c.send(r#"{"execute":"system_powerdown"}"#);
    assert_eq!(c.event(), r#"{"event": "POWERDOWN"}"#);
    assert_eq!(c.line(), OK);
    peer.expect_silence();
    assert_eq!(
        c.cmd(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#,
        "the stop after monitor-remove did not run"
    );
    assert!(!frontend_open(&mut c, "c2"));
    assert_eq!(c.cmd(&chardev_remove("c2")), OK);
    peer.expect_eof();
}

#[test]
fn the_first_monitor_can_remove_itself_and_a_later_one_takes_over() {
    // Start-up QMP monitor with an id; it hands over to a hot-added one and leaves.
    let (a, b) = UnixStream::pair().unwrap();
    let f = spawn_with_fds(
        &["-chardev", "socket,fd=3,id=mon", "-mon", "chardev=mon,mode=control,id=first"],
        vec![OwnedFd::from(b)],
    );
    let mut c = Client::new(a);
    c.negotiate();
    let (ours, theirs) = pair();
    hot_add_socket(&mut c, &theirs, "sp", "c2", false);
    drop(theirs);
    assert_eq!(c.cmd(&monitor_add("second", "c2", "control", "")), OK);
    let mut peer = Client::new(ours);
    peer.negotiate();
    assert_eq!(c.cmd(&monitor_add("first", "c2", "control", "")), gerr("Duplicate ID 'first' for mon"));
    assert_eq!(c.cmd(&monitor_remove("first")), OK);
    c.send(r#"{"execute":"query-status"}"#);
    c.expect_silence();
    assert_eq!(peer.cmd(&chardev_remove("mon")), OK);
    c.expect_eof();
    peer.send(r#"{"execute":"quit"}"#);
    assert_eq!(peer.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#);
    assert_eq!(peer.line(), OK);
    drop(f);
}

#[test]
fn command_line_monitors_with_ids_can_be_removed() {
    let (qa, qb) = UnixStream::pair().unwrap();
    let (ha, hb) = UnixStream::pair().unwrap();
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-chardev",
            "socket,fd=4,id=hc",
            "-mon",
            "hc,id=hmon",
            "-chardev",
            "ringbuf,id=rb",
            "-qmp",
            "chardev:rb",
        ],
        vec![OwnedFd::from(qb), OwnedFd::from(hb)],
    );
    let mut c = Client::new(qa);
    c.negotiate();
    let mut h = Client::new(ha);
    assert_eq!(h.until(HMP_PROMPT), hmp_banner());
    assert_eq!(c.cmd(&chardev_remove("hc")), gerr("Chardev 'hc' is busy"));
    assert_eq!(c.cmd(&monitor_add("hmon", "rb", "control", "")), gerr("Duplicate ID 'hmon' for mon"));
    assert_eq!(c.cmd(&monitor_remove("hmon")), OK);
    h.send("info status\n");
    h.expect_silence();
    assert_eq!(c.cmd(&chardev_remove("hc")), OK);
    h.expect_eof();
    // A legacy -qmp chardev:LABEL monitor is named LABEL, as QEMU names its option.
    assert_eq!(c.cmd(&chardev_remove("rb")), gerr("Chardev 'rb' is busy"));
    assert_eq!(c.cmd(&monitor_remove("rb")), OK);
    assert_eq!(c.cmd(&chardev_remove("rb")), OK);
    drop(f);
}

#[test]
fn hmp_monitor_add_and_remove() {
    let (ha, hb) = UnixStream::pair().unwrap();
    let f = spawn_with_fds(&["-chardev", "socket,fd=3,id=hc", "-mon", "hc,id=h0"], vec![OwnedFd::from(hb)]);
    let mut h = Client::new(ha);
    assert_eq!(h.until(HMP_PROMPT), hmp_banner());
    assert_eq!(hmp_line(&mut h, "chardev-add ringbuf,id=r1"), "");
    assert_eq!(hmp_line(&mut h, "monitor-add r1"), "Error: Parameter 'id' is missing\r\n");
    assert_eq!(hmp_line(&mut h, "monitor-add id=x"), "Error: Parameter 'chardev' is missing\r\n");
    assert_eq!(hmp_line(&mut h, "monitor-add r1,id=x,bogus=1"), "Error: Invalid parameter 'bogus'\r\n");
    assert_eq!(
        hmp_line(&mut h, "monitor-add r1,id=x,mode=nope"),
        "Error: Parameter 'mode' does not accept value 'nope'\r\n"
    );
    assert_eq!(
        hmp_line(&mut h, "monitor-add r1,id=x,pretty=on"),
        "Error: 'pretty' is not compatible with HMP monitors\r\n"
    );
    assert_eq!(hmp_line(&mut h, "monitor-add hc,id=x"), "Error: Device 'hc' is in use\r\n");
    assert_eq!(hmp_line(&mut h, "monitor-add r1,id=h0"), "Error: Duplicate ID 'h0' for mon\r\n");
    // A QMP monitor on a ringbuf: the greeting lands in the ring at once.
    assert_eq!(hmp_line(&mut h, "monitor-add chardev=r1,id=q1,mode=control"), "");
    let ring = hmp_line(&mut h, "ringbuf_read r1 1000");
    assert!(ring.starts_with(r#"{"QMP": {"version": "#), "{ring:?}");
    assert_eq!(hmp_line(&mut h, "chardev-remove r1"), "Error: Chardev 'r1' is busy\r\n");
    assert_eq!(hmp_line(&mut h, "monitor-remove nope"), "Error: Monitor 'nope' not found\r\n");
    assert_eq!(hmp_line(&mut h, "monitor-remove q1"), "");
    assert_eq!(hmp_line(&mut h, "chardev-remove r1"), "");
    assert_eq!(hmp_line(&mut h, "help monitor-remove"), "monitor-remove id -- remove a monitor; its chardev stays\r\n");
    // The HMP monitor removes itself: the line's output (none), then no prompt, no more input.
    h.send("monitor-remove h0\n");
    assert_eq!(h.until("\r\n"), format!("{}\r\n", hmp_echo("monitor-remove h0")));
    h.send("info status\n");
    h.expect_silence();
    drop(f);
}

#[test]
fn human_monitor_command_removing_its_own_monitor_still_replies() {
    let (a, b) = UnixStream::pair().unwrap();
    let _f =
        spawn_with_fds(&["-chardev", "socket,fd=3,id=mon", "-mon", "mon,mode=control,id=q"], vec![OwnedFd::from(b)]);
    let mut c = Client::new(a);
    c.negotiate();
    assert_eq!(
        c.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"monitor-remove q"},"id":1}"#),
        r#"{"return": "", "id": 1}"#
    );
    c.send(r#"{"execute":"query-status"}"#);
    c.expect_silence();
}

#[test]
fn listed_in_query_commands_and_the_schema() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let cmds = c.cmd(r#"{"execute":"query-commands"}"#);
    for name in ["monitor-add", "monitor-remove"] {
        assert!(cmds.contains(&format!(r#"{{"name": "{name}"}}"#)), "{name} missing from {cmds}");
    }
    let schema = c.cmd(r#"{"execute":"query-qmp-schema"}"#);
    assert!(schema.contains(r#"{"name": "monitor-add", "ret-type""#), "{schema}");
    assert!(schema.contains(r#""values": ["readline", "control"]"#), "the mode enum");
}

/// The seed's runtime flow end to end: a management app that started fdmon with one
/// pre-opened socket creates a second socket itself, passes it over the monitor with getfd,
/// turns it into a chardev and a monitor, and gets a second QMP monitor on a socket it
/// created, with no restart, no path race and no retry: its one connect() is answered.
#[test]
fn seed_runtime_flow_end_to_end() {
    let dir = TempDir::new("mon-seed");
    let (f, p) = qmp_server(&dir, &[]);
    let mut c = Client::connect(&p);
    c.negotiate();
    let path2 = dir.path("second.sock");
    let l = UnixListener::bind(&path2).unwrap();
    c.send_fds(&getfd("second"), &[&l]);
    drop(l);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&chardev_add_fd("qmp2", "second", true)), OK);
    assert_eq!(c.cmd(&monitor_add("mon2", "qmp2", "control", "")), OK);
    let mut second = Client::connect(&path2);
    second.negotiate();
    assert_eq!(second.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    second.send(r#"{"execute":"quit"}"#);
    let shutdown = r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#;
    assert_eq!(second.event(), shutdown);
    assert_eq!(second.line(), OK);
    assert_eq!(c.event(), shutdown);
    let mut f = f;
    assert_eq!(f.wait().code(), Some(0));
}

/// QEMU 7.2 lists every command fdmon lists, except fdmon's own extensions
/// (`commands::EXTENSIONS`: `query-workload`, `monitor-add`, `monitor-remove`), which QEMU's
/// recording shows absent (recorded, not compared). A new fdmon extension must be declared
/// there; a new QEMU command must be re-recorded with `make golden`.
#[test]
fn differential_query_commands_without_extensions() {
    use fdmon::monitor::commands::{COMMANDS, EXTENSIONS};
    common::golden::check_one("monitors/query_commands", "query-commands", &["extensions"], |imp| {
        let (a, b) = pair();
        let _f = start_imp(imp, QMP_PAIR_ARGS, vec![OwnedFd::from(b)]);
        let mut c = Client::new(a);
        c.negotiate();
        let v = parse(&c.cmd(r#"{"execute":"query-commands"}"#));
        let listed: Vec<String> = v
            .as_object()
            .unwrap()
            .get("return")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_object().unwrap().get("name").unwrap().as_str().unwrap().to_string())
            .collect();
        let has = |n: &str| if listed.iter().any(|l| l == n) { "listed" } else { "missing" };
        let mut ours: Vec<&str> = COMMANDS.iter().map(|c| c.name).filter(|n| !EXTENSIONS.contains(n)).collect();
        ours.sort();
        let commands: Vec<String> = ours.iter().map(|n| format!("{n} {}", has(n))).collect();
        let extensions: Vec<String> = EXTENSIONS.iter().map(|n| format!("{n} {}", has(n))).collect();
        common::golden::items([("commands", commands.join("\n")), ("extensions", extensions.join("\n"))])
    });
}
