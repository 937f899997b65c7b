//! Processes: spawning the supervised workload (fork + exec with an exec-failure pipe),
//! signalling and reaping it, terminal foreground control, and the bits `-daemonize` needs.
//!
//! Between `fork` and `exec` the child only makes async-signal-safe libc calls on data
//! prepared before the fork: no allocation, no locks, no Rust destructors.

use super::raw;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr;

use super::{cvt, errno, fd};

/// A process (or process group) id.
pub type Pid = i32;

/// What to run, see [`spawn`].
#[derive(Debug, Clone, Copy)]
pub struct SpawnSpec<'a> {
    /// `argv[0]` is the program, searched in `PATH` like `execvp` when it has no `/`.
    pub argv: &'a [CString],
    /// Fds the child inherits at the same number, with `CLOEXEC` cleared in the child only.
    /// 0, 1 and 2 are always inherited as they are; every other fd is closed in the child.
    pub keep_fds: &'a [RawFd],
    /// A terminal fd: the child makes its own process group the terminal's foreground group
    /// (`tcsetpgrp`, with every signal blocked, so no `SIGTTOU`). Best effort: if that fails
    /// (not our controlling terminal), the child still runs.
    pub foreground_tty: Option<BorrowedFd<'a>>,
    /// What the child gets as fds 0, 1 and 2: `None` inherits the caller's fd at that number,
    /// `Some(fd)` is `dup2`ed there (e.g. `/dev/null` after `-daemonize`, later a console).
    /// Each given fd must be >= 3 or equal to its target number (`InvalidInput` otherwise), so
    /// no `dup2` can overwrite the source of another.
    pub stdio: [Option<BorrowedFd<'a>>; 3],
    /// A terminal (the slave of a console pty) that becomes the child's controlling terminal:
    /// the child leads a new session (`setsid` instead of `setpgid`, so its pgid and sid are its
    /// pid) and takes the terminal with `TIOCSCTTY`. Use with `foreground_tty: None`.
    pub session: Option<BorrowedFd<'a>>,
}

/// Why [`spawn`] failed.
#[derive(Debug)]
pub enum SpawnError {
    /// Nothing was started: bad spec (`InvalidInput` for an empty argv, `EBADF` for a
    /// `keep_fds` entry that is not open), or pipe/fork failed.
    Fork(io::Error),
    /// The child could not exec the program (errno from the child, e.g. `ENOENT`, `EACCES`).
    /// The child has already been reaped.
    Exec(io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Fork(e) => write!(f, "cannot start the process: {e}"),
            SpawnError::Exec(e) => write!(f, "cannot execute the program: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Fork(e) | SpawnError::Exec(e) => Some(e),
        }
    }
}

/// Upper bound for the close-every-fd fallback loop when `close_range` is unavailable.
const CLOSE_LOOP_CAP: u64 = 1 << 20;

/// Everything the child needs, prepared before `fork` so the child never allocates.
struct ChildCtx {
    /// `argv[0]`, the program to run.
    prog: *const libc::c_char,
    /// The environment block for the child when fdmon edited it (`env_set`, `env_remove`):
    /// the strings and the null-terminated pointer array into them; `None`: `environ`.
    env: Option<(Vec<Vec<u8>>, Vec<*const libc::c_char>)>,
    /// Null-terminated argument vector.
    argv: Vec<*const libc::c_char>,
    /// `spec.keep_fds` as given: CLOEXEC is cleared on each.
    clear_cloexec: Vec<libc::c_int>,
    /// Fds >= 3 that survive the close sweep, sorted, unique (keep_fds + the error pipe).
    survivors: Vec<libc::c_int>,
    err_w: libc::c_int,
    tty: Option<libc::c_int>,
    /// The controlling terminal of a new session (`SpawnSpec::session`).
    ctty: Option<libc::c_int>,
    /// Sources for fds 0, 1, 2 (-1: inherit).
    stdio: [libc::c_int; 3],
    /// fdmon's pid, taken before the fork: the child checks that its parent is still this
    /// process after arming `PR_SET_PDEATHSIG`.
    parent: libc::pid_t,
    /// An all-zero kernel `struct sigaction` (bigger than any architecture's).
    dfl: [u64; 32],
    empty: libc::sigset_t,
    close_cap: u64,
    /// `(source, target)`: `dup2(source, target)` after the stdio fds (see [`spawn_with`]);
    /// `(-1, -1)` for none.
    extra: (libc::c_int, libc::c_int),
}

/// Closes every fd in `lo..=hi`: `close_range(2)`, or a `close` loop up to `cap` on kernels
/// without it.
///
/// # Safety
/// Closes fds that may be owned elsewhere: only for a freshly forked child about to exec.
unsafe fn close_span(lo: u64, hi: u64, cap: u64) {
    if lo > hi {
        return;
    }
    let hi_arg = hi.min(u64::from(u32::MAX));
    // SAFETY: close_range takes three integers; the caller guarantees closing is fine.
    let r =
        unsafe { libc::syscall(libc::SYS_close_range, lo as libc::c_long, hi_arg as libc::c_long, 0 as libc::c_long) };
    if r == 0 {
        return;
    }
    let end = hi.min(cap.saturating_sub(1));
    let mut fd = lo;
    while fd <= end {
        // SAFETY: as above; EBADF for numbers that are not open is harmless.
        unsafe { libc::close(fd as libc::c_int) };
        fd += 1;
    }
}

/// Reports errno through the exec-failure pipe and exits with 127.
///
/// # Safety
/// Only in the forked child.
unsafe fn child_fail(err_w: libc::c_int) -> ! {
    // SAFETY: __errno_location returns this thread's errno slot.
    let code = unsafe { *libc::__errno_location() };
    let bytes = code.to_ne_bytes();
    loop {
        // SAFETY: `bytes` is a valid 4-byte buffer; write is async-signal-safe.
        let r = unsafe { raw::write(err_w, bytes.as_ptr().cast(), bytes.len()) };
        // SAFETY: as above.
        if r == -1 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        break;
    }
    // SAFETY: _exit ends the child at once, without running atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

/// The child side of [`spawn`]; never returns.
///
/// # Safety
/// Only in the child, right after `fork`, with every signal blocked. Makes only
/// async-signal-safe calls and does not allocate.
unsafe fn child_exec(ctx: &ChildCtx) -> ! {
    // SAFETY: (whole block) plain libc calls on integers and on memory prepared before the
    // fork (`ctx`), which this process owns a private copy of; all async-signal-safe.
    unsafe {
        if let Some(ctty) = ctx.ctty {
            // A new session led by the child (also a new process group, pgid = pid), with the
            // console as its controlling terminal.
            if raw::setsid() == -1 || raw::ioctl(ctty, libc::TIOCSCTTY, ptr::null::<libc::c_int>()) == -1 {
                child_fail(ctx.err_w);
            }
        } else {
            raw::setpgid(0, 0);
        }
        // Die with fdmon. If fdmon died between fork and prctl, the signal was never armed
        // and the child was re-parented: getppid() tells, and the child ends itself.
        if raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
            child_fail(ctx.err_w);
        }
        if raw::getppid() != ctx.parent {
            libc::_exit(127);
        }
        let mut target = 0;
        while target < 3 {
            let src = ctx.stdio[target as usize];
            if src == target {
                let flags = raw::fcntl(src, libc::F_GETFD, 0);
                if flags == -1 || raw::fcntl(src, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                    child_fail(ctx.err_w);
                }
            } else if src >= 0 && raw::dup2(src, target) == -1 {
                child_fail(ctx.err_w);
            }
            target += 1;
        }
        let (src, target) = ctx.extra;
        if target >= 0 {
            if src == target {
                let flags = raw::fcntl(src, libc::F_GETFD, 0);
                if flags == -1 || raw::fcntl(src, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                    child_fail(ctx.err_w);
                }
            } else if raw::dup2(src, target) == -1 {
                child_fail(ctx.err_w);
            }
        }
        if let Some(tty) = ctx.tty {
            // All signals are blocked, so a background tcsetpgrp raises no SIGTTOU.
            raw::tcsetpgrp(tty, raw::getpid());
        }
        // The raw syscall, because glibc's sigaction refuses its reserved signals 32 and 33,
        // which may have been inherited as ignored. An all-zero kernel `struct sigaction` is
        // SIG_DFL with no flags and an empty mask whatever the architecture's layout.
        let mut sig = 1;
        while sig <= raw::sigrtmax() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                raw::rt_sigaction_raw(sig, Some(&ctx.dfl), None);
            }
            sig += 1;
        }
        for &k in ctx.clear_cloexec.iter() {
            let flags = raw::fcntl(k, libc::F_GETFD, 0);
            if flags == -1 || raw::fcntl(k, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                child_fail(ctx.err_w);
            }
        }
        let mut next: u64 = 3;
        for &k in ctx.survivors.iter() {
            let k = k as u64;
            if k > next {
                close_span(next, k - 1, ctx.close_cap);
            }
            next = k + 1;
        }
        close_span(next, u64::MAX, ctx.close_cap);
        raw::pthread_sigmask(libc::SIG_SETMASK, &ctx.empty, ptr::null_mut());
        if let Some((_, envp)) = &ctx.env {
            // Only this child's copy of the pointer changes; `envp` lives until the exec.
            environ = envp.as_ptr();
        }
        libc::execvp(ctx.prog, ctx.argv.as_ptr());
        child_fail(ctx.err_w)
    }
}

fn close_cap(max_survivor: libc::c_int) -> u64 {
    let mut rl = [0u64; 2];
    // SAFETY: `rl` is a valid [u64; 2] (soft, hard) for getrlimit to fill.
    let cur = if unsafe { raw::getrlimit(libc::RLIMIT_NOFILE as libc::c_uint, &mut rl) } == 0 { rl[0] } else { 1024 };
    // The kernel's RLIM64_INFINITY is all ones.
    let cap = if cur == u64::MAX { CLOSE_LOOP_CAP } else { cur.min(CLOSE_LOOP_CAP) };
    cap.max(max_survivor as u64 + 1)
}

fn sigset(full: bool) -> libc::sigset_t {
    // SAFETY: sigset_t is plain old data; it is initialized by sigemptyset/sigfillset below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe {
        if full {
            raw::sigfillset(&mut set);
        } else {
            raw::sigemptyset(&mut set);
        }
    }
    set
}

/// Starts `spec.argv` as a child in a new process group of its own (pgid = pid).
///
/// The child: `setpgid(0, 0)` (with `spec.session`: `setsid` and `TIOCSCTTY` instead); `PR_SET_PDEATHSIG` with `SIGKILL`, so it dies when fdmon
/// does (checked against fdmon's pid taken before the fork, so an fdmon that died before the
/// prctl is noticed too; the kernel clears the setting when the child execs a set-user-ID or
/// file-capability program, and it fires when the forking *thread* ends: fdmon has one);
/// `dup2`s `spec.stdio` onto 0, 1, 2; optionally takes the terminal's foreground; resets every
/// signal disposition to default and empties its signal mask; clears `CLOEXEC` on
/// `keep_fds`; closes every other fd >= 3; inherits the current environment; `execvp`.
/// Returns once the exec has happened (`Ok(pid)`) or failed (`Err(Exec(errno))`, child
/// reaped). The caller reaps a running child later with [`reap_any`] or [`wait_pid`].
#[cfg(test)]
pub fn spawn(spec: &SpawnSpec) -> Result<Pid, SpawnError> {
    spawn_with(spec, None)
}

/// As [`spawn`], and the child also gets `extra.0` as fd number `extra.1` (> 2, not one of
/// `spec.keep_fds`: `InvalidInput` otherwise), `dup2`ed after the stdio fds, without
/// `CLOEXEC` (a readiness pipe's write end, the s6 notification-fd convention).
pub fn spawn_with(spec: &SpawnSpec, extra: Option<(BorrowedFd, RawFd)>) -> Result<Pid, SpawnError> {
    if let Some((_, target)) = extra {
        if target <= 2 || spec.keep_fds.contains(&target) {
            return Err(SpawnError::Fork(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("extra fd {target} must be above 2 and not kept"),
            )));
        }
    }
    if spec.argv.is_empty() {
        return Err(SpawnError::Fork(io::Error::new(io::ErrorKind::InvalidInput, "empty argv")));
    }
    // Validate before creating the pipe, so it cannot take the number of a closed keep fd.
    if spec.keep_fds.iter().any(|&k| !fd::is_open(k)) {
        return Err(SpawnError::Fork(errno(libc::EBADF)));
    }
    let mut stdio = [-1; 3];
    for (target, src) in spec.stdio.iter().enumerate() {
        if let Some(src) = src {
            let n = src.as_raw_fd();
            if n < 3 && n != target as RawFd {
                return Err(SpawnError::Fork(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("stdio fd {n} for fd {target} must be 3 or above"),
                )));
            }
            stdio[target] = n;
        }
    }
    let (err_r, mut err_w) = fd::pipe(false).map_err(SpawnError::Fork)?;
    let extra_target = extra.map(|(_, t)| t);
    if Some(err_w.as_raw_fd()) == extra_target {
        // The extra fd's dup2 would overwrite the exec-failure pipe: move it out of the way
        // (the old number is closed once the copy exists).
        err_w = fd::dup_cloexec(err_w.as_fd()).map_err(SpawnError::Fork)?;
    }

    let mut survivors: Vec<libc::c_int> = spec.keep_fds.iter().copied().filter(|&k| k > 2).collect();
    survivors.push(err_w.as_raw_fd());
    survivors.extend(extra_target);
    survivors.sort_unstable();
    survivors.dedup();
    let max_survivor = survivors.last().copied().unwrap_or(2);
    let mut argv: Vec<*const libc::c_char> = spec.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(ptr::null());
    let ctx = ChildCtx {
        prog: argv[0],
        env: child_environ(),
        argv,
        clear_cloexec: spec.keep_fds.to_vec(),
        survivors,
        err_w: err_w.as_raw_fd(),
        tty: spec.foreground_tty.map(|t| t.as_raw_fd()),
        ctty: spec.session.map(|t| t.as_raw_fd()),
        stdio,
        parent: getpid(),
        dfl: [0; 32],
        empty: sigset(false),
        close_cap: close_cap(max_survivor),
        extra: extra.map_or((-1, -1), |(f, t)| (f.as_raw_fd(), t)),
    };

    // Block every signal across fork, so that no handler of ours runs in the child before
    // the dispositions are reset (it would write into our signal self-pipe).
    let full = sigset(true);
    let mut old = sigset(false);
    // SAFETY: both sets are valid sigset_t values.
    let rc = unsafe { raw::pthread_sigmask(libc::SIG_SETMASK, &full, &mut old) };
    if rc != 0 {
        return Err(SpawnError::Fork(errno(rc)));
    }
    // SAFETY: fork has no memory preconditions. In the child (pid 0) only child_exec runs,
    // which makes async-signal-safe calls on `ctx` and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the freshly forked child, with every signal blocked.
        unsafe { child_exec(&ctx) }
    }
    let fork_err = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { raw::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
    drop(err_w);
    if pid < 0 {
        return Err(SpawnError::Fork(fork_err));
    }
    // Also from the parent, so the group exists when we return whatever the scheduling.
    // EACCES (the child has exec'd already) and ESRCH are fine to ignore. Not for a new
    // session: the child must not be a group leader when it calls `setsid` (and it is one of
    // its own as soon as the exec below has happened).
    if spec.session.is_none() {
        // SAFETY: setpgid takes two integers.
        unsafe { raw::setpgid(pid, pid) };
    }

    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        match fd::read(err_r.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                let _ = kill(pid, libc::SIGKILL);
                let _ = wait_pid(pid);
                return Err(SpawnError::Fork(e));
            }
        }
    }
    if got == 0 {
        return Ok(pid);
    }
    let _ = wait_pid(pid);
    if got == buf.len() {
        Err(SpawnError::Exec(errno(i32::from_ne_bytes(buf))))
    } else {
        Err(SpawnError::Exec(io::Error::other("short exec error report from the child")))
    }
}

/// `kill(pid, sig)` for one process. `pid <= 0` (which `kill` would read as a group or as
/// "every process") is refused with `InvalidInput`. `sig` 0 checks that the process exists.
pub fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("kill: bad pid {pid}")));
    }
    // SAFETY: kill takes two integers.
    cvt(unsafe { raw::kill(pid, sig) }).map(drop)
}

/// `kill(-pgid, sig)`: signals a whole process group. `pgid <= 1` is refused with
/// `InvalidInput` (`kill(-1)` would signal every process we may signal).
pub fn kill_group(pgid: Pid, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("kill_group: bad process group {pgid}")));
    }
    // SAFETY: kill takes two integers.
    cvt(unsafe { raw::kill(-pgid, sig) }).map(drop)
}

/// How a child changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// Stopped by this signal (`SIGSTOP`, `SIGTSTP`...).
    Stopped(i32),
    /// Resumed by `SIGCONT`.
    Continued,
}

impl WaitStatus {
    fn from_raw(status: libc::c_int) -> WaitStatus {
        if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else if libc::WIFSTOPPED(status) {
            WaitStatus::Stopped(libc::WSTOPSIG(status))
        } else {
            WaitStatus::Continued
        }
    }
}

/// `waitpid(-1, WNOHANG | WUNTRACED | WCONTINUED)`: one child that exited, was killed,
/// stopped or continued, or `None` when none changed state (or there are no children).
/// Call it in a loop after `SIGCHLD`.
pub fn reap_any() -> Option<(Pid, WaitStatus)> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { raw::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED) };
        match cvt(r) {
            Ok(0) => return None,
            Ok(pid) => return Some((pid, WaitStatus::from_raw(status))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// Blocking `waitpid(pid, 0)` (retried on `EINTR`) until that child exits or is killed.
/// `ECHILD` if it is not our child or was already reaped.
pub fn wait_pid(pid: Pid) -> io::Result<WaitStatus> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("wait_pid: bad pid {pid}")));
    }
    let mut status: libc::c_int = 0;
    super::retry(|| {
        // SAFETY: `status` is a valid out-pointer.
        cvt(unsafe { raw::waitpid(pid, &mut status, 0) })
    })?;
    Ok(WaitStatus::from_raw(status))
}

extern "C" {
    /// POSIX's environment block (glibc and musl alike). fdmon never changes it (no `setenv`,
    /// whose libc imports would cost start-up time and which is unsafe beside any thread):
    /// the edits below are applied to a copy that the workload gets. Only a child, between
    /// `fork` and `execvp`, points it at that copy.
    static mut environ: *const *const std::ffi::c_char;
}

/// Edits to the environment the workload inherits, in order: `(name, Some(value))` sets,
/// `(name, None)` removes. fdmon's own lookups ([`env_get`]) see them too.
static ENV_EDITS: std::sync::Mutex<Vec<(Vec<u8>, Option<Vec<u8>>)>> = std::sync::Mutex::new(Vec::new());

fn env_edits() -> std::sync::MutexGuard<'static, Vec<(Vec<u8>, Option<Vec<u8>>)>> {
    ENV_EDITS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entries of the environment block, `NAME=VALUE` each, read in place.
fn environ_entries() -> impl Iterator<Item = &'static [u8]> {
    // SAFETY: a NUL-terminated string that lives for the whole process (see `environ`).
    environ_ptrs().map(|entry| unsafe { std::ffi::CStr::from_ptr(entry) }.to_bytes())
}

/// Whether the environment entry at `entry` starts with `prefix`, compared byte by byte (most
/// entries differ in the first byte), without measuring the whole string.
fn entry_starts_with(entry: *const libc::c_char, prefix: &[u8]) -> bool {
    prefix.iter().enumerate().all(|(i, &c)| {
        // SAFETY: `entry` is a NUL-terminated string (see `environ`), and the loop stops at
        // its NUL at the latest (a NUL never matches), so `i` stays within it.
        let b = unsafe { *entry.add(i) } as u8;
        b == c && b != 0
    })
}

/// The entries' addresses in the environment block.
fn environ_ptrs() -> impl Iterator<Item = *const libc::c_char> {
    // SAFETY: `environ` is null or points to the null-terminated array of NUL-terminated
    // `NAME=VALUE` strings, which lives for the whole process: nothing in fdmon changes it
    // (see above), and fdmon is single-threaded.
    let mut p = unsafe { environ };
    std::iter::from_fn(move || {
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` points into the array, before or at its terminating null pointer.
        let entry = unsafe { *p };
        if entry.is_null() {
            return None;
        }
        // SAFETY: the entry was not the terminator, so the next element is in the array.
        p = unsafe { p.add(1) };
        Some(entry)
    })
}

fn split_entry(entry: &[u8]) -> (&[u8], &[u8]) {
    match entry.iter().position(|&b| b == b'=') {
        Some(i) => (&entry[..i], &entry[i + 1..]),
        None => (entry, &[]),
    }
}

/// The value of environment variable `name` (as `std::env::var_os`), with [`env_set`] and
/// [`env_remove`] applied.
pub fn env_get(name: &str) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    if let Some((_, v)) = env_edits().iter().rev().find(|(n, _)| n == name.as_bytes()) {
        return v.clone().map(std::ffi::OsString::from_vec);
    }
    let name = name.as_bytes();
    environ_ptrs()
        .filter(|&e| entry_starts_with(e, name))
        // SAFETY: a NUL-terminated string that lives for the whole process (see `environ`).
        .map(|e| unsafe { std::ffi::CStr::from_ptr(e) }.to_bytes())
        .find_map(|e| e.strip_prefix(name)?.strip_prefix(b"="))
        .map(|v| std::ffi::OsString::from_vec(v.to_vec()))
}

/// Sets `name` to `value` for the workload (and for [`env_get`]).
pub fn env_set(name: &str, value: &std::ffi::OsStr) {
    use std::os::unix::ffi::OsStrExt;
    env_edits().push((name.as_bytes().to_vec(), Some(value.as_bytes().to_vec())));
}

/// Removes `name` from the workload's environment (and from [`env_get`]'s answers).
pub fn env_remove(name: &[u8]) {
    env_edits().push((name.to_vec(), None));
}

/// The workload's environment block when there are edits: the `NAME=VALUE\0` strings and the
/// null-terminated pointer array into them. `None`: the child inherits `environ` as it is.
fn child_environ() -> Option<(Vec<Vec<u8>>, Vec<*const libc::c_char>)> {
    let edits = env_edits();
    if edits.is_empty() {
        return None;
    }
    let edited = |name: &[u8]| edits.iter().any(|(n, _)| n == name);
    let mut strings: Vec<Vec<u8>> = environ_entries()
        .filter(|e| !edited(split_entry(e).0))
        .map(|e| {
            let mut s = Vec::with_capacity(e.len() + 1);
            s.extend_from_slice(e);
            s.push(0);
            s
        })
        .collect();
    // The last edit of each name wins.
    for (i, (name, value)) in edits.iter().enumerate() {
        if edits[i + 1..].iter().any(|(n, _)| n == name) {
            continue;
        }
        if let Some(v) = value {
            let mut s = Vec::with_capacity(name.len() + v.len() + 2);
            s.extend_from_slice(name);
            s.push(b'=');
            s.extend_from_slice(v);
            s.push(0);
            strings.push(s);
        }
    }
    let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr().cast()).collect();
    ptrs.push(ptr::null());
    Some((strings, ptrs))
}

/// The names of the environment variables that start with `prefix`, read in place from the
/// environment block: only the names that match are copied (`std::env::vars_os` copies
/// every name and value).
pub fn env_names_with_prefix(prefix: &[u8]) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let edits = env_edits();
    environ_ptrs()
        .filter(|&e| entry_starts_with(e, prefix))
        // SAFETY: a NUL-terminated string that lives for the whole process (see `environ`).
        .map(|e| split_entry(unsafe { std::ffi::CStr::from_ptr(e) }.to_bytes()).0)
        .filter(|name| !edits.iter().any(|(n, _)| n == name))
        .map(|name| std::ffi::OsString::from_vec(name.to_vec()))
        .collect()
}

/// This process's id.
pub fn getpid() -> Pid {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { raw::getpid() }
}

/// This process's effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { raw::geteuid() }
}

/// Whether `pid` is a descendant of `root` (its parent, or its parent's parent, ...), by the
/// ppid links in `/proc`; false once the chain ends (pid 1 or 0, a process that is gone) or
/// after `limit` steps.
pub fn is_descendant(pid: Pid, root: Pid, limit: usize) -> bool {
    let mut p = pid;
    for _ in 0..limit {
        match stat_ppid(p) {
            Some(pp) if pp == root => return true,
            Some(pp) if pp > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// This process's process group id.
pub fn getpgrp() -> Pid {
    // SAFETY: getpgid(0) (POSIX's getpgrp, one imported symbol fewer) has no preconditions
    // and cannot fail for the calling process.
    unsafe { raw::getpgid(0) }
}

/// Sets the name shown by `ps`/`top` (`prctl(PR_SET_NAME)`, the calling thread's `comm`),
/// truncated to 15 bytes. A name with a NUL byte is `InvalidInput`.
pub fn set_process_name(name: &str) -> io::Result<()> {
    if name.as_bytes().contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "process name contains a NUL byte"));
    }
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from `buf`.
    cvt(unsafe { raw::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `tcgetpgrp`: the terminal's foreground process group (`ENOTTY` if `fd` is no terminal).
pub fn tty_foreground_pgrp(fd: BorrowedFd) -> io::Result<Pid> {
    // SAFETY: tcgetpgrp on a borrowed, open fd.
    cvt(unsafe { raw::tcgetpgrp(fd.as_raw_fd()) })
}

/// `tcsetpgrp` with `SIGTTOU` blocked in the calling thread during the call, so a background
/// process can hand the terminal to a group (or take it back) without being stopped.
pub fn set_tty_foreground_pgrp(fd: BorrowedFd, pgid: Pid) -> io::Result<()> {
    let mut set = sigset(false);
    // SAFETY: `set` is a valid sigset_t and SIGTTOU a valid signal.
    unsafe { raw::sigaddset(&mut set, libc::SIGTTOU) };
    let mut old = sigset(false);
    // SAFETY: both sets are valid sigset_t values.
    let rc = unsafe { raw::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    if rc != 0 {
        return Err(errno(rc));
    }
    // SAFETY: tcsetpgrp on a borrowed, open fd.
    let r = cvt(unsafe { raw::tcsetpgrp(fd.as_raw_fd(), pgid) });
    // SAFETY: restores the mask saved above.
    unsafe { raw::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
    r.map(drop)
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants
/// (double-forked, `setsid`ed) are re-parented to it instead of to init, so it can reap and
/// end them.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { raw::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `umask(mask)`; returns the previous mask.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask takes an integer and cannot fail.
    unsafe { raw::umask(mask as libc::mode_t) as u32 }
}

/// `(pid, ppid)` of every process in `/proc` (threads are not listed there, only processes).
/// A process that vanishes while being read is skipped.
fn process_table() -> Vec<(Pid, Pid)> {
    let mut out = Vec::new();
    let Ok(names) = super::fs::read_dir_names("/proc") else { return out };
    for name in names {
        let Some(pid) = name.to_str().and_then(|n| n.parse::<Pid>().ok()) else { continue };
        if let Some(ppid) = stat_ppid(pid) {
            out.push((pid, ppid));
        }
    }
    out
}

/// Field 4 (ppid) of `/proc/PID/stat`; the command name (field 2) may contain anything, so
/// parsing starts after its last `)`.
fn stat_ppid(pid: Pid) -> Option<Pid> {
    let stat = super::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every live or zombie descendant of `root` (children, their children, ...), found by
/// walking the ppid links in `/proc`, parents before their children. Without recursion; the
/// result is bounded by the number of processes on the system. Empty if `/proc` is not
/// mounted.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let table = process_table();
    let mut out: Vec<Pid> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &table {
            if ppid == parent && pid != root && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Which side of [`fork`] we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Parent(Pid),
    Child,
}

/// Number of threads of this process, from `/proc/self/stat`.
fn thread_count() -> io::Result<usize> {
    let stat = super::fs::read_to_string("/proc/self/stat")?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "cannot parse /proc/self/stat");
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    // Field 3 (state) is the first after the command name; num_threads is field 20.
    rest.split_whitespace().nth(17).and_then(|s| s.parse().ok()).ok_or_else(bad)
}

/// Plain `fork()`, for `-daemonize`. Refused (`Err`, kind `Other`) unless this process has a
/// single thread (checked in `/proc/self/stat`): with one thread no lock can be held by a
/// thread that the child would lack, so the child may go on running ordinary Rust code.
pub fn fork() -> io::Result<Fork> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!("fork refused: the process has {threads} threads")));
    }
    // SAFETY: the process is single-threaded (and, being the only thread, we cannot race
    // with a thread creation), so the child is a complete copy of a consistent process.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// `setsid()`: new session and process group, no controlling terminal. `EPERM` for a
/// process-group leader (fork first).
pub fn setsid() -> io::Result<Pid> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { raw::setsid() })
}

/// `_exit(code)`: ends the process now, without flushing stdio buffers or running
/// destructors. For the parent half of `-daemonize`, and for a forked child.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::TempPath;
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    fn lock() -> std::sync::MutexGuard<'static, ()> {
        crate::sys::testutil::children_lock()
    }

    /// The edits are the workload's environment; fdmon's own block stays as it was.
    #[test]
    fn environment_edits_apply_to_lookups_and_the_childs_copy() {
        let entries = |env: &Option<(Vec<Vec<u8>>, Vec<*const libc::c_char>)>| -> Vec<Vec<u8>> {
            let (strings, ptrs) = env.as_ref().expect("edits give the child a copy");
            assert_eq!(ptrs.len(), strings.len() + 1);
            assert!(ptrs.last().unwrap().is_null());
            strings.iter().map(|s| s[..s.len() - 1].to_vec()).collect()
        };
        // PATH is in the test runner's environment and is never edited here.
        let path = env_get("PATH").expect("PATH");
        assert!(env_get("FDMON_TEST_EDITED").is_none());
        env_set("FDMON_TEST_EDITED", std::ffi::OsStr::new("1=one"));
        assert_eq!(env_get("FDMON_TEST_EDITED").as_deref(), Some(std::ffi::OsStr::new("1=one")));
        env_set("FDMON_TEST_EDITED", std::ffi::OsStr::new("2"));
        let copy = entries(&child_environ());
        assert_eq!(copy.iter().filter(|e| e.starts_with(b"FDMON_TEST_EDITED=")).count(), 1, "the last edit wins");
        assert!(copy.contains(&b"FDMON_TEST_EDITED=2".to_vec()));
        let mut want_path = b"PATH=".to_vec();
        want_path.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
        assert!(copy.contains(&want_path), "unedited variables are copied as they are");
        env_remove(b"FDMON_TEST_EDITED");
        assert!(env_get("FDMON_TEST_EDITED").is_none());
        assert!(!entries(&child_environ()).iter().any(|e| e.starts_with(b"FDMON_TEST_EDITED")));
        // fdmon's own environment block was not changed.
        assert!(std::env::var_os("FDMON_TEST_EDITED").is_none());
    }

    fn args(a: &[&str]) -> Vec<CString> {
        a.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    fn run(a: &[&str], keep: &[RawFd]) -> Result<Pid, SpawnError> {
        let argv = args(a);
        spawn(&SpawnSpec { argv: &argv, keep_fds: keep, foreground_tty: None, stdio: [None; 3], session: None })
    }

    fn stat_field(pid: Pid, n: usize) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(n - 3).unwrap().to_string()
    }

    fn fd_set(pid: Pid) -> BTreeSet<RawFd> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn spawn_exit_code_reaped() {
        let _g = lock();
        let pid = run(&["sh", "-c", "exit 3"], &[]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match reap_any() {
                Some((p, st)) if p == pid => {
                    assert_eq!(st, WaitStatus::Exited(3));
                    break;
                }
                Some(_) => {}
                None => {
                    assert!(Instant::now() < deadline, "child not reaped");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    #[test]
    fn spawn_missing_program() {
        let _g = lock();
        for prog in ["/nonexistent/fdmon-no-such-program", "fdmon-no-such-program-xyz"] {
            match run(&[prog], &[]) {
                Err(SpawnError::Exec(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
                other => panic!("{prog}: {other:?}"),
            }
        }
        // Not executable.
        match run(&["/dev/null"], &[]) {
            Err(SpawnError::Exec(e)) => assert_eq!(e.raw_os_error(), Some(libc::EACCES)),
            other => panic!("{other:?}"),
        }
    }

    /// The extra fd reaches the child at its number, also when that number is where the
    /// exec-failure pipe would be (the next two free numbers after our own pipe), and exec
    /// failures are still reported then.
    #[test]
    fn spawn_with_places_the_extra_fd() {
        let _g = lock();
        let (r, w) = fd::pipe(false).unwrap();
        let probe = fd::dup_cloexec(r.as_fd()).unwrap();
        // Likely the write end of spawn's exec-failure pipe (another thread may take it first:
        // then this is an ordinary placement).
        let n = probe.as_raw_fd() + 1;
        drop(probe);
        let argv = args(&["sh", "-c", "echo via-extra >&\"$0\"; exec 0<&-", &n.to_string()]);
        let spec = SpawnSpec { argv: &argv, keep_fds: &[], foreground_tty: None, stdio: [None; 3], session: None };
        let pid = spawn_with(&spec, Some((w.as_fd(), n))).unwrap();
        drop(w);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match fd::read(r.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"via-extra\n");
        assert_eq!(wait_pid(pid).unwrap(), WaitStatus::Exited(0));
        let (_r2, w2) = fd::pipe(false).unwrap();
        let argv = args(&["/nonexistent/fdmon-no-such-program"]);
        let spec = SpawnSpec { argv: &argv, keep_fds: &[], foreground_tty: None, stdio: [None; 3], session: None };
        match spawn_with(&spec, Some((w2.as_fd(), n))) {
            Err(SpawnError::Exec(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("{other:?}"),
        }
        for bad in [2, 0] {
            assert!(matches!(spawn_with(&spec, Some((w2.as_fd(), bad))), Err(SpawnError::Fork(_))));
        }
    }

    #[test]
    fn spawn_bad_spec() {
        assert!(matches!(run(&[], &[]), Err(SpawnError::Fork(_))));
        match run(&["true"], &[i32::MAX - 1]) {
            Err(SpawnError::Fork(e)) => assert_eq!(e.raw_os_error(), Some(libc::EBADF)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn child_fds_pgrp_and_kill_group() {
        let _g = lock();
        let (_kr, kw) = fd::pipe(false).unwrap();
        // A non-CLOEXEC fd that is not in keep_fds must still be closed in the child.
        let (_xr, xw) = fd::pipe(false).unwrap();
        fd::set_cloexec(xw.as_fd(), false).unwrap();
        let pid = run(&["sleep", "30"], &[kw.as_raw_fd()]).unwrap();
        let mut want: BTreeSet<RawFd> = (0..3).filter(|&i| fd::is_open(i)).collect();
        want.insert(kw.as_raw_fd());
        // The dynamic loader may hold a file open for a moment after exec.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut have = fd_set(pid);
        while have != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            have = fd_set(pid);
        }
        assert_eq!(have, want);
        // Own process group: pgrp (field 5) == pid, not ours.
        assert_eq!(stat_field(pid, 5), pid.to_string());
        assert_ne!(getpgrp(), pid);
        kill_group(pid, libc::SIGKILL).unwrap();
        assert_eq!(wait_pid(pid).unwrap(), WaitStatus::Signaled(libc::SIGKILL));
        assert_eq!(wait_pid(pid).unwrap_err().raw_os_error(), Some(libc::ECHILD));
    }

    #[test]
    fn child_signal_state_is_reset() {
        let _g = lock();
        // SIGPIPE is ignored in the test process and SIGUSR2 is blocked in this thread; the
        // child must start with defaults: SigIgn and SigBlk empty.
        crate::sys::signal::ignore(libc::SIGPIPE).unwrap();
        crate::sys::signal::block(libc::SIGUSR2).unwrap();
        let out = TempPath::new("sigstate");
        let path = out.0.to_str().unwrap().to_string();
        let pid = run(&["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status > \"$1\"", "sh", &path], &[]).unwrap();
        crate::sys::signal::unblock(libc::SIGUSR2).unwrap();
        assert_eq!(wait_pid(pid).unwrap(), WaitStatus::Exited(0));
        let text = std::fs::read_to_string(&out.0).unwrap();
        assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
        // grep itself ignores nothing; sh may ignore nothing either when non-interactive.
        assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
    }

    #[test]
    fn stopped_and_continued_are_reported() {
        let _g = lock();
        let pid = run(&["sleep", "30"], &[]).unwrap();
        let mut seen = Vec::new();
        let mut step = |sig: i32, want: WaitStatus| {
            kill(pid, sig).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match reap_any() {
                    Some((p, st)) if p == pid => {
                        assert_eq!(st, want);
                        seen.push(st);
                        break;
                    }
                    Some(_) => {}
                    None => {
                        assert!(Instant::now() < deadline, "no state change for {sig}");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        };
        step(libc::SIGSTOP, WaitStatus::Stopped(libc::SIGSTOP));
        step(libc::SIGCONT, WaitStatus::Continued);
        step(libc::SIGTERM, WaitStatus::Signaled(libc::SIGTERM));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn foreground_tty_is_best_effort() {
        let _g = lock();
        // /dev/null is no terminal: tcsetpgrp fails in the child, which still runs.
        let null = fd::open_devnull().unwrap();
        let argv = args(&["sh", "-c", "exit 7"]);
        let pid = spawn(&SpawnSpec {
            argv: &argv,
            keep_fds: &[],
            foreground_tty: Some(null.as_fd()),
            stdio: [None; 3],
            session: None,
        })
        .unwrap();
        assert_eq!(wait_pid(pid).unwrap(), WaitStatus::Exited(7));
    }

    #[test]
    fn stdio_fds_are_placed_and_checked() {
        let _g = lock();
        let null = fd::open_devnull().unwrap();
        let argv = args(&["sleep", "30"]);
        let n = Some(null.as_fd());
        let pid =
            spawn(&SpawnSpec { argv: &argv, keep_fds: &[], foreground_tty: None, stdio: [n, n, n], session: None })
                .unwrap();
        for i in 0..3 {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{i}")).unwrap();
            assert_eq!(target, std::path::Path::new("/dev/null"), "fd {i}");
        }
        // The /dev/null fd itself was not inherited at its own number. `sleep` may open a
        // file for a moment while it starts (its locale) and get that number: wait until it
        // settles (an inherited fd would stay).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while fd_set(pid).contains(&null.as_raw_fd()) {
            assert!(std::time::Instant::now() < deadline, "fd {} inherited", null.as_raw_fd());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        kill(pid, libc::SIGKILL).unwrap();
        wait_pid(pid).unwrap();
        // A source below 3 that is not its own target could be overwritten: refused.
        let stdin = std::io::stdin();
        let bad = spawn(&SpawnSpec {
            argv: &argv,
            keep_fds: &[],
            foreground_tty: None,
            stdio: [None, Some(stdin.as_fd()), None],
            session: None,
        });
        match bad {
            Err(SpawnError::Fork(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_session_child_leads_it_with_the_pty_as_controlling_terminal() {
        let _g = lock();
        let pty = super::super::pty::open(80, 24).unwrap();
        let argv = args(&["sleep", "30"]);
        let s = Some(pty.slave.as_fd());
        let pid = spawn(&SpawnSpec { argv: &argv, keep_fds: &[], foreground_tty: None, stdio: [s, s, s], session: s })
            .unwrap();
        // Fields 5 (pgrp), 6 (session), 7 (tty_nr) and 8 (tpgid) of /proc/PID/stat.
        assert_eq!(stat_field(pid, 5), pid.to_string());
        assert_eq!(stat_field(pid, 6), pid.to_string());
        assert_ne!(stat_field(pid, 7), "0");
        assert_eq!(stat_field(pid, 8), pid.to_string());
        kill_group(pid, libc::SIGKILL).unwrap();
        wait_pid(pid).unwrap();
    }

    #[test]
    fn descendants_include_grandchildren() {
        let _g = lock();
        let pid = run(&["sh", "-c", "sleep 30 & wait"], &[]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = descendants(getpid());
            assert!(d.contains(&pid) && !d.contains(&getpid()));
            // Parents come before their children.
            let pos = d.iter().position(|&p| p == pid).unwrap();
            if d[pos + 1..].iter().any(|&g| stat_ppid(g) == Some(pid)) {
                break;
            }
            assert!(Instant::now() < deadline, "no grandchild in {d:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        kill_group(pid, libc::SIGKILL).unwrap();
        wait_pid(pid).unwrap();
    }

    #[test]
    fn wait_status_decoding() {
        assert_eq!(WaitStatus::from_raw(3 << 8), WaitStatus::Exited(3));
        assert_eq!(WaitStatus::from_raw(9), WaitStatus::Signaled(9));
        assert_eq!(WaitStatus::from_raw(0x80 | 6), WaitStatus::Signaled(6));
        assert_eq!(WaitStatus::from_raw((19 << 8) | 0x7f), WaitStatus::Stopped(19));
        assert_eq!(WaitStatus::from_raw(0xffff), WaitStatus::Continued);
    }

    #[test]
    fn kill_argument_checks() {
        assert_eq!(kill(0, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(kill(-5, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(kill_group(1, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(kill_group(0, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        kill(getpid(), 0).unwrap();
        assert_eq!(wait_pid(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn ids() {
        let me = getpid();
        assert_eq!(me as u32, std::process::id());
        assert_eq!(stat_field(me, 5), getpgrp().to_string());
    }

    #[test]
    fn process_name_truncated() {
        std::thread::spawn(|| {
            set_process_name("fdmon-name-that-is-long").unwrap();
            let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            assert_eq!(comm.trim_end(), "fdmon-name-that");
            assert_eq!(set_process_name("a\0b").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn tty_calls_on_a_pipe() {
        let (r, _w) = fd::pipe(false).unwrap();
        assert_eq!(tty_foreground_pgrp(r.as_fd()).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
        assert_eq!(set_tty_foreground_pgrp(r.as_fd(), getpgrp()).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    }

    #[test]
    fn fork_refused_with_threads() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let e = fork().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(thread_count().unwrap() >= 2);
        tx.send(()).unwrap();
        t.join().unwrap();
    }
}
