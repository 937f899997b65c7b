//! Workload readiness (`-ready notify`, `-ready fd=N`, none) with real clients: the Debian
//! `systemd-notify`, a shell writing to its fd N; WORKLOAD_READY and `query-workload` across
//! `-S`/`cont`/`system_reset`; `-daemonize` returning exactly after readiness; fdmon under an
//! inherited `NOTIFY_SOCKET`; bounded handling of hostile datagrams.
mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fdmon::json::Value;

/// `systemd-notify` must be installed (`.ci/run` installs the `systemd` package): fail, never
/// skip.
fn require_systemd_notify() {
    let ok = Command::new("systemd-notify")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "systemd-notify is missing: install the Debian 'systemd' package (.ci/run does)");
}

/// A shell line that waits (bounded by the test's own timeout) until `path` exists.
fn gate(path: &str) -> String {
    format!("while [ ! -e {path} ]; do sleep 0.02; done")
}

fn workload(c: &mut Client) -> Value {
    let r = parse(&c.cmd(r#"{"execute": "query-workload"}"#));
    r.as_object().unwrap().get("return").unwrap().as_object().unwrap().get("workload").unwrap().clone()
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_object().unwrap().get(k)
}

fn pid_of(v: &Value) -> i32 {
    field(v, "pid").and_then(Value::as_i64).expect("pid") as i32
}

fn ready_of(v: &Value) -> bool {
    field(v, "ready").and_then(Value::as_bool).expect("ready is always there")
}

fn status_of(v: &Value) -> Option<String> {
    field(v, "status").map(|s| s.as_str().expect("status is a string").to_string())
}

/// The next event, which must be WORKLOAD_READY; returns its pid.
fn ready_event(c: &mut Client) -> i32 {
    let e = parse(&c.event());
    let o = e.as_object().unwrap();
    assert_eq!(o.get("event").unwrap().as_str(), Some("WORKLOAD_READY"), "{o:?}");
    let d = o.get("data").unwrap().as_object().unwrap();
    assert_eq!(d.len(), 1, "data is exactly {{pid}}: {d:?}");
    d.get("pid").unwrap().as_i64().unwrap() as i32
}

/// Runs `req` and returns the events that came before its reply (timestamps stripped).
fn exec_events(c: &mut Client, req: &str) -> Vec<String> {
    c.send(req);
    c.send("\n");
    let mut events = Vec::new();
    loop {
        let l = c.line();
        if l.contains(r#""event": "#) {
            events.push(strip_timestamp(&l));
        } else {
            assert!(l.starts_with(r#"{"return""#), "{l}");
            return events;
        }
    }
}

fn event_pid(e: &str) -> i32 {
    let v = parse(e);
    let o = v.as_object().unwrap();
    assert_eq!(o.get("event").unwrap().as_str(), Some("WORKLOAD_READY"), "{e}");
    o.get("data").unwrap().as_object().unwrap().get("pid").unwrap().as_i64().unwrap() as i32
}

fn environ(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn env_value(pid: i32, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    environ(pid).into_iter().find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
}

fn open_fds(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn notify_with_systemd_notify_status_then_ready() {
    require_systemd_notify();
    let dir = TempDir::new("ready-notify");
    let (g1, g2, rc) = (dir.str("g1"), dir.str("g2"), dir.str("rc"));
    let script = format!(
        "{}; systemd-notify --status='starting up'; {}; systemd-notify --ready --status=serving; echo $? > {rc}; exec sleep 60",
        gate(&g1),
        gate(&g2)
    );
    let (_f, mut c) = qmp_pair(&["-ready", "notify", "--", "sh", "-c", &script]);
    c.negotiate();
    let w = workload(&mut c);
    let pid = pid_of(&w);
    assert!(!ready_of(&w), "{w:?}");
    assert_eq!(status_of(&w), None);
    // The workload got fdmon's private socket: a path in a directory only we can enter.
    let sock = env_value(pid, "NOTIFY_SOCKET").expect("NOTIFY_SOCKET for the workload");
    let parent = std::path::Path::new(&sock).parent().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(parent).unwrap().permissions().mode() & 0o777, 0o700, "{sock}");

    std::fs::write(&g1, "").unwrap();
    wait_until("STATUS=starting up", || status_of(&workload(&mut c)).as_deref() == Some("starting up"));
    assert!(!ready_of(&workload(&mut c)), "STATUS alone is not READY");
    c.expect_silence();

    std::fs::write(&g2, "").unwrap();
    assert_eq!(ready_event(&mut c), pid);
    let w = workload(&mut c);
    assert!(ready_of(&w));
    assert_eq!(status_of(&w).as_deref(), Some("serving"));
    // systemd-notify (252 waits for BARRIER=1 with a pipe fd) returned with success: fdmon
    // closed the fd at once.
    wait_until("systemd-notify's exit status", || std::fs::read_to_string(&rc).is_ok_and(|s| s.ends_with('\n')));
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "0\n");
    let hmp = parse(&c.cmd(r#"{"execute": "human-monitor-command", "arguments": {"command-line": "info workload"}}"#));
    assert_eq!(
        hmp.as_object().unwrap().get("return").unwrap().as_str().unwrap(),
        format!("workload: sh, pid {pid}, ready, status \"serving\"\r\n")
    );
    drop(c);
    // The private directory goes with fdmon.
    drop(_f);
    assert!(!parent.exists(), "{parent:?} left behind");
}

#[test]
fn barrier_returns_at_once_and_other_assignments_are_ignored() {
    require_systemd_notify();
    let dir = TempDir::new("ready-barrier");
    let rc = dir.str("rc");
    // BARRIER=1 alone (with its pipe fd), unknown assignments, READY=0: none makes it ready.
    let script = format!(
        "systemd-notify MAINPID=1 FOO=bar READY=0; a=$?; systemd-notify --status=x; echo $a $? > {rc}; exec sleep 60"
    );
    let (_f, mut c) = qmp_pair(&["-ready", "notify", "--", "sh", "-c", &script]);
    c.negotiate();
    wait_until("both systemd-notify runs", || std::fs::read_to_string(&rc).is_ok_and(|s| s.ends_with('\n')));
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "0 0\n");
    wait_until("STATUS=x", || status_of(&workload(&mut c)).as_deref() == Some("x"));
    assert!(!ready_of(&workload(&mut c)));
    c.expect_silence();
}

#[test]
fn fd_mode_ready_on_a_line_and_only_fd_n_leaks() {
    let dir = TempDir::new("ready-fd");
    let g = dir.str("g");
    let script = format!("{}; printf 'no newline yet' >&5; sleep 0.1; echo >&5; exec sleep 60", gate(&g));
    let (_f, mut c) = qmp_pair(&["-ready", "fd=5", "--", "sh", "-c", &script]);
    c.negotiate();
    let w = workload(&mut c);
    let pid = pid_of(&w);
    assert!(!ready_of(&w));
    let target = std::fs::read_link(format!("/proc/{pid}/fd/5")).unwrap();
    assert!(target.to_string_lossy().starts_with("pipe:"), "{target:?}");
    assert_eq!(env_value(pid, "NOTIFY_SOCKET"), None, "no NOTIFY_SOCKET without -ready notify");
    c.expect_silence();
    std::fs::write(&g, "").unwrap();
    assert_eq!(ready_event(&mut c), pid);
    assert!(ready_of(&workload(&mut c)));
    // After `exec sleep 60` (once the exec closed the shell's own CLOEXEC fds, which happens
    // after /proc/PID/exe changes): exactly 0, 1, 2 and the notification fd.
    wait_until("exec sleep with fds 0, 1, 2, 5", || {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("sleep"))
            && open_fds(pid) == [0, 1, 2, 5]
    });
}

#[test]
fn fd_mode_closed_without_a_line_is_never_ready() {
    let (f, mut c) = qmp_pair(&["-ready", "fd=7", "--", "sh", "-c", "exec 7>&-; exec sleep 60"]);
    c.negotiate();
    c.expect_silence();
    let w = workload(&mut c);
    assert!(!ready_of(&w));
    // fdmon is idle, not spinning on the hung-up pipe.
    let ticks = |p: i32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
        let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = ticks(f.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert!(ticks(f.pid()) - before < 10, "fdmon busy while waiting for readiness");
}

#[test]
fn without_ready_the_exec_is_readiness_across_s_cont_and_reset() {
    let (_f, mut c) = qmp_pair(&["-S", "--", "sleep", "60"]);
    c.negotiate();
    let w = workload(&mut c);
    assert_eq!(field(&w, "pid"), None);
    assert!(!ready_of(&w));
    let ev = exec_events(&mut c, r#"{"execute": "cont"}"#);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0], r#"{"event": "RESUME"}"#);
    let first = event_pid(&ev[1]);
    let w = workload(&mut c);
    assert_eq!((pid_of(&w), ready_of(&w)), (first, true));
    let ev = exec_events(&mut c, r#"{"execute": "system_reset"}"#);
    assert!(ev[0].starts_with(r#"{"event": "RESET""#), "{ev:?}");
    // The restart happens once the old tree is reaped, after the reply or before it.
    let second = if ev.len() > 1 { event_pid(&ev[1]) } else { ready_event(&mut c) };
    assert_ne!(second, first);
    let w = workload(&mut c);
    assert_eq!((pid_of(&w), ready_of(&w)), (second, true));
}

#[test]
fn notify_across_s_cont_and_reset() {
    require_systemd_notify();
    let dir = TempDir::new("ready-reset");
    let g = dir.str("g");
    // Every start waits for the gate, then notifies (the gate stays, so restarts go on).
    let script = format!("{}; systemd-notify --ready --status=up; exec sleep 60", gate(&g));
    let (_f, mut c) = qmp_pair(&["-S", "-ready", "notify", "--", "sh", "-c", &script]);
    c.negotiate();
    assert!(!ready_of(&workload(&mut c)));
    assert_eq!(exec_events(&mut c, r#"{"execute": "cont"}"#), vec![r#"{"event": "RESUME"}"#.to_string()]);
    let w = workload(&mut c);
    assert!(!ready_of(&w), "not ready before it notified");
    c.expect_silence();
    std::fs::write(&g, "").unwrap();
    let first = ready_event(&mut c);
    assert_eq!(first, pid_of(&w));
    let ev = exec_events(&mut c, r#"{"execute": "system_reset"}"#);
    assert_eq!(ev.len(), 1, "the restart is ready only once it notified: {ev:?}");
    let second = ready_event(&mut c);
    assert_ne!(second, first);
    let w = workload(&mut c);
    assert_eq!((pid_of(&w), ready_of(&w), status_of(&w).as_deref()), (second, true, Some("up")));
    // A reset while paused goes back to prelaunch: not ready, no pid.
    exec_events(&mut c, r#"{"execute": "stop"}"#);
    exec_events(&mut c, r#"{"execute": "system_reset"}"#);
    wait_until("no pid after the reset", || field(&workload(&mut c), "pid").is_none());
    assert!(!ready_of(&workload(&mut c)));
}

/// A daemon started by a test: killed (by its pid file) if the test fails.
struct Daemon(String);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(p) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = p.trim().parse::<i32>() {
                // SAFETY: kill(2) on the daemon this test started (its pid file is ours).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn daemonize_returns_exactly_after_readiness() {
    require_systemd_notify();
    let dir = TempDir::new("ready-daemon");
    let (sock, pidfile, mark) = (dir.str("m.sock"), dir.str("pid"), dir.str("mark"));
    let chardev = format!("socket,id=m,path={sock},server=on,wait=off");
    let script = format!("sleep 0.5; touch {mark}; systemd-notify --ready; exec sleep 60");
    let _guard = Daemon(pidfile.clone());
    let out = Command::new(bin())
        .args(["-daemonize", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=m,mode=control"])
        .args(["-ready", "notify", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()), (Some(0), ""));
    assert!(std::path::Path::new(&mark).exists(), "-daemonize returned before the workload was ready");
    // The next line talks to the workload's monitor: no sleep, no retry.
    let (code, text, err) = run(&["-client", &sock, "query-workload"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(text.contains("\"ready\": true"), "{text}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(run(&["-client", &sock, "quit"]).0, Some(0));
    wait_until("the daemon to exit", || !alive(pid));
}

#[test]
fn daemonize_fails_when_the_workload_dies_first() {
    let dir = TempDir::new("ready-daemon-fail");
    let (sock, pidfile) = (dir.str("m.sock"), dir.str("pid"));
    let chardev = format!("socket,id=m,path={sock},server=on,wait=off");
    let _guard = Daemon(pidfile.clone());
    for (ready, script, why) in
        [("notify", "sleep 0.2; exit 3", "exited with status 3"), ("fd=5", "kill -9 $$", "was killed by signal 9")]
    {
        let out = Command::new(bin())
            .args(["-daemonize", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=m,mode=control"])
            .args(["-ready", ready, "--", "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{ready}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("fdmon: the workload {why} before it was ready\n"));
        wait_until("the daemon to go", || !std::path::Path::new(&pidfile).exists());
    }
    // `quit` before the workload is ready: the caller is told too.
    let script = format!("while [ ! -e {sock} ]; do sleep 0.02; done; {} -client {sock} quit; exec sleep 60", bin());
    let out = Command::new(bin())
        .args(["-daemonize", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=m,mode=control"])
        .args(["-ready", "fd=5", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.ends_with("fdmon: exiting before the workload was ready\n"), "{err}");
}

#[test]
fn daemonize_with_s_is_ready_when_the_monitors_listen() {
    let dir = TempDir::new("ready-daemon-s");
    let (sock, pidfile) = (dir.str("m.sock"), dir.str("pid"));
    let chardev = format!("socket,id=m,path={sock},server=on,wait=off");
    let _guard = Daemon(pidfile.clone());
    let out = Command::new(bin())
        .args(["-daemonize", "-S", "-pidfile", &pidfile, "-chardev", &chardev, "-mon", "chardev=m,mode=control"])
        .args(["-ready", "fd=5", "--", "sleep", "60"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (_, text, _) = run(&["-client", &sock, "query-workload"]);
    assert_eq!(text, "{\"workload\": {\"program\": \"sleep\", \"ready\": false}}\n");
    assert_eq!(run(&["-client", &sock, "quit"]).0, Some(0));
    wait_until("the daemon to go", || !std::path::Path::new(&pidfile).exists());
}

/// Receives one datagram within `wait` (None: nothing came).
fn recv_within(s: &UnixDatagram, wait: Duration) -> Option<String> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    s.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn fdmon_under_a_service_manager_notify_socket() {
    let dir = TempDir::new("ready-sd");
    let path = dir.str("sd.sock");
    let manager = UnixDatagram::bind(&path).unwrap();
    let g = dir.str("g");
    let script = format!("{}; echo >&5; exec sleep 60", gate(&g));
    let (l, _) = listener(&dir, "q.sock");
    let mut args: Vec<&str> = QMP_ARGS.to_vec();
    args.extend(["-ready", "fd=5", "--", "sh", "-c", &script]);
    let f = spawn_env(bin(), &args, vec![OwnedFd::from(l)], &[("NOTIFY_SOCKET", &path)]);
    let mut c = Client::connect_retry(&dir.path("q.sock"));
    c.negotiate();
    let pid = pid_of(&workload(&mut c));
    assert_eq!(recv_within(&manager, QUIET), None, "READY=1 before the workload was ready");
    assert_eq!(env_value(pid, "NOTIFY_SOCKET"), None, "the workload saw fdmon's NOTIFY_SOCKET");
    std::fs::write(&g, "").unwrap();
    assert_eq!(recv_within(&manager, TIMEOUT).as_deref(), Some("READY=1"));
    assert_eq!(recv_within(&manager, QUIET), None, "READY=1 once");
    drop(f);

    // With -ready notify the workload gets fdmon's private socket instead; without a workload
    // fdmon is ready at start-up. An abstract address works too.
    let name = format!("fdmon-test-{}", std::process::id());
    use std::os::linux::net::SocketAddrExt;
    let abs = UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    let at = format!("@{name}");
    let script = "systemd-notify --ready; exec sleep 60";
    let (f, mut c) = {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
        args.extend(["-ready", "notify", "--", "sh", "-c", script]);
        (spawn_env(bin(), &args, vec![OwnedFd::from(b)], &[("NOTIFY_SOCKET", &at)]), Client::new(a))
    };
    require_systemd_notify();
    assert_eq!(recv_within(&abs, TIMEOUT).as_deref(), Some("READY=1"));
    c.negotiate();
    let pid = pid_of(&workload(&mut c));
    // The shell execs `sleep` right after systemd-notify returned: while an execve runs,
    // /proc/PID/environ reads empty, so read it once the exec is over.
    let mut theirs = None;
    wait_until("the workload's environment", || {
        theirs = env_value(pid, "NOTIFY_SOCKET");
        theirs.is_some()
    });
    let theirs = theirs.expect("private NOTIFY_SOCKET");
    assert_ne!(theirs, at);
    assert!(theirs.starts_with('/'), "{theirs}");
    drop(f);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let _f = spawn_env(bin(), QMP_PAIR_ARGS, vec![OwnedFd::from(b)], &[("NOTIFY_SOCKET", &at)]);
    assert_eq!(recv_within(&abs, TIMEOUT).as_deref(), Some("READY=1"));
    drop(a);
}

fn vm_rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sends `data` with `fd` attached (SCM_RIGHTS) on an unbound datagram socket to `path`;
/// false when the receiver's queue is full.
fn send_with_fd(sock: &UnixDatagram, path: &str, data: &[u8], fd: i32) -> bool {
    let addr = {
        // SAFETY: sockaddr_un is plain old data; all-zero is valid.
        let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        a.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (i, b) in path.bytes().enumerate() {
            a.sun_path[i] = b as libc::c_char;
        }
        a
    };
    let mut control = [0u64; 8];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain old data; every pointer set below outlives the sendmsg call, and
    // the control buffer (64 bytes, aligned) holds one cmsg with one int.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &addr as *const libc::sockaddr_un as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) >= 0
    }
}

#[test]
fn hostile_datagrams_stay_bounded() {
    require_systemd_notify();
    let dir = TempDir::new("ready-flood");
    let (g, rc) = (dir.str("g"), dir.str("rc"));
    // The workload itself sends a huge STATUS (ignored whole) and a long one (cut), then waits.
    let script = format!(
        "systemd-notify --status=\"$(head -c 100000 /dev/zero | tr '\\0' a)\"; systemd-notify --status=\"$(head -c 3000 /dev/zero | tr '\\0' b)\"; echo $? > {rc}; {}; systemd-notify --ready; exec sleep 60",
        gate(&g)
    );
    let (f, mut c) = qmp_pair(&["-ready", "notify", "--", "sh", "-c", &script]);
    c.negotiate();
    let pid = pid_of(&workload(&mut c));
    wait_until("the long STATUS", || status_of(&workload(&mut c)).is_some_and(|s| s.starts_with('b')));
    let s = status_of(&workload(&mut c)).unwrap();
    assert!(s.len() <= 256 && s.bytes().all(|b| b == b'b'), "STATUS is cut: {} bytes", s.len());
    let path = env_value(pid, "NOTIFY_SOCKET").unwrap();

    // A stranger (this test is no descendant of fdmon) floods the socket with READY=1, a
    // pipe fd in every datagram, and oversized datagrams: nothing is believed, every fd is
    // closed, memory and fd count stay flat.
    let rss0 = vm_rss_kib(f.pid());
    let fds0 = f.fd_count();
    let stranger = UnixDatagram::unbound().unwrap();
    let big = vec![b'x'; 60000];
    let mut pipes = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut sent = 0;
    while sent < 3000 {
        assert!(Instant::now() < deadline, "fdmon stopped draining its notify socket ({sent} sent)");
        let mut p = [0i32; 2];
        // SAFETY: `p` is a valid array of two ints for pipe to fill.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = (owned(p[0]), owned(p[1]));
        let data: &[u8] = if sent % 3 == 0 { &big } else { b"READY=1\nSTATUS=owned" };
        if send_with_fd(&stranger, &path, data, w.as_raw_fd()) {
            sent += 1;
            if pipes.len() < 50 {
                pipes.push(r);
            }
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(w);
    }
    // The fds we passed are closed by fdmon: each read end sees EOF.
    for r in &pipes {
        let mut pfd = libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, TIMEOUT.as_millis() as i32) };
        assert!(n == 1 && pfd.revents & libc::POLLHUP != 0, "fdmon kept a passed fd");
    }
    let w = workload(&mut c);
    assert!(!ready_of(&w), "a stranger's READY=1 was believed");
    assert!(status_of(&w).unwrap().starts_with('b'));
    assert!(f.fd_count() <= fds0, "fd count grew: {} -> {}", fds0, f.fd_count());
    let rss1 = vm_rss_kib(f.pid());
    assert!(rss1 < rss0 + 1024, "memory grew: {rss0} KiB -> {rss1} KiB");
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "0\n");
    // And the workload still gets through.
    drop(stranger);
    std::fs::write(&g, "").unwrap();
    assert_eq!(ready_event(&mut c), pid);
}

/// The README's `-ready notify` Makefile block, run by `make` with a server that becomes ready
/// after a delay: the client tests on the next line find it ready, with no sleep or retry.
#[test]
fn readme_makefile_needs_no_sleep() {
    require_systemd_notify();
    assert!(
        Command::new("make").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "make is missing"
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```makefile\n").expect("the -ready Makefile block") + "```makefile\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = TempDir::new("ready-make");
    std::fs::write(dir.path("Makefile"), block).unwrap();
    let script = |name: &str, body: &str| write_script(&dir.str(name), body);
    script("server", "sleep 0.5; touch up; systemd-notify --ready; exec sleep 60");
    script("run-client-tests", "test -e up && fdmon -client m.sock query-workload | grep -q '\"ready\": true'");
    let _guard = Daemon(dir.str("fdmon.pid"));
    let bin_dir = std::path::Path::new(bin()).parent().unwrap().to_string_lossy().into_owned();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new("make")
        .args(["--no-print-directory", "check"])
        .current_dir(&dir.0)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the daemon to go", || !dir.path("fdmon.pid").exists() && !dir.path("m.sock").exists());
}
