//! Character devices at run time: socket listeners and connections with bounded buffers, the
//! simple backends, and the filenames `query-chardev` shows. Never parses options (see `spec`)
//! and never interprets the bytes it carries (monitors do).
#![forbid(unsafe_code)]

pub mod open;
pub mod order;
pub mod spec;
pub mod validate;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::sys;

/// Bytes read from a connection in one call.
pub const READ_CHUNK: usize = 64 * 1024;
/// Output above this stops the monitor from reading more input from that peer.
pub const OUT_HIGH: usize = 256 * 1024;

/// One peer connection (or a pair of fds for stdio and pipes).
pub struct Conn {
    pub fd: OwnedFd,
    /// Separate write side (pipe and stdio backends); sockets write to `fd`.
    pub wfd: Option<OwnedFd>,
    /// Whether SCM_RIGHTS can arrive here (AF_UNIX sockets only).
    pub unix: bool,
    /// Input read but not yet consumed by the monitor.
    pub inbuf: Vec<u8>,
    pub out: Vec<u8>,
    /// fds received with SCM_RIGHTS, waiting for `getfd` / `add-fd`.
    pub pending_fds: Vec<OwnedFd>,
    pub read_eof: bool,
    /// Close as soon as `out` is empty (or at once if writing fails).
    pub closing: bool,
    /// The chardev's filename while this connection is up.
    pub name: String,
    /// `Some(n)`: the write fd is a blocking open file description fdmon shares (stdio that
    /// could not be reopened privately), so `flush` makes one write of at most `n` bytes per
    /// POLLOUT. Reads of a shared fd happen only after POLLIN (or through `MSG_DONTWAIT`).
    pub write_limit: Option<usize>,
}

/// What a read attempt produced.
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
    Error,
}

impl Conn {
    pub fn new(fd: OwnedFd, unix: bool) -> Conn {
        Conn {
            fd,
            wfd: None,
            unix,
            inbuf: Vec::new(),
            out: Vec::new(),
            pending_fds: Vec::new(),
            read_eof: false,
            closing: false,
            name: String::new(),
            write_limit: None,
        }
    }

    pub fn write_fd(&self) -> BorrowedFd<'_> {
        match &self.wfd {
            Some(w) => w.as_fd(),
            None => self.fd.as_fd(),
        }
    }

    /// Reads one chunk into `inbuf`, collecting SCM_RIGHTS fds (at most
    /// `sys::socket::MAX_RECV_FDS`, QEMU's 16, per read). A message carrying fds replaces the
    /// pending queue (the old fds close when dropped).
    pub fn read(&mut self) -> ReadOutcome {
        let mut buf = [0u8; READ_CHUNK];
        let result = if self.unix {
            let mut fds = Vec::new();
            let r = sys::socket::recv_with_fds(self.fd.as_fd(), &mut buf, &mut fds);
            match r {
                Ok((n, truncated)) => {
                    // A message carrying fds replaces the queue. With more than fit
                    // (`MSG_CTRUNC`: the kernel closed the excess) the fds that arrived are kept,
                    // as QEMU 7.2 does: `getfd` takes the first and closes the others.
                    if truncated || !fds.is_empty() {
                        self.pending_fds = fds;
                    }
                    Ok(n)
                }
                Err(e) => Err(e),
            }
        } else {
            // MSG_DONTWAIT on a socket; a pipe or tty is only read after POLLIN.
            sys::socket::recv(self.fd.as_fd(), &mut buf)
        };
        match result {
            Ok(0) => {
                self.read_eof = true;
                ReadOutcome::Eof
            }
            Ok(n) => {
                self.inbuf.extend_from_slice(&buf[..n]);
                ReadOutcome::Data
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(_) => {
                self.read_eof = true;
                ReadOutcome::Error
            }
        }
    }

    /// Writes as much of `out` as the peer takes (one bounded write on a shared blocking fd:
    /// call it only after POLLOUT). Err means the peer is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(limit) = self.write_limit {
            if self.out.is_empty() {
                return Ok(());
            }
            let n = self.out.len().min(limit);
            return match sys::socket::send(self.write_fd(), &self.out[..n]) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.out.drain(..n);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(e),
            };
        }
        while !self.out.is_empty() {
            match sys::socket::send(self.write_fd(), &self.out) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether this connection is finished and should be dropped. A pipe or stdio pair keeps
    /// its write side after the read side ends (QEMU keeps printing events to stdout after
    /// stdin's EOF).
    pub fn done(&self) -> bool {
        let ended = self.closing || (self.read_eof && self.wfd.is_none());
        ended && self.out.is_empty() && self.inbuf.is_empty()
    }
}

/// A listening socket serving one client at a time.
pub struct Server {
    pub listener: OwnedFd,
    /// `unix:/path`, `unix:name,abstract=on,tight=on` or `tcp:127.0.0.1:4444`.
    pub addr: String,
    pub tcp: bool,
    pub nodelay: bool,
    pub conn: Option<Conn>,
    /// A path fdmon created and removes when the chardev closes.
    pub unlink: Option<CreatedPath>,
}

/// A socket file fdmon bound, identified by device and inode recorded right after `bind`.
pub struct CreatedPath {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl CreatedPath {
    /// Removes the file only if it is still the socket fdmon created: after `rm` and another
    /// process binding the same path, that process's socket stays.
    pub fn remove_if_ours(&self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// An already-connected socket (`fd=N,server=off`, or a client that connected out).
pub struct Connected {
    pub conn: Option<Conn>,
    /// Filename while not connected (after the peer left, or before a reconnect succeeds).
    pub gone: String,
    /// Client mode with `reconnect=SECS`: connect again after failures and disconnects.
    pub reconnect: Option<Reconnect>,
}

/// Reconnect state of a client socket chardev. Connects never block the loop: they are started
/// non-blocking and finished when the socket becomes writable.
pub struct Reconnect {
    pub targets: Vec<sys::socket::ConnectTo>,
    /// How errors name the address: `/path` or `host:port`.
    pub shown: String,
    pub interval: std::time::Duration,
    /// A connect in progress, and the target index it goes to.
    pub connecting: Option<(OwnedFd, usize)>,
    pub next_try: Option<std::time::Instant>,
    /// The failure was already reported since the last successful connection (QEMU reports once).
    pub reported: bool,
}

pub enum Backend {
    Server(Server),
    Connected(Connected),
    Ringbuf {
        data: VecDeque<u8>,
        size: usize,
        memory_alias: bool,
    },
    Null,
    File(OwnedFd),
    /// Pipe and stdio: a read side and a write side.
    Stream {
        conn: Option<Conn>,
        kind: &'static str,
        /// stdio on a terminal: the monitor's terminal mode, undone when the chardev goes.
        tty: Option<sys::tty::MonitorMode>,
    },
}

pub struct Chardev {
    pub id: String,
    pub backend: Backend,
    /// Whether this is a `stdio` chardev (only one may exist at a time).
    pub stdio: bool,
    /// Whether the workload's console (`-serial`) is on this chardev.
    pub console: bool,
}

impl Chardev {
    pub fn conn(&self) -> Option<&Conn> {
        match &self.backend {
            Backend::Server(s) => s.conn.as_ref(),
            Backend::Connected(c) => c.conn.as_ref(),
            Backend::Stream { conn, .. } => conn.as_ref(),
            _ => None,
        }
    }

    pub fn conn_mut(&mut self) -> Option<&mut Conn> {
        match &mut self.backend {
            Backend::Server(s) => s.conn.as_mut(),
            Backend::Connected(c) => c.conn.as_mut(),
            Backend::Stream { conn, .. } => conn.as_mut(),
            _ => None,
        }
    }

    /// The terminal mode of a stdio chardev on a terminal.
    pub fn tty_mode(&mut self) -> Option<&mut sys::tty::MonitorMode> {
        match &mut self.backend {
            Backend::Stream { tty, .. } => tty.as_mut(),
            _ => None,
        }
    }

    /// Whether this is a stdio chardev on a terminal (fdmon then keeps the terminal).
    pub fn is_stdio_tty(&self) -> bool {
        matches!(&self.backend, Backend::Stream { tty: Some(_), .. })
    }

    /// Drops the current connection (its pending fds close with it). A reconnecting client
    /// schedules its next attempt.
    pub fn drop_conn(&mut self) {
        match &mut self.backend {
            Backend::Server(s) => s.conn = None,
            Backend::Connected(c) => {
                c.conn = None;
                if let Some(r) = &mut c.reconnect {
                    r.next_try = Some(std::time::Instant::now() + r.interval);
                }
            }
            Backend::Stream { conn, .. } => *conn = None,
            _ => {}
        }
    }

    /// The listener to poll for a new client: only while no client is connected.
    pub fn listener_to_poll(&self) -> Option<BorrowedFd<'_>> {
        match &self.backend {
            Backend::Server(s) if s.conn.is_none() => Some(s.listener.as_fd()),
            _ => None,
        }
    }

    /// Accepts one pending client. Ok(true) when a client was accepted.
    pub fn accept(&mut self) -> io::Result<bool> {
        let Backend::Server(s) = &mut self.backend else { return Ok(false) };
        if s.conn.is_some() {
            return Ok(false);
        }
        let Some(fd) = sys::socket::accept(s.listener.as_fd())? else { return Ok(false) };
        if s.tcp && s.nodelay {
            let _ = sys::socket::set_nodelay(fd.as_fd(), true);
        }
        let name = open::connected_name(&fd, true);
        let mut conn = Conn::new(fd, !s.tcp);
        conn.name = name;
        s.conn = Some(conn);
        Ok(true)
    }

    /// The `filename` of `query-chardev`.
    pub fn filename(&self) -> String {
        match &self.backend {
            Backend::Server(s) => match &s.conn {
                None => format!("disconnected:{},server=on", s.addr),
                Some(c) => c.name.clone(),
            },
            Backend::Connected(c) => match &c.conn {
                Some(conn) => conn.name.clone(),
                None => c.gone.clone(),
            },
            Backend::Ringbuf { memory_alias, .. } => if *memory_alias { "memory" } else { "ringbuf" }.to_string(),
            Backend::Null => "null".to_string(),
            Backend::File(_) => "file".to_string(),
            Backend::Stream { kind, .. } => kind.to_string(),
        }
    }

    /// Writes output from a monitor (or `ringbuf-write`) to this backend.
    pub fn write(&mut self, bytes: &[u8]) {
        match &mut self.backend {
            Backend::Ringbuf { data, size, .. } => ringbuf_push(data, *size, bytes),
            Backend::File(fd) => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    match sys::fd::write(fd.as_fd(), rest) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => rest = &rest[n..],
                    }
                }
            }
            _ => {
                if let Some(c) = self.conn_mut() {
                    if !c.closing {
                        c.out.extend_from_slice(bytes);
                    }
                }
            }
        }
    }

    /// Reconnect bookkeeping, when this is a reconnecting client without a connection.
    pub fn reconnect_mut(&mut self) -> Option<&mut Reconnect> {
        match &mut self.backend {
            Backend::Connected(Connected { conn: None, reconnect: Some(r), .. }) => Some(r),
            _ => None,
        }
    }

    /// For the loop: the in-progress connect to wait on, and when the next attempt is due.
    pub fn reconnect_wait(&self) -> (Option<BorrowedFd<'_>>, Option<std::time::Instant>) {
        match &self.backend {
            Backend::Connected(Connected { conn: None, reconnect: Some(r), .. }) => {
                (r.connecting.as_ref().map(|(fd, _)| fd.as_fd()), r.next_try)
            }
            _ => (None, None),
        }
    }

    /// Drives a reconnecting client: starts a due attempt, or finishes one whose socket became
    /// writable (`ready`). Returns true when a connection was just established.
    pub fn reconnect_step(&mut self, now: std::time::Instant, ready: bool) -> bool {
        let id = self.id.clone();
        let Some(r) = self.reconnect_mut() else { return false };
        let outcome = if let Some((fd, idx)) = r.connecting.take() {
            if !ready {
                r.connecting = Some((fd, idx));
                return false;
            }
            sys::socket::take_error(fd.as_fd()).map(|_| fd).map_err(|e| (e, idx))
        } else if r.next_try.is_some_and(|t| now >= t) {
            r.next_try = None;
            let mut result = Err((io::Error::from(io::ErrorKind::AddrNotAvailable), 0));
            for (idx, t) in r.targets.iter().enumerate() {
                match sys::socket::connect_start(t) {
                    Ok((fd, true)) => {
                        result = Ok(fd);
                        break;
                    }
                    Ok((fd, false)) => {
                        r.connecting = Some((fd, idx));
                        return false;
                    }
                    Err(e) => result = Err((e, idx)),
                }
            }
            result
        } else {
            return false;
        };
        match outcome {
            Ok(fd) => {
                r.reported = false;
                let unix = matches!(r.targets.first(), Some(sys::socket::ConnectTo::Unix(..)));
                let name = open::connected_name(&fd, false);
                let mut conn = Conn::new(fd, unix);
                conn.name = name;
                if let Backend::Connected(c) = &mut self.backend {
                    c.conn = Some(conn);
                }
                true
            }
            Err((e, _)) => {
                if !r.reported {
                    eprintln!(
                        "fdmon: Unable to connect character device {id}: Failed to connect to '{}': {}",
                        r.shown,
                        crate::error::os_text(&e)
                    );
                    r.reported = true;
                }
                r.next_try = Some(now + r.interval);
                false
            }
        }
    }
}

impl Drop for Chardev {
    fn drop(&mut self) {
        if let Backend::Server(s) = &self.backend {
            if let Some(p) = &s.unlink {
                p.remove_if_ours();
            }
        }
    }
}

/// Appends to a ring buffer that keeps the last `size` bytes.
pub fn ringbuf_push(data: &mut VecDeque<u8>, size: usize, bytes: &[u8]) {
    for &b in bytes {
        if data.len() == size {
            data.pop_front();
        }
        data.push_back(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_blocking_pipe_gets_one_bounded_write_per_flush() {
        // A blocking pipe, as a shared stdout that could not be reopened privately.
        let (r, w) = sys::fd::pipe(false).unwrap();
        let (r2, _w2) = sys::fd::pipe(false).unwrap();
        let mut conn = Conn::new(r2, false);
        conn.wfd = Some(w);
        conn.write_limit = Some(sys::fd::PIPE_BUF);
        conn.out = vec![b'x'; 3 * sys::fd::PIPE_BUF + 1];
        conn.flush().unwrap();
        assert_eq!(conn.out.len(), 2 * sys::fd::PIPE_BUF + 1);
        conn.flush().unwrap();
        conn.flush().unwrap();
        conn.flush().unwrap();
        assert!(conn.out.is_empty());
        let mut buf = vec![0u8; 4 * sys::fd::PIPE_BUF];
        assert_eq!(sys::fd::read(r.as_fd(), &mut buf).unwrap(), 3 * sys::fd::PIPE_BUF + 1);
        assert!(!sys::fd::is_nonblocking(conn.write_fd()).unwrap());
    }

    #[test]
    fn a_pipe_pair_keeps_writing_after_read_eof() {
        let (r, w) = sys::fd::pipe(true).unwrap();
        let mut conn = Conn::new(r, false);
        conn.wfd = Some(w);
        conn.read_eof = true;
        assert!(!conn.done());
        conn.wfd = None;
        assert!(conn.done());
    }
}
