//! What `State` keeps about each monitor: its id, mode, `getfd` names and the session of the
//! peer connected now (QMP negotiation and parser, or the HMP line editor). A monitor's index
//! is the slot of the chardev it runs on: that is the one record of which monitor uses which
//! chardev. Plain records:
//! this module never looks at the state, writes to a peer or runs a command (the rest of
//! `monitor` does), so `state` can own monitors without depending on the monitor logic.
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::json::Streamer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Control { pretty: bool },
    Readline,
}

pub enum Session {
    /// No peer connected.
    Idle,
    Qmp(QmpSession),
    Hmp(HmpSession),
}

pub struct Monitor {
    /// `-mon id=`, the label of a legacy `-qmp`/`-monitor`, or `monitor-add`'s `id`; `None`
    /// for `-mon` without `id=` (QEMU gives those no id either), which cannot be removed.
    pub id: Option<String>,
    pub mode: Mode,
    /// fds named with `getfd`: they belong to the monitor and survive reconnects.
    pub named_fds: Vec<(String, OwnedFd)>,
    pub session: Session,
    /// Output for a ringbuf or file chardev is built here before `Chardev::write`.
    pub(super) scratch: Vec<u8>,
}

impl Monitor {
    pub fn new(id: Option<String>, mode: Mode) -> Monitor {
        Monitor { id, mode, named_fds: Vec::new(), session: Session::Idle, scratch: Vec::new() }
    }

    /// Whether events go to this monitor: a QMP peer that finished negotiation.
    pub fn wants_events(&self) -> bool {
        matches!(&self.session, Session::Qmp(s) if s.negotiated)
    }

    /// Whether a peer is attached.
    pub fn has_client(&self) -> bool {
        !matches!(self.session, Session::Idle)
    }
}

/// Most names a monitor keeps with `getfd` (QEMU has no limit).
pub const MAX_NAMED_FDS: usize = 256;

/// A QMP peer's session: negotiation and the JSON message splitter.
pub struct QmpSession {
    pub negotiated: bool,
    pub oob: bool,
    pub streamer: Streamer,
}

impl QmpSession {
    pub fn new() -> QmpSession {
        QmpSession { negotiated: false, oob: false, streamer: Streamer::new() }
    }
}

impl Default for QmpSession {
    fn default() -> Self {
        Self::new()
    }
}

/// An HMP peer's session: the line being edited and its history.
#[derive(Default)]
pub struct HmpSession {
    pub(super) editor: super::hmp::editor::Editor,
}

impl HmpSession {
    pub fn new() -> HmpSession {
        HmpSession::default()
    }
}
