//! Monitors: a QMP (control) or HMP (readline) front end on one chardev. Per-monitor state
//! (named fds) outlives connections; per-connection state (negotiation, parser, line editor)
//! is reset on each connect. Input is consumed in small slices so output stays bounded.
#![forbid(unsafe_code)]

pub mod commands;
pub mod hmp;
pub mod qmp;
pub mod request;
pub mod schema;

use std::os::fd::OwnedFd;

use crate::chardev::{Backend, OUT_HIGH};
use crate::error::QmpError;
use crate::json::{self, Value};
use crate::state::State;

/// How much input is handed to a parser at a time, so one read cannot produce unbounded output.
const INPUT_SLICE: usize = 512;
/// HMP echoes by redrawing the line after every byte (as QEMU does), so it gets smaller slices.
const HMP_INPUT_SLICE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Control { pretty: bool },
    Readline,
}

pub enum Session {
    /// No peer connected.
    Idle,
    Qmp(qmp::QmpSession),
    Hmp(hmp::HmpSession),
}

pub struct Monitor {
    /// `-mon id=`, the label of a legacy `-qmp`/`-monitor`, or `monitor-add`'s `id`; `None`
    /// for `-mon` without `id=` (QEMU gives those no id either), which cannot be removed.
    pub id: Option<String>,
    /// Slot of the chardev this monitor runs on.
    pub chardev: usize,
    pub mode: Mode,
    /// fds named with `getfd`: they belong to the monitor and survive reconnects.
    pub named_fds: Vec<(String, OwnedFd)>,
    pub session: Session,
}

impl Monitor {
    pub fn new(id: Option<String>, chardev: usize, mode: Mode) -> Monitor {
        Monitor { id, chardev, mode, named_fds: Vec::new(), session: Session::Idle }
    }

    pub fn wants_events(&self) -> bool {
        matches!(&self.session, Session::Qmp(s) if s.negotiated)
    }
}

/// Most names a monitor keeps with `getfd` (QEMU has no limit).
pub const MAX_NAMED_FDS: usize = 256;

/// Writes `text` to monitor `m`'s peer, turning every `\n` into `\r\n`.
pub fn send_text(state: &mut State, m: usize, text: &str) {
    write_crlf(state, m_chardev(state, m), text);
}

fn write_crlf(state: &mut State, slot: Option<usize>, text: &str) {
    let Some(c) = slot.and_then(|s| state.chardev_mut(s)) else { return };
    let mut bytes = Vec::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if b == b'\n' {
            bytes.push(b'\r');
        }
        bytes.push(b);
    }
    c.write(&bytes);
}

/// Writes one JSON message to a QMP monitor, compact or pretty as configured.
pub fn send_value(state: &mut State, m: usize, v: &Value) {
    let Some(mode) = state.monitor(m).map(|mon| mon.mode) else { return };
    send_value_to(state, m_chardev(state, m), mode, v);
}

fn m_chardev(state: &State, m: usize) -> Option<usize> {
    state.monitor(m).map(|mon| mon.chardev)
}

/// Writes one JSON message to chardev `slot` as a monitor in `mode` would (also after that
/// monitor was removed: the reply to its own `monitor-remove` still goes out).
pub fn send_value_to(state: &mut State, slot: Option<usize>, mode: Mode, v: &Value) {
    let mut text = match mode {
        Mode::Control { pretty: true } => json::to_string_pretty(v),
        _ => json::to_string(v),
    };
    text.push('\n');
    write_crlf(state, slot, &text);
}

/// A peer connected to monitor `m`'s chardev: fresh session, greeting or banner.
pub fn on_connect(state: &mut State, m: usize) {
    let Some(mon) = state.monitor_mut(m) else { return };
    match mon.mode {
        Mode::Control { .. } => {
            mon.session = Session::Qmp(qmp::QmpSession::new());
            let g = qmp::greeting();
            send_value(state, m, &g);
        }
        Mode::Readline => {
            mon.session = Session::Hmp(hmp::HmpSession::new());
            send_text(state, m, &hmp::banner());
            send_text(state, m, hmp::PROMPT);
        }
    }
}

/// The peer left: fd sets are cleaned up as QEMU 7.2 does.
pub fn on_disconnect(state: &mut State, m: usize) {
    let Some(mon) = state.monitor_mut(m) else { return };
    mon.session = Session::Idle;
    fdsets_after_close(state);
}

/// QEMU cleans fd sets up on every monitor close: marked fds go while running, and all of
/// them when that was the last client.
fn fdsets_after_close(state: &mut State) {
    let no_clients = state.no_monitor_clients();
    let running = state.run_state == crate::state::RunState::Running;
    state.fdsets.cleanup(None, running, no_clients);
}

/// Creates monitor `id` in `mode` on chardev `slot` (start-up's `-mon` and `monitor-add`
/// alike) and greets at once when something can take output: a connected socket, stdio, a
/// pipe, or a ringbuf/null/file. A listener greets each client when it is accepted, and a
/// reconnecting client when it connects (the event loop calls [`on_connect`]).
pub fn attach(state: &mut State, id: Option<String>, slot: usize, mode: Mode) -> Result<usize, QmpError> {
    let Some(c) = state.chardev(slot) else { return Err(QmpError::generic("chardev not found")) };
    if c.is_busy() {
        return Err(QmpError::generic(format!("Device '{}' is in use", c.id)));
    }
    let attached = match c.backend {
        Backend::Server(_) | Backend::Connected(_) | Backend::Stream { .. } => c.conn().is_some(),
        // ringbuf, null and file take output at once (the greeting lands there).
        _ => true,
    };
    let m = state.add_monitor(Monitor::new(id, slot, mode));
    if attached {
        on_connect(state, m);
    }
    Ok(m)
}

/// Removes monitor `m`: it stops reading its chardev at once (input already buffered is not
/// run), its `getfd` names close, and fd sets are cleaned up as for a closing monitor. The
/// chardev and its connection stay open, unattached: a later `monitor-add` on it greets the
/// same peer, `chardev-remove` closes it.
pub fn detach(state: &mut State, m: usize) {
    let Some(mon) = state.remove_monitor(m) else { return };
    let had_client = !matches!(mon.session, Session::Idle);
    drop(mon);
    if had_client {
        fdsets_after_close(state);
    }
}

/// Consumes buffered input of monitor `m` while its output is below the high-water mark.
pub fn process_input(state: &mut State, m: usize) {
    loop {
        if state.exit.is_some() {
            return;
        }
        let Some(conn) = state.monitor_conn(m) else { return };
        if conn.inbuf.is_empty() || conn.out.len() >= OUT_HIGH || conn.closing {
            return;
        }
        let Some(mode) = state.monitor(m).map(|mon| mon.mode) else { return };
        let slice = match mode {
            Mode::Control { .. } => INPUT_SLICE,
            Mode::Readline => HMP_INPUT_SLICE,
        };
        let Some(conn) = state.monitor_conn(m) else { return };
        let n = conn.inbuf.len().min(slice);
        let chunk: Vec<u8> = conn.inbuf.drain(..n).collect();
        match mode {
            Mode::Control { .. } => qmp::feed(state, m, &chunk),
            Mode::Readline => hmp::feed(state, m, &chunk),
        }
    }
}

/// Takes the first fd received on monitor `m`'s connection and closes the rest, as QEMU does
/// for `getfd` and `add-fd`.
pub fn take_received_fd(state: &mut State, m: Option<usize>) -> Option<OwnedFd> {
    let conn = state.monitor_conn(m?)?;
    let mut fds = std::mem::take(&mut conn.pending_fds);
    if fds.is_empty() {
        None
    } else {
        Some(fds.swap_remove(0))
    }
}
