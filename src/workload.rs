//! The supervised child: started in its own process group with only fds 0, 1, 2 (plus the ones
//! the user names with `-pass-fd`), signalled as a group, reaped by the main loop. Never
//! decides run states (see `state`).
#![forbid(unsafe_code)]

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::os_text;
use crate::json::{Object, Value};
use crate::sys::process::{self, Pid, SpawnError, SpawnSpec, WaitStatus};

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
    /// fdmon reads the terminal itself (a stdio chardev on it): the workload never gets it.
    keep_tty: bool,
}

impl Workload {
    pub fn new(argv: &[OsString], pass_fds: &[RawFd]) -> Result<Workload, String> {
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| {
                CString::new(a.as_bytes()).map_err(|_| "workload arguments must not contain NUL bytes".to_string())
            })
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
            keep_tty: false,
        })
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

    /// Starts the child. The error names the program and the exec failure.
    pub fn start(&mut self) -> Result<Pid, String> {
        let stdin = std::io::stdin();
        // Hand the terminal over only when fdmon holds it (a background fdmon must not take the
        // terminal away from its shell) and does not read it itself (a stdio monitor).
        let give_tty = self.tty
            && !self.keep_tty
            && process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| pg == process::getpgrp());
        let spec = SpawnSpec {
            argv: &self.argv,
            keep_fds: &self.pass_fds,
            foreground_tty: if give_tty { Some(stdin.as_fd()) } else { None },
        };
        match process::spawn(&spec) {
            Ok(pid) => {
                self.pid = Some(pid);
                self.last_pgid = Some(pid);
                self.expect_term = false;
                Ok(pid)
            }
            Err(SpawnError::Fork(e)) => Err(format!("cannot start workload '{}': {}", self.program, os_text(&e))),
            Err(SpawnError::Exec(e)) => Err(format!("cannot execute '{}': {}", self.program, os_text(&e))),
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

    /// Kills the whole group and waits for the child itself (a reset is not a shutdown).
    pub fn kill_and_reap(&mut self) {
        if let Some(pid) = self.pid {
            let _ = process::kill_group(pid, libc::SIGKILL);
            if let Ok(status) = process::wait_pid(pid) {
                self.exited(status);
            } else {
                self.pid = None;
            }
        }
    }

    /// Records the child's end and takes the terminal back.
    pub fn exited(&mut self, status: WaitStatus) {
        self.pid = None;
        self.last_exit = Some(status);
        if self.tty {
            // Take the terminal back only from our own workload's group.
            let stdin = std::io::stdin();
            if process::tty_foreground_pgrp(stdin.as_fd()).is_ok_and(|pg| Some(pg) == self.last_pgid) {
                let _ = process::set_tty_foreground_pgrp(stdin.as_fd(), process::getpgrp());
            }
        }
    }

    pub fn info(&self) -> Object {
        let mut o = Object::new().with("program", Value::from(self.program.as_str()));
        if let Some(pid) = self.pid {
            o.insert("pid", Value::Int(i64::from(pid)));
        }
        match self.last_exit {
            Some(WaitStatus::Exited(c)) => o.insert("exit-code", Value::Int(i64::from(c))),
            Some(WaitStatus::Signaled(s)) => o.insert("exit-signal", Value::Int(i64::from(s))),
            _ => {}
        }
        o
    }
}
