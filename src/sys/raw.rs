//! The simple system calls, made through `syscall(2)` instead of one libc wrapper each.
//!
//! Why: fdmon is linked with `-z now` (full RELRO), so the dynamic loader looks up every
//! imported libc symbol before `main`, about 900 instructions each, whether it is ever called
//! or not. Each of these wrappers only moves its arguments into registers and sets `errno`; one
//! `syscall` import replaces some fifty of them. What a libc wrapper does beyond that is kept
//! where it matters: `fork` (atfork handlers, the cached TID), `execvp` (the `PATH` search and
//! the `sh` fallback), `sigaction` (the restorer trampoline), `tcgetattr`/`tcsetattr` (libc's
//! `struct termios` is not the kernel's) and `getaddrinfo` stay libc calls.
//!
//! Every function has the signature and the contract of the libc function it is named after
//! (same arguments, `-1` and `errno` on failure), so the SAFETY arguments at the call sites
//! read the same; the exceptions (`fcntl` and `ioctl` take their argument as a typed value,
//! not varargs; `pthread_sigmask` returns the error number as POSIX says) are noted on each.
//! # Safety
//! Each `unsafe fn` here has exactly the safety contract of the libc function it replaces
//! (valid pointers for the lengths given, fds the caller may use).
//!
//! Only system calls that exist on every Linux architecture are used (`openat`, not `open`;
//! `ppoll`, not `poll`; `dup3`, not `dup2`; `wait4`, not `waitpid`).

use std::ptr;

use libc::{c_char, c_int, c_long, c_uint, c_ulong, c_void, mode_t, pid_t, size_t, sockaddr, socklen_t, ssize_t};

/// `syscall(2)` with the arguments widened to `c_long`, as the kernel takes them.
macro_rules! sc {
    ($nr:expr $(, $a:expr)* $(,)?) => {
        // SAFETY: the caller of the enclosing function upholds the contract of the libc
        // function it replaces, which is the system call's.
        unsafe { libc::syscall($nr $(, $a as c_long)*) }
    };
}

/// The size of the kernel's signal set (`_NSIG / 8`), which `rt_sigprocmask` and `ppoll` want.
#[cfg(not(any(target_arch = "mips", target_arch = "mips32r6", target_arch = "mips64", target_arch = "mips64r6")))]
const KERNEL_SIGSET: usize = 8;
#[cfg(any(target_arch = "mips", target_arch = "mips32r6", target_arch = "mips64", target_arch = "mips64r6"))]
const KERNEL_SIGSET: usize = 16;

pub unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    sc!(libc::SYS_read, fd, buf, n) as ssize_t
}

pub unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    sc!(libc::SYS_write, fd, buf, n) as ssize_t
}

/// `open(2)` as `openat(AT_FDCWD, ...)`; `mode` is used only with `O_CREAT`/`O_TMPFILE`.
pub unsafe fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    sc!(libc::SYS_openat, libc::AT_FDCWD, path, flags, mode) as c_int
}

/// `fcntl(2)` with its one argument as a `c_long` (an int, or a pointer cast to one); commands
/// without an argument ignore it.
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: impl Into<c_long>) -> c_int {
    sc!(libc::SYS_fcntl, fd, cmd, arg.into()) as c_int
}

/// `ioctl(2)` with its argument as a pointer (`TIOCSCTTY`'s int 0 is a null pointer).
pub unsafe fn ioctl<T>(fd: c_int, request: libc::Ioctl, arg: *const T) -> c_int {
    sc!(libc::SYS_ioctl, fd, request, arg) as c_int
}

/// `dup2(2)`: `dup3` does the work; `dup3(n, n)` is `EINVAL` where `dup2(n, n)` checks that
/// `n` is open and returns it.
pub unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // SAFETY: F_GETFD only reads the flags of `old`.
        return if unsafe { fcntl(old, libc::F_GETFD, 0) } == -1 { -1 } else { new };
    }
    sc!(libc::SYS_dup3, old, new, 0) as c_int
}

pub unsafe fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    sc!(libc::SYS_pipe2, fds, flags) as c_int
}

/// `poll(2)` as `ppoll` with no signal mask; a negative timeout waits for ever.
pub unsafe fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int {
    let ts;
    let tp: *const libc::timespec = if timeout_ms < 0 {
        ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_nsec: ((timeout_ms % 1000) as c_long) * 1_000_000,
        };
        &ts
    };
    sc!(libc::SYS_ppoll, fds, n, tp, ptr::null::<c_void>(), KERNEL_SIGSET) as c_int
}

/// Sleeps for `ns` nanoseconds (`nanosleep(2)`), the rest of it again after a signal.
pub fn sleep_ns(ns: u64) {
    let mut t =
        libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as c_long };
    loop {
        let mut rest = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // Both timespecs are live locals; nanosleep reads one and writes the other.
        let r = sc!(libc::SYS_nanosleep, &t as *const libc::timespec, &mut rest as *mut libc::timespec);
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
        t = rest;
    }
}

/// `isatty(3)`: whether `TCGETS` works on `fd` (1) or not (0, `errno` set). The kernel's
/// termios is at most 60 bytes on any architecture; the buffer is larger.
pub unsafe fn isatty(fd: c_int) -> c_int {
    let mut t = [0u64; 16];
    // SAFETY: TCGETS writes at most 60 bytes into `t` (128 bytes).
    c_int::from(unsafe { ioctl(fd, libc::TCGETS, t.as_mut_ptr()) } == 0)
}

pub unsafe fn tcgetpgrp(fd: c_int) -> pid_t {
    let mut pgrp: pid_t = -1;
    // SAFETY: TIOCGPGRP writes one pid_t into `pgrp`.
    if unsafe { ioctl(fd, libc::TIOCGPGRP, &mut pgrp as *mut pid_t) } == -1 {
        return -1;
    }
    pgrp
}

pub unsafe fn tcsetpgrp(fd: c_int, pgrp: pid_t) -> c_int {
    // SAFETY: TIOCSPGRP reads one pid_t from `pgrp`.
    unsafe { ioctl(fd, libc::TIOCSPGRP, &pgrp as *const pid_t) }
}

/// `statx(2)` (basic fields), whose layout is the same on every architecture (libc's
/// `struct stat` is not the kernel's everywhere): `fstat` is `(fd, "", AT_EMPTY_PATH)`, `stat`
/// `(AT_FDCWD, path, 0)`, `lstat` `(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW)`.
pub unsafe fn statx(dirfd: c_int, path: *const c_char, flags: c_int, out: *mut libc::statx) -> c_int {
    sc!(libc::SYS_statx, dirfd, path, flags, libc::STATX_BASIC_STATS, out) as c_int
}

pub unsafe fn ftruncate(fd: c_int, len: libc::off_t) -> c_int {
    sc!(libc::SYS_ftruncate, fd, len) as c_int
}

pub unsafe fn unlink(path: *const c_char) -> c_int {
    sc!(libc::SYS_unlinkat, libc::AT_FDCWD, path, 0) as c_int
}

pub unsafe fn rmdir(path: *const c_char) -> c_int {
    sc!(libc::SYS_unlinkat, libc::AT_FDCWD, path, libc::AT_REMOVEDIR) as c_int
}

pub unsafe fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    sc!(libc::SYS_mkdirat, libc::AT_FDCWD, path, mode) as c_int
}

/// `getdents64(2)`: directory entries of `fd` as `linux_dirent64` records.
pub unsafe fn getdents64(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    sc!(libc::SYS_getdents64, fd, buf, n) as ssize_t
}

pub unsafe fn umask(mask: mode_t) -> mode_t {
    sc!(libc::SYS_umask, mask) as mode_t
}

pub unsafe fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    sc!(libc::SYS_socket, domain, kind, protocol) as c_int
}

#[cfg(test)]
pub unsafe fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int {
    sc!(libc::SYS_socketpair, domain, kind, protocol, fds) as c_int
}

pub unsafe fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    sc!(libc::SYS_bind, fd, addr, len) as c_int
}

pub unsafe fn listen(fd: c_int, backlog: c_int) -> c_int {
    sc!(libc::SYS_listen, fd, backlog) as c_int
}

pub unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    sc!(libc::SYS_accept4, fd, addr, len, flags) as c_int
}

pub unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    sc!(libc::SYS_connect, fd, addr, len) as c_int
}

pub unsafe fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    sc!(libc::SYS_getsockname, fd, addr, len) as c_int
}

pub unsafe fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    sc!(libc::SYS_getpeername, fd, addr, len) as c_int
}

pub unsafe fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int {
    sc!(libc::SYS_getsockopt, fd, level, name, val, len) as c_int
}

pub unsafe fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    sc!(libc::SYS_setsockopt, fd, level, name, val, len) as c_int
}

#[cfg(test)]
pub unsafe fn shutdown(fd: c_int, how: c_int) -> c_int {
    sc!(libc::SYS_shutdown, fd, how) as c_int
}

/// `recv(2)` as `recvfrom` without an address.
pub unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    sc!(libc::SYS_recvfrom, fd, buf, n, flags, ptr::null::<c_void>(), ptr::null::<c_void>()) as ssize_t
}

pub unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    sc!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as ssize_t
}

pub unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    sc!(libc::SYS_recvmsg, fd, msg, flags) as ssize_t
}

pub unsafe fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    sc!(libc::SYS_sendmsg, fd, msg, flags) as ssize_t
}

pub unsafe fn getpid() -> pid_t {
    sc!(libc::SYS_getpid) as pid_t
}

pub unsafe fn getppid() -> pid_t {
    sc!(libc::SYS_getppid) as pid_t
}

pub unsafe fn gettid() -> pid_t {
    sc!(libc::SYS_gettid) as pid_t
}

pub unsafe fn geteuid() -> libc::uid_t {
    sc!(libc::SYS_geteuid) as libc::uid_t
}

pub unsafe fn getpgid(pid: pid_t) -> pid_t {
    sc!(libc::SYS_getpgid, pid) as pid_t
}

pub unsafe fn setpgid(pid: pid_t, pgid: pid_t) -> c_int {
    sc!(libc::SYS_setpgid, pid, pgid) as c_int
}

pub unsafe fn setsid() -> pid_t {
    sc!(libc::SYS_setsid) as pid_t
}

pub unsafe fn kill(pid: pid_t, sig: c_int) -> c_int {
    sc!(libc::SYS_kill, pid, sig) as c_int
}

/// `raise(3)`: the signal to this thread (`tgkill`), as libc does.
pub unsafe fn raise(sig: c_int) -> c_int {
    // SAFETY: getpid and gettid take no arguments.
    let (pid, tid) = unsafe { (getpid(), gettid()) };
    sc!(libc::SYS_tgkill, pid, tid, sig) as c_int
}

/// `waitpid(2)` as `wait4` without resource usage.
pub unsafe fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    sc!(libc::SYS_wait4, pid, status, options, ptr::null::<c_void>()) as pid_t
}

pub unsafe fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int {
    sc!(libc::SYS_prctl, option, a2, a3, a4, a5) as c_int
}

/// The soft and hard limit of `resource` (`prlimit64` on this process; the 64-bit values
/// whatever libc's `rlim_t` is).
pub unsafe fn getrlimit(resource: c_uint, out: *mut [u64; 2]) -> c_int {
    sc!(libc::SYS_prlimit64, 0, resource, ptr::null::<c_void>(), out) as c_int
}

/// `pthread_sigmask(3)` as `rt_sigprocmask`: returns 0 or the error number (not -1), as POSIX
/// says `pthread_sigmask` does. fdmon is single-threaded, so the process mask is the thread's.
pub unsafe fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    if sc!(libc::SYS_rt_sigprocmask, how, set, old, KERNEL_SIGSET) == 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
    }
}

/// `rt_sigaction(2)` with the kernel's own `struct sigaction` as opaque bytes (its layout
/// differs between architectures; 256 bytes hold any of them): `new` is installed when given,
/// the previous action is written to `old` when given. Used to copy one action, as libc's
/// `sigaction` made it (with its restorer), to other signals without libc's conversion.
pub unsafe fn rt_sigaction_raw(sig: c_int, new: Option<&[u64; 32]>, old: Option<&mut [u64; 32]>) -> c_int {
    let new = new.map_or(ptr::null(), |n| n.as_ptr());
    let old = old.map_or(ptr::null_mut(), |o| o.as_mut_ptr());
    sc!(libc::SYS_rt_sigaction, sig, new, old, KERNEL_SIGSET) as c_int
}

/// The words of a signal set (libc's `sigset_t` is an array of `c_ulong`, bit `n - 1` for
/// signal `n`, on every Linux libc; its field is private in the `libc` crate).
fn words(set: *mut libc::sigset_t) -> *mut c_ulong {
    set.cast::<c_ulong>()
}

const WORD_BITS: usize = c_ulong::BITS as usize;
const SET_WORDS: usize = std::mem::size_of::<libc::sigset_t>() / std::mem::size_of::<c_ulong>();

pub unsafe fn sigemptyset(set: *mut libc::sigset_t) -> c_int {
    for i in 0..SET_WORDS {
        // SAFETY: the caller passes a valid sigset_t, SET_WORDS words long.
        unsafe { *words(set).add(i) = 0 };
    }
    0
}

/// `sigfillset(3)`: every signal but the ones libc keeps for itself, which libc's own
/// `sigfillset` leaves out too (glibc: 32 and 33, its thread cancellation and set-ID signals;
/// musl: 32 to 34).
pub unsafe fn sigfillset(set: *mut libc::sigset_t) -> c_int {
    for i in 0..SET_WORDS {
        // SAFETY: the caller passes a valid sigset_t, SET_WORDS words long.
        unsafe { *words(set).add(i) = !0 };
    }
    let reserved = if cfg!(target_env = "musl") { 32..=34 } else { 32..=33 };
    for sig in reserved {
        // SAFETY: as above; 32 to 34 are within the set.
        unsafe { sigdel(set, sig) };
    }
    0
}

unsafe fn sigdel(set: *mut libc::sigset_t, sig: usize) {
    // SAFETY: the caller passes a valid sigset_t and 1 <= sig <= its size in bits.
    unsafe { *words(set).add((sig - 1) / WORD_BITS) &= !(1 << ((sig - 1) % WORD_BITS)) };
}

pub unsafe fn sigaddset(set: *mut libc::sigset_t, sig: c_int) -> c_int {
    match usize::try_from(sig) {
        // As libc: a signal number from 1 to _NSIG - 1.
        Ok(s) if s > 0 && s <= KERNEL_SIGSET * 8 => {
            // SAFETY: the caller passes a valid sigset_t; `s` is within it.
            unsafe { *words(set).add((s - 1) / WORD_BITS) |= 1 << ((s - 1) % WORD_BITS) };
            0
        }
        _ => einval(),
    }
}

#[cfg(test)]
pub unsafe fn sigismember(set: *const libc::sigset_t, sig: c_int) -> bool {
    match usize::try_from(sig) {
        Ok(s) if s > 0 && s <= SET_WORDS * WORD_BITS => {
            // SAFETY: the caller passes a valid sigset_t; `s` is within it.
            unsafe { *set.cast::<c_ulong>().add((s - 1) / WORD_BITS) & (1 << ((s - 1) % WORD_BITS)) != 0 }
        }
        _ => false,
    }
}

fn einval() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for writes.
    unsafe { *libc::__errno_location() = libc::EINVAL };
    -1
}

/// The lowest real-time signal an application may use: libc keeps the first ones for itself
/// (glibc 2 of them, so 34; musl 3). On glibc a constant, without the import of
/// `__libc_current_sigrtmin`; elsewhere libc is asked.
pub fn sigrtmin() -> c_int {
    if cfg!(target_env = "gnu") {
        34
    } else {
        libc::SIGRTMIN()
    }
}

/// The highest real-time signal: `_NSIG - 1`, 64 on every architecture but MIPS.
pub fn sigrtmax() -> c_int {
    (KERNEL_SIGSET * 8) as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_limits_are_libcs() {
        assert_eq!(sigrtmin(), libc::SIGRTMIN());
        assert_eq!(sigrtmax(), libc::SIGRTMAX());
    }

    #[test]
    fn signal_sets_match_libcs() {
        // SAFETY: all-zero is a valid sigset_t; the functions only touch the sets passed.
        unsafe {
            let mut ours: libc::sigset_t = std::mem::zeroed();
            let mut theirs: libc::sigset_t = std::mem::zeroed();
            sigfillset(&mut ours);
            libc::sigfillset(&mut theirs);
            for s in 1..=64 {
                assert_eq!(sigismember(&ours, s), libc::sigismember(&theirs, s) == 1, "signal {s}");
            }
            sigemptyset(&mut ours);
            libc::sigemptyset(&mut theirs);
            for s in [1, libc::SIGTTOU, libc::SIGCHLD, 34, 63, 64] {
                assert_eq!(sigaddset(&mut ours, s), 0);
                libc::sigaddset(&mut theirs, s);
            }
            for s in 1..=64 {
                assert_eq!(sigismember(&ours, s), libc::sigismember(&theirs, s) == 1, "signal {s}");
            }
            assert_eq!(sigaddset(&mut ours, 0), -1);
            assert_eq!(sigaddset(&mut ours, 65), -1);
            assert_eq!(libc::sigaddset(&mut theirs, 65), -1);
            assert_eq!(sigaddset(&mut ours, 100_000), -1);
        }
    }

    #[test]
    fn dup2_onto_itself_checks_the_fd() {
        // SAFETY: fd 0 of the test process is open; -5 is not an fd.
        unsafe {
            assert_eq!(dup2(0, 0), 0);
            assert_eq!(dup2(-5, -5), -1);
        }
    }

    #[test]
    fn poll_times_out_and_isatty_says_no_to_a_pipe() {
        let (r, _w) = crate::sys::fd::pipe(false).unwrap();
        use std::os::fd::AsRawFd;
        let mut p = [libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: p is a live array of one pollfd.
        assert_eq!(unsafe { poll(p.as_mut_ptr(), 1, 10) }, 0);
        // SAFETY: isatty only inspects the fd.
        assert_eq!(unsafe { isatty(r.as_raw_fd()) }, 0);
        let mut rl = [0u64; 2];
        // SAFETY: rl is a live [u64; 2].
        assert_eq!(unsafe { getrlimit(libc::RLIMIT_NOFILE as c_uint, &mut rl) }, 0);
        assert!(rl[0] > 0 && rl[0] <= rl[1]);
    }
}
