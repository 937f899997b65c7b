//! The workload's console (`-serial`): the master side of the workload's pseudo-terminal,
//! copied to and from one chardev, as QEMU copies a guest's serial port.
//!
//! Output (pty → chardev) is read only while the chardev can take it: a socket client that
//! reads slowly stops fdmon reading the master, the pty's buffer fills and the workload blocks
//! in `write` (nothing is lost). With no client on a socket chardev, output is read and
//! dropped, as QEMU does. Input (chardev → pty) waits in a bounded buffer; while it is full the
//! chardev's connection is not read. The chardev cannot be removed while the console is on it.
//! Never blocks: the master is non-blocking and fdmon's own.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::chardev::{Backend, Chardev, OUT_HIGH};
use crate::sys;

/// The window size of a new console when nobody set one.
pub const DEFAULT_SIZE: (u16, u16) = (80, 24);
/// Bytes from the chardev waiting for the pty, at most.
pub const INPUT_HIGH: usize = 64 * 1024;
/// What the exit sequence copies from the pty at most.
pub const DRAIN_MAX: usize = 1024 * 1024;
/// One read from the master.
const READ_CHUNK: usize = 16 * 1024;

pub struct Console {
    /// The chardev's slot (it cannot be removed while the console is on it).
    pub slot: usize,
    /// The current workload's pty master; `None` before the first start and once the
    /// workload side closed (EIO/hang-up on the master).
    master: Option<OwnedFd>,
    /// Input from the chardev not yet written to the pty.
    pub to_pty: Pending,
    /// `(cols, rows)` for every new pty, and the current one's.
    pub size: (u16, u16),
    /// Output read from the master, on its way to the chardev: reused (and read into its
    /// spare capacity), so a read neither allocates nor zeroes.
    read_buf: Vec<u8>,
}

/// Bytes waiting for the pty, consumed by an offset (a partial write moves no bytes; the
/// buffer starts over once it is all written, or compacts once half of it is consumed).
#[derive(Default)]
pub struct Pending {
    buf: Vec<u8>,
    pos: usize,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.clear();
        } else if self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    fn extend(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

/// What the loop should poll the master for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    pub fd: RawFd,
    pub read: bool,
    pub write: bool,
}

impl Console {
    pub fn new(slot: usize) -> Console {
        Console { slot, master: None, to_pty: Pending::default(), size: DEFAULT_SIZE, read_buf: Vec::new() }
    }

    /// A new workload started on a new pty: the console moves to it (the old master, whose
    /// workload is gone, closes; input meant for the old workload is dropped).
    pub fn attach(&mut self, master: OwnedFd) {
        self.master = Some(master);
        self.to_pty.clear();
    }

    #[cfg(test)]
    pub fn master(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.master.as_ref().map(|m| m.as_fd())
    }

    /// Sets the window size of the current pty (its foreground group gets SIGWINCH) and of
    /// every later one.
    pub fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        self.size = (cols, rows);
        match &self.master {
            Some(m) => sys::pty::set_winsize(m.as_fd(), cols, rows),
            None => Ok(()),
        }
    }

    /// What to poll: reading only while `dev` can take output (backpressure), writing only
    /// while input waits. `None` when neither (the master is then not polled at all, so a
    /// hang-up cannot wake the loop while output waits for a slow client).
    pub fn interest(&self, dev: &Chardev) -> Option<Interest> {
        let m = self.master.as_ref()?;
        let read = can_take_output(dev);
        let write = !self.to_pty.is_empty();
        (read || write).then(|| Interest { fd: m.as_raw_fd(), read, write })
    }

    /// The master is readable (or hung up while reading was asked for): copies one chunk to
    /// `dev`. EIO or end of file means the workload's side closed: the master is dropped.
    pub fn on_readable(&mut self, dev: &mut Chardev) {
        match self.read_master() {
            Some(Ok(0)) => self.hang_up(),
            Some(Ok(_)) => write_output(dev, &self.read_buf),
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            // EIO: no process has the slave open any more (the workload is gone).
            Some(Err(_)) => self.hang_up(),
            None => {}
        }
    }

    /// One read of at most [`READ_CHUNK`] bytes from the master into `read_buf` (emptied
    /// first); `None` without a master.
    fn read_master(&mut self) -> Option<io::Result<usize>> {
        let m = self.master.as_ref()?;
        self.read_buf.clear();
        self.read_buf.reserve_exact(READ_CHUNK);
        Some(sys::fd::read_spare(m.as_fd(), &mut self.read_buf))
    }

    /// The master reported a hang-up without data while only writing was asked for: input
    /// has nobody to read it. Output still in the pty is read once reading is asked for.
    pub fn on_write_hang_up(&mut self) {
        self.to_pty.clear();
    }

    /// The master is writable: writes as much waiting input as the pty takes.
    pub fn on_writable(&mut self) {
        let Some(m) = &self.master else {
            self.to_pty.clear();
            return;
        };
        match sys::fd::write(m.as_fd(), self.to_pty.bytes()) {
            Ok(n) => self.to_pty.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.to_pty.clear(),
        }
    }

    /// At exit: copies what the workload left in the pty to `dev` (at most [`DRAIN_MAX`]
    /// bytes, whatever the high-water mark: the exit sequence flushes it), so a workload's
    /// last lines reach a log or a client.
    pub fn drain(&mut self, dev: &mut Chardev) {
        let mut total = 0;
        while total < DRAIN_MAX {
            match self.read_master() {
                None => return,
                Some(Ok(0)) => return self.hang_up(),
                Some(Ok(n)) => {
                    write_output(dev, &self.read_buf);
                    total += n;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Some(Err(_)) => return self.hang_up(),
            }
        }
    }

    fn hang_up(&mut self) {
        self.master = None;
        self.to_pty.clear();
    }

    /// Moves input that arrived on `dev`'s connection into the pty buffer, as much as fits;
    /// the rest stays on the connection (which is then not read: backpressure).
    pub fn take_input(&mut self, dev: &mut Chardev) {
        let Some(conn) = dev.conn_mut() else { return };
        conn.pending_fds.clear();
        if self.master.is_none() {
            // No workload on the console: input has nobody to go to.
            conn.discard_input();
            return;
        }
        let room = INPUT_HIGH.saturating_sub(self.to_pty.len());
        let n = room.min(conn.input().len());
        self.to_pty.extend(&conn.input()[..n]);
        conn.consume_input(n);
    }
}

/// Whether `dev` takes console output now. A connection takes it while its output buffer is
/// under the high-water mark; a socket without a client, ringbuf, file and null always do
/// (output without a client is dropped, as in QEMU).
fn can_take_output(dev: &Chardev) -> bool {
    match dev.conn() {
        Some(c) => !c.closing && c.pending_out().len() < OUT_HIGH,
        None => true,
    }
}

/// Console output to `dev`: a connection buffers it, a socket without a client drops it,
/// ringbuf/file/null as for any writer.
fn write_output(dev: &mut Chardev, bytes: &[u8]) {
    match &dev.backend {
        Backend::Server(_) | Backend::Connected(_) | Backend::Stream { .. } if dev.conn().is_none() => {}
        _ => dev.write(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chardev::Conn;

    fn ringbuf(id: &str) -> Chardev {
        let backend = Backend::Ringbuf { data: Default::default(), size: 1024, memory_alias: false };
        Chardev { id: id.into(), backend, stdio: false, console: true }
    }

    /// Reads from the master until `dev`'s ringbuf holds `want` (bounded).
    fn read_until(con: &mut Console, dev: &mut Chardev, want: &[u8]) {
        for _ in 0..400 {
            con.on_readable(dev);
            if let Backend::Ringbuf { data, .. } = &dev.backend {
                if data.iter().copied().collect::<Vec<u8>>() == want {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the console output never arrived");
    }

    #[test]
    fn pending_input_is_consumed_by_an_offset_in_order() {
        let mut p = Pending::default();
        p.extend(b"0123456789");
        p.consume(3);
        assert_eq!((p.bytes(), p.len(), p.pos), (&b"3456789"[..], 7, 3), "a partial write moves nothing");
        p.extend(b"ab");
        p.consume(3);
        // Half consumed: compacted, the rest in order.
        assert_eq!((p.bytes(), p.pos), (&b"6789ab"[..], 0));
        p.consume(100);
        assert!(p.is_empty() && p.buf.is_empty() && p.pos == 0);
    }

    #[test]
    fn output_reaches_the_chardev_and_eio_detaches() {
        let pty = sys::pty::open(80, 24).unwrap();
        let mut con = Console::new(0);
        let mut dev = ringbuf("r");
        assert_eq!(con.interest(&dev), None, "nothing to poll without a pty");
        con.attach(pty.master);
        let i = con.interest(&dev).unwrap();
        assert!(i.read && !i.write);
        sys::fd::write(pty.slave.as_fd(), b"hi\n").unwrap();
        read_until(&mut con, &mut dev, b"hi\r\n");
        drop(pty.slave);
        con.on_readable(&mut dev);
        assert!(con.master().is_none(), "EIO: the workload side is gone");
        assert_eq!(con.interest(&dev), None);
    }

    #[test]
    fn a_full_connection_stops_reading_and_input_is_bounded() {
        let pty = sys::pty::open(80, 24).unwrap();
        let (a, _b) = sys::socket::socketpair().unwrap();
        let mut dev = Chardev {
            id: "s".into(),
            backend: Backend::Connected(crate::chardev::Connected {
                conn: Some(Conn::new(a, true)),
                gone: String::new(),
                reconnect: None,
            }),
            stdio: false,
            console: true,
        };
        let mut con = Console::new(0);
        con.attach(pty.master);
        if let Some(c) = dev.conn_mut() {
            c.out = vec![b'x'; OUT_HIGH];
            c.inbuf = vec![b'y'; INPUT_HIGH + 10];
        }
        // Output waits for the client: the master is polled for writing only.
        con.take_input(&mut dev);
        assert_eq!(con.to_pty.len(), INPUT_HIGH);
        assert_eq!(dev.conn().unwrap().input().len(), 10, "the rest stays on the connection");
        let i = con.interest(&dev).unwrap();
        assert!(!i.read && i.write);
        if let Some(c) = dev.conn_mut() {
            c.discard_output();
        }
        assert!(con.interest(&dev).unwrap().read);
    }
}
