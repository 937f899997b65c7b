//! Helpers for black-box tests: spawn the real fdmon binary with an inherited socket at fd 3,
//! speak QMP/HMP over real sockets with a timeout on every read, reap every child.
#![allow(dead_code)]

pub mod differential;
pub mod golden;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fdmon::json::{Streamer, Value};

/// Generous: CI is a slow, noisy 2-core machine. Only reached when something is broken.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// A short window used only to show that something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fdmon")
}

/// The name prefix of every scratch directory the tests create (in `$TMPDIR`).
pub const TEMP_PREFIX: &str = "fdmon-test-";

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // One prefix for every scratch dir of the suite: `make test` checks none is left behind.
        let p = std::env::temp_dir().join(format!("{TEMP_PREFIX}{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running fdmon that is killed and reaped on drop.
pub struct Fdmon {
    pub child: Child,
}

impl Fdmon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for exit (bounded); panics on timeout.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "fdmon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for exit and returns (status code, stderr).
    pub fn wait_output(&mut self) -> (Option<i32>, String) {
        let status = self.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.code(), err)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// fds open in the fdmon process, from /proc.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Fdmon {
    /// Ends the process and everything it started, also when a test panicked: SIGTERM first,
    /// so fdmon (or QEMU) shuts down its workload as it would for a user, then SIGKILL after a
    /// bounded wait; descendants that are still alive afterwards (and the process groups they
    /// lead) are killed too, so no test leaves a process behind.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.pid();
        let family = descendants(pid);
        // SAFETY: kill(2) on our own child (not yet reaped, so the pid is still ours).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::kill(pid, libc::SIGCONT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (p, start) in family {
            if proc_start_time(p) == Some(start) {
                // SAFETY: kill(2) on a process this test started (same pid and start time).
                unsafe {
                    if libc::getpgid(p) == p && p != libc::getpgrp() {
                        libc::kill(-p, libc::SIGKILL);
                    }
                    libc::kill(p, libc::SIGKILL);
                }
            }
        }
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks): tells a pid from its reuse.
fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Every live descendant of `pid`, with its start time.
fn descendants(pid: i32) -> Vec<(i32, u64)> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
            let Some(i) = stat.rfind(')') else { continue };
            let f: Vec<&str> = stat[i + 2..].split(' ').collect();
            if let (Some(pp), Some(st)) = (f.get(1).and_then(|x| x.parse::<i32>().ok()), f.get(19)) {
                parent_of.push((p, pp, st.parse::<u64>().unwrap_or(0)));
            }
        }
    }
    let mut out: Vec<(i32, u64)> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for &(p, pp, st) in &parent_of {
            if pp == q && !out.iter().any(|(x, _)| *x == p) {
                out.push((p, st));
                frontier.push(p);
            }
        }
    }
    out
}

/// Spawns fdmon with `fds[i]` placed at fd `3 + i` (inheritable), stdin /dev/null, stderr piped.
pub fn spawn_with_fds(args: &[&str], fds: Vec<OwnedFd>) -> Fdmon {
    spawn_program(bin(), args, fds)
}

/// Spawns `prog` (fdmon, or QEMU for differential tests) the same way.
pub fn spawn_program(prog: &str, args: &[&str], fds: Vec<OwnedFd>) -> Fdmon {
    spawn_env(prog, args, fds, &[])
}

/// The most fds a spawn can place (at 3, 4, ...).
pub const MAX_SPAWN_FDS: usize = 64;

/// Spawns `prog` with extra environment variables.
pub fn spawn_env(prog: &str, args: &[&str], fds: Vec<OwnedFd>, env: &[(&str, &str)]) -> Fdmon {
    spawn_in(prog, args, fds, env, None)
}

/// Spawns `prog` with extra environment variables, in `cwd` if given (a scratch dir, so a
/// relative path a case makes, e.g. a socket, is removed with it).
pub fn spawn_in(
    prog: &str,
    args: &[&str],
    fds: Vec<OwnedFd>,
    env: &[(&str, &str)],
    cwd: Option<&std::path::Path>,
) -> Fdmon {
    assert!(fds.len() <= MAX_SPAWN_FDS, "at most {MAX_SPAWN_FDS} fds");
    // Everything the child needs is prepared here, before fork: between fork and exec in a
    // multi-threaded test runner only async-signal-safe calls on pre-built data are allowed
    // (no allocation: another thread may hold the allocator's lock).
    let n = fds.len();
    let mut raw = [-1i32; MAX_SPAWN_FDS];
    for (i, f) in fds.iter().enumerate() {
        raw[i] = f.as_raw_fd();
    }
    let mut cmd = Command::new(prog);
    cmd.envs(env.iter().copied());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure only calls fcntl/dup2/close (async-signal-safe) on the fixed-size
    // arrays captured by value, and builds an io::Error from errno (no allocation).
    unsafe {
        cmd.pre_exec(move || {
            // First move every source above the target range, so dup2 cannot clobber one.
            let mut moved = [-1i32; MAX_SPAWN_FDS];
            for i in 0..n {
                let m = libc::fcntl(raw[i], libc::F_DUPFD, 100);
                if m < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = m;
            }
            for (i, &fd) in moved.iter().enumerate().take(n) {
                if libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn fdmon");
    drop(fds);
    Fdmon { child }
}

pub fn spawn(args: &[&str]) -> Fdmon {
    spawn_with_fds(args, Vec::new())
}

/// Runs fdmon to completion with the given args; returns (code, stdout, stderr).
pub fn run(args: &[&str]) -> (Option<i32>, String, String) {
    run_with_fds(args, Vec::new())
}

pub fn run_with_fds(args: &[&str], fds: Vec<OwnedFd>) -> (Option<i32>, String, String) {
    let mut f = spawn_with_fds(args, fds);
    let status = f.wait();
    let mut out = String::new();
    let mut err = String::new();
    f.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    f.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), out, err)
}

pub const QMP_ARGS: &[&str] =
    &["-chardev", "socket,fd=3,server=on,wait=off,id=mon", "-mon", "chardev=mon,mode=control"];
pub const QMP_PAIR_ARGS: &[&str] = &["-chardev", "socket,fd=3,id=mon", "-mon", "chardev=mon,mode=control"];

/// A unix listener in a temp dir, for passing as fd 3.
pub fn listener(dir: &TempDir, name: &str) -> (UnixListener, PathBuf) {
    let p = dir.path(name);
    let l = UnixListener::bind(&p).unwrap();
    (l, p)
}

/// fdmon serving QMP on an inherited listener; returns the process and the socket path.
pub fn qmp_server(dir: &TempDir, extra: &[&str]) -> (Fdmon, PathBuf) {
    let (l, p) = listener(dir, "qmp.sock");
    let mut args: Vec<&str> = QMP_ARGS.to_vec();
    args.extend_from_slice(extra);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(l)]);
    (f, p)
}

/// fdmon serving QMP on a socketpair end; returns the process and our end.
pub fn qmp_pair(extra: &[&str]) -> (Fdmon, Client) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
    args.extend_from_slice(extra);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(b)]);
    (f, Client::new(a))
}

/// A line-oriented client over a real socket, with a timeout on every read.
pub struct Client {
    pub stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(stream: UnixStream) -> Client {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client { stream, buf: Vec::new() }
    }

    pub fn connect(path: &std::path::Path) -> Client {
        Client::new(UnixStream::connect(path).expect("connect"))
    }

    /// For sockets fdmon creates itself (`path=`): the race the seed removes, so retry (bounded).
    pub fn connect_retry(path: &std::path::Path) -> Client {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return Client::new(s),
                Err(e) => assert!(Instant::now() < deadline, "connect {}: {e}", path.display()),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        self.stream.write_all(b).unwrap();
    }

    /// Sends `text` with fds attached (SCM_RIGHTS) in one message.
    pub fn send_fds(&mut self, text: &str, fds: &[&dyn AsFd]) {
        let b: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let n = fdmon::sys::socket::send_with_fds(self.stream.as_fd(), text.as_bytes(), &b).unwrap();
        assert_eq!(n, text.len());
    }

    fn fill(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut tmp = [0u8; 65536];
        let r = self.stream.read(&mut tmp);
        self.stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        match r {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => false,
            Err(_) => false,
        }
    }

    /// The next `\r\n`-terminated line, without the terminator. Panics on timeout or EOF.
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&l[..i]).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for a line; have {:?}", String::from_utf8_lossy(&self.buf));
            if !self.fill(left) {
                panic!("EOF or timeout waiting for a line; have {:?}", String::from_utf8_lossy(&self.buf));
            }
        }
    }

    /// Reads until `pat` has arrived; returns everything up to and including it.
    pub fn until(&mut self, pat: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = find(&self.buf, pat.as_bytes()) {
                let l: Vec<u8> = self.buf.drain(..i + pat.len()).collect();
                return String::from_utf8_lossy(&l).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {pat:?}; have {:?}", String::from_utf8_lossy(&self.buf));
            if !self.fill(left) {
                panic!("EOF waiting for {pat:?}; have {:?}", String::from_utf8_lossy(&self.buf));
            }
        }
    }

    /// Asserts nothing arrives within the quiet window.
    pub fn expect_silence(&mut self) {
        assert!(self.buf.is_empty(), "unexpected buffered data: {:?}", String::from_utf8_lossy(&self.buf));
        self.fill(QUIET);
        assert!(self.buf.is_empty(), "unexpected data: {:?}", String::from_utf8_lossy(&self.buf));
    }

    /// Asserts the peer closes the connection (all buffered data consumed first).
    pub fn expect_eof(&mut self) {
        assert!(self.buf.is_empty(), "unexpected data before EOF: {:?}", String::from_utf8_lossy(&self.buf));
        let mut tmp = [0u8; 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&tmp[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }

    /// Reads the greeting and negotiates capabilities.
    pub fn negotiate(&mut self) -> String {
        let g = self.line();
        assert!(g.starts_with(r#"{"QMP": "#), "{g}");
        self.send(r#"{"execute":"qmp_capabilities"}"#);
        assert_eq!(self.line(), r#"{"return": {}}"#);
        g
    }

    /// Sends one request and returns the next line.
    pub fn cmd(&mut self, req: &str) -> String {
        self.send(req);
        self.line()
    }

    /// The next line that is not an event.
    pub fn reply(&mut self) -> String {
        loop {
            let l = self.line();
            if !l.contains(r#""event": "#) {
                return l;
            }
        }
    }

    /// The next line, which must be an event; returns it without its timestamp.
    pub fn event(&mut self) -> String {
        let l = self.line();
        strip_timestamp(&l)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `{"timestamp": {...}, "event": "STOP"}` -> `{"event": "STOP"}`, after checking its shape.
pub fn strip_timestamp(line: &str) -> String {
    let prefix = r#"{"timestamp": {"seconds": "#;
    assert!(line.starts_with(prefix), "not an event: {line}");
    let end = line.find("}, ").expect("timestamp end");
    let ts = &line[prefix.len()..end];
    let (secs, micros) = ts.split_once(r#", "microseconds": "#).expect("microseconds");
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
    assert!(micros.parse::<u32>().unwrap() < 1_000_000);
    format!("{{{}", &line[end + 3..])
}

/// Parses one JSON text.
pub fn parse(text: &str) -> Value {
    let mut out = Vec::new();
    let mut s = Streamer::new();
    s.feed(text.as_bytes(), &mut out);
    s.feed(b"\n", &mut out);
    match out.into_iter().next() {
        Some(Ok(v)) => v,
        other => panic!("bad JSON {text:?}: {other:?}"),
    }
}

/// Takes an fd number we got from a raw syscall.
pub fn owned(fd: i32) -> OwnedFd {
    assert!(fd >= 0);
    // SAFETY: the caller just created `fd` and hands it over.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A socketpair as OwnedFds.
pub fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

/// Waits (bounded) until `cond` holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The reference implementation for differential tests.
pub const QEMU: &str = "qemu-system-x86_64";
/// What QEMU always gets before a case's own arguments.
pub const QEMU_BASE: &[&str] = &["-machine", "none", "-nodefaults", "-display", "none"];

/// Which implementation a differential case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imp {
    Fdmon,
    Qemu,
}

impl Imp {
    /// The program and its full argv (QEMU gets [`QEMU_BASE`] first).
    pub fn argv<S: AsRef<str>>(self, args: &[S]) -> (&'static str, Vec<String>) {
        let mut all: Vec<String> = match self {
            Imp::Fdmon => vec![],
            Imp::Qemu => QEMU_BASE.iter().map(|s| s.to_string()).collect(),
        };
        all.extend(args.iter().map(|s| s.as_ref().to_string()));
        (if self == Imp::Fdmon { bin() } else { QEMU }, all)
    }
}

/// Starts `imp` with `args` and `fds` at 3, 4, ... (stdin /dev/null, stdout/stderr piped).
pub fn start_imp<S: AsRef<str>>(imp: Imp, args: &[S], fds: Vec<OwnedFd>) -> Fdmon {
    let (prog, all) = imp.argv(args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    spawn_program(prog, &all, fds)
}

/// `QEMU 7.2.22` (a banner) or `fdmon 0.1.0` -> `PROG VERSION`.
pub fn normalize_banner(text: &str) -> String {
    let mut t = text.replacen(&format!("fdmon {}", env!("CARGO_PKG_VERSION")), "PROG VERSION", 1);
    if let Some(i) = t.find("QEMU 7.2.") {
        let digits = t[i + 9..].bytes().take_while(u8::is_ascii_digit).count();
        t.replace_range(i..i + 9 + digits, "PROG VERSION");
    }
    t
}

/// Whether QEMU 7.2 is installed (differential tests also run it live then). Prefer
/// [`golden::Golden`], which asserts against the recording either way; this panics when
/// `FDMON_REQUIRE_QEMU` is set and QEMU 7.2 is missing.
pub fn qemu_available() -> bool {
    let ok = golden::live_qemu();
    if !ok {
        eprintln!("NOTE: {QEMU} 7.2 is not installed; not compared live");
    }
    ok
}

/// fdmon with `extra` options and `-- workload`, QMP on a socketpair, negotiated.
pub fn start_workload(extra: &[&str], workload: &[&str]) -> (Fdmon, Client) {
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

/// The workload's pid from `query-workload`, if it runs.
pub fn workload_pid(c: &mut Client) -> Option<i32> {
    // Skips events (a restart's WORKLOAD_READY may come first).
    c.send(r#"{"execute":"query-workload"}"#);
    let v = parse(&c.reply());
    let w = v.as_object()?.get("return")?.as_object()?.get("workload")?.as_object()?.clone();
    w.get("pid").and_then(|p| p.as_i64()).map(|p| p as i32)
}

/// HMP's prompt.
pub const HMP_PROMPT: &str = "(qemu) ";

/// fdmon's HMP banner and first prompt.
pub fn hmp_banner() -> String {
    format!("fdmon {} monitor - type 'help' for more information\r\n{HMP_PROMPT}", env!("CARGO_PKG_VERSION"))
}

/// The echo of `line` typed one byte at a time (ASCII, no editing keys): before each redraw
/// the cursor goes back over what was shown, then the whole line and erase-to-end-of-line.
pub fn hmp_echo(line: &str) -> String {
    let mut s = String::new();
    for i in 1..=line.len() {
        s.push_str(&"\x1b[D".repeat(i - 1));
        s.push_str(&line[..i]);
        s.push_str("\x1b[K");
    }
    s
}

/// Types `line` + Enter on an HMP peer, checks the echo, and returns the output before the
/// next prompt.
pub fn hmp_line(c: &mut Client, line: &str) -> String {
    c.send(&format!("{line}\n"));
    let got = c.until(HMP_PROMPT);
    let want = format!("{}\r\n", hmp_echo(line));
    assert!(got.starts_with(&want), "echo of {line:?}: {got:?}");
    got[want.len()..got.len() - HMP_PROMPT.len()].to_string()
}

/// Copies the executable `src` to `dst` through a child process (`cp`), never through an fd
/// of this multi-threaded test process: a fork in another test thread would inherit that fd
/// until its exec, and exec'ing `dst` meanwhile would fail with ETXTBSY ("Text file busy").
pub fn copy_executable(src: &str, dst: &str) {
    let ok = std::process::Command::new("cp").args([src, dst]).status().is_ok_and(|s| s.success());
    assert!(ok, "cp {src} {dst}");
}

/// Writes an executable shell script `#!/bin/sh\nBODY` to `dst`, through a child process for
/// the reason [`copy_executable`] gives.
pub fn write_script(dst: &str, body: &str) {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh", dst])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        write!(stdin, "#!/bin/sh\n{body}\n").expect("script text");
    }
    assert!(child.wait().is_ok_and(|s| s.success()), "writing {dst}");
}
