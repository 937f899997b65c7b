//! `fdmon -client` against a real fdmon: every address form, argument syntax, output form and
//! exit status.
mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};

use common::*;

/// Runs `fdmon -client ARGS` (fds at 3...), returns (code, stdout, stderr).
fn client(args: &[&str]) -> (Option<i32>, String, String) {
    client_fds(args, Vec::new())
}

fn client_fds(args: &[&str], fds: Vec<OwnedFd>) -> (Option<i32>, String, String) {
    let mut all = vec!["-client"];
    all.extend_from_slice(args);
    run_with_fds(&all, fds)
}

/// Runs the client with `input` on its stdin.
fn client_stdin(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .arg("-client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn server(extra: &[&str]) -> (TempDir, Fdmon, String) {
    let dir = TempDir::new("client");
    let (f, p) = qmp_server(&dir, extra);
    let path = p.to_string_lossy().into_owned();
    (dir, f, path)
}

#[test]
fn runs_a_command_on_a_path_and_unix_address() {
    let (_d, _f, path) = server(&["-chardev", "ringbuf,id=rb"]);
    let (code, out, err) = client(&[&path, "query-status"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(out, "{\"status\": \"running\", \"singlestep\": false, \"running\": true}\n");
    let unix = format!("unix:{path}");
    assert_eq!(client(&[&unix, "ringbuf-write", "device=rb", "data=hello"]), (Some(0), "{}\n".into(), "".into()));
    // size=3 is sent as a number: the reply is the first three bytes.
    assert_eq!(client(&[&unix, "ringbuf-read", "device=rb", "size=3"]), (Some(0), "\"hel\"\n".into(), "".into()));
    // A whole request object, sent as it is (the read above consumed "hel").
    let req = r#"{"execute": "ringbuf-read", "arguments": {"device": "rb", "size": 100, "format": "base64"}}"#;
    assert_eq!(client(&[&path, req]), (Some(0), "\"bG8=\"\n".into(), "".into()));
}

#[test]
fn monitor_errors_exit_1_with_class_and_desc() {
    let (_d, _f, path) = server(&[]);
    let (code, out, err) = client(&[&path, "chardev-remove", "id=nope"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(err, "fdmon: GenericError: Chardev 'nope' not found\n");
    let (code, out, err) = client(&[&path, "no-such-command"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(err, "fdmon: CommandNotFound: The command no-such-command has not been found\n");
    // The monitor is still there for the next client.
    assert_eq!(client(&[&path, "query-status"]).0, Some(0));
}

#[test]
fn hmp_text_has_terminal_line_ends() {
    let (_d, _f, path) = server(&["-S"]);
    let (code, out, err) = client(&[&path, "-hmp", "info status"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(out, "VM status: paused (prelaunch)\n");
    let (code, out, _) = client(&[&path, "-hmp", "help info"]);
    assert_eq!(code, Some(0));
    assert!(!out.contains('\r') && out.lines().count() > 3, "{out:?}");
}

#[test]
fn stdin_script_one_line_per_command() {
    let (_d, _f, path) = server(&["-S", "-chardev", "ringbuf,id=rb"]);
    let script = "\n# a comment\nquery-status\nringbuf-write device=rb data='a b'\n  ringbuf-read device=rb size=10\n\
                  {\"execute\": \"cont\"}\nquery-status\n";
    let (code, out, err) = client_stdin(&[&path, "-"], script);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "{\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}",
            "{}",
            "\"a b\"",
            "{}",
            "{\"status\": \"running\", \"singlestep\": false, \"running\": true}",
        ]
    );
    // The first error ends the script with status 1; what ran before stays printed.
    let (code, out, err) = client_stdin(&[&path, "-"], "query-status\nchardev-remove id=x\nquery-status\n");
    assert_eq!((code, out.lines().count()), (Some(1), 1));
    assert_eq!(err, "fdmon: GenericError: Chardev 'x' not found\n");
}

#[test]
fn wait_event_counts_events_that_came_during_the_commands() {
    let (_d, _f, path) = server(&["-S"]);
    // The STOP/RESUME events of `cont` arrive while the command runs.
    let (code, out, err) = client(&[&path, "cont", "-wait-event", "RESUME"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{}");
    assert_eq!(strip_timestamp(lines[1]), "{\"event\": \"RESUME\"}");
}

#[test]
fn wait_event_before_the_event_happens() {
    let dir = TempDir::new("client-wait");
    let (l1, p1) = listener(&dir, "a.sock");
    let (l2, p2) = listener(&dir, "b.sock");
    let args = [
        "-S",
        "-chardev",
        "ringbuf,id=rb",
        "-chardev",
        "socket,fd=3,server=on,wait=off,id=m1",
        "-mon",
        "chardev=m1,mode=control",
        "-chardev",
        "socket,fd=4,server=on,wait=off,id=m2",
        "-mon",
        "chardev=m2,mode=control",
    ];
    let _f = spawn_with_fds(&args, vec![OwnedFd::from(l1), OwnedFd::from(l2)]);
    let a = p1.to_string_lossy().into_owned();
    // The waiter's first command marks the ring buffer: once the mark is there it has
    // negotiated, so every later event reaches it.
    let waiter =
        std::thread::spawn(move || client(&[&a, "ringbuf-write", "device=rb", "data=x", "-wait-event", "RESUME"]));
    let mut c = Client::connect(&p2);
    c.negotiate();
    wait_until("the waiter negotiated", || {
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":1}}"#).contains("\"x\"")
    });
    c.cmd(r#"{"execute":"cont"}"#);
    let (code, out, err) = waiter.join().unwrap();
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!((lines[0], strip_timestamp(lines[1]).as_str()), ("{}", "{\"event\": \"RESUME\"}"));
}

#[test]
fn wait_ready_sees_a_workload_that_is_already_up() {
    let (_d, _f, path) = server(&["--", "sleep", "60"]);
    let (code, out, err) = client(&[&path, "-wait-ready"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let v = parse(out.trim_end());
    assert_eq!(v.as_object().unwrap().get("program").and_then(|p| p.as_str()), Some("sleep"));
    // Started paused, the workload becomes ready only with `cont`; a bounded wait times out.
    let (_d2, _f2, path2) = server(&["-S", "--", "sleep", "60"]);
    let (code, out, err) = client(&[&path2, "-timeout", "0.5", "-wait-ready"]);
    assert_eq!((code, out.as_str()), (Some(3), ""));
    assert!(err.starts_with("fdmon: ") && err.contains("timed out waiting for event WORKLOAD_READY"), "{err}");
    // Without a workload there is nothing to wait for.
    let (_d3, _f3, path3) = server(&[]);
    let (code, _, err) = client(&[&path3, "-wait-ready"]);
    assert_eq!((code, err.as_str()), (Some(1), "fdmon: GenericError: there is no workload\n"));
}

#[test]
fn wait_ready_waits_for_a_ready_fd_line() {
    let gates = TempDir::new("client-gate");
    let go = gates.str("go");
    let script = format!("while [ ! -e {go} ]; do sleep 0.02; done; echo >&5; exec sleep 60");
    let (_d, _f, path) = server(&["-ready", "fd=5", "--", "sh", "-c", &script]);
    // A bounded wait that ends first says so.
    let (code, out, err) = client(&[&path, "-timeout", "0.3", "-wait-ready"]);
    assert_eq!((code, out.as_str()), (Some(3), ""));
    assert!(err.contains("timed out waiting for event WORKLOAD_READY"), "{err}");
    let mut waiter = Command::new(bin())
        .args(["-client", &path, "-timeout", "20", "-wait-ready"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(QUIET);
    assert!(waiter.try_wait().unwrap().is_none(), "-wait-ready returned before the workload was ready");
    std::fs::write(&go, "").unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()), (Some(0), ""));
    let v = parse(String::from_utf8_lossy(&out.stdout).trim_end());
    assert_eq!(v.as_object().unwrap().get("ready").and_then(|r| r.as_bool()), Some(true), "{v:?}");
}

#[test]
fn fd_address_is_an_inherited_connected_socket() {
    let (a, b) = UnixStream::pair().unwrap();
    let _f = spawn_with_fds(QMP_PAIR_ARGS, vec![OwnedFd::from(a)]);
    let (code, out, err) = client_fds(&["fd:3", "query-status"], vec![OwnedFd::from(b)]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(out.starts_with("{\"status\": \"running\""), "{out}");
    let (code, _, err) = client(&["fd:9", "query-status"]);
    assert_eq!((code, err.as_str()), (Some(2), "fdmon: cannot connect to fd:9: Bad file descriptor\n"));
}

#[test]
fn tcp_address() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _f = spawn_with_fds(QMP_ARGS, vec![OwnedFd::from(l)]);
    let addr = format!("tcp:127.0.0.1:{port}");
    let (code, out, err) = client(&[&addr, "query-status"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(out.starts_with("{\"status\": \"running\""), "{out}");
    let addr = format!("tcp:localhost:{port}");
    assert_eq!(client(&[&addr, "query-status"]).0, Some(0));
}

#[test]
fn cannot_connect_exits_2_naming_the_address() {
    let dir = TempDir::new("client-none");
    let missing = dir.str("missing.sock");
    let (code, out, err) = client(&[&missing, "query-status"]);
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert_eq!(err, format!("fdmon: cannot connect to {missing}: No such file or directory\n"));
    // A socket path nobody listens on.
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let (code, _, err) = client(&[stale.to_str().unwrap(), "query-status"]);
    assert_eq!(code, Some(2));
    assert!(err.ends_with(": Connection refused\n") && err.lines().count() == 1, "{err}");
    // Usage errors are status 2 too: nothing was sent.
    let (code, _, err) = client(&[&missing]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("fdmon: -client: nothing to do"), "{err}");
}

#[test]
fn a_peer_that_is_not_qmp() {
    let dir = TempDir::new("client-notqmp");
    let (l, p) = listener(&dir, "x.sock");
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    let (code, out, err) = client(&[p.to_str().unwrap(), "query-status"]);
    t.join().unwrap();
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert!(err.starts_with(&format!("fdmon: {}: not a QMP monitor", p.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A JSON peer whose first message is no greeting.
    let (l, p) = listener(&dir, "y.sock");
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"{\"hello\": 1}\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    });
    let (code, _, err) = client(&[p.to_str().unwrap(), "query-status"]);
    t.join().unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("not a QMP monitor: the greeting is {\"hello\": 1}"), "{err}");
}

#[test]
fn a_busy_monitor_times_out_saying_so() {
    let (_d, _f, path) = server(&[]);
    let mut first = Client::connect(std::path::Path::new(&path));
    first.negotiate();
    let (code, out, err) = client(&[&path, "-timeout", "0.5", "query-status"]);
    assert_eq!((code, out.as_str()), (Some(3), ""));
    assert!(err.contains("timed out waiting for the QMP greeting (is the monitor busy with another client?)"), "{err}");
    // Once the first client leaves, the next one is served.
    drop(first);
    assert_eq!(client(&[&path, "query-status"]).0, Some(0));
}
