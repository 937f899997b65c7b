//! QMP: greeting, capabilities negotiation, request validation in QEMU's order, dispatch
//! through the command table, and response shapes (`return` then `id`; `id` then `error`).
#![forbid(unsafe_code)]

use std::ops::ControlFlow;

use super::commands::{self, Caller, Cmd};
use super::reply::Reply;
use super::request::{self, Parsed, Request, Target};
use super::Session;
use crate::error::QmpError;
use crate::json::{Item, Layout, Message, Object, Writer};
use crate::state::State;

pub use super::session::QmpSession;

/// `package` of `query-version`.
pub const PACKAGE: &str = "fdmon";

/// `(major, minor, micro)` of the crate version.
pub fn version() -> (i64, i64, i64) {
    let mut parts = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `{"qemu": {"micro": Z, "minor": Y, "major": X}, "package": "fdmon"}` from the crate version.
pub fn write_version(w: &mut Writer<'_>) {
    let (major, minor, micro) = version();
    w.begin_object().key("qemu").begin_object();
    w.key("micro").int(micro).key("minor").int(minor).key("major").int(major).end_object();
    w.key("package").str(PACKAGE).end_object();
}

/// The compact greeting with its line end, fixed text from the crate version (what
/// [`write_greeting`] writes in the compact layout; a unit test keeps the two equal).
const GREETING: &str = concat!(
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": ",
    env!("CARGO_PKG_VERSION_PATCH"),
    ", \"minor\": ",
    env!("CARGO_PKG_VERSION_MINOR"),
    ", \"major\": ",
    env!("CARGO_PKG_VERSION_MAJOR"),
    "}, \"package\": \"fdmon\"}, \"capabilities\": [\"oob\"]}}\r\n"
);

/// `{"QMP": {"version": ..., "capabilities": ["oob"]}}` and the line end.
fn write_greeting(out: &mut Vec<u8>, layout: Layout) {
    if layout == Layout::Compact {
        out.extend_from_slice(GREETING.as_bytes());
        return;
    }
    let mut w = Writer::new(out, layout);
    w.begin_object().key("QMP").begin_object().key("version");
    write_version(&mut w);
    w.key("capabilities").begin_array().str("oob").end_array();
    w.end_object().end_object();
    out.extend_from_slice(b"\r\n");
}

/// The greeting to monitor `m`'s peer.
pub fn send_greeting(state: &mut State, m: usize) {
    let Some((slot, mode)) = state.monitor(m).map(|mon| (m, mon.mode)) else { return };
    super::output(state, Some(m), slot, |out| write_greeting(out, super::layout(mode)));
}

/// A message's echoed id, as it came (containers already in QEMU's key order).
fn write_item(w: &mut Writer<'_>, item: &Item<'_>) {
    match item {
        Item::Null => w.null(),
        Item::Bool(b) => w.bool(*b),
        Item::Int(i) => w.int(*i),
        Item::UInt(u) => w.uint(*u),
        Item::Double(d) => w.double(*d),
        Item::Str(s) => w.str(s),
        Item::Ascii(s) => w.ascii(s),
        Item::Array(a) => w.array(a),
        Item::Object(o) => w.object(o),
    };
}

/// `{"return": R, "id": I}` or `{"id": I, "error": {"class": C, "desc": D}}` and the line end.
fn write_reply(
    out: &mut Vec<u8>,
    state: &State,
    layout: Layout,
    id: Option<&Item<'_>>,
    result: &Result<Reply, QmpError>,
) {
    match result {
        Ok(r) => {
            // The envelope is fixed text around two member values.
            let (open, id_key, close): (&[u8], &[u8], &[u8]) = match layout {
                Layout::Compact => (b"{\"return\": ", b", \"id\": ", b"}\r\n"),
                Layout::Pretty => (b"{\n    \"return\": ", b",\n    \"id\": ", b"\n}\r\n"),
                Layout::PrettyCrlf => (b"{\r\n    \"return\": ", b",\r\n    \"id\": ", b"\r\n}\r\n"),
            };
            out.extend_from_slice(open);
            super::reply::write(&mut Writer::member_value(out, layout), r, state, layout);
            if let Some(id) = id {
                out.extend_from_slice(id_key);
                write_item(&mut Writer::member_value(out, layout), id);
            }
            out.extend_from_slice(close);
        }
        Err(e) => {
            let mut w = Writer::new(out, layout);
            w.begin_object();
            if let Some(id) = id {
                write_item(w.key("id"), id);
            }
            w.key("error").begin_object().key("class").str(e.class.as_str()).key("desc").str(&e.desc).end_object();
            w.end_object();
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Feeds bytes to monitor `m`'s parser and runs each complete request as soon as it is
/// parsed, stopping as soon as fdmon starts exiting or the connection goes away (the rest is
/// dropped, as QEMU does).
///
/// A monitor that removes itself (`monitor-remove` of its own id) still gets that reply; the
/// rest of what it sent is dropped.
pub fn feed(state: &mut State, m: usize, bytes: &[u8]) {
    let Some(mon) = state.monitor_mut(m) else { return };
    // A monitor's index is its chardev's slot.
    let (slot, mode) = (m, mon.mode);
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
    let (id, result) = match msg {
        Message::Error(desc) => (None, Err(QmpError::generic(desc))),
        Message::Complete(raw) => match request::parse(&raw, oob) {
            Err(e) => (None, Err(e)),
            Ok(Parsed { id, request }) => {
                let result = request.and_then(|r| dispatch(state, m, r));
                (id, result)
            }
        },
    };
    // Events the command caused go out before its reply, to every negotiated client.
    super::events::deliver(state);
    let layout = super::layout(mode);
    let write = |out: &mut Vec<u8>, state: &State| write_reply(out, state, layout, id.as_ref(), &result);
    if is_qmp(state, m) {
        super::output_with(state, Some(m), slot, write);
        ControlFlow::Continue(())
    } else {
        if state.monitor(m).is_none() {
            // The command removed this very monitor: its reply is the last thing it sends.
            super::output_with(state, None, slot, write);
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

fn not_found(name: &[u8]) -> QmpError {
    let mut desc = String::from("The command ");
    // Names are decoded strings: their bytes are UTF-8.
    desc.push_str(&String::from_utf8_lossy(name));
    desc.push_str(" has not been found");
    QmpError::command_not_found(desc)
}

/// Runs a well-formed request: negotiation first, then the command table's argument check,
/// the typed command and its handler.
fn dispatch(state: &mut State, m: usize, req: Request<'_>) -> Result<Reply, QmpError> {
    let negotiated = match session(state, m) {
        Some(s) => s.negotiated,
        None => return Err(QmpError::generic("monitor is not connected")),
    };
    let name: &[u8] = match &req.target {
        Target::ExecOob(name) => {
            return Err(match commands::find(name) {
                None => not_found(name),
                Some(_) => {
                    let mut desc = String::from("The command ");
                    desc.push_str(&String::from_utf8_lossy(name));
                    desc.push_str(" does not support OOB");
                    QmpError::generic(desc)
                }
            });
        }
        Target::Execute(name) => name,
    };
    if !negotiated && name != b"qmp_capabilities" {
        return Err(QmpError::command_not_found("Expecting capabilities negotiation with 'qmp_capabilities'"));
    }
    let cmd = commands::find(name).ok_or_else(|| not_found(name))?;
    let empty = Object::new();
    let args = req.arguments.as_ref().unwrap_or(&empty);
    super::schema::validate_args(cmd.args, args).map_err(QmpError::generic)?;
    let typed = (cmd.read)(args)?;
    if let (false, Cmd::QmpCapabilities { oob }) = (negotiated, &typed) {
        if let Some(s) = session(state, m) {
            s.negotiated = true;
            s.oob = *oob;
        }
        return Ok(Reply::Empty);
    }
    commands::execute(state, &Caller { monitor: Some(m) }, typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed compact greeting is what the writer produces from [`version`].
    #[test]
    fn fixed_greeting_matches_the_writer() {
        let mut written = Vec::new();
        let mut w = Writer::new(&mut written, Layout::Compact);
        w.begin_object().key("QMP").begin_object().key("version");
        write_version(&mut w);
        w.key("capabilities").begin_array().str("oob").end_array();
        w.end_object().end_object();
        written.extend_from_slice(b"\r\n");
        let mut fixed = Vec::new();
        write_greeting(&mut fixed, Layout::Compact);
        assert_eq!(String::from_utf8(fixed).unwrap(), String::from_utf8(written).unwrap());
    }
}
