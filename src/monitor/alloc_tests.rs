//! The QMP request path allocates nothing in the steady state: parse, dispatch and reply of
//! argument-less commands with an id, on a monitor attached to a real connected socket. The
//! connection's buffers are the event loop's business; here the test plays the loop (it
//! empties the output buffer between rounds, keeping its capacity). The count comes from
//! `sys::alloc_count`, this thread's allocations only. The whole process (event loop
//! included) is checked under memcheck in `tests/valgrind.rs`.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use super::{qmp, Mode};
use crate::chardev::open::open;
use crate::chardev::spec::{BackendSpec, ChardevSpec, FdRef, SocketAddrSpec, SocketSpec};
use crate::state::State;
use crate::sys::alloc_count::allocs;

/// A compact QMP monitor on one end of a connected socket pair; returns its slot.
fn qmp_monitor(state: &mut State, pretty: bool) -> (usize, UnixStream) {
    let (peer, ours) = UnixStream::pair().expect("socketpair");
    let spec = ChardevSpec {
        id: "mon".into(),
        backend: BackendSpec::Socket(SocketSpec {
            addr: SocketAddrSpec::Fd(FdRef::Name("f".into())),
            server: false,
            wait: false,
            nodelay: false,
            reconnect: None,
            tls_creds: None,
            tls_authz: None,
            telnet: false,
            tn3270: false,
            websocket: false,
        }),
    };
    let dev = open(&spec, Some(OwnedFd::from(ours))).expect("chardev on a connected socket");
    let slot = state.add_chardev(dev);
    let m = super::attach(state, Some("m".into()), slot, Mode::Control { pretty }).expect("attach");
    (m, peer)
}

fn take_output(state: &mut State, m: usize, into: &mut Vec<u8>) {
    let conn = state.monitor_conn(m).expect("connected");
    into.clear();
    into.extend_from_slice(conn.pending_out());
    conn.discard_output();
}

const PINGS: &[(&[u8], &[u8])] = &[
    (
        b"{\"execute\":\"query-status\",\"id\":1}\n",
        b"{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 1}\r\n",
    ),
    (b"{\"execute\":\"query-name\",\"id\":\"n\"}", b"{\"return\": {}, \"id\": \"n\"}\r\n"),
    (b" {\"id\": 7, \"execute\": \"query-version\", \"arguments\": {}} ", b"{\"return\": {\"qemu\": "),
    (
        b"{'execute':'query-uuid','id':-3}",
        b"{\"return\": {\"UUID\": \"00000000-0000-0000-0000-000000000000\"}, \"id\": -3}\r\n",
    ),
    (b"{\"execute\":\"query-commands\",\"id\":true}", b"{\"return\": [{\"name\": \"qmp_capabilities\"}, "),
    (b"{\"execute\":\"query-qmp-schema\",\"id\":null}", b"{\"return\": [{\"name\": "),
    (b"{\"execute\":\"query-chardev-backends\",\"id\":2}", b"{\"return\": [{\"name\": \"socket\"}, "),
];

/// One round of every ping, whole and split in two feeds (the byte-wise lexer path).
fn round(state: &mut State, m: usize, got: &mut Vec<u8>, check: bool) {
    for (req, want) in PINGS {
        for split in [req.len(), req.len() / 2] {
            qmp::feed(state, m, &req[..split]);
            qmp::feed(state, m, &req[split..]);
            take_output(state, m, got);
            if check {
                assert!(
                    got.starts_with(want),
                    "{:?} -> {:?}",
                    String::from_utf8_lossy(req),
                    String::from_utf8_lossy(got)
                );
                assert!(got.ends_with(b"\r\n"));
            }
        }
    }
}

#[test]
fn qmp_ping_pong_allocates_nothing_in_the_steady_state() {
    let mut state = State::new();
    let (m, _peer) = qmp_monitor(&mut state, false);
    let mut got = Vec::with_capacity(1 << 16);
    take_output(&mut state, m, &mut got);
    assert!(got.starts_with(b"{\"QMP\": {\"version\": {\"qemu\": "), "{:?}", String::from_utf8_lossy(&got));
    qmp::feed(&mut state, m, b"{\"execute\":\"qmp_capabilities\"}");
    take_output(&mut state, m, &mut got);
    assert_eq!(got, b"{\"return\": {}}\r\n");
    // Warm up: buffers reach their working size, the schema is rendered once.
    for _ in 0..3 {
        round(&mut state, m, &mut got, true);
    }
    let before = allocs();
    for _ in 0..200 {
        round(&mut state, m, &mut got, false);
    }
    let during = allocs() - before;
    round(&mut state, m, &mut got, true);
    // An error's text is built when it happens; the stream goes on as before.
    qmp::feed(&mut state, m, b"{\"execute\":\"bogus\",\"id\":3}");
    take_output(&mut state, m, &mut got);
    let want = b"{\"id\": 3, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command bogus has not been found\"}}\r\n";
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    round(&mut state, m, &mut got, true);
    assert_eq!(during, 0, "allocations in 200 rounds of {} requests", PINGS.len() * 2);
}

/// The pretty layout writes `\r\n` line ends itself; the same holds there.
#[test]
fn pretty_replies_allocate_nothing_either() {
    let mut state = State::new();
    let (m, _peer) = qmp_monitor(&mut state, true);
    let mut got = Vec::with_capacity(1 << 16);
    qmp::feed(&mut state, m, b"{\"execute\":\"qmp_capabilities\"}");
    take_output(&mut state, m, &mut got);
    for _ in 0..3 {
        qmp::feed(&mut state, m, PINGS[0].0);
        take_output(&mut state, m, &mut got);
    }
    let want = "{\r\n    \"return\": {\r\n        \"status\": \"running\",\r\n        \"singlestep\": false,\r\n        \"running\": true\r\n    },\r\n    \"id\": 1\r\n}\r\n";
    assert_eq!(String::from_utf8_lossy(&got), want);
    let before = allocs();
    for _ in 0..500 {
        qmp::feed(&mut state, m, PINGS[0].0);
        take_output(&mut state, m, &mut got);
    }
    assert_eq!(allocs() - before, 0);
}

/// A fresh session's first exchange and an event: negotiation (the `{}` reply) and a command
/// whose event goes out before its reply (`stop` -> STOP, `cont` -> RESUME) allocate
/// nothing once the connection's output buffer exists (the greeting made it).
#[test]
fn negotiation_and_events_allocate_nothing() {
    let mut state = State::new();
    let (m, _peer) = qmp_monitor(&mut state, false);
    let mut got = Vec::with_capacity(1 << 16);
    take_output(&mut state, m, &mut got);
    let before = allocs();
    qmp::feed(&mut state, m, b"{\"execute\":\"qmp_capabilities\"}");
    let negotiation = allocs() - before;
    take_output(&mut state, m, &mut got);
    assert_eq!(got, b"{\"return\": {}}\r\n");
    let before = allocs();
    qmp::feed(&mut state, m, b"{\"execute\":\"stop\"}");
    let stop = allocs() - before;
    take_output(&mut state, m, &mut got);
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("{\"timestamp\": {\"seconds\": "), "{text}");
    assert!(text.ends_with("\"event\": \"STOP\"}\r\n{\"return\": {}}\r\n"), "{text}");
    let before = allocs();
    qmp::feed(&mut state, m, b"{\"execute\":\"cont\"}");
    let cont = allocs() - before;
    take_output(&mut state, m, &mut got);
    assert!(String::from_utf8_lossy(&got).ends_with("\"event\": \"RESUME\"}\r\n{\"return\": {}}\r\n"));
    assert_eq!((negotiation, stop, cont), (0, 0, 0));
}
