//! The events fdmon reports (QMP's asynchronous messages) as typed values, and the outbox
//! `State` records them in. Pure data: nothing here knows about monitors or JSON; the
//! monitor layer (`monitor::events`) serialises what is waiting to every negotiated QMP
//! client.
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// One event, with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `reason` is a `ShutdownCause` (`host-qmp-quit`, `guest-panic`, ...).
    Shutdown {
        guest: bool,
        reason: &'static str,
    },
    Powerdown,
    Reset {
        guest: bool,
        reason: &'static str,
    },
    Stop,
    Resume,
    /// fdmon's own: the workload started as `pid` is ready.
    WorkloadReady {
        pid: i32,
    },
}

impl Event {
    /// The event name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Shutdown { .. } => "SHUTDOWN",
            Event::Powerdown => "POWERDOWN",
            Event::Reset { .. } => "RESET",
            Event::Stop => "STOP",
            Event::Resume => "RESUME",
            Event::WorkloadReady { .. } => "WORKLOAD_READY",
        }
    }
}

/// When an event happened: seconds and microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: u64,
    pub microseconds: u32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp { seconds: d.as_secs(), microseconds: d.subsec_micros() }
    }
}

/// Events recorded but not yet delivered, oldest first. The monitor layer drains it after
/// every command and once per loop round, so an event a command causes goes out before
/// that command's reply.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Vec<(Timestamp, Event)>,
}

impl Outbox {
    /// Records `event`, stamped now.
    pub fn push(&mut self, event: Event) {
        self.pending.push((Timestamp::now(), event));
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Every waiting event, oldest first; the outbox is empty afterwards. Hand the buffer
    /// back with [`Outbox::recycle`] so steady-state delivery does not allocate.
    pub fn take(&mut self) -> Vec<(Timestamp, Event)> {
        std::mem::take(&mut self.pending)
    }

    /// Gives a drained buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<(Timestamp, Event)>) {
        if self.pending.is_empty() && buf.capacity() > self.pending.capacity() {
            buf.clear();
            self.pending = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keeps_order_and_drains() {
        let mut o = Outbox::default();
        o.push(Event::Stop);
        o.push(Event::Resume);
        let got = o.take();
        assert!(o.is_empty());
        assert_eq!(got.iter().map(|(_, e)| e.name()).collect::<Vec<_>>(), ["STOP", "RESUME"]);
    }
}
