//! Monitors: a QMP (control) or HMP (readline) front end on one chardev. Per-monitor state
//! (named fds) outlives connections; per-connection state (negotiation, parser, line editor)
//! is reset on each connect. Input is consumed in small slices so output stays bounded.
#![forbid(unsafe_code)]

pub mod commands;
pub mod hmp;
pub mod qmp;
pub mod schema;

use std::os::fd::OwnedFd;

use crate::chardev::OUT_HIGH;
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
    /// Slot of the chardev this monitor runs on.
    pub chardev: usize,
    pub mode: Mode,
    /// fds named with `getfd`: they belong to the monitor and survive reconnects.
    pub named_fds: Vec<(String, OwnedFd)>,
    pub session: Session,
}

impl Monitor {
    pub fn new(chardev: usize, mode: Mode) -> Monitor {
        Monitor { chardev, mode, named_fds: Vec::new(), session: Session::Idle }
    }

    pub fn wants_events(&self) -> bool {
        matches!(&self.session, Session::Qmp(s) if s.negotiated)
    }
}

/// Most names a monitor keeps with `getfd` (QEMU has no limit).
pub const MAX_NAMED_FDS: usize = 256;

/// Writes `text` to monitor `m`'s peer, turning every `\n` into `\r\n`.
pub fn send_text(state: &mut State, m: usize, text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if b == b'\n' {
            bytes.push(b'\r');
        }
        bytes.push(b);
    }
    let slot = state.monitors[m].chardev;
    if let Some(c) = state.chardev_mut(slot) {
        c.write(&bytes);
    }
}

/// Writes one JSON message to a QMP monitor, compact or pretty as configured.
pub fn send_value(state: &mut State, m: usize, v: &Value) {
    let mut text = match state.monitors[m].mode {
        Mode::Control { pretty: true } => json::to_string_pretty(v),
        _ => json::to_string(v),
    };
    text.push('\n');
    send_text(state, m, &text);
}

/// A peer connected to monitor `m`'s chardev: fresh session, greeting or banner.
pub fn on_connect(state: &mut State, m: usize) {
    match state.monitors[m].mode {
        Mode::Control { .. } => {
            state.monitors[m].session = Session::Qmp(qmp::QmpSession::new());
            let g = qmp::greeting();
            send_value(state, m, &g);
        }
        Mode::Readline => {
            state.monitors[m].session = Session::Hmp(hmp::HmpSession::new());
            send_text(state, m, &hmp::banner());
            send_text(state, m, hmp::PROMPT);
        }
    }
}

/// The peer left: fd sets are cleaned up as QEMU 7.2 does.
pub fn on_disconnect(state: &mut State, m: usize) {
    state.monitors[m].session = Session::Idle;
    // QEMU cleans fd sets up on every monitor close: marked fds go while running, and all of
    // them when that was the last client.
    let no_clients = state.monitors.iter().all(|mon| matches!(mon.session, Session::Idle));
    let running = state.run_state == crate::state::RunState::Running;
    state.fdsets.cleanup(None, running, no_clients);
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
        let slice = match state.monitors[m].mode {
            Mode::Control { .. } => INPUT_SLICE,
            Mode::Readline => HMP_INPUT_SLICE,
        };
        let Some(conn) = state.monitor_conn(m) else { return };
        let n = conn.inbuf.len().min(slice);
        let chunk: Vec<u8> = conn.inbuf.drain(..n).collect();
        match state.monitors[m].mode {
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
