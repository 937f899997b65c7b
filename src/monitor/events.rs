//! Delivery of the events `State` recorded (see `crate::event`): each is serialised once and
//! written to every QMP client that finished capabilities negotiation, in the order they
//! happened. Called after every command (so a command's events precede its reply) and once
//! per loop round.
#![forbid(unsafe_code)]

use crate::event::{Event, Timestamp};
use crate::json::{Object, Value};
use crate::state::State;

/// Sends every waiting event to every negotiated QMP client and empties the outbox.
pub fn deliver(state: &mut State) {
    if state.events.is_empty() {
        return;
    }
    let pending = state.events.take();
    for (ts, event) in &pending {
        let v = to_value(ts, event);
        for m in 0..state.monitors.len() {
            if state.monitor(m).is_some_and(super::Monitor::wants_events) {
                super::send_value(state, m, &v);
            }
        }
    }
    state.events.recycle(pending);
}

/// `{"timestamp": {"seconds": S, "microseconds": U}, "event": NAME[, "data": {...}]}`.
fn to_value(ts: &Timestamp, event: &Event) -> Value {
    let t = Object::new()
        .with("seconds", Value::Int(ts.seconds as i64))
        .with("microseconds", Value::Int(i64::from(ts.microseconds)));
    let mut ev = Object::new().with("timestamp", Value::Object(t)).with("event", Value::from(event.name()));
    let data = match *event {
        Event::Shutdown { guest, reason } | Event::Reset { guest, reason } => {
            Some(Object::new().with("guest", Value::Bool(guest)).with("reason", Value::from(reason)))
        }
        Event::WorkloadReady { pid } => Some(Object::new().with("pid", Value::Int(i64::from(pid)))),
        Event::Powerdown | Event::Stop | Event::Resume => None,
    };
    if let Some(d) = data {
        ev.insert("data", Value::Object(d));
    }
    Value::Object(ev)
}
