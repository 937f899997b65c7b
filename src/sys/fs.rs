//! The few file-system calls fdmon makes by path (pid file, `path=` sockets, the notify
//! socket's directory, `/proc` reads), on [`super::raw`] system calls instead of `std::fs`:
//! std's versions import a libc wrapper each (`open64`, `stat64`, `lstat64`, `statx`,
//! `fstat64`, `unlink`, `rmdir`, `mkdir`, `opendir`, `readdir64`, `closedir`, `dirfd`,
//! `ftruncate64`), which the dynamic loader binds at every start (see `raw`). Same results
//! and the same `io::Error`s as std's.

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::fd::Stat;
use super::{cvt, cvt_size, raw, retry};

/// Runs `f` with `path` as a C string: on the stack when it is short (as std does), else in
/// a `CString`. A path with a NUL byte is `InvalidInput`, as in std.
fn with_cstr<T>(path: &Path, f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    let bytes = path.as_os_str().as_bytes();
    let nul = || io::Error::new(io::ErrorKind::InvalidInput, "file name contained an unexpected NUL byte");
    let mut buf = [0u8; 384];
    if bytes.len() < buf.len() {
        buf[..bytes.len()].copy_from_slice(bytes);
        let c = CStr::from_bytes_with_nul(&buf[..=bytes.len()]).map_err(|_| nul())?;
        f(c)
    } else {
        let c = std::ffi::CString::new(bytes).map_err(|_| nul())?;
        f(&c)
    }
}

/// `open(path, flags | O_CLOEXEC, mode)`, retried on `EINTR`.
pub fn open(path: impl AsRef<Path>, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    with_cstr(path.as_ref(), |c| {
        let fd = retry(|| {
            // SAFETY: `c` is NUL-terminated and outlives the call.
            cvt(unsafe { raw::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) })
        })?;
        // SAFETY: open just returned this fd; no one else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// The whole contents of a file, as `std::fs::read`.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let fd = open(path, libc::O_RDONLY, 0)?;
    let mut out = Vec::with_capacity(512);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        if super::fd::read_spare(std::os::fd::AsFd::as_fd(&fd), &mut out)? == 0 {
            return Ok(out);
        }
    }
}

/// [`read`], as UTF-8 (`InvalidData` otherwise), as `std::fs::read_to_string`.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

fn statx_at(path: &Path, flags: libc::c_int) -> io::Result<Stat> {
    with_cstr(path, |c| super::fd::statx(libc::AT_FDCWD, c, flags))
}

/// The status of `path`, following symlinks (`std::fs::metadata`).
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Stat> {
    statx_at(path.as_ref(), 0)
}

/// The status of `path` itself, not of what a symlink points to (`std::fs::symlink_metadata`).
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Stat> {
    statx_at(path.as_ref(), libc::AT_SYMLINK_NOFOLLOW)
}

pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    // SAFETY: `c` is NUL-terminated and outlives the call.
    with_cstr(path.as_ref(), |c| cvt(unsafe { raw::unlink(c.as_ptr()) }).map(drop))
}

pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    // SAFETY: `c` is NUL-terminated and outlives the call.
    with_cstr(path.as_ref(), |c| cvt(unsafe { raw::rmdir(c.as_ptr()) }).map(drop))
}

/// `mkdir(path, mode)` (the umask applies).
pub fn create_dir(path: impl AsRef<Path>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `c` is NUL-terminated and outlives the call.
    with_cstr(path.as_ref(), |c| cvt(unsafe { raw::mkdir(c.as_ptr(), mode) }).map(drop))
}

/// Truncates (or extends) the open file to `len` bytes.
pub fn set_len(fd: BorrowedFd, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: ftruncate on a borrowed, open fd; no memory is passed.
    retry(|| cvt(unsafe { raw::ftruncate(fd.as_raw_fd(), len) })).map(drop)
}

/// The names in directory `path`, without `.` and `..`, in the order the kernel gives them.
pub fn read_dir_names(path: impl AsRef<Path>) -> io::Result<Vec<OsString>> {
    let dir = open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut names = Vec::new();
    // u64 words: linux_dirent64 records are 8-byte aligned.
    let mut buf = [0u64; 512];
    loop {
        let n = retry(|| {
            // SAFETY: `buf` is valid for writes of its size in bytes for the whole call.
            cvt_size(unsafe { raw::getdents64(dir.as_raw_fd(), buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf)) })
        })?;
        if n == 0 {
            return Ok(names);
        }
        let bytes: &[u8] = bytes_of(&buf, n);
        let mut at = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while at + 19 <= bytes.len() {
            let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if reclen < 19 || at + reclen > bytes.len() {
                return Err(io::Error::other("malformed directory entry"));
            }
            let name = &bytes[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name.to_vec()));
            }
            at += reclen;
        }
    }
}

/// The first `n` bytes of `words` (`n` at most its size in bytes).
fn bytes_of(words: &[u64], n: usize) -> &[u8] {
    let all = std::mem::size_of_val(words);
    // SAFETY: u64 has no padding and any byte is a valid u8; the slice covers `words` only.
    let b = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), all) };
    &b[..n.min(all)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::TempPath;

    #[test]
    fn files_directories_and_status_match_std() {
        let dir = TempPath::new("fsdir");
        create_dir(&dir.0, 0o700).unwrap();
        assert_eq!(create_dir(&dir.0, 0o700).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        let m = metadata(&dir.0).unwrap();
        assert!(m.is_dir() && !m.is_symlink() && !m.is_socket());
        assert_eq!(m.st_mode & 0o777, 0o700 & !current_umask());
        let f = dir.0.join("f");
        let fd = open(&f, libc::O_RDWR | libc::O_CREAT, 0o600).unwrap();
        crate::sys::fd::write(std::os::fd::AsFd::as_fd(&fd), b"hello\nworld\n").unwrap();
        assert_eq!(read(&f).unwrap(), b"hello\nworld\n");
        set_len(std::os::fd::AsFd::as_fd(&fd), 3).unwrap();
        assert_eq!(read_to_string(&f).unwrap(), "hel");
        let l = dir.0.join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(symlink_metadata(&l).unwrap().is_symlink());
        assert!(!metadata(&l).unwrap().is_symlink());
        {
            use std::os::unix::fs::MetadataExt;
            let std_m = std::fs::symlink_metadata(&f).unwrap();
            let ours = symlink_metadata(&f).unwrap();
            assert_eq!((ours.st_ino, ours.dev(), ours.st_mode), (std_m.ino(), std_m.dev(), std_m.mode()));
        }
        let mut names = read_dir_names(&dir.0).unwrap();
        names.sort();
        assert_eq!(names, [OsString::from("f"), OsString::from("l")]);
        assert_eq!(remove_dir(&dir.0).unwrap_err().raw_os_error(), Some(libc::ENOTEMPTY));
        remove_file(&l).unwrap();
        remove_file(&f).unwrap();
        assert_eq!(remove_file(&f).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(read(&f).unwrap_err().kind(), io::ErrorKind::NotFound);
        remove_dir(&dir.0).unwrap();
        assert_eq!(metadata(&dir.0).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(open("a\0b", libc::O_RDONLY, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn long_paths_and_big_directories() {
        let long = format!("/{}", "x/".repeat(300));
        assert_eq!(metadata(&long).unwrap_err().kind(), io::ErrorKind::NotFound);
        // /proc/self/fd of the test process and /proc hold many entries (more than one buffer).
        let procs = read_dir_names("/proc").unwrap();
        let std_procs: Vec<OsString> = std::fs::read_dir("/proc").unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(procs.len() > 20);
        assert!(procs.iter().filter(|p| std_procs.contains(p)).count() * 10 >= procs.len() * 9);
        assert!(read_to_string("/proc/self/stat").unwrap().contains(')'));
    }

    fn current_umask() -> u32 {
        let old = crate::sys::process::set_umask(0o022);
        crate::sys::process::set_umask(old);
        old
    }
}
