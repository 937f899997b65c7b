//! What commands return, as domain values, and the one place they become JSON: written
//! field by field into a monitor's output buffer with `&'static str` keys, in the member
//! order QEMU 7.2 prints (its QDict order for QAPI's insertion order).
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use super::commands::{BACKEND_KINDS, COMMANDS};
use crate::json::{Layout, Value, Writer};
use crate::state::{RunState, State};

/// A command's successful result.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// `{}`.
    Empty,
    Version,
    Commands,
    Schema,
    Status(RunState),
    /// `query-name` and `query-uuid` answer with what the state holds when the reply is
    /// written, right after the command ran.
    Name,
    Uuid,
    /// `(label, filename, frontend-open)` per chardev, in QEMU's order.
    Chardevs(Vec<(String, String, bool)>),
    ChardevBackends,
    FdAdded {
        fd: i64,
        fdset_id: i64,
    },
    /// `query-fdsets`: `FdSets::query`'s domain values, turned into JSON next to the handler
    /// (`commands::fdsets_json`).
    Json(Value),
    /// `query-workload`: the workload's description (`Workload::info`, read from the state
    /// when the reply is written, like `Name`), if there is a workload.
    Workload,
    Str(String),
}

/// Writes `reply` as the value of `return`.
pub fn write(w: &mut Writer<'_>, reply: &Reply, state: &State, layout: Layout) {
    match cached(reply, layout, state) {
        Some(bytes) => {
            w.raw_json(bytes);
        }
        None => render(w, reply, state, layout),
    }
}

/// The bytes of a reply that never changes (per run state for `query-status`), rendered
/// once per layout as the value of a top-level member.
fn cached(reply: &Reply, layout: Layout, state: &State) -> Option<&'static [u8]> {
    static CACHE: [[OnceLock<Vec<u8>>; 3]; 9] = [const { [const { OnceLock::new() }; 3] }; 9];
    let slot = match reply {
        // The most common reply, without filling the cache.
        Reply::Empty if layout == Layout::Compact => return Some(b"{}"),
        Reply::Empty => 0,
        Reply::Version => 1,
        Reply::Commands => 2,
        Reply::Schema => 3,
        Reply::ChardevBackends => 4,
        Reply::Status(RunState::Prelaunch) => 5,
        Reply::Status(RunState::Running) => 6,
        Reply::Status(RunState::Paused) => 7,
        Reply::Status(RunState::Shutdown) => 8,
        _ => return None,
    };
    let l = match layout {
        Layout::Compact => 0,
        Layout::Pretty => 1,
        Layout::PrettyCrlf => 2,
    };
    let bytes = CACHE[slot][l].get_or_init(|| {
        let mut out = Vec::new();
        render(&mut Writer::member_value(&mut out, layout), reply, state, layout);
        out
    });
    Some(bytes)
}

fn render(w: &mut Writer<'_>, reply: &Reply, state: &State, layout: Layout) {
    match reply {
        Reply::Empty => {
            w.begin_object().end_object();
        }
        Reply::Version => super::qmp::write_version(w),
        Reply::Commands => {
            w.begin_array();
            for c in COMMANDS {
                w.begin_object().key("name").str(c.name).end_object();
            }
            w.end_array();
        }
        Reply::Schema => {
            let mut out = Vec::new();
            Writer::member_value(&mut out, layout).value(&super::commands::schema());
            w.raw_json(&out);
        }
        Reply::Status(rs) => {
            w.begin_object().key("status").str(rs.as_str()).key("singlestep").bool(false);
            w.key("running").bool(*rs == RunState::Running).end_object();
        }
        Reply::Name => {
            w.begin_object();
            if let Some(n) = &state.name {
                w.key("name").str(n);
            }
            w.end_object();
        }
        Reply::Uuid => {
            w.begin_object().key("UUID").str(&state.uuid).end_object();
        }
        Reply::Chardevs(list) => {
            w.begin_array();
            for (label, filename, open) in list {
                w.begin_object().key("frontend-open").bool(*open);
                w.key("filename").str(filename).key("label").str(label).end_object();
            }
            w.end_array();
        }
        Reply::ChardevBackends => {
            w.begin_array();
            for n in BACKEND_KINDS {
                w.begin_object().key("name").str(n).end_object();
            }
            w.end_array();
        }
        Reply::FdAdded { fd, fdset_id } => {
            w.begin_object().key("fd").int(*fd).key("fdset-id").int(*fdset_id).end_object();
        }
        Reply::Json(v) => {
            w.value(v);
        }
        Reply::Workload => {
            w.begin_object();
            if let Some(info) = state.workload.as_ref().map(|wl| wl.info()) {
                let o = super::commands::workload_json(&info);
                if let Some(o) = o.as_object() {
                    w.key("workload").object(o);
                }
            }
            w.end_object();
        }
        Reply::Str(s) => {
            w.str(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Reply, layout: Layout) -> String {
        let state = State::new();
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, layout);
        w.begin_object().key("return");
        write(&mut w, reply, &state, layout);
        w.end_object();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_shapes() {
        assert_eq!(text(&Reply::Empty, Layout::Compact), r#"{"return": {}}"#);
        assert_eq!(
            text(&Reply::Status(RunState::Running), Layout::Compact),
            r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#
        );
        assert_eq!(
            text(&Reply::FdAdded { fd: 3, fdset_id: 1 }, Layout::Compact),
            r#"{"return": {"fd": 3, "fdset-id": 1}}"#
        );
        assert_eq!(text(&Reply::Name, Layout::Compact), r#"{"return": {}}"#);
    }

    /// What is served from the cache is exactly what writing the reply in place gives.
    #[test]
    fn cached_replies_are_the_replies() {
        let state = State::new();
        let all = [
            Reply::Empty,
            Reply::Version,
            Reply::Commands,
            Reply::Schema,
            Reply::ChardevBackends,
            Reply::Status(RunState::Prelaunch),
            Reply::Status(RunState::Running),
            Reply::Status(RunState::Paused),
            Reply::Status(RunState::Shutdown),
        ];
        for layout in [Layout::Compact, Layout::Pretty, Layout::PrettyCrlf] {
            for reply in &all {
                assert!(cached(reply, layout, &state).is_some(), "{reply:?}");
                let mut out = Vec::new();
                let mut w = Writer::new(&mut out, layout);
                w.begin_object().key("return");
                render(&mut w, reply, &state, layout);
                w.end_object();
                assert_eq!(text(reply, layout), String::from_utf8(out).unwrap(), "{reply:?}");
            }
        }
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, Layout::Compact);
        w.begin_object().key("return").value(&super::super::commands::schema()).end_object();
        assert_eq!(text(&Reply::Schema, Layout::Compact), String::from_utf8(out).unwrap());
    }
}
