//! Pseudo-terminals for the workload's console: a new master/slave pair from `/dev/ptmx`, and
//! the window size. The master is fdmon's own (non-blocking); the slave is opened without
//! becoming anyone's controlling terminal (the child takes it with `TIOCSCTTY`, see
//! `process::SpawnSpec::session`). Never touches a terminal fdmon shares.

use super::raw;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// A new pseudo-terminal: fdmon keeps `master`, the workload gets `slave`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

fn open_path(path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fd = super::retry(|| {
        // SAFETY: `c` is a valid NUL-terminated path; open returns a new fd or -1.
        cvt(unsafe { raw::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY, 0) })
    })?;
    // SAFETY: open just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a new pseudo-terminal of `cols` x `rows`: `/dev/ptmx` (non-blocking, close-on-exec,
/// no controlling terminal), `TIOCSPTLCK` 0 to unlock it, `TIOCGPTN` for its number, then the
/// slave `/dev/pts/N` (blocking, close-on-exec, `O_NOCTTY`).
pub fn open(cols: u16, rows: u16) -> io::Result<Pty> {
    let master = open_path("/dev/ptmx", libc::O_RDWR | libc::O_NONBLOCK)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    cvt(unsafe { raw::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into `n`, which outlives the call.
    cvt(unsafe { raw::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    let name = format!("/dev/pts/{n}");
    let slave = open_path(&name, libc::O_RDWR)?;
    set_winsize(master.as_fd(), cols, rows)?;
    Ok(Pty { master, slave })
}

/// `TIOCSWINSZ`: sets the terminal's size (on the master, the slave's foreground process
/// group gets `SIGWINCH` when it changes).
pub fn set_winsize(fd: BorrowedFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; `fd` is open (borrowed).
    cvt(unsafe { raw::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// `TIOCGWINSZ`: `(cols, rows)`.
#[cfg(test)]
pub fn winsize(fd: BorrowedFd) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which outlives the call.
    cvt(unsafe { raw::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_col, ws.ws_row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_new_pty_carries_bytes_both_ways_and_its_size() {
        let p = open(100, 30).unwrap();
        assert!(super::super::fd::is_nonblocking(p.master.as_fd()).unwrap());
        assert!(!super::super::fd::is_nonblocking(p.slave.as_fd()).unwrap());
        assert_eq!(winsize(p.slave.as_fd()).unwrap(), (100, 30));
        set_winsize(p.master.as_fd(), 81, 25).unwrap();
        assert_eq!(winsize(p.slave.as_fd()).unwrap(), (81, 25));
        super::super::fd::write(p.slave.as_fd(), b"out").unwrap();
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        for _ in 0..200 {
            match super::super::fd::read(p.master.as_fd(), &mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() >= 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, b"out");
        // The slave gone: the master reads EIO (not an error for the console).
        drop(p.slave);
        let e = super::super::fd::read(p.master.as_fd(), &mut buf).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }
}
