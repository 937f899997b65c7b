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
    /// Slots keep indices stable when chardevs are removed (monitors refer to chardevs by
    /// slot). A freed slot is reused by the next chardev, so the table never outgrows the
    /// largest number of chardevs alive at once. Listing order is `chardev_order`.
    pub chardevs: Vec<Option<Chardev>>,
    /// The ids in QEMU's listing order (a model of its chardev hash table).
    pub chardev_order: crate::chardev::order::ChardevOrder,
    /// Empty slots of `chardevs`, reused before the table grows.
    free_slots: Vec<usize>,
    /// Slots emptied since the event loop last built its poll set: poll results of this
    /// round may still name them, so they are reused only from the next round on.
    freed_this_round: Vec<usize>,
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
    /// The workload's console (`-serial`), on one chardev.
    pub console: Option<crate::console::Console>,
    pub exit: Option<ExitRequest>,
    pub shutdown_timeout: Duration,
}

pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

impl State {
    pub fn new() -> State {
        State {
            chardevs: Vec::new(),
            chardev_order: Default::default(),
            free_slots: Vec::new(),
            freed_this_round: Vec::new(),
            cli_chardev_ids: Vec::new(),
            monitors: Vec::new(),
            run_state: RunState::Running,
            no_shutdown: false,
            name: None,
            uuid: NIL_UUID.to_string(),
            fdsets: FdSets::default(),
            workload: None,
            console: None,
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

    /// Stores a new chardev in a free slot (or a new one) and returns the slot. O(1).
    pub fn add_chardev(&mut self, c: Chardev) -> usize {
        self.chardev_order.insert(&c.id);
        // Only slots nothing refers to are on the free list: `remove_chardev` is called for
        // chardevs without a frontend, and monitors are the only holders of a slot number.
        while let Some(slot) = self.free_slots.pop() {
            if let Some(entry @ None) = self.chardevs.get_mut(slot) {
                *entry = Some(c);
                return slot;
            }
        }
        self.chardevs.push(Some(c));
        self.chardevs.len() - 1
    }

    /// Closes the chardev in `slot` (its fds close, a socket path it created is removed) and
    /// frees the slot for reuse. The caller checks that no monitor uses it.
    pub fn remove_chardev(&mut self, slot: usize) {
        if let Some(entry) = self.chardevs.get_mut(slot) {
            if let Some(c) = entry.take() {
                self.chardev_order.remove(&c.id);
                self.freed_this_round.push(slot);
            }
        }
    }

    /// Makes the slots freed so far reusable. The event loop calls this right before it
    /// builds a new poll set from the table, so no stale poll result names a reused slot.
    pub fn recycle_freed_slots(&mut self) {
        self.free_slots.append(&mut self.freed_this_round);
    }

    /// Whether a live chardev uses fdmon's stdio (QEMU allows one at a time).
    pub fn stdio_in_use(&self) -> bool {
        self.chardevs.iter().flatten().any(|c| c.stdio)
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

    /// `stop`: SIGSTOP to the whole tree (see `workload`), so also a job that an interactive
    /// workload runs in a process group of its own freezes.
    pub fn vm_stop(&mut self) {
        if self.run_state != RunState::Running {
            return;
        }
        if let Some(w) = &mut self.workload {
            w.signal_tree(libc::SIGSTOP);
            // A reset's restart waits for the next `cont`.
            w.start_pending = false;
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
                    if w.resetting {
                        // The old tree is still dying: the new workload starts once it is gone.
                        w.start_pending = true;
                    } else if w.pid.is_none() {
                        w.start().map_err(QmpError::generic)?;
                    } else {
                        w.signal_tree(libc::SIGCONT);
                    }
                }
                self.run_state = RunState::Running;
                self.emit("RESUME", None);
                Ok(())
            }
        }
    }

    /// `system_reset`: RESET, SIGKILL to the whole tree, and return at once; the loop keeps
    /// serving while the old processes die. The new workload (if the run state was `running`)
    /// starts when the last of them has been reaped ([`State::after_reap`]). Meanwhile
    /// `query-status` shows the state after the reset (`running`, or `prelaunch` from any
    /// other state) and `query-workload` shows no pid; another reset kills again and keeps
    /// one pending restart; `quit` or a signal cancels the restart and ends what is left.
    pub fn vm_reset(&mut self) -> Result<(), QmpError> {
        let data = Object::new().with("guest", Value::Bool(false)).with("reason", Value::from("host-qmp-system-reset"));
        self.emit("RESET", Some(data));
        let was_running = self.run_state == RunState::Running;
        if !was_running {
            self.run_state = RunState::Prelaunch;
        }
        if let Some(w) = &mut self.workload {
            w.begin_reset();
            if was_running {
                if let Err(e) = w.check_program() {
                    w.start_pending = false;
                    self.run_state = RunState::Prelaunch;
                    self.after_reap();
                    return Err(QmpError::generic(e));
                }
                w.start_pending = true;
            }
        }
        self.after_reap();
        Ok(())
    }

    /// Called after every round of reaping (and periodically while a reset is in progress):
    /// finishes a reset once the old tree is gone, starting the new workload if one is due.
    pub fn after_reap(&mut self) {
        let Some(w) = &mut self.workload else { return };
        if !w.reset_step() || !w.start_pending {
            return;
        }
        w.start_pending = false;
        if let Err(e) = w.start() {
            // The reset already answered: report on stderr and wait for `cont`.
            eprintln!("fdmon: {e}");
            self.run_state = RunState::Prelaunch;
        }
    }

    /// Whether a reset is waiting for the old tree to die.
    pub fn resetting(&self) -> bool {
        self.workload.as_ref().is_some_and(|w| w.resetting)
    }

    /// SIGUSR1, SIGUSR2 and SIGWINCH sent to fdmon go on to the workload's process group.
    pub fn forward_signal(&mut self, sig: i32) {
        if let Some(w) = &self.workload {
            w.signal(sig);
        }
    }

    pub fn vm_powerdown(&mut self) {
        self.emit("POWERDOWN", None);
        let paused = self.run_state == RunState::Paused;
        if let Some(w) = &mut self.workload {
            if w.pid.is_some() {
                w.expect_term = true;
                w.signal(libc::SIGTERM);
                if paused {
                    w.signal_tree(libc::SIGCONT);
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

    /// fdmon cannot go on (its `poll()` fails for good): SHUTDOWN `host-error` and the exit
    /// sequence, exit status 1.
    pub fn fatal_error(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.emit_shutdown(false, "host-error");
        self.exit = Some(ExitRequest { code: 1 });
    }

    /// A child was reaped. Only the workload's own exit means anything; orphans that fdmon
    /// inherited (as PID 1) are just reaped.
    pub fn on_child_exit(&mut self, pid: i32, status: WaitStatus) {
        if matches!(status, WaitStatus::Stopped(_) | WaitStatus::Continued) {
            self.on_workload_stop_or_cont(pid, status);
            return;
        }
        let Some(w) = &mut self.workload else { return };
        if w.on_reaped_old(pid, status) {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process;

    fn proc_state(pid: i32) -> Option<char> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s[s.rfind(')')? + 2..].chars().next()
    }

    /// `system_reset` does not wait for the old workload: it returns while the old process
    /// is still there (a zombie nobody reaped yet), and the new one starts after the reap.
    #[test]
    fn reset_returns_before_the_old_workload_is_reaped() {
        let _g = crate::sys::testutil::children_lock();
        let mut st = State::new();
        let mut w = Workload::new(&["sleep".into(), "300".into()], &[]).unwrap();
        w.without_tree();
        let old = w.start().unwrap();
        st.workload = Some(w);
        st.vm_reset().unwrap();
        assert!(st.resetting());
        assert_eq!(st.run_state, RunState::Running);
        assert_eq!(st.workload.as_ref().unwrap().pid, None, "no pid while the old one dies");
        // Killed but not reaped: still in /proc.
        assert!(proc_state(old).is_some(), "vm_reset must not reap the old workload");
        // A second reset in the window keeps one pending restart.
        st.vm_reset().unwrap();
        st.after_reap();
        assert_eq!(st.workload.as_ref().unwrap().pid, None);
        assert_eq!(process::wait_pid(old).unwrap(), WaitStatus::Signaled(libc::SIGKILL));
        st.on_child_exit(old, WaitStatus::Signaled(libc::SIGKILL));
        st.after_reap();
        assert!(!st.resetting());
        let new = st.workload.as_ref().unwrap().pid.expect("new workload started after the reap");
        assert_ne!(new, old);
        let _ = process::kill(new, libc::SIGKILL);
        let _ = process::wait_pid(new);
    }
}
