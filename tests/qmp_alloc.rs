//! The QMP request path allocates nothing in the steady state: parse, dispatch and reply of
//! argument-less commands with an id, on a monitor attached to a real connected socket. The
//! connection's buffers are the event loop's business; here the test plays the loop (it
//! empties the output buffer between rounds, keeping its capacity).
//!
//! A counting global allocator needs `unsafe impl GlobalAlloc`; it counts only this
//! thread's allocations, so the harness's own threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use fdmon::chardev::open::{open, FdSource};
use fdmon::chardev::spec::{BackendSpec, ChardevSpec, SocketAddrSpec, SocketSpec};
use fdmon::monitor::{self, qmp, Mode};
use fdmon::state::State;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local Cell, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

/// A compact QMP monitor on one end of a connected socket pair; returns its slot.
fn qmp_monitor(state: &mut State, pretty: bool) -> (usize, UnixStream) {
    let (peer, ours) = UnixStream::pair().expect("socketpair");
    let spec = ChardevSpec {
        id: "mon".into(),
        backend: BackendSpec::Socket(SocketSpec {
            addr: SocketAddrSpec::Fd("f".into()),
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
    let mut names = vec![("f".to_string(), OwnedFd::from(ours))];
    let dev = open(&spec, FdSource::Named(&mut names)).expect("chardev on a connected socket");
    let slot = state.add_chardev(dev);
    let m = monitor::attach(state, Some("m".into()), slot, Mode::Control { pretty }).expect("attach");
    (m, peer)
}

fn take_output(state: &mut State, m: usize, into: &mut Vec<u8>) {
    let conn = state.monitor_conn(m).expect("connected");
    into.clear();
    into.extend_from_slice(&conn.out);
    conn.out.clear();
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

/// Not a test: how many pipelined `query-status` the QMP layer (parse, dispatch, reply)
/// answers per second on this machine. `cargo test --release --test qmp_alloc -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn pipelined_query_status_rate() {
    let mut state = State::new();
    let (m, _peer) = qmp_monitor(&mut state, false);
    let mut got = Vec::with_capacity(1 << 20);
    qmp::feed(&mut state, m, b"{\"execute\":\"qmp_capabilities\"}");
    take_output(&mut state, m, &mut got);
    let one = PINGS[0].0;
    // What the loop hands over at a time: 512-byte slices of back-to-back requests.
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * (512 / one.len())).collect();
    let per_batch = 512 / one.len();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(200_000);
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        qmp::feed(&mut state, m, &batch);
        state.monitor_conn(m).expect("connected").out.clear();
    }
    let secs = t.elapsed().as_secs_f64();
    let n = (rounds * per_batch) as f64;
    eprintln!("{n} query-status in {secs:.3} s: {:.0}/s, {:.0} ns each", n / secs, secs * 1e9 / n);
}
