//! The request path of the event loop: replies are written in the round that made them (and
//! after a full socket, on POLLOUT), the poll set kept across rounds follows chardevs and
//! monitors that come and go (a freed slot never reaches a new chardev), and a busy monitor
//! is served beside 255 idle ones, which cost no wake-ups.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use common::*;

const OK: &str = r#"{"return": {}}"#;
const STATUS: &str = r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#;
const QUERY_STATUS: &str = r#"{"execute":"query-status"}"#;

fn status_with_id(id: usize) -> String {
    format!(r#"{{"return": {{"status": "running", "singlestep": false, "running": true}}, "id": {id}}}"#)
}

fn getfd(name: &str) -> String {
    format!(r#"{{"execute":"getfd","arguments":{{"fdname":"{name}"}}}}"#)
}

fn chardev_add_fd(id: &str, name: &str) -> String {
    format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"socket","data":{{"addr":{{"type":"fd","data":{{"str":"{name}"}}}},"server":false}}}}}}}}"#
    )
}

fn chardev_remove(id: &str) -> String {
    format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"{id}"}}}}"#)
}

fn monitor_add(id: &str, chardev: &str) -> String {
    format!(r#"{{"execute":"monitor-add","arguments":{{"id":"{id}","chardev":"{chardev}","mode":"control"}}}}"#)
}

fn monitor_remove(id: &str) -> String {
    format!(r#"{{"execute":"monitor-remove","arguments":{{"id":"{id}"}}}}"#)
}

/// Hot-adds a QMP monitor `mon` on chardev `dev`, a connected socket passed over `c`; returns
/// the negotiated peer.
fn hot_monitor(c: &mut Client, dev: &str, mon: &str) -> Client {
    let (ours, theirs) = pair();
    c.send_fds(&getfd(dev), &[&theirs]);
    drop(theirs);
    assert_eq!(c.line(), OK);
    assert_eq!(c.cmd(&chardev_add_fd(dev, dev)), OK);
    assert_eq!(c.cmd(&monitor_add(mon, dev)), OK);
    let mut peer = Client::new(ours);
    peer.negotiate();
    peer
}

/// The voluntary context switches of `pid` so far (each one a wake-up from `poll`).
fn wakeups(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Asserts that `pid` does not wake up in a quiet window, once it went to sleep after what it
/// was doing (the wake-up that sends a last reply may end after the peer read that reply).
fn assert_no_wakeups(pid: i32, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = wakeups(pid);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = wakeups(pid);
        if now == last {
            break;
        }
        assert!(Instant::now() < deadline, "fdmon never settled {what}");
        last = now;
    }
    std::thread::sleep(QUIET);
    assert_eq!(wakeups(pid), last, "fdmon woke up {what}");
}

/// Reads from `s` until `n` lines (`\r\n`) arrived; returns them.
fn read_lines(s: &mut UnixStream, n: usize) -> Vec<String> {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut all = Vec::new();
    let mut tmp = vec![0u8; 1 << 16];
    let mut count = 0;
    let deadline = Instant::now() + TIMEOUT;
    while count < n {
        assert!(Instant::now() < deadline, "timed out after {count} of {n} lines");
        let k = s.read(&mut tmp).unwrap();
        assert!(k > 0, "EOF after {count} of {n} lines");
        count += tmp[..k].windows(2).filter(|w| w == b"\r\n").count();
        // A "\r\n" split across two reads is counted when its second half arrives.
        if all.last() == Some(&b'\r') && tmp[0] == b'\n' {
            count += 1;
        }
        all.extend_from_slice(&tmp[..k]);
    }
    let text = String::from_utf8(all).unwrap();
    text.split_terminator("\r\n").map(str::to_string).collect()
}

#[test]
fn ping_pong_and_pipelined_commands_each_get_their_reply() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    for i in 0..2000 {
        assert_eq!(c.cmd(&format!(r#"{{"execute":"query-status","id":{i}}}"#)), status_with_id(i));
    }
    // Pipelined in one write: every reply, in order.
    let n = 3000;
    let batch: String = (0..n).map(|i| format!(r#"{{"execute":"query-status","id":{i}}}"#)).collect();
    c.send(&batch);
    for i in 0..n {
        assert_eq!(c.line(), status_with_id(i));
    }
}

#[test]
fn a_reader_that_stops_reading_gets_every_reply_later() {
    // More replies than the socket buffers hold: fdmon's write hits EAGAIN, the monitor stops
    // at its output high-water mark, and everything follows once the peer reads again.
    let (_f, c) = qmp_pair(&[]);
    let mut s = c.stream;
    let g = read_lines(&mut s, 1);
    assert!(g[0].starts_with(r#"{"QMP": "#), "{g:?}");
    s.write_all(br#"{"execute":"qmp_capabilities"}"#).unwrap();
    assert_eq!(read_lines(&mut s, 1), vec![OK.to_string()]);
    let n = 20000;
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let batch: String = (0..n).map(|i| format!(r#"{{"execute":"query-status","id":{i}}}"#)).collect();
        w.write_all(batch.as_bytes()).unwrap();
    });
    std::thread::sleep(QUIET);
    let lines = read_lines(&mut s, n);
    writer.join().unwrap();
    assert_eq!(lines.len(), n);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &status_with_id(i));
    }
}

#[test]
fn chardevs_and_monitors_come_and_go_while_others_talk() {
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let mut keep = hot_monitor(&mut c, "keep", "mkeep");
    let base = f.fd_count();
    let mut old: Option<Client> = None;
    for i in 0..40 {
        let dev = format!("c{i}");
        let mon = format!("m{i}");
        let mut peer = hot_monitor(&mut c, &dev, &mon);
        // The previous round's peer lost its connection when its chardev went.
        if let Some(mut o) = old.take() {
            o.expect_eof();
        }
        assert_eq!(peer.cmd(&format!(r#"{{"execute":"query-status","id":{i}}}"#)), status_with_id(i));
        assert_eq!(keep.cmd(QUERY_STATUS), STATUS);
        // Removal and a new chardev in one read: the freed slot is not reused in that round,
        // and the new chardev (a ringbuf) and every other source work.
        let ring = format!("r{i}");
        let ring_add = format!(
            r#"{{"execute":"chardev-add","arguments":{{"id":"{ring}","backend":{{"type":"ringbuf","data":{{}}}}}}}}"#
        );
        c.send(&format!("{}{}{}{}", monitor_remove(&mon), chardev_remove(&dev), ring_add, QUERY_STATUS));
        assert_eq!(c.line(), OK);
        assert_eq!(c.line(), OK);
        assert_eq!(c.line(), OK);
        assert_eq!(c.line(), STATUS);
        assert_eq!(c.cmd(&chardev_remove(&ring)), OK);
        // A monitor removed and another added in one read, on the kept chardev.
        c.send(&format!("{}{}", monitor_remove("mkeep"), monitor_add("mkeep", "keep")));
        assert_eq!(c.line(), OK);
        assert_eq!(c.line(), OK);
        keep.negotiate();
        old = Some(peer);
    }
    if let Some(mut o) = old.take() {
        o.expect_eof();
    }
    assert_eq!(keep.cmd(QUERY_STATUS), STATUS);
    assert_eq!(c.cmd(QUERY_STATUS), STATUS);
    assert_eq!(f.fd_count(), base, "every removed chardev's fds are closed");
}

#[test]
fn a_busy_monitor_beside_255_idle_ones_and_no_wakeups_when_idle() {
    let dir = TempDir::new("iopath");
    let (a, b) = UnixStream::pair().unwrap();
    let mut args: Vec<String> = QMP_PAIR_ARGS.iter().map(|s| s.to_string()).collect();
    for i in 0..255 {
        args.push("-chardev".into());
        args.push(format!("socket,path={},server=on,wait=off,id=i{i}", dir.str(&format!("i{i}"))));
        args.push("-mon".into());
        args.push(format!("chardev=i{i},mode=control"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let f = spawn_with_fds(&argv, vec![OwnedFd::from(b)]);
    let mut c = Client::new(a);
    c.negotiate();
    let mut idle: Vec<Client> = (0..255).map(|i| Client::connect_retry(&dir.path(&format!("i{i}")))).collect();
    for p in idle.iter_mut() {
        p.negotiate();
    }
    for i in 0..500 {
        assert_eq!(c.cmd(&format!(r#"{{"execute":"query-status","id":{i}}}"#)), status_with_id(i));
    }
    // Idle: not one wake-up in a quiet window.
    assert_no_wakeups(f.pid(), "while every peer was idle");
    // One idle peer leaves (a hang-up costs no wake-ups afterwards either) and another client
    // takes its place; an event reaches every negotiated peer.
    drop(idle.remove(100));
    assert_eq!(c.cmd(QUERY_STATUS), STATUS);
    let mut again = Client::connect_retry(&dir.path("i100"));
    again.negotiate();
    assert_eq!(again.cmd(QUERY_STATUS), STATUS);
    assert_no_wakeups(f.pid(), "after a hang-up");
    c.send(r#"{"execute":"stop"}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.line(), OK);
    for p in idle.iter_mut().step_by(17) {
        assert_eq!(p.event(), r#"{"event": "STOP"}"#);
        assert_eq!(p.cmd(QUERY_STATUS), r#"{"return": {"status": "paused", "singlestep": false, "running": false}}"#);
    }
    assert_eq!(again.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.cmd(QUERY_STATUS), r#"{"return": {"status": "paused", "singlestep": false, "running": false}}"#);
}
