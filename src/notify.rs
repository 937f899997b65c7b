//! Workload readiness: the private sd_notify socket of `-ready notify`, the notification pipe
//! of `-ready fd=N`, and the `READY=1` fdmon itself sends to a `NOTIFY_SOCKET` it inherited.
//! Everything it reads is bounded (datagram size, status length, datagrams per round) and every
//! fd a datagram carries is closed at once. It never blocks and never decides run states.
//!
//! Who may notify: the socket lives in a directory only fdmon's user can enter (mode 0700),
//! and a datagram counts only if the kernel's credentials (`SO_PASSCRED`) name a sender of
//! fdmon's user (or root) that is a descendant of fdmon (the workload tree: fdmon is its
//! subreaper). A sender that is already gone when fdmon reads its datagram (e.g.
//! `systemd-notify --no-block`, reaped at once) cannot be placed in the tree and is ignored,
//! as systemd does for senders it cannot attribute; plain `systemd-notify` waits (BARRIER=1)
//! and is always attributed.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::sys;
use crate::sys::socket::UnixAddr;

/// Longest datagram fdmon reads (systemd's limit too); a longer one is ignored whole.
pub const DATAGRAM_MAX: usize = 4096;
/// Longest `STATUS=` text fdmon keeps, in bytes (cut at a character boundary).
pub const STATUS_MAX: usize = 256;
/// Datagrams (or pipe reads) handled per poll round, so a flood cannot starve the monitors.
const PER_ROUND: usize = 64;
/// Steps up the ppid chain when placing a sender in the tree.
const TREE_DEPTH: usize = 4096;

/// What a batch of notifications said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notice {
    pub ready: bool,
    /// The last `STATUS=` seen.
    pub status: Option<String>,
}

/// Parses one sd_notify datagram: newline-separated `KEY=VALUE` assignments. Only `READY=1`
/// and `STATUS=TEXT` mean something; everything else (`BARRIER=1`, `MAINPID=`, lines without
/// `=`, invalid UTF-8 in other keys) is ignored.
pub fn parse(data: &[u8], into: &mut Notice) {
    for line in data.split(|&b| b == b'\n') {
        if line == b"READY=1" {
            into.ready = true;
        } else if let Some(text) = line.strip_prefix(b"STATUS=") {
            into.status = Some(bounded_text(text));
        }
    }
}

fn bounded_text(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(&text[..text.len().min(STATUS_MAX)]).into_owned();
    if s.len() <= STATUS_MAX {
        return s;
    }
    let mut end = STATUS_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The private notification socket of `-ready notify`; dropping it removes the socket file and
/// its directory.
pub struct NotifySocket {
    fd: OwnedFd,
    dir: PathBuf,
    path: PathBuf,
}

impl NotifySocket {
    /// Creates a new directory (mode 0700) under `$TMPDIR` (or `/tmp` when that path would be
    /// too long for a socket address) and binds the datagram socket `notify` in it.
    pub fn create() -> Result<NotifySocket, String> {
        let fail = |e: &io::Error| {
            format!("fdmon: -ready notify: cannot create the notification socket: {}", crate::error::os_text(e))
        };
        // std::env::temp_dir: TMPDIR, else /tmp.
        let mut base = sys::process::env_get("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        if !base.is_absolute() || base.as_os_str().len() > 60 {
            base = PathBuf::from("/tmp");
        }
        let pid = sys::process::getpid();
        let mut last = io::Error::from_raw_os_error(libc::EEXIST);
        for attempt in 0..100u32 {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
            let dir = base.join(format!("fdmon-notify.{pid}.{:x}", nanos ^ attempt.wrapping_mul(0x9e37_79b9)));
            match sys::fs::create_dir(&dir, 0o700) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last = e;
                    continue;
                }
                Err(e) => return Err(fail(&e)),
            }
            let path = dir.join("notify");
            let addr = UnixAddr::Path(path.as_os_str().as_bytes().to_vec());
            return match sys::socket::unix_datagram_bind(&addr, true) {
                Ok(fd) => Ok(NotifySocket { fd, dir, path }),
                Err(e) => {
                    let _ = sys::fs::remove_dir(&dir);
                    Err(fail(&e))
                }
            };
        }
        Err(fail(&last))
    }

    /// The value of `NOTIFY_SOCKET` for the workload.
    pub fn path(&self) -> &OsStr {
        self.path.as_os_str()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads up to a round's worth of datagrams: closes their fds, drops the ones that are too
    /// long or not from the workload tree (see the module doc), and returns what the others
    /// said.
    pub fn read(&self) -> Notice {
        let mut notice = Notice::default();
        let me = sys::process::getpid();
        let uid = sys::process::geteuid();
        let mut buf = [0u8; DATAGRAM_MAX];
        for _ in 0..PER_ROUND {
            let Ok(d) = sys::socket::recv_datagram(self.fd.as_fd(), &mut buf) else { break };
            drop(d.fds);
            if d.truncated {
                continue;
            }
            let trusted = d
                .creds
                .is_some_and(|c| (c.uid == uid || c.uid == 0) && sys::process::is_descendant(c.pid, me, TREE_DEPTH));
            if trusted {
                parse(&buf[..d.len], &mut notice);
            }
        }
        notice
    }

    /// Discards everything queued (left over from a workload that is gone).
    pub fn discard(&self) {
        let mut buf = [0u8; 64];
        while sys::socket::recv_datagram(self.fd.as_fd(), &mut buf).is_ok() {}
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = sys::fs::remove_file(&self.path);
        let _ = sys::fs::remove_dir(&self.dir);
    }
}

/// The read end of a `-ready fd=N` pipe (fdmon's own, non-blocking).
pub struct ReadyPipe {
    fd: OwnedFd,
}

/// What [`ReadyPipe::read`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum PipeNews {
    /// A newline: the workload is ready.
    Ready,
    /// Every write end is closed without a newline: it never will be (through this pipe).
    Closed,
    Nothing,
}

impl ReadyPipe {
    /// A pipe whose write end (blocking, CLOEXEC) goes to the workload.
    pub fn new() -> io::Result<(ReadyPipe, OwnedFd)> {
        let (r, w) = sys::fd::pipe(false)?;
        sys::fd::set_nonblocking(r.as_fd(), true)?;
        Ok((ReadyPipe { fd: r }, w))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn read(&self) -> PipeNews {
        let mut buf = [0u8; 512];
        for _ in 0..PER_ROUND {
            match sys::fd::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => return PipeNews::Closed,
                Ok(n) if buf[..n].contains(&b'\n') => return PipeNews::Ready,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return PipeNews::Nothing,
                Err(_) => return PipeNews::Closed,
            }
        }
        PipeNews::Nothing
    }
}

/// `NOTIFY_SOCKET` as fdmon inherited it: `/path` or `@abstract` (systemd's two forms).
pub fn supervisor_addr(value: &OsStr) -> Option<UnixAddr> {
    let b = value.as_bytes();
    match b.first() {
        Some(b'/') => Some(UnixAddr::Path(b.to_vec())),
        Some(b'@') if b.len() > 1 => Some(UnixAddr::Abstract(b[1..].to_vec())),
        _ => None,
    }
}

/// Sends `READY=1` to the service manager at `value` (fdmon's inherited `NOTIFY_SOCKET`). Best
/// effort, as `sd_notify`: a missing or full socket is not fdmon's problem.
pub fn tell_supervisor(value: &OsStr) {
    if let Some(addr) = supervisor_addr(value) {
        let _ = sys::socket::unix_datagram_send(&addr, b"READY=1");
    }
}

/// Takes `NOTIFY_SOCKET` out of fdmon's environment (no workload ever inherits it) and returns
/// it.
pub fn take_supervisor_socket() -> Option<OsString> {
    let v = sys::process::env_get("NOTIFY_SOCKET");
    if v.is_some() {
        sys::process::env_remove(b"NOTIFY_SOCKET");
    }
    v.map(|v| OsString::from_vec(v.into_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(data: &[u8]) -> Notice {
        let mut n = Notice::default();
        parse(data, &mut n);
        n
    }

    #[test]
    fn datagrams() {
        assert_eq!(p(b"READY=1"), Notice { ready: true, status: None });
        assert_eq!(p(b"STATUS=up\nREADY=1\n"), Notice { ready: true, status: Some("up".into()) });
        assert_eq!(p(b"BARRIER=1"), Notice::default());
        assert_eq!(p(b"READY=0\nREADY=12\nMAINPID=4\njunk"), Notice::default());
        assert_eq!(p(b"STATUS=a\nSTATUS=b"), Notice { ready: false, status: Some("b".into()) });
        assert_eq!(p(b"STATUS=\xff"), Notice { ready: false, status: Some("\u{fffd}".into()) });
        let long = [b'x'; 1000];
        let mut d = b"STATUS=".to_vec();
        d.extend_from_slice(&long);
        assert_eq!(p(&d).status.map(|s| s.len()), Some(STATUS_MAX));
        let mut d = b"STATUS=".to_vec();
        d.extend("é".repeat(200).as_bytes());
        let s = p(&d).status.unwrap();
        assert!(s.len() <= STATUS_MAX && s.chars().all(|c| c == 'é' || c == '\u{fffd}'), "{s}");
    }

    #[test]
    fn supervisor_addresses() {
        assert_eq!(supervisor_addr(OsStr::new("/run/x")), Some(UnixAddr::Path(b"/run/x".to_vec())));
        assert_eq!(supervisor_addr(OsStr::new("@x")), Some(UnixAddr::Abstract(b"x".to_vec())));
        assert_eq!(supervisor_addr(OsStr::new("x")), None);
        assert_eq!(supervisor_addr(OsStr::new("@")), None);
    }

    #[test]
    fn socket_lives_in_a_private_directory() {
        let s = NotifySocket::create().unwrap();
        let dir = s.dir.clone();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        // Our own datagram: this process is not its own descendant, so it is ignored...
        sys::socket::unix_datagram_send(&UnixAddr::Path(s.path().as_bytes().to_vec()), b"READY=1").unwrap();
        assert_eq!(s.read(), Notice::default());
        drop(s);
        assert!(!dir.exists());
    }
}
