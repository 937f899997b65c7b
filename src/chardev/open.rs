//! Turning a `ChardevSpec` into a live `Chardev`: adopting inherited or passed fds, creating
//! listeners (refusing to clobber files), connecting clients, opening files and pipes. Errors
//! are [`OpenError`]s whose texts are QEMU's reasons. It never looks up a monitor's `getfd`
//! names: the caller resolves `fd=` and hands the fd over.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::spec::{BackendSpec, ChardevSpec, FdNumberError, FdRef, SocketAddrSpec, SocketSpec};
use super::validate::SpecError;
use super::{Backend, Chardev, Conn, Connected, CreatedPath, Reconnect, Server};
use crate::error::os_text;
use crate::sys;
use crate::sys::socket::{ConnectTo, Family, SockAddr, UnixAddr};

/// The inherited fds named on the command line, adopted before fdmon opened anything
/// (`sys::fd::adopt_all_inherited`), handed out by number as start-up reaches each user.
pub struct InheritedFds {
    entries: Vec<(RawFd, Inherited)>,
    /// fds passed by socket activation, by name (`fd=NAME`).
    activation: Option<crate::activation::Activation>,
}

enum Inherited {
    /// Adopted and not handed out yet.
    Owned(OwnedFd),
    /// Handed to a chardev that keeps it open for the run.
    Taken,
    /// Not open when fdmon started, or closed since (an `-add-fd` original): never look at
    /// the number again, fdmon may have reused it for an fd of its own.
    Gone,
}

impl InheritedFds {
    pub fn new(adopted: Vec<(RawFd, io::Result<OwnedFd>)>) -> InheritedFds {
        let mut entries: Vec<(RawFd, Inherited)> =
            adopted.into_iter().map(|(n, r)| (n, r.map(Inherited::Owned).unwrap_or(Inherited::Gone))).collect();
        // Sorted by number (a lookup is a binary search); the first of repeated numbers wins.
        // `adopt_all_inherited` hands them over sorted already, so an insertion sort (small
        // code, linear on sorted input) is all it takes.
        for i in 1..entries.len() {
            let mut j = i;
            while j > 0 && entries[j - 1].0 > entries[j].0 {
                entries.swap(j - 1, j);
                j -= 1;
            }
        }
        entries.dedup_by_key(|(n, _)| *n);
        InheritedFds { entries, activation: None }
    }

    pub fn has_activation(&self) -> bool {
        self.activation.is_some()
    }

    /// Socket activation passed these (they are among the adopted numbers).
    pub fn with_activation(mut self, a: Option<crate::activation::Activation>) -> InheritedFds {
        self.activation = a;
        self
    }

    /// Takes the next fd socket activation passed as `name` that no chardev took yet. The
    /// error says what was passed.
    pub fn take_named(&mut self, name: &str) -> Result<OwnedFd, OpenError> {
        let Some(a) = self.activation.take() else {
            return Err(OpenError::NoActivation(name.to_string()));
        };
        let found = a.named(name).find(|&n| matches!(self.entry(n), Some(Inherited::Owned(_))));
        let result = match found.and_then(|n| self.take(n)) {
            Some(fd) => Ok(fd),
            None if a.named(name).next().is_some() => {
                Err(OpenError::ActivationNameUsed { name: name.to_string(), passed: a.describe() })
            }
            None => Err(OpenError::ActivationNameMissing { name: name.to_string(), passed: a.describe() }),
        };
        self.activation = Some(a);
        result
    }

    /// Closes every socket-activation fd no chardev took: the workload must not get them.
    pub fn close_unused_activation(&mut self, keep: &[RawFd]) {
        let numbers: Vec<RawFd> =
            self.activation.iter().flat_map(|a| a.numbers()).filter(|n| !keep.contains(n)).collect();
        for n in numbers {
            if let Some(e) = self.entry(n) {
                if matches!(e, Inherited::Owned(_)) {
                    *e = Inherited::Gone;
                }
            }
        }
    }

    fn entry(&mut self, n: RawFd) -> Option<&mut Inherited> {
        let i = self.entries.binary_search_by_key(&n, |(k, _)| *k).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// Whether `n` was inherited and is still open (adopted, or held by a chardev).
    pub fn is_open(&mut self, n: RawFd) -> bool {
        matches!(self.entry(n), Some(Inherited::Owned(_) | Inherited::Taken))
    }

    /// Takes the adopted fd `n`, to keep. A number a chardev took before is duplicated
    /// (QEMU lets two chardevs use one socket); `None` when it was not inherited.
    pub fn take(&mut self, n: RawFd) -> Option<OwnedFd> {
        let e = self.entry(n)?;
        match std::mem::replace(e, Inherited::Taken) {
            Inherited::Owned(fd) => Some(fd),
            Inherited::Taken => sys::fd::dup_number(n).ok(),
            Inherited::Gone => {
                *e = Inherited::Gone;
                None
            }
        }
    }

    /// The fd a command-line `fd=` names, taken to keep: an inherited number, or a name
    /// socket activation passed. The error is QEMU's text (or fdmon's for activation).
    pub fn resolve(&mut self, f: &FdRef) -> Result<OwnedFd, OpenError> {
        match f {
            // QEMU 7.2 says "not a socket" for a number that is not open, too.
            FdRef::Number { fd, text } => self.take(*fd).ok_or_else(|| OpenError::NotASocket(text.clone())),
            // Not a number: a name from socket activation; without activation, QEMU's text.
            FdRef::Name(name) if !self.has_activation() => Err(OpenError::FdNumber(FdNumberError::of(name))),
            FdRef::Name(name) => self.take_named(name),
        }
    }

    /// Closes the adopted fd `n` (an `-add-fd` original, once the fd set holds a copy).
    pub fn close(&mut self, n: RawFd) {
        if let Some(e) = self.entry(n) {
            if !matches!(e, Inherited::Taken) {
                *e = Inherited::Gone;
            }
        }
    }
}

const UNIX_PATH_MAX: usize = 108;

/// Why a chardev could not be opened. `Display` is the reason text QEMU prints (fdmon's own
/// where QEMU has none); callers add the `fdmon: -chardev ARG: ` or `Failed to add chardev`
/// prefix. `os` fields hold the C library's text of the OS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The spec itself is refused (see `chardev::validate`).
    Spec(SpecError),
    /// A command-line `fd=` that is not a number, without socket activation.
    FdNumber(FdNumberError),
    /// `fd=N` names no open socket.
    NotASocket(String),
    /// A monitor has no `getfd` name like this.
    NamedFdNotFound(String),
    /// Socket activation passed nothing at all.
    NoActivation(String),
    /// Socket activation passed this name, but another chardev took it.
    ActivationNameUsed {
        name: String,
        passed: String,
    },
    /// Socket activation did not pass this name.
    ActivationNameMissing {
        name: String,
        passed: String,
    },
    CouldNotOpen {
        path: String,
        os: String,
    },
    Stdio {
        os: String,
    },
    PathTooLong {
        path: String,
        max: usize,
    },
    Bind {
        path: String,
        os: String,
    },
    BindReplaced(String),
    BindNotPrivate(String),
    UnlinkDirectory(String),
    Unlink {
        path: String,
        os: String,
    },
    RefuseSymlink(String),
    RefuseNotSocket(String),
    RefuseListening(String),
    Refuse {
        path: String,
        os: String,
    },
    /// `target` is a path or `host:port`.
    Connect {
        target: String,
        os: String,
    },
    Listen {
        os: String,
    },
    /// `why` is the resolver's text.
    Resolve {
        host: String,
        port: String,
        why: String,
    },
    /// `to=` below `port=` (QEMU 7.2's text, with its stale errno).
    EmptyPortRange,
    NoFreePort {
        os: String,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use OpenError::*;
        match self {
            Spec(e) => write!(f, "{e}"),
            FdNumber(e) => write!(f, "{e}"),
            NotASocket(name) => write!(f, "File descriptor '{name}' is not a socket"),
            NamedFdNotFound(name) => write!(f, "File descriptor named '{name}' has not been found"),
            NoActivation(name) => write!(
                f,
                "File descriptor named '{name}' was not passed: socket activation (LISTEN_FDS) passed nothing to this process"
            ),
            ActivationNameUsed { name, passed } => {
                write!(f, "File descriptor named '{name}' is already used by another chardev (passed: {passed})")
            }
            ActivationNameMissing { name, passed } => {
                write!(f, "File descriptor named '{name}' was not passed by socket activation (passed: {passed})")
            }
            CouldNotOpen { path, os } => write!(f, "Could not open '{path}': {os}"),
            Stdio { os } => write!(f, "cannot use stdio: {os}"),
            PathTooLong { path, max } => {
                write!(f, "UNIX socket path '{path}' is too long\nPath must be less than {max} bytes")
            }
            Bind { path, os } => write!(f, "Failed to bind socket to {path}: {os}"),
            BindReplaced(path) => write!(f, "Failed to bind socket to {path}: the path was replaced after bind"),
            BindNotPrivate(path) => {
                write!(f, "Failed to bind socket to {path}: the socket file is not private (mode 0600)")
            }
            UnlinkDirectory(path) => write!(f, "Failed to unlink socket {path}: Is a directory"),
            Unlink { path, os } => write!(f, "Failed to unlink socket {path}: {os}"),
            RefuseSymlink(path) => write!(f, "Refusing to replace '{path}': it is a symbolic link"),
            RefuseNotSocket(path) => write!(f, "Refusing to replace '{path}': it is not a socket"),
            RefuseListening(path) => write!(f, "Refusing to replace '{path}': a process is listening on it"),
            Refuse { path, os } => write!(f, "Refusing to replace '{path}': {os}"),
            Connect { target, os } => write!(f, "Failed to connect to '{target}': {os}"),
            Listen { os } => write!(f, "Failed to listen on fd socket: {os}"),
            Resolve { host, port, why } => write!(f, "address resolution failed for {host}:{port}: {why}"),
            EmptyPortRange => f.write_str("Failed to create a socket: No such file or directory"),
            NoFreePort { os } => write!(f, "Failed to find an available port: {os}"),
        }
    }
}

impl From<SpecError> for OpenError {
    fn from(e: SpecError) -> OpenError {
        OpenError::Spec(e)
    }
}

/// Opens a chardev. `fd` is what the spec's `fd=` names, already resolved by the caller
/// (an inherited fd, or one a monitor named with `getfd`) after [`super::validate::before_open`]
/// passed; it moves into the chardev. The error is the reason text QEMU prints.
pub fn open(spec: &ChardevSpec, fd: Option<OwnedFd>) -> Result<Chardev, OpenError> {
    super::validate::before_open(spec)?;
    let backend = match &spec.backend {
        BackendSpec::Socket(s) => open_socket(s, fd)?,
        BackendSpec::Ringbuf { size, memory_alias } => {
            // Checked in `before_open`: a power of two, at most 1 GiB.
            let size = usize::try_from(*size).unwrap_or(0);
            Backend::Ringbuf { data: VecDeque::new(), size, memory_alias: *memory_alias }
        }
        BackendSpec::Null => Backend::Null,
        BackendSpec::File { path, append } => {
            let how = if *append { libc::O_APPEND } else { libc::O_TRUNC };
            let f = sys::fs::open(path, libc::O_WRONLY | libc::O_CREAT | how, 0o666)
                .map_err(|e| OpenError::CouldNotOpen { path: path.clone(), os: os_text(&e) })?;
            Backend::File(f)
        }
        BackendSpec::Pipe { path } => {
            // As QEMU: both FIFOs (or the one path) are opened read-write, which never blocks
            // waiting for a peer and keeps a writer on P.in, so a peer closing it is no EOF.
            // fdmon owns these descriptions alone, so they may be non-blocking.
            let open_rw = |p: &str| sys::fs::open(p, libc::O_RDWR | libc::O_NONBLOCK | libc::O_NOCTTY, 0);
            let (inp, outp) = (format!("{path}.in"), format!("{path}.out"));
            let (r, w) = match (open_rw(&inp), open_rw(&outp)) {
                (Ok(r), Ok(w)) => (r, Some(w)),
                _ => {
                    (open_rw(path).map_err(|e| OpenError::CouldNotOpen { path: path.clone(), os: os_text(&e) })?, None)
                }
            };
            let mut conn = Conn::new(r, false);
            conn.wfd = w;
            Backend::Stream { conn: Some(conn), kind: "pipe", tty: None }
        }
        BackendSpec::Stdio { signal } => {
            // As QEMU: on a terminal, the monitor's mode (restored when the chardev closes).
            let stdin = io::stdin();
            let tty = if sys::fd::is_tty(stdin.as_fd()) {
                let copy = sys::fd::dup_cloexec(stdin.as_fd()).map_err(|e| OpenError::Stdio { os: os_text(&e) })?;
                // Ctrl-Z puts the user's settings back before fdmon stops; SIGCONT re-applies.
                let _ = sys::signal::catch(libc::SIGTSTP);
                let _ = sys::signal::catch(libc::SIGCONT);
                sys::tty::MonitorMode::new(copy, *signal).ok()
            } else {
                None
            };
            let (r, _) = stdio_side(io::stdin().as_fd(), false)?;
            let (w, limit) = stdio_side(io::stdout().as_fd(), true)?;
            let mut conn = Conn::new(r, false);
            conn.wfd = Some(w);
            conn.write_limit = limit;
            Backend::Stream { conn: Some(conn), kind: "stdio", tty }
        }
    };
    // Listeners fdmon creates from host=/port=; a socket passed with fd= is the caller's choice.
    let from_inet = matches!(&spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Inet { .. }, .. }));
    if let (true, Backend::Server(Server { listener, tcp: true, .. })) = (from_inet, &backend) {
        warn_if_reachable(&spec.id, listener);
    }
    let stdio = matches!(spec.backend, BackendSpec::Stdio { .. });
    Ok(Chardev { id: spec.id.clone(), backend, stdio, console: false })
}

/// One stderr line when a TCP monitor listens on anything but loopback: whoever reaches the
/// address controls fdmon, there is no authentication.
fn warn_if_reachable(id: &str, listener: &OwnedFd) {
    if let Ok(SockAddr::Inet(a)) = sys::socket::local_addr(listener.as_fd()) {
        let loopback = match a.ip() {
            std::net::IpAddr::V4(v) => v.is_loopback(),
            std::net::IpAddr::V6(v) => v.is_loopback() || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        };
        if !loopback {
            eprintln!(
                "fdmon: warning: chardev '{id}' listens on {}: the monitor has no authentication, anyone who can connect controls fdmon",
                inet_bracketed(&a)
            );
        }
    }
}

/// One side of the stdio chardev. The open file descriptions of fds 0 and 1 are shared with the
/// caller and the workload, so their flags are never changed: a pipe or terminal is reopened
/// privately (non-blocking) when the system allows it, anything else is a blocking copy used
/// with per-call non-blocking I/O. The limit is how much one write may carry on that copy.
fn stdio_side(fd: std::os::fd::BorrowedFd, write: bool) -> Result<(OwnedFd, Option<usize>), OpenError> {
    if let Ok(own) = sys::fd::reopen_private(fd, write) {
        return Ok((own, None));
    }
    let copy = sys::fd::dup_cloexec(fd).map_err(|e| OpenError::Stdio { os: os_text(&e) })?;
    let limit = match sys::fd::kind(copy.as_fd()) {
        // Sockets use MSG_DONTWAIT; a regular file never makes a writer wait for a reader.
        Ok(sys::fd::Kind::Socket) | Ok(sys::fd::Kind::Other) => None,
        Ok(sys::fd::Kind::Fifo) => Some(sys::fd::PIPE_BUF),
        // A terminal polls writable with room for at least a line; stay well under that.
        _ => Some(TTY_WRITE_LIMIT),
    };
    Ok((copy, if write { limit } else { None }))
}

/// Bytes per write on a shared, blocking terminal (the kernel's wake-up threshold, 256, is
/// what POLLOUT promises room for).
const TTY_WRITE_LIMIT: usize = 256;

fn open_socket(s: &SocketSpec, fd: Option<OwnedFd>) -> Result<Backend, OpenError> {
    match &s.addr {
        SocketAddrSpec::Fd(fd_ref) => {
            let fd = fd.ok_or_else(|| OpenError::NamedFdNotFound(fd_ref.text().to_string()))?;
            open_fd_socket(fd_ref.text(), fd, s)
        }
        SocketAddrSpec::Unix { path, abstract_, tight } => {
            let addr = unix_addr(path, *abstract_)?;
            let shown = unix_shown(path, *abstract_, *tight);
            if s.server {
                let prepared = if *abstract_ { None } else { Some(prepare_path(path)?) };
                let fd = sys::socket::unix_listen(&addr, *tight, 1).map_err(|e| bind_error(path, &e))?;
                let created = match prepared {
                    Some(p) => Some(created_path(p)?),
                    None => None,
                };
                Ok(Backend::Server(Server {
                    listener: fd,
                    addr: shown,
                    tcp: false,
                    nodelay: false,
                    conn: None,
                    unlink: created,
                }))
            } else if let Some(secs) = s.reconnect.filter(|r| *r > 0) {
                Ok(reconnecting(
                    vec![ConnectTo::Unix(addr, *tight)],
                    path.clone(),
                    secs,
                    format!("disconnected:{shown}"),
                ))
            } else {
                let fd = sys::socket::unix_connect(&addr, *tight)
                    .map_err(|e| OpenError::Connect { target: path.clone(), os: os_text(&e) })?;
                let mut conn = Conn::new(fd, true);
                conn.name = "unix:".into();
                Ok(Backend::Connected(Connected {
                    conn: Some(conn),
                    gone: format!("disconnected:{shown}"),
                    reconnect: None,
                }))
            }
        }
        SocketAddrSpec::Inet { host, port, to, ipv4, ipv6 } => open_inet(host, port, *to, *ipv4, *ipv6, s),
    }
}

fn unix_addr(path: &str, abstract_: bool) -> Result<UnixAddr, OpenError> {
    // QEMU's limits: a path may fill sun_path (108 bytes, no terminator needed); an abstract
    // name loses one byte to the leading NUL.
    let max = if abstract_ { UNIX_PATH_MAX - 1 } else { UNIX_PATH_MAX };
    if path.len() > max {
        return Err(OpenError::PathTooLong { path: path.to_string(), max });
    }
    Ok(if abstract_ { UnixAddr::Abstract(path.as_bytes().to_vec()) } else { UnixAddr::Path(path.as_bytes().to_vec()) })
}

fn unix_shown(path: &str, abstract_: bool, tight: bool) -> String {
    match (abstract_, tight) {
        (false, _) => format!("unix:{path}"),
        (true, true) => format!("unix:{path},abstract=on,tight=on"),
        (true, false) => format!("unix:{path},abstract=on"),
    }
}

fn bind_error(path: &str, e: &io::Error) -> OpenError {
    OpenError::Bind { path: path.to_string(), os: os_text(e) }
}

/// Makes `path` free for a new listener. Unlike QEMU, only a stale socket (one nothing listens
/// on) is removed; a regular file, a symlink or a live socket is an error.
fn prepare_path(path: &str) -> Result<PathBuf, OpenError> {
    match sys::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_error(path, &e)),
        Ok(m) => {
            if m.is_dir() {
                return Err(OpenError::UnlinkDirectory(path.to_string()));
            }
            if m.is_symlink() {
                return Err(OpenError::RefuseSymlink(path.to_string()));
            }
            if !m.is_socket() {
                return Err(OpenError::RefuseNotSocket(path.to_string()));
            }
            match sys::socket::unix_connect(&UnixAddr::Path(path.as_bytes().to_vec()), true) {
                Ok(_) => return Err(OpenError::RefuseListening(path.to_string())),
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    sys::fs::remove_file(path)
                        .map_err(|e| OpenError::Unlink { path: path.to_string(), os: os_text(&e) })?;
                }
                Err(e) => return Err(OpenError::Refuse { path: path.to_string(), os: os_text(&e) }),
            }
        }
    }
    Ok(PathBuf::from(path))
}

/// Records the identity of the socket file just bound (so exit removes only that file) and
/// checks that it is private (0600, see `sys::socket::unix_listen`).
fn created_path(path: PathBuf) -> Result<CreatedPath, OpenError> {
    let shown = path.display().to_string();
    let m = sys::fs::symlink_metadata(&path).map_err(|e| bind_error(&shown, &e))?;
    if !m.is_socket() {
        // Something replaced it at once: not ours to remove.
        return Err(OpenError::BindReplaced(shown));
    }
    let created = CreatedPath { path, dev: m.dev(), ino: m.st_ino };
    if m.st_mode & 0o777 != 0o600 {
        // A file system that ignores modes: do not serve a socket others may reach.
        created.remove_if_ours();
        return Err(OpenError::BindNotPrivate(shown));
    }
    Ok(created)
}

/// The filename of a listener from its bound address (`unix:/p`, `tcp:127.0.0.1:4444`).
fn listener_shown(fd: &OwnedFd) -> (String, bool) {
    match sys::socket::local_addr(fd.as_fd()) {
        Ok(SockAddr::Unix(UnixAddr::Path(p))) => (format!("unix:{}", String::from_utf8_lossy(&p)), false),
        Ok(SockAddr::Unix(UnixAddr::Abstract(p))) => {
            // The kernel reports the whole address: a name bound without `tight` is padded.
            let name = p.split(|&b| b == 0).next().unwrap_or(&[]);
            let tight = if p.len() < UNIX_PATH_MAX - 1 { ",tight=on" } else { "" };
            (format!("unix:{},abstract=on{tight}", String::from_utf8_lossy(name)), false)
        }
        Ok(SockAddr::Unix(UnixAddr::Unnamed)) => ("unix:".into(), false),
        Ok(SockAddr::Inet(a)) => (format!("tcp:{}:{}", a.ip(), a.port()), true),
        _ => ("unknown".into(), false),
    }
}

/// The filename of a connected socket, as QEMU computes it from both ends.
pub fn connected_name(fd: &OwnedFd, server: bool) -> String {
    let suffix = if server { ",server=on" } else { "" };
    match sys::socket::local_addr(fd.as_fd()) {
        Ok(SockAddr::Unix(UnixAddr::Path(p))) => format!("unix:{}{suffix}", String::from_utf8_lossy(&p)),
        Ok(SockAddr::Unix(_)) => format!("unix:{suffix}"),
        Ok(SockAddr::Inet(l)) => {
            let peer = match sys::socket::peer_addr(fd.as_fd()) {
                Ok(SockAddr::Inet(p)) => inet_bracketed(&p),
                _ => "?".into(),
            };
            format!("tcp:{}{suffix} <-> {peer}", inet_bracketed(&l))
        }
        _ => "unknown".into(),
    }
}

fn inet_bracketed(a: &std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        std::net::SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A socket chardev on `fd`, which `fd=NAME` named (it closes on every error).
fn open_fd_socket(name: &str, fd: OwnedFd, s: &SocketSpec) -> Result<Backend, OpenError> {
    if sys::socket::socket_type(fd.as_fd()).is_err() {
        return Err(OpenError::NotASocket(name.to_string()));
    }
    // The workload must not inherit it.
    let _ = sys::fd::set_cloexec(fd.as_fd(), true);
    if s.server {
        if !sys::socket::is_listening(fd.as_fd()).unwrap_or(false) {
            sys::socket::listen(fd.as_fd(), 1).map_err(|e| OpenError::Listen { os: os_text(&e) })?;
        }
        let (addr, tcp) = listener_shown(&fd);
        Ok(Backend::Server(Server { listener: fd, addr, tcp, nodelay: s.nodelay, conn: None, unlink: None }))
    } else {
        // Shared with the parent: it stays blocking; fdmon reads and writes it with
        // MSG_DONTWAIT.
        let fdnum = fd.as_raw_fd();
        let name = connected_name(&fd, false);
        let unix = matches!(sys::socket::local_addr(fd.as_fd()), Ok(SockAddr::Unix(_)));
        let mut conn = Conn::new(fd, unix);
        conn.name = name;
        if s.nodelay && !unix {
            let _ = sys::socket::set_nodelay(conn.fd.as_fd(), true);
        }
        Ok(Backend::Connected(Connected {
            conn: Some(conn),
            gone: format!("disconnected:fd:{fdnum}"),
            reconnect: None,
        }))
    }
}

/// A client chardev that connects in the background and again after every disconnect.
fn reconnecting(targets: Vec<ConnectTo>, shown: String, secs: u64, gone: String) -> Backend {
    Backend::Connected(Connected {
        conn: None,
        gone,
        reconnect: Some(Reconnect {
            targets,
            shown,
            interval: std::time::Duration::from_secs(secs),
            connecting: None,
            next_try: Some(std::time::Instant::now()),
            reported: false,
        }),
    })
}

fn open_inet(
    host: &str,
    port: &str,
    to: Option<u16>,
    ipv4: Option<bool>,
    ipv6: Option<bool>,
    s: &SocketSpec,
) -> Result<Backend, OpenError> {
    let resolve_err = |why: String| OpenError::Resolve { host: host.to_string(), port: port.to_string(), why };
    let family = match (ipv4, ipv6) {
        (Some(true), _) | (_, Some(false)) => Family::V4,
        (_, Some(true)) | (Some(false), _) => Family::V6,
        _ => Family::Any,
    };
    let host_opt = if host.is_empty() { None } else { Some(host) };
    if s.server {
        let first: u16 = match port.parse() {
            Ok(p) => p,
            // A service name (`port=http`): getaddrinfo resolves it, as in QEMU, and gives
            // QEMU's text for an unknown one.
            Err(_) => match sys::socket::resolve(host_opt, port, family, true) {
                Ok(addrs) => match addrs.first() {
                    Some(a) => a.port(),
                    None => return Err(resolve_err("Name or service not known".into())),
                },
                Err(e) => return Err(resolve_err(e)),
            },
        };
        let last = to.unwrap_or(first);
        if last < first {
            // What QEMU 7.2 prints for an empty port range (its errno is stale at that point).
            return Err(OpenError::EmptyPortRange);
        }
        let addrs = sys::socket::resolve(host_opt, &first.to_string(), family, true).map_err(resolve_err)?;
        let mut last_err = None;
        for p in first..=last {
            for a in &addrs {
                let mut a = *a;
                a.set_port(p);
                let v6only = if a.is_ipv6() { Some(family == Family::V6 || host_opt.is_some()) } else { None };
                match sys::socket::tcp_listen(a, v6only, 1) {
                    Ok(fd) => {
                        let (shown, _) = listener_shown(&fd);
                        return Ok(Backend::Server(Server {
                            listener: fd,
                            addr: shown,
                            tcp: true,
                            nodelay: s.nodelay,
                            conn: None,
                            unlink: None,
                        }));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable));
        Err(OpenError::NoFreePort { os: os_text(&e) })
    } else {
        // A client resolves the host as given (an empty one fails, as in QEMU), and only
        // `ipv4=on` / `ipv6=off` narrow it: QEMU ignores `ipv6=on` and `ipv4=off` there.
        let family = if ipv4 == Some(true) || ipv6 == Some(false) { Family::V4 } else { Family::Any };
        let addrs = sys::socket::resolve(Some(host), port, family, false).map_err(resolve_err)?;
        if let Some(secs) = s.reconnect.filter(|r| *r > 0) {
            let targets = addrs.iter().map(|a| ConnectTo::Tcp(*a)).collect();
            return Ok(reconnecting(
                targets,
                format!("{host}:{port}"),
                secs,
                format!("disconnected:tcp:{host}:{port}"),
            ));
        }
        let mut last_err = None;
        for a in &addrs {
            match sys::socket::tcp_connect(*a) {
                Ok(fd) => {
                    if s.nodelay {
                        let _ = sys::socket::set_nodelay(fd.as_fd(), true);
                    }
                    let mut conn = Conn::new(fd, false);
                    conn.name = connected_name(&conn.fd, false);
                    return Ok(Backend::Connected(Connected {
                        conn: Some(conn),
                        gone: format!("disconnected:tcp:{host}:{port}"),
                        reconnect: None,
                    }));
                }
                Err(e) => last_err = Some(e),
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable));
        Err(OpenError::Connect { target: format!("{host}:{port}"), os: os_text(&e) })
    }
}
