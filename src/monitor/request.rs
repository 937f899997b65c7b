//! A QMP message parsed into a typed request before anything runs (the `ParsedRequest`
//! pattern): the command name borrowed from the message bytes when it needs no decoding,
//! `arguments` built only when present, and the `id` kept to be echoed exactly. The envelope
//! checks are QEMU 7.2's, in its order and with its texts.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use crate::error::QmpError;
use crate::json::{Item, Object, RawMessage, Value, Walk};

/// A command name's UTF-8 bytes, borrowed from the message when it needs no decoding.
pub type Name<'a> = Cow<'a, [u8]>;

/// How the command is asked for.
#[derive(Debug, PartialEq)]
pub enum Target<'a> {
    Execute(Name<'a>),
    /// `exec-oob`, accepted only after `qmp_capabilities` enabled `oob`.
    ExecOob(Name<'a>),
}

fn name(item: Item<'_>) -> Option<Name<'_>> {
    match item {
        Item::Ascii(b) => Some(Cow::Borrowed(b)),
        Item::Str(Cow::Borrowed(s)) => Some(Cow::Borrowed(s.as_bytes())),
        Item::Str(Cow::Owned(s)) => Some(Cow::Owned(s.into_bytes())),
        _ => None,
    }
}

/// A request whose envelope is well formed.
#[derive(Debug, PartialEq)]
pub struct Request<'a> {
    pub target: Target<'a>,
    /// `arguments`, when the message has them (not yet checked against the command).
    pub arguments: Option<Object>,
}

/// One message: the id to echo (in QEMU's key order) and the request or why it is refused.
#[derive(Debug, PartialEq)]
pub struct Parsed<'a> {
    pub id: Option<Item<'a>>,
    pub request: Result<Request<'a>, QmpError>,
}

/// Collects members in message order. The first bad member decides the error, as QEMU's
/// loop over the request dict does; the id is kept whatever else is wrong.
struct Envelope<'a> {
    oob: bool,
    error: Option<QmpError>,
    execute: Option<Name<'a>>,
    exec_oob: Option<Name<'a>>,
    arguments: Option<Object>,
    id: Option<Item<'a>>,
}

impl<'a> Envelope<'a> {
    fn new(oob: bool) -> Self {
        Envelope { oob, error: None, execute: None, exec_oob: None, arguments: None, id: None }
    }

    fn member(&mut self, key: &[u8], item: Item<'a>) {
        if key == b"id" {
            self.id = Some(qdict_ordered(item));
            return;
        }
        if self.error.is_some() {
            return;
        }
        match (key, item) {
            (b"execute", item) => match name(item) {
                Some(n) => self.execute = Some(n),
                None => self.error = Some(QmpError::generic("QMP input member 'execute' must be a string")),
            },
            (b"exec-oob", item) if self.oob => match name(item) {
                Some(n) => self.exec_oob = Some(n),
                None => self.error = Some(QmpError::generic("QMP input member 'exec-oob' must be a string")),
            },
            (b"arguments", Item::Object(o)) => self.arguments = Some(o),
            (b"arguments", _) => {
                self.error = Some(QmpError::generic("QMP input member 'arguments' must be an object"));
            }
            _ => {
                let mut desc = String::from("QMP input member '");
                // Keys are decoded strings: their bytes are UTF-8.
                desc.push_str(&String::from_utf8_lossy(key));
                desc.push_str("' is unexpected");
                self.error = Some(QmpError::generic(desc));
            }
        }
    }

    fn finish(self) -> Parsed<'a> {
        let request = match (self.error, self.execute, self.exec_oob) {
            (Some(e), _, _) => Err(e),
            (None, Some(_), Some(_)) => Err(QmpError::generic("QMP input member 'execute' clashes with 'exec-oob'")),
            (None, None, None) => Err(QmpError::generic("QMP input lacks member 'execute'")),
            (None, Some(name), None) => Ok(Request { target: Target::Execute(name), arguments: self.arguments }),
            (None, None, Some(name)) => Ok(Request { target: Target::ExecOob(name), arguments: self.arguments }),
        };
        Parsed { id: self.id, request }
    }
}

/// QEMU prints the echoed id from its hash table: containers come back in its key order.
fn qdict_ordered(item: Item<'_>) -> Item<'_> {
    match item {
        Item::Object(mut o) => {
            o.qdict_order();
            Item::Object(o)
        }
        Item::Array(a) => {
            let mut v = Value::Array(a);
            v.qdict_order();
            Item::from(v)
        }
        scalar => scalar,
    }
}

/// Parses one complete message. `Err` is a reply without an id: a JSON grammar error, or a
/// message that is not an object. `oob`: whether this session enabled out-of-band execution.
pub fn parse<'a>(raw: &RawMessage<'a>, oob: bool) -> Result<Parsed<'a>, QmpError> {
    let mut env = Envelope::new(oob);
    match raw.walk_object(|k, item| env.member(k, item)).map_err(QmpError::generic)? {
        Walk::Walked => Ok(env.finish()),
        Walk::Value(Value::Object(o)) => {
            let mut env = Envelope::new(oob);
            for (k, v) in o {
                env.member(k.as_bytes(), Item::from(v));
            }
            Ok(env.finish())
        }
        Walk::Value(_) => Err(QmpError::generic("QMP input must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Message, Streamer};
    use std::ops::ControlFlow;

    /// Parses every message of `text`; each result as `(id, request)` or `Err(desc)`.
    fn parse_all(text: &str, oob: bool) -> Vec<Result<(Option<Value>, Result<Request<'static>, String>), String>> {
        let mut out = Vec::new();
        let _ = Streamer::new().feed_each(text.as_bytes(), |m| {
            out.push(match m {
                Message::Error(e) => Err(e),
                Message::Complete(raw) => match parse(&raw, oob) {
                    Err(e) => Err(e.desc),
                    Ok(p) => Ok((
                        p.id.map(Item::into_value),
                        p.request
                            .map(|r| Request {
                                target: match r.target {
                                    Target::Execute(n) => Target::Execute(Cow::Owned(n.into_owned())),
                                    Target::ExecOob(n) => Target::ExecOob(Cow::Owned(n.into_owned())),
                                },
                                arguments: r.arguments,
                            })
                            .map_err(|e| e.desc),
                    )),
                },
            });
            ControlFlow::Continue(())
        });
        out
    }

    fn one(text: &str) -> Result<(Option<Value>, Result<Request<'static>, String>), String> {
        let mut all = parse_all(text, false);
        assert_eq!(all.len(), 1, "{text}");
        all.remove(0)
    }

    fn refused(text: &str) -> String {
        match one(text) {
            Ok((_, Err(e))) => e,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn exec(name: &str) -> Request<'static> {
        Request { target: Target::Execute(Cow::Owned(name.as_bytes().to_vec())), arguments: None }
    }

    #[test]
    fn well_formed_requests() {
        assert_eq!(one(r#"{"execute":"query-status"}"#), Ok((None, Ok(exec("query-status")))));
        assert_eq!(one(r#"{"id":1,"execute":"stop"}"#), Ok((Some(Value::Int(1)), Ok(exec("stop")))));
        let with_args = one(r#"{"execute":"getfd","arguments":{"fdname":"x"}}"#);
        let args = Object::new().with("fdname", "x");
        assert_eq!(
            with_args,
            Ok((None, Ok(Request { target: Target::Execute(Cow::Borrowed(b"getfd")), arguments: Some(args) })))
        );
        // The id comes back in QEMU's key order.
        let (id, _) = one(r#"{"execute":"x","id":{"error":1,"id":2}}"#).unwrap();
        assert_eq!(id.map(|v| v.to_string()), Some(r#"{"id": 2, "error": 1}"#.to_string()));
        let mut oob = parse_all(r#"{"exec-oob":"x"}"#, true);
        assert_eq!(
            oob.remove(0),
            Ok((None, Ok(Request { target: Target::ExecOob(Cow::Borrowed(b"x")), arguments: None })))
        );
    }

    #[test]
    fn envelope_errors_match_qemu() {
        assert_eq!(refused(r#"{}"#), "QMP input lacks member 'execute'");
        assert_eq!(refused(r#"{"id":1}"#), "QMP input lacks member 'execute'");
        assert_eq!(refused(r#"{"execute":1}"#), "QMP input member 'execute' must be a string");
        assert_eq!(refused(r#"{"execute":"x","arguments":[]}"#), "QMP input member 'arguments' must be an object");
        assert_eq!(refused(r#"{"execute":"x","foo":1}"#), "QMP input member 'foo' is unexpected");
        assert_eq!(refused(r#"{"exec-oob":"x"}"#), "QMP input member 'exec-oob' is unexpected");
        // The first bad member in message order decides.
        assert_eq!(refused(r#"{"arguments":1,"execute":2}"#), "QMP input member 'arguments' must be an object");
        assert_eq!(refused(r#"{"b":1,"a":2,"execute":"x"}"#), "QMP input member 'b' is unexpected");
        // Many members: the full parse and the same answer.
        assert_eq!(refused(r#"{"execute":"x","a":1,"b":2,"c":3,"d":4}"#), "QMP input member 'a' is unexpected");
        let mut clash = parse_all(r#"{"execute":"x","exec-oob":"y","id":"i"}"#, true);
        assert_eq!(
            clash.remove(0),
            Ok((Some(Value::from("i")), Err("QMP input member 'execute' clashes with 'exec-oob'".to_string())))
        );
        let mut bad_oob = parse_all(r#"{"exec-oob":[]}"#, true);
        assert_eq!(bad_oob.remove(0), Ok((None, Err("QMP input member 'exec-oob' must be a string".to_string()))));
        // The id is echoed even when it comes after the bad member.
        assert_eq!(
            one(r#"{"foo":1,"execute":"x","id":"z"}"#),
            Ok((Some(Value::from("z")), Err("QMP input member 'foo' is unexpected".to_string())))
        );
    }

    #[test]
    fn message_errors_have_no_id() {
        assert_eq!(one("[1]"), Err("QMP input must be a JSON object".to_string()));
        assert_eq!(one("42 "), Err("QMP input must be a JSON object".to_string()));
        assert_eq!(one(r#"{"execute":"x","id":1,"id":2}"#), Err("JSON parse error, duplicate key".to_string()));
        assert_eq!(one(r#"{"execute" "x"}"#), Err("JSON parse error, missing : in object pair".to_string()));
        assert_eq!(one(r#"{"execute":"x",}"#), Err("JSON parse error, expecting value".to_string()));
        assert_eq!(one(r#"{"execute":"x" 1}"#), Err("JSON parse error, expected separator in dict".to_string()));
        assert_eq!(one(r#"{1:2}"#), Err("JSON parse error, key is not a string in object".to_string()));
        assert_eq!(one(r#"{"execute":"\x"}"#), Err("JSON parse error, invalid escape sequence in string".to_string()));
        assert_eq!(one("@"), Err("JSON parse error, stray '@'".to_string()));
    }

    #[test]
    fn plain_names_are_borrowed() {
        let _ = Streamer::new().feed_each(br#"{"execute":"query-status"}{"execute":"query\u002dname"}"#, |m| {
            let Message::Complete(raw) = m else { panic!("error") };
            let p = parse(&raw, false).unwrap();
            match p.request.unwrap().target {
                Target::Execute(Cow::Borrowed(n)) => assert_eq!(n, b"query-status"),
                Target::Execute(Cow::Owned(n)) => assert_eq!(n, b"query-name"),
                t => panic!("{t:?}"),
            }
            ControlFlow::Continue(())
        });
    }
}
