//! Helpers for black-box tests: spawn the real fdmon binary with an inherited socket at fd 3,
//! speak QMP/HMP over real sockets with a timeout on every read, reap every child.
#![allow(dead_code)]

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

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("fdmon-{tag}-{}-{n}", std::process::id()));
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns fdmon with `fds[i]` placed at fd `3 + i` (inheritable), stdin /dev/null, stderr piped.
pub fn spawn_with_fds(args: &[&str], fds: Vec<OwnedFd>) -> Fdmon {
    spawn_program(bin(), args, fds)
}

/// Spawns `prog` (fdmon, or QEMU for differential tests) the same way.
pub fn spawn_program(prog: &str, args: &[&str], fds: Vec<OwnedFd>) -> Fdmon {
    spawn_env(prog, args, fds, &[])
}

/// Spawns `prog` with extra environment variables.
pub fn spawn_env(prog: &str, args: &[&str], fds: Vec<OwnedFd>, env: &[(&str, &str)]) -> Fdmon {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(prog);
    cmd.envs(env.iter().copied());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (fcntl/dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // First move every source above the target range, so dup2 cannot clobber one.
            let mut moved = Vec::with_capacity(raw.len());
            for &fd in &raw {
                let n = libc::fcntl(fd, libc::F_DUPFD, 100);
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved.push(n);
            }
            for (i, &fd) in moved.iter().enumerate() {
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

/// Whether QEMU is installed; prints a SKIP line when it is not, so differential tests pass
/// cleanly without it.
pub fn qemu_available() -> bool {
    let ok = Command::new(QEMU)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: {QEMU} is not installed; differential test not run");
    }
    ok
}
