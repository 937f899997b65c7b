//! The binary's C entry point (`main`), compiled into the fdmon binary only (`src/main.rs`
//! includes this file; the library does not). It replaces std's runtime start-up, which
//! costs a third of fdmon's start-up instructions: std locates the main thread's stack guard
//! with `pthread_getattr_np`, which parses `/proc/self/maps` with `sscanf` (about 95,000
//! instructions, an `open`/`read`/`close` and a few allocations), and installs a SIGSEGV
//! handler on a `sigaltstack` (an `mmap`, an `mprotect`, two `sigaction`s) only to print
//! "has overflowed its stack". fdmon has no recursion, so a stack overflow cannot happen;
//! should one happen anyway, the kernel's guard page still stops it (SIGSEGV) — only std's
//! message is gone.
//!
//! What std's start-up does that fdmon relies on is kept: fds 0, 1 and 2 are opened on
//! `/dev/null` when the caller left them closed (so no socket or pipe fdmon opens later gets
//! a stdio number), and SIGPIPE is ignored (`app::main` does that itself). The arguments are
//! borrowed from `argv`, not copied (std's own copy is only filled by glibc's `.init_array`
//! call, not by musl's). `main` returns the exit code to libc after flushing std's
//! stdout, which is what `std::process::exit` does (without its import of `pause`).

use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;

/// Opens `/dev/null` on each of fds 0, 1 and 2 that is closed, as std's start-up does; aborts
/// when that is impossible (a process whose next `open` would land on a stdio number).
fn sanitize_standard_fds() {
    let mut pfds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // System calls through `syscall` (as in the library's `sys::raw`): no libc import each.
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let polled = loop {
        // SAFETY: ppoll(pfds, 3, {0, 0}, no mask): pfds is a valid array of 3 pollfds and the
        // zero timeout never blocks.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                pfds.as_mut_ptr(),
                3 as libc::c_long,
                &zero,
                0 as libc::c_long,
                8 as libc::c_long,
            )
        };
        if r != -1 {
            break true;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break false;
        }
    };
    for p in pfds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            // poll refused (e.g. by a seccomp filter): ask fcntl instead, as std does.
            // SAFETY: F_GETFD on any number is harmless.
            unsafe { libc::syscall(libc::SYS_fcntl, p.fd as libc::c_long, libc::F_GETFD as libc::c_long) == -1 }
        };
        // SAFETY: a constant NUL-terminated path; the fd returned is deliberately never
        // closed (it is the process's stdin, stdout or stderr from now on).
        if closed
            && unsafe {
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD as libc::c_long,
                    c"/dev/null".as_ptr(),
                    libc::O_RDWR as libc::c_long,
                )
            } == -1
        {
            std::process::abort();
        }
    }
}

/// The process entry point, called by libc's start-up code with the program's arguments.
#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    sanitize_standard_fds();
    let n = usize::try_from(argc).unwrap_or(0);
    // Borrowed: argv lives for the whole process, and nothing changes it.
    let args: Vec<&'static OsStr> = (1..n)
        .map_while(|i| {
            // SAFETY: libc passes argc entries of argv, each a NUL-terminated string (or the
            // list ends early with a null pointer, where map_while stops).
            let p = unsafe { *argv.add(i) };
            // SAFETY: p is non-null and points to a NUL-terminated string that lives for the
            // whole process.
            (!p.is_null()).then(|| OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes()))
        })
        .collect();
    let code = fdmon::app::main(&args);
    // What `std::process::exit` does before libc's `exit`: flush std's stdout buffer. Returning
    // from `main` then exits through libc (atexit handlers, stdio), as std's exit does.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}
