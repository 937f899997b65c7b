//! The one state every command operates on: chardevs, monitors, fd sets, the run state and the
//! workload. The run-state machine lives here as plain methods; it sends signals through
//! `workload` and events through the monitors, and never blocks on a peer.
#![forbid(unsafe_code)]

use std::time::Duration;

use crate::chardev::{Chardev, Conn};
use crate::error::QmpError;
use crate::fdset::FdSets;
use crate::json::{Object, Value};
use crate::monitor::Monitor;
use crate::sys::process::WaitStatus;
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Prelaunch,
    Running,
    Paused,
    Shutdown,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Prelaunch => "prelaunch",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Shutdown => "shutdown",
        }
    }
}

/// fdmon is on its way out: monitors flush, the workload is terminated, then exit with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRequest {
    pub code: i32,
}

pub struct State {
    /// Slots keep indices stable when chardevs are removed; order is creation order.
    pub chardevs: Vec<Option<Chardev>>,
    /// Ids of command-line chardevs: QEMU keeps their options, so HMP `chardev-add` reports
    /// them as `Duplicate ID` even after `chardev-remove`.
    pub cli_chardev_ids: Vec<String>,
    pub monitors: Vec<Monitor>,
    pub run_state: RunState,
    pub no_shutdown: bool,
    pub name: Option<String>,
    pub uuid: String,
    pub fdsets: FdSets,
    pub workload: Option<Workload>,
    pub exit: Option<ExitRequest>,
    pub shutdown_timeout: Duration,
}

pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

impl State {
    pub fn new() -> State {
        State {
            chardevs: Vec::new(),
            cli_chardev_ids: Vec::new(),
            monitors: Vec::new(),
            run_state: RunState::Running,
            no_shutdown: false,
            name: None,
            uuid: NIL_UUID.to_string(),
            fdsets: FdSets::default(),
            workload: None,
            exit: None,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    pub fn chardev_slot(&self, id: &str) -> Option<usize> {
        self.chardevs.iter().position(|c| c.as_ref().is_some_and(|c| c.id == id))
    }

    pub fn chardev(&self, slot: usize) -> Option<&Chardev> {
        self.chardevs.get(slot).and_then(Option::as_ref)
    }

    pub fn chardev_mut(&mut self, slot: usize) -> Option<&mut Chardev> {
        self.chardevs.get_mut(slot).and_then(Option::as_mut)
    }

    pub fn add_chardev(&mut self, c: Chardev) -> usize {
        self.chardevs.push(Some(c));
        self.chardevs.len() - 1
    }

    /// The live connection of monitor `m`, if a peer is attached.
    pub fn monitor_conn(&mut self, m: usize) -> Option<&mut Conn> {
        let slot = self.monitors.get(m)?.chardev;
        self.chardev_mut(slot)?.conn_mut()
    }

    /// Sends an event to every QMP client that finished capabilities negotiation.
    pub fn emit(&mut self, event: &str, data: Option<Object>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let ts = Object::new()
            .with("seconds", Value::Int(now.as_secs() as i64))
            .with("microseconds", Value::Int(i64::from(now.subsec_micros())));
        let mut ev = Object::new().with("timestamp", Value::Object(ts)).with("event", Value::from(event));
        if let Some(d) = data {
            ev.insert("data", Value::Object(d));
        }
        let ev = Value::Object(ev);
        for m in 0..self.monitors.len() {
            if self.monitors[m].wants_events() {
                crate::monitor::send_value(self, m, &ev);
            }
        }
    }

    fn emit_shutdown(&mut self, guest: bool, reason: &str) {
        let data = Object::new().with("guest", Value::Bool(guest)).with("reason", Value::from(reason));
        self.emit("SHUTDOWN", Some(data));
    }

    fn workload_alive(&self) -> bool {
        self.workload.as_ref().is_some_and(|w| w.pid.is_some())
    }

    pub fn vm_stop(&mut self) {
        if self.run_state != RunState::Running {
            return;
        }
        if let Some(w) = &self.workload {
            w.signal(libc::SIGSTOP);
        }
        self.run_state = RunState::Paused;
        self.emit("STOP", None);
    }

    pub fn vm_cont(&mut self) -> Result<(), QmpError> {
        match self.run_state {
            RunState::Running => Ok(()),
            RunState::Shutdown => Err(QmpError::generic("Resetting the Virtual Machine is required")),
            RunState::Prelaunch | RunState::Paused => {
                if let Some(w) = &mut self.workload {
                    if w.pid.is_none() {
                        w.start().map_err(QmpError::generic)?;
                    } else {
                        w.signal(libc::SIGCONT);
                    }
                }
                self.run_state = RunState::Running;
                self.emit("RESUME", None);
                Ok(())
            }
        }
    }

    pub fn vm_reset(&mut self) -> Result<(), QmpError> {
        let data = Object::new().with("guest", Value::Bool(false)).with("reason", Value::from("host-qmp-system-reset"));
        self.emit("RESET", Some(data));
        let was_running = self.run_state == RunState::Running;
        if let Some(w) = &mut self.workload {
            w.kill_and_reap();
            if was_running {
                if let Err(e) = w.start() {
                    self.run_state = RunState::Prelaunch;
                    return Err(QmpError::generic(e));
                }
            }
        }
        if !was_running {
            self.run_state = RunState::Prelaunch;
        }
        Ok(())
    }

    pub fn vm_powerdown(&mut self) {
        self.emit("POWERDOWN", None);
        let paused = self.run_state == RunState::Paused;
        if let Some(w) = &mut self.workload {
            if w.pid.is_some() {
                w.expect_term = true;
                w.signal(libc::SIGTERM);
                if paused {
                    w.signal(libc::SIGCONT);
                }
            }
        }
    }

    /// `quit` or a terminating signal: SHUTDOWN to every client, then the exit sequence.
    pub fn request_exit(&mut self, reason: &str) {
        if self.exit.is_some() {
            return;
        }
        self.emit_shutdown(false, reason);
        self.exit = Some(ExitRequest { code: 0 });
    }

    /// A child was reaped. Only the workload's own exit means anything; orphans that fdmon
    /// inherited (as PID 1) are just reaped.
    pub fn on_child_exit(&mut self, pid: i32, status: WaitStatus) {
        if matches!(status, WaitStatus::Stopped(_) | WaitStatus::Continued) {
            self.on_workload_stop_or_cont(pid, status);
            return;
        }
        let Some(w) = &mut self.workload else { return };
        if w.pid != Some(pid) {
            return;
        }
        let expected_term = w.expect_term;
        w.exited(status);
        if self.exit.is_some() {
            return;
        }
        let reason = match status {
            WaitStatus::Signaled(sig) if !(sig == libc::SIGTERM && expected_term) => "guest-panic",
            _ => "guest-shutdown",
        };
        self.emit_shutdown(true, reason);
        if self.no_shutdown {
            self.run_state = RunState::Shutdown;
            self.emit("STOP", None);
        } else {
            let code = match status {
                WaitStatus::Exited(c) => c,
                WaitStatus::Signaled(s) => 128 + s,
                _ => 0,
            };
            self.exit = Some(ExitRequest { code });
        }
    }

    /// The workload stopped or continued without fdmon's `stop`/`cont`. A Ctrl-Z of the
    /// workload's terminal suspends fdmon too (STOP, and RESUME once the shell continues it);
    /// any other stop (`kill -STOP`, a background terminal read) is `paused` with STOP until
    /// `cont` (or someone's SIGCONT: RESUME).
    fn on_workload_stop_or_cont(&mut self, pid: i32, status: WaitStatus) {
        if self.exit.is_some() {
            return;
        }
        let Some(w) = &mut self.workload else { return };
        if w.pid != Some(pid) {
            return;
        }
        match status {
            WaitStatus::Stopped(sig) => {
                if self.run_state != RunState::Running {
                    return;
                }
                self.run_state = RunState::Paused;
                self.emit("STOP", None);
                let resumed = self.workload.as_mut().is_some_and(|w| w.job_stop(sig));
                if resumed {
                    self.run_state = RunState::Running;
                    self.emit("RESUME", None);
                }
            }
            WaitStatus::Continued if self.run_state == RunState::Paused => {
                self.run_state = RunState::Running;
                self.emit("RESUME", None);
            }
            _ => {}
        }
    }

    pub fn workload_alive_for_exit(&self) -> bool {
        self.workload_alive()
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}
