//! Delivery of the events `State` recorded (see `crate::event`): each is serialised once and
//! written to every QMP client that finished capabilities negotiation, in the order they
//! happened. Called after every command (so a command's events precede its reply) and once
//! per loop round.
#![forbid(unsafe_code)]

use crate::event::{Event, Timestamp};
use crate::json::Writer;
use crate::state::State;

/// Sends every waiting event to every negotiated QMP client and empties the outbox. Each
/// event is written by the streaming writer straight into each client's output, as replies
/// are (no `Value` tree, no intermediate text).
pub fn deliver(state: &mut State) {
    if state.events.is_empty() {
        return;
    }
    let pending = state.events.take();
    for (ts, event) in &pending {
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
