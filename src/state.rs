//! The one state every command operates on: chardevs, monitors, fd sets, the run state and the
//! workload. The run-state machine lives here as plain methods; it sends signals through
//! `workload`, records events in an outbox (the monitor layer delivers them), and never
//! blocks on a peer. Nothing here calls into `monitor`.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::time::Duration;

use crate::chardev::{Chardev, Conn};
use crate::error::QmpError;
use crate::event::{Event, Outbox};
use crate::fdset::FdSets;
use crate::monitor::session::Monitor;
use crate::sys::process::WaitStatus;
use crate::workload::{Workload, WorkloadError};

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
    /// largest number of chardevs alive at once. Listing order is `chardev_order`. Change a
    /// chardev (or write to its connection) only through [`State::chardev_mut`] or
    /// [`State::monitor_conn`]: they put it on the loop's work list, which is what gets its
    /// output written and its poll interest updated.
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
    /// The monitor on each chardev, by chardev slot: monitor `m` runs on chardev slot `m`.
    /// This is the one record of which monitor uses which chardev (a chardev has at most one
    /// frontend). Every lookup goes through [`State::monitor`]/[`State::monitor_mut`] and
    /// tolerates an empty slot.
    pub monitors: Vec<Option<Monitor>>,
    /// The event loop's work list: chardev slots borrowed mutably (input read, output
    /// written, a monitor attached or detached, ...) since the loop last serviced them. Every
    /// mutable access goes through [`State::chardev_mut`] (or [`State::monitor_conn`]), which
    /// adds the slot once; the loop then runs its input, writes its output at once and updates
    /// its poll interest, without walking every chardev.
    work: Vec<usize>,
    /// `in_work[slot]`: the slot is on `work`.
    in_work: Vec<bool>,
    /// A chardev was added or removed: the loop rebuilds its poll set before it polls again.
    pub sources_changed: bool,
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
    /// Who waits for fdmon to be ready (see [`ReadyReport`]); `None` once told.
    pub ready_report: Option<ReadyReport>,
    /// Events not yet sent (`monitor::events::deliver` sends them).
    pub events: Outbox,
}

/// Whom fdmon tells once it is ready: the original process of `-daemonize` (a status byte:
/// 0 ready, 1 failed) and a service manager's `NOTIFY_SOCKET` (`READY=1`).
#[derive(Default)]
pub struct ReadyReport {
    pub daemon: Option<std::os::fd::OwnedFd>,
    pub supervisor: Option<std::ffi::OsString>,
}

/// [`State::touch`] for a slot beyond the flags so far: grows them to the chardev table.
#[cold]
fn mark_slow(in_work: &mut Vec<bool>, work: &mut Vec<usize>, slot: usize, chardevs: usize) {
    if slot < chardevs {
        in_work.resize(chardevs, false);
        in_work[slot] = true;
        work.push(slot);
    }
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
            work: Vec::new(),
            in_work: Vec::new(),
            sources_changed: true,
            run_state: RunState::Running,
            no_shutdown: false,
            name: None,
            uuid: NIL_UUID.to_string(),
            fdsets: FdSets::default(),
            workload: None,
            console: None,
            exit: None,
            shutdown_timeout: Duration::from_secs(5),
            ready_report: None,
            events: Outbox::default(),
        }
    }

    /// The slot of chardev `id`: one probe of the id table (`chardev_order`), no scan.
    pub fn chardev_slot(&self, id: &str) -> Option<usize> {
        let slot = self.chardev_order.slot(id)?;
        self.chardev(slot).is_some_and(|c| c.id == id).then_some(slot)
    }

    pub fn chardev(&self, slot: usize) -> Option<&Chardev> {
        self.chardevs.get(slot).and_then(Option::as_ref)
    }

    /// The chardev in `slot`, for changing it: the slot goes on the loop's work list.
    #[inline]
    pub fn chardev_mut(&mut self, slot: usize) -> Option<&mut Chardev> {
        let n = self.chardevs.len();
        let c = self.chardevs.get_mut(slot)?.as_mut()?;
        match self.in_work.get_mut(slot) {
            Some(true) => {}
            Some(flag) => {
                *flag = true;
                self.work.push(slot);
            }
            None => mark_slow(&mut self.in_work, &mut self.work, slot, n),
        }
        Some(c)
    }

    /// Puts `slot` on the loop's work list (once).
    #[inline]
    pub fn touch(&mut self, slot: usize) {
        match self.in_work.get_mut(slot) {
            Some(true) => {}
            Some(flag) => {
                *flag = true;
                self.work.push(slot);
            }
            None => {
                let n = self.chardevs.len();
                mark_slow(&mut self.in_work, &mut self.work, slot, n)
            }
        }
    }

    /// The work list's length, and its entry `i` (the list may grow while it is worked on).
    pub fn work_len(&self) -> usize {
        self.work.len()
    }

    pub fn work_at(&self, i: usize) -> Option<usize> {
        self.work.get(i).copied()
    }

    /// Empties the work list (keeping its capacity).
    pub fn work_done(&mut self) {
        for &slot in &self.work {
            if let Some(f) = self.in_work.get_mut(slot) {
                *f = false;
            }
        }
        self.work.clear();
    }

    /// Stores a new chardev in a free slot (or a new one) and returns the slot. O(1).
    pub fn add_chardev(&mut self, c: Chardev) -> usize {
        // Only slots nothing refers to are on the free list: `remove_chardev` is called for
        // chardevs without a frontend, so no monitor sits on a free slot.
        self.sources_changed = true;
        while let Some(slot) = self.free_slots.pop() {
            if let Some(entry @ None) = self.chardevs.get_mut(slot) {
                self.chardev_order.insert(&c.id, slot);
                *entry = Some(c);
                self.touch(slot);
                return slot;
            }
        }
        let slot = self.chardevs.len();
        self.chardev_order.insert(&c.id, slot);
        self.chardevs.push(Some(c));
        self.touch(slot);
        slot
    }

    /// Closes the chardev in `slot` (its fds close, a socket path it created is removed) and
    /// frees the slot for reuse. The caller checks that no monitor uses it.
    pub fn remove_chardev(&mut self, slot: usize) {
        if let Some(entry) = self.chardevs.get_mut(slot) {
            if let Some(c) = entry.take() {
                self.chardev_order.remove(&c.id);
                self.freed_this_round.push(slot);
                self.sources_changed = true;
            }
        }
    }

    /// Makes the slots freed so far reusable. The event loop calls this right before it
    /// builds a new poll set from the table, so no stale poll result names a reused slot.
    pub fn recycle_freed_slots(&mut self) {
        if !self.freed_this_round.is_empty() {
            self.free_slots.append(&mut self.freed_this_round);
        }
    }

    /// The monitor on chardev `slot`, if any (its index is `slot`).
    pub fn frontend(&self, slot: usize) -> Option<usize> {
        self.monitor(slot).map(|_| slot)
    }

    /// Whether a frontend uses chardev `slot`: a monitor or the console (it cannot be
    /// removed, and cannot take another frontend).
    pub fn chardev_busy(&self, slot: usize) -> bool {
        self.monitor(slot).is_some() || self.chardev(slot).is_some_and(|c| c.console)
    }

    pub fn monitor(&self, m: usize) -> Option<&Monitor> {
        self.monitors.get(m).and_then(Option::as_ref)
    }

    pub fn monitor_mut(&mut self, m: usize) -> Option<&mut Monitor> {
        self.monitors.get_mut(m).and_then(Option::as_mut)
    }

    /// The slot of the monitor named `id`.
    pub fn monitor_slot(&self, id: &str) -> Option<usize> {
        self.monitors.iter().position(|m| m.as_ref().is_some_and(|m| m.id.as_deref() == Some(id)))
    }

    /// Whether no monitor has a peer attached (QEMU's "last client left" for fd sets).
    pub fn no_monitor_clients(&self) -> bool {
        self.monitors.iter().flatten().all(|m| !m.has_client())
    }

    /// Makes `mon` the frontend of chardev `slot` and returns its index (`slot`). The caller
    /// has checked that the chardev exists and has no frontend. O(1).
    pub fn add_monitor(&mut self, slot: usize, mon: Monitor) -> usize {
        if self.monitors.len() <= slot {
            self.monitors.resize_with(slot + 1, || None);
        }
        self.monitors[slot] = Some(mon);
        slot
    }

    /// Detaches monitor `m` from its chardev and drops it (its `getfd` names close). The
    /// chardev and its connection stay, free for another frontend.
    pub fn remove_monitor(&mut self, m: usize) -> Option<Monitor> {
        self.monitors.get_mut(m)?.take()
    }

    /// Whether a live chardev uses fdmon's stdio (QEMU allows one at a time).
    pub fn stdio_in_use(&self) -> bool {
        self.chardevs.iter().flatten().any(|c| c.stdio)
    }

    /// The live connection of monitor `m`, if a peer is attached.
    pub fn monitor_conn(&mut self, m: usize) -> Option<&mut Conn> {
        self.monitor(m)?;
        self.chardev_mut(m)?.conn_mut()
    }

    /// Records an event, stamped now, for every QMP client that has finished capabilities
    /// negotiation when the monitor layer delivers it (after the command running now, or at
    /// the end of this loop step).
    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    fn emit_shutdown(&mut self, guest: bool, reason: &'static str) {
        self.emit(Event::Shutdown { guest, reason });
    }

    /// Starts the workload; once it is ready (at once without `-ready`: then the caller
    /// sends its own events first and calls [`State::announce_ready`]), WORKLOAD_READY.
    fn start_workload_quietly(&mut self) -> Result<(), WorkloadError> {
        match &mut self.workload {
            Some(w) => w.start().map(drop),
            None => Ok(()),
        }
    }

    /// Starts the workload, and WORKLOAD_READY at once if it is ready at once.
    pub fn start_workload(&mut self) -> Result<(), WorkloadError> {
        self.start_workload_quietly()?;
        self.announce_ready();
        Ok(())
    }

    /// WORKLOAD_READY for a start that was ready as soon as it exec'd.
    fn announce_ready(&mut self) {
        if self.workload.as_ref().is_some_and(|w| w.ready) {
            self.workload_ready();
        }
    }

    /// The readiness fd has news (see `workload`).
    pub fn on_readiness_input(&mut self) {
        if self.workload.as_mut().is_some_and(|w| w.on_readiness_input()) {
            self.workload_ready();
        }
    }

    fn workload_ready(&mut self) {
        let Some(pid) = self.workload.as_ref().and_then(|w| w.pid) else { return };
        self.emit(Event::WorkloadReady { pid });
        self.report_ready();
    }

    /// Tells whoever waits (see [`ReadyReport`]) that fdmon is ready; a daemon's stdio becomes
    /// `/dev/null` then. Once.
    pub fn report_ready(&mut self) {
        let Some(r) = self.ready_report.take() else { return };
        if let Some(w) = r.daemon {
            let _ = crate::sys::fd::write(w.as_fd(), &[0]);
            drop(w);
            daemon_stdio_to_null();
        }
        if let Some(s) = r.supervisor {
            crate::notify::tell_supervisor(&s);
        }
    }

    /// The workload ended before it was ready: a waiting `-daemonize` caller gets `text` on
    /// its stderr and a failure status. A service manager is not told (fdmon's own exit or a
    /// later ready start tells it).
    fn report_not_ready(&mut self, text: &str) {
        let Some(w) = self.ready_report.as_mut().and_then(|r| r.daemon.take()) else { return };
        eprintln!("{text}");
        let _ = crate::sys::fd::write(w.as_fd(), &[1]);
        drop(w);
        daemon_stdio_to_null();
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
        self.emit(Event::Stop);
    }

    pub fn vm_cont(&mut self) -> Result<(), QmpError> {
        match self.run_state {
            RunState::Running => Ok(()),
            RunState::Shutdown => Err(QmpError::generic("Resetting the Virtual Machine is required")),
            RunState::Prelaunch | RunState::Paused => {
                let mut start = false;
                if let Some(w) = &mut self.workload {
                    if w.resetting {
                        // The old tree is still dying: the new workload starts once it is gone.
                        w.start_pending = true;
                    } else if w.pid.is_none() {
                        start = true;
                    } else {
                        w.signal_tree(libc::SIGCONT);
                    }
                }
                if start {
                    self.start_workload_quietly()?;
                }
                self.run_state = RunState::Running;
                self.emit(Event::Resume);
                if start {
                    self.announce_ready();
                }
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
        self.emit(Event::Reset { guest: false, reason: "host-qmp-system-reset" });
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
                    return Err(e.into());
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
        if let Err(e) = self.start_workload() {
            // The reset already answered: report on stderr and wait for `cont`.
            eprintln!("fdmon: {e}");
            self.report_not_ready("fdmon: the workload failed before it was ready");
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
        self.emit(Event::Powerdown);
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
    pub fn request_exit(&mut self, reason: &'static str) {
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
        let was_ready = w.ready;
        w.exited(status);
        if !was_ready && self.exit.is_none() {
            let how = match status {
                WaitStatus::Exited(c) => format!("exited with status {c}"),
                WaitStatus::Signaled(s) => format!("was killed by signal {s}"),
                _ => "ended".to_string(),
            };
            self.report_not_ready(&format!("fdmon: the workload {how} before it was ready"));
        }
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
            self.emit(Event::Stop);
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
                self.emit(Event::Stop);
                let resumed = self.workload.as_mut().is_some_and(|w| w.job_stop(sig));
                if resumed {
                    self.run_state = RunState::Running;
                    self.emit(Event::Resume);
                }
            }
            WaitStatus::Continued if self.run_state == RunState::Paused => {
                self.run_state = RunState::Running;
                self.emit(Event::Resume);
            }
            _ => {}
        }
    }
}

/// A daemon's fds 0, 1 and 2 become `/dev/null` once its caller has its answer.
fn daemon_stdio_to_null() {
    if let Ok(null) = crate::sys::fd::open_devnull() {
        for target in 0..3 {
            let _ = crate::sys::fd::dup2_to(null.as_fd(), target);
        }
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
        let s = crate::sys::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s[s.rfind(')')? + 2..].chars().next()
    }

    fn ringbuf(id: &str) -> Chardev {
        let spec = crate::chardev::spec::ChardevSpec {
            id: id.into(),
            backend: crate::chardev::spec::BackendSpec::Ringbuf { size: 64, memory_alias: false },
        };
        crate::chardev::open::open(&spec, None).unwrap()
    }

    /// A monitor's index is its chardev's slot: removal leaves the others alone, and frees
    /// the chardev for another frontend.
    #[test]
    fn a_monitor_sits_on_its_chardev_slot() {
        use crate::monitor::session::{Mode, Monitor};
        let mut st = State::new();
        let (a, b) = (st.add_chardev(ringbuf("a")), st.add_chardev(ringbuf("b")));
        let mb = st.add_monitor(b, Monitor::new(Some("mb".into()), Mode::Readline));
        assert_eq!(mb, b);
        assert_eq!((st.frontend(a), st.frontend(b)), (None, Some(mb)));
        assert!(st.chardev_busy(b) && !st.chardev_busy(a));
        let ma = st.add_monitor(a, Monitor::new(Some("ma".into()), Mode::Readline));
        assert!(st.remove_monitor(ma).is_some());
        assert!(st.remove_monitor(ma).is_none(), "removed once");
        assert_eq!(st.frontend(a), None);
        assert_eq!(st.monitor_slot("mb"), Some(mb));
        assert_eq!(st.add_monitor(a, Monitor::new(None, Mode::Readline)), a);
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
