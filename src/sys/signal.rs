//! Signals: a self-pipe that turns signals into readable records for the poll loop, plus
//! ignoring/blocking helpers and the name of the process that sent a signal.
//!
//! The handler only writes one record to the pipe and restores `errno`; it never allocates,
//! locks or touches anything else. There is one self-pipe per process, alive until exit.

use super::raw;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::{cvt, errno, fd};

/// Write end of the self-pipe, or -1 before [`install`]. Once set it is never closed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by the first [`install`]; never cleared after a successful one.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Bytes of one record: `[signo: i32 native-endian][sender pid: i32 native-endian]`.
pub const RECORD_LEN: usize = 8;

/// The read end of the process's signal self-pipe (nonblocking, `CLOEXEC`).
///
/// Both pipe ends live until the process exits (also after this value is dropped), so a
/// handler running on any thread at any time always writes into this pipe, never into an fd
/// number that was closed and reused. A dropped `SignalPipe` therefore leaves the handlers
/// installed, and a second [`install`] is refused.
#[derive(Debug)]
pub struct SignalPipe {
    read: RawFd,
}

impl SignalPipe {
    /// The fd to poll for [`crate::sys::poll::IN`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `read` is the self-pipe's read end, which is never closed (see the type doc).
        unsafe { BorrowedFd::borrow_raw(self.read) }
    }

    /// Reads every record available now, without blocking: `(signal number, sender pid)` in
    /// arrival order. The pid is `si_pid`: the sender for `kill`/`sigqueue`/`tgkill`, the child
    /// for `SIGCHLD`, and 0 for signals the kernel generated (e.g. ^C at a terminal).
    ///
    /// If signals arrive faster than they are drained, records beyond the pipe's capacity
    /// (thousands) are lost; `SIGCHLD` handling must reap in a loop anyway.
    pub fn drain(&self) -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        let mut buf = [0u8; RECORD_LEN * 64];
        loop {
            match fd::read(self.fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // Records are written atomically (8 < PIPE_BUF) and we read multiples of
                    // 8, so every read returns whole records.
                    for rec in buf[..n].chunks_exact(RECORD_LEN) {
                        let sig = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
                        let pid = i32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]);
                        out.push((sig, pid));
                    }
                }
            }
        }
        out
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno_slot = unsafe { libc::__errno_location() };
    // SAFETY: `errno_slot` is a valid, aligned pointer to this thread's errno.
    let saved = unsafe { *errno_slot };
    let fd = WRITE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let pid = if info.is_null() {
            0
        } else {
            // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t. si_pid is
            // meaningful for user-sent signals (si_code <= 0) and for SIGCHLD; for other
            // kernel-generated signals the union holds something else, so report 0.
            unsafe {
                if (*info).si_code <= 0 || sig == libc::SIGCHLD {
                    (*info).si_pid()
                } else {
                    0
                }
            }
        };
        let s = sig.to_ne_bytes();
        let p = pid.to_ne_bytes();
        let rec = [s[0], s[1], s[2], s[3], p[0], p[1], p[2], p[3]];
        // SAFETY: write(2) is async-signal-safe; `rec` is a valid 8-byte buffer; `fd` is the
        // self-pipe's write end, which is never closed. A full pipe (EAGAIN) drops the record.
        unsafe { raw::write(fd, rec.as_ptr().cast(), RECORD_LEN) };
    }
    // SAFETY: as above; restoring errno keeps the interrupted code's view of it.
    unsafe { *errno_slot = saved };
}

/// `rtmin` is `SIGRTMIN()` (a libc call: the caller asks once for a whole list).
fn valid_catchable(sig: i32, rtmin: i32) -> bool {
    (1..65).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP && !(32..rtmin).contains(&sig)
}

/// The action `handler` with `flags` and an empty mask.
fn action(handler: libc::sighandler_t, flags: libc::c_int) -> libc::sigaction {
    // SAFETY: sigaction is plain old data; all-zero is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags;
    // SAFETY: `sa.sa_mask` is a valid sigset_t to initialize.
    unsafe { raw::sigemptyset(&mut sa.sa_mask) };
    sa
}

/// The real-time signals an application may use, `SIGRTMIN..=SIGRTMAX`.
pub fn realtime() -> std::ops::RangeInclusive<libc::c_int> {
    raw::sigrtmin()..=raw::sigrtmax()
}

fn apply(sig: i32, sa: &libc::sigaction) -> io::Result<()> {
    // SAFETY: `sa` is fully initialized (see `action`); the handler (if any) is SIG_IGN,
    // SIG_DFL or an extern "C" fn with the SA_SIGINFO signature that only does
    // async-signal-safe work.
    cvt(unsafe { libc::sigaction(sig, sa, ptr::null_mut()) }).map(drop)
}

fn set_action(sig: i32, handler: libc::sighandler_t, flags: libc::c_int) -> io::Result<()> {
    apply(sig, &action(handler, flags))
}

/// Creates the self-pipe and installs the handler (`SA_SIGINFO | SA_RESTART`) for `signals`.
///
/// Errors: `InvalidInput` for a signal that cannot be caught (`SIGKILL`, `SIGSTOP`, glibc's
/// reserved 32/33, out of range), checked before anything changes; `AlreadyExists` if a self-
/// pipe was already installed in this process.
pub fn install(signals: &[i32]) -> io::Result<SignalPipe> {
    let rtmin = raw::sigrtmin();
    if let Some(bad) = signals.iter().find(|&&s| !valid_catchable(s, rtmin)) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("signal {bad} cannot be caught")));
    }
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the signal self-pipe is already installed"));
    }
    let (r, w) = match fd::pipe(true) {
        Ok(p) => p,
        Err(e) => {
            INSTALLED.store(false, Ordering::Release);
            return Err(e);
        }
    };
    // Both ends live for the rest of the process (see SignalPipe).
    let read = r.into_raw_fd();
    WRITE_FD.store(w.into_raw_fd(), Ordering::Release);
    let pipe = SignalPipe { read };
    let handler = on_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
    // One action for every signal, built once: libc installs it for the first signal (with
    // its restorer); the kernel's copy of it is then given to the others as it is, which
    // spares libc's conversion of the same struct for each (about 60 instructions apiece).
    let sa = action(handler as libc::sighandler_t, libc::SA_SIGINFO | libc::SA_RESTART);
    let mut kernel_action: Option<[u64; 32]> = None;
    for &sig in signals {
        let r = match &kernel_action {
            // SAFETY: the bytes are the kernel's own action for a signal (read back below),
            // with the same handler, flags and mask as `sa`.
            Some(k) => cvt(unsafe { raw::rt_sigaction_raw(sig, Some(k), None) }).map(drop),
            None => apply(sig, &sa).map(|()| {
                let mut k = [0u64; 32];
                // SAFETY: only reads the action just installed into `k` (256 bytes, more than
                // any architecture's kernel struct sigaction).
                if unsafe { raw::rt_sigaction_raw(sig, None, Some(&mut k)) } == 0 {
                    kernel_action = Some(k);
                }
            }),
        };
        match r {
            Ok(()) => {}
            // A real-time signal the environment keeps for itself (valgrind reserves SIGRTMAX,
            // some debuggers and thread libraries others) keeps its default action.
            Err(e) if sig >= rtmin && e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pipe)
}

/// Sets `sig` to `SIG_IGN` (e.g. `SIGPIPE`, so a vanished client gives `EPIPE`).
pub fn ignore(sig: i32) -> io::Result<()> {
    set_action(sig, libc::SIG_IGN, 0)
}

/// Restores the default disposition of `sig`.
pub fn set_default(sig: i32) -> io::Result<()> {
    set_action(sig, libc::SIG_DFL, 0)
}

fn mask(how: libc::c_int, sig: i32) -> io::Result<()> {
    // SAFETY: sigset_t is plain old data; it is initialized by sigemptyset just below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; sigaddset rejects invalid numbers with EINVAL.
    unsafe { raw::sigemptyset(&mut set) };
    // SAFETY: as above.
    cvt(unsafe { raw::sigaddset(&mut set, sig) })?;
    // SAFETY: `set` is initialized; the old mask is not requested.
    let rc = unsafe { raw::pthread_sigmask(how, &set, ptr::null_mut()) };
    if rc != 0 {
        return Err(errno(rc));
    }
    Ok(())
}

/// Blocks `sig` in the calling thread's signal mask.
#[cfg(test)]
pub fn block(sig: i32) -> io::Result<()> {
    mask(libc::SIG_BLOCK, sig)
}

/// Unblocks `sig` in the calling thread's signal mask.
pub fn unblock(sig: i32) -> io::Result<()> {
    mask(libc::SIG_UNBLOCK, sig)
}

/// Name of process `pid` for messages like "terminating on signal 15 from pid P (NAME)":
/// argv\[0\] from `/proc/PID/cmdline`, or `/proc/PID/comm` when that is empty (kernel
/// threads, zombies). `None` if neither can be read (the process is gone).
pub fn process_name(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    if let Ok(cmd) = super::fs::read(format!("/proc/{pid}/cmdline")) {
        let argv0 = cmd.split(|&b| b == 0).next().unwrap_or(&[]);
        if !argv0.is_empty() {
            return Some(String::from_utf8_lossy(argv0).into_owned());
        }
    }
    let comm = super::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    Some(String::from_utf8_lossy(comm).into_owned())
}

impl AsFd for SignalPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

/// Sends `sig` to the self-pipe like the signals given to [`install`] (which must have run).
pub fn catch(sig: i32) -> io::Result<()> {
    if !valid_catchable(sig, raw::sigrtmin()) || !INSTALLED.load(Ordering::Acquire) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let handler = on_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
    set_action(sig, handler as libc::sighandler_t, libc::SA_SIGINFO | libc::SA_RESTART)
}

/// Stops the calling process with the stop signal `sig` (`SIGTSTP`, `SIGTTIN`, `SIGTTOU`) and
/// its default action, as a job-control stop the shell sees, and returns once continued (or at
/// once if the kernel discards the signal: an orphaned process group). When the parent is in
/// fdmon's process group (`sh -c 'fdmon ...'` run by a shell), the whole group stops, so the
/// shell sees its job stopped (as sudo does). The disposition of `sig` is put back afterwards.
pub fn stop_self(sig: i32) {
    // SAFETY: sigaction is plain old data; all-zero is a valid value to fill in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reads the current action into `old`; no new action is set.
    let have_old = unsafe { libc::sigaction(sig, ptr::null(), &mut old) } == 0;
    let _ = set_default(sig);
    let _ = unblock(sig);
    // SAFETY: getppid/getpgid take no memory (`getpgid(0)` is `getpgrp()`: one imported
    // libc symbol fewer to bind at start-up).
    let (own, parent) = unsafe { (raw::getpgid(0), raw::getpgid(raw::getppid())) };
    if parent == own {
        if own >= 0 {
            // SAFETY: kill(2) of our own process group (`-own`, what killpg does; killpg
            // refuses a negative group) with a valid signal number.
            unsafe { raw::kill(-own, sig) };
        }
    } else {
        // SAFETY: raise(3) on the calling thread with a valid signal number; the default
        // action stops the process until SIGCONT.
        unsafe { raw::raise(sig) };
    }
    if have_old {
        // SAFETY: `old` was filled by sigaction above and is a valid action.
        unsafe { libc::sigaction(sig, &old, ptr::null_mut()) };
    }
}

/// Ends the process by `sig` with its default action (so the parent sees "killed by signal"),
/// falling back to `_exit(128 + sig)` if the signal does not terminate.
pub fn die_of(sig: i32) -> ! {
    let _ = set_default(sig);
    let _ = unblock(sig);
    // SAFETY: raise(3) on the calling thread with a valid signal number.
    unsafe { raw::raise(sig) };
    crate::sys::process::exit_immediately(128 + sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::poll::{self, PollFd};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    // The only test in the crate's sys module that installs signal handlers.
    #[test]
    fn self_pipe_reports_signal_and_sender() {
        assert_eq!(install(&[libc::SIGKILL]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let sp = install(&[libc::SIGUSR1, libc::SIGUSR2]).unwrap();
        assert_eq!(install(&[libc::SIGUSR1]).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert!(fd::is_cloexec(sp.fd()).unwrap());
        assert!(sp.drain().is_empty());
        let me = crate::sys::process::getpid();
        crate::sys::process::kill(me, libc::SIGUSR1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            let mut fds = [PollFd::new(sp.fd().as_raw_fd(), poll::IN)];
            poll::poll(&mut fds, Some(Duration::from_millis(100))).unwrap();
            got.extend(sp.drain());
        }
        assert_eq!(got, vec![(libc::SIGUSR1, me)]);
        // Several records in one drain, in order.
        crate::sys::process::kill(me, libc::SIGUSR2).unwrap();
        crate::sys::process::kill(me, libc::SIGUSR1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 2 && Instant::now() < deadline {
            let mut fds = [PollFd::new(sp.fd().as_raw_fd(), poll::IN)];
            poll::poll(&mut fds, Some(Duration::from_millis(100))).unwrap();
            got.extend(sp.drain());
        }
        got.sort();
        assert_eq!(got, vec![(libc::SIGUSR1, me), (libc::SIGUSR2, me)]);
    }

    #[test]
    fn block_unblock_and_ignore_validation() {
        block(libc::SIGUSR2).unwrap();
        unblock(libc::SIGUSR2).unwrap();
        assert!(block(1000).is_err());
        assert!(ignore(libc::SIGKILL).is_err());
        // SIGPIPE is ignored by fdmon anyway; make sure the wrapper works on it.
        ignore(libc::SIGPIPE).unwrap();
    }

    #[test]
    fn process_name_of_self() {
        let me = crate::sys::process::getpid();
        let name = process_name(me).unwrap();
        let exe = std::env::args().next().unwrap();
        assert_eq!(name, exe);
        assert_eq!(process_name(0), None);
        assert_eq!(process_name(i32::MAX), None);
    }

    #[test]
    fn valid_signals() {
        assert!(valid_catchable(libc::SIGTERM, libc::SIGRTMIN()));
        assert!(valid_catchable(libc::SIGCHLD, libc::SIGRTMIN()));
        assert!(valid_catchable(libc::SIGRTMIN(), libc::SIGRTMIN()));
        assert!(valid_catchable(64, libc::SIGRTMIN()));
        assert!(!valid_catchable(0, libc::SIGRTMIN()));
        assert!(!valid_catchable(65, libc::SIGRTMIN()));
        assert!(!valid_catchable(32, libc::SIGRTMIN()));
        assert!(!valid_catchable(libc::SIGSTOP, libc::SIGRTMIN()));
    }
}
