//! Counting by `ptrace` single-step, which needs no valgrind and counts exactly what runs (it
//! was written when fdmon could not start under valgrind, which reserves SIGRTMAX).
//! Every user-space instruction of the (single-threaded) target is one step; a step that lands
//! on the first instruction of libc's malloc, calloc, realloc, posix_memalign, aligned_alloc or
//! memalign counts one allocation (memcheck's count includes reallocs too). Slow (a few µs a
//! step), so it runs only fdmon and the floor, and the floor is also measured by callgrind
//! and memcheck to show the methods agree.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::conn::err;
use crate::sys;

#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub instructions: f64,
    pub allocs: f64,
}

const ALLOCATORS: &[&std::ffi::CStr] =
    &[c"malloc", c"calloc", c"realloc", c"posix_memalign", c"aligned_alloc", c"memalign"];

/// libc's path and the offsets of the allocator entry points in it (from this process's libc,
/// the same file the target maps).
fn allocator_offsets() -> Option<(String, Vec<usize>)> {
    let mut path = None;
    let mut offs = Vec::new();
    for name in ALLOCATORS {
        // SAFETY: dlsym/dladdr with valid C strings; `info` is valid for writes.
        unsafe {
            let a = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
            if a.is_null() {
                continue;
            }
            let mut info: libc::Dl_info = std::mem::zeroed();
            if libc::dladdr(a, &mut info) == 0 || info.dli_fname.is_null() {
                continue;
            }
            path = Some(std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy().into_owned());
            offs.push(a as usize - info.dli_fbase as usize);
        }
    }
    Some((path?, offs))
}

/// The load address of `lib` in `pid` (the mapping at file offset 0), by file name.
fn base_in(pid: i32, lib: &str) -> Option<usize> {
    let name = lib.rsplit('/').next()?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && f[2] == "00000000" && f[5].rsplit('/').next() == Some(name) {
            usize::from_str_radix(f[0].split('-').next()?, 16).ok()
        } else {
            None
        }
    })
}

/// Starts `argv` (fds at 3..) traced on a thread of its own, which single-steps it to its exit.
/// Returns the pid and a receiver for the counts.
pub fn spawn(argv: &[String], fds: &[RawFd]) -> std::io::Result<(i32, mpsc::Receiver<std::io::Result<Counts>>)> {
    let high: Vec<OwnedFd> = fds.iter().map(|&f| sys::dup_above(f, 1024)).collect::<std::io::Result<_>>()?;
    let moves: Vec<(RawFd, RawFd)> = high.iter().enumerate().map(|(i, f)| (f.as_raw_fd(), 3 + i as RawFd)).collect();
    let argv = argv.to_vec();
    let (pid_tx, pid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    // The tracer is the thread that forked: spawn and step on the same thread.
    std::thread::spawn(move || {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                for &(from, to) in &moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = pid_tx.send(Err(e));
                return;
            }
        };
        drop(high);
        let pid = child.id() as i32;
        let _ = pid_tx.send(Ok(pid));
        let _ = tx.send(step(pid));
        drop(child); // reaped by step()
    });
    let pid = pid_rx.recv_timeout(Duration::from_secs(20)).map_err(|_| err("the tracer thread did not start"))??;
    Ok((pid, rx))
}

fn step(pid: i32) -> std::io::Result<Counts> {
    let lib = allocator_offsets();
    let mut entries: Vec<usize> = Vec::new();
    let (mut n, mut allocs) = (0u64, 0u64);
    let rip_off = (16 * 8) as usize; // offsetof(struct user_regs_struct, rip)
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own traced child; status is valid for writes.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Ok(Counts { instructions: n as f64, allocs: allocs as f64 });
        }
        let mut sig = 0;
        if libc::WIFSTOPPED(status) {
            let s = libc::WSTOPSIG(status);
            if s == libc::SIGTRAP {
                n += 1;
                if entries.is_empty() && n % 4096 == 0 {
                    if let Some((path, offs)) = &lib {
                        if let Some(base) = base_in(pid, path) {
                            entries = offs.iter().map(|o| base + o).collect();
                        }
                    }
                }
                if !entries.is_empty() {
                    // SAFETY: PEEKUSER on our stopped tracee.
                    let rip = unsafe { libc::ptrace(libc::PTRACE_PEEKUSER, pid, rip_off, 0) } as usize;
                    if entries.contains(&rip) {
                        allocs += 1;
                    }
                }
            } else {
                sig = s;
            }
        }
        // SAFETY: single-step our stopped tracee, delivering any signal it got.
        unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig as usize) };
    }
}

/// A running target being single-stepped since `attach`.
pub struct Attached {
    pid: i32,
    rx: mpsc::Receiver<std::io::Result<Counts>>,
}

/// Attaches to the running single-threaded `pid` and single-steps it until `finish`.
pub fn attach(pid: i32) -> std::io::Result<Attached> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    // The tracer is the thread that attached: attach and step on the same thread.
    std::thread::spawn(move || {
        // SAFETY: PTRACE_ATTACH to our own child (we are its parent, same uid).
        if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) } != 0 {
            let _ = ready_tx.send(Err(std::io::Error::last_os_error()));
            return;
        }
        let mut status = 0;
        // SAFETY: waitpid for the attach stop of our tracee.
        if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0 {
            let _ = ready_tx.send(Err(std::io::Error::last_os_error()));
            return;
        }
        let _ = ready_tx.send(Ok(()));
        let _ = tx.send(step_attached(pid));
    });
    ready_rx.recv_timeout(Duration::from_secs(20)).map_err(|_| err("the tracer thread did not attach"))??;
    Ok(Attached { pid, rx })
}

impl Attached {
    /// Stops counting (a SIGSTOP ends the stepping, and the tracer detaches) and returns the counts.
    pub fn finish(self, t: Duration) -> std::io::Result<Counts> {
        // SAFETY: kill on our own child, still running (traced).
        unsafe { libc::kill(self.pid, libc::SIGSTOP) };
        self.rx.recv_timeout(t).map_err(|_| err("the tracer did not finish"))?
    }
}

fn step_attached(pid: i32) -> std::io::Result<Counts> {
    let entries: Vec<usize> = allocator_offsets()
        .and_then(|(path, offs)| Some((base_in(pid, &path)?, offs)))
        .map_or(vec![], |(b, offs)| offs.iter().map(|o| b + o).collect());
    let (mut n, mut allocs) = (0u64, 0u64);
    let mut sig = 0;
    loop {
        // SAFETY: single-step our stopped tracee, delivering any signal it got.
        unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig as usize) };
        sig = 0;
        let mut status = 0;
        // SAFETY: waitpid on our tracee; status is valid for writes.
        if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Err(err("the target exited while traced"));
        }
        match libc::WSTOPSIG(status) {
            libc::SIGTRAP => {
                n += 1;
                // SAFETY: PEEKUSER on our stopped tracee.
                let rip = unsafe { libc::ptrace(libc::PTRACE_PEEKUSER, pid, 16 * 8, 0) } as usize;
                if entries.contains(&rip) {
                    allocs += 1;
                }
            }
            libc::SIGSTOP => {
                // Ours: detach, dropping the SIGSTOP, and leave the target running.
                // SAFETY: detach from our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
                return Ok(Counts { instructions: n as f64, allocs: allocs as f64 });
            }
            s => sig = s,
        }
    }
}
