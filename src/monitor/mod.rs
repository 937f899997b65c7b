//! Monitors: a QMP (control) or HMP (readline) front end on one chardev. Per-monitor state
//! (named fds) outlives connections; per-connection state (negotiation, parser, line editor)
//! is reset on each connect. Input is consumed in small slices so output stays bounded.
#![forbid(unsafe_code)]

pub mod commands;
mod errors;
pub mod events;
pub mod hmp;
pub mod qmp;
pub mod schema;
pub mod session;

use std::os::fd::OwnedFd;

use crate::chardev::{Backend, OUT_HIGH};
use crate::error::QmpError;
use crate::json::{self, Value};
use crate::state::State;

/// How much input is handed to a parser at a time, so one read cannot produce unbounded output.
const INPUT_SLICE: usize = 512;
/// HMP echoes by redrawing the line after every byte (as QEMU does), so it gets smaller slices.
const HMP_INPUT_SLICE: usize = 16;

pub use session::{Mode, Monitor, Session, MAX_NAMED_FDS};

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
    state.frontend(m)
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
    if state.chardev_busy(slot) {
        return Err(QmpError::generic(format!("Device '{}' is in use", c.id)));
    }
    let attached = match c.backend {
        Backend::Server(_) | Backend::Connected(_) | Backend::Stream { .. } => c.conn().is_some(),
        // ringbuf, null and file take output at once (the greeting lands there).
        _ => true,
    };
    let m = state.add_monitor(slot, Monitor::new(id, mode));
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
///
/// The parser gets slices of the connection's input buffer itself, without a copy: the buffer
/// is taken out of the connection (which may be written to meanwhile) and put back with the
/// offset of what is left.
pub fn process_input(state: &mut State, m: usize) {
    let Some(mon) = state.monitor(m) else { return };
    // A monitor's index is its chardev's slot.
    let (mode, slot) = (mon.mode, m);
    let slice = match mode {
        Mode::Control { .. } => INPUT_SLICE,
        Mode::Readline => HMP_INPUT_SLICE,
    };
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    if !conn.has_input() {
        return;
    }
    let (buf, mut pos) = conn.take_input();
    while pos < buf.len() {
        if state.exit.is_some() {
            break;
        }
        let Some(conn) = state.monitor_conn(m) else { break };
        if conn.pending_out().len() >= OUT_HIGH || conn.closing {
            break;
        }
        let end = buf.len().min(pos + slice);
        let chunk = &buf[pos..end];
        pos = end;
        match mode {
            Mode::Control { .. } => qmp::feed(state, m, chunk),
            Mode::Readline => hmp::feed(state, m, chunk),
        }
    }
    // Back to the chardev it came from (a monitor removed meanwhile leaves the rest there, as
    // input nobody runs; slots are not reused within a round).
    if let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) {
        conn.restore_input(buf, pos);
    }
}

/// Takes the fd monitor `m` named `name` with `getfd` out of its names (the name is gone).
pub fn take_named_fd(state: &mut State, m: Option<usize>, name: &str) -> Option<OwnedFd> {
    let names = &mut state.monitor_mut(m?)?.named_fds;
    let i = names.iter().position(|(n, _)| n == name)?;
    Some(names.remove(i).1)
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
