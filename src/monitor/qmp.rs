//! QMP: greeting, capabilities negotiation, request validation in QEMU's order, dispatch
//! through the command table, and response shapes (`return` then `id`; `id` then `error`).
#![forbid(unsafe_code)]

use super::commands::{self, Caller};
use super::{send_value, Session};
use crate::error::QmpError;
use crate::json::{Object, Value};
use crate::state::State;

pub use super::session::QmpSession;

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

/// Feeds bytes to monitor `m`'s parser and runs every complete request, stopping as soon as
/// fdmon starts exiting or the connection goes away (later requests are dropped, as QEMU does).
///
/// A monitor that removes itself (`monitor-remove` of its own id) still gets that reply; the
/// rest of what it sent is dropped.
pub fn feed(state: &mut State, m: usize, bytes: &[u8]) {
    let mut msgs = Vec::new();
    let Some(mon) = state.monitor_mut(m) else { return };
    let (slot, mode) = (m, mon.mode);
    match &mut mon.session {
        Session::Qmp(s) => s.streamer.feed(bytes, &mut msgs),
        _ => return,
    }
    for msg in msgs {
        if state.exit.is_some() || !is_qmp(state, m) {
            return;
        }
        let reply = match msg {
            Err(desc) => error_value(None, &QmpError::generic(desc)),
            Ok(Value::Object(req)) => {
                // QEMU prints the echoed id from its hash table: same key order as it would.
                let id = req.get("id").cloned().map(|mut v| {
                    v.qdict_order();
                    v
                });
                match handle(state, m, &req) {
                    Ok(v) => return_value(id.as_ref(), v),
                    Err(e) => error_value(id.as_ref(), &e),
                }
            }
            Ok(_) => error_value(None, &QmpError::generic("QMP input must be a JSON object")),
        };
        super::events::deliver(state);
        if is_qmp(state, m) {
            send_value(state, m, &reply);
        } else if state.monitor(m).is_none() {
            // The command removed this very monitor: its reply is the last thing it sends.
            super::send_value_to(state, Some(slot), mode, &reply);
            return;
        }
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

fn handle(state: &mut State, m: usize, req: &Object) -> Result<Value, QmpError> {
    let (negotiated, oob) = match session(state, m) {
        Some(s) => (s.negotiated, s.oob),
        None => return Err(QmpError::generic("monitor is not connected")),
    };
    let mut execute = None;
    let mut exec_oob = None;
    let mut arguments = None;
    for (k, v) in req.iter() {
        match k {
            "execute" | "exec-oob" if k == "execute" || oob => {
                let name =
                    v.as_str().ok_or_else(|| QmpError::generic(format!("QMP input member '{k}' must be a string")))?;
                if k == "execute" {
                    execute = Some(name);
                } else {
                    exec_oob = Some(name);
                }
            }
            "arguments" => {
                arguments = Some(
                    v.as_object().ok_or_else(|| QmpError::generic("QMP input member 'arguments' must be an object"))?,
                );
            }
            "id" => {}
            _ => return Err(QmpError::generic(format!("QMP input member '{k}' is unexpected"))),
        }
    }
    let empty = Object::new();
    let args = arguments.unwrap_or(&empty);
    let name = match (execute, exec_oob) {
        (Some(_), Some(_)) => return Err(QmpError::generic("QMP input member 'execute' clashes with 'exec-oob'")),
        (None, None) => return Err(QmpError::generic("QMP input lacks member 'execute'")),
        (None, Some(name)) => {
            return Err(match commands::find(name) {
                None => QmpError::command_not_found(format!("The command {name} has not been found")),
                Some(_) => QmpError::generic(format!("The command {name} does not support OOB")),
            });
        }
        (Some(name), None) => name,
    };
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
    let cmd = commands::find(name)
        .ok_or_else(|| QmpError::command_not_found(format!("The command {name} has not been found")))?;
    super::schema::validate_args(cmd.args, args).map_err(QmpError::generic)?;
    (cmd.run)(state, &Caller { monitor: Some(m) }, args)
}
