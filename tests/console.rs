//! The workload's console (`-serial`): a real pseudo-terminal between the workload and a
//! chardev (socket, ringbuf, file, the legacy forms), through real sockets and processes.

mod common;

use common::*;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// fdmon with QMP on a socketpair (fd 3), a console socket chardev `con` on an inherited
/// listener (fd 4) and `extra`, running `workload`. Returns fdmon, the QMP client (negotiated)
/// and the console socket's path.
fn start(dir: &TempDir, extra: &[&str], workload: &[&str]) -> (Fdmon, Client, std::path::PathBuf) {
    let (a, b) = UnixStream::pair().unwrap();
    let (l, path) = listener(dir, "con.sock");
    let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
    args.extend_from_slice(&["-chardev", "socket,fd=4,server=on,wait=off,id=con", "-serial", "chardev:con"]);
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(workload);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(b), OwnedFd::from(l)]);
    let mut c = Client::new(a);
    c.negotiate();
    (f, c, path)
}

/// Fields of /proc/PID/stat, numbered as in proc(5) (3 = state, 5 = pgrp, 6 = session,
/// 7 = tty_nr).
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..].split_whitespace().nth(n - 3).map(str::to_string)
}

trait ReplyTo {
    fn reply_to(&mut self, req: &str) -> String;
}

impl ReplyTo for Client {
    /// Sends a request and returns its reply, skipping events.
    fn reply_to(&mut self, req: &str) -> String {
        self.send(req);
        self.reply()
    }
}

fn ringbuf_text(c: &mut Client, dev: &str) -> String {
    let r = c.reply_to(&format!(r#"{{"execute":"ringbuf-read","arguments":{{"device":"{dev}","size":65536}}}}"#));
    let v = parse(&r);
    v.as_object().unwrap().get("return").and_then(|s| s.as_str()).unwrap_or_else(|| panic!("{r}")).to_string()
}

#[test]
fn an_interactive_shell_on_a_socket_console() {
    let dir = TempDir::new("con-sh");
    // A grace period far beyond the wait below: quit must not need it.
    let (mut f, mut q, path) = start(&dir, &["-shutdown-timeout", "60"], &["sh", "-i"]);
    let pid = workload_pid(&mut q).expect("workload pid");
    // The workload leads its own session, on the console as its controlling terminal.
    assert_eq!(stat_field(pid, 5).as_deref(), Some(pid.to_string().as_str()), "pgrp");
    assert_eq!(stat_field(pid, 6).as_deref(), Some(pid.to_string().as_str()), "session");
    assert_ne!(stat_field(pid, 7).as_deref(), Some("0"), "tty_nr");
    assert!(q
        .reply_to(r#"{"execute":"query-chardev"}"#)
        .contains(r#"{"frontend-open": true, "filename": "disconnected:unix:"#));

    let mut con = Client::connect(&path);
    // `tty` names a pseudo-terminal; the sum shows the line ran (the echo only has the text).
    con.send("tty; echo sum-$((40+2))\n");
    // (The shell's prompts may come between the pty's echo and the output: patterns below
    // never span a line start.)
    let out = con.until("sum-42\r\n");
    assert!(out.contains("tty; echo sum-$((40+2))\r\n"), "the pty echoes: {out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    // A line typed through the socket reaches `cat` and comes back (the pty's echo, then cat).
    con.send("cat\n");
    con.until("cat\r\n");
    con.send("through-the-pty\n");
    con.until("through-the-pty\r\n");
    con.until("through-the-pty\r\n");
    con.send("\x04");
    // The window size: 80x24 by default, console-resize changes it (now and for restarts).
    con.send("stty size; echo end-$((1+1))\n");
    let out = con.until("end-2\r\n");
    assert!(out.contains("24 80\r\n"), "{out:?}");
    assert_eq!(q.reply_to(r#"{"execute":"console-resize","arguments":{"cols":132,"rows":43}}"#), r#"{"return": {}}"#);
    con.send("stty size; echo end-$((1+2))\n");
    assert!(con.until("end-3\r\n").contains("43 132\r\n"));
    // HMP's equivalent, through human-monitor-command.
    let r = q.reply_to(r#"{"execute":"human-monitor-command","arguments":{"command-line":"console_resize 100 30"}}"#);
    assert_eq!(r, r#"{"return": ""}"#);
    con.send("stty size; echo end-$((1+3))\n");
    assert!(con.until("end-4\r\n").contains("30 100\r\n"));
    let r = q.reply_to(r#"{"execute":"console-resize","arguments":{"cols":0,"rows":43}}"#);
    assert!(r.contains("Parameter 'cols' expects a value between 1 and 65535"), "{r}");

    // An fdmon extension, listed and introspectable.
    assert!(q.reply_to(r#"{"execute":"query-commands"}"#).contains(r#"{"name": "console-resize"}"#));
    let schema = q.reply_to(r#"{"execute":"query-qmp-schema"}"#);
    assert!(schema.contains(r#"{"name": "console-resize", "ret-type""#), "{schema}");

    // The console's chardev is busy.
    let r = q.reply_to(r#"{"execute":"chardev-remove","arguments":{"id":"con"}}"#);
    assert_eq!(r, r#"{"error": {"class": "GenericError", "desc": "Chardev 'con' is busy"}}"#);

    // stop/cont reach the session leader.
    assert_eq!(q.reply_to(r#"{"execute":"stop"}"#), r#"{"return": {}}"#);
    wait_until("the shell stopped", || stat_field(pid, 3).as_deref() == Some("T"));
    assert_eq!(q.reply_to(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    wait_until("the shell continued", || stat_field(pid, 3).as_deref() != Some("T"));
    con.send("echo alive-$((3+4))\n");
    con.until("alive-7\r\n");

    // quit ends the interactive shell (which ignores SIGTERM) without the 60 s grace period:
    // its terminal hangs up.
    q.send(r#"{"execute":"quit"}"#);
    let (code, _) = f.wait_output();
    assert_eq!(code, Some(0));
    wait_until("the shell is gone", || stat_field(pid, 3).is_none());
}

#[test]
fn output_without_a_client_is_dropped() {
    let dir = TempDir::new("con-drop");
    let marker = dir.str("written");
    // 1 MB with nobody attached: if fdmon kept (or blocked on) it, the marker never appears.
    let script = format!(
        "echo dropped-$((1+1)); head -c 1048576 /dev/zero | tr '\\0' x; echo; touch {marker}; read line; echo new-$line"
    );
    let (_f, _q, path) = start(&dir, &[], &["sh", "-c", &script]);
    wait_until("the output was written", || std::path::Path::new(&marker).exists());
    let mut con = Client::connect(&path);
    con.send("abc\n");
    let out = con.until("new-abc\r\n");
    assert!(!out.contains("dropped-2"), "{out:?}");
    assert!(out.matches('x').count() < 65536, "{} bytes of old output arrived", out.matches('x').count());
}

#[test]
fn a_slow_client_gets_everything_in_order() {
    let dir = TempDir::new("con-slow");
    // -S: the client attaches first, then `cont` starts the workload on the console.
    let (_f, mut q, path) = start(&dir, &["-S"], &["seq", "1", "500000"]);
    let mut con = UnixStream::connect(&path).unwrap();
    q.reply_to(r#"{"execute":"query-status"}"#);
    assert_eq!(q.reply_to(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    let pid = workload_pid(&mut q).expect("pid");
    // Not reading: fdmon stops reading the pty and the workload blocks on write.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(stat_field(pid, 3).is_some_and(|s| s != "Z"), "the workload finished without a reader");
    let mut expected = String::new();
    for i in 1..=500000 {
        expected.push_str(&format!("{i}\r\n"));
    }
    let mut got = Vec::new();
    con.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = vec![0u8; 65536];
    while got.len() < expected.len() {
        let n = con.read(&mut buf).expect("console read");
        assert!(n > 0, "EOF after {} of {} bytes", got.len(), expected.len());
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected.as_bytes(), "the output arrived changed or out of order");
}

#[test]
fn a_ringbuf_console_survives_reset_with_a_new_pty() {
    let (mut f, mut q) = qmp_pair(&[
        "-chardev",
        "ringbuf,id=con,size=65536",
        "-serial",
        "chardev:con",
        "--",
        "sh",
        "-c",
        "echo run-$$; sleep 300",
    ]);
    q.negotiate();
    let pid = workload_pid(&mut q).expect("pid");
    let mut seen = String::new();
    wait_until("the first output", || {
        seen.push_str(&ringbuf_text(&mut q, "con"));
        seen.contains(&format!("run-{pid}\r\n"))
    });
    let tty1 = stat_field(pid, 7).unwrap();
    assert_ne!(tty1, "0");
    assert!(q
        .reply_to(r#"{"execute":"query-chardev"}"#)
        .contains(r#"{"frontend-open": true, "filename": "ringbuf", "label": "con"}"#));
    assert_eq!(q.reply_to(r#"{"execute":"system_reset"}"#), r#"{"return": {}}"#);
    let mut new_pid = None;
    wait_until("the new workload", || {
        new_pid = workload_pid(&mut q).filter(|&p| p != pid);
        new_pid.is_some()
    });
    let new_pid = new_pid.unwrap();
    let mut seen = String::new();
    wait_until("the new workload's output", || {
        seen.push_str(&ringbuf_text(&mut q, "con"));
        seen.contains(&format!("run-{new_pid}\r\n"))
    });
    assert_eq!(stat_field(new_pid, 6).as_deref(), Some(new_pid.to_string().as_str()), "session");
    assert_ne!(stat_field(new_pid, 7).as_deref(), Some("0"), "tty_nr");
    let r = q.reply_to(r#"{"execute":"chardev-remove","arguments":{"id":"con"}}"#);
    assert!(r.contains("Chardev 'con' is busy"), "{r}");
    q.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait_output().0, Some(0));
}

#[test]
fn file_consoles_and_the_legacy_file_form() {
    let dir = TempDir::new("con-file");
    for form in ["chardev", "legacy"] {
        let log = dir.str(&format!("{form}.log"));
        let chardev = format!("file,id=con,path={log}");
        let legacy = format!("file:{log}");
        let args: Vec<&str> = if form == "chardev" {
            vec!["-chardev", &chardev, "-serial", "chardev:con"]
        } else {
            vec!["-serial", &legacy]
        };
        let mut all = args.clone();
        all.extend_from_slice(&["--", "sh", "-c", "tty; echo logged-$((6*7))"]);
        let (code, _, err) = run(&all);
        assert_eq!(code, Some(0), "{form}: {err}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("/dev/pts/") && text.ends_with("\r\nlogged-42\r\n"), "{form}: {text:?}");
    }
}

#[test]
fn the_legacy_unix_form_creates_serial0() {
    let dir = TempDir::new("con-unix");
    let sock = dir.str("s.sock");
    let serial = format!("unix:{sock},server=on,wait=off");
    let (_f, mut q) = qmp_pair(&["-serial", &serial, "--", "sh", "-c", "read x; echo got-$x; sleep 300"]);
    q.negotiate();
    let list = q.reply_to(r#"{"execute":"query-chardev"}"#);
    assert!(
        list.contains(&format!(
            r#"{{"frontend-open": true, "filename": "disconnected:unix:{sock},server=on", "label": "serial0"}}"#
        )),
        "{list}"
    );
    let mut con = Client::connect(std::path::Path::new(&sock));
    con.send("abc\n");
    con.until("got-abc\r\n");
    let r = q.reply_to(r#"{"execute":"chardev-remove","arguments":{"id":"serial0"}}"#);
    assert!(r.contains("Chardev 'serial0' is busy"), "{r}");
}

#[test]
fn serial_errors() {
    let (code, _, err) = run(&["-serial", "chardev:nope"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "fdmon: -serial chardev:nope: could not connect serial device to character backend 'chardev:nope'\n"
    );
    let (_, _, err) = run(&["-serial", "bogus"]);
    assert_eq!(err, "fdmon: -serial bogus: 'bogus' is not a valid char driver\nfdmon: -serial bogus: could not connect serial device to character backend 'bogus'\n");
    let (_, _, err) = run(&["-serial", "null", "-serial", "null"]);
    assert!(err.starts_with("fdmon: -serial null: only one -serial is supported"), "{err}");
    let (_, _, err) = run(&["-chardev", "null,id=n", "-mon", "n", "-serial", "chardev:n"]);
    assert_eq!(err, "fdmon: -serial chardev:n: Device 'n' is in use\nfdmon: -serial chardev:n: could not connect serial device to character backend 'chardev:n'\n");
    let (code, _, _) = run(&["-serial", "none", "-serial", "none", "-version"]);
    assert_eq!(code, Some(0));
}

#[test]
fn stdio_and_null_consoles() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    // -serial stdio: fdmon's stdin goes to the workload's terminal, its output to fdmon's stdout.
    let mut child = Command::new(bin())
        .args(["-serial", "stdio", "--", "sh", "-c", "read x; echo got-$x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let mut f = Fdmon { child };
    let mut out = String::new();
    f.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(out, "abc\r\ngot-abc\r\n");
    // -serial null: output goes nowhere, the workload still runs on a terminal.
    let dir = TempDir::new("con-null");
    let marker = dir.str("tty");
    let (code, out, err) = run(&["-serial", "null", "--", "sh", "-c", &format!("tty > {marker}; echo lost")]);
    assert_eq!((code, out.as_str(), err.as_str()), (Some(0), "", ""));
    assert!(std::fs::read_to_string(&marker).unwrap().starts_with("/dev/pts/"));
}

#[test]
fn a_console_with_fd_readiness_and_no_monitor_on_its_chardev() {
    // The readiness pipe lands at fd 5 also in a console's new session.
    let (mut f, mut q) = qmp_pair(&[
        "-chardev",
        "ringbuf,id=con",
        "-serial",
        "chardev:con",
        "-ready",
        "fd=5",
        "--",
        "sh",
        "-c",
        "tty; echo >&5; exec sleep 300",
    ]);
    q.negotiate();
    // The workload may say it is ready before this client negotiated (events reach only
    // negotiated clients), so readiness is read from query-workload, not waited for as an event.
    wait_until("the workload's readiness", || {
        q.reply_to(r#"{"execute":"query-workload"}"#).contains(r#""ready": true"#)
    });
    let mut seen = String::new();
    wait_until("the console's output", || {
        seen.push_str(&ringbuf_text(&mut q, "con"));
        seen.contains("/dev/pts/")
    });
    // The console's chardev takes no monitor.
    let r = q.reply_to(r#"{"execute":"monitor-add","arguments":{"id":"m","chardev":"con","mode":"readline"}}"#);
    assert!(r.contains("Device 'con' is in use"), "{r}");
    q.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait_output().0, Some(0));
}
