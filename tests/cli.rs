//! The command line, black box: a differential table of argument vectors that must fail (or
//! print) exactly as `qemu-system-x86_64 -machine none -nodefaults -display none ARGS` does,
//! the legacy `-qmp`/`-qmp-pretty`/`-monitor` options working end to end, abstract and IPv6
//! sockets, port ranges, and accept() under EMFILE.
//!
//! QEMU 7.2's outcome of every row and scenario is recorded in `tests/golden/cli/` (`make
//! golden`); each run compares fdmon with the recording, and with QEMU live when installed
//! (`tests/common/golden.rs`). A row whose texts differ on purpose is a `status(...)` row: its
//! stderr is recorded but not compared.
//!
//! Deliberate differences from QEMU that the differential table leaves out (each is fdmon's
//! documented choice, see chardev.md §6 and cli.md §4):
//! - TLS: fdmon has no TLS; `tls-creds=x` still compares (no object named `x` exists in QEMU
//!   either), but nothing that would need a real credentials object.
//! - `telnet`, `websocket`, `tn3270`: fdmon refuses them.
//! - path safety: fdmon refuses to delete a regular file, a symlink or a live socket at a
//!   server `path=` (QEMU unlinks whatever is there).
//! - a socket with no address at all (`-chardev socket,id=x`, `-qmp unix:`): fdmon rejects it.
//! - `mux`, `logfile`, `logappend`.
//! - `port=` without `host=`; the stderr warning for a TCP listener beyond loopback (both
//!   tested in tests/safety.rs; the warning line is dropped before comparing).
//! - keys the chosen backend does not use (`-chardev null,id=x,path=p`): fdmon says
//!   `Invalid parameter 'path'`, QEMU 7.2 ignores the key (see src/opts/chardev.rs).
//! - backends fdmon lacks (`pty`, `vc`, `udp`, `msmouse`, `serial`, ...): fdmon reports an
//!   invalid char driver name; only the exit status is compared for those.
//! - `fd=` with an empty value (7.2 takes it as a socket with no address, see above).
//!
//! Not a deliberate difference, but not in the table because QEMU would block: a start-up
//! `wait=on` on a socket that can accept, followed by a later error. QEMU waits for a client
//! before it looks at later chardevs or any monitor; fdmon checks every option's meaning
//! before it opens anything, so `-chardev socket,path=P,server=on,id=x -mon nosuch` fails at
//! once in fdmon. `differential_cli_order_of_checks` shows the same ordering with cases that
//! do not block.
//!
//! Also left out: options fdmon lacks (`-m`, `-nographic`...), arguments that are not options
//! (QEMU's disk image, fdmon's `-- PROGRAM` workload), and the texts of `-version`, `-h` and
//! `help` (stdout is never compared; stderr and the exit status are).

mod common;

use common::golden::{items, replace_number, Golden, Transcript};
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fdmon::sys::socket::{unix_connect, unix_listen, UnixAddr};

// ---------------------------------------------------------------------------------------------
// The differential table: what a case is, how it runs, how outputs are compared.
// ---------------------------------------------------------------------------------------------

/// What each process gets at fd 3, 4, ... (a fresh one per run, equivalent for both).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fd {
    /// A regular file `$D/fdfile`.
    File,
    DevNull,
    /// The read end of a pipe (the write end stays open in the test).
    Pipe,
    /// One end of a connected unix socketpair (the other end stays open in the test).
    PairEnd,
    /// A bound IPv4 UDP socket.
    Udp,
    /// An unbound unix datagram socket.
    UnixDgram,
    /// An unbound, unconnected unix stream socket.
    UnboundUnix,
    /// A unix stream socket bound to `$D/bound.sock`, not listening.
    BoundUnix,
    /// A listening unix socket at `$D/l.sock`.
    UnixListener,
    /// A listening TCP socket on 127.0.0.1, kernel-chosen port.
    TcpListener,
    /// A listening abstract unix socket (name `$A-l`).
    AbstractListener,
    /// An unbound TCP socket.
    UnboundTcp,
    /// A connected TCP socket (its peer stays open in the test).
    ConnectedTcp,
}

/// Something prepared in the run's scratch directory before the process starts.
#[derive(Clone, Copy, Debug)]
enum Prep {
    /// `$D/NAME` exists and the test holds a lockf(3) lock on it (an fcntl write lock on the
    /// whole file: what QEMU's pid file code takes).
    Lock(&'static str),
    /// `$D/NAME` exists and the test holds an exclusive flock(2) on it.
    Flock(&'static str),
    /// `$D/NAME` is a directory.
    Dir(&'static str),
    /// `$D/NAME` is a regular file.
    File(&'static str),
    /// `$D/NAME` is a unix socket nobody listens on any more.
    StaleSocket(&'static str),
    /// The test listens on 127.0.0.1:$P (so fdmon/QEMU cannot bind it) during both runs.
    OccupyPort,
}

/// What must agree.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// Exit status and (normalized) stderr.
    Full,
    /// Exit status only: the texts differ by design.
    Status,
}

#[derive(Clone, Debug)]
struct Case {
    args: Vec<String>,
    fds: Vec<Fd>,
    preps: Vec<Prep>,
    check: Check,
}

impl Case {
    fn fds(mut self, fds: &[Fd]) -> Case {
        self.fds = fds.to_vec();
        self
    }

    fn prep(mut self, p: Prep) -> Case {
        self.preps.push(p);
        self
    }
}

fn full(args: &[&str]) -> Case {
    Case { args: args.iter().map(|s| s.to_string()).collect(), fds: vec![], preps: vec![], check: Check::Full }
}

fn status(args: &[&str]) -> Case {
    Case { check: Check::Status, ..full(args) }
}

fn owned_args(args: Vec<String>) -> Case {
    Case { args, fds: vec![], preps: vec![], check: Check::Full }
}

/// `socket(domain, type)` as an OwnedFd.
fn raw_socket(domain: i32, ty: i32) -> OwnedFd {
    // SAFETY: plain socket(2); the result is checked by `owned`.
    owned(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) })
}

/// Binds a unix stream socket to `path` without listening.
fn bound_unix(path: &str) -> OwnedFd {
    let fd = raw_socket(libc::AF_UNIX, libc::SOCK_STREAM);
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in path.bytes().enumerate() {
        sa.sun_path[i] = b as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
    // SAFETY: `sa` is a valid sockaddr_un and `len` does not exceed its size.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const libc::sockaddr_un).cast(), len) };
    assert_eq!(r, 0, "bind {path}: {}", std::io::Error::last_os_error());
    fd
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A unique Linux abstract socket name.
fn abstract_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("fdmon-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// The things that must stay alive while one process runs.
#[derive(Default)]
struct Keep {
    fds: Vec<OwnedFd>,
    files: Vec<std::fs::File>,
    listeners: Vec<TcpListener>,
    streams: Vec<TcpStream>,
}

/// The outcome of one run: exit status (None = killed by a signal), stderr, timed out.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: Option<i32>,
    stderr: String,
    timed_out: bool,
}

/// Builds the fds for one run. Paths live in `dir`; abstract names derive from `abs`.
fn make_fds(kinds: &[Fd], dir: &TempDir, abs: &str, keep: &mut Keep) -> Vec<OwnedFd> {
    let mut out = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        // Names get a suffix from fd 4 on, so two fds of one kind do not collide.
        let sfx = if i == 0 { String::new() } else { format!("{}", i + 3) };
        let fd: OwnedFd = match k {
            Fd::File => OwnedFd::from(std::fs::File::create(dir.path(&format!("fdfile{sfx}"))).unwrap()),
            Fd::DevNull => OwnedFd::from(std::fs::File::open("/dev/null").unwrap()),
            Fd::Pipe => {
                let (r, w) = fdmon::sys::fd::pipe(false).unwrap();
                keep.fds.push(w);
                r
            }
            Fd::PairEnd => {
                let (a, b) = UnixStream::pair().unwrap();
                keep.fds.push(OwnedFd::from(a));
                OwnedFd::from(b)
            }
            Fd::Udp => OwnedFd::from(UdpSocket::bind("127.0.0.1:0").unwrap()),
            Fd::UnixDgram => OwnedFd::from(UnixDatagram::unbound().unwrap()),
            Fd::UnboundUnix => raw_socket(libc::AF_UNIX, libc::SOCK_STREAM),
            Fd::BoundUnix => bound_unix(&dir.str(&format!("bound{sfx}.sock"))),
            Fd::UnixListener => OwnedFd::from(UnixListener::bind(dir.path(&format!("l{sfx}.sock"))).unwrap()),
            Fd::TcpListener => OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap()),
            Fd::AbstractListener => {
                let name = format!("{abs}-l{sfx}");
                unix_listen(&UnixAddr::Abstract(name.into_bytes()), true, 1).unwrap()
            }
            Fd::UnboundTcp => raw_socket(libc::AF_INET, libc::SOCK_STREAM),
            Fd::ConnectedTcp => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
                let (s, _) = l.accept().unwrap();
                keep.streams.push(s);
                keep.listeners.push(l);
                OwnedFd::from(c)
            }
        };
        out.push(fd);
    }
    out
}

fn do_preps(preps: &[Prep], dir: &TempDir, keep: &mut Keep) {
    for p in preps {
        match *p {
            Prep::Lock(name) => {
                let f = std::fs::File::create(dir.path(name)).unwrap();
                // SAFETY: lockf on an fd we own.
                assert_eq!(unsafe { libc::lockf(f.as_raw_fd(), libc::F_TLOCK, 0) }, 0);
                keep.files.push(f);
            }
            Prep::Flock(name) => {
                let f = std::fs::File::create(dir.path(name)).unwrap();
                // SAFETY: flock on an fd we own.
                assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
                keep.files.push(f);
            }
            Prep::Dir(name) => std::fs::create_dir(dir.path(name)).unwrap(),
            Prep::File(name) => std::fs::write(dir.path(name), "x\n").unwrap(),
            Prep::StaleSocket(name) => drop(UnixListener::bind(dir.path(name)).unwrap()),
            Prep::OccupyPort => {} // held by `check_table` around both runs
        }
    }
}

/// Replaces the per-case tokens: `$D` scratch dir, `$A` abstract name, `$P`/`$P1`/`$P2` ports.
fn expand(arg: &str, dir: &str, abs: &str, port: u16) -> String {
    arg.replace("$P2", &(port + 2).to_string())
        .replace("$P1", &(port + 1).to_string())
        .replace("$P", &port.to_string())
        .replace("$D", dir)
        .replace("$A", abs)
}

/// Runs `prog` with `args` (QEMU also gets its base arguments) and the case's fds; kills it
/// after the usual timeout.
fn run_case_once(prog: &str, case: &Case, port: u16) -> Outcome {
    let dir = TempDir::new("cli");
    let d = dir.0.to_string_lossy().into_owned();
    let abs = abstract_name("cli");
    let mut keep = Keep::default();
    do_preps(&case.preps, &dir, &mut keep);
    let fds = make_fds(&case.fds, &dir, &abs, &mut keep);
    let mut args: Vec<String> = Vec::new();
    if prog == QEMU {
        args.extend(QEMU_BASE.iter().map(|s| s.to_string()));
    }
    for a in &case.args {
        if a == "END" {
            args.extend(END.iter().map(|a| expand(a, &d, &abs, port)));
        } else {
            args.push(expand(a, &d, &abs, port));
        }
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // TMPDIR: QEMU makes a socket in the temporary directory for `path=` (empty) and leaves it.
    // The scratch dir is also the working directory: a relative `path=$A` (no `abstract=on`)
    // makes its socket there, not in the checkout.
    let mut p = spawn_in(prog, &argv, fds, &[("TMPDIR", &d)], Some(&dir.0));
    // Drain both pipes while waiting: `-h` is long.
    let mut so = p.child.stdout.take().unwrap();
    let mut se = p.child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    let deadline = Instant::now() + TIMEOUT;
    let mut timed_out = false;
    let st = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = p.child.kill();
            break p.child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = t_out.join();
    let stderr = t_err.join().unwrap();
    let mut stderr = normalize_stderr(&stderr, &d, &abs);
    for (n, token) in [(port + 2, "$P2"), (port + 1, "$P1"), (port, "$P")] {
        stderr = replace_number(&stderr, u64::from(n), token);
    }
    if args.iter().any(|a| a == "-daemonize") {
        kill_daemons(&args);
    }
    drop(keep);
    Outcome { code: st.code(), stderr, timed_out }
}

/// `END` in a row stands for these: a chardev whose open fails, so a process whose other
/// options all worked still exits. Both programs open chardevs in command-line order, after
/// the pid file and `-add-fd`, so the row's own open errors come first. (`-mon nosuch` is the
/// terminator for rows about option values and monitors: fdmon checks monitors before it
/// opens any chardev, QEMU after.)
const END: &[&str] = &["-chardev", "socket,path=$D/nothere.sock,id=zz"];

/// A row with `-daemonize` that unexpectedly succeeds leaves a daemon behind: find it by its
/// exact argv and kill it.
fn kill_daemons(args: &[String]) {
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let argv: Vec<String> =
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if argv.len() == args.len() + 1 && argv[1..] == *args {
            eprintln!("killing leftover daemon {pid}: {argv:?}");
            // SAFETY: kill(2) on a process started by this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Makes QEMU's stderr comparable with fdmon's: the program-name prefix of every line, `QEMU`
/// inside the `info: ... waiting` lines, and the per-run scratch dir and abstract name.
fn normalize_stderr(text: &str, dir: &str, abs: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut l = match line.strip_prefix("qemu-system-x86_64:") {
            Some(rest) => format!("fdmon:{rest}"),
            None => line.to_string(),
        };
        // fdmon's one-line warning for a listener beyond loopback is deliberate (tests/safety.rs).
        if l.starts_with("fdmon: warning: chardev '") && l.contains(": the monitor has no authentication") {
            continue;
        }
        if l.contains("info: QEMU waiting for connection on") {
            l = l.replace("info: QEMU waiting", "info: fdmon waiting");
        }
        out.push_str(&l.replace(dir, "$D").replace(abs, "$A"));
    }
    out
}

/// A row's golden key: its arguments, and its fds and preparations if it has any.
fn case_key(case: &Case) -> String {
    let mut k = format!("{:?}", case.args);
    if !case.fds.is_empty() {
        k.push_str(&format!(" fds {:?}", case.fds));
    }
    if !case.preps.is_empty() {
        k.push_str(&format!(" preps {:?}", case.preps));
    }
    k
}

/// One run as a transcript: exit status (and whether it had to be killed), stderr.
fn outcome_transcript(o: Outcome) -> Transcript {
    let exit = format!("{:?}{}", o.code, if o.timed_out { " (TIMED OUT, killed)" } else { "" });
    items([("exit", exit), ("stderr", o.stderr)])
}

/// Runs every case (a few at a time) against the golden file `cli/NAME`, and against QEMU
/// when it is installed. `Check::Status` rows compare the exit status only.
fn check_table(name: &str, cases: &[Case]) {
    let g = Golden::open(&format!("cli/{name}"));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let occupied = case
                    .preps
                    .iter()
                    .any(|p| matches!(p, Prep::OccupyPort))
                    .then(|| TcpListener::bind("127.0.0.1:0").unwrap());
                let port = occupied.as_ref().map_or_else(free_port, |l| l.local_addr().unwrap().port());
                let ignore: &[&str] = if case.check == Check::Status { &["stderr"] } else { &[] };
                let key = case_key(case);
                let r = std::panic::catch_unwind(|| {
                    g.check(&key, ignore, |imp| {
                        let prog = if imp == Imp::Qemu { QEMU } else { bin() };
                        outcome_transcript(run_case_once(prog, case, port))
                    })
                });
                drop(occupied);
                if r.is_err() {
                    g.fail(format!("#{i} {key}: the harness panicked"));
                }
            });
        }
    });
    eprintln!("{name}: {} rows", cases.len());
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// The rows.
// ---------------------------------------------------------------------------------------------

/// cli.md §1: option names, missing arguments, `-version`/`-h`, the first two passes.
fn rows_option_names() -> Vec<Case> {
    let mut v = vec![
        full(&["-bogusopt"]),
        full(&["--bogusopt"]),
        full(&["-bogusopt", "x"]),
        full(&["-"]),
        full(&["-name=foo"]),
        full(&["-Version"]),
        full(&["-NAME", "x"]),
        full(&["-chardev", "null,id=x", "-bogus"]),
        full(&["-version", "-bogus"]),
        full(&["-bogus", "-version"]),
        full(&["-h", "-bogus"]),
        full(&["-help", "-bogus"]),
        full(&["--help", "-bogus"]),
        full(&["--version", "-bogus"]),
        full(&["-version", "-name"]),
        full(&["-version", "-chardev"]),
        full(&["-S", "-bogus"]),
        full(&["-mon", "nosuch", "-bogus"]),
        full(&["-chardev", "null,id=1abc", "-bogus"]),
        full(&["-chardev", "null,id=x", "-mon"]),
        full(&["-bogus", "-chardev"]),
        full(&["-chardev", "-bogus"]),
        full(&["-version"]),
        full(&["--version"]),
        full(&["-h"]),
        full(&["-help"]),
        full(&["--help"]),
        full(&["-version", "-h"]),
        full(&["-h", "-version"]),
        full(&["-version", "-version"]),
        full(&["-version", "-chardev", "null,id=1abc"]),
        full(&["-chardev", "null,id=1abc", "-version"]),
        full(&["-chardev", "null,id=1abc", "-h"]),
        full(&["-chardev", "bogus,id=x", "-version"]),
        full(&["-chardev", "null,id=x", "-mon", "x,mode=bogus", "-version"]),
        full(&["-mon", "nosuch", "-version"]),
        full(&["-mon", "nosuch", "-h"]),
        full(&["-chardev", "null,id=x", "-chardev", "null,id=x", "-version"]),
        full(&["-version", "-chardev", "null,id=x", "-chardev", "null,id=x"]),
        full(&["-chardev", "null,id=x,foo=1", "-version"]),
        full(&["-version", "-chardev", "null,id=x,foo=1"]),
        full(&["-chardev", "socket,fd=99,server=on,wait=off,id=x", "-version"]),
        full(&["-chardev", "socket,fd=myfd,server=on,wait=off,id=x", "-version"]),
        full(&["-qmp", "fd:5", "-version"]),
        full(&["-version", "-qmp", "fd:5"]),
        full(&["-add-fd", "fd=99,set=1", "-version"]),
        full(&["-add-fd", "fd=abc,set=1", "-version"]),
        full(&["-pidfile", "$D/nodir/pid", "-version"]),
        full(&["-daemonize", "-qmp", "stdio", "-version"]),
        full(&["-S", "-S", "-no-shutdown", "-no-shutdown", "-mon", "nosuch"]),
        full(&["--S", "--no-shutdown", "-mon", "nosuch"]),
        full(&["-monitor", "none", "-version"]),
        // -version output itself is different text by design; stdout is never compared.
        status(&["-chardev", "null,id=x", "-version"]),
    ];
    // Every option that takes an argument, with the argument missing, spelled both ways.
    for opt in ["chardev", "mon", "qmp", "qmp-pretty", "monitor", "name", "pidfile", "add-fd", "uuid"] {
        v.push(owned_args(vec![format!("-{opt}")]));
        v.push(owned_args(vec![format!("--{opt}")]));
        v.push(owned_args(vec!["-S".into(), format!("-{opt}")]));
        v.push(owned_args(vec!["-version".into(), format!("-{opt}")]));
    }
    v
}

/// cli.md §2: QemuOpts syntax.
fn rows_qemuopts() -> Vec<Case> {
    let mut v = vec![
        // `,,` escapes a comma.
        full(&["-chardev", "null,id=a,,b"]),
        full(&["-chardev", "null,,id=x"]),
        full(&["-chardev", "bo,,gus,id=x"]),
        full(&["-chardev", "socket,path=$D/no,,dir/c,,omma.sock,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$D/c,,omma.sock,server=on,wait=off,id=x", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=x,,", "-mon", "nosuch"]),
        full(&["-name", "a,,b", "-mon", "nosuch"]),
        full(&["-mon", "a,,b"]),
        full(&["-chardev", "null,id=x", "-mon", "x,,mode=control"]),
        // Implied first key, and only the first.
        full(&["-chardev", "backend=null,id=x", "-mon", "nosuch"]),
        full(&["-chardev", "id=x,backend=null", "-mon", "nosuch"]),
        full(&["-chardev", "id=x,null"]),
        full(&["-chardev", ",null,id=x"]),
        full(&["-chardev", "=null,id=x"]),
        full(&["-chardev", "null,=x,id=y"]),
        full(&["-chardev", "null,id=x,", "-mon", "nosuch"]),
        full(&["-mon", "chardev=nosuch"]),
        full(&["-mon", "mode=control,nosuch"]),
        full(&["-mon", ""]),
        full(&["-mon", ",mode=control"]),
        full(&["-mon", "help"]),
        full(&["-name", "guest=g", "-mon", "nosuch"]),
        full(&["-name", "g,guest=h", "-mon", "nosuch"]),
        full(&["-name", "help", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=x", "-mon", "chardev=x,mode=control,chardev=nosuch"]),
        // Short-form booleans: two-line warnings, then startup continues.
        full(&["-chardev", "socket,path=$D/a.sock,server,nowait,id=x", "-version"]),
        full(&["-chardev", "socket,path=$D/a.sock,noserver,id=x", "-version"]),
        full(&["-chardev", "socket,path=$D/a.sock,server,wait,id=x", "-version"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,nodelay,id=x", "-version"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,delay,id=x", "-version"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv4,noipv6,id=x", "-version"]),
        full(&["-chardev", "socket,path=$A,abstract,notight,server=on,wait=off,id=x", "-version"]),
        full(&["-chardev", "socket,path=$D/a.sock,server,nowait,id=x", "-chardev", "bogus,id=y"]),
        full(&["-chardev", "socket,path=$D/a.sock,server,nowait,id=x", "-mon", "x,mode=bogus"]),
        full(&["-chardev", "socket,path=$D/nodir/a.sock,server,nowait,id=x"]),
        full(&["-chardev", "null,id=x,nofoo"]),
        full(&["-chardev", "null,id=x,foo"]),
        full(&["-chardev", "null,id=x,no"]),
        full(&["-chardev", "null,id=x,nono"]),
        full(&["-chardev", "socket,path=$D/a.sock,server,server=off,id=x", "-version"]),
        full(&["-mon", "n,mode=control,pretty", "-version"]),
        full(&["-mon", "n,nopretty", "-version"]),
        full(&["-chardev", "null,id=n", "-mon", "n,pretty"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=control,pretty", "-mon", "nosuch"]),
        full(&["-add-fd", "3"]),
        full(&["-add-fd", "fd=3,set=1,opaque", "-version"]),
        full(&["-add-fd", "fd,set=1"]),
        full(&["-name", "g,debug-threads", "-version"]),
        full(&["-name", "g,nodebug-threads", "-mon", "nosuch"]),
        full(&["-name", "g,process", "-mon", "nosuch"]),
        full(&["-chardev", "file,id=f,path=$D/f,append", "-version"]),
        full(&["-chardev", "file,id=f,path=$D/nodir/f,noappend"]),
        full(&["-chardev", "stdio,id=s,nosignal", "-version"]),
        full(&["-qmp", "unix:$D/q.sock,server,nowait", "-version"]),
        full(&["-monitor", "unix:$D/m.sock,server,nowait", "-mon", "nosuch"]),
        // Duplicate keys: the last one wins, except `id`.
        full(&["-chardev", "socket,path=$D/nodir/p1,path=$D/nodir/p2,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,server=off,server=on,path=$D/nodir/s,wait=off,id=x"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=control,mode=readline,pretty=on"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=readline,mode=control,pretty=on", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=bogus,mode=control", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n,backend=bogus"]),
        full(&["-chardev", "bogus,id=n,backend=null", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n,id=m", "-mon", "m"]),
        full(&["-chardev", "null,id=n,id=m", "-mon", "n", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n,id=m", "-chardev", "null,id=m", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n,id=1bad", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-chardev", "null,id=m,id=n", "-mon", "nosuch"]),
        full(&["-chardev", "ringbuf,id=r,size=3,size=4", "-mon", "nosuch"]),
        full(&["-chardev", "ringbuf,id=r,size=4,size=3"]),
        full(&["-name", "a,process=p1,process=p2", "-mon", "nosuch"]),
        full(&["-add-fd", "fd=99,fd=98,set=1"]),
        full(&["-add-fd", "fd=3,set=-1,set=1", "-mon", "nosuch"]).fds(&[Fd::File]),
        // Unknown keys.
        full(&["-chardev", "null,id=x,foo=1"]),
        full(&["-chardev", "null,foo=1"]),
        full(&["-chardev", "socket,id=x,foo=1"]),
        full(&["-chardev", "bogus,id=x,foo=1"]),
        full(&["-chardev", "null,id=x,ID=y"]),
        full(&["-chardev", "null,Id=x"]),
        full(&["-chardev", "null,id=x", "-mon", "x,foo=1"]),
        full(&["-mon", "x,foo=1"]),
        full(&["-name", "g,bogus=1"]),
        full(&["-name", "g,id=x"]),
        full(&["-add-fd", "fd=3,set=1,bogus=1"]),
        full(&["-add-fd", "bogus=1"]),
        // Missing value for a boolean.
        full(&["-chardev", "socket,path=$D/s,server=on,wait=,id=x"]),
        full(&["-chardev", "null,id=x", "-mon", "x,pretty="]),
        full(&["-name", "g,debug-threads="]),
        // Empty argument.
        full(&["-chardev", ""]),
        full(&["-name", "", "-mon", "nosuch"]),
        full(&["-add-fd", ""]),
        // `help` inside an option: the key list goes to stdout, exit status compared.
        full(&["-chardev", "null,help"]),
        full(&["-chardev", "socket,help"]),
        full(&["-chardev", "help,id=x"]),
        full(&["-add-fd", "help"]),
        full(&["-name", "g,help"]),
    ];
    // Booleans: accepted spellings (case-sensitive) and rejected ones, on four options.
    let values = [
        "on", "yes", "true", "y", "off", "no", "false", "n", "ON", "On", "1", "0", "", "maybe", "TRUE", "Yes", "of",
        "offf", " on", "on ",
    ];
    for val in values {
        // true: not compatible with HMP; false: fine, then `nosuch`; invalid: parse error.
        v.push(owned_args(
            ["-chardev", "null,id=n", "-mon", &format!("n,pretty={val}"), "-mon", "nosuch"].map(String::from).to_vec(),
        ));
        // true: bind error; false: connect error; invalid: parse error.
        v.push(owned_args(vec!["-chardev".into(), format!("socket,path=$D/nodir/s,server={val},id=x")]));
        v.push(owned_args(["-name", &format!("g,debug-threads={val}"), "-mon", "nosuch"].map(String::from).to_vec()));
        v.push(owned_args(vec!["-chardev".into(), format!("file,id=f,path=$D/nodir/f,append={val}")]));
    }
    // Identifiers.
    for id in
        ["1abc", "a,,b", "a.b", "_a", "-a", ".a", "a-b_c.d", "\u{e9}", "", "A", "a b", "a/b", "a:b", "z9", "a\u{e9}"]
    {
        v.push(owned_args(vec!["-chardev".into(), format!("null,id={id}"), "-mon".into(), "nosuch".into()]));
        v.push(owned_args(
            ["-chardev", "null,id=n", "-mon", &format!("n,id={id}"), "-mon", "nosuch"].map(String::from).to_vec(),
        ));
    }
    v.extend([
        full(&["-add-fd", "fd=3,set=1,id=1bad"]),
        full(&["-add-fd", "fd=3,set=1,id=ok", "-mon", "nosuch"]).fds(&[Fd::File]),
        full(&["-monitor", "chardev:1bad"]),
        full(&["-monitor", "chardev:"]),
        full(&["-qmp", "chardev:a,,b"]),
        full(&["-monitor", "chardev:a.b"]),
        full(&["-monitor", "chardev:abcdefghijklmnopqrstuvwxyz0123456789"]),
        full(&[
            "-chardev",
            "null,id=abcdefghijklmnopqrstuvwxyz01234",
            "-monitor",
            "chardev:abcdefghijklmnopqrstuvwxyz0123456789",
            "-mon",
            "nosuch",
        ]),
        // Duplicate ids.
        full(&["-chardev", "null,id=x", "-chardev", "null,id=x"]),
        full(&["-chardev", "null,id=x", "-chardev", "bogus,id=x"]),
        full(&["-chardev", "bogus,id=x", "-chardev", "null,id=x"]),
        full(&["-chardev", "null,id=n", "-mon", "n,id=m", "-mon", "n,id=m"]),
        full(&["-add-fd", "fd=3,set=1,id=a", "-add-fd", "fd=4,set=1,id=a"]),
        full(&["-name", "a", "-name", "b,foo=1"]),
    ]);
    v
}

/// cli.md §3 `-chardev` and chardev.md §1-§3, §7.
fn rows_chardev() -> Vec<Case> {
    let long = format!("/tmp/{}", "a".repeat(120));
    let len108 = format!("/tmp/fdmon-no-such-dir/{}", "b".repeat(108 - 23));
    let len107 = format!("/tmp/fdmon-no-such-dir/{}", "b".repeat(107 - 23));
    let long_abs = "c".repeat(110);
    let mut v = vec![
        full(&["-chardev", "null"]),
        full(&["-chardev", "null,id="]),
        full(&["-chardev", "id=x"]),
        full(&["-chardev", "bogus,id=x"]),
        full(&["-chardev", ",id=x"]),
        full(&["-chardev", "Null,id=x"]),
        full(&["-chardev", "help"]),
        full(&["-chardev", "help", "-bogus"]),
        full(&["-chardev", "help", "END"]),
        full(&["-chardev", "null,id=x", "-chardev", "help"]),
        full(&["-chardev", "bogus,id=x", "-chardev", "help"]),
        full(&["-chardev", "backend=help"]),
        full(&["-chardev", "?"]),
        // Socket: exactly zero or one address.
        full(&["-chardev", "socket,path=$D/x.sock,host=localhost,port=4444,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$D/x.sock,fd=3,id=x"]),
        full(&["-chardev", "socket,fd=3,host=127.0.0.1,port=1,id=x"]),
        full(&["-chardev", "socket,path=$D/x.sock,host=127.0.0.1,port=1,fd=3,id=x"]),
        full(&["-qmp", "unix:$D/x.sock,server=on,wait=off,fd=3"]),
        full(&["-chardev", "socket,host=127.0.0.1,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=abc,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=abc,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=,port=1,id=x"]),
        full(&["-chardev", "socket,host=no.such.host.invalid,port=1,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,host=,port=0,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,host=localhost,port=0,server=on,wait=off,id=x", "END"]),
        // to=
        full(&["-chardev", "socket,host=127.0.0.1,port=1,to=abc,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,to=,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,to=1.5,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,to=-1,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,to=abc,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=$P,to=$P2,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=$P,to=$P1,server=on,wait=off,id=x", "END"])
            .prep(Prep::OccupyPort),
        full(&["-chardev", "socket,host=127.0.0.1,port=$P,server=on,wait=off,id=x"]).prep(Prep::OccupyPort),
        full(&["-chardev", "socket,host=127.0.0.1,port=$P,to=$P,server=on,wait=off,id=x"]).prep(Prep::OccupyPort),
        full(&["-chardev", "socket,host=127.0.0.1,port=$P1,to=$P,server=on,wait=off,id=x", "END"]),
        // Not compared: `port=70000` (QEMU wraps it into a real port; fdmon refuses it) and an
        // empty `path=` (QEMU makes a temporary socket; fdmon refuses it).
        // ipv4/ipv6
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv4=off,ipv6=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,ipv4=off,ipv6=off,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$D/x.sock,ipv4=off,ipv6=off,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv4=on,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv6=on,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv4=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,ipv6=off,id=x"]),
        full(&["-chardev", "socket,host=localhost,port=1,ipv6=on,id=x"]),
        full(&["-chardev", "socket,host=::1,port=1,ipv4=on,id=x"]),
        full(&["-chardev", "socket,host=::1,port=1,ipv6=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,ipv4=off,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,ipv6=on,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,ipv4=on,ipv6=on,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,ipv4=maybe,server=on,wait=off,id=x"]),
        // delay / nodelay
        full(&["-chardev", "socket,host=127.0.0.1,port=1,delay=off,nodelay=on,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,nodelay=on,delay=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,delay=on,nodelay=on,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,delay=on,nodelay=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,delay=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,nodelay=on,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,nodelay=on,server=on,wait=off,id=x", "END"]),
        // reconnect
        full(&["-chardev", "socket,host=127.0.0.1,port=1,reconnect=1,server=on,id=x"]),
        full(&["-chardev", "socket,path=$D/x.sock,reconnect=1,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,reconnect=abc,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,reconnect=-1,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,reconnect=,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,reconnect=0,id=x"]),
        full(&["-chardev", "socket,fd=3,reconnect=1,id=x"]).fds(&[Fd::PairEnd]),
        full(&["-chardev", "socket,fd=3,reconnect=1,id=x"]),
        full(&["-chardev", "socket,fd=myfd,reconnect=1,id=x"]),
        full(&["-chardev", "socket,fd=3,reconnect=1,server=on,id=x"]).fds(&[Fd::UnixListener]),
        // wait with a client
        full(&["-chardev", "socket,path=$D/s,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$D/s,wait=on,id=x"]),
        full(&["-chardev", "socket,path=$D/s,server=off,wait=off,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,wait=off,id=x"]),
        full(&["-chardev", "socket,fd=3,wait=off,id=x"]).fds(&[Fd::PairEnd]),
        // client connect failures at start-up
        full(&["-chardev", "socket,path=$D/nothere.sock,id=x"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,server=off,id=x"]),
        full(&["-chardev", "socket,path=$D/f,id=x"]).prep(Prep::File("f")),
        full(&["-chardev", "socket,path=$D/stale.sock,id=x"]).prep(Prep::StaleSocket("stale.sock")),
        full(&["-chardev", "socket,path=$A,abstract=on,id=x"]),
        full(&["-chardev", "socket,path=$A,abstract=on,tight=off,id=x"]),
        // server path errors
        full(&["-chardev", "socket,path=$D/nodir/x.sock,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$D/nodir/x.sock,server=on,id=x"]),
        full(&["-chardev", "socket,path=$D/adir,server=on,wait=off,id=x"]).prep(Prep::Dir("adir")),
        full(&["-chardev", "socket,path=$D/stale.sock,server=on,wait=off,id=x", "END"])
            .prep(Prep::StaleSocket("stale.sock")),
        owned_args(vec!["-chardev".into(), format!("socket,path={long},server=on,wait=off,id=x")]),
        owned_args(vec!["-chardev".into(), format!("socket,path={long},id=x")]),
        owned_args(vec!["-chardev".into(), format!("socket,path={len108},server=on,wait=off,id=x")]),
        owned_args(vec!["-chardev".into(), format!("socket,path={len107},server=on,wait=off,id=x")]),
        // abstract
        full(&["-chardev", "socket,path=$A,abstract=on,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,path=$A,abstract=on,tight=off,server=on,wait=off,id=x", "END"]),
        full(&["-chardev", "socket,path=$A,abstract=maybe,server=on,wait=off,id=x"]),
        full(&["-chardev", "socket,path=$A,abstract=on,tight=maybe,server=on,wait=off,id=x"]),
        owned_args(vec!["-chardev".into(), format!("socket,path={long_abs},abstract=on,server=on,wait=off,id=x")]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,abstract=on,id=x"]),
        full(&["-chardev", "socket,path=$A,tight=off,server=on,wait=off,id=x", "END"]),
        // TLS: no credentials object named `x` exists in either.
        full(&["-chardev", "socket,path=$D/x.sock,server=on,wait=off,tls-creds=x,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=x,id=x"]),
        full(&["-chardev", "socket,host=127.0.0.1,port=1,tls-creds=x,id=x"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,tls-creds=x,id=x"]),
        full(&["-chardev", "socket,fd=3,server=on,wait=off,tls-creds=x,id=x"]).fds(&[Fd::UnixListener]),
        full(&["-chardev", "socket,fd=3,tls-creds=x,id=x"]).fds(&[Fd::PairEnd]),
        full(&["-chardev", "socket,fd=3,reconnect=1,tls-creds=x,id=x"]).fds(&[Fd::PairEnd]),
        full(&["-chardev", "socket,path=$D/s,tls-authz=a,id=x"]),
        full(&["-chardev", "socket,path=$D/s,server=on,wait=off,tls-authz=a,id=x"]),
        full(&["-qmp", "unix:$D/x.sock,server=on,wait=off,tls-creds=x"]),
        // ringbuf / memory
        full(&["-chardev", "ringbuf,id=r,size=100"]),
        full(&["-chardev", "memory,id=r,size=100"]),
        full(&["-chardev", "ringbuf,id=r,size=3"]),
        full(&["-chardev", "ringbuf,id=r,size=0", "END"]),
        full(&["-chardev", "ringbuf,id=r,size=1", "END"]),
        full(&["-chardev", "ringbuf,id=r,size=1k", "END"]),
        full(&["-chardev", "ringbuf,id=r,size=2M", "END"]),
        full(&["-chardev", "ringbuf,id=r,size=1.5k"]),
        full(&["-chardev", "ringbuf,id=r,size=3k"]),
        full(&["-chardev", "ringbuf,id=r,size=abc"]),
        full(&["-chardev", "ringbuf,id=r,size=-1"]),
        full(&["-chardev", "ringbuf,id=r,size=1x"]),
        full(&["-chardev", "ringbuf,id=r,size="]),
        full(&["-chardev", "ringbuf,id=r", "END"]),
        full(&["-chardev", "ringbuf,id=r,size=4294967296", "END"]),
        // file / pipe / stdio / null
        full(&["-chardev", "file,id=f"]),
        full(&["-chardev", "file,id=f,path="]),
        full(&["-chardev", "file,id=f,path=$D/nodir/f3.txt"]),
        full(&["-chardev", "file,id=f,path=$D/adir"]).prep(Prep::Dir("adir")),
        full(&["-chardev", "file,id=f,path=$D/f", "END"]),
        full(&["-chardev", "file,id=f,path=$D/f,append=on", "END"]).prep(Prep::File("f")),
        full(&["-chardev", "pipe,id=p"]),
        full(&["-chardev", "pipe,id=p,path="]),
        full(&["-chardev", "pipe,id=p,path=$D/nopipe"]),
        full(&["-chardev", "pipe,id=p,path=$D/nodir/p"]),
        full(&["-chardev", "pipe,id=p,path=$D/f", "END"]).prep(Prep::File("f")),
        full(&["-chardev", "pipe,id=p,path=$D/adir"]).prep(Prep::Dir("adir")),
        full(&["-chardev", "stdio,id=a", "-chardev", "stdio,id=b"]),
        full(&["-chardev", "stdio,id=a,signal=maybe"]),
        full(&["-chardev", "stdio,id=a", "END"]),
        full(&["-chardev", "null,id=a", "END"]),
        full(&["-qmp", "stdio", "-chardev", "stdio,id=s"]),
        full(&["-qmp", "stdio", "-qmp", "stdio"]),
        // Backends fdmon does not have: exit status only.
        status(&["-chardev", "pty,id=x", "END"]),
        status(&["-chardev", "vc,id=x", "END"]),
        status(&["-chardev", "udp,id=x,host=127.0.0.1,port=1", "END"]),
        status(&["-chardev", "msmouse,id=x", "END"]),
        status(&["-chardev", "testdev,id=x", "END"]),
        status(&["-chardev", "wctablet,id=x", "END"]),
        status(&["-chardev", "serial,id=x,path=$D/nodir/tty"]),
        status(&["-chardev", "parallel,id=x,path=$D/nodir/lp"]),
        status(&["-chardev", "qemu-vdagent,id=x", "END"]),
        status(&["-qmp", "null", "END"]),
        status(&["-qmp", "pty", "END"]),
        status(&["-monitor", "vc", "END"]),
        status(&["-monitor", "vc:80x24", "END"]),
        status(&["-qmp", "udp:127.0.0.1:1", "END"]),
        status(&["-qmp", "file:$D/f", "END"]),
        status(&["-qmp", "pipe:$D/nodir/p"]),
        status(&["-qmp", "msmouse", "END"]),
        status(&["-monitor", "/dev/null", "END"]),
    ];
    // fd numbers on the command line
    // (`fd=` with an empty value is a socket without an address to fdmon: left out.)
    for fd in ["myfd", "99", "-1", "3x", "+3", "03", " 3", "0x3", "2147483648", "4294967299", "3.0", "3 "] {
        for mode in ["server=on,wait=off", "server=off"] {
            v.push(
                owned_args(vec!["-chardev".into(), format!("socket,fd={fd},{mode},id=x"), "END".into()])
                    .fds(&[Fd::UnixListener]),
            );
        }
    }
    for fd in ["0", "1", "2"] {
        for mode in ["server=on,wait=off", "server=off"] {
            v.push(owned_args(vec!["-chardev".into(), format!("socket,fd={fd},{mode},id=x")]));
        }
    }
    v
}

/// cli.md §3 `-mon`.
fn rows_mon() -> Vec<Case> {
    vec![
        full(&["-mon", "mon"]),
        full(&["-mon", "mode=control"]),
        full(&["-mon", "pretty=on"]),
        full(&["-mon", "mode=bogus"]),
        full(&["-mon", "nosuch,mode=bogus"]),
        full(&["-mon", "nosuch,pretty=on"]),
        full(&["-mon", "nosuch,pretty=bogus"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=bogus"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=Control"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode="]),
        full(&["-chardev", "null,id=n", "-mon", "n,pretty=bogus"]),
        full(&["-chardev", "null,id=n", "-mon", "n,pretty=on"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=readline,pretty=on"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=control,pretty=on", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=control", "-mon", "n,mode=control"]),
        full(&["-chardev", "null,id=n", "-mon", "n", "-mon", "n,mode=control"]),
        full(&["-chardev", "null,id=n", "-mon", "n,foo=1"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=bogus", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-mon", "nosuch", "-mon", "n,mode=bogus"]),
        full(&["-mon", "x", "-chardev", "null,id=x", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-monitor", "chardev:n", "-mon", "n"]),
        full(&["-chardev", "null,id=n", "-mon", "n,mode=control", "-qmp", "chardev:n"]),
        full(&["-chardev", "null,id=n", "-qmp", "chardev:n", "-qmp", "chardev:n"]),
        full(&["-chardev", "null,id=n", "-qmp", "chardev:n", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-qmp-pretty", "chardev:n", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-monitor", "chardev:n", "-mon", "nosuch"]),
        full(&["-chardev", "null,id=n", "-mon", "n,id=n", "-qmp", "chardev:n"]),
        full(&["-chardev", "ringbuf,id=n", "-mon", "n,mode=control", "-mon", "nosuch"]),
        full(&["-chardev", "file,id=n,path=$D/f", "-mon", "n", "-mon", "nosuch"]),
    ]
}

/// cli.md §3 legacy `-qmp DEV`, `-qmp-pretty DEV`, `-monitor DEV`.
fn rows_legacy() -> Vec<Case> {
    let mut v = Vec::new();
    for opt in ["-qmp", "-qmp-pretty", "-monitor"] {
        let devs: &[&[&str]] = &[
            &["fd:5"],
            &["socket,fd=5"],
            &["none"],
            &["none", "END"],
            &["unix:$D/x.sock,bogus"],
            &["unix:$D/x.sock,nobogus"],
            &["unix:$D/x.sock,bogus=1"],
            &["bogus"],
            &[""],
            &["tcp:"],
            &["tcp:localhost"],
            &["tcp:127.0.0.1:"],
            &["tcp::1"],
            &["tcp:127.0.0.1:1"],
            &["tcp:127.0.0.1:abc"],
            &["tcp:127.0.0.1:1,bogus"],
            &["tcp:127.0.0.1:1,server=maybe"],
            &["tcp:127.0.0.1:0,server=on,wait=off", "END"],
            &["tcp:127.0.0.1:0,server=on,wait=off,to=abc"],
            &["tcp:127.0.0.1:0,server=on,wait=off,ipv4=off,ipv6=off"],
            &["tcp:127.0.0.1:1,reconnect=1,server=on"],
            &["tcp:127.0.0.1:1,nodelay,delay"],
            &["tcp:127.0.0.1:$P,server=on,wait=off"],
            &["unix:$D/nothere.sock"],
            &["unix:path=$D/nothere.sock"],
            &["unix:$D/nodir/x.sock,server=on,wait=off"],
            &["unix:path=$D/nodir/x.sock,server=on,wait=off"],
            &["unix:$D/nodir/x.sock,server,nowait"],
            &["unix:$D/x.sock,server=on,wait=off,fd=3"],
            &["unix:$D/x.sock,server=on,wait=off,host=127.0.0.1"],
            &["unix:$D/x.sock,server=on,wait=off", "END"],
            &["unix:$D/x.sock,server,nowait", "-version"],
            &["unix:$D/x.sock,server=on,wait=off,id=foo", "-mon", "foo"],
            &["unix:$D/x.sock,backend=bogus"],
            &["unix:$D/x.sock,server=maybe"],
            &["unix:$D/x.sock,wait=off"],
            &["unix:$D/a,,b.sock,server=on,wait=off", "END"],
            &["unix:$D/no,,dir/a.sock,server=on,wait=off"],
            &["unix:$A,abstract=on"],
            &["unix:$A,abstract=on,server=on,wait=off", "END"],
            &["stdio", "END"],
            &["stdio", "-daemonize"],
            &["chardev:nosuch"],
            &["mon:bogus"],
            &["unix:"],
        ];
        for dev in devs {
            if opt == "-monitor" && dev[0] == "none" {
                continue; // a valid `-monitor none` (below)
            }
            if dev[0] == "unix:" {
                continue; // a socket with no address: fdmon rejects it (deliberate)
            }
            let mut a = vec![opt.to_string()];
            a.extend(dev.iter().map(|s| s.to_string()));
            v.push(owned_args(a).prep(Prep::OccupyPort));
        }
    }
    v.extend([
        full(&["-monitor", "none", "END"]),
        full(&["-monitor", "nonexyz", "END"]),
        full(&["-monitor", "non", "END"]),
        full(&["-monitor", "none", "-qmp", "stdio", "-chardev", "null,id=compat_monitor0"]),
        full(&["-monitor", "none", "-qmp", "stdio", "-chardev", "null,id=compat_monitor1", "END"]),
        full(&["-qmp", "stdio", "-chardev", "null,id=compat_monitor0"]),
        full(&["-chardev", "null,id=compat_monitor0", "-qmp", "stdio"]),
        full(&["-chardev", "null,id=compat_monitor1", "-qmp", "stdio", "-qmp", "unix:$D/q.sock,server=on,wait=off"]),
        full(&["-qmp", "stdio", "-monitor", "chardev:compat_monitor0"]),
        full(&["-qmp", "stdio", "-mon", "compat_monitor0"]),
        full(&["-qmp", "unix:$D/a.sock,server=on,wait=off", "-monitor", "unix:$D/nodir/b.sock,server=on,wait=off"]),
        full(&["-daemonize", "-qmp", "stdio"]),
        full(&["-daemonize", "-qmp-pretty", "stdio"]),
        full(&["-daemonize", "-monitor", "stdio"]),
        full(&["-qmp", "stdio", "-daemonize"]),
        full(&["-daemonize", "-chardev", "stdio,id=s"]),
        full(&["-chardev", "stdio,id=s", "-daemonize"]),
        full(&["-daemonize", "-chardev", "stdio,id=s", "-qmp", "stdio"]),
        full(&["-daemonize", "END"]),
        full(&["-daemonize", "-bogus"]),
        full(&["-daemonize", "-chardev", "bogus,id=x"]),
    ]);
    v
}

/// `-name`, `-uuid`, `-add-fd`, `-pidfile`.
fn rows_misc() -> Vec<Case> {
    let mut v = vec![
        full(&["-name", "g,bogus=1"]),
        full(&["-name", "g,process=p,debug-threads=maybe"]),
        full(&["-name", "guest=a,guest=b", "-mon", "nosuch"]),
        full(&["-name", "g,process=fdmonproc,debug-threads=on", "-mon", "nosuch"]),
        full(&["-name", "a", "-name", "b", "-mon", "nosuch"]),
        full(&["-name", "process=p", "-mon", "nosuch"]),
        full(&["-uuid", "bogus"]),
        full(&["-uuid", ""]),
        full(&["-uuid", "12345678-1234-1234-1234-123456789abcd"]),
        full(&["-uuid", "g2345678-1234-1234-1234-123456789abc"]),
        full(&["-uuid", "12345678-1234-1234-1234-123456789abc", "-mon", "nosuch"]),
        full(&["-uuid", "12345678-1234-1234-1234-123456789ABC", "-mon", "nosuch"]),
        full(&["-uuid", "12345678123412341234123456789abc"]),
        // -add-fd
        full(&["-add-fd", "fd=99,set=1"]),
        full(&["-add-fd", "fd=3"]).fds(&[Fd::File]),
        full(&["-add-fd", "set=1"]),
        full(&["-add-fd", "fd=-1,set=1"]),
        full(&["-add-fd", "fd=3,set=-1"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=0,set=1"]),
        full(&["-add-fd", "fd=1,set=1"]),
        full(&["-add-fd", "fd=2,set=1"]),
        full(&["-add-fd", "fd=abc,set=1"]),
        full(&["-add-fd", "fd=3,set=abc"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=,set=1"]),
        full(&["-add-fd", "fd=3x,set=1"]),
        full(&["-add-fd", "fd=+3,set=1", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=0x3,set=1", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3.0,set=1"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=4294967299,set=1", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3,set=18446744073709551615", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3,set=18446744073709551616"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3,set=1,opaque=a,,b", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3,set=1", "-add-fd", "fd=3,set=2", "END"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=3,set=1", "-add-fd", "fd=4,set=1", "END"]).fds(&[Fd::File, Fd::Pipe]),
        full(&["-add-fd", "fd=3,set=1", "-chardev", "socket,fd=3,id=x"]).fds(&[Fd::PairEnd]),
        full(&["-add-fd", "fd=3,set=1", "-add-fd", "fd=99,set=2"]).fds(&[Fd::File]),
        // -pidfile
        full(&["-pidfile", "$D/nodir/pid"]),
        full(&["-pidfile", ""]),
        full(&["-pidfile", "$D"]),
        // Another QEMU holds the pid file (lockf, i.e. an fcntl record lock) ...
        full(&["-pidfile", "$D/locked.pid", "END"]).prep(Prep::Lock("locked.pid")),
        // ... or something holds a flock(2) lock on it.
        full(&["-pidfile", "$D/locked.pid", "END"]).prep(Prep::Flock("locked.pid")),
        full(&["-pidfile", "$D/p", "END"]),
        full(&["-pidfile", "$D/f", "END"]).prep(Prep::File("f")),
        full(&["-pidfile", "$D/nodir/p", "-pidfile", "$D/p", "END"]),
        full(&["-pidfile", "$D/p", "-pidfile", "$D/nodir/p"]),
        full(&["-daemonize", "-pidfile", "$D/nodir/p"]),
    ];
    for kind in ALL_FDS {
        v.push(full(&["-add-fd", "fd=3,set=1", "END"]).fds(&[*kind]));
    }
    v
}

const ALL_FDS: &[Fd] = &[
    Fd::File,
    Fd::DevNull,
    Fd::Pipe,
    Fd::PairEnd,
    Fd::Udp,
    Fd::UnixDgram,
    Fd::UnboundUnix,
    Fd::BoundUnix,
    Fd::UnixListener,
    Fd::TcpListener,
    Fd::AbstractListener,
    Fd::UnboundTcp,
    Fd::ConnectedTcp,
];

/// cli.md §4 and chardev.md §3: every kind of inherited fd in every socket mode.
fn rows_fds() -> Vec<Case> {
    let listening = |k: Fd| matches!(k, Fd::UnixListener | Fd::TcpListener | Fd::AbstractListener);
    let mut v = Vec::new();
    for &kind in ALL_FDS {
        let modes: &[&str] = &[
            "socket,fd=3,server=on,wait=off,id=x",
            "socket,fd=3,server=off,id=x",
            "socket,fd=3,id=x",
            "socket,fd=3,server=on,wait=off,nodelay=on,id=x",
            "socket,fd=3,reconnect=1,id=x",
            "socket,fd=3,server=on,wait=off,tls-creds=x,id=x",
            "socket,fd=3,tls-creds=x,id=x",
        ];
        for mode in modes {
            // alone (it fails, or it works and END ends the process)
            v.push(full(&["-chardev", mode, "END"]).fds(&[kind]));
        }
        // wait=on blocks start-up when the fd can listen; only the failing ones here.
        if !listening(kind) && !matches!(kind, Fd::BoundUnix | Fd::UnboundTcp) {
            v.push(full(&["-chardev", "socket,fd=3,server=on,id=x", "END"]).fds(&[kind]));
        }
        // a monitor on it, then an error after
        v.push(
            full(&["-chardev", "socket,fd=3,server=on,wait=off,id=x", "-mon", "x,mode=control", "END"]).fds(&[kind]),
        );
        // the same fd twice
        v.push(
            full(&[
                "-chardev",
                "socket,fd=3,server=on,wait=off,id=a",
                "-chardev",
                "socket,fd=3,server=on,wait=off,id=b",
                "END",
            ])
            .fds(&[kind]),
        );
        // as fd 4 after a good listener at fd 3
        v.push(
            full(&[
                "-chardev",
                "socket,fd=3,server=on,wait=off,id=a",
                "-chardev",
                "socket,fd=4,server=on,wait=off,id=b",
                "END",
            ])
            .fds(&[Fd::UnixListener, kind]),
        );
    }
    v.extend([
        full(&["-chardev", "socket,fd=3,server=on,wait=off,id=x", "-chardev", "socket,fd=3,id=y", "END"])
            .fds(&[Fd::PairEnd]),
        full(&["-chardev", "socket,fd=4,server=on,wait=off,id=x", "END"]).fds(&[Fd::UnixListener]),
        full(&["-qmp", "unix:$D/q.sock,server=on,wait=off", "-chardev", "socket,fd=3,server=on,wait=off,id=x"])
            .fds(&[Fd::File]),
    ]);
    v
}

#[test]
fn differential_cli_table() {
    let mut cases = Vec::new();
    cases.extend(rows_option_names());
    cases.extend(rows_qemuopts());
    cases.extend(rows_chardev());
    cases.extend(rows_mon());
    cases.extend(rows_legacy());
    cases.extend(rows_misc());
    cases.extend(rows_fds());
    check_table("cli", &cases);
}

/// cli.md §1 "Order of checks", beyond the name/value passes: which of two errors in different
/// stages QEMU reports. QEMU 7.2 (vl.c) goes: option names; option values left to right;
/// `-name` and `-add-fd` (each fully, in order); `-daemonize` and the pid file; then each
/// `-chardev`/`-qmp`/`-monitor` chardev in order (backend name, its keys, opening it, `help`);
/// then each monitor.
fn rows_order() -> Vec<Case> {
    vec![
        // A chardev that fails to open comes before any monitor error.
        full(&["-chardev", "socket,fd=99,server=on,wait=off,id=x", "-mon", "x,mode=bogus"]),
        full(&["-chardev", "socket,fd=99,server=on,wait=off,id=x", "-mon", "nosuch"]),
        full(&["-chardev", "socket,fd=3,server=on,wait=off,id=x", "-mon", "nosuch"]).fds(&[Fd::File]),
        full(&["-chardev", "socket,fd=3,server=on,wait=off,id=x", "-mon", "nosuch"]).fds(&[Fd::PairEnd]),
        full(&["-chardev", "socket,fd=myfd,id=x", "-mon", "nosuch"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-mon", "a,mode=bogus"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "null,id=b", "-mon", "b", "-mon", "b"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-mon", "a,pretty=on"]),
        full(&["-qmp", "unix:$D/nothere.sock", "-mon", "nosuch"]),
        // ... and before the next chardev's errors of any kind.
        full(&["-chardev", "socket,fd=99,server=on,wait=off,id=x", "-chardev", "bogus,id=y"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "socket,host=127.0.0.1,id=b"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "ringbuf,id=r,size=3"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "file,id=f"]),
        full(&[
            "-chardev",
            "socket,path=$D/nothere.sock,id=a",
            "-chardev",
            "socket,host=127.0.0.1,port=1,ipv4=off,ipv6=off,id=b",
        ]),
        full(&[
            "-chardev",
            "socket,path=$D/nothere.sock,id=a",
            "-chardev",
            "socket,path=$D/b,reconnect=1,server=on,id=b",
        ]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "socket,path=$D/b,fd=3,id=b"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "socket,fd=3,reconnect=1,id=b"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "stdio,id=s", "-chardev", "stdio,id=t"]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "stdio,id=s", "-daemonize"]),
        full(&["-chardev", "socket,fd=99,server=on,wait=off,id=x", "-chardev", "help"]),
        // The pid file comes before every chardev and monitor error ...
        full(&["-pidfile", "$D/nodir/p", "-chardev", "bogus,id=x"]),
        full(&["-pidfile", "$D/nodir/p", "-chardev", "socket,host=127.0.0.1,id=x"]),
        full(&["-pidfile", "$D/nodir/p", "-mon", "nosuch"]),
        full(&["-pidfile", "$D/nodir/p", "-chardev", "help"]),
        full(&["-daemonize", "-qmp", "stdio", "-pidfile", "$D/nodir/p"]),
        full(&["-daemonize", "-chardev", "stdio,id=s", "-pidfile", "$D/nodir/p"]),
        // ... but after `-add-fd`.
        full(&["-pidfile", "$D/nodir/p", "-add-fd", "fd=99,set=1"]),
        full(&["-add-fd", "fd=99,set=1", "-pidfile", "$D/nodir/p"]),
        // `-add-fd` comes before chardevs and monitors, and each is checked fully in turn.
        full(&["-add-fd", "fd=99,set=1", "-chardev", "bogus,id=x"]),
        full(&["-chardev", "bogus,id=x", "-add-fd", "fd=99,set=1"]),
        full(&["-add-fd", "fd=99,set=1", "-mon", "nosuch"]),
        full(&["-add-fd", "fd=99,set=1", "-chardev", "socket,host=127.0.0.1,id=x"]),
        full(&["-add-fd", "fd=99,set=2", "-add-fd", "fd=3,set=-1"]).fds(&[Fd::File]),
        full(&["-add-fd", "fd=99,set=2", "-add-fd", "fd=1,set=1"]),
        // Controls: the same stage, so the order is plainly left to right in both.
        full(&["-chardev", "bogus,id=x", "-chardev", "socket,host=127.0.0.1,id=y"]),
        full(&["-mon", "nosuch", "-mon", "x,mode=bogus"]),
        full(&["-add-fd", "fd=3,set=-1", "-add-fd", "fd=99,set=2"]).fds(&[Fd::File]),
        full(&["-chardev", "socket,path=$D/nothere.sock,id=a", "-chardev", "socket,fd=99,id=b"]),
    ]
}

#[test]
fn differential_cli_order_of_checks() {
    check_table("order", &rows_order());
}

/// `-serial` (the workload's console): QEMU 7.2's `serial_parse` texts, and its place after
/// the chardevs and monitors. (fdmon's own refusals, a second `-serial`, `mon:` and `pty`, are
/// unit tests in `opts::cli`.)
fn rows_serial() -> Vec<Case> {
    vec![
        full(&["-serial", "chardev:nope"]),
        full(&["-serial", "bogus"]),
        full(&["-serial", ""]),
        full(&["-serial", "tcp:host"]),
        full(&["-serial", "unix:$D/x.sock,bogus"]),
        full(&["-serial", "unix:$D/nodir/x.sock,server=on,wait=off"]),
        full(&["-serial", "file:$D/nodir/x.log"]),
        full(&["-qmp", "stdio", "-serial", "stdio"]),
        full(&["-daemonize", "-serial", "stdio"]),
        full(&["-chardev", "null,id=serial0", "-serial", "null"]),
        full(&["-serial", "bogus", "-mon", "nosuch"]),
        full(&["-serial", "chardev:nope", "-chardev", "bogus,id=x"]),
        full(&["-serial", "none", "-serial", "chardev:nope"]),
    ]
}

#[test]
fn differential_cli_serial() {
    check_table("serial", &rows_serial());
}

// ---------------------------------------------------------------------------------------------
// Legacy options working end to end.
// ---------------------------------------------------------------------------------------------

fn start(imp: Imp, args: &[String], fds: Vec<OwnedFd>) -> Fdmon {
    start_imp(imp, args, fds)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A client on any connected stream socket (TCP or abstract unix): `Client` only reads and
/// writes, which works on every socket type.
fn client_from(fd: OwnedFd) -> Client {
    fdmon::sys::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&fd), false).unwrap();
    Client::new(UnixStream::from(fd))
}

fn tcp_client(addr: std::net::SocketAddr) -> Client {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return client_from(OwnedFd::from(s)),
            Err(e) => assert!(Instant::now() < deadline, "connect {addr}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn abstract_client(name: &str, tight: bool) -> std::io::Result<Client> {
    unix_connect(&UnixAddr::Abstract(name.as_bytes().to_vec()), tight).map(client_from)
}

/// Replaces the version numbers and package of a greeting (plain or pretty).
fn normalize_greeting(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..i]);
        let n = rest[i..].find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len() - i);
        out.push('N');
        rest = &rest[i + n..];
    }
    out.push_str(rest);
    match out.find("\"package\": \"") {
        Some(i) => {
            let start = i + "\"package\": \"".len();
            let end = start + out[start..].find('"').unwrap();
            format!("{}PKG{}", &out[..start], &out[end..])
        }
        None => out,
    }
}

/// `query-chardev` entries, sorted (the order itself is checked by differential_chardev_order).
fn chardev_entries(c: &mut Client) -> Vec<String> {
    let r = c.cmd(r#"{"execute":"query-chardev"}"#);
    let body = r.strip_prefix(r#"{"return": ["#).and_then(|s| s.strip_suffix("]}")).unwrap_or_else(|| panic!("{r}"));
    let mut v: Vec<String> = if body.is_empty() {
        vec![]
    } else {
        body.split("}, {").map(|e| e.trim_start_matches('{').trim_end_matches('}').to_string()).collect()
    };
    v.sort();
    v
}

fn entry(label: &str, filename: &str, open: bool) -> String {
    format!(r#""frontend-open": {open}, "filename": "{filename}", "label": "{label}""#)
}

#[test]
fn qmp_legacy_unix_server_session() {
    let dir = TempDir::new("lq");
    let p = dir.str("q.sock");
    let dev = format!("unix:{p},server=on,wait=off");
    let mut f = spawn(&["-qmp", &dev]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    c.negotiate();
    assert_eq!(chardev_entries(&mut c), vec![entry("compat_monitor0", &format!("unix:{p},server=on"), true)]);
    assert_eq!(
        c.cmd(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#
    );
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(c.reply(), r#"{"return": {}}"#);
    assert_eq!(f.wait().code(), Some(0));
    assert!(!std::path::Path::new(&p).exists(), "the socket fdmon created is removed at exit");
    let (_, err) = f.wait_output();
    assert_eq!(err, "");
}

#[test]
fn qmp_legacy_short_form_flags_and_path_key() {
    let dir = TempDir::new("lq2");
    let p = dir.str("q.sock");
    let dev = format!("unix:path={p},server,nowait");
    let mut f = spawn(&["-qmp", &dev]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    c.negotiate();
    assert_eq!(chardev_entries(&mut c), vec![entry("compat_monitor0", &format!("unix:{p},server=on"), true)]);
    drop(c);
    f.signal(libc::SIGTERM);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(0));
    // The legacy syntax goes through QEMU's non-warning parser: no short-form warnings.
    assert!(err.starts_with("fdmon: terminating on signal 15"), "{err:?}");
}

#[test]
fn qmp_pretty_legacy_greeting() {
    let dir = TempDir::new("lqp");
    let p = dir.str("q.sock");
    let dev = format!("unix:{p},server=on,wait=off");
    let _f = spawn(&["-qmp-pretty", &dev]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    let g = c.until("}\r\n}\r\n");
    assert!(g.starts_with("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n"), "{g:?}");
    assert!(g.ends_with("        \"capabilities\": [\r\n            \"oob\"\r\n        ]\r\n    }\r\n}\r\n"), "{g:?}");
    c.send(r#"{"execute":"qmp_capabilities"}"#);
    assert_eq!(c.until("\r\n}\r\n"), "{\r\n    \"return\": {\r\n    }\r\n}\r\n");
}

#[test]
fn monitor_legacy_unix_hmp_banner() {
    let dir = TempDir::new("lm");
    let p = dir.str("m.sock");
    let dev = format!("unix:{p},server=on,wait=off");
    let _f = spawn(&["-monitor", &dev]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    assert_eq!(c.until("(qemu) "), "fdmon 0.1.0 monitor - type 'help' for more information\r\n(qemu) ");
}

#[test]
fn qmp_legacy_tcp_server_session() {
    let port = free_port();
    let dev = format!("tcp:127.0.0.1:{port},server=on,wait=off");
    let _f = spawn(&["-qmp", &dev]);
    let mut c = tcp_client(([127, 0, 0, 1], port).into());
    c.negotiate();
    let list = chardev_entries(&mut c);
    assert_eq!(list.len(), 1, "{list:?}");
    let prefix = format!(r#""frontend-open": true, "filename": "tcp:127.0.0.1:{port},server=on <-> 127.0.0.1:"#);
    assert!(list[0].starts_with(&prefix), "{list:?}");
    assert!(list[0].ends_with(r#"", "label": "compat_monitor0""#), "{list:?}");
}

#[test]
fn qmp_legacy_tcp_port_zero_shows_the_real_port() {
    let dir = TempDir::new("lq0");
    let p = dir.str("ctl.sock");
    let ctl = format!("unix:{p},server=on,wait=off");
    let _f = spawn(&["-qmp", &ctl, "-monitor", "tcp:127.0.0.1:0,server=on,wait=off"]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    c.negotiate();
    let list = chardev_entries(&mut c);
    let tcp = list.iter().find(|e| e.contains("compat_monitor1")).unwrap_or_else(|| panic!("{list:?}"));
    let start = tcp.find("disconnected:tcp:127.0.0.1:").expect(tcp) + "disconnected:tcp:127.0.0.1:".len();
    let port: u16 = tcp[start..].split(',').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let mut m = tcp_client(([127, 0, 0, 1], port).into());
    assert_eq!(m.until("(qemu) "), "fdmon 0.1.0 monitor - type 'help' for more information\r\n(qemu) ");
}

#[test]
fn monitor_none_is_no_monitor_and_takes_no_number() {
    // Alone: nothing to talk to, but it runs until a signal.
    let mut f = spawn(&["-monitor", "none"]);
    std::thread::sleep(QUIET);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon -monitor none exited early");
    f.signal(libc::SIGTERM);
    let (code, _) = f.wait_output();
    assert_eq!(code, Some(0));

    let dir = TempDir::new("mn");
    let p = dir.str("q.sock");
    let dev = format!("unix:{p},server=on,wait=off");
    let _f = spawn(&["-monitor", "none", "-qmp", &dev, "-monitor", "none"]);
    let mut c = Client::connect_retry(std::path::Path::new(&p));
    c.negotiate();
    assert_eq!(chardev_entries(&mut c), vec![entry("compat_monitor0", &format!("unix:{p},server=on"), true)]);
}

/// `-qmp A -monitor none -monitor chardev:rb -monitor B -qmp-pretty C -qmp tcp`: the numbers
/// count every `-qmp*`/`-monitor` but `none` (`chardev:` consumes one too).
fn several_monitors_args(dir: &TempDir) -> Vec<String> {
    strings(&[
        "-chardev",
        "ringbuf,id=rb",
        "-qmp",
        &format!("unix:{},server=on,wait=off", dir.str("a.sock")),
        "-monitor",
        "none",
        "-monitor",
        "chardev:rb",
        "-monitor",
        &format!("unix:{},server=on,wait=off", dir.str("b.sock")),
        "-qmp-pretty",
        &format!("unix:{},server=on,wait=off", dir.str("c.sock")),
        "-qmp",
        "tcp:127.0.0.1:0,server=on,wait=off",
        "-chardev",
        "null,id=spare",
    ])
}

fn several_monitors(imp: Imp) -> (Vec<String>, String, String) {
    let dir = TempDir::new("several");
    let _f = start(imp, &several_monitors_args(&dir), vec![]);
    let mut a = Client::connect_retry(&dir.path("a.sock"));
    a.negotiate();
    let d = dir.0.to_string_lossy().into_owned();
    let mut list: Vec<String> = chardev_entries(&mut a).iter().map(|e| e.replace(&d, "$D")).collect();
    // The tcp port is the kernel's choice.
    for e in list.iter_mut() {
        if let Some(i) = e.find("disconnected:tcp:127.0.0.1:") {
            let start = i + "disconnected:tcp:127.0.0.1:".len();
            let end = start + e[start..].find(',').unwrap();
            e.replace_range(start..end, "PORT");
        }
    }
    list.sort();
    let mut b = Client::connect_retry(&dir.path("b.sock"));
    let banner = b.until("(qemu) ");
    let mut c = Client::connect_retry(&dir.path("c.sock"));
    let pretty = c.until("}\r\n}\r\n");
    (list, banner, normalize_greeting(&pretty))
}

#[test]
fn several_legacy_monitors_are_numbered_in_order() {
    let (list, banner, pretty) = several_monitors(Imp::Fdmon);
    let mut want = vec![
        entry("compat_monitor0", "unix:$D/a.sock,server=on", true),
        entry("compat_monitor2", "disconnected:unix:$D/b.sock,server=on", true),
        entry("compat_monitor3", "disconnected:unix:$D/c.sock,server=on", true),
        entry("compat_monitor4", "disconnected:tcp:127.0.0.1:PORT,server=on", true),
        entry("rb", "ringbuf", true),
        entry("spare", "null", false),
    ];
    want.sort();
    assert_eq!(list, want);
    assert_eq!(banner, "fdmon 0.1.0 monitor - type 'help' for more information\r\n(qemu) ");
    assert!(pretty.starts_with("{\r\n    \"QMP\": {"), "{pretty:?}");
}

/// fdmon's stdin/stdout as the monitor: lines from a pipe, with a bounded wait.
struct PipeLines {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl PipeLines {
    fn new(mut r: impl Read + Send + 'static) -> PipeLines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = r.read(&mut b) {
                if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        PipeLines { rx, buf: Vec::new() }
    }

    fn line(&mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&l).trim_end_matches(['\r', '\n']).to_string();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.buf.extend(b),
                Err(_) => panic!("no line on stdout; have {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }
}

fn qmp_stdio_session(imp: Imp) -> (Vec<String>, Option<i32>, String) {
    let mut cmd = match imp {
        Imp::Fdmon => Command::new(bin()),
        Imp::Qemu => {
            let mut c = Command::new(QEMU);
            c.args(QEMU_BASE);
            c
        }
    };
    let mut child = cmd
        .args(["-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = PipeLines::new(child.stdout.take().unwrap());
    let mut t = vec![normalize_greeting(&out.line())];
    for req in [
        r#"{"execute":"qmp_capabilities"}"#,
        r#"{"execute":"query-chardev"}"#,
        r#"{"execute":"query-status"}"#,
        r#"{"execute":"quit"}"#,
    ] {
        if let Err(e) = stdin.write_all(format!("{req}\n").as_bytes()) {
            let _ = child.kill();
            let st = child.wait().unwrap();
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("{imp:?}: writing {req}: {e}; it exited with {st:?}, stderr {err:?}, stdout so far {t:?}");
        }
        let mut l = out.line();
        while l.starts_with(r#"{"timestamp""#) {
            t.push(strip_timestamp(&l));
            l = out.line();
        }
        t.push(l);
    }
    let deadline = Instant::now() + TIMEOUT;
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (t, st.code(), err)
}

#[test]
fn qmp_stdio_uses_stdin_and_stdout() {
    let (t, code, err) = qmp_stdio_session(Imp::Fdmon);
    assert!(t[0].starts_with(r#"{"QMP": {"version": "#), "{t:?}");
    assert_eq!(
        t[1..],
        [
            r#"{"return": {}}"#.to_string(),
            r#"{"return": [{"frontend-open": true, "filename": "stdio", "label": "compat_monitor0"}]}"#.to_string(),
            r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#.to_string(),
            r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#.to_string(),
            r#"{"return": {}}"#.to_string(),
        ]
    );
    assert_eq!(code, Some(0));
    assert_eq!(err, "");
}

#[test]
fn chardev_help_lists_the_backends() {
    let (code, out, err) = run(&["-chardev", "help"]);
    assert_eq!(code, Some(0));
    assert_eq!(err, "");
    assert_eq!(
        out,
        "Available chardev backend types: \n  socket\n  ringbuf\n  memory\n  null\n  file\n  pipe\n  stdio\n"
    );
    // The same list as query-chardev-backends.
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let names: Vec<String> = out.lines().skip(1).map(|l| format!(r#"{{"name": "{}"}}"#, l.trim())).collect();
    assert_eq!(c.cmd(r#"{"execute":"query-chardev-backends"}"#), format!(r#"{{"return": [{}]}}"#, names.join(", ")));
}

#[test]
fn help_lists_every_option() {
    for flag in ["-h", "-help", "--help", "--h"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, Some(0), "{flag}");
        assert_eq!(err, "", "{flag}");
        assert!(out.starts_with("fdmon version 0.1.0\n"), "{flag}: {out}");
        assert!(out.contains("\nusage: fdmon [options] [-- PROGRAM [ARGS...]]\n"), "{flag}: {out}");
        let lines: Vec<&str> = out.lines().collect();
        // Every option, at the start of a line, and QEMU's synopses where fdmon mirrors them.
        for start in [
            "-h ",
            "-version ",
            "-name string1[,process=string2][,debug-threads=on|off]",
            "-uuid ",
            "-chardev help",
            "-chardev socket,",
            "-mon [chardev=]name[,mode=readline|control][,pretty[=on|off]]",
            "-qmp dev ",
            "-qmp-pretty dev ",
            "-monitor dev ",
            "-S ",
            "-no-shutdown ",
            "-pidfile file ",
            "-daemonize ",
            "-add-fd fd=fd,set=set[,opaque=opaque]",
            "-pass-fd ",
            "-shutdown-timeout ",
            "-- PROGRAM",
        ] {
            assert!(lines.iter().any(|l| l.starts_with(start)), "{flag}: no line starts with {start:?}:\n{out}");
        }
    }
}

#[test]
fn version_prints_the_version() {
    for flag in ["-version", "--version"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, Some(0));
        assert_eq!(err, "");
        assert_eq!(out.lines().next(), Some("fdmon version 0.1.0"), "{out}");
    }
    // It wins over everything after it, but not over a bad option name anywhere.
    let (code, out, _) = run(&["-version", "-chardev", "bogus"]);
    assert_eq!((code, out.lines().next()), (Some(0), Some("fdmon version 0.1.0")));
}

/// One legacy-option session: (greeting or banner, replies), with what legitimately differs
/// (program name and version, scratch dir, the client's own tcp port) replaced.
fn legacy_session(imp: Imp, opt: &str, tcp: bool) -> Vec<String> {
    let dir = TempDir::new("legacy");
    let d = dir.0.to_string_lossy().into_owned();
    let port = free_port();
    let dev = if tcp {
        format!("tcp:127.0.0.1:{port},server=on,wait=off")
    } else {
        format!("unix:{},server=on,wait=off", dir.str("s.sock"))
    };
    let _f = start(imp, &strings(&[opt, &dev]), vec![]);
    let mut c =
        if tcp { tcp_client(([127, 0, 0, 1], port).into()) } else { Client::connect_retry(&dir.path("s.sock")) };
    let norm = |s: &str| -> String {
        let mut s = s.replace(&d, "$D").replace(&port.to_string(), "PORT");
        if let Some(i) = s.find("<-> 127.0.0.1:") {
            let start = i + "<-> 127.0.0.1:".len();
            let end = start + s[start..].find('"').unwrap();
            s.replace_range(start..end, "LOCAL");
        }
        s
    };
    let mut t = Vec::new();
    match opt {
        "-monitor" => {
            let b = c.until("(qemu) ");
            t.push(normalize_banner(&b));
        }
        "-qmp-pretty" => {
            t.push(normalize_greeting(&c.until("}\r\n}\r\n")));
            c.send(r#"{"execute":"qmp_capabilities"}"#);
            t.push(c.until("\r\n}\r\n"));
            c.send(r#"{"execute":"query-chardev"}"#);
            t.push(norm(&c.until("\r\n}\r\n")));
        }
        _ => {
            t.push(normalize_greeting(&c.negotiate()));
            t.push(norm(&c.cmd(r#"{"execute":"query-chardev"}"#)));
        }
    }
    t
}

/// Numbered items, for scenarios that return a list of normalized lines.
fn numbered(v: Vec<String>) -> Transcript {
    v.into_iter().enumerate().map(|(i, t)| (i.to_string(), t)).collect()
}

#[test]
fn differential_legacy_sessions() {
    let g = Golden::open("cli/legacy_sessions");
    for (opt, tcp) in [("-qmp", false), ("-qmp", true), ("-qmp-pretty", false), ("-monitor", false), ("-monitor", true)]
    {
        g.check(&format!("{opt} tcp={tcp}"), &[], |imp| numbered(legacy_session(imp, opt, tcp)));
    }
    g.finish();
}

#[test]
fn differential_several_legacy_monitors() {
    golden::check_one("cli/several_legacy_monitors", "several monitors", &[], |imp| {
        let (list, banner, pretty) = several_monitors(imp);
        items([("query-chardev", list.join("\n")), ("banner", normalize_banner(&banner)), ("pretty greeting", pretty)])
    });
}

#[test]
fn differential_qmp_stdio() {
    golden::check_one("cli/qmp_stdio", "-qmp stdio", &[], |imp| {
        let (t, code, err) = qmp_stdio_session(imp);
        let mut v = numbered(t);
        v.push(("exit".into(), format!("{code:?}")));
        v.push(("stderr".into(), err));
        v
    });
}

/// The `info: ... waiting for connection on: ...` line of a start-up `wait=on`, then the
/// client that ends the wait gets the first greeting/banner.
fn waiting_line(imp: Imp, args: &[&str], listener_fd: bool, tcp_port: Option<u16>) -> (String, String) {
    let dir = TempDir::new("waitline");
    let d = dir.0.to_string_lossy().into_owned();
    let fds = if listener_fd { vec![OwnedFd::from(UnixListener::bind(dir.path("w.sock")).unwrap())] } else { vec![] };
    let args: Vec<String> = args.iter().map(|a| a.replace("$D", &d)).collect();
    let mut f = start(imp, &args, fds);
    let mut err = PipeLines::new(f.child.stderr.take().unwrap());
    let line = err.line().replace(&d, "$D");
    let line = match line.strip_prefix("qemu-system-x86_64:") {
        Some(r) => format!("fdmon:{}", r.replace("info: QEMU waiting", "info: fdmon waiting")),
        None => line,
    };
    let mut c = match tcp_port {
        Some(p) => tcp_client(([127, 0, 0, 1], p).into()),
        None => Client::connect_retry(&dir.path("w.sock")),
    };
    let first = c.line();
    let first = if first.starts_with('{') { normalize_greeting(&first) } else { normalize_banner(&first) };
    let line = match tcp_port {
        Some(p) => replace_number(&line, u64::from(p), "PORT"),
        None => line,
    };
    (line, first)
}

#[test]
fn differential_waiting_info_lines() {
    let cases: Vec<(Vec<&str>, bool, bool)> = vec![
        (vec!["-chardev", "socket,path=$D/w.sock,server=on,id=m", "-mon", "m,mode=control"], false, false),
        (vec!["-chardev", "socket,fd=3,server=on,id=m", "-mon", "m,mode=control"], true, false),
        (vec!["-chardev", "socket,fd=3,server=on,wait=on,id=m", "-mon", "m"], true, false),
        (vec!["-qmp", "unix:$D/w.sock,server=on"], false, false),
        (vec!["-qmp", "unix:$D/w.sock,server"], false, false),
        (vec!["-monitor", "unix:$D/w.sock,server=on,wait=on"], false, false),
        (vec!["-qmp", "tcp:127.0.0.1:$PORT,server=on"], false, true),
    ];
    let g = Golden::open("cli/waiting_info_lines");
    for (args, fd, tcp) in cases {
        g.check(&format!("{args:?}"), &[], |imp| {
            let port = free_port();
            let ps = port.to_string();
            let args: Vec<String> = args.iter().map(|a| a.replace("$PORT", &ps)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (line, first) = waiting_line(imp, &args, fd, tcp.then_some(port));
            items([("stderr line", line), ("first line", first)])
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Abstract sockets, IPv6, port=0, to= ranges.
// ---------------------------------------------------------------------------------------------

/// A QMP session over a socketpair with `extra` options (fdmon or QEMU).
fn pair_session(imp: Imp, extra: &[String]) -> (Fdmon, Client) {
    let mon = ["-chardev", "socket,fd=3,id=ctl", "-mon", "ctl,mode=control"];
    let (f, mut c) = differential::pair_session(imp, &mon, extra, Vec::new());
    c.negotiate();
    (f, c)
}

/// Waits until the server chardevs `labels` show a connected client; returns the entries.
fn wait_until_connected(c: &mut Client, labels: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let list = chardev_entries(c);
        let done = labels
            .iter()
            .all(|l| list.iter().any(|e| e.ends_with(&format!(r#""label": "{l}""#)) && !e.contains("disconnected:")));
        if done {
            return list;
        }
        assert!(Instant::now() < deadline, "{labels:?} never showed a client: {list:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The abstract-socket scenario, normalized: filenames before and after a client, and which
/// address forms (tight or padded) reach each listener.
fn abstract_scenario(imp: Imp) -> Vec<String> {
    let n1 = abstract_name("tight");
    let n2 = abstract_name("loose");
    let n3 = abstract_name("client");
    // fdmon/QEMU connect to our abstract listener n3 as clients.
    let l3 = unix_listen(&UnixAddr::Abstract(n3.clone().into_bytes()), true, 1).unwrap();
    fdmon::sys::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&l3), false).unwrap();
    let l3 = UnixListener::from(l3);
    let extra = strings(&[
        "-chardev",
        &format!("socket,path={n1},abstract=on,server=on,wait=off,id=a1"),
        "-mon",
        "a1,mode=control",
        "-chardev",
        &format!("socket,path={n2},abstract=on,tight=off,server=on,wait=off,id=a2"),
        "-mon",
        "a2,mode=control",
        "-chardev",
        &format!("socket,path={n3},abstract=on,id=a3"),
        "-mon",
        "a3,mode=control",
    ]);
    let (_f, mut c) = pair_session(imp, &extra);
    let (s3, _) = l3.accept().unwrap();
    let mut c3 = Client::new(s3);
    let norm = |v: Vec<String>| -> Vec<String> {
        let mut v: Vec<String> =
            v.into_iter().map(|e| e.replace(&n1, "$N1").replace(&n2, "$N2").replace(&n3, "$N3")).collect();
        v.sort();
        v
    };
    let mut t = norm(chardev_entries(&mut c));
    // The padded form does not reach a tight listener, and the other way round.
    t.push(format!("tight listener, padded address: {}", abstract_client(&n1, false).is_ok()));
    t.push(format!("padded listener, tight address: {}", abstract_client(&n2, true).is_ok()));
    let mut a1 = abstract_client(&n1, true).expect("connect tight");
    t.push(normalize_greeting(&a1.negotiate()));
    let mut a2 = abstract_client(&n2, false).expect("connect padded");
    t.push(normalize_greeting(&a2.negotiate()));
    t.push(normalize_greeting(&c3.negotiate()));
    t.extend(norm(wait_until_connected(&mut c, &["a1", "a2"])));
    t
}

#[test]
fn abstract_sockets_tight_and_padded() {
    let t = abstract_scenario(Imp::Fdmon);
    let mut before = vec![
        entry("a1", "disconnected:unix:$N1,abstract=on,tight=on,server=on", true),
        entry("a2", "disconnected:unix:$N2,abstract=on,server=on", true),
        entry("a3", "unix:", true),
        entry("ctl", "unix:", true),
    ];
    before.sort();
    assert_eq!(t[..4], before[..], "{t:#?}");
    assert_eq!(t[4], "tight listener, padded address: false");
    assert_eq!(t[5], "padded listener, tight address: false");
    // Connected: QEMU prints sun_path of the accepted socket, which starts with NUL for an
    // abstract name, so the name is gone (observed on QEMU 7.2, and fdmon agrees).
    let mut after = vec![
        entry("a1", "unix:,server=on", true),
        entry("a2", "unix:,server=on", true),
        entry("a3", "unix:", true),
        entry("ctl", "unix:", true),
    ];
    after.sort();
    assert_eq!(t[9..], after[..], "{t:#?}");
}

#[test]
fn differential_abstract_sockets() {
    golden::check_one("cli/abstract_sockets", "abstract", &[], |imp| numbered(abstract_scenario(imp)));
}

/// An inherited abstract listener: its filename comes from getsockname.
#[test]
fn inherited_abstract_listener_filename() {
    for tight in [true, false] {
        let name = abstract_name("inh");
        let l = unix_listen(&UnixAddr::Abstract(name.clone().into_bytes()), tight, 1).unwrap();
        let (_f, mut c) = {
            let (a, b) = UnixStream::pair().unwrap();
            let f = spawn_with_fds(
                &[
                    "-chardev",
                    "socket,fd=3,id=ctl",
                    "-mon",
                    "ctl,mode=control",
                    "-chardev",
                    "socket,fd=4,server=on,wait=off,id=l",
                    "-mon",
                    "l,mode=control",
                ],
                vec![OwnedFd::from(b), l],
            );
            let mut c = Client::new(a);
            c.negotiate();
            (f, c)
        };
        let want = if tight {
            format!("disconnected:unix:{name},abstract=on,tight=on,server=on")
        } else {
            format!("disconnected:unix:{name},abstract=on,server=on")
        };
        let list = chardev_entries(&mut c);
        assert!(list.contains(&entry("l", &want, true)), "tight={tight}: {list:?}");
        let mut m = abstract_client(&name, tight).unwrap();
        m.negotiate();
    }
}

/// Whether `::1` can be bound. Where it cannot (a container without IPv6), the IPv6 cases fail
/// unless `FDMON_NO_IPV6=1` says so explicitly.
fn ipv6_usable() -> bool {
    match TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var("FDMON_NO_IPV6").is_ok_and(|v| v == "1"),
                "::1 is not usable here ({e}); set FDMON_NO_IPV6=1 to leave out the IPv6 cases"
            );
            eprintln!("NOTE: FDMON_NO_IPV6=1: IPv6 cases left out ({e})");
            false
        }
    }
}

/// TCP listeners: IPv6 `::1`, `port=0`, empty `host=`; filenames before and after a client.
fn tcp_scenario(imp: Imp, v6: bool) -> Vec<String> {
    let host = if v6 { "::1" } else { "127.0.0.1" };
    let extra = strings(&[
        "-chardev",
        &format!("socket,host={host},port=0,server=on,wait=off,id=t"),
        "-mon",
        "t,mode=control",
        "-chardev",
        "socket,host=,port=0,server=on,wait=off,id=any",
    ]);
    let (_f, mut c) = pair_session(imp, &extra);
    let list = chardev_entries(&mut c);
    let t = list.iter().find(|e| e.ends_with(r#""label": "t""#)).unwrap().clone();
    let pre = format!("disconnected:tcp:{host}:");
    let start = t.find(&pre).unwrap_or_else(|| panic!("{t}")) + pre.len();
    let port: u16 = t[start..].split(',').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "port=0 shows the real port");
    let norm = |s: &str, local: Option<u16>| -> String {
        let mut s = s.replace(&format!(":{port},"), ":PORT,");
        if let Some(l) = local {
            s = s.replace(&format!(":{l}\""), ":LOCAL\"");
        }
        // `any`: a port of its own.
        if let Some(i) = s.find("disconnected:tcp:0.0.0.0:") {
            let st = i + "disconnected:tcp:0.0.0.0:".len();
            let end = st + s[st..].find(',').unwrap();
            s.replace_range(st..end, "ANY");
        }
        s
    };
    let mut out: Vec<String> = list.iter().map(|e| norm(e, None)).collect();
    let addr: std::net::SocketAddr =
        if v6 { (std::net::Ipv6Addr::LOCALHOST, port).into() } else { ([127, 0, 0, 1], port).into() };
    let s = TcpStream::connect(addr).unwrap();
    let local = s.local_addr().unwrap().port();
    let mut m = client_from(OwnedFd::from(s));
    out.push(normalize_greeting(&m.negotiate()));
    out.extend(wait_until_connected(&mut c, &["t"]).iter().map(|e| norm(e, Some(local))));
    out
}

#[test]
fn ipv6_loopback_port_zero_and_empty_host() {
    let v4 = tcp_scenario(Imp::Fdmon, false);
    assert!(v4.contains(&entry("t", "disconnected:tcp:127.0.0.1:PORT,server=on", true)), "{v4:#?}");
    assert!(v4.contains(&entry("any", "disconnected:tcp:0.0.0.0:ANY,server=on", false)), "{v4:#?}");
    assert!(v4.contains(&entry("t", "tcp:127.0.0.1:PORT,server=on <-> 127.0.0.1:LOCAL", true)), "{v4:#?}");
    if !ipv6_usable() {
        return;
    }
    let v6 = tcp_scenario(Imp::Fdmon, true);
    assert!(v6.contains(&entry("t", "disconnected:tcp:::1:PORT,server=on", true)), "{v6:#?}");
    // Connected, QEMU 7.2 prints IPv6 addresses in brackets (unlike the listening form).
    assert!(v6.contains(&entry("t", "tcp:[::1]:PORT,server=on <-> [::1]:LOCAL", true)), "{v6:#?}");
}

#[test]
fn differential_tcp_filenames() {
    let g = Golden::open("cli/tcp_filenames");
    g.check("IPv4", &[], |imp| numbered(tcp_scenario(imp, false)));
    if ipv6_usable() {
        g.check("IPv6", &[], |imp| numbered(tcp_scenario(imp, true)));
    }
    g.finish();
}

/// `port=P,to=Q`: with P taken, chardevs get P+1, P+2; the next one finds nothing free.
fn port_range_scenario(imp: Imp) -> Vec<String> {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port();
    let range = |id: &str| format!("socket,host=127.0.0.1,port={p},to={},server=on,wait=off,id={id}", p + 2);
    let extra = strings(&["-chardev", &range("r1"), "-chardev", &range("r2")]);
    let (_f, mut c) = pair_session(imp, &extra);
    let mut out: Vec<String> = chardev_entries(&mut c)
        .iter()
        .map(|e| e.replace(&format!(":{},", p + 1), ":P+1,").replace(&format!(":{},", p + 2), ":P+2,"))
        .collect();
    // The range is now full: a third one at start-up fails.
    let mut args = strings(&["-chardev", &range("r3")]);
    if imp == Imp::Qemu {
        let mut all = strings(QEMU_BASE);
        all.append(&mut args);
        args = all;
    }
    let holders: Vec<TcpListener> =
        [p + 1, p + 2].iter().filter_map(|q| TcpListener::bind(("127.0.0.1", *q)).ok()).collect();
    assert!(holders.is_empty(), "P+1 and P+2 should be in use by the chardevs");
    let prog = if imp == Imp::Qemu { QEMU } else { bin() };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut f3 = spawn_program(prog, &argv, vec![]);
    let (code, err) = f3.wait_output();
    let err = err
        .replacen("qemu-system-x86_64:", "fdmon:", 1)
        .replace(&p.to_string(), "P")
        .replace(&(p + 2).to_string(), "P+2");
    out.push(format!("{code:?} {err}"));
    drop(taken);
    out
}

#[test]
fn tcp_port_range_takes_the_next_free_ports() {
    let t = port_range_scenario(Imp::Fdmon);
    assert!(t.contains(&entry("r1", "disconnected:tcp:127.0.0.1:P+1,server=on", false)), "{t:#?}");
    assert!(t.contains(&entry("r2", "disconnected:tcp:127.0.0.1:P+2,server=on", false)), "{t:#?}");
    assert!(t.last().unwrap().starts_with("Some(1) fdmon: -chardev socket,host=127.0.0.1,port="), "{t:#?}");
}

#[test]
fn differential_tcp_port_range() {
    golden::check_one("cli/tcp_port_range", "port range", &[], |imp| numbered(port_range_scenario(imp)));
}

// ---------------------------------------------------------------------------------------------
// accept() under EMFILE.
// ---------------------------------------------------------------------------------------------

/// utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start with field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Why the obvious scenario cannot work: with one server chardev, fdmon only accepts once the
/// connected client has gone, and that client's own fd is freed right then, so the accept
/// always finds a free slot. Instead there are two server chardevs: client A on `a.sock`
/// fills the fd table (getfd with SCM_RIGHTS until the fd no longer arrives), then client B
/// connects to `b.sock`, which has no client: fdmon polls that listener, accept() fails with
/// EMFILE, and the connection stays pending, so a naive loop would spin on it.
#[test]
fn accept_under_emfile_does_not_spin() {
    let dir = TempDir::new("emfile");
    let a_path = dir.str("a.sock");
    let b_path = dir.str("b.sock");
    let a_arg = format!("socket,path={a_path},server=on,wait=off,id=ma");
    let b_arg = format!("socket,path={b_path},server=on,wait=off,id=mb");
    let f = spawn_program(
        "sh",
        &[
            "-c",
            "ulimit -n 16 && exec \"$0\" \"$@\"",
            bin(),
            "-chardev",
            &a_arg,
            "-mon",
            "ma,mode=control",
            "-chardev",
            &b_arg,
            "-mon",
            "mb,mode=control",
        ],
        vec![],
    );
    let pid = f.pid();
    let mut a = Client::connect_retry(std::path::Path::new(&a_path));
    a.negotiate();
    wait_until("fdmon exec'd", || {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.to_string_lossy().contains("fdmon"))
    });
    assert!(std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .any(|l| { l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("16") }));

    // Fill the table.
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut names = Vec::new();
    for i in 0..64 {
        let req = format!(r#"{{"execute":"getfd","arguments":{{"fdname":"f{i}"}}}}"#);
        a.send_fds(&req, &[&null]);
        let r = a.reply();
        if r == r#"{"return": {}}"# {
            names.push(format!("f{i}"));
            continue;
        }
        assert_eq!(r, r#"{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}"#);
        break;
    }
    assert!(!names.is_empty() && names.len() < 64, "getfd never failed: {} fds", names.len());
    // Every number below the limit is taken (fds above it may be inherited, e.g. cargo's
    // jobserver pipe).
    let open: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
        .collect();
    assert!((0..16).all(|n| open.contains(&n)), "fdmon's fd table should be full: {open:?}");
    // A still works.
    assert_eq!(a.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);

    // B connects to the other server: the kernel completes it, fdmon cannot accept it.
    let mut b = Client::connect(std::path::Path::new(&b_path));
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_ticks(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    let elapsed = t0.elapsed();
    assert!(used < 20, "fdmon used {used} ticks of CPU in {elapsed:?} while accept() failed with EMFILE");
    b.expect_silence();
    // A is still served while B waits.
    assert_eq!(a.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);

    // Free fds: B is accepted and greeted.
    for n in names.iter().take(2) {
        assert_eq!(a.cmd(&format!(r#"{{"execute":"closefd","arguments":{{"fdname":"{n}"}}}}"#)), r#"{"return": {}}"#);
    }
    b.negotiate();
    assert_eq!(b.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
    assert_eq!(a.cmd(r#"{"execute":"query-name"}"#), r#"{"return": {}}"#);
}

/// cli.md §1 "error not tied to an option": a reconnecting client that cannot connect reports
/// without the option echo and keeps running.
fn async_error(imp: Imp, arg: &str) -> (String, bool) {
    let dir = TempDir::new("async");
    let d = dir.0.to_string_lossy().into_owned();
    let mut f = start(imp, &strings(&["-chardev", &arg.replace("$D", &d)]), vec![]);
    let mut err = PipeLines::new(f.child.stderr.take().unwrap());
    let line = err.line().replace(&d, "$D").replacen("qemu-system-x86_64:", "fdmon:", 1);
    std::thread::sleep(QUIET);
    (line, f.child.try_wait().unwrap().is_none())
}

#[test]
fn differential_async_connect_errors() {
    let g = Golden::open("cli/async_connect_errors");
    for arg in [
        "socket,path=$D/nothere.sock,reconnect=1,id=x",
        "socket,host=127.0.0.1,port=1,reconnect=1,id=x",
        "socket,path=$A,abstract=on,reconnect=1,id=x",
    ] {
        g.check(arg, &[], |imp| {
            let name = abstract_name("async-none");
            let (line, running) = async_error(imp, &arg.replace("$A", &name));
            assert!(running || imp == Imp::Qemu, "fdmon exited: {arg}");
            items([("stderr line", line.replace(&name, "$A")), ("still running", running.to_string())])
        });
    }
    g.finish();
}

/// cli.md §2: `,,` in a path is one comma, in the file name and in query-chardev.
#[test]
fn differential_comma_in_path() {
    golden::check_one("cli/comma_in_path", "c,,omma", &[], |imp| {
        let dir = TempDir::new("comma");
        let d = dir.0.to_string_lossy().into_owned();
        let arg = format!("socket,path={d}/c,,omma.sock,server=on,wait=off,id=c");
        let (_f, mut c) = pair_session(imp, &strings(&["-chardev", &arg]));
        let list: Vec<String> = chardev_entries(&mut c).iter().map(|e| e.replace(&d, "$D")).collect();
        assert!(dir.path("c,omma.sock").exists(), "{imp:?}: no socket file c,omma.sock");
        if imp == Imp::Fdmon {
            assert!(list.contains(&entry("c", "disconnected:unix:$D/c,omma.sock,server=on", false)), "{list:?}");
        }
        numbered(list)
    });
}
