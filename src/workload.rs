//! The supervised child: started in its own process group with only fds 0, 1, 2 (plus the ones
//! the user names with `-pass-fd`), signalled as a group, reaped by the main loop. Never
//! decides run states (see `state`).
//!
//! fdmon is a child subreaper while it runs a workload, so everything the workload starts
//! (also double-forked or `setsid`ed processes) stays a descendant of fdmon: "the tree" is
//! every descendant of fdmon, found in `/proc`. `stop`/`cont`, `system_reset` and the exit
//! sequence act on the whole tree, not only on the workload's process group.
#![forbid(unsafe_code)]

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::os_text;
use crate::notify::{NotifySocket, PipeNews, ReadyPipe};
use crate::opts::Readiness;
use crate::sys::process::{self, Pid, SpawnError, SpawnSpec, WaitStatus};

/// Why the workload could not be set up or started. `Display` is the text fdmon prints (after
/// `fdmon: `) and QMP reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadError {
    /// An argument holds a NUL byte.
    NulInArguments,
    /// fork (or the readiness pipe) failed.
    Start { program: String, os: String },
    /// No pseudo-terminal for `-serial`.
    NoPty { program: String, os: String },
    /// The program cannot be executed.
    Exec { program: String, os: String },
}

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkloadError::NulInArguments => f.write_str("workload arguments must not contain NUL bytes"),
            WorkloadError::Start { program, os } => write!(f, "cannot start workload '{program}': {os}"),
            WorkloadError::NoPty { program, os } => {
                write!(f, "cannot start workload '{program}': cannot open a pseudo-terminal: {os}")
            }
            WorkloadError::Exec { program, os } => write!(f, "cannot execute '{program}': {os}"),
        }
    }
}

/// What `query-workload` and HMP `info workload` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadInfo<'a> {
    pub program: &'a str,
    /// While it runs.
    pub pid: Option<Pid>,
    /// Running and ready.
    pub ready: bool,
    /// The last `STATUS=` it sent.
    pub status: Option<&'a str>,
    /// How the last start ended.
    pub last_exit: Option<WaitStatus>,
}

pub struct Workload {
    argv: Vec<CString>,
    program: String,
    pass_fds: Vec<RawFd>,
    /// Whether fdmon's stdin is a terminal whose foreground group the workload should get.
    tty: bool,
    pub pid: Option<Pid>,
    pub last_exit: Option<WaitStatus>,
    /// fdmon sent SIGTERM (power button or shutdown): dying of it is a normal shutdown.
    pub expect_term: bool,
    /// Process group of the latest child (its pid).
    last_pgid: Option<Pid>,
    /// The process whose descendants form the tree: fdmon itself (`None` in unit tests,
    /// whose process has other children: then the tree is the workload's group only).
    tree_root: Option<Pid>,
    /// `system_reset` killed the old tree and it has not been reaped completely yet.
    pub resetting: bool,
    /// The old workload of a reset, killed but not reaped yet.
    old_pid: Option<Pid>,
    /// Start a new workload as soon as the old tree is gone (a reset or `cont` asked for it).
    pub start_pending: bool,
    /// Given to every workload start as fds 0, 1 and 2 (`/dev/null` under `-daemonize`);
    /// `None` inherits fdmon's own.
    stdio: Option<OwnedFd>,
    /// fdmon reads the terminal itself (a stdio chardev on it): the workload never gets it.
    keep_tty: bool,
    /// `-ready`: how a start becomes ready (see `notify`).
    ready_mode: Readiness,
    /// `-ready notify`: the private socket, one for fdmon's lifetime.
    notify: Option<NotifySocket>,
    /// `-ready fd=N`: the read end for the current start, until it said something.
    ready_pipe: Option<ReadyPipe>,
    /// The current start is ready.
    pub ready: bool,
    /// The last `STATUS=` the current start sent.
    pub status: Option<String>,
    /// `-serial`: every start gets a new pseudo-terminal of this size (see `console`).
    console_size: Option<(u16, u16)>,
    /// The master of the latest start's pty, until the console takes it.
    console_master: Option<OwnedFd>,
}

impl Workload {
    pub fn new(argv: &[OsString], pass_fds: &[RawFd]) -> Result<Workload, WorkloadError> {
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| WorkloadError::NulInArguments))
            .collect::<Result<_, _>>()?;
        let program = argv.first().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let tty = crate::sys::fd::is_tty(std::io::stdin().as_fd());
        Ok(Workload {
            argv,
            program,
            pass_fds: pass_fds.to_vec(),
            tty,
            pid: None,
            last_exit: None,
            expect_term: false,
            last_pgid: None,
            tree_root: Some(process::getpid()),
            resetting: false,
            old_pid: None,
            start_pending: false,
            stdio: None,
            keep_tty: false,
            ready_mode: Readiness::Exec,
            notify: None,
            ready_pipe: None,
            ready: false,
            status: None,
            console_size: None,
            console_master: None,
        })
    }

    /// How every start becomes ready; `notify` is the socket for [`Readiness::Notify`] (its
    /// path must be the `NOTIFY_SOCKET` of fdmon's environment).
    pub fn set_readiness(&mut self, mode: Readiness, notify: Option<NotifySocket>) {
        self.ready_mode = mode;
        self.notify = notify;
    }

    /// The fd the event loop polls for readiness news: the notify socket (always, so the fds
    /// datagrams carry are closed at once and STATUS stays current), or the pipe until it spoke.
    pub fn readiness_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match (&self.notify, &self.ready_pipe) {
            (Some(n), _) => Some(n.fd()),
            (None, Some(p)) => Some(p.fd()),
            (None, None) => None,
        }
    }

    /// Reads what the readiness fd has; true when the current start just became ready.
    pub fn on_readiness_input(&mut self) -> bool {
        if let Some(n) = &self.notify {
            let notice = n.read();
            if self.pid.is_none() {
                return false;
            }
            if notice.status.is_some() {
                self.status = notice.status;
            }
            if notice.ready && !self.ready {
                self.ready = true;
                return true;
            }
            return false;
        }
        let Some(p) = &self.ready_pipe else { return false };
        match p.read() {
            PipeNews::Nothing => false,
            PipeNews::Closed => {
                self.ready_pipe = None;
                false
            }
            PipeNews::Ready => {
                self.ready_pipe = None;
                let became = self.pid.is_some() && !self.ready;
                self.ready |= became;
                became
            }
        }
    }

    /// fdmon's own monitor reads the terminal: the workload runs in its background.
    pub fn keep_terminal(&mut self) {
        self.keep_tty = true;
    }

    /// As [`Workload::keep_terminal`], at run time: takes the foreground back from the
    /// workload's group if it has it.
    pub fn take_terminal(&mut self) {
        self.keep_tty = true;
        let stdin = std::io::stdin();
        if self.tty && process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| Some(pg) == self.last_pgid) {
            let _ = process::set_tty_foreground_pgrp(stdin.as_fd(), process::getpgrp());
        }
    }

    /// Every start from now on gets `fd` as its stdin, stdout and stderr.
    pub fn set_stdio(&mut self, fd: OwnedFd) {
        self.stdio = Some(fd);
    }

    /// Quick check before a reset promises a restart: the program (a path, or a name found in
    /// `PATH`) still exists. The exec itself may still fail later.
    pub fn check_program(&self) -> Result<(), WorkloadError> {
        let exec = |os: String| WorkloadError::Exec { program: self.program.clone(), os };
        let missing = || exec("No such file or directory".into());
        if self.program.contains('/') {
            return crate::sys::fs::metadata(&self.program).map(drop).map_err(|e| exec(os_text(&e)));
        }
        let path = crate::sys::process::env_get("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
        let found = std::env::split_paths(&path).any(|d| {
            let d = if d.as_os_str().is_empty() { std::path::PathBuf::from(".") } else { d };
            crate::sys::fs::metadata(d.join(&self.program)).is_ok_and(|m| m.is_file())
        });
        if found {
            Ok(())
        } else {
            Err(missing())
        }
    }

    /// With `-serial`: from now on every start runs on a new pseudo-terminal of `cols` x
    /// `rows` (its stdio and controlling terminal, in a new session); the master waits in
    /// [`Workload::take_console_master`].
    pub fn set_console_size(&mut self, cols: u16, rows: u16) {
        self.console_size = Some((cols, rows));
    }

    /// The pty master of the latest start, once.
    pub fn take_console_master(&mut self) -> Option<OwnedFd> {
        self.console_master.take()
    }

    /// Starts the child. The error names the program and the exec failure.
    pub fn start(&mut self) -> Result<Pid, WorkloadError> {
        self.ready = false;
        self.status = None;
        self.ready_pipe = None;
        if let Some(n) = &self.notify {
            // Whatever is queued came from a tree that is gone.
            n.discard();
        }
        let pipe = match self.ready_mode {
            Readiness::Fd(n) => Some((
                ReadyPipe::new()
                    .map_err(|e| WorkloadError::Start { program: self.program.clone(), os: os_text(&e) })?,
                n,
            )),
            _ => None,
        };
        let extra = pipe.as_ref().map(|((_, w), n)| (w.as_fd(), *n));
        // With a console (`-serial`): a new pty, the slave as stdio and controlling terminal of
        // a new session; fdmon's own terminal is never given to it.
        let pty = match self.console_size {
            Some((cols, rows)) => Some(
                crate::sys::pty::open(cols, rows)
                    .map_err(|e| WorkloadError::NoPty { program: self.program.clone(), os: os_text(&e) })?,
            ),
            None => None,
        };
        let stdin = std::io::stdin();
        let spawned = match &pty {
            Some(pty) => {
                let s = Some(pty.slave.as_fd());
                let spec = SpawnSpec {
                    argv: &self.argv,
                    keep_fds: &self.pass_fds,
                    foreground_tty: None,
                    stdio: [s, s, s],
                    session: s,
                };
                process::spawn_with(&spec, extra)
            }
            None => {
                // Hand the terminal over only when fdmon holds it (a background fdmon must not
                // take the terminal away from its shell) and does not read it itself (a stdio
                // monitor).
                let give_tty = self.tty
                    && !self.keep_tty
                    && process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| pg == process::getpgrp());
                let io = self.stdio.as_ref().map(|f| f.as_fd());
                let spec = SpawnSpec {
                    argv: &self.argv,
                    keep_fds: &self.pass_fds,
                    foreground_tty: if give_tty { Some(stdin.as_fd()) } else { None },
                    stdio: [io, io, io],
                    session: None,
                };
                process::spawn_with(&spec, extra)
            }
        };
        if let (Some((p, _)), Ok(_)) = (pipe, &spawned) {
            // The write end now lives in the workload only.
            self.ready_pipe = Some(p.0);
        }
        if let (Some(pty), Ok(_)) = (pty, &spawned) {
            self.console_master = Some(pty.master);
        }
        self.spawned(spawned)
    }

    fn spawned(&mut self, r: Result<Pid, SpawnError>) -> Result<Pid, WorkloadError> {
        match r {
            Ok(pid) => {
                self.ready = self.ready_mode == Readiness::Exec;
                self.pid = Some(pid);
                self.last_pgid = Some(pid);
                self.expect_term = false;
                Ok(pid)
            }
            Err(SpawnError::Fork(e)) => Err(WorkloadError::Start { program: self.program.clone(), os: os_text(&e) }),
            Err(SpawnError::Exec(e)) => Err(WorkloadError::Exec { program: self.program.clone(), os: os_text(&e) }),
        }
    }

    /// The workload stopped with `sig`. If that was a job-control stop of the terminal's
    /// foreground (Ctrl-Z, or a terminal read or write it was not allowed), fdmon passes it on
    /// to the user's shell as `sudo` does: it takes the terminal back, stops itself with the same
    /// signal, and once continued gives the terminal back (if it is in the foreground again) and
    /// continues the workload. Returns whether that happened (fdmon is running again).
    pub fn job_stop(&mut self, sig: i32) -> bool {
        if !self.tty || !matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) {
            return false;
        }
        let Some(pgid) = self.last_pgid.filter(|_| self.pid.is_some()) else { return false };
        let stdin = std::io::stdin();
        if !process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| pg == pgid) {
            return false;
        }
        let _ = process::set_tty_foreground_pgrp(stdin.as_fd(), process::getpgrp());
        crate::sys::signal::stop_self(sig);
        if process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| pg == process::getpgrp()) {
            let _ = process::set_tty_foreground_pgrp(stdin.as_fd(), pgid);
        }
        let _ = process::kill_group(pgid, libc::SIGCONT);
        true
    }

    /// Sends `sig` to the workload's process group.
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid {
            let _ = process::kill_group(pid, sig);
        }
    }

    /// Every process of the tree (see the module doc), parents before children.
    pub fn tree(&self) -> Vec<Pid> {
        self.tree_root.map(process::descendants).unwrap_or_default()
    }

    #[cfg(test)]
    pub fn without_tree(&mut self) {
        self.tree_root = None;
    }

    /// Sends `sig` to the workload's group and to every other process of the tree, also the
    /// ones that left the group or the session (`setsid`, an interactive shell's job groups).
    /// `SIGCONT` goes to children before their parents, everything else parents first, so a
    /// shell never sees its job stop or resume on its own.
    pub fn signal_tree(&self, sig: i32) {
        let mut tree = self.tree();
        if sig == libc::SIGCONT {
            tree.reverse();
        } else {
            self.signal(sig);
        }
        for pid in tree {
            let _ = process::kill(pid, sig);
        }
        if sig == libc::SIGCONT {
            self.signal(sig);
        }
    }

    /// `system_reset`: SIGKILL to the whole tree, without waiting. The old child is reaped
    /// later (`on_reaped`); [`Workload::reset_step`] tells when the tree is gone.
    pub fn begin_reset(&mut self) {
        self.ready = false;
        self.ready_pipe = None;
        self.signal_tree(libc::SIGKILL);
        if let Some(pid) = self.pid.take() {
            self.old_pid = Some(pid);
        }
        self.resetting = true;
    }

    /// While resetting: SIGKILL whatever of the old tree is still there (it may have forked
    /// while being killed); true once nothing is left, which ends the reset.
    pub fn reset_step(&mut self) -> bool {
        if !self.resetting {
            return false;
        }
        let left = self.tree();
        if left.is_empty() && self.old_pid.is_none() {
            self.resetting = false;
            return true;
        }
        for pid in left {
            let _ = process::kill(pid, libc::SIGKILL);
        }
        false
    }

    /// The exit sequence takes over: no restart, whatever a reset promised.
    pub fn cancel_reset(&mut self) {
        self.resetting = false;
        self.start_pending = false;
    }

    /// A reaped pid that was the old workload of a reset: records its end. False for any
    /// other pid.
    pub fn on_reaped_old(&mut self, pid: Pid, status: WaitStatus) -> bool {
        if self.old_pid != Some(pid) {
            return false;
        }
        self.old_pid = None;
        let current = self.pid.take();
        let (ready, pipe) = (self.ready, self.ready_pipe.take());
        self.exited(status);
        self.pid = current;
        (self.ready, self.ready_pipe) = (ready, pipe);
        true
    }

    /// Records the child's end and takes the terminal back.
    pub fn exited(&mut self, status: WaitStatus) {
        self.pid = None;
        self.ready = false;
        self.ready_pipe = None;
        self.last_exit = Some(status);
        if self.tty {
            // Take the terminal back only from our own workload's group.
            let stdin = std::io::stdin();
            if process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| Some(pg) == self.last_pgid) {
                let _ = process::set_tty_foreground_pgrp(stdin.as_fd(), process::getpgrp());
            }
        }
    }

    pub fn info(&self) -> WorkloadInfo<'_> {
        WorkloadInfo {
            program: &self.program,
            pid: self.pid,
            ready: self.ready && self.pid.is_some(),
            status: self.status.as_deref(),
            last_exit: self.last_exit,
        }
    }
}
