//! What commands return, as domain values, and the one place they become JSON: written
//! field by field into a monitor's output buffer with `&'static str` keys, in the member
//! order QEMU 7.2 prints (its QDict order for QAPI's insertion order).
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use super::commands::{BACKEND_KINDS, COMMANDS};
use crate::json::{Layout, Object, Value, Writer};
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
    /// `query-fdsets` (the fd-set layer's own JSON for now).
    Json(Value),
    /// `query-workload`: the workload's description, if there is a workload.
    Workload(Option<Object>),
    Str(String),
}

/// Writes `reply` as the value of `return`.
pub fn write(w: &mut Writer<'_>, reply: &Reply, state: &State, layout: Layout) {
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
            w.raw_json(schema_bytes(layout));
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
        Reply::Workload(info) => {
            w.begin_object();
            if let Some(o) = info {
                w.key("workload").object(o);
            }
            w.end_object();
        }
        Reply::Str(s) => {
            w.str(s);
        }
    }
}

/// `query-qmp-schema`'s value, rendered once per layout as the value of a top-level
/// member (pretty output indents it one level).
fn schema_bytes(layout: Layout) -> &'static [u8] {
    static CACHE: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match layout {
        Layout::Compact => 0,
        Layout::Pretty => 1,
        Layout::PrettyCrlf => 2,
    };
    CACHE[i].get_or_init(|| {
        let mut out = Vec::new();
        Writer::member_value(&mut out, layout).value(&super::commands::schema());
        out
    })
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

    /// The cached schema is exactly what writing the schema value in place gives.
    #[test]
    fn cached_schema_is_the_schema() {
        for layout in [Layout::Compact, Layout::Pretty, Layout::PrettyCrlf] {
            let mut out = Vec::new();
            let mut w = Writer::new(&mut out, layout);
            w.begin_object().key("return").value(&super::super::commands::schema()).end_object();
            assert_eq!(text(&Reply::Schema, layout), String::from_utf8(out).unwrap());
        }
    }
}
