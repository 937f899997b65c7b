//! The supervised workload: real `sh` children, run states mapped onto process-group signals,
//! exit-status propagation, fds the child sees, zombies, daemonizing and pidfiles.

mod common;

use common::*;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// Every start is followed by WORKLOAD_READY (at once: no `-ready`); returns its pid.
fn ready_event(c: &mut Client) -> i32 {
    let e = c.event();
    let pid = e.strip_prefix(r#"{"event": "WORKLOAD_READY", "data": {"pid": "#).and_then(|r| r.strip_suffix("}}"));
    pid.and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("not WORKLOAD_READY: {e}"))
}

/// Field 3 (state) and field 5 (pgrp) of /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid: i32 = it.next()?.parse().ok()?;
    let pgrp: i32 = it.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() {
            if let Some((st, ppid, _)) = proc_stat(p) {
                if ppid == pid {
                    v.push((p, st));
                }
            }
        }
    }
    v
}

fn status(c: &mut Client) -> String {
    c.send(r#"{"execute":"query-status"}"#);
    c.reply()
}

#[test]
fn starts_at_once_in_its_own_group_and_stop_cont_signal_the_group() {
    let dir = TempDir::new("wl");
    let marker = dir.str("grandchild");
    let script = format!("sleep 300 & echo $! > {marker}; wait");
    let (_f, mut c) = start_workload(&[], &["sh", "-c", &script]);
    assert_eq!(status(&mut c), r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#);
    let pid = workload_pid(&mut c).expect("workload pid");
    let (_, _, pgrp) = proc_stat(pid).unwrap();
    assert_eq!(pgrp, pid, "workload leads its own process group");
    wait_until("grandchild pid", || std::fs::read_to_string(&marker).map(|s| s.ends_with('\n')).unwrap_or(false));
    let gc: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    c.send(r#"{"execute":"stop"}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    wait_until("child stopped", || proc_stat(pid).map(|s| s.0) == Some('T'));
    wait_until("grandchild stopped", || proc_stat(gc).map(|s| s.0) == Some('T'));
    // The monitor keeps answering while the workload is stopped.
    assert!(status(&mut c).contains("paused"));
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    wait_until("child running", || proc_stat(pid).map(|s| s.0) != Some('T'));
    wait_until("grandchild running", || proc_stat(gc).map(|s| s.0) != Some('T'));
}

#[test]
fn dash_s_waits_for_cont() {
    let (_f, mut c) = start_workload(&["-S"], &["sleep", "300"]);
    assert!(status(&mut c).contains("prelaunch"));
    assert_eq!(workload_pid(&mut c), None);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    let ready = ready_event(&mut c);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    let pid = workload_pid(&mut c).expect("started by cont");
    assert_eq!(pid, ready);
    assert!(proc_stat(pid).is_some());
}

#[test]
fn exit_status_is_propagated() {
    let (mut f, mut c) = start_workload(&["-S"], &["sh", "-c", "read x; exit 3"]);
    c.send(r#"{"execute":"cont"}"#);
    c.event();
    ready_event(&mut c);
    c.line();
    let _ = &mut c;
    // The workload reads fdmon's stdin (/dev/null here): EOF at once, exit 3.
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(3));
}

#[test]
fn death_by_a_foreign_signal_is_a_panic() {
    let (mut f, mut c) = start_workload(&["-S"], &["sh", "-c", "kill -SEGV $$"]);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    ready_event(&mut c);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(128 + 11));
}

#[test]
fn powerdown_terminates_the_group_as_a_normal_shutdown() {
    let (mut f, mut c) = start_workload(&[], &["sleep", "300"]);
    c.send(r#"{"execute":"system_powerdown"}"#);
    assert_eq!(c.event(), r#"{"event": "POWERDOWN"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(128 + 15));
}

#[test]
fn powerdown_while_paused_also_continues() {
    let (mut f, mut c) = start_workload(&[], &["sleep", "300"]);
    c.send(r#"{"execute":"stop"}"#);
    c.event();
    c.line();
    c.send(r#"{"execute":"system_powerdown"}"#);
    assert_eq!(c.event(), r#"{"event": "POWERDOWN"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert!(c.event().contains("guest-shutdown"));
    assert_eq!(f.wait().code(), Some(128 + 15));
}

#[test]
fn no_shutdown_keeps_fdmon_up_and_reset_restarts() {
    let (_f, mut c) = start_workload(&["-no-shutdown", "-S"], &["sh", "-c", "exit 7"]);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    ready_event(&mut c);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(status(&mut c), r#"{"return": {"status": "shutdown", "singlestep": false, "running": false}}"#);
    let info = c.cmd(r#"{"execute":"query-workload"}"#);
    assert!(info.contains(r#""exit-code": 7"#), "{info}");
    assert_eq!(
        c.cmd(r#"{"execute":"cont"}"#),
        r#"{"error": {"class": "GenericError", "desc": "Resetting the Virtual Machine is required"}}"#
    );
    c.send(r#"{"execute":"system_reset"}"#);
    assert_eq!(c.event(), r#"{"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert!(status(&mut c).contains("prelaunch"));
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    ready_event(&mut c);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    // It exits again at once.
    assert!(c.event().contains("guest-shutdown"));
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
}

#[test]
fn reset_restarts_a_running_workload_with_a_new_pid() {
    let (f, mut c) = start_workload(&[], &["sleep", "300"]);
    let old = workload_pid(&mut c).unwrap();
    c.send(r#"{"execute":"system_reset"}"#);
    assert!(c.event().contains("RESET"));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    // The reset returns at once; the new workload starts when the old one has been reaped.
    wait_until("new workload", || workload_pid(&mut c).is_some());
    let new = workload_pid(&mut c).unwrap();
    assert_ne!(old, new);
    assert!(proc_stat(old).is_none(), "old workload reaped");
    assert!(status(&mut c).contains("running"));
    // From paused: killed, prelaunch.
    c.send(r#"{"execute":"stop"}"#);
    c.event();
    c.line();
    c.send(r#"{"execute":"system_reset"}"#);
    c.event();
    c.line();
    assert!(status(&mut c).contains("prelaunch"));
    assert_eq!(workload_pid(&mut c), None);
    // Killed at once, reaped by the loop soon after (the reset does not wait for it).
    wait_until("old workload reaped", || proc_stat(new).is_none() && children_of(f.pid()).is_empty());
}

#[test]
fn hundred_rapid_resets_leave_no_zombie() {
    let (f, mut c) = start_workload(&[], &["sh", "-c", "sleep 300 & sleep 300"]);
    for i in 0..100 {
        c.send(&format!(r#"{{"execute":"system_reset","id":{i}}}"#));
    }
    for i in 0..100 {
        assert_eq!(c.reply(), format!(r#"{{"return": {{}}, "id": {i}}}"#));
    }
    assert!(status(&mut c).contains("running"));
    wait_until("the new workload", || workload_pid(&mut c).is_some());
    let kids = children_of(f.pid());
    assert_eq!(kids.len(), 1, "exactly the current workload: {kids:?}");
    assert!(kids.iter().all(|(_, st)| *st != 'Z'), "{kids:?}");
}

#[test]
fn quit_terminates_the_workload_then_exits_zero() {
    let dir = TempDir::new("quit");
    let ready = dir.str("ready");
    // Ignores SIGTERM: only the SIGKILL after the grace period ends it.
    let script = format!("trap '' TERM; touch {ready}; while :; do sleep 1; done");
    let (mut f, mut c) = start_workload(&["-shutdown-timeout", "0.5"], &["sh", "-c", &script]);
    wait_until("workload ready", || std::path::Path::new(&ready).exists());
    let pid = workload_pid(&mut c).unwrap();
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
    assert!(proc_stat(pid).is_none());
}

#[test]
fn sigterm_to_fdmon_and_a_second_signal_cuts_the_grace_short() {
    let dir = TempDir::new("sig");
    let ready = dir.str("ready");
    let script = format!("trap '' TERM; touch {ready}; while :; do sleep 1; done");
    let (mut f, mut c) = start_workload(&["-shutdown-timeout", "600"], &["sh", "-c", &script]);
    wait_until("workload ready", || std::path::Path::new(&ready).exists());
    f.signal(libc::SIGTERM);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#);
    c.expect_eof();
    f.signal(libc::SIGTERM);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(0));
    assert!(err.starts_with("fdmon: terminating on signal 15 from pid "), "{err}");
}

#[test]
fn workload_sees_only_stdio_and_passed_fds() {
    let dir = TempDir::new("fds");
    let (keep_r, _keep_w) = UnixStream::pair().unwrap();
    let (stray, _stray_w) = UnixStream::pair().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let (l, _) = listener(&dir, "l.sock");
    let args = [
        "-chardev",
        "socket,fd=3,id=mon",
        "-mon",
        "chardev=mon,mode=control",
        "-chardev",
        "socket,fd=4,server=on,wait=off,id=l",
        "-pass-fd",
        "5",
        "--",
        "sleep",
        "300",
    ];
    // fd 6 is inherited by fdmon but not named: it must not reach the workload either.
    let _f = spawn_env(
        bin(),
        &args,
        vec![OwnedFd::from(b), OwnedFd::from(l), OwnedFd::from(keep_r), OwnedFd::from(stray)],
        &[("LISTEN_FDS", "1"), ("LISTEN_PID", "1"), ("LISTEN_FDNAMES", "x")],
    );
    let mut c = Client::new(a);
    c.negotiate();
    let pid = workload_pid(&mut c).unwrap();
    // Before its exec the child still holds fdmon's close-on-exec fds: wait for `sleep`.
    wait_until("the workload's exec", || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
    });
    // `sleep` may open a file for a moment while it starts (its locale): wait until it holds
    // exactly what it inherited. A leaked fd never goes away, so this still fails on a leak.
    let held = || {
        let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok()).collect())
            .unwrap_or_default();
        fds.sort();
        fds
    };
    wait_until("the workload to hold only fds 0, 1, 2 and 5", || held() == [0, 1, 2, 5]);
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(!env.contains("LISTEN_"), "{env}");
    let sigs = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for key in ["SigBlk:", "SigIgn:"] {
        let line = sigs.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

#[test]
fn exec_failure_at_start_up_and_on_cont() {
    let (code, _, err) = run(&["--", "/nonexistent/program"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: cannot execute '/nonexistent/program': No such file or directory\n");
    let (_f, mut c) = start_workload(&["-S"], &["/nonexistent/program"]);
    assert_eq!(
        c.cmd(r#"{"execute":"cont"}"#),
        r#"{"error": {"class": "GenericError", "desc": "cannot execute '/nonexistent/program': No such file or directory"}}"#
    );
    assert!(status(&mut c).contains("prelaunch"));
}

#[test]
fn daemonize_is_ready_when_the_parent_exits() {
    let dir = TempDir::new("daemon");
    let sock = dir.str("d.sock");
    let pidfile = dir.str("pid");
    let chardev = format!("socket,path={sock},server=on,wait=off,id=mon");
    let (code, _, err) =
        run(&["-daemonize", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=mon,mode=control"]);
    assert_eq!(code, Some(0), "{err}");
    // Connect immediately: no retry loop.
    let mut c = Client::connect(std::path::Path::new(&sock));
    c.negotiate();
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let (_, ppid, _) = proc_stat(pid).unwrap();
    assert_eq!(ppid, 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&pidfile).unwrap().permissions().mode() & 0o777, 0o600);
    // A second instance on the same pidfile fails.
    let (code, _, err) = run(&["-pidfile", &pidfile]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: cannot create PID file: Cannot lock pid file: Resource temporarily unavailable\n");
    c.send(r#"{"execute":"quit"}"#);
    c.event();
    c.line();
    c.expect_eof();
    wait_until("pidfile removed", || !std::path::Path::new(&pidfile).exists());
    let (code, _, err) = run(&["-daemonize", "-chardev", "stdio,id=s"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: -chardev stdio,id=s: cannot use stdio with -daemonize\n");
    let missing = dir.str("nodir/pid");
    let (code, _, err) = run(&["-pidfile", &missing]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("fdmon: cannot create PID file: Could not create '{missing}': No such file or directory\n")
    );
}

#[test]
fn name_uuid_and_process_name() {
    let (f, mut c) = start_workload(
        &["-name", "guest=vm1,process=fdmonproc", "-uuid", "12345678-1234-1234-1234-123456789abc"],
        &["sleep", "300"],
    );
    assert_eq!(c.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {"name": "vm1"}}"#);
    assert_eq!(c.cmd(r#"{"execute":"query-uuid"}"#), r#"{"return": {"UUID": "12345678-1234-1234-1234-123456789abc"}}"#);
    assert_eq!(std::fs::read_to_string(format!("/proc/{}/comm", f.pid())).unwrap(), "fdmonproc\n");
}

#[test]
fn interactive_workload_owns_the_terminal() {
    // `script` gives fdmon a pseudo-terminal as stdin. A workload in its own process group
    // reading the terminal would be stopped by SIGTTIN unless fdmon made it the foreground.
    // script(1) (bsdutils) is required (CI installs it): missing, this fails, it does not skip.
    let v = std::process::Command::new("script").arg("--version").output();
    assert!(v.is_ok(), "script(1) is required for this test: {v:?}");
    let cmd = format!("{} -- sh -c 'read x; echo got:$x; exit 4'", bin());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{Read, Write};
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "workload stuck (SIGTTIN?)");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("got:hello"), "{out:?}");
    assert_eq!(status.code(), Some(4));
}

#[test]
fn exec_failure_on_restart_leaves_prelaunch() {
    let dir = TempDir::new("restart");
    let prog = dir.str("myserver");
    copy_executable("/bin/sleep", &prog);
    let (_f, mut c) = start_workload(&[], &[&prog, "300"]);
    assert!(workload_pid(&mut c).is_some());
    std::fs::remove_file(&prog).unwrap();
    c.send(r#"{"execute":"system_reset"}"#);
    assert!(c.event().contains("RESET"));
    assert_eq!(
        c.line(),
        format!(
            r#"{{"error": {{"class": "GenericError", "desc": "cannot execute '{prog}': No such file or directory"}}}}"#
        )
    );
    assert!(status(&mut c).contains("prelaunch"));
    assert_eq!(workload_pid(&mut c), None);
    copy_executable("/bin/sleep", &prog);
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    // WORKLOAD_READY comes before or after the reply (the start waits for the old reap).
    assert_eq!(c.reply(), r#"{"return": {}}"#);
    // Starts as soon as the old one (killed by the reset) has been reaped.
    wait_until("restarted workload", || workload_pid(&mut c).is_some());
}

#[test]
fn daemonize_reports_start_up_failure() {
    let dir = TempDir::new("daemonfail");
    let bad = dir.str("nodir/x.sock");
    let chardev = format!("socket,path={bad},server=on,wait=off,id=mon");
    let (code, _, err) = run(&["-daemonize", "-chardev", &chardev, "-mon", "chardev=mon,mode=control"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {chardev}: Failed to bind socket to {bad}: No such file or directory\n"));
}
