//! stdio and pipe plumbing that never hurts the caller: no O_NONBLOCK on shared open file
//! descriptions, output after stdin's EOF, FIFOs that never block start-up or the loop.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CAPS: &str = r#"{"execute":"qmp_capabilities"}"#;

/// Runs `script` with `sh -c` (FDMON in its environment); returns (stdout, stderr).
fn sh(script: &str) -> (String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("FDMON", bin())
        .stdin(Stdio::null())
        .output()
        .expect("sh must be installed");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn caller_writes_2mb_after_qmp_stdio_on_the_same_pipe() {
    // The issue's reproduction; only the NUL bytes from head are counted (QMP output is text).
    let script = format!(
        r#"{{ printf '{}{{"execute":"quit"}}\n' | "$FDMON" -qmp stdio; head -c 2000000 /dev/zero; }} | (sleep 1; tr -cd '\000' | wc -c)"#,
        CAPS
    );
    let (out, err) = sh(&script);
    assert_eq!(out.trim(), "2000000", "stderr: {err}");
    assert!(!err.contains("Resource temporarily unavailable"), "{err}");
}

#[test]
fn workload_writes_2mb_to_the_stdout_it_shares_with_qmp_stdio() {
    let script = format!(
        r#"printf '{}\n' | "$FDMON" -qmp stdio -- head -c 2000000 /dev/zero | (sleep 1; tr -cd '\000' | wc -c)"#,
        CAPS
    );
    let (out, err) = sh(&script);
    assert_eq!(out.trim(), "2000000", "stderr: {err}");
    assert!(!err.contains("Resource temporarily unavailable"), "{err}");
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we own from here on.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: just created, owned by no one else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The `flags:` field of /proc/PID/fdinfo/FD (octal).
fn fd_flags(pid: i32, fd: i32) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
    let line = text.lines().find(|l| l.starts_with("flags:")).unwrap();
    u32::from_str_radix(line["flags:".len()..].trim(), 8).unwrap()
}

/// Reads from `r` until `pat` shows up (bounded).
fn read_until(r: &mut std::fs::File, acc: &mut String, pat: &str) {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 4096];
    while !acc.contains(pat) {
        assert!(Instant::now() < deadline, "timed out waiting for {pat:?}; got {acc:?}");
        let mut p = libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 100) };
        if p.revents != 0 {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                panic!("EOF waiting for {pat:?}; got {acc:?}");
            }
            acc.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

/// fdmon with `-qmp stdio` on two pipes the test holds the other ends of.
fn stdio_fdmon(extra: &[&str]) -> (Fdmon, std::fs::File, std::fs::File) {
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let child = Command::new(bin())
        .args(["-qmp", "stdio"])
        .args(extra)
        .stdin(Stdio::from(in_r))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (Fdmon { child }, std::fs::File::from(in_w), std::fs::File::from(out_r))
}

#[test]
fn stdin_and_stdout_never_get_o_nonblock() {
    let (f, mut input, mut output) = stdio_fdmon(&[]);
    let mut acc = String::new();
    read_until(&mut output, &mut acc, "\"QMP\"");
    input.write_all(format!("{CAPS}\n").as_bytes()).unwrap();
    read_until(&mut output, &mut acc, "\"return\"");
    for fd in [0, 1] {
        assert_eq!(fd_flags(f.pid(), fd) & libc::O_NONBLOCK as u32, 0, "fd {fd} of fdmon is O_NONBLOCK");
    }
}

#[test]
fn inherited_connected_socket_stays_blocking() {
    let (ours, theirs) = pair();
    let f = spawn_with_fds(QMP_PAIR_ARGS, vec![OwnedFd::from(theirs)]);
    let mut c = Client::new(ours);
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    assert_eq!(fd_flags(f.pid(), 3) & libc::O_NONBLOCK as u32, 0);
}

#[test]
fn stdin_eof_then_sigterm_still_prints_shutdown() {
    let (mut f, mut input, mut output) = stdio_fdmon(&[]);
    input.write_all(format!("{CAPS}\n").as_bytes()).unwrap();
    drop(input);
    let mut acc = String::new();
    read_until(&mut output, &mut acc, "\"return\"");
    std::thread::sleep(QUIET);
    f.signal(libc::SIGTERM);
    read_until(&mut output, &mut acc, r#""event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}"#);
    let (code, _) = f.wait_output();
    assert_eq!(code, Some(0));
}

#[test]
fn workload_shutdown_is_printed_after_stdin_eof() {
    let (mut f, mut input, mut output) = stdio_fdmon(&["--", "sleep", "1"]);
    input.write_all(format!("{CAPS}\n").as_bytes()).unwrap();
    drop(input);
    let mut acc = String::new();
    read_until(&mut output, &mut acc, r#""event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}"#);
    f.wait();
}

/// A FIFO pair P.in / P.out in `dir`.
fn fifos(dir: &TempDir) -> String {
    let p = dir.str("p");
    for suffix in ["in", "out"] {
        let c = std::ffi::CString::new(format!("{p}.{suffix}")).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }
    p
}

/// Opens a FIFO end without blocking the test forever: O_NONBLOCK for the open, then blocking.
fn open_fifo(path: &str, write: bool) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let r = std::fs::OpenOptions::new().read(!write).write(write).custom_flags(libc::O_NONBLOCK).open(path);
        match r {
            Ok(f) => {
                // SAFETY: F_SETFL on our own fd.
                unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) };
                return f;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot open {path}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Start-up with nobody on the FIFOs, a late reader, a writer that leaves and comes back;
/// returns what the FIFO monitor printed (greeting's version removed).
fn fifo_session(prog: &str, machine: &[&str]) -> Vec<String> {
    let dir = TempDir::new("fifo");
    let p = fifos(&dir);
    // A second monitor proves the loop runs while nobody has the FIFOs open.
    let sock = dir.str("q.sock");
    let mut args: Vec<String> = machine.iter().map(|s| s.to_string()).collect();
    args.extend(["-qmp".into(), format!("unix:{sock},server=on,wait=off")]);
    args.extend(["-chardev".into(), format!("pipe,id=p,path={p}"), "-mon".into(), "chardev=p,mode=control".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _f = spawn_program(prog, &args, Vec::new());
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));

    // A reader that shows up later gets the greeting and answers.
    let mut out = open_fifo(&format!("{p}.out"), false);
    let mut w = open_fifo(&format!("{p}.in"), true);
    w.write_all(format!("{CAPS}\n").as_bytes()).unwrap();
    let mut acc = String::new();
    read_until(&mut out, &mut acc, "\"QMP\"");
    read_until(&mut out, &mut acc, "\"return\"");
    // The writer goes away and comes back: the monitor still answers.
    drop(w);
    std::thread::sleep(QUIET);
    assert!(c.cmd(r#"{"execute":"query-chardev"}"#).contains(r#""label": "p""#));
    let mut w = open_fifo(&format!("{p}.in"), true);
    w.write_all(br#"{"execute":"query-status"}"#).unwrap();
    read_until(&mut out, &mut acc, "\"status\": \"running\"");
    acc.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn pipe_chardev_does_not_block_startup_and_survives_writer_reconnect() {
    let ours = fifo_session(bin(), &[]);
    assert_eq!(ours.len(), 2, "{ours:?}");
    if qemu_available() {
        let theirs = fifo_session(QEMU, &["-machine", "none", "-nodefaults", "-display", "none"]);
        assert_eq!(ours, theirs, "left fdmon, right QEMU");
    }
}

#[test]
fn chardev_add_pipe_does_not_block_other_monitors() {
    let dir = TempDir::new("fifo-add");
    let p = fifos(&dir);
    let (mut _f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"p","backend":{{"type":"pipe","data":{{"device":"{p}"}}}}}}}}"#
    ));
    assert_eq!(r, r#"{"return": {}}"#);
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    // Output written to it waits in the FIFO for a reader.
    let r = c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"p"}}"#);
    assert_eq!(r, r#"{"return": {}}"#);
}

#[test]
fn stdio_on_a_socket_stays_blocking_and_works() {
    let (ours, theirs) = pair();
    let theirs2 = theirs.try_clone().unwrap();
    let child = Command::new(bin())
        .args(["-qmp", "stdio"])
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs2)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let f = Fdmon { child };
    let mut c = Client::new(ours);
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    for fd in [0, 1] {
        assert_eq!(fd_flags(f.pid(), fd) & libc::O_NONBLOCK as u32, 0, "fd {fd} of fdmon is O_NONBLOCK");
    }
}
