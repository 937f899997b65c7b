//! File descriptor primitives: adopting inherited fds, flags, pipes, plain read/write.
//!
//! Every fd this module creates is `CLOEXEC` from birth and returned as an `OwnedFd`. It never
//! closes an fd it does not own, and never retries `close()`.

use super::raw;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{cvt, cvt_size, errno, retry};

/// Fd numbers already handed out by [`adopt_inherited`], so that a second adoption of the same
/// number (which would give two owners to one fd) is refused instead of double-closing later.
static ADOPTED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of an fd number inherited from the parent (e.g. `fd=3` on the command line).
///
/// Fails with `EBADF` if `fd` is negative or not open (checked with `F_GETFD`), and with
/// `AlreadyExists` if this number was adopted before in this process. The flags are left as
/// they are: the caller checks the fd (`socket::socket_type`, `socket::is_listening`) and then
/// calls [`set_cloexec`].
///
/// # Safety
///
/// Called before fdmon opens any fd of its own, at most once per fd number, so the number is
/// not owned elsewhere: an open number at that point can only have been inherited. Called
/// later, the number could be one fdmon opened itself (its signal pipe, a listener), and the
/// new `OwnedFd` would be a second owner that closes it under the first. Outside `sys`, use
/// [`adopt_all_inherited`], which start-up calls first thing.
pub unsafe fn adopt_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if !is_open(fd) {
        return Err(errno(libc::EBADF));
    }
    let mut adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    // Kept sorted: a binary search, and an append for numbers adopted in increasing order.
    match adopted.binary_search(&fd) {
        Ok(_) => {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("fd {fd} was already adopted")));
        }
        Err(i) => adopted.insert(i, fd),
    }
    // SAFETY: `fd` is open (F_GETFD succeeded) and, by this function's safety contract, is an
    // inherited fd that nothing else in the process owns; the ADOPTED list guarantees this is
    // the only OwnedFd ever made from it here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether [`adopt_all_inherited`] ran already.
static ADOPTION_DONE: AtomicBool = AtomicBool::new(false);

/// Adopts every inherited fd number named on the command line (`-chardev ...,fd=N`,
/// `-add-fd fd=N`, `-pass-fd N`), each distinct number once, in increasing order (sorted,
/// so that thousands of numbers cost O(n log n), not a scan per number). Start-up
/// calls it on its first line, before fdmon opens any fd of its own (the signal pipe, the pid
/// file, listeners, `/dev/null`), so a number that is open here was inherited and a number
/// that is not gives `EBADF` instead of silently naming one of fdmon's own fds.
///
/// Only the first call adopts anything; any later call gets `EALREADY` for every number, as
/// fdmon may have opened fds of its own by then.
pub fn adopt_all_inherited(fds: &[RawFd]) -> Vec<(RawFd, io::Result<OwnedFd>)> {
    let first = !ADOPTION_DONE.swap(true, Ordering::SeqCst);
    let mut numbers = fds.to_vec();
    numbers.sort_unstable();
    numbers.dedup();
    let mut out: Vec<(RawFd, io::Result<OwnedFd>)> = Vec::with_capacity(numbers.len());
    for fd in numbers {
        let r = if first {
            // SAFETY: this is the first and only adoption pass, run before fdmon opens any fd
            // of its own (documented above and done by `app::start`), and each number is
            // adopted at most once (duplicates are skipped just above).
            unsafe { adopt_inherited(fd) }
        } else {
            Err(errno(libc::EALREADY))
        };
        out.push((fd, r));
    }
    out
}

/// Whether `fd` is an open file descriptor of this process (`F_GETFD` succeeds).
pub fn is_open(fd: RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: F_GETFD only reads the fd flags; on a closed number it fails with EBADF.
    let r = unsafe { raw::fcntl(fd, libc::F_GETFD, 0) };
    r != -1
}

/// Whether `fd` is an inherited descriptor fdmon may use: open and without `FD_CLOEXEC`
/// (everything fdmon opens itself is close-on-exec). QEMU's test for `-add-fd`.
pub fn is_inheritable(fd: RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: F_GETFD only reads the fd flags; on a closed number it fails with EBADF.
    let r = unsafe { raw::fcntl(fd, libc::F_GETFD, 0) };
    r != -1 && r & libc::FD_CLOEXEC == 0
}

/// A close-on-exec copy (numbered from 3) of an open fd number this process did not adopt.
pub fn dup_number(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor (or fails with EBADF); the new number is
    // owned by nobody else, so wrapping it in OwnedFd right away is sound.
    let n = cvt(unsafe { raw::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `n` was just created by fcntl and is owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn get_fd_flags(fd: BorrowedFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFD on a borrowed (thus open) fd reads its flags, no memory is passed.
    cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_GETFD, 0) })
}

/// Sets or clears `FD_CLOEXEC`.
pub fn set_cloexec(fd: BorrowedFd, on: bool) -> io::Result<()> {
    let flags = get_fd_flags(fd)?;
    let new = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
    if new != flags {
        // SAFETY: F_SETFD with an int argument on a borrowed, open fd.
        cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_SETFD, new) })?;
    }
    Ok(())
}

/// Whether `FD_CLOEXEC` is set.
#[cfg(test)]
pub fn is_cloexec(fd: BorrowedFd) -> io::Result<bool> {
    Ok(get_fd_flags(fd)? & libc::FD_CLOEXEC != 0)
}

/// Sets or clears `O_NONBLOCK` (a flag of the open file description, shared with dups).
pub fn set_nonblocking(fd: BorrowedFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a borrowed, open fd; no memory is passed.
    let flags = cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_GETFL, 0) })?;
    let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if new != flags {
        // SAFETY: F_SETFL with an int argument on a borrowed, open fd.
        cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// `PIPE_BUF`: a write of at most this many bytes to a pipe that polled writable never blocks.
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// What kind of file an fd refers to (from `fstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fifo,
    Socket,
    /// A terminal.
    Tty,
    /// Another character device (`/dev/null`, a serial line without termios...).
    CharDev,
    /// A regular file, a directory, a block device.
    Other,
}

/// What fdmon reads of a file's status (`statx`, the same layout on every architecture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// File type and permission bits (`st_mode`).
    pub st_mode: libc::mode_t,
    /// The device the file is on, (major, minor).
    pub st_dev: (u32, u32),
    pub st_ino: u64,
    /// The device a device file stands for, (major, minor).
    pub st_rdev: (u32, u32),
}

impl Stat {
    pub fn is_file(&self) -> bool {
        self.st_mode & libc::S_IFMT == libc::S_IFREG
    }

    pub fn is_dir(&self) -> bool {
        self.st_mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.st_mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub fn is_socket(&self) -> bool {
        self.st_mode & libc::S_IFMT == libc::S_IFSOCK
    }

    /// The device number of the file system, as `MetadataExt::dev`.
    pub fn dev(&self) -> u64 {
        libc::makedev(self.st_dev.0, self.st_dev.1)
    }

    fn from_statx(x: &libc::statx) -> Stat {
        Stat {
            st_mode: libc::mode_t::from(x.stx_mode),
            st_dev: (x.stx_dev_major, x.stx_dev_minor),
            st_ino: x.stx_ino,
            st_rdev: (x.stx_rdev_major, x.stx_rdev_minor),
        }
    }
}

/// `statx(dirfd, path, flags)` as a [`Stat`] (see `raw::statx`).
pub(super) fn statx(dirfd: libc::c_int, path: &CStr, flags: libc::c_int) -> io::Result<Stat> {
    // SAFETY: statx is plain old data; all-zero is a valid value for the kernel to fill in.
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `x` is valid for writes; both outlive the call.
    cvt(unsafe { raw::statx(dirfd, path.as_ptr(), flags, &mut x) })?;
    Ok(Stat::from_statx(&x))
}

fn stat(fd: BorrowedFd) -> io::Result<Stat> {
    statx(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// The kind of file `fd` refers to.
pub fn kind(fd: BorrowedFd) -> io::Result<Kind> {
    let st = stat(fd)?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR if is_tty(fd) => Kind::Tty,
        libc::S_IFCHR => Kind::CharDev,
        _ => Kind::Other,
    })
}

/// A private open file description of the pipe or character device behind `fd`, opened through
/// `/proc/self/fd/N` with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, read-only or write-only. The
/// description `fd` refers to (shared with the parent and the workload) is left untouched, and
/// the new one can be non-blocking without anyone else noticing.
///
/// Fails for sockets and regular files (`Unsupported`), when `/proc` is missing or the open is
/// refused (`EACCES` on a pipe of another user, `EBUSY` on an exclusive tty, `ENXIO` on a pipe
/// without a reader), and when the path does not lead back to the same file (`Other`).
pub fn reopen_private(fd: BorrowedFd, write: bool) -> io::Result<OwnedFd> {
    let before = stat(fd)?;
    let fmt = before.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFIFO && fmt != libc::S_IFCHR {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mode = if write { libc::O_WRONLY } else { libc::O_RDONLY };
    let flags = mode | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let raw = retry(|| {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        cvt(unsafe { raw::open(path.as_ptr(), flags, 0) })
    })?;
    // SAFETY: open just returned this fd; no one else owns it.
    let new = unsafe { OwnedFd::from_raw_fd(raw) };
    let after = stat(std::os::fd::AsFd::as_fd(&new))?;
    if after.st_dev != before.st_dev || after.st_ino != before.st_ino || after.st_rdev != before.st_rdev {
        return Err(io::Error::other("reopened a different file"));
    }
    Ok(new)
}

/// Whether `O_NONBLOCK` is set on the open file description (for checks and tests).
#[cfg(test)]
pub fn is_nonblocking(fd: BorrowedFd) -> io::Result<bool> {
    // SAFETY: F_GETFL on a borrowed, open fd; no memory is passed.
    let flags = cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_GETFL, 0) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Duplicates `fd` to the lowest free number >= 3, with `CLOEXEC` set (`F_DUPFD_CLOEXEC`).
pub fn dup_cloexec(fd: BorrowedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a borrowed, open fd creates a new fd that nobody else owns.
    let new = cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by fcntl and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `read(2)`, retried on `EINTR`. `Ok(0)` is end of file; a nonblocking fd with nothing to read
/// gives `Err` with kind `WouldBlock`.
pub fn read(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        cvt_size(unsafe { raw::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// [`read`] into the spare capacity of `buf` (appending, no zeroing): `Ok(0)` is end of file.
/// `buf` must have spare capacity (`InvalidInput` otherwise).
pub fn read_spare(fd: BorrowedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    super::fill_spare(buf, |ptr, len| {
        retry(|| {
            // SAFETY: `ptr` is valid for writes of `len` bytes for the whole call (fill_spare).
            cvt_size(unsafe { raw::read(fd.as_raw_fd(), ptr.cast(), len) })
        })
    })
}

/// `write(2)`, retried on `EINTR`. May write less than `buf.len()`.
pub fn write(fd: BorrowedFd, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
        cvt_size(unsafe { raw::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
    })
}

/// [`write`] until all of `buf` is written (a blocking fd: a regular file).
pub fn write_all(fd: BorrowedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf)? {
            0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// `pipe2(O_CLOEXEC)`, plus `O_NONBLOCK` on both ends when `nonblocking`. Returns
/// `(read end, write end)`.
pub fn pipe(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { raw::pipe2(fds.as_mut_ptr(), flags) })?;
    // SAFETY: pipe2 succeeded, so both numbers are new fds owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Opens `/dev/null` read-write, `CLOEXEC`.
pub fn open_devnull() -> io::Result<OwnedFd> {
    const PATH: &CStr = c"/dev/null";
    let fd = retry(|| {
        // SAFETY: PATH is a NUL-terminated string that outlives the call.
        cvt(unsafe { raw::open(PATH.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) })
    })?;
    // SAFETY: open just returned this fd; no one else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A POSIX record lock on the whole file (`fcntl(F_SETLK, F_WRLCK)`, what `lockf` uses, as
/// QEMU does for its pid file, so fdmon and QEMU see each other's locks). `Err` (EAGAIN or
/// EACCES) when another process holds it. The lock belongs to the process and is released when
/// any of its fds for the file closes, or at exit; it is not inherited by `fork`.
pub fn lock_exclusive_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: flock is plain old data; zeroed is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    retry(|| {
        // SAFETY: F_SETLK on a borrowed, open fd with a pointer to a live, initialized flock.
        cvt(unsafe { raw::fcntl(fd.as_raw_fd(), libc::F_SETLK, &fl as *const libc::flock as libc::c_long) })
    })
    .map(drop)
}

/// Whether `fd` refers to a terminal.
pub fn is_tty(fd: BorrowedFd) -> bool {
    // SAFETY: isatty only inspects the borrowed, open fd.
    unsafe { raw::isatty(fd.as_raw_fd()) == 1 }
}

/// Makes `target` (0, 1 or 2) refer to the same file as `fd`, without `CLOEXEC`: stdio
/// redirection, e.g. to `/dev/null` when daemonizing.
///
/// Only the standard streams are accepted (`InvalidInput` otherwise): replacing any other
/// number could silently swap the file under some `OwnedFd` elsewhere in the process, whereas
/// the standard streams are by convention owned by the process as a whole.
pub fn dup2_to(fd: BorrowedFd, target: RawFd) -> io::Result<()> {
    if !(0..=2).contains(&target) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("dup2_to: target fd {target} is not 0, 1 or 2"),
        ));
    }
    if fd.as_raw_fd() == target {
        // dup2(n, n) is a no-op that would leave CLOEXEC as it is.
        // SAFETY: `target` equals the borrowed fd, so it is open for the duration of the call.
        return set_cloexec(unsafe { BorrowedFd::borrow_raw(target) }, false);
    }
    retry(|| {
        // SAFETY: dup2 onto a standard stream; see the function doc for why replacing it is
        // sound. The new descriptor has FD_CLOEXEC clear.
        cvt(unsafe { raw::dup2(fd.as_raw_fd(), target) })
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::TempPath;
    use std::os::fd::{AsFd, IntoRawFd};

    #[test]
    fn reopen_private_leaves_the_shared_description_blocking() {
        let (r, w) = pipe(false).unwrap();
        let own = reopen_private(w.as_fd(), true).unwrap();
        assert!(is_nonblocking(own.as_fd()).unwrap());
        assert!(!is_nonblocking(w.as_fd()).unwrap());
        assert!(is_cloexec(own.as_fd()).unwrap());
        assert_eq!(write(own.as_fd(), b"hi").unwrap(), 2);
        let mut b = [0u8; 4];
        assert_eq!(read(r.as_fd(), &mut b).unwrap(), 2);
        let own_r = reopen_private(r.as_fd(), false).unwrap();
        assert_eq!(read(own_r.as_fd(), &mut b).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(kind(r.as_fd()).unwrap(), Kind::Fifo);
        let (s, _) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(kind(s.as_fd()).unwrap(), Kind::Socket);
        assert!(reopen_private(s.as_fd(), true).is_err());
    }

    #[test]
    fn pipe_read_write_and_flags() {
        let (r, w) = pipe(false).unwrap();
        assert!(is_cloexec(r.as_fd()).unwrap());
        assert!(is_cloexec(w.as_fd()).unwrap());
        assert_eq!(write(w.as_fd(), b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        set_nonblocking(r.as_fd(), true).unwrap();
        let e = read(r.as_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(w);
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn nonblocking_pipe() {
        let (r, _w) = pipe(true).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        set_nonblocking(r.as_fd(), false).unwrap();
        set_nonblocking(r.as_fd(), true).unwrap();
    }

    #[test]
    fn cloexec_toggle() {
        let (r, _w) = pipe(false).unwrap();
        set_cloexec(r.as_fd(), false).unwrap();
        assert!(!is_cloexec(r.as_fd()).unwrap());
        set_cloexec(r.as_fd(), true).unwrap();
        assert!(is_cloexec(r.as_fd()).unwrap());
    }

    #[test]
    fn dup_is_cloexec_and_above_stdio() {
        let (r, w) = pipe(false).unwrap();
        set_cloexec(w.as_fd(), false).unwrap();
        let d = dup_cloexec(w.as_fd()).unwrap();
        assert!(d.as_raw_fd() >= 3);
        assert!(is_cloexec(d.as_fd()).unwrap());
        write(d.as_fd(), b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 1);
    }

    #[test]
    fn adopt_checks_open_and_once() {
        // SAFETY (all calls): -1 and i32::MAX - 1 are never open; `raw` was released from its
        // OwnedFd just before, so nothing else owns it.
        assert_eq!(unsafe { adopt_inherited(-1) }.unwrap_err().raw_os_error(), Some(libc::EBADF));
        // Far above any RLIMIT_NOFILE this process can have open.
        assert_eq!(unsafe { adopt_inherited(i32::MAX - 1) }.unwrap_err().raw_os_error(), Some(libc::EBADF));
        let (_r, w) = pipe(false).unwrap();
        let raw = w.into_raw_fd();
        assert!(is_open(raw));
        let owned = unsafe { adopt_inherited(raw) }.unwrap();
        assert_eq!(owned.as_raw_fd(), raw);
        assert_eq!(unsafe { adopt_inherited(raw) }.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        drop(owned);
    }

    #[test]
    fn adopt_all_runs_once() {
        // In this test process the first pass may already have run (in another test), so
        // only the second call's outcome is certain.
        let _ = adopt_all_inherited(&[i32::MAX - 2, i32::MAX - 2]);
        let again = adopt_all_inherited(&[i32::MAX - 3, i32::MAX - 4, i32::MAX - 3]);
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|(_, r)| r.as_ref().unwrap_err().raw_os_error() == Some(libc::EALREADY)));
    }

    #[test]
    fn is_open_negative() {
        assert!(!is_open(-1));
        assert!(!is_open(i32::MAX - 1));
    }

    #[test]
    fn devnull_and_tty() {
        let n = open_devnull().unwrap();
        assert!(is_cloexec(n.as_fd()).unwrap());
        assert_eq!(write(n.as_fd(), b"abc").unwrap(), 3);
        let mut buf = [0u8; 4];
        assert_eq!(read(n.as_fd(), &mut buf).unwrap(), 0);
        assert!(!is_tty(n.as_fd()));
        let (r, _w) = pipe(false).unwrap();
        assert!(!is_tty(r.as_fd()));
    }

    #[test]
    fn record_lock_is_seen_by_other_processes() {
        let p = TempPath::new("lockf");
        let a = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&p.0).unwrap();
        lock_exclusive_nonblocking(a.as_fd()).unwrap();
        // POSIX locks are per process: locking again here succeeds...
        lock_exclusive_nonblocking(a.as_fd()).unwrap();
        // ...while another process (python's lockf, as QEMU uses) is refused.
        let probe = |path: &std::path::Path| {
            std::process::Command::new("python3")
                .args(["-c", "import fcntl,sys; fcntl.lockf(open(sys.argv[1],'r+'), fcntl.LOCK_EX|fcntl.LOCK_NB)"])
                .arg(path)
                .status()
        };
        if let Ok(st) = probe(&p.0) {
            assert!(!st.success());
            drop(a);
            assert!(probe(&p.0).unwrap().success());
        }
    }

    #[test]
    fn dup2_to_rejects_non_stdio() {
        let n = open_devnull().unwrap();
        let e = dup2_to(n.as_fd(), 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(dup2_to(n.as_fd(), -1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn dup2_to_stdin_clears_cloexec() {
        // The tests never read stdin; point it at /dev/null.
        let n = open_devnull().unwrap();
        dup2_to(n.as_fd(), 0).unwrap();
        // SAFETY: fd 0 was just made a valid open fd and is not closed during this test.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        assert!(!is_cloexec(stdin).unwrap());
        let mut buf = [0u8; 1];
        assert_eq!(read(stdin, &mut buf).unwrap(), 0);
    }
}
