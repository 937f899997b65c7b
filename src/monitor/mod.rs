//! Monitors: a QMP (control) or HMP (readline) front end on one chardev. Per-monitor state
//! (named fds) outlives connections; per-connection state (negotiation, parser, line editor)
//! is reset on each connect. Input is consumed in small slices so output stays bounded.
#![forbid(unsafe_code)]

#[cfg(test)]
mod alloc_tests;
pub mod commands;
mod errors;
pub mod events;
pub mod hmp;
pub mod qmp;
pub mod reply;
pub mod request;
pub mod schema;
pub mod session;

use std::os::fd::OwnedFd;

use crate::chardev::{Backend, OUT_HIGH};
use crate::error::QmpError;
use crate::json::Layout;
use crate::state::State;

/// How much input is handed to a parser at a time, so one read cannot produce unbounded output.
const INPUT_SLICE: usize = 512;
/// HMP echoes by redrawing the line after every byte (as QEMU does), so it gets smaller slices.
const HMP_INPUT_SLICE: usize = 16;

pub use session::{Mode, Monitor, Session, MAX_NAMED_FDS};

/// Writes `text` to monitor `m`'s peer, turning every `\n` into `\r\n` on the way.
pub fn send_text(state: &mut State, m: usize, text: &str) {
    send_bytes(state, m, text.as_bytes());
}

/// Writes raw bytes (HMP echo may hold half a UTF-8 character) to monitor `m`'s peer, with
/// `\r\n` line ends.
pub fn send_bytes(state: &mut State, m: usize, bytes: &[u8]) {
    let Some(slot) = m_chardev(state, m) else { return };
    output(state, Some(m), slot, |out| push_crlf(out, bytes));
}

/// Appends `bytes` to `out` with every `\n` as `\r\n`.
pub fn push_crlf(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Room the first output of a connection gets (a QMP greeting is about 130 bytes).
const FIRST_OUTPUT: usize = 256;

/// Runs `f` on the buffer monitor output for chardev `slot` goes into: its connection's
/// output buffer (appended to, never read), or for a ringbuf or file a scratch buffer (monitor
/// `m`'s, kept across writes) handed to `Chardev::write`. Output for a closing connection, a
/// chardev without a peer and null is dropped without calling `f`.
pub fn output(state: &mut State, m: Option<usize>, slot: usize, f: impl FnOnce(&mut Vec<u8>)) {
    output_with(state, m, slot, |out, _| f(out));
}

/// [`output`], with the state readable while writing (a reply that shows state values).
pub fn output_with(state: &mut State, m: Option<usize>, slot: usize, f: impl FnOnce(&mut Vec<u8>, &State)) {
    let Some(c) = state.chardev_mut(slot) else { return };
    if let Some(conn) = c.conn_mut() {
        if conn.closing {
            return;
        }
        // The buffer leaves the connection only while `f` appends to it.
        let mut out = std::mem::take(&mut conn.out);
        // The first output (a greeting, a reply) gets room for a typical message at once,
        // instead of growing from 8 bytes by doubling.
        if out.capacity() == 0 {
            out.reserve(FIRST_OUTPUT);
        }
        f(&mut out, state);
        if let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) {
            conn.out = out;
        }
        return;
    }
    if !matches!(c.backend, Backend::Ringbuf { .. } | Backend::File(_)) {
        return;
    }
    let mut scratch =
        m.and_then(|m| state.monitor_mut(m)).map(|mon| std::mem::take(&mut mon.scratch)).unwrap_or_default();
    scratch.clear();
    if scratch.capacity() == 0 {
        scratch.reserve(FIRST_OUTPUT);
    }
    f(&mut scratch, state);
    if let Some(c) = state.chardev_mut(slot) {
        c.write(&scratch);
    }
    if let Some(mon) = m.and_then(|m| state.monitor_mut(m)) {
        mon.scratch = scratch;
    }
}

/// The JSON layout of a monitor in `mode`.
pub fn layout(mode: Mode) -> Layout {
    match mode {
        Mode::Control { pretty: true } => Layout::PrettyCrlf,
        _ => Layout::Compact,
    }
}

fn m_chardev(state: &State, m: usize) -> Option<usize> {
    state.frontend(m)
}

/// A peer connected to monitor `m`'s chardev: fresh session, greeting or banner.
pub fn on_connect(state: &mut State, m: usize) {
    let Some(mon) = state.monitor_mut(m) else { return };
    match mon.mode {
        Mode::Control { .. } => {
            mon.session = Session::Qmp(qmp::QmpSession::new());
            qmp::send_greeting(state, m);
        }
        Mode::Readline => {
            mon.session = Session::Hmp(hmp::HmpSession::new());
            hmp::send_banner(state, m);
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
