//! QMP: greeting, capabilities negotiation, request validation in QEMU's order, dispatch
//! through the command table, and response shapes (`return` then `id`; `id` then `error`).
#![forbid(unsafe_code)]

use std::ops::ControlFlow;

use super::commands::{self, Caller};
use super::request::{self, Parsed, Request, Target};
use super::{send_value, Session};
use crate::error::QmpError;
use crate::json::{Item, Message, Object, Streamer, Value};
use crate::state::State;

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

/// `{"qemu": {"micro": Z, "minor": Y, "major": X}, "package": "fdmon"}` from the crate version.
pub fn version_value() -> Value {
    let mut parts = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (major, minor, micro) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let q = Object::new()
        .with("micro", Value::Int(micro))
        .with("minor", Value::Int(minor))
        .with("major", Value::Int(major));
    Value::Object(Object::new().with("qemu", Value::Object(q)).with("package", Value::from("fdmon")))
}

pub fn greeting() -> Value {
    let inner =
        Object::new().with("version", version_value()).with("capabilities", Value::Array(vec![Value::from("oob")]));
    Value::Object(Object::new().with("QMP", Value::Object(inner)))
}

fn error_value(id: Option<&Value>, e: &QmpError) -> Value {
    let err = Object::new().with("class", Value::from(e.class)).with("desc", Value::from(e.desc.as_str()));
    let mut o = Object::new();
    if let Some(id) = id {
        o.insert("id", id.clone());
    }
    o.insert("error", Value::Object(err));
    Value::Object(o)
}

fn return_value(id: Option<&Value>, v: Value) -> Value {
    let mut o = Object::new().with("return", v);
    if let Some(id) = id {
        o.insert("id", id.clone());
    }
    Value::Object(o)
}

/// Feeds bytes to monitor `m`'s parser and runs each complete request as soon as it is
/// parsed, stopping as soon as fdmon starts exiting or the connection goes away (the rest is
/// dropped, as QEMU does).
///
/// A monitor that removes itself (`monitor-remove` of its own id) still gets that reply; the
/// rest of what it sent is dropped.
pub fn feed(state: &mut State, m: usize, bytes: &[u8]) {
    let Some(mon) = state.monitor_mut(m) else { return };
    let (slot, mode) = (mon.chardev, mon.mode);
    // The streamer leaves the session while its messages run (an empty one costs nothing),
    // so that a request can borrow its bytes while the command has the state.
    let mut streamer = match &mut mon.session {
        Session::Qmp(s) => std::mem::take(&mut s.streamer),
        _ => return,
    };
    let _ = streamer.feed_each(bytes, |msg| on_message(state, m, slot, mode, msg));
    if let Some(s) = session(state, m) {
        s.streamer = streamer;
    }
}

fn on_message(state: &mut State, m: usize, slot: usize, mode: super::Mode, msg: Message<'_>) -> ControlFlow<()> {
    if state.exit.is_some() || !is_qmp(state, m) {
        return ControlFlow::Break(());
    }
    let oob = session(state, m).is_some_and(|s| s.oob);
    let reply = match msg {
        Message::Error(desc) => error_value(None, &QmpError::generic(desc)),
        Message::Complete(raw) => match request::parse(raw, oob) {
            Err(e) => error_value(None, &e),
            Ok(Parsed { id, request }) => {
                let id = id.map(Item::into_value);
                match request.and_then(|r| dispatch(state, m, r)) {
                    Ok(v) => return_value(id.as_ref(), v),
                    Err(e) => error_value(id.as_ref(), &e),
                }
            }
        },
    };
    if is_qmp(state, m) {
        send_value(state, m, &reply);
        ControlFlow::Continue(())
    } else {
        if state.monitor(m).is_none() {
            // The command removed this very monitor: its reply is the last thing it sends.
            super::send_value_to(state, Some(slot), mode, &reply);
        }
        ControlFlow::Break(())
    }
}

fn is_qmp(state: &State, m: usize) -> bool {
    state.monitor(m).is_some_and(|mon| matches!(mon.session, Session::Qmp(_)))
}

fn session(state: &mut State, m: usize) -> Option<&mut QmpSession> {
    match &mut state.monitor_mut(m)?.session {
        Session::Qmp(s) => Some(s),
        _ => None,
    }
}

fn not_found(name: &str) -> QmpError {
    let mut desc = String::from("The command ");
    desc.push_str(name);
    desc.push_str(" has not been found");
    QmpError::command_not_found(desc)
}

/// Runs a well-formed request: negotiation first, then the command table's argument check
/// and handler.
fn dispatch(state: &mut State, m: usize, req: Request<'_>) -> Result<Value, QmpError> {
    let negotiated = match session(state, m) {
        Some(s) => s.negotiated,
        None => return Err(QmpError::generic("monitor is not connected")),
    };
    let name: &str = match &req.target {
        Target::ExecOob(name) => {
            return Err(match commands::find(name) {
                None => not_found(name),
                Some(_) => {
                    let mut desc = String::from("The command ");
                    desc.push_str(name);
                    desc.push_str(" does not support OOB");
                    QmpError::generic(desc)
                }
            });
        }
        Target::Execute(name) => name,
    };
    let empty = Object::new();
    let args = req.arguments.as_ref().unwrap_or(&empty);
    if !negotiated {
        if name != "qmp_capabilities" {
            return Err(QmpError::command_not_found("Expecting capabilities negotiation with 'qmp_capabilities'"));
        }
        let cmd = commands::find(name).ok_or_else(|| QmpError::command_not_found("no qmp_capabilities"))?;
        super::schema::validate_args(cmd.args, args).map_err(QmpError::generic)?;
        let want_oob = args.get("enable").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
        if let Some(s) = session(state, m) {
            s.negotiated = true;
            s.oob = want_oob;
        }
        return Ok(Value::Object(Object::new()));
    }
    let cmd = commands::find(name).ok_or_else(|| not_found(name))?;
    super::schema::validate_args(cmd.args, args).map_err(QmpError::generic)?;
    (cmd.run)(state, &Caller { monitor: Some(m) }, args)
}
