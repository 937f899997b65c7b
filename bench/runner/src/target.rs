//! What is measured: fdmon, the floor, the thread-per-monitor floor and QEMU, each spawned
//! with the same monitors (socketpair ends or listeners at fds 3.., or a `path=` socket).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Fdmon,
    Floor,
    FloorThreads,
    Qemu,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fdmon => "fdmon",
            Kind::Floor => "floor",
            Kind::FloorThreads => "floor-threads",
            Kind::Qemu => "qemu",
        }
    }
}

pub const QEMU: &str = "qemu-system-x86_64";
pub const QEMU_BASE: &[&str] = &["-machine", "none", "-nodefaults", "-display", "none"];

/// The programs under test.
pub struct Programs {
    pub fdmon: PathBuf,
    pub floor: PathBuf,
    pub qemu: Option<PathBuf>,
}

/// How the monitors reach the target.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// fd 3.. are connected socketpair ends (`-chardev socket,fd=N`).
    Pair,
    /// fd 3 is an inherited listener (`-chardev socket,fd=3,server=on,wait=off`).
    Listener,
    /// The target creates `path=` itself (`server=on,wait=off`).
    Path,
}

/// The argv (program first) for `kind` with `n` monitors at fds 3.. (or one at `path`).
pub fn argv(p: &Programs, kind: Kind, via: Via, n: usize, path: &Path) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let chardev = |i: usize| match via {
        Via::Pair => format!("socket,fd={},id=m{i}", 3 + i),
        Via::Listener => format!("socket,fd={},server=on,wait=off,id=m{i}", 3 + i),
        Via::Path => format!("socket,path={},server=on,wait=off,id=m{i}", path.display()),
    };
    match kind {
        Kind::Fdmon | Kind::Qemu => {
            if kind == Kind::Fdmon {
                v.push(p.fdmon.display().to_string());
            } else {
                v.push(p.qemu.as_ref().map_or(QEMU.into(), |q| q.display().to_string()));
                v.extend(QEMU_BASE.iter().map(|s| s.to_string()));
            }
            for i in 0..n {
                v.extend(["-chardev".into(), chardev(i), "-mon".into(), format!("chardev=m{i},mode=control")]);
            }
        }
        Kind::Floor | Kind::FloorThreads => {
            v.push(p.floor.display().to_string());
            if kind == Kind::FloorThreads {
                v.push("--threads".into());
            }
            if via == Via::Path {
                v.extend(["--path".into(), path.display().to_string()]);
            } else {
                v.extend((0..n).map(|i| (3 + i).to_string()));
            }
        }
    }
    v
}

/// A spawned target; killed and reaped on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `t` for the process to exit by itself; kills it after that. True if it exited.
    pub fn wait_exit(&mut self, t: Duration) -> bool {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Spawns `prefix ++ argv` with `fds[i]` at fd 3+i (close-on-exec cleared), stdio to /dev/null.
pub fn spawn(prefix: &[String], argv: &[String], fds: &[RawFd]) -> std::io::Result<Proc> {
    // Move the child's fds far above 3..3+n first so the dup2s below cannot clobber each other.
    let high: Vec<OwnedFd> = fds.iter().map(|&f| sys::dup_above(f, 1024)).collect::<std::io::Result<_>>()?;
    let moves: Vec<(RawFd, RawFd)> = high.iter().enumerate().map(|(i, f)| (f.as_raw_fd(), 3 + i as RawFd)).collect();
    let all: Vec<&String> = prefix.iter().chain(argv.iter()).collect();
    let mut cmd = Command::new(all[0]);
    cmd.args(&all[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: between fork and exec only prctl and dup2 (async-signal-safe) on data prepared before fork.
    unsafe {
        cmd.pre_exec(move || {
            // No target outlives the runner, even when the runner is killed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
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
    let child = cmd.spawn()?;
    drop(high);
    Ok(Proc { child })
}

/// `n` socketpairs: (runner ends, target ends).
pub fn pairs(n: usize) -> std::io::Result<(Vec<UnixStream>, Vec<OwnedFd>)> {
    let mut ours = Vec::with_capacity(n);
    let mut theirs = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b) = UnixStream::pair()?;
        ours.push(a);
        theirs.push(OwnedFd::from(b));
    }
    Ok((ours, theirs))
}

/// A fresh scratch directory under $TMPDIR, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        let base = std::env::temp_dir();
        for i in 0..1000u32 {
            let p = base.join(format!("fdmon-bench-{}-{i}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(Scratch(p));
            }
        }
        Err(std::io::Error::other("cannot create a scratch directory"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Wraps a raw fd we own.
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass an fd they just created and own exclusively.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
