//! Delivery of the events `State` recorded (see `crate::event`): each is serialised once and
//! written to every QMP client that finished capabilities negotiation, in the order they
//! happened. Called after every command (so a command's events precede its reply) and once
//! per loop round.
#![forbid(unsafe_code)]

use crate::event::{Event, Timestamp};
use crate::json::{write_u64, Layout, Writer};
use crate::state::State;

/// Sends every waiting event to every negotiated QMP client and empties the outbox. Each
/// event is written by the streaming writer straight into each client's output, as replies
/// are (no `Value` tree, no intermediate text).
pub fn deliver(state: &mut State) {
    if state.events.is_empty() {
        return;
    }
    let pending = state.events.take();
    for (ts, event) in pending.iter() {
        for m in 0..state.monitors.len() {
            let Some(mode) = state.monitor(m).filter(|mon| mon.wants_events()).map(|mon| mon.mode) else { continue };
            let layout = super::layout(mode);
            super::output(state, Some(m), m, |out| {
                write_event(&mut Writer::new(out, layout), ts, event);
                out.extend_from_slice(b"\r\n");
            });
        }
    }
    state.events.recycle(pending);
}

/// `{"timestamp": {"seconds": S, "microseconds": U}, "event": NAME[, "data": {...}]}`.
fn write_event(w: &mut Writer<'_>, ts: &Timestamp, event: &Event) {
    if w.layout() == Layout::Compact {
        return write_event_compact(w.out(), ts, event);
    }
    write_event_general(w, ts, event);
}

/// [`write_event`] through the writer (any layout).
fn write_event_general(w: &mut Writer<'_>, ts: &Timestamp, event: &Event) {
    w.begin_object();
    w.key("timestamp").begin_object();
    w.key("seconds").uint(ts.seconds);
    w.key("microseconds").uint(u64::from(ts.microseconds));
    w.end_object();
    w.key("event").str(event.name());
    match *event {
        Event::Shutdown { guest, reason } | Event::Reset { guest, reason } => {
            w.key("data").begin_object();
            w.key("guest").bool(guest);
            w.key("reason").str(reason);
            w.end_object();
        }
        Event::WorkloadReady { pid } => {
            w.key("data").begin_object();
            w.key("pid").int(i64::from(pid));
            w.end_object();
        }
        Event::Powerdown | Event::Stop | Event::Resume => {}
    }
    w.end_object();
}

/// [`write_event`] in the compact layout: fixed text around the numbers (fdmon's event names
/// and reasons need no escaping). The unit tests compare it with the writer's output.
fn write_event_compact(out: &mut Vec<u8>, ts: &Timestamp, event: &Event) {
    out.extend_from_slice(b"{\"timestamp\": {\"seconds\": ");
    write_u64(ts.seconds, out);
    out.extend_from_slice(b", \"microseconds\": ");
    write_u64(u64::from(ts.microseconds), out);
    out.extend_from_slice(b"}, \"event\": \"");
    out.extend_from_slice(event.name().as_bytes());
    out.push(b'"');
    match *event {
        Event::Shutdown { guest, reason } | Event::Reset { guest, reason } => {
            out.extend_from_slice(if guest {
                b", \"data\": {\"guest\": true"
            } else {
                b", \"data\": {\"guest\": false"
            });
            out.extend_from_slice(b", \"reason\": ");
            Writer::new(out, Layout::Compact).str(reason);
            out.push(b'}');
        }
        Event::WorkloadReady { pid } => {
            out.extend_from_slice(b", \"data\": {\"pid\": ");
            Writer::new(out, Layout::Compact).int(i64::from(pid));
            out.push(b'}');
        }
        Event::Powerdown | Event::Stop | Event::Resume => {}
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact fast path writes what the writer writes, for every event shape.
    #[test]
    fn compact_events_match_the_writer() {
        let ts = Timestamp { seconds: 1_796_174_183, microseconds: 7 };
        let events = [
            Event::Shutdown { guest: false, reason: "host-qmp-quit" },
            Event::Shutdown { guest: true, reason: "guest-shutdown" },
            Event::Reset { guest: true, reason: "guest-reset" },
            Event::Powerdown,
            Event::Stop,
            Event::Resume,
            Event::WorkloadReady { pid: 4_194_304 },
            Event::WorkloadReady { pid: -1 },
        ];
        for e in &events {
            let mut fast = Vec::new();
            write_event(&mut Writer::new(&mut fast, Layout::Compact), &ts, e);
            let mut slow = Vec::new();
            write_event_general(&mut Writer::new(&mut slow, Layout::Compact), &ts, e);
            assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
        }
    }
}
