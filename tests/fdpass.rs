//! fd passing end to end (fd-passing.md): the pending-fd queue of a unix-socket monitor
//! connection, getfd/closefd names, chardev-add from a named fd, fd sets (`-add-fd`, `add-fd`,
//! `remove-fd`, `query-fdsets`), fd leaks, TCP monitors, and the same sequences against QEMU 7.2
//! (recorded in `tests/golden/fdpass/`, compared on every run; live too when QEMU is installed).
//!
//! Closing is proven, not assumed: the fd we pass is usually the write end of a pipe whose read
//! end we keep ([`Probe`]); once fdmon has closed its copy (ours is dropped right after sending),
//! the read end reports EOF. fdmon closes what a message or command releases before it sends
//! the reply, so a probe checked right after the reply is settled; only disconnects are waited for.

mod common;

use common::golden::{Golden, Transcript};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use fdmon::json::Value;

const OK: &str = r#"{"return": {}}"#;
const NEG: &str =
    r#"{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#;
const NO_FD: &str = "No file descriptor supplied via SCM_RIGHTS";
const DIGIT: &str = "Parameter 'fdname' expects a name not starting with a digit";

/// `{"error": {"class": "GenericError", "desc": DESC}}`
fn gerr(desc: &str) -> String {
    format!(r#"{{"error": {{"class": "GenericError", "desc": {}}}}}"#, jstr(desc))
}

fn jstr(s: &str) -> String {
    fdmon::json::to_string(&Value::from(s))
}

fn getfd(name: &str) -> String {
    format!(r#"{{"execute":"getfd","arguments":{{"fdname":{}}}}}"#, jstr(name))
}

fn closefd(name: &str) -> String {
    format!(r#"{{"execute":"closefd","arguments":{{"fdname":{}}}}}"#, jstr(name))
}

/// chardev-add of a socket backend on a named fd (the legacy address union of fd-passing.md §4).
fn add_fd_chardev(id: &str, name: &str, extra: &str) -> String {
    format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"socket","data":{{"addr":{{"type":"fd","data":{{"str":"{name}"}}}}{extra}}}}}}}}}"#
    )
}

fn chardev_remove(id: &str) -> String {
    format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"{id}"}}}}"#)
}

const QUERY_CHARDEV: &str = r#"{"execute":"query-chardev"}"#;
const QUERY_FDSETS: &str = r#"{"execute":"query-fdsets"}"#;
const QUERY_NAME: &str = r#"{"execute":"query-name"}"#;
const QUERY_STATUS: &str = r#"{"execute":"query-status"}"#;
const RUNNING: &str = r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#;

/// The read end of a pipe whose write end goes to fdmon.
struct Probe {
    r: OwnedFd,
}

/// A fresh pipe: the probe (read end) and the write end to send.
fn probe() -> (Probe, OwnedFd) {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    let r = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    (Probe { r: owned(p[0]) }, owned(p[1]))
}

fn probes(n: usize) -> (Vec<Probe>, Vec<OwnedFd>) {
    (0..n).map(|_| probe()).unzip()
}

/// Whether the other end of `fd` (pipe or stream socket) is gone: poll for `t`, then a peek.
fn peer_closed(fd: BorrowedFd, t: Duration) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = t.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    if n <= 0 {
        return false;
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return true;
    }
    let mut b = [0u8; 1];
    // SAFETY: recv/read into a 1-byte buffer we own; MSG_PEEK leaves any data in place.
    let r = unsafe { libc::recv(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOTSOCK) {
        // SAFETY: as above, for a pipe (no data is ever written to our probes).
        return unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) } == 0;
    }
    r == 0
}

impl Probe {
    /// fdmon's copy is closed (waits up to TIMEOUT: use where the close is asynchronous).
    fn assert_closed(&self, what: &str) {
        assert!(peer_closed(self.r.as_fd(), TIMEOUT), "{what}: the fd is still open in fdmon");
    }

    /// fdmon's copy is still open. Called right after a reply, when fdmon has done its closing.
    fn assert_open(&self, what: &str) {
        assert!(!peer_closed(self.r.as_fd(), Duration::ZERO), "{what}: fdmon closed the fd");
    }

    /// `pipe:[INODE]`, as /proc shows it in any process.
    fn link(&self) -> String {
        std::fs::read_link(format!("/proc/self/fd/{}", self.r.as_raw_fd())).unwrap().to_string_lossy().into_owned()
    }
}

/// Waits until fdmon's fd count is `want`.
fn wait_count(f: &Fdmon, want: usize, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let last = f.fd_count();
        if last == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: fdmon has {last} fds open, want {want}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// fdmon serving QMP on a socketpair (fd 3), already negotiated.
fn negotiated_pair(extra: &[&str]) -> (Fdmon, Client) {
    let (f, mut c) = qmp_pair(extra);
    c.negotiate();
    (f, c)
}

/// Two QMP monitors on two socketpairs (fds 3 and 4), both negotiated.
fn two_monitors() -> (Fdmon, Client, Client) {
    let (a1, b1) = pair();
    let (a2, b2) = pair();
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-chardev",
            "socket,fd=4,id=mon2",
            "-mon",
            "chardev=mon2,mode=control",
        ],
        vec![OwnedFd::from(b1), OwnedFd::from(b2)],
    );
    let mut c1 = Client::new(a1);
    let mut c2 = Client::new(a2);
    c1.negotiate();
    c2.negotiate();
    (f, c1, c2)
}

// ---------------------------------------------------------------------------------------------
// 1. The pending-fd queue (fd-passing.md §2)
// ---------------------------------------------------------------------------------------------

#[test]
fn pending_fd_survives_other_commands_even_one_rejected_in_negotiation_mode() {
    let (_f, mut c) = qmp_pair(&[]);
    c.line();
    let (p, w) = probe();
    // Before qmp_capabilities: the command is refused, the fd is still received and kept.
    c.send_fds(&getfd("early"), &[&w]);
    drop(w);
    assert_eq!(c.line(), NEG);
    p.assert_open("after a command rejected in negotiation mode");
    assert_eq!(c.cmd(QUERY_NAME), NEG);
    assert_eq!(c.cmd(r#"{"execute":"qmp_capabilities"}"#), OK);
    assert_eq!(c.cmd(QUERY_STATUS), RUNNING);
    assert_eq!(c.cmd(QUERY_NAME), OK);
    p.assert_open("after query-status and query-name without fds");
    // A getfd with no fd attached takes the pending one.
    assert_eq!(c.cmd(&getfd("early")), OK);
    p.assert_open("named 'early'");
    assert_eq!(c.cmd(&getfd("again")), gerr(NO_FD), "the queue is empty after getfd took it");
    assert_eq!(c.cmd(&closefd("early")), OK);
    p.assert_closed("closefd early");
}

#[test]
fn pending_fd_sent_with_any_command_is_taken_by_a_later_getfd() {
    let (_f, mut c) = negotiated_pair(&[]);
    let (p, w) = probe();
    c.send_fds(QUERY_STATUS, &[&w]);
    drop(w);
    assert_eq!(c.line(), RUNNING);
    // Unknown commands, bad arguments and parse errors do not touch the queue either.
    assert_eq!(
        c.cmd(r#"{"execute":"nope"}"#),
        r#"{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"getfd","arguments":{}}"#), gerr("Parameter 'fdname' is missing"));
    assert_eq!(c.cmd(&closefd("nosuch")), gerr("File descriptor named 'nosuch' not found"));
    p.assert_open("pending across other commands");
    assert_eq!(c.cmd(&getfd("pend")), OK);
    assert_eq!(c.cmd(&closefd("pend")), OK);
    p.assert_closed("closefd pend");
}

#[test]
fn a_new_fd_bearing_message_replaces_the_queue_and_closes_the_old_fds() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (pb, wb) = probe();
    c.send_fds(QUERY_STATUS, &[&wb]);
    drop(wb);
    assert_eq!(c.line(), RUNNING);
    assert_eq!(f.fd_count(), base + 1);
    let (pc, wc) = probe();
    let (pd, wd) = probe();
    c.send_fds(QUERY_NAME, &[&wc, &wd]);
    drop((wc, wd));
    assert_eq!(c.line(), OK);
    pb.assert_closed("replaced by the next fd-bearing message");
    pc.assert_open("the new queue, first");
    pd.assert_open("the new queue, second");
    assert_eq!(f.fd_count(), base + 2);
    // And again: both of the previous message's fds go.
    let (pe, we) = probe();
    c.send_fds(QUERY_NAME, &[&we]);
    drop(we);
    assert_eq!(c.line(), OK);
    pc.assert_closed("replaced (first)");
    pd.assert_closed("replaced (second)");
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&getfd("x")), OK);
    assert_eq!(c.cmd(&closefd("x")), OK);
    pe.assert_closed("closefd x");
    assert_eq!(f.fd_count(), base);
}

#[test]
fn several_fds_in_one_message_getfd_takes_the_first_and_closes_the_rest() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ps, ws) = probes(3);
    c.send_fds(&getfd("two"), &[&ws[0], &ws[1], &ws[2]]);
    drop(ws);
    assert_eq!(c.line(), OK);
    ps[0].assert_open("getfd keeps the first fd");
    ps[1].assert_closed("second fd of the message");
    ps[2].assert_closed("third fd of the message");
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&getfd("more")), gerr(NO_FD));
    assert_eq!(c.cmd(&closefd("two")), OK);
    ps[0].assert_closed("closefd two");
    assert_eq!(f.fd_count(), base);
}

#[test]
fn several_fds_pending_add_fd_takes_the_first_and_closes_the_rest() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ps, ws) = probes(3);
    c.send_fds(QUERY_NAME, &[&ws[0], &ws[1], &ws[2]]);
    drop(ws);
    assert_eq!(c.line(), OK);
    assert_eq!(f.fd_count(), base + 3);
    let r = c.cmd(r#"{"execute":"add-fd","arguments":{"fdset-id":5}}"#);
    let n = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {n}, "fdset-id": 5}}}}"#));
    ps[0].assert_open("add-fd keeps the first fd");
    ps[1].assert_closed("second pending fd");
    ps[2].assert_closed("third pending fd");
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(r#"{"execute":"add-fd","arguments":{"fdset-id":5}}"#), gerr(NO_FD));
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":5}}"#), OK);
    ps[0].assert_closed("remove-fd of the set");
    assert_eq!(f.fd_count(), base);
}

#[test]
fn disconnect_closes_the_pending_queue() {
    let dir = TempDir::new("fdq-disc");
    let (f, path) = qmp_server(&dir, &[]);
    let mut c = Client::connect(&path);
    c.negotiate();
    // Settled: one connection open. The count without it is the baseline.
    let connected = f.fd_count();
    let (ps, ws) = probes(2);
    c.send_fds(QUERY_NAME, &[&ws[0], &ws[1]]);
    drop(ws);
    assert_eq!(c.line(), OK);
    assert_eq!(f.fd_count(), connected + 2);
    drop(c);
    ps[0].assert_closed("pending fd after disconnect");
    ps[1].assert_closed("pending fd after disconnect");
    wait_count(&f, connected - 1, "after the client left");
    // The next session starts with an empty queue.
    let mut c = Client::connect(&path);
    c.negotiate();
    assert_eq!(c.cmd(&getfd("x")), gerr(NO_FD));
}

#[test]
fn truncated_fd_message_leaves_no_stale_pending_fd() {
    // More fds than fdmon's control buffer holds (16, QEMU's TCP_MAX_FDS): the kernel closes
    // the excess and sets MSG_CTRUNC. The getfd that came with those fds must not silently
    // name an fd from an EARLIER message.
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (old, w) = probe();
    c.send_fds(QUERY_NAME, &[&w]);
    drop(w);
    assert_eq!(c.line(), OK);
    let (ps, ws) = probes(20);
    let refs: Vec<&dyn AsFd> = ws.iter().map(|w| w as &dyn AsFd).collect();
    c.send_fds(QUERY_NAME, &refs);
    drop(refs);
    drop(ws);
    assert_eq!(c.line(), OK);
    old.assert_closed("the fd pending before a new fd-bearing message (rule 1)");
    for (i, p) in ps.iter().enumerate().skip(16) {
        p.assert_closed(&format!("fd {i} of a truncated 20-fd message"));
    }
    // As QEMU 7.2: the 16 that arrived are pending; getfd names the first, closes the rest.
    assert_eq!(c.cmd(&getfd("stale")), OK);
    ps[0].assert_open("the first fd of the truncated message");
    for (i, p) in ps.iter().enumerate().skip(1) {
        p.assert_closed(&format!("fd {i} of a truncated 20-fd message"));
    }
    assert_eq!(c.cmd(&closefd("stale")), OK);
    ps[0].assert_closed("closefd");
    assert_eq!(f.fd_count(), base);
}

// ---------------------------------------------------------------------------------------------
// 2. getfd / closefd (fd-passing.md §3)
// ---------------------------------------------------------------------------------------------

#[test]
fn getfd_existing_name_replaces_and_closes_the_old_fd() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (p1, w1) = probe();
    c.send_fds(&getfd("n"), &[&w1]);
    drop(w1);
    assert_eq!(c.line(), OK);
    let (p2, w2) = probe();
    c.send_fds(&getfd("n"), &[&w2]);
    drop(w2);
    assert_eq!(c.line(), OK);
    p1.assert_closed("the fd previously named 'n'");
    p2.assert_open("the fd now named 'n'");
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&closefd("n")), OK);
    p2.assert_closed("closefd n");
    assert_eq!(c.cmd(&closefd("n")), gerr("File descriptor named 'n' not found"));
    assert_eq!(f.fd_count(), base);
}

#[test]
fn getfd_digit_leading_name_is_an_error_and_the_fd_is_closed() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (p, w) = probe();
    c.send_fds(&getfd("1abc"), &[&w]);
    drop(w);
    assert_eq!(c.line(), gerr(DIGIT));
    p.assert_closed("the fd sent with a digit-leading name");
    // Consumed: nothing pending afterwards.
    assert_eq!(c.cmd(&getfd("abc")), gerr(NO_FD));
    // Also when the fd was pending from an earlier message.
    let (p, w) = probe();
    c.send_fds(QUERY_NAME, &[&w]);
    drop(w);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&getfd("9")), gerr(DIGIT));
    p.assert_closed("the pending fd taken by a digit-leading getfd");
    assert_eq!(c.cmd(&closefd("9")), gerr("File descriptor named '9' not found"));
    assert_eq!(f.fd_count(), base);
}

#[test]
fn getfd_without_fd_is_checked_before_the_digit_rule() {
    let (_f, mut c) = negotiated_pair(&[]);
    assert_eq!(c.cmd(&getfd("myfd")), gerr(NO_FD));
    assert_eq!(c.cmd(&getfd("1abc")), gerr(NO_FD));
    assert_eq!(c.cmd(&getfd("")), gerr(NO_FD));
    assert_eq!(c.cmd(r#"{"execute":"getfd","arguments":{}}"#), gerr("Parameter 'fdname' is missing"));
}

#[test]
fn closefd_of_an_unknown_name() {
    let (_f, mut c) = negotiated_pair(&[]);
    assert_eq!(c.cmd(&closefd("nosuch")), gerr("File descriptor named 'nosuch' not found"));
    assert_eq!(c.cmd(&closefd("")), gerr("File descriptor named '' not found"));
}

#[test]
fn getfd_names_empty_and_with_odd_characters_are_accepted() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (pe, we) = probe();
    c.send_fds(&getfd(""), &[&we]);
    drop(we);
    assert_eq!(c.line(), OK);
    let (po, wo) = probe();
    c.send_fds(&getfd("a b/c,d=e"), &[&wo]);
    drop(wo);
    assert_eq!(c.line(), OK);
    assert_eq!(f.fd_count(), base + 2);
    assert_eq!(c.cmd(&closefd("a b/c,d=e")), OK);
    po.assert_closed("closefd 'a b/c,d=e'");
    pe.assert_open("the fd named ''");
    assert_eq!(c.cmd(&closefd("")), OK);
    pe.assert_closed("closefd ''");
    assert_eq!(f.fd_count(), base);
}

#[test]
fn getfd_names_survive_a_reconnect_on_a_server_chardev() {
    let dir = TempDir::new("fdnames");
    let (_f, path) = qmp_server(&dir, &[]);
    let mut c = Client::connect(&path);
    c.negotiate();
    let (p, w) = probe();
    c.send_fds(&getfd("kept"), &[&w]);
    drop(w);
    assert_eq!(c.line(), OK);
    drop(c);
    // Session 2 on the same monitor.
    let mut c = Client::connect(&path);
    c.negotiate();
    p.assert_open("named fd after the client left");
    assert_eq!(c.cmd(&closefd("kept")), OK);
    p.assert_closed("closefd in session 2");
    assert_eq!(c.cmd(&closefd("kept")), gerr("File descriptor named 'kept' not found"));
}

#[test]
fn getfd_names_are_per_monitor() {
    let (_f, mut c1, mut c2) = two_monitors();
    let (p, w) = probe();
    c1.send_fds(&getfd("m1"), &[&w]);
    drop(w);
    assert_eq!(c1.line(), OK);
    assert_eq!(c2.cmd(&closefd("m1")), gerr("File descriptor named 'm1' not found"));
    assert_eq!(
        c2.cmd(&add_fd_chardev("c", "m1", "")),
        gerr("Failed to add chardev 'c': File descriptor named 'm1' has not been found")
    );
    p.assert_open("a name of monitor 1 after monitor 2 tried it");
    // The pending queue is per connection too: an fd sent to monitor 1 is not monitor 2's.
    let (q, w) = probe();
    c1.send_fds(QUERY_NAME, &[&w]);
    drop(w);
    assert_eq!(c1.line(), OK);
    assert_eq!(c2.cmd(&getfd("x")), gerr(NO_FD));
    q.assert_open("pending on monitor 1");
    assert_eq!(c1.cmd(&closefd("m1")), OK);
    p.assert_closed("closefd on monitor 1");
    assert_eq!(c1.cmd(&getfd("x")), OK);
    assert_eq!(c1.cmd(&closefd("x")), OK);
    q.assert_closed("closefd x on monitor 1");
}

// ---------------------------------------------------------------------------------------------
// 3. chardev-add from a named fd (fd-passing.md §4)
// ---------------------------------------------------------------------------------------------

fn chardev_line(entries: &[(bool, &str, &str)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(open, file, label)| {
            format!(r#"{{"frontend-open": {open}, "filename": {}, "label": "{label}"}}"#, jstr(file))
        })
        .collect();
    format!(r#"{{"return": [{}]}}"#, items.join(", "))
}

#[test]
fn chardev_add_from_a_passed_listening_socket() {
    let dir = TempDir::new("cdfd-listen");
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let path = dir.path("rt.sock");
    let p = path.to_string_lossy().into_owned();
    let l = UnixListener::bind(&path).unwrap();
    c.send_fds(&getfd("myfd"), &[&l]);
    drop(l);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&add_fd_chardev("c1", "myfd", r#","server":true,"wait":false"#)), OK);
    assert_eq!(
        c.cmd(QUERY_CHARDEV),
        chardev_line(&[(false, &format!("disconnected:unix:{p},server=on"), "c1"), (true, "unix:", "mon")])
    );
    // The lookup consumed the name.
    assert_eq!(c.cmd(&closefd("myfd")), gerr("File descriptor named 'myfd' not found"));
    assert_eq!(
        c.cmd(&add_fd_chardev("c1b", "myfd", r#","server":true,"wait":false"#)),
        gerr("Failed to add chardev 'c1b': File descriptor named 'myfd' has not been found")
    );
    assert_eq!(f.fd_count(), base + 1);
    // A real client of the new chardev is accepted (nothing serves it).
    let mut peer = Client::connect(&path);
    let want = chardev_line(&[(false, &format!("unix:{p},server=on"), "c1"), (true, "unix:", "mon")]);
    let mut last = String::new();
    wait_until("the client of c1 to be accepted", || {
        last = c.cmd(QUERY_CHARDEV);
        last == want
    });
    assert_eq!(f.fd_count(), base + 2);
    peer.expect_silence();
    // chardev-remove closes the connection and the listener.
    assert_eq!(c.cmd(&chardev_remove("c1")), OK);
    peer.expect_eof();
    assert_eq!(f.fd_count(), base);
    assert_eq!(c.cmd(QUERY_CHARDEV), chardev_line(&[(true, "unix:", "mon")]));
    assert_eq!(
        UnixStream::connect(&path).map_err(|e| e.raw_os_error()).err(),
        Some(Some(libc::ECONNREFUSED)),
        "the listener is closed"
    );
}

#[test]
fn chardev_add_defaults_to_a_nonblocking_server() {
    let dir = TempDir::new("cdfd-default");
    let (_f, mut c) = negotiated_pair(&[]);
    let path = dir.path("d.sock");
    let p = path.to_string_lossy().into_owned();
    let l = UnixListener::bind(&path).unwrap();
    c.send_fds(&getfd("lf"), &[&l]);
    drop(l);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&add_fd_chardev("d", "lf", "")), OK);
    assert_eq!(
        c.cmd(QUERY_CHARDEV),
        // QEMU's hash-table order (see chardev::order).
        chardev_line(&[(false, &format!("disconnected:unix:{p},server=on"), "d"), (true, "unix:", "mon")])
    );
}

#[test]
fn chardev_add_from_a_connected_socket_in_client_mode() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ours, theirs) = pair();
    c.send_fds(&getfd("sp"), &[&theirs]);
    drop(theirs);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&add_fd_chardev("c3", "sp", r#","server":false"#)), OK);
    assert_eq!(c.cmd(QUERY_CHARDEV), chardev_line(&[(false, "unix:", "c3"), (true, "unix:", "mon")]));
    assert_eq!(c.cmd(&closefd("sp")), gerr("File descriptor named 'sp' not found"));
    let mut peer = Client::new(ours);
    peer.expect_silence();
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&chardev_remove("c3")), OK);
    peer.expect_eof();
    assert_eq!(f.fd_count(), base);
}

#[test]
fn chardev_add_from_a_regular_file_or_pipe_is_not_a_socket_and_closes_it() {
    let dir = TempDir::new("cdfd-file");
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let file = std::fs::File::create(dir.path("plain")).unwrap();
    c.send_fds(&getfd("file"), &[&file]);
    drop(file);
    assert_eq!(c.line(), OK);
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(
        c.cmd(&add_fd_chardev("c2", "file", "")),
        gerr("Failed to add chardev 'c2': File descriptor 'file' is not a socket")
    );
    assert_eq!(f.fd_count(), base, "the file's fd is closed");
    assert_eq!(c.cmd(&closefd("file")), gerr("File descriptor named 'file' not found"));
    let (p, w) = probe();
    c.send_fds(&getfd("pipe"), &[&w]);
    drop(w);
    assert_eq!(c.line(), OK);
    assert_eq!(
        c.cmd(&add_fd_chardev("c2", "pipe", r#","server":false"#)),
        gerr("Failed to add chardev 'c2': File descriptor 'pipe' is not a socket")
    );
    p.assert_closed("a pipe given to a socket chardev");
    assert_eq!(c.cmd(QUERY_CHARDEV), chardev_line(&[(true, "unix:", "mon")]));
}

#[test]
fn chardev_add_connected_socket_as_server_cannot_listen() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ours, theirs) = pair();
    c.send_fds(&getfd("conn"), &[&theirs]);
    drop(theirs);
    assert_eq!(c.line(), OK);
    assert_eq!(
        c.cmd(&add_fd_chardev("c4", "conn", r#","server":true,"wait":false"#)),
        gerr("Failed to add chardev 'c4': Failed to listen on fd socket: Invalid argument")
    );
    assert!(peer_closed(ours.as_fd(), TIMEOUT), "the socket is closed after the failed listen");
    assert_eq!(c.cmd(&closefd("conn")), gerr("File descriptor named 'conn' not found"));
    assert_eq!(f.fd_count(), base);
}

#[test]
fn chardev_add_with_a_numeric_fd_string_is_a_name_lookup() {
    // fd 3 is open in fdmon (it is this very monitor): at run time "3" is still only a name.
    let (_f, mut c) = negotiated_pair(&[]);
    assert_eq!(
        c.cmd(&add_fd_chardev("c2", "3", "")),
        gerr("Failed to add chardev 'c2': File descriptor named '3' has not been found")
    );
    assert_eq!(
        c.cmd(&add_fd_chardev("c2", "nosuch", "")),
        gerr("Failed to add chardev 'c2': File descriptor named 'nosuch' has not been found")
    );
    assert_eq!(c.cmd(QUERY_STATUS), RUNNING);
}

#[test]
fn chardev_add_with_missing_tls_creds_leaves_the_name_in_place() {
    let dir = TempDir::new("cdfd-tls");
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let path = dir.path("t.sock");
    let l = UnixListener::bind(&path).unwrap();
    c.send_fds(&getfd("myfd"), &[&l]);
    drop(l);
    assert_eq!(c.line(), OK);
    assert_eq!(
        c.cmd(&add_fd_chardev("c6", "myfd", r#","server":true,"wait":false,"tls-creds":"tls0""#)),
        gerr("Failed to add chardev 'c6': No TLS credentials with id 'tls0'")
    );
    assert_eq!(f.fd_count(), base + 1);
    // Still named: the next chardev-add can use it.
    assert_eq!(c.cmd(&add_fd_chardev("c6", "myfd", r#","server":true,"wait":false"#)), OK);
    assert_eq!(c.cmd(&closefd("myfd")), gerr("File descriptor named 'myfd' not found"));
}

#[test]
fn chardev_add_duplicate_id_does_not_consume_the_name() {
    // fdmon's message differs from QEMU's on purpose; the name survives in both.
    let dir = TempDir::new("cdfd-dup");
    let (_f, mut c) = negotiated_pair(&[]);
    let l = UnixListener::bind(dir.path("a.sock")).unwrap();
    c.send_fds(&getfd("lf"), &[&l]);
    drop(l);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&add_fd_chardev("mon", "lf", "")), gerr("Chardev with id 'mon' already exists"));
    assert_eq!(c.cmd(&closefd("lf")), OK);
}

// ---------------------------------------------------------------------------------------------
// 4. fd sets (fd-passing.md §5)
// ---------------------------------------------------------------------------------------------

/// The `fd` member of an add-fd reply.
fn add_fd_number(reply: &str) -> i64 {
    let v = parse(reply);
    let r = v.as_object().and_then(|o| o.get("return")).and_then(Value::as_object);
    r.and_then(|o| o.get("fd")).and_then(Value::as_i64).unwrap_or_else(|| panic!("not an add-fd reply: {reply}"))
}

/// fd numbers of `query-fdsets`, set by set.
fn fdset_numbers(reply: &str) -> Vec<(i64, Vec<i64>)> {
    let v = parse(reply);
    let sets = v.as_object().and_then(|o| o.get("return")).and_then(Value::as_array).expect("query-fdsets reply");
    sets.iter()
        .map(|s| {
            let s = s.as_object().unwrap();
            let fds = s.get("fds").unwrap().as_array().unwrap();
            let nums = fds.iter().map(|e| e.as_object().unwrap().get("fd").unwrap().as_i64().unwrap()).collect();
            (s.get("fdset-id").unwrap().as_i64().unwrap(), nums)
        })
        .collect()
}

fn proc_link(pid: i32, fd: i64) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok().map(|p| p.to_string_lossy().into_owned())
}

/// How many fds of process `pid` refer to the same open file as `link`.
fn refs_to(pid: i32, link: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|l| l.to_string_lossy() == link)
        .count()
}

fn cloexec(pid: i32, fd: i64) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
    u32::from_str_radix(flags, 8).unwrap() & libc::O_CLOEXEC as u32 != 0
}

#[test]
fn cli_add_fd_moves_inherited_fds_into_sets() {
    let (a, b) = pair();
    let (ps, ws) = probes(3);
    let links: Vec<String> = ps.iter().map(Probe::link).collect();
    let mut fds = vec![OwnedFd::from(b)];
    fds.extend(ws);
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-add-fd",
            "fd=4,set=2,opaque=cli-A",
            "-add-fd",
            "fd=5,set=2",
            "-add-fd",
            "fd=6,set=7,opaque=rdonly",
        ],
        fds,
    );
    let mut c = Client::new(a);
    c.negotiate();
    let r = c.cmd(QUERY_FDSETS);
    let sets = fdset_numbers(&r);
    assert_eq!(sets.len(), 2, "{r}");
    let (n7, n2a, n2b) = (sets[0].1[0], sets[1].1[0], sets[1].1[1]);
    assert_eq!(
        r,
        format!(
            r#"{{"return": [{{"fds": [{{"fd": {n7}, "opaque": "rdonly"}}], "fdset-id": 7}}, {{"fds": [{{"fd": {n2a}, "opaque": "cli-A"}}, {{"fd": {n2b}}}], "fdset-id": 2}}]}}"#
        )
    );
    // Each listed number is a copy of the fd we passed, the only one left in fdmon (the
    // original number was closed), and close-on-exec.
    for (n, link, orig) in [(n2a, &links[0], 4), (n2b, &links[1], 5), (n7, &links[2], 6)] {
        assert_eq!(proc_link(f.pid(), n).as_ref(), Some(link), "fd {n} of the set (passed as {orig})");
        assert_eq!(refs_to(f.pid(), link), 1, "fdmon holds exactly one copy of the fd passed as {orig}");
        assert!(cloexec(f.pid(), n), "the copy {n} of fd {orig} is close-on-exec");
    }
    for p in &ps {
        p.assert_open("an fd in a set");
    }
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#), OK);
    ps[0].assert_closed("remove-fd of set 2");
    ps[1].assert_closed("remove-fd of set 2");
    ps[2].assert_open("set 7 is untouched");
}

#[test]
fn add_fd_query_fdsets_and_remove_fd() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ps, ws) = probes(6);
    let mut ws = ws.into_iter();
    let mut add = |c: &mut Client, args: &str| {
        let w = ws.next().unwrap();
        c.send_fds(&format!(r#"{{"execute":"add-fd","arguments":{args}}}"#), &[&w]);
        c.line()
    };
    let r = add(&mut c, r#"{"fdset-id":2,"opaque":"qmp-D"}"#);
    let d = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {d}, "fdset-id": 2}}}}"#));
    // The returned number is fdmon's own fd for it.
    assert_eq!(proc_link(f.pid(), d), Some(ps[0].link()));
    let r = add(&mut c, "{}");
    let e = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {e}, "fdset-id": 0}}}}"#), "lowest free id");
    let r = add(&mut c, r#"{"opaque":"x"}"#);
    let x = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {x}, "fdset-id": 1}}}}"#));
    let r = add(&mut c, r#"{"fdset-id":2}"#);
    let g = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {g}, "fdset-id": 2}}}}"#));
    let r = add(&mut c, "{}");
    let h = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {h}, "fdset-id": 3}}}}"#), "0, 1, 2 are taken");
    // A negative id: error, and the fd is consumed.
    assert_eq!(add(&mut c, r#"{"fdset-id":-1}"#), gerr("Parameter 'fdset-id' expects a non-negative value"));
    ps[5].assert_closed("the fd of add-fd with a negative id");
    assert_eq!(c.cmd(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#), gerr(NO_FD));
    assert_eq!(c.cmd(r#"{"execute":"add-fd","arguments":{"fdset-id":-1}}"#), gerr(NO_FD), "fd checked first");
    assert_eq!(f.fd_count(), base + 5);
    assert_eq!(
        c.cmd(QUERY_FDSETS),
        format!(
            r#"{{"return": [{{"fds": [{{"fd": {h}}}], "fdset-id": 3}}, {{"fds": [{{"fd": {d}, "opaque": "qmp-D"}}, {{"fd": {g}}}], "fdset-id": 2}}, {{"fds": [{{"fd": {x}, "opaque": "x"}}], "fdset-id": 1}}, {{"fds": [{{"fd": {e}}}], "fdset-id": 0}}]}}"#
        )
    );
    // remove-fd errors.
    assert_eq!(
        c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":2,"fd":999}}"#),
        gerr("File descriptor named 'fdset-id:2, fd:999' not found")
    );
    assert_eq!(
        c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":99}}"#),
        gerr("File descriptor named 'fdset-id:99' not found")
    );
    assert_eq!(
        c.cmd(&format!(r#"{{"execute":"remove-fd","arguments":{{"fdset-id":1,"fd":{e}}}}}"#)),
        gerr(&format!("File descriptor named 'fdset-id:1, fd:{e}' not found")),
        "an fd of another set"
    );
    // One fd of a set.
    assert_eq!(c.cmd(&format!(r#"{{"execute":"remove-fd","arguments":{{"fdset-id":2,"fd":{d}}}}}"#)), OK);
    ps[0].assert_closed("remove-fd of one fd");
    ps[3].assert_open("the other fd of set 2");
    // The last fd of a set: the set goes.
    assert_eq!(c.cmd(&format!(r#"{{"execute":"remove-fd","arguments":{{"fdset-id":1,"fd":{x}}}}}"#)), OK);
    ps[2].assert_closed("remove-fd of the last fd of set 1");
    // A whole set.
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":0}}"#), OK);
    ps[1].assert_closed("remove-fd of set 0");
    assert_eq!(
        c.cmd(QUERY_FDSETS),
        format!(
            r#"{{"return": [{{"fds": [{{"fd": {h}}}], "fdset-id": 3}}, {{"fds": [{{"fd": {g}}}], "fdset-id": 2}}]}}"#
        )
    );
    assert_eq!(
        c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":0}}"#),
        gerr("File descriptor named 'fdset-id:0' not found")
    );
    // The lowest free id is now 0 again.
    let (p, w) = probe();
    c.send_fds(r#"{"execute":"add-fd"}"#, &[&w]);
    drop(w);
    let r = c.line();
    let z = add_fd_number(&r);
    assert_eq!(r, format!(r#"{{"return": {{"fd": {z}, "fdset-id": 0}}}}"#));
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":0}}"#), OK);
    p.assert_closed("remove-fd of the new set 0");
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#), OK);
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":3}}"#), OK);
    ps[3].assert_closed("set 2");
    ps[4].assert_closed("set 3");
    assert_eq!(c.cmd(QUERY_FDSETS), r#"{"return": []}"#);
    assert_eq!(f.fd_count(), base);
}

/// `-add-fd` command-line errors: (args, fds to pass at 3.., stderr after the program name).
fn cli_add_fd_cases() -> Vec<(Vec<&'static str>, usize, &'static str)> {
    vec![
        (vec!["-add-fd", "fd=99,set=1"], 0, "-add-fd fd=99,set=1: fd is not valid or already in use"),
        // Not inherited: fd 3 is, 4 and up are whatever the program opened itself (fdmon's signal
        // self-pipe): never adopted.
        (vec!["-add-fd", "fd=4,set=1"], 1, "-add-fd fd=4,set=1: fd is not valid or already in use"),
        (vec!["-add-fd", "fd=5,set=1"], 1, "-add-fd fd=5,set=1: fd is not valid or already in use"),
        (vec!["-add-fd", "fd=6,set=1"], 1, "-add-fd fd=6,set=1: fd is not valid or already in use"),
        (vec!["-add-fd", "fd=0,set=1"], 0, "-add-fd fd=0,set=1: fd cannot be a standard I/O stream"),
        (vec!["-add-fd", "fd=1,set=1"], 0, "-add-fd fd=1,set=1: fd cannot be a standard I/O stream"),
        (vec!["-add-fd", "fd=2,set=1"], 0, "-add-fd fd=2,set=1: fd cannot be a standard I/O stream"),
        (vec!["-add-fd", "fd=3"], 1, "-add-fd fd=3: set option is required and must be non-negative"),
        (vec!["-add-fd", "fd=3,set=-1"], 1, "-add-fd fd=3,set=-1: set option is required and must be non-negative"),
        (vec!["-add-fd", "set=1"], 1, "-add-fd set=1: fd option is required and must be non-negative"),
        (vec!["-add-fd", "fd=-1,set=1"], 1, "-add-fd fd=-1,set=1: fd option is required and must be non-negative"),
        (vec!["-add-fd", "fd=x,set=1"], 1, "-add-fd fd=x,set=1: Parameter 'fd' expects a number"),
        (vec!["-add-fd", "fd=3,set=1,bogus=1"], 1, "-add-fd fd=3,set=1,bogus=1: Invalid parameter 'bogus'"),
    ]
}

#[test]
fn cli_add_fd_errors_exit_1_with_exact_stderr() {
    let cases = cli_add_fd_cases();
    for (args, nfds, want) in cases {
        let fds: Vec<OwnedFd> = (0..nfds).map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap())).collect();
        let (code, out, err) = run_with_fds(&args, fds);
        assert_eq!((code, out.as_str(), err.as_str()), (Some(1), "", format!("fdmon: {want}\n").as_str()), "{args:?}");
    }
}

#[test]
fn cli_add_fd_same_fd_in_two_sets() {
    let (a, b) = pair();
    let (p, w) = probe();
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-add-fd",
            "fd=4,set=1",
            "-add-fd",
            "fd=4,set=2,opaque=again",
        ],
        vec![OwnedFd::from(b), w],
    );
    let mut c = Client::new(a);
    c.negotiate();
    let r = c.cmd(QUERY_FDSETS);
    let sets = fdset_numbers(&r);
    let (n2, n1) = (sets[0].1[0], sets[1].1[0]);
    assert_eq!(
        r,
        format!(
            r#"{{"return": [{{"fds": [{{"fd": {n2}, "opaque": "again"}}], "fdset-id": 2}}, {{"fds": [{{"fd": {n1}}}], "fdset-id": 1}}]}}"#
        )
    );
    assert_ne!(n1, n2);
    // Two copies, the original number closed.
    assert_eq!(refs_to(f.pid(), &p.link()), 2);
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":1}}"#), OK);
    p.assert_open("the copy in set 2");
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#), OK);
    p.assert_closed("both copies removed");
}

/// fdmon serving QMP on an inherited listener (fd 3) with `-add-fd fd=4,set=1,opaque=cli` for
/// a pipe: returns the process, the socket path and the pipe's probe.
fn server_with_cli_fdset(dir: &TempDir, extra: &[&str]) -> (Fdmon, std::path::PathBuf, Probe) {
    let (l, path) = listener(dir, "qmp.sock");
    let (p, w) = probe();
    let mut args: Vec<&str> = QMP_ARGS.to_vec();
    args.extend_from_slice(&["-add-fd", "fd=4,set=1,opaque=cli"]);
    args.extend_from_slice(extra);
    (spawn_with_fds(&args, vec![OwnedFd::from(l), w]), path, p)
}

fn add_fd_with_probe(c: &mut Client, args: &str) -> (Probe, i64) {
    let (p, w) = probe();
    c.send_fds(&format!(r#"{{"execute":"add-fd","arguments":{args}}}"#), &[&w]);
    drop(w);
    let n = add_fd_number(&c.line());
    (p, n)
}

#[test]
fn fd_sets_close_when_the_last_client_leaves_while_running() {
    // QEMU 7.2's rule (README): every fd set goes when the last monitor client disconnects in
    // the running state.
    let dir = TempDir::new("fdsets-last");
    let (f, path, pc) = server_with_cli_fdset(&dir, &[]);
    let mut c = Client::connect(&path);
    c.negotiate();
    let (pq, q) = add_fd_with_probe(&mut c, r#"{"fdset-id":1,"opaque":"qmp"}"#);
    let (pz, _) = add_fd_with_probe(&mut c, "{}");
    let r = c.cmd(QUERY_FDSETS);
    let sets = fdset_numbers(&r);
    let (n, z) = (sets[0].1[0], sets[1].1[0]);
    assert_eq!(
        r,
        format!(
            r#"{{"return": [{{"fds": [{{"fd": {n}, "opaque": "cli"}}, {{"fd": {q}, "opaque": "qmp"}}], "fdset-id": 1}}, {{"fds": [{{"fd": {z}}}], "fdset-id": 0}}]}}"#
        )
    );
    let connected = f.fd_count();
    drop(c);
    pc.assert_closed("-add-fd fd after the last client left");
    pq.assert_closed("add-fd fd after the last client left");
    pz.assert_closed("add-fd fd in set 0 after the last client left");
    wait_count(&f, connected - 4, "after the last client left");
    let mut c = Client::connect(&path);
    c.negotiate();
    assert_eq!(c.cmd(QUERY_FDSETS), r#"{"return": []}"#);
}

#[test]
fn fd_sets_survive_a_disconnect_when_not_running() {
    let dir = TempDir::new("fdsets-keep");
    let (_f, path, pc) = server_with_cli_fdset(&dir, &["-S"]);
    let mut c = Client::connect(&path);
    c.negotiate();
    let (pq, _) = add_fd_with_probe(&mut c, r#"{"fdset-id":1}"#);
    let r = c.cmd(QUERY_FDSETS);
    drop(c);
    let mut c = Client::connect(&path);
    c.negotiate();
    assert_eq!(c.cmd(QUERY_FDSETS), r, "prelaunch: the sets survive");
    pc.assert_open("-add-fd fd, prelaunch");
    pq.assert_open("add-fd fd, prelaunch");
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), OK);
    // Entering running closes nothing by itself; the next last-client-leaves does.
    assert_eq!(c.cmd(QUERY_FDSETS), r);
    drop(c);
    pc.assert_closed("-add-fd fd once the last client left while running");
    pq.assert_closed("add-fd fd once the last client left while running");
}

#[test]
fn fd_sets_survive_while_another_monitor_client_is_connected() {
    let dir = TempDir::new("fdsets-other");
    let (l, path) = listener(&dir, "qmp.sock");
    let (a, b) = pair();
    let f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,server=on,wait=off,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-chardev",
            "socket,fd=4,id=mon2",
            "-mon",
            "chardev=mon2,mode=control",
        ],
        vec![OwnedFd::from(l), OwnedFd::from(b)],
    );
    let mut other = Client::new(a);
    other.negotiate();
    let mut c = Client::connect(&path);
    c.negotiate();
    let (p, _) = add_fd_with_probe(&mut c, r#"{"fdset-id":1}"#);
    let r = c.cmd(QUERY_FDSETS);
    drop(c);
    // A new session on the same monitor is served only after the old one was dropped.
    let mut c = Client::connect(&path);
    c.negotiate();
    assert_eq!(other.cmd(QUERY_FDSETS), r);
    p.assert_open("the monitor on fd 4 is still connected");
    drop(c);
    drop(other);
    p.assert_closed("no client left");
    drop(f);
}

#[test]
fn remove_fd_while_not_running_only_marks() {
    let (_f, mut c) = negotiated_pair(&["-S"]);
    let (p, n) = add_fd_with_probe(&mut c, r#"{"fdset-id":1}"#);
    let listed = format!(r#"{{"return": [{{"fds": [{{"fd": {n}}}], "fdset-id": 1}}]}}"#);
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":1}}"#), OK);
    assert_eq!(c.cmd(QUERY_FDSETS), listed, "marked, still listed");
    p.assert_open("remove-fd in prelaunch");
    // A marked fd still counts for another remove-fd.
    assert_eq!(c.cmd(&format!(r#"{{"execute":"remove-fd","arguments":{{"fdset-id":1,"fd":{n}}}}}"#)), OK);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(QUERY_FDSETS), listed, "cont alone does not clean up");
    p.assert_open("after cont");
    assert_eq!(c.cmd(r#"{"execute":"remove-fd","arguments":{"fdset-id":1}}"#), OK);
    p.assert_closed("remove-fd while running");
    assert_eq!(c.cmd(QUERY_FDSETS), r#"{"return": []}"#);
}

// ---------------------------------------------------------------------------------------------
// 5. Leaks
// ---------------------------------------------------------------------------------------------

#[test]
fn no_leak_after_a_flood_of_fd_bearing_messages() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let null = std::fs::File::open("/dev/null").unwrap();
    // 200 messages of 3 fds each, in windows of 10 so little is in flight at once.
    for round in 0..20 {
        for i in 0..10 {
            c.send_fds(&format!(r#"{{"execute":"query-name","id":{}}}"#, round * 10 + i), &[&null, &null, &null]);
        }
        for i in 0..10 {
            assert_eq!(c.line(), format!(r#"{{"return": {{}}, "id": {}}}"#, round * 10 + i));
        }
    }
    // Only the last message's three fds are pending.
    assert_eq!(f.fd_count(), base + 3);
    assert_eq!(c.cmd(&getfd("last")), OK);
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&closefd("last")), OK);
    assert_eq!(f.fd_count(), base);
}

#[test]
fn no_leak_from_a_message_with_more_fds_than_the_control_buffer() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let (ps, ws) = probes(20);
    let refs: Vec<&dyn AsFd> = ws.iter().map(|w| w as &dyn AsFd).collect();
    c.send_fds(QUERY_NAME, &refs);
    drop(refs);
    drop(ws);
    assert_eq!(c.line(), OK);
    // The connection still works, and a getfd naming what arrived (if anything) is closable.
    if c.cmd(&getfd("t")) == OK {
        assert_eq!(c.cmd(&closefd("t")), OK);
    }
    for (i, p) in ps.iter().enumerate() {
        p.assert_closed(&format!("fd {i} of 20"));
    }
    assert_eq!(f.fd_count(), base);
    // Exactly the limit is fine.
    let (ps, ws) = probes(16);
    let refs: Vec<&dyn AsFd> = ws.iter().map(|w| w as &dyn AsFd).collect();
    c.send_fds(&getfd("sixteen"), &refs);
    drop(refs);
    drop(ws);
    assert_eq!(c.line(), OK);
    ps[0].assert_open("first of 16");
    for p in &ps[1..] {
        p.assert_closed("the rest of 16");
    }
    assert_eq!(c.cmd(&closefd("sixteen")), OK);
    assert_eq!(f.fd_count(), base);
}

#[test]
fn no_leak_when_clients_disconnect_with_pending_fds() {
    let dir = TempDir::new("fdleak-disc");
    let (f, path) = qmp_server(&dir, &[]);
    // Settle: one session completed, so everything lazily opened is open.
    let mut c = Client::connect(&path);
    c.negotiate();
    drop(c);
    let mut c = Client::connect(&path);
    c.negotiate();
    let connected = f.fd_count();
    drop(c);
    wait_count(&f, connected - 1, "after the first session");
    let base = connected - 1;
    let null = std::fs::File::open("/dev/null").unwrap();
    for i in 0..50 {
        let mut c = Client::connect(&path);
        c.negotiate();
        c.send_fds(QUERY_NAME, &[&null, &null]);
        assert_eq!(c.line(), OK, "session {i}");
        if i % 2 == 0 {
            // Half of them also leave half a request behind.
            c.send(r#"{"execute":"getfd","argu"#);
        }
        drop(c);
        wait_count(&f, base, &format!("after session {i}"));
    }
}

#[test]
fn no_leak_from_getfd_closefd_cycles() {
    let (f, mut c) = negotiated_pair(&[]);
    let base = f.fd_count();
    let null = std::fs::File::open("/dev/null").unwrap();
    for i in 0..100 {
        let name = format!("n{i}");
        c.send_fds(&getfd(&name), &[&null, &null]);
        assert_eq!(c.line(), OK);
        assert_eq!(c.cmd(&closefd(&name)), OK);
    }
    assert_eq!(f.fd_count(), base);
    // Replacing one name over and over, and digit-leading names.
    for _ in 0..100 {
        c.send_fds(&getfd("same"), &[&null]);
        assert_eq!(c.line(), OK);
        c.send_fds(&getfd("0bad"), &[&null]);
        assert_eq!(c.line(), gerr(DIGIT));
    }
    assert_eq!(f.fd_count(), base + 1);
    assert_eq!(c.cmd(&closefd("same")), OK);
    assert_eq!(f.fd_count(), base);
}

// ---------------------------------------------------------------------------------------------
// 6. A TCP monitor never receives fds
// ---------------------------------------------------------------------------------------------

/// A minimal line reader over TCP.
struct TcpClient {
    s: TcpStream,
    buf: Vec<u8>,
}

impl TcpClient {
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&l[..i]).into_owned();
            }
            let mut tmp = [0u8; 4096];
            let n = self.s.read(&mut tmp).expect("read from the TCP monitor");
            assert!(n > 0, "EOF; have {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    fn cmd(&mut self, req: &str) -> String {
        self.s.write_all(req.as_bytes()).unwrap();
        self.line()
    }
}

#[test]
fn tcp_monitor_never_gets_fds() {
    let (a, b) = pair();
    let _f = spawn_with_fds(
        &[
            "-chardev",
            "socket,fd=3,id=mon",
            "-mon",
            "chardev=mon,mode=control",
            "-chardev",
            "socket,host=127.0.0.1,port=0,server=on,wait=off,id=t",
            "-mon",
            "chardev=t,mode=control",
        ],
        vec![OwnedFd::from(b)],
    );
    let mut u = Client::new(a);
    u.negotiate();
    let r = u.cmd(QUERY_CHARDEV);
    let pre = "disconnected:tcp:127.0.0.1:";
    let i = r.find(pre).unwrap_or_else(|| panic!("no TCP listener in {r}"));
    let port: u16 = r[i + pre.len()..].split(',').next().unwrap().parse().unwrap();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut t = TcpClient { s, buf: Vec::new() };
    assert!(t.line().starts_with(r#"{"QMP": "#));
    assert_eq!(t.cmd(r#"{"execute":"qmp_capabilities"}"#), OK);
    assert_eq!(t.cmd(&getfd("x")), gerr(NO_FD));
    assert_eq!(t.cmd(r#"{"execute":"add-fd","arguments":{"fdset-id":1}}"#), gerr(NO_FD));
    // An fd pending on the unix monitor's connection is not the TCP monitor's.
    let (p, w) = probe();
    u.send_fds(QUERY_NAME, &[&w]);
    drop(w);
    assert_eq!(u.line(), OK);
    assert_eq!(t.cmd(&getfd("x")), gerr(NO_FD));
    p.assert_open("pending on the unix monitor");
    assert_eq!(u.cmd(&getfd("x")), OK);
    assert_eq!(t.cmd(&closefd("x")), gerr("File descriptor named 'x' not found"));
    assert_eq!(u.cmd(&closefd("x")), OK);
    p.assert_closed("closefd on the unix monitor");
}

// ---------------------------------------------------------------------------------------------
// 7. Differential: the same sequences against QEMU 7.2
// ---------------------------------------------------------------------------------------------

/// What to attach to a request; every run makes fresh ones.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// A pipe's write end; the read end becomes the next probe.
    Pipe,
    /// A socketpair end; our end becomes the next probe.
    Pair,
    /// A listening unix socket at `$D/NAME`.
    Listen(&'static str),
    /// A regular file in `$D`.
    File,
    /// A UDP socket bound to 127.0.0.1.
    Udp,
}

/// One request, the fds sent with it, and whether its reply is compared (probes always are).
struct Step {
    req: &'static str,
    fds: &'static [Pass],
    compare: bool,
}

const fn s(req: &'static str, fds: &'static [Pass]) -> Step {
    Step { req, fds, compare: true }
}

/// A step whose reply differs on purpose (the effects after it are still compared): fdmon's
/// deliberate difference; QEMU's reply is still recorded in the golden file.
const fn own(req: &'static str, fds: &'static [Pass]) -> Step {
    Step { req, fds, compare: false }
}

/// Removes what differs between processes: timestamps, version, scratch dir, fd numbers.
/// (query-chardev keeps its order: fdmon reproduces QEMU's hash-table order.)
fn normalize(line: &str, dir: &str, added: &[i64]) -> String {
    let mut l = if line.starts_with(r#"{"timestamp": "#) { strip_timestamp(line) } else { line.to_string() };
    if l.starts_with(r#"{"QMP": "#) {
        return "GREETING".to_string();
    }
    l = l.replace(dir, "$D");
    // remove-fd error texts quote the number a request named.
    for (i, n) in added.iter().enumerate() {
        l = l.replace(&format!("fd:{n}'"), &format!("fd:$FD{i}'"));
    }
    let key = r#""fd": "#;
    let mut out = String::new();
    let mut rest = l.as_str();
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'-').count();
        out.push_str(if digits > 0 { "FD" } else { "" });
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Replaces `$FD0`, `$FD1`... with the fd numbers of this run's successful add-fd replies.
fn substitute(req: &str, added: &[i64], dir: &str) -> String {
    let mut r = req.replace("$D", dir);
    for (i, n) in added.iter().enumerate().rev() {
        r = r.replace(&format!("$FD{i}"), &n.to_string());
    }
    r
}

/// The state of one differential run: scratch dir, probes (in creation order), the fd numbers
/// this process returned from add-fd.
struct Run {
    dir: TempDir,
    dirs: String,
    probes: Vec<OwnedFd>,
    added: Vec<i64>,
    nfile: usize,
    seq: usize,
}

impl Run {
    fn new(imp: Imp) -> Run {
        let dir = TempDir::new(&format!("fddiff-{imp:?}"));
        let dirs = dir.0.to_string_lossy().into_owned();
        Run { dir, dirs, probes: Vec::new(), added: Vec::new(), nfile: 0, seq: 0 }
    }

    /// `n` pipes for the command line; their read ends are the first probes.
    fn cli_pipes(&mut self, n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| {
                let (p, w) = probe();
                self.probes.push(p.r);
                w
            })
            .collect()
    }

    fn make(&mut self, passes: &[Pass]) -> Vec<OwnedFd> {
        let mut send = Vec::new();
        for p in passes {
            match p {
                Pass::Pipe => {
                    let (p, w) = probe();
                    self.probes.push(p.r);
                    send.push(w);
                }
                Pass::Pair => {
                    let (ours, theirs) = pair();
                    self.probes.push(OwnedFd::from(ours));
                    send.push(OwnedFd::from(theirs));
                }
                Pass::Listen(name) => send.push(OwnedFd::from(UnixListener::bind(self.dir.path(name)).unwrap())),
                Pass::File => {
                    self.nfile += 1;
                    let f = std::fs::File::create(self.dir.path(&format!("file{}", self.nfile))).unwrap();
                    send.push(OwnedFd::from(f));
                }
                Pass::Udp => send.push(OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())),
            }
        }
        send
    }

    /// Sends `req` (with fresh fds for `passes`) and a sentinel; returns the normalized lines
    /// that came before the sentinel's reply.
    fn exchange(&mut self, c: &mut Client, req: &str, passes: &[Pass]) -> Vec<String> {
        let send = self.make(passes);
        let text = substitute(req, &self.added, &self.dirs);
        let refs: Vec<&dyn AsFd> = send.iter().map(|f| f as &dyn AsFd).collect();
        self.seq += 1;
        let got = differential::exchange(c, self.seq, &text, &refs);
        drop(refs);
        drop(send);
        let mut lines = Vec::new();
        for l in got {
            if req.contains("\"add-fd\"") && l.starts_with(r#"{"return": {"#) {
                self.added.push(add_fd_number(&l));
            }
            lines.push(normalize(&l, &self.dirs, &self.added));
        }
        lines
    }

    /// "open"/"closed" for every probe, right now.
    fn probe_state(&self) -> String {
        let v: Vec<&str> = self
            .probes
            .iter()
            // A short grace: an implementation may close an fd just after sending the reply
            // (QEMU finishes some clean-up after the response); only "still open" waits.
            .map(|p| if peer_closed(p.as_fd(), Duration::from_millis(20)) { "closed" } else { "open" })
            .collect();
        v.join(" ")
    }
}

fn program(imp: Imp, args: &[&str]) -> (&'static str, Vec<String>) {
    imp.argv(args)
}

/// One run on a socketpair monitor: per step, the normalized reply lines (or a marker) and the
/// state of every probe.
fn run_steps(imp: Imp, extra: &[&str], cli_pipes: usize, steps: &[Step]) -> Vec<(Vec<String>, String)> {
    let mut run = Run::new(imp);
    let mon = ["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"];
    let pipes = run.cli_pipes(cli_pipes);
    let (_p, mut c) = differential::pair_session(imp, &mon, extra, pipes);
    let mut out = vec![(vec![normalize(&c.line(), &run.dirs, &[])], String::new())];
    for st in steps {
        let lines = run.exchange(&mut c, st.req, st.fds);
        out.push((lines, run.probe_state()));
    }
    out
}

/// A step of a run with client sessions coming and going.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A new client on the server monitor (the listener at fd 3): greeting, qmp_capabilities.
    Connect,
    /// That client goes away.
    Disconnect,
    /// A request on the server monitor's client.
    Req(&'static str, &'static [Pass]),
    /// A request on the second monitor (a socketpair at fd 4, connected throughout).
    Other(&'static str),
}

/// Runs `ops`; with `other`, a second monitor sits on a socketpair at fd 4 and the command-line
/// pipes start at fd 5, else at fd 4. Returns, per op, its lines and the probe state after it
/// (nothing is recorded for a disconnect, whose effects are asynchronous; the next Connect is
/// only served once it was handled).
fn run_sessions(imp: Imp, extra: &[&str], cli_pipes: usize, other: bool, ops: &[Op]) -> Vec<(Vec<String>, String)> {
    let mut run = Run::new(imp);
    let path = run.dir.path("qmp.sock");
    let l = UnixListener::bind(&path).unwrap();
    let mut args = vec!["-chardev", "socket,fd=3,server=on,wait=off,id=mon", "-mon", "chardev=mon,mode=control"];
    let mut fds = vec![OwnedFd::from(l)];
    let mut oc = None;
    if other {
        let (a, b) = pair();
        args.extend_from_slice(&["-chardev", "socket,fd=4,id=mon2", "-mon", "chardev=mon2,mode=control"]);
        fds.push(OwnedFd::from(b));
        oc = Some(Client::new(a));
    }
    args.extend_from_slice(extra);
    fds.extend(run.cli_pipes(cli_pipes));
    let (prog, all) = program(imp, &args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let _p = spawn_program(prog, &all, fds);
    if let Some(o) = oc.as_mut() {
        o.negotiate();
    }
    let mut c: Option<Client> = None;
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Connect => {
                let mut n = Client::connect(&path);
                let g = normalize(&n.line(), &run.dirs, &[]);
                let r = run.exchange(&mut n, r#"{"execute":"qmp_capabilities"}"#, &[]);
                c = Some(n);
                out.push(([vec![g], r].concat(), run.probe_state()));
            }
            Op::Disconnect => {
                c = None;
                out.push((Vec::new(), String::new()));
            }
            Op::Req(req, passes) => {
                let lines = run.exchange(c.as_mut().expect("no client connected"), req, passes);
                out.push((lines, run.probe_state()));
            }
            Op::Other(req) => {
                let lines = run.exchange(oc.as_mut().expect("no second monitor"), req, &[]);
                out.push((lines, run.probe_state()));
            }
        }
    }
    drop(c);
    out
}

/// Per step: its reply lines and the probe states after it, labelled `N REQUEST` and
/// `N probes` (the greeting has no probes).
fn steps_transcript(labels: &[String], t: Vec<(Vec<String>, String)>) -> Transcript {
    assert_eq!(labels.len(), t.len());
    let mut out = Vec::new();
    for (i, (label, (lines, probes))) in labels.iter().zip(t).enumerate() {
        out.push((format!("{i} {label}"), lines.join("\n")));
        if i > 0 || !probes.is_empty() {
            out.push((format!("{i} probes"), probes));
        }
    }
    out
}

/// The golden file of one comparison: `tests/golden/fdpass/NAME.txt` (NAME sanitized).
fn golden_name(name: &str) -> String {
    let n: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("fdpass/{n}")
}

/// Fails with every difference found by the comparisons of one test (each comparison already
/// asserted against its golden file; kept for the call sites).
fn no_differences(diffs: Vec<String>) {
    assert!(diffs.is_empty(), "{} difference(s):\n{}", diffs.len(), diffs.join("\n"));
}

/// Runs `ops` against the golden file (and live QEMU when installed); panics on a difference.
fn compare_sessions(name: &str, extra: &[&str], cli_pipes: usize, other: bool, ops: &[Op]) -> Vec<String> {
    let labels: Vec<String> = ops.iter().map(|o| format!("{o:?}")).collect();
    golden::check_one(&golden_name(name), name, &[], |imp| {
        steps_transcript(&labels, run_sessions(imp, extra, cli_pipes, other, ops))
    });
    Vec::new()
}

/// Runs `steps` against the golden file (and live QEMU when installed); panics on a
/// difference. The replies of `own` steps are recorded but not compared.
fn compare(name: &str, extra: &[&str], cli_pipes: usize, steps: &[Step]) -> Vec<String> {
    let mut labels = vec!["<greeting>".to_string()];
    labels.extend(steps.iter().map(|s| s.req.to_string()));
    let ignore: Vec<String> =
        steps.iter().enumerate().filter(|(_, s)| !s.compare).map(|(i, s)| format!("{} {}", i + 1, s.req)).collect();
    let ignore: Vec<&str> = ignore.iter().map(String::as_str).collect();
    golden::check_one(&golden_name(name), name, &ignore, |imp| {
        steps_transcript(&labels, run_steps(imp, extra, cli_pipes, steps))
    });
    Vec::new()
}

use Pass::*;

#[test]
fn differential_pending_queue_rules() {
    let mut d = Vec::new();
    d.extend(compare(
        "queue",
        &[],
        0,
        &[
            // Before negotiation: refused, but the fd stays pending.
            s(r#"{"execute":"getfd","arguments":{"fdname":"early"}}"#, &[Pipe]),
            s(r#"{"execute":"query-name"}"#, &[]),
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            s(r#"{"execute":"query-status"}"#, &[]),
            s(r#"{"execute":"nope"}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"early"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"early2"}}"#, &[]),
            // A new fd-bearing message replaces the queue.
            s(r#"{"execute":"query-status"}"#, &[Pipe]),
            s(r#"{"execute":"query-name"}"#, &[Pipe, Pipe]),
            s(r#"{"execute":"query-name"}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"pend"}}"#, &[]),
            // getfd takes the first and closes the rest.
            s(r#"{"execute":"getfd","arguments":{"fdname":"two"}}"#, &[Pipe, Pipe, Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"none"}}"#, &[]),
            // add-fd too.
            s(r#"{"execute":"query-name"}"#, &[Pipe, Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":4}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":4}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{}}"#, &[Pipe, Pair]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            // Exactly 16 fds in one message.
            s(
                r#"{"execute":"getfd","arguments":{"fdname":"sixteen"}}"#,
                &[Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe, Pipe],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"sixteen"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"two"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"pend"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"early"}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":4}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":0}}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_getfd_closefd() {
    let mut d = Vec::new();
    d.extend(compare(
        "getfd/closefd",
        &[],
        0,
        &[
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"myfd"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"1abc"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"1abc"}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"after"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"n"}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"n"}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":""}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"a b/c,d=e"}}"#, &[Pipe]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"nosuch"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"a b/c,d=e"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":""}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":""}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"n"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"n"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"x","fd":1}}"#, &[]),
            // An HMP command inside QMP neither sees the fd nor the QMP names.
            s(r#"{"execute":"human-monitor-command","arguments":{"command-line":"getfd h"}}"#, &[Pipe]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"q"}}"#, &[]),
            s(r#"{"execute":"human-monitor-command","arguments":{"command-line":"closefd q"}}"#, &[]),
            s(r#"{"execute":"closefd","arguments":{"fdname":"q"}}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_chardev_add_from_fd() {
    let mut d = Vec::new();
    d.extend(compare(
        "chardev-add fd",
        &[],
        0,
        &[
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            // A listening socket, server: true.
            s(r#"{"execute":"getfd","arguments":{"fdname":"myfd"}}"#, &[Listen("rt.sock")]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c1","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"myfd"}},"server":true,"wait":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"myfd"}}"#, &[]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c1b","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"myfd"}},"server":true,"wait":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"query-chardev"}"#, &[]),
            // Defaults: server true, wait false.
            s(r#"{"execute":"getfd","arguments":{"fdname":"lf"}}"#, &[Listen("d.sock")]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"d1","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"lf"}}}}}}"#,
                &[],
            ),
            // A connected socket, server: false.
            s(r#"{"execute":"getfd","arguments":{"fdname":"sp"}}"#, &[Pair]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c3","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"sp"}},"server":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"sp"}}"#, &[]),
            s(r#"{"execute":"query-chardev"}"#, &[]),
            // Error rows.
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c2","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"nosuch"}}}}}}"#,
                &[],
            ),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c2","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"3"}}}}}}"#,
                &[],
            ),
            s(r#"{"execute":"getfd","arguments":{"fdname":"file"}}"#, &[File]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c2","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"file"}}}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"file"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"pipe"}}"#, &[Pipe]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c2","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"pipe"}},"server":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"getfd","arguments":{"fdname":"conn"}}"#, &[Pair]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c4","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"conn"}},"server":true,"wait":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"conn"}}"#, &[]),
            s(r#"{"execute":"getfd","arguments":{"fdname":"udp"}}"#, &[Udp]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c5","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"udp"}},"server":true,"wait":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"udp"}}"#, &[]),
            // Missing TLS credentials: checked before the lookup, the name stays.
            s(r#"{"execute":"getfd","arguments":{"fdname":"t"}}"#, &[Listen("t.sock")]),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c6","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"t"}},"server":true,"wait":false,"tls-creds":"tls0"}}}}"#,
                &[],
            ),
            // Duplicate id: the message differs on purpose, the name survives in both.
            own(
                r#"{"execute":"chardev-add","arguments":{"id":"c1","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":"t"}},"server":true,"wait":false}}}}"#,
                &[],
            ),
            s(r#"{"execute":"closefd","arguments":{"fdname":"t"}}"#, &[]),
            // Address union shape errors.
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c7","backend":{"type":"socket","data":{"addr":{"type":"fd","str":"x"}}}}}"#,
                &[],
            ),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c7","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{}}}}}}"#,
                &[],
            ),
            s(
                r#"{"execute":"chardev-add","arguments":{"id":"c7","backend":{"type":"socket","data":{"addr":{"type":"fd","data":{"str":3}}}}}}"#,
                &[],
            ),
            // Removing closes what the chardevs hold.
            s(r#"{"execute":"chardev-remove","arguments":{"id":"c3"}}"#, &[]),
            s(r#"{"execute":"chardev-remove","arguments":{"id":"c1"}}"#, &[]),
            s(r#"{"execute":"chardev-remove","arguments":{"id":"c1"}}"#, &[]),
            s(r#"{"execute":"query-chardev"}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_fd_sets() {
    let mut d = Vec::new();
    d.extend(compare(
        "fd sets",
        &["-add-fd", "fd=4,set=2,opaque=cli-A", "-add-fd", "fd=5,set=2", "-add-fd", "fd=6,set=7,opaque=rdonly"],
        3,
        &[
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":2,"opaque":"qmp-D"}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"opaque":"x"}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":-1}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":-1}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":"2"}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"bogus":1}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"opaque":1}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2,"fd":999}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":99}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":$FD1}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2,"fd":$FD0}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":$FD2}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":7}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":7}}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{}}"#, &[Pipe]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_cli_add_fd_same_fd_twice() {
    let mut d = Vec::new();
    d.extend(compare(
        "same fd in two sets",
        &["-add-fd", "fd=4,set=1", "-add-fd", "fd=4,set=2,opaque=again", "-add-fd", "fd=5,set=1,opaque=b"],
        2,
        &[
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
        ],
    ));
    no_differences(d);
}

use Op::*;

#[test]
fn differential_fd_sets_when_the_last_client_leaves() {
    let mut d = Vec::new();
    let sets: &[Op] = &[
        Connect,
        Req(r#"{"execute":"add-fd","arguments":{"fdset-id":1,"opaque":"qmp"}}"#, &[Pipe]),
        Req(r#"{"execute":"add-fd","arguments":{}}"#, &[Pipe]),
        Req(r#"{"execute":"query-fdsets"}"#, &[]),
        Disconnect,
        Connect,
        Req(r#"{"execute":"query-fdsets"}"#, &[]),
        Req(r#"{"execute":"cont"}"#, &[]),
        Req(r#"{"execute":"query-fdsets"}"#, &[]),
        Disconnect,
        Connect,
        Req(r#"{"execute":"query-fdsets"}"#, &[]),
    ];
    d.extend(compare_sessions("last client, running", &["-add-fd", "fd=4,set=1,opaque=cli"], 1, false, sets));
    d.extend(compare_sessions("last client, prelaunch", &["-S", "-add-fd", "fd=4,set=1,opaque=cli"], 1, false, sets));
    d.extend(compare_sessions(
        "another client stays",
        &["-add-fd", "fd=5,set=1,opaque=cli"],
        1,
        true,
        &[
            Connect,
            Req(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#, &[Pipe]),
            Disconnect,
            Connect,
            Other(r#"{"execute":"query-fdsets"}"#),
            Req(r#"{"execute":"query-fdsets"}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_remove_fd_marks_until_running() {
    let mut d = Vec::new();
    d.extend(compare(
        "remove-fd in prelaunch",
        &["-S"],
        0,
        &[
            s(r#"{"execute":"qmp_capabilities"}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":1}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":1}}"#, &[Pipe]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#, &[Pipe]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":$FD0}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":$FD0}}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"cont"}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":$FD1}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
            s(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#, &[Pipe]),
            s(r#"{"execute":"stop"}"#, &[]),
            s(r#"{"execute":"remove-fd","arguments":{"fdset-id":2,"fd":$FD3}}"#, &[]),
            s(r#"{"execute":"query-fdsets"}"#, &[]),
        ],
    ));
    // Marked while paused, then another monitor's client leaves while running.
    d.extend(compare_sessions(
        "marked, then a client leaves",
        &["-S"],
        0,
        true,
        &[
            Connect,
            Req(r#"{"execute":"add-fd","arguments":{"fdset-id":1}}"#, &[Pipe]),
            Req(r#"{"execute":"add-fd","arguments":{"fdset-id":2}}"#, &[Pipe]),
            Req(r#"{"execute":"remove-fd","arguments":{"fdset-id":1}}"#, &[]),
            Other(r#"{"execute":"cont"}"#),
            Req(r#"{"execute":"query-fdsets"}"#, &[]),
            Disconnect,
            Connect,
            Req(r#"{"execute":"query-fdsets"}"#, &[]),
        ],
    ));
    no_differences(d);
}

#[test]
fn differential_cli_add_fd_errors() {
    let g = Golden::open("fdpass/cli_add_fd_errors");
    for (args, nfds, _) in cli_add_fd_cases() {
        g.check(&format!("{args:?} with {nfds} fds"), &[], |imp| {
            let fds: Vec<OwnedFd> =
                (0..nfds).map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap())).collect();
            let mut p = start_imp(imp, &args, fds);
            let (code, err) = p.wait_output();
            let err = err.replacen("qemu-system-x86_64: ", "PROG: ", 1).replacen("fdmon: ", "PROG: ", 1);
            golden::items([("exit", format!("{code:?}")), ("stderr", err)])
        });
    }
    g.finish();
}
