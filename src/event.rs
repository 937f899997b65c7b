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
/// Events kept without a heap allocation; more wait in a `Vec` (QEMU has no bound either,
/// but a command records at most a few).
const INLINE_EVENTS: usize = 4;

/// The events waiting to be delivered, oldest first.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Pending,
}

/// A batch of events taken out of the [`Outbox`]: the first few inline, the rest in `more`.
#[derive(Debug, Default)]
pub struct Pending {
    inline: [Option<(Timestamp, Event)>; INLINE_EVENTS],
    more: Vec<(Timestamp, Event)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.inline[0].is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Timestamp, Event)> {
        self.inline.iter().map_while(Option::as_ref).chain(self.more.iter())
    }

    fn push(&mut self, e: (Timestamp, Event)) {
        match self.inline.iter_mut().find(|x| x.is_none()) {
            Some(free) => *free = Some(e),
            None => self.more.push(e),
        }
    }
}

impl Outbox {
    pub fn push(&mut self, event: Event) {
        self.pending.push((Timestamp::now(), event));
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Everything waiting, leaving the outbox empty.
    pub fn take(&mut self) -> Pending {
        Pending { inline: std::mem::take(&mut self.pending.inline), more: std::mem::take(&mut self.pending.more) }
    }

    /// Gives a taken batch's overflow buffer back (its capacity is kept for next time).
    pub fn recycle(&mut self, mut batch: Pending) {
        if self.pending.more.is_empty() && batch.more.capacity() > self.pending.more.capacity() {
            batch.more.clear();
            self.pending.more = batch.more;
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

    /// Past the inline ones, events wait in the overflow list, still in order; a batch's
    /// overflow buffer is reused.
    #[test]
    fn outbox_overflow_keeps_order() {
        let mut o = Outbox::default();
        let names = ["STOP", "RESUME", "POWERDOWN", "WORKLOAD_READY", "STOP", "RESUME"];
        for n in names {
            o.push(match n {
                "STOP" => Event::Stop,
                "RESUME" => Event::Resume,
                "POWERDOWN" => Event::Powerdown,
                _ => Event::WorkloadReady { pid: 1 },
            });
        }
        let got = o.take();
        assert!(o.is_empty() && !got.is_empty());
        assert_eq!(got.iter().map(|(_, e)| e.name()).collect::<Vec<_>>(), names);
        o.recycle(got);
        assert!(o.is_empty());
        assert!(o.pending.more.capacity() >= 2);
        o.push(Event::Stop);
        assert_eq!(o.take().iter().count(), 1);
    }
}
