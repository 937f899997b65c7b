//! Nothing fdmon starts escapes it: double-forked, `setsid`ed and job-control descendants are
//! ended with the workload (quit, signals, its own exit, `system_reset`), the workload dies
//! with fdmon, signals without a QEMU meaning are forwarded or end fdmon cleanly, and a daemon's
//! workload never holds the caller's stdio.

mod common;

use common::*;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn start(extra: &[&str], workload: &[&str]) -> (Fdmon, Client) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(workload);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(b)]);
    let mut c = Client::new(a);
    c.negotiate();
    (f, c)
}

/// A `sleep` duration no other test (or test process) uses, e.g. `301.123400017`: the
/// processes of one test are found by that argument in /proc. Dropping it SIGKILLs whatever
/// still runs with it, so a failed test leaves nothing behind.
struct Marker(String);

impl Marker {
    fn new() -> Marker {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Marker(format!("301.{}{:04}", std::process::id(), n))
    }

    fn s(&self) -> &str {
        &self.0
    }

    /// Live (not zombie) `sleep` processes with this argument (not fdmon, whose command line
    /// names it too).
    fn pids(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
            let mut args = cmd.split(|&b| b == 0);
            let is_sleep = args.next().is_some_and(|a0| a0 == b"sleep" || a0.ends_with(b"/sleep"));
            if is_sleep && args.any(|a| a == self.0.as_bytes()) && proc_state(pid) != Some('Z') {
                v.push(pid);
            }
        }
        v
    }

    fn wait_running(&self) -> i32 {
        wait_until("the marked process", || !self.pids().is_empty());
        self.pids()[0]
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        for pid in self.pids() {
            // SAFETY: plain kill(2) of a test's own leftover.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

fn proc_pgrp(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split_whitespace().nth(2)?.parse().ok()
}

fn workload_pid(c: &mut Client) -> Option<i32> {
    // Skips events (a restart's WORKLOAD_READY may come first).
    c.send(r#"{"execute":"query-workload"}"#);
    let v = parse(&c.reply());
    let w = v.as_object()?.get("return")?.as_object()?.get("workload")?.as_object()?.clone();
    w.get("pid").and_then(|p| p.as_i64()).map(|p| p as i32)
}

#[test]
fn double_forked_leftover_ends_when_the_workload_exits() {
    let m = Marker::new();
    let dir = TempDir::new("dfork");
    let go = dir.str("go");
    // Exits only after the client negotiated (so it sees the SHUTDOWN event).
    let script = format!("sleep {} & while [ ! -e {go} ]; do sleep 0.02; done; exit 0", m.s());
    let (mut f, mut c) = start(&[], &["sh", "-c", &script]);
    std::fs::write(&go, "").unwrap();
    assert!(c.event().contains("guest-shutdown"));
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new(), "sleep outlived fdmon");
}

#[test]
fn setsid_escapee_ends_at_quit() {
    let m = Marker::new();
    let script = format!("setsid sleep {} & exec sleep 300", m.s());
    let (mut f, mut c) = start(&[], &["sh", "-c", &script]);
    let esc = m.wait_running();
    let wl = workload_pid(&mut c).unwrap();
    assert_ne!(proc_pgrp(esc), Some(wl), "left the workload's group");
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new(), "setsid'ed process outlived fdmon");
}

#[test]
fn leftovers_end_at_quit_with_no_shutdown() {
    let m = Marker::new();
    let dir = TempDir::new("noshut");
    let go = dir.str("go");
    let script = format!("setsid sleep {} & while [ ! -e {go} ]; do sleep 0.02; done; exit 3", m.s());
    let (mut f, mut c) = start(&["-no-shutdown"], &["sh", "-c", &script]);
    std::fs::write(&go, "").unwrap();
    assert!(c.event().contains("guest-shutdown"));
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    m.wait_running();
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new());
}

#[test]
fn leftovers_end_at_system_reset() {
    let m = Marker::new();
    let script = format!("setsid sleep {} & exec sleep 300", m.s());
    let (mut f, mut c) = start(&[], &["sh", "-c", &script]);
    let first = m.wait_running();
    let old = workload_pid(&mut c).unwrap();
    c.send(r#"{"execute":"system_reset"}"#);
    assert!(c.event().contains("RESET"));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    // The new workload starts its own marked process; the first one must be gone.
    wait_until("old escapee killed", || proc_state(first).is_none());
    wait_until("new workload", || workload_pid(&mut c).is_some_and(|p| p != old));
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    // The new workload's escapee is ended by quit (a SIGKILLed fdmon could not end it).
    m.wait_running();
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new());
}

#[test]
fn leftovers_end_at_sigterm() {
    let m = Marker::new();
    let script = format!("setsid sleep {} & exec sleep 300", m.s());
    let (mut f, mut c) = start(&[], &["sh", "-c", &script]);
    m.wait_running();
    f.signal(libc::SIGTERM);
    assert!(c.event().contains("host-signal"));
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new());
}

#[test]
fn workload_dies_with_a_killed_fdmon() {
    let m = Marker::new();
    let (mut f, _c) = start(&[], &["sleep", m.s()]);
    let pid = m.wait_running();
    f.signal(libc::SIGKILL);
    f.wait();
    wait_until("workload killed by PR_SET_PDEATHSIG", || proc_state(pid).is_none_or(|s| s == 'Z'));
}

#[test]
fn sigusr1_usr2_winch_are_forwarded_to_the_workload() {
    let dir = TempDir::new("fwd");
    let out = dir.str("got");
    let ready = dir.str("ready");
    let script = format!(
        "trap 'echo USR1 >> {out}' USR1; trap 'echo USR2 >> {out}' USR2; trap 'echo WINCH >> {out}' WINCH; \
         touch {ready}; while :; do sleep 0.05; done"
    );
    let (mut f, mut c) = start(&[], &["sh", "-c", &script]);
    wait_until("traps set", || std::path::Path::new(&ready).exists());
    for (sig, name) in [(libc::SIGUSR1, "USR1"), (libc::SIGUSR2, "USR2"), (libc::SIGWINCH, "WINCH")] {
        f.signal(sig);
        wait_until(name, || std::fs::read_to_string(&out).unwrap_or_default().contains(name));
    }
    // fdmon itself is unaffected.
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    c.expect_silence();
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn sigquit_ends_fdmon_through_the_shutdown_path() {
    let m = Marker::new();
    let (mut f, mut c) = start(&[], &["sleep", m.s()]);
    let pid = m.wait_running();
    f.signal(libc::SIGQUIT);
    assert_eq!(c.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(0));
    let me = std::process::id();
    assert!(err.starts_with(&format!("fdmon: terminating on signal 3 from pid {me} (")), "{err}");
    assert!(proc_state(pid).is_none(), "workload terminated and reaped");
}

#[test]
fn realtime_signal_ends_fdmon_through_the_shutdown_path() {
    let (mut f, mut c) = start(&[], &["sleep", "300"]);
    f.signal(libc::SIGRTMIN() + 3);
    assert!(c.event().contains("host-signal"));
    assert_eq!(f.wait().code(), Some(0));
}

/// A pseudo-terminal: (master, slave). The test holds the master.
fn open_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc pty calls; every returned fd is wrapped at once.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        let master = OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(s >= 0, "open pts");
        (master, OwnedFd::from_raw_fd(s))
    }
}

#[test]
fn interactive_shell_foreground_job_is_stopped_and_ended() {
    let m = Marker::new();
    let (master, slave) = open_pty();
    let (a, b) = UnixStream::pair().unwrap();
    let sock = b.as_raw_fd();
    let mut cmd = Command::new(bin());
    cmd.args(QMP_PAIR_ARGS).args(["--", "sh", "-i"]);
    cmd.env_remove("ENV").env("PS1", "$ ");
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec, on numbers taken before.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 || libc::dup2(sock, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut f = Fdmon { child: cmd.spawn().unwrap() };
    // The Command holds copies of the terminal's slave side: only fdmon's tree may keep it.
    drop(cmd);
    drop(b);
    // Drain the terminal so the shell never blocks on output.
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    let mut c = Client::new(a);
    c.negotiate();
    let sh = workload_pid(&mut c).unwrap();
    let line = format!("sleep {}\n", m.s());
    // SAFETY: write(2) of a valid buffer to the pty master we own.
    let n = unsafe { libc::write(master.as_raw_fd(), line.as_ptr().cast(), line.len()) };
    assert_eq!(n, line.len() as isize);
    let job = m.wait_running();
    assert_ne!(proc_pgrp(job), Some(sh), "the interactive shell runs its job in a group of its own");
    c.send(r#"{"execute":"stop"}"#);
    assert_eq!(c.event(), r#"{"event": "STOP"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    wait_until("foreground job stopped", || proc_state(job) == Some('T'));
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    wait_until("foreground job running", || proc_state(job) != Some('T'));
    c.send(r#"{"execute":"quit"}"#);
    // The interactive shell ignores SIGTERM: fdmon ends it with SIGKILL after the grace period.
    assert_eq!(f.wait().code(), Some(0));
    assert_eq!(m.pids(), Vec::<i32>::new(), "the shell's job outlived fdmon");
    drop(master);
    let _ = drain.join();
}

fn fd1_target(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/1")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// `x=$(fdmon -daemonize ... -- sleep N)` returns at once: the workload does not hold the
/// command substitution's pipe. Its stdio is /dev/null on the first start, after `cont` with
/// `-S`, and after `system_reset`.
#[test]
fn daemon_workload_gets_dev_null_stdio() {
    let dir = TempDir::new("daemonwl");
    let sock = dir.str("mon.sock");
    let pidfile = dir.str("fdmon.pid");
    let m = Marker::new();
    let chardev = format!("socket,path={sock},server=on,wait=off,id=mon");
    // The caller's stdout and stderr are a pipe: reading it to EOF must not wait for `sleep`.
    let mut child = Command::new(bin())
        .args(["-daemonize", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=mon,mode=control"])
        .args(["--", "sleep", m.s()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = Instant::now();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    err.read_to_string(&mut text).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(text, "");
    let daemon: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _kill = KillOnDrop(daemon);
    // The workload is still running after the pipe reached EOF.
    let wl = m.wait_running();
    assert!(t.elapsed() < Duration::from_secs(300));
    assert_eq!(fd1_target(wl), "/dev/null");
    let mut c = Client::connect(std::path::Path::new(&sock));
    c.negotiate();
    c.send(r#"{"execute":"system_reset"}"#);
    assert!(c.event().contains("RESET"));
    c.line();
    wait_until("restarted workload", || m.pids().first().is_some_and(|&p| p != wl));
    let again = m.pids()[0];
    assert_eq!(fd1_target(again), "/dev/null");
    assert_eq!(std::fs::read_link(format!("/proc/{again}/fd/2")).unwrap().display().to_string(), "/dev/null");
    c.send(r#"{"execute":"quit"}"#);
    wait_until("daemon gone", || proc_state(daemon).is_none_or(|s| s == 'Z'));
}

#[test]
fn daemon_workload_started_by_cont_gets_dev_null_and_umask_027() {
    let dir = TempDir::new("daemoncont");
    let sock = dir.str("mon.sock");
    let pidfile = dir.str("fdmon.pid");
    let log = dir.str("log.txt");
    let m = Marker::new();
    let chardev = format!("socket,path={sock},server=on,wait=off,id=mon");
    let file = format!("file,id=f,path={log}");
    let mut cmd = Command::new(bin());
    cmd.args(["-daemonize", "-S", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=mon,mode=control"])
        .args(["-chardev", &file, "--", "sleep", m.s()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: umask(2) is async-signal-safe. A permissive caller umask: the daemon uses
    // QEMU's 027 whatever the caller's is.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut text = String::new();
    child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let daemon: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _kill = KillOnDrop(daemon);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "file chardev mode under -daemonize: {mode:o}");
    let mut c = Client::connect(std::path::Path::new(&sock));
    c.negotiate();
    c.send(r#"{"execute":"cont"}"#);
    assert_eq!(c.event(), r#"{"event": "RESUME"}"#);
    c.line();
    let wl = m.wait_running();
    assert_eq!(fd1_target(wl), "/dev/null");
    assert_eq!(std::fs::read_link(format!("/proc/{wl}/fd/0")).unwrap().display().to_string(), "/dev/null");
    c.send(r#"{"execute":"quit"}"#);
    wait_until("daemon gone", || proc_state(daemon).is_none_or(|s| s == 'Z'));
    assert_eq!(m.pids(), Vec::<i32>::new());
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the daemon this test started (a no-op once it is gone).
        if proc_state(self.0).is_some_and(|s| s != 'Z') {
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// Runs fdmon as a session leader on a fresh terminal; returns it and a thread that collects
/// everything written to the terminal until the last slave fd closes.
fn spawn_on_pty(args: &[&str]) -> (Fdmon, OwnedFd, std::thread::JoinHandle<Vec<u8>>) {
    let (master, slave) = open_pty();
    let mut cmd = Command::new(bin());
    cmd.args(args);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let f = Fdmon { child: cmd.spawn().unwrap() };
    drop(cmd);
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    let out = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once fdmon (the last holder of the slave side) is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    (f, master, out)
}

/// A terminal's Ctrl-C comes from the kernel (si_pid 0): QEMU 7.2 prints only
/// `terminating on signal 2`, without "from pid 0 (<unknown process>)".
#[test]
fn ctrl_c_on_a_terminal_prints_qemus_message() {
    let dir = TempDir::new("ctrlc");
    let ready = dir.str("ready");
    let (mut f, master, out) = spawn_on_pty(&["-chardev", &format!("file,id=f,path={ready}")]);
    // The file chardev exists once fdmon is through start-up and its handlers are installed.
    wait_until("fdmon started", || std::path::Path::new(&ready).exists());
    // SAFETY: write(2) of one byte to the pty master we own.
    assert_eq!(unsafe { libc::write(master.as_raw_fd(), b"\x03".as_ptr().cast(), 1) }, 1);
    assert_eq!(f.wait().code(), Some(0));
    let text = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    assert!(text.ends_with("fdmon: terminating on signal 2\r\n"), "{text:?}");
    drop(master);
}

/// A start-up failure after the daemon forked (here: the workload cannot be executed) still
/// makes the starting process exit 1, with the message on the caller's stderr.
#[test]
fn daemonize_reports_a_workload_that_cannot_start() {
    let dir = TempDir::new("daemonexec");
    let sock = dir.str("mon.sock");
    let chardev = format!("socket,path={sock},server=on,wait=off,id=mon");
    let (code, _, err) = run(&[
        "-daemonize",
        "-chardev",
        &chardev,
        "-mon",
        "chardev=mon,mode=control",
        "--",
        "/nonexistent/fdmon-no-such-program",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: cannot execute '/nonexistent/fdmon-no-such-program': No such file or directory\n");
    assert!(!std::path::Path::new(&sock).exists(), "the daemon removed its socket");
}

/// A persistent `poll()` failure (here EINVAL: the pollfd array is longer than the fd limit,
/// lowered from outside with prlimit) must not spin: fdmon gives up with a clear message,
/// SHUTDOWN `host-error`, and exit status 1.
#[test]
fn persistent_poll_failure_is_fatal_not_a_busy_loop() {
    let (mut f, mut c) = start(&[], &["sleep", "300"]);
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit on our own child with valid rlimit structs (read, then lower the soft
    // limit only, which needs no privilege).
    let rc = unsafe { libc::prlimit(f.pid(), libc::RLIMIT_NOFILE, std::ptr::null(), &mut cur) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    let lim = libc::rlimit { rlim_cur: 1, rlim_max: cur.rlim_max };
    // SAFETY: as above.
    let rc = unsafe { libc::prlimit(f.pid(), libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    // Wake the loop up so that it calls poll() again with the new limit. (If it was not
    // blocked in poll() at the prlimit, it fails before reading this, and no reply comes.)
    c.send(r#"{"execute":"query-status"}"#);
    let mut l = c.line();
    if l.contains("return") {
        l = c.line();
    }
    assert_eq!(strip_timestamp(&l), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-error"}}"#);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: poll failed 50 times in a row: Invalid argument\n");
}
