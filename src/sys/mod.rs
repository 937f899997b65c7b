//! Thin, safe wrappers over the Linux system calls fdmon needs: fds, sockets, poll, signals
//! and processes. This is the only place in the crate with `unsafe` code; it never keeps
//! policy (what to print, when to exit) and never hands out a raw fd that it owns: every fd
//! it creates is returned as an [`std::os::fd::OwnedFd`], created with `CLOEXEC` atomically.
//!
//! Linux only.

#![allow(unsafe_code)]

use std::io;

#[cfg(test)]
pub mod alloc_count;
pub mod fd;
pub mod fs;
pub mod poll;
pub mod process;
pub mod pty;
pub(crate) mod raw;
pub mod signal;
pub mod socket;
pub mod tty;

/// Turns the `-1` that a libc call returns on failure into `io::Error::last_os_error()`.
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// [`cvt`] for calls that return a byte count (`ssize_t`): `read`, `write`, `send`, `recvmsg`.
pub fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Runs `f` again for as long as it fails with `EINTR`.
///
/// Never use it for `close()`: on Linux the fd is gone even when `close` says `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Lets `fill` write into the spare capacity of `buf` (its allocated but unused tail), then
/// makes the bytes it wrote part of `buf`, as std's `BorrowedBuf` does: no zeroing and no copy.
/// `fill` gets a pointer valid for writes of the given length and must return how many bytes
/// it initialized from the start; it is always a syscall wrapper of this module (`recv`,
/// `read`, `recvmsg`). No spare capacity is `InvalidInput` (a read of 0 bytes would look like
/// end of stream).
pub(crate) fn fill_spare(
    buf: &mut Vec<u8>,
    fill: impl FnOnce(*mut u8, usize) -> io::Result<usize>,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    if room == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no room to read into"));
    }
    let n = fill(spare.as_mut_ptr().cast::<u8>(), room)?;
    if n > room {
        return Err(io::Error::other("the kernel reported more bytes than the buffer holds"));
    }
    let len = buf.len();
    // SAFETY: `fill` (a read-like syscall) initialized the first `n` bytes of the spare
    // capacity, and `n <= room`, so `len + n` is within the capacity and all initialized.
    unsafe { buf.set_len(len + n) };
    Ok(n)
}

/// An `io::Error` from a raw errno value, e.g. `errno(libc::EBADF)`.
pub(crate) fn errno(code: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the tests of this module.

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, MutexGuard};

    /// Unit tests that create children and reap them hold this, so that one test's
    /// `reap_any` (waitpid(-1)) cannot steal another test's child.
    pub fn children_lock() -> MutexGuard<'static, ()> {
        static CHILDREN: Mutex<()> = Mutex::new(());
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A name no other test (or test process) uses.
    pub fn unique(tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("fdmon-test-{}-{}-{}-{}", tag, std::process::id(), n, nanos)
    }

    /// A path in the temporary directory, removed when dropped.
    pub struct TempPath(pub std::path::PathBuf);

    impl TempPath {
        pub fn new(tag: &str) -> TempPath {
            TempPath(std::env::temp_dir().join(unique(tag)))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvt_maps_minus_one_to_errno() {
        assert_eq!(cvt(5).unwrap(), 5);
        assert_eq!(cvt(0).unwrap(), 0);
        // SAFETY: close(-1) touches no fd; it only sets errno to EBADF.
        let r = unsafe { libc::close(-1) };
        assert_eq!(cvt(r).unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!(cvt_size(7).unwrap(), 7);
    }

    #[test]
    fn retry_retries_only_eintr() {
        let mut n = 0;
        let r: io::Result<i32> = retry(|| {
            n += 1;
            if n < 3 {
                Err(errno(libc::EINTR))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 3);
        let mut m = 0;
        let r: io::Result<i32> = retry(|| {
            m += 1;
            Err(errno(libc::EAGAIN))
        });
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(m, 1);
    }
}
