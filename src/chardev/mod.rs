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

/// Most bytes a connection's input buffer holds (the most one read takes in).
pub const READ_CHUNK: usize = 64 * 1024;
/// Room for the first read of a connection; it doubles after each read that filled the room,
/// up to [`READ_CHUNK`], so a pipelining peer soon gets large reads and an idle one costs little.
pub const READ_START: usize = 512;
/// Output above this stops the monitor from reading more input from that peer.
pub const OUT_HIGH: usize = 256 * 1024;
/// A consumed prefix of the output buffer at least this large (and at least half the buffer)
/// is moved out of the way; smaller ones wait until everything was sent.
const COMPACT_MIN: usize = 64 * 1024;

/// One peer connection (or a pair of fds for stdio and pipes).
///
/// Both buffers are consumed by an offset, never drained from the front: `inbuf[in_pos..]` is
/// input not yet consumed by the monitor, `out[out_pos..]` output not yet sent. Each offset
/// goes back to 0 when everything was consumed, so the buffers are reused without copying.
pub struct Conn {
    pub fd: OwnedFd,
    /// Separate write side (pipe and stdio backends); sockets write to `fd`.
    pub wfd: Option<OwnedFd>,
    /// Whether SCM_RIGHTS can arrive here (AF_UNIX sockets only).
    pub unix: bool,
    /// Input read (into its spare capacity); consumed up to `in_pos`. Use [`Conn::input`],
    /// [`Conn::consume_input`] and [`Conn::has_input`].
    pub inbuf: Vec<u8>,
    in_pos: usize,
    /// Output: new output is appended at the END (`extend_from_slice`, `push`); sent up to
    /// `out_pos`. Use [`Conn::pending_out`] and [`Conn::has_output`] to see what is left.
    pub out: Vec<u8>,
    out_pos: usize,
    /// The last write hit `EAGAIN` or was partial: wait for POLLOUT before writing again.
    write_blocked: bool,
    /// The last read filled all the room it had: give the next one more.
    read_filled: bool,
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
            in_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            write_blocked: false,
            read_filled: false,
            pending_fds: Vec::new(),
            read_eof: false,
            closing: false,
            name: String::new(),
            write_limit: None,
        }
    }

    #[inline]
    pub fn write_fd(&self) -> BorrowedFd<'_> {
        match &self.wfd {
            Some(w) => w.as_fd(),
            None => self.fd.as_fd(),
        }
    }

    /// Input not yet consumed.
    #[inline]
    pub fn input(&self) -> &[u8] {
        self.inbuf.get(self.in_pos..).unwrap_or(&[])
    }

    #[inline]
    pub fn has_input(&self) -> bool {
        self.inbuf.len() > self.in_pos
    }

    /// Marks the first `n` bytes of [`Conn::input`] consumed.
    pub fn consume_input(&mut self, n: usize) {
        self.in_pos = self.in_pos.saturating_add(n).min(self.inbuf.len());
        if self.in_pos == self.inbuf.len() {
            self.inbuf.clear();
            self.in_pos = 0;
        }
    }

    /// Drops all unconsumed input (the buffer's capacity stays).
    pub fn discard_input(&mut self) {
        self.inbuf.clear();
        self.in_pos = 0;
    }

    /// Moves the input buffer out (leaving an empty one, without allocating) with the offset of
    /// its first unconsumed byte, so a monitor can parse slices of it while it writes to this
    /// connection. Give it back with [`Conn::restore_input`].
    pub fn take_input(&mut self) -> (Vec<u8>, usize) {
        let pos = std::mem::replace(&mut self.in_pos, 0);
        (std::mem::take(&mut self.inbuf), pos)
    }

    /// Puts back a buffer from [`Conn::take_input`], consumed up to `pos`. Input that arrived
    /// meanwhile (none does: reads happen in the loop) would be kept after it.
    pub fn restore_input(&mut self, mut buf: Vec<u8>, pos: usize) {
        if !self.inbuf.is_empty() {
            let rest = self.input().to_vec();
            buf.extend_from_slice(&rest);
        }
        self.inbuf = buf;
        self.in_pos = 0;
        self.consume_input(pos);
    }

    /// Output not yet sent.
    #[inline]
    pub fn pending_out(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or(&[])
    }

    #[inline]
    pub fn has_output(&self) -> bool {
        self.out.len() > self.out_pos
    }

    /// Drops all unsent output (the buffer's capacity stays).
    pub fn discard_output(&mut self) {
        self.out.clear();
        self.out_pos = 0;
        self.write_blocked = false;
    }

    /// Whether the loop should ask poll for POLLOUT: output waits and either the last write
    /// could not take it all, or this is a shared blocking fd (written only after POLLOUT).
    #[inline]
    pub fn wants_writable(&self) -> bool {
        self.has_output() && (self.write_blocked || self.write_limit.is_some())
    }

    /// Whether the loop may write now without waiting for POLLOUT.
    #[inline]
    pub fn can_write_now(&self) -> bool {
        self.has_output() && !self.write_blocked && self.write_limit.is_none()
    }

    /// Whether the loop should ask poll for POLLIN.
    #[inline]
    pub fn wants_readable(&self) -> bool {
        !self.read_eof && !self.closing && !self.has_input() && self.pending_out().len() < OUT_HIGH
    }

    fn sent(&mut self, n: usize) {
        self.out_pos = self.out_pos.saturating_add(n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= COMPACT_MIN && self.out_pos >= self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Makes room for a read: reuses the consumed prefix, and grows the capacity (bounded by
    /// [`READ_CHUNK`]) after reads that filled it. Returns false when there is no room (the
    /// buffer holds [`READ_CHUNK`] unconsumed bytes).
    fn make_room(&mut self) -> bool {
        if self.in_pos > 0 {
            self.inbuf.drain(..self.in_pos);
            self.in_pos = 0;
        }
        let len = self.inbuf.len();
        let cap = self.inbuf.capacity();
        let want = if self.read_filled { cap.saturating_mul(2) } else { cap }.clamp(READ_START, READ_CHUNK);
        if want > cap {
            self.inbuf.reserve_exact(want - len);
        }
        self.inbuf.capacity() > len && len < READ_CHUNK
    }

    /// Reads once into the spare capacity of `inbuf` (no zeroing, no copy), collecting
    /// SCM_RIGHTS fds (at most `sys::socket::MAX_RECV_FDS`, QEMU's 16, per read). A message
    /// carrying fds replaces the pending queue (the old fds close when dropped).
    pub fn read(&mut self) -> ReadOutcome {
        if !self.make_room() {
            return ReadOutcome::WouldBlock;
        }
        let room = self.inbuf.capacity() - self.inbuf.len();
        let result = if self.unix {
            // Fds arrive appended to the queue (which allocates only then).
            let old = self.pending_fds.len();
            let r = sys::socket::recv_with_fds_spare(self.fd.as_fd(), &mut self.inbuf, &mut self.pending_fds);
            match r {
                Ok((n, truncated)) => {
                    // A message carrying fds replaces the queue (the old fds close). With more
                    // than fit (`MSG_CTRUNC`: the kernel closed the excess) the fds that arrived
                    // are kept, as QEMU 7.2 does: `getfd` takes the first and closes the others.
                    if old > 0 && (truncated || self.pending_fds.len() > old) {
                        self.pending_fds.drain(..old);
                    }
                    Ok(n)
                }
                Err(e) => Err(e),
            }
        } else {
            // MSG_DONTWAIT on a socket; a pipe or tty is only read after POLLIN.
            sys::socket::recv_spare(self.fd.as_fd(), &mut self.inbuf)
        };
        match result {
            Ok(0) => {
                self.read_eof = true;
                ReadOutcome::Eof
            }
            Ok(n) => {
                self.read_filled = n == room;
                ReadOutcome::Data
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(_) => {
                self.read_eof = true;
                ReadOutcome::Error
            }
        }
    }

    /// Writes what the peer takes of the pending output: one write (a partial one means the
    /// peer is full: the loop then waits for POLLOUT). On a shared blocking fd the write is
    /// bounded by `write_limit`: call it only after POLLOUT. Err means the peer is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.has_output() {
            self.write_blocked = false;
            return Ok(());
        }
        let pending = self.pending_out();
        let n = match self.write_limit {
            Some(limit) => pending.len().min(limit),
            None => pending.len(),
        };
        match sys::socket::send(self.write_fd(), &pending[..n]) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(sent) => {
                self.write_blocked = sent < n;
                self.sent(sent);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether this connection is finished and should be dropped. A pipe or stdio pair keeps
    /// its write side after the read side ends (QEMU keeps printing events to stdout after
    /// stdin's EOF).
    pub fn done(&self) -> bool {
        let ended = self.closing || (self.read_eof && self.wfd.is_none());
        ended && !self.has_output() && !self.has_input()
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
        if let Ok(m) = sys::fs::symlink_metadata(&self.path) {
            if m.dev() == self.dev && m.st_ino == self.ino {
                let _ = sys::fs::remove_file(&self.path);
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
    #[inline]
    pub fn conn(&self) -> Option<&Conn> {
        match &self.backend {
            Backend::Server(s) => s.conn.as_ref(),
            Backend::Connected(c) => c.conn.as_ref(),
            Backend::Stream { conn, .. } => conn.as_ref(),
            _ => None,
        }
    }

    #[inline]
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

    /// Whether this is a client socket with `reconnect=` (it has a reconnect timer).
    pub fn has_reconnect(&self) -> bool {
        matches!(&self.backend, Backend::Connected(Connected { reconnect: Some(_), .. }))
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
        let id = &self.id;
        let Backend::Connected(Connected { conn: None, reconnect: Some(r), .. }) = &mut self.backend else {
            return false;
        };
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
        assert_eq!(conn.pending_out().len(), 2 * sys::fd::PIPE_BUF + 1);
        conn.flush().unwrap();
        conn.flush().unwrap();
        conn.flush().unwrap();
        assert!(!conn.has_output());
        let mut buf = vec![0u8; 4 * sys::fd::PIPE_BUF];
        assert_eq!(sys::fd::read(r.as_fd(), &mut buf).unwrap(), 3 * sys::fd::PIPE_BUF + 1);
        assert!(!sys::fd::is_nonblocking(conn.write_fd()).unwrap());
    }

    #[test]
    fn input_is_consumed_by_an_offset_and_the_buffer_reused() {
        let (a, _b) = sys::socket::socketpair().unwrap();
        let mut conn = Conn::new(a, true);
        conn.inbuf.extend_from_slice(b"hello world");
        let cap = conn.inbuf.capacity();
        conn.consume_input(6);
        assert_eq!(conn.input(), b"world");
        assert!(conn.has_input());
        // Taken out for the parser (the connection's buffer is empty meanwhile), put back
        // with what was consumed.
        let (buf, pos) = conn.take_input();
        assert_eq!((&buf[pos..], conn.has_input()), (&b"world"[..], false));
        conn.restore_input(buf, pos + 2);
        assert_eq!(conn.input(), b"rld");
        // Everything consumed: back to offset 0, same allocation.
        conn.consume_input(100);
        assert!(!conn.has_input() && conn.inbuf.is_empty());
        assert_eq!(conn.inbuf.capacity(), cap);
        conn.inbuf.extend_from_slice(b"x");
        conn.discard_input();
        assert!(!conn.has_input());
    }

    #[test]
    fn output_is_sent_by_an_offset_and_pollout_only_after_a_full_socket() {
        let (a, b) = sys::socket::socketpair().unwrap();
        sys::fd::set_nonblocking(a.as_fd(), true).unwrap();
        let mut conn = Conn::new(a, true);
        conn.out.extend_from_slice(b"reply\r\n");
        assert!(conn.can_write_now() && !conn.wants_writable());
        conn.flush().unwrap();
        assert!(!conn.has_output() && conn.out.is_empty(), "all sent: offset back to 0");
        let cap = conn.out.capacity();
        // Fill the peer: a partial write, then EAGAIN; only then is POLLOUT wanted.
        let big = vec![b'y'; 4 << 20];
        conn.out.extend_from_slice(&big);
        conn.flush().unwrap();
        let left = conn.pending_out().len();
        assert!(left > 0 && left < big.len(), "{left}");
        assert!(conn.wants_writable() && !conn.can_write_now());
        // New output goes to the end; the pending bytes keep their order.
        conn.out.push(b'z');
        let mut got = 0usize;
        let mut last = 0u8;
        let mut buf = vec![0u8; 1 << 16];
        while conn.has_output() {
            conn.flush().unwrap();
            while let Ok(n) = sys::socket::recv(b.as_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
                last = buf[n - 1];
            }
        }
        assert_eq!((got, last), (b"reply\r\n".len() + big.len() + 1, b'z'));
        assert!(!conn.wants_writable());
        assert!(conn.out.capacity() >= cap);
    }

    #[test]
    fn a_sent_prefix_is_compacted_only_when_large() {
        let (a, _b) = sys::socket::socketpair().unwrap();
        let mut conn = Conn::new(a, true);
        conn.out = (0..300_000u32).map(|i| i as u8).collect();
        conn.sent(10_000);
        assert_eq!((conn.out.len(), conn.out_pos), (300_000, 10_000), "small prefix: kept, no copy");
        conn.sent(150_000);
        assert_eq!((conn.out.len(), conn.out_pos), (140_000, 0), "large prefix: moved out");
        assert_eq!(conn.pending_out()[0], (160_000u32 % 256) as u8);
        conn.sent(140_000);
        assert!(!conn.has_output() && conn.out.is_empty());
    }

    #[test]
    fn reads_go_into_spare_capacity_growing_to_a_bound() {
        let (a, b) = sys::socket::socketpair().unwrap();
        let mut conn = Conn::new(a, true);
        let data = vec![b'q'; 3 * READ_CHUNK];
        let (mut sent, mut got, mut reads) = (0, 0, 0);
        while got < data.len() {
            sent += sys::socket::send(b.as_fd(), &data[sent..]).unwrap_or(0);
            assert!(matches!(conn.read(), ReadOutcome::Data));
            assert!(conn.inbuf.capacity() <= READ_CHUNK, "bounded: {}", conn.inbuf.capacity());
            if reads == 0 {
                assert_eq!(conn.input().len(), READ_START);
            }
            reads += 1;
            got += conn.input().len();
            conn.consume_input(usize::MAX);
        }
        // The first read had READ_START of room; reads that filled their room grew it.
        assert_eq!(conn.inbuf.capacity(), READ_CHUNK);
        // fds arrive with the data; a message with more than 16 is MSG_CTRUNC, and the fds
        // that arrived replace the queue.
        while matches!(conn.read(), ReadOutcome::Data) {
            conn.consume_input(usize::MAX);
        }
        let (r, w) = sys::fd::pipe(false).unwrap();
        sys::socket::send_with_fds(b.as_fd(), b"f", &[r.as_fd()]).unwrap();
        assert!(matches!(conn.read(), ReadOutcome::Data));
        assert_eq!((conn.input(), conn.pending_fds.len()), (&b"f"[..], 1));
        conn.consume_input(1);
        let many: Vec<BorrowedFd> = (0..20).map(|_| w.as_fd()).collect();
        sys::socket::send_with_fds(b.as_fd(), b"g", &many).unwrap();
        assert!(matches!(conn.read(), ReadOutcome::Data));
        assert!(!conn.pending_fds.is_empty() && conn.pending_fds.len() <= sys::socket::MAX_RECV_FDS);
        assert!(matches!(conn.read(), ReadOutcome::WouldBlock));
        drop(b);
        conn.consume_input(1);
        assert!(matches!(conn.read(), ReadOutcome::Eof) && conn.read_eof);
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
