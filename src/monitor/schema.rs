//! The QAPI-like type language of fdmon's commands and events: one description serves request
//! validation (with QEMU's exact error texts) and `query-qmp-schema` introspection. Never touches
//! the OS.

use crate::json::{Object, Value};

/// A type in the command and event schema.
#[derive(Debug, PartialEq)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Any,
    Null,
    Number,
    Enum(&'static [&'static str]),
    Array(&'static Ty),
    Obj(&'static [Member]),
    /// A union: the `base` members (which include the tag member, whose type must be an `Enum`)
    /// plus the members of the variant the tag selects, all in one object.
    Union {
        base: &'static [Member],
        tag: &'static str,
        variants: &'static [(&'static str, &'static Ty)],
    },
}

/// A member of an object type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    pub name: &'static str,
    pub ty: &'static Ty,
    pub optional: bool,
}

/// Shorthand for a required member.
pub const fn req(name: &'static str, ty: &'static Ty) -> Member {
    Member { name, ty, optional: false }
}

/// Shorthand for an optional member.
pub const fn opt(name: &'static str, ty: &'static Ty) -> Member {
    Member { name, ty, optional: true }
}

pub static STR: Ty = Ty::Str;
pub static INT: Ty = Ty::Int;
pub static BOOL: Ty = Ty::Bool;
pub static ANY: Ty = Ty::Any;
pub static EMPTY: Ty = Ty::Obj(&[]);

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn type_error(path: &str, expected: &str) -> String {
    format!("Invalid parameter type for '{path}', expected: {expected}")
}

/// Checks `args` (the request's `arguments`) against an object type, as QEMU's input visitor
/// does: members in declaration order, then unexpected keys. The error is the `desc` text.
pub fn validate_args(ty: &Ty, args: &Object) -> Result<(), String> {
    match ty {
        // No arguments where none are required: nothing to check (every argument-less
        // command, and most requests of the others).
        Ty::Obj(members) if args.is_empty() && members.iter().all(|m| m.optional) => Ok(()),
        Ty::Obj(members) => check_members(members, args, ""),
        Ty::Union { .. } => check_value(ty, &Value::Object(args.clone()), "", Some("")),
        _ => Ok(()),
    }
}

fn check_members(members: &[Member], obj: &Object, path: &str) -> Result<(), String> {
    visit_members(members, obj, path)?;
    check_unexpected(obj, path, |k| members.iter().any(|m| m.name == k))
}

fn visit_members(members: &[Member], obj: &Object, path: &str) -> Result<(), String> {
    for m in members {
        let full = join(path, m.name);
        match obj.get(m.name) {
            None if m.optional => {}
            None => return Err(format!("Parameter '{full}' is missing")),
            Some(v) => check_value(m.ty, v, &full, Some(m.name))?,
        }
    }
    Ok(())
}

fn check_unexpected(obj: &Object, path: &str, known: impl Fn(&str) -> bool) -> Result<(), String> {
    match obj.keys().find(|k| !known(k)) {
        Some(k) => Err(format!("Parameter '{}' is unexpected", join(path, k))),
        None => Ok(()),
    }
}

/// `name` is the member's own name (None for list elements): QEMU names it alone, not the
/// full path, in enum errors ("Parameter 'null' does not accept value 'foo'").
fn check_value(ty: &Ty, v: &Value, path: &str, name: Option<&str>) -> Result<(), String> {
    match ty {
        Ty::Any => Ok(()),
        Ty::Str => v.as_str().map(|_| ()).ok_or_else(|| type_error(path, "string")),
        Ty::Int => match v {
            Value::Int(_) => Ok(()),
            _ => Err(type_error(path, "integer")),
        },
        Ty::Number => match v {
            Value::Int(_) | Value::UInt(_) | Value::Double(_) => Ok(()),
            _ => Err(type_error(path, "number")),
        },
        Ty::Bool => v.as_bool().map(|_| ()).ok_or_else(|| type_error(path, "boolean")),
        Ty::Null => match v {
            Value::Null => Ok(()),
            _ => Err(type_error(path, "null")),
        },
        Ty::Enum(values) => {
            let s = v.as_str().ok_or_else(|| type_error(path, "string"))?;
            if values.contains(&s) {
                Ok(())
            } else {
                Err(format!("Parameter '{}' does not accept value '{s}'", name.unwrap_or("null")))
            }
        }
        Ty::Array(elem) => {
            let items = v.as_array().ok_or_else(|| type_error(path, "array"))?;
            for (i, item) in items.iter().enumerate() {
                check_value(elem, item, &format!("{path}[{i}]"), None)?;
            }
            Ok(())
        }
        Ty::Obj(members) => {
            let obj = v.as_object().ok_or_else(|| type_error(path, "object"))?;
            check_members(members, obj, path)
        }
        Ty::Union { base, tag, variants } => {
            let obj = v.as_object().ok_or_else(|| type_error(path, "object"))?;
            visit_members(base, obj, path)?;
            let tag_value = obj.get(tag).and_then(Value::as_str).unwrap_or("");
            let variant = variants.iter().find(|(n, _)| *n == tag_value).map(|(_, t)| *t);
            let vmembers: &[Member] = match variant {
                Some(Ty::Obj(m)) => m,
                _ => &[],
            };
            visit_members(vmembers, obj, path)?;
            check_unexpected(obj, path, |k| base.iter().any(|m| m.name == k) || vmembers.iter().any(|m| m.name == k))
        }
    }
}

/// Builds `query-qmp-schema` entities. Types get opaque numeric names in order of first use,
/// structurally equal types share one name.
pub struct SchemaBuilder {
    entities: Vec<Value>,
    named: Vec<(&'static Ty, String)>,
    next: usize,
}

impl Default for SchemaBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaBuilder {
    pub fn new() -> Self {
        SchemaBuilder { entities: Vec::new(), named: Vec::new(), next: 0 }
    }

    pub fn command(&mut self, name: &str, args: &'static Ty, ret: &'static Ty) {
        let arg_type = self.type_name(args);
        let ret_type = self.type_name(ret);
        let e = Object::new()
            .with("name", Value::from(name))
            .with("ret-type", Value::from(ret_type))
            .with("meta-type", Value::from("command"))
            .with("arg-type", Value::from(arg_type));
        self.entities.push(Value::Object(e));
    }

    pub fn event(&mut self, name: &str, data: &'static Ty) {
        let arg_type = self.type_name(data);
        let e = Object::new()
            .with("name", Value::from(name))
            .with("meta-type", Value::from("event"))
            .with("arg-type", Value::from(arg_type));
        self.entities.push(Value::Object(e));
    }

    pub fn finish(self) -> Value {
        Value::Array(self.entities)
    }

    fn builtin(&mut self, name: &'static str, json_type: &'static str) -> String {
        if !self.entities.iter().any(|e| {
            e.as_object().and_then(|o| o.get("name")).and_then(Value::as_str) == Some(name)
                && e.as_object().and_then(|o| o.get("meta-type")).and_then(Value::as_str) == Some("builtin")
        }) {
            let e = Object::new()
                .with("name", Value::from(name))
                .with("meta-type", Value::from("builtin"))
                .with("json-type", Value::from(json_type));
            self.entities.push(Value::Object(e));
        }
        name.to_string()
    }

    fn type_name(&mut self, ty: &'static Ty) -> String {
        match ty {
            Ty::Str => return self.builtin("str", "string"),
            Ty::Int => return self.builtin("int", "int"),
            Ty::Bool => return self.builtin("bool", "boolean"),
            Ty::Any => return self.builtin("any", "value"),
            Ty::Null => return self.builtin("null", "null"),
            Ty::Number => return self.builtin("number", "number"),
            _ => {}
        }
        if let Some((_, n)) = self.named.iter().find(|(t, _)| *t == ty) {
            return n.clone();
        }
        let entity = match ty {
            Ty::Array(elem) => {
                let e = self.type_name(elem);
                let name = format!("[{e}]");
                self.named.push((ty, name.clone()));
                let v = Object::new()
                    .with("name", Value::from(name.clone()))
                    .with("meta-type", Value::from("array"))
                    .with("element-type", Value::from(e));
                self.entities.push(Value::Object(v));
                return name;
            }
            Ty::Enum(values) => Object::new()
                .with("meta-type", Value::from("enum"))
                .with("values", Value::Array(values.iter().map(|v| Value::from(*v)).collect()))
                .with(
                    "members",
                    Value::Array(
                        values.iter().map(|v| Value::Object(Object::new().with("name", Value::from(*v)))).collect(),
                    ),
                ),
            Ty::Obj(members) => {
                let m = self.members(members);
                Object::new().with("members", m).with("meta-type", Value::from("object"))
            }
            Ty::Union { base, tag, variants } => {
                let m = self.members(base);
                let vs: Vec<Value> = variants
                    .iter()
                    .map(|(case, t)| {
                        let tn = self.type_name(t);
                        Value::Object(Object::new().with("case", Value::from(*case)).with("type", Value::from(tn)))
                    })
                    .collect();
                Object::new()
                    .with("members", m)
                    .with("meta-type", Value::from("object"))
                    .with("tag", Value::from(*tag))
                    .with("variants", Value::Array(vs))
            }
            _ => unreachable!("builtins handled above"),
        };
        let name = self.next.to_string();
        self.next += 1;
        self.named.push((ty, name.clone()));
        let mut e = Object::new().with("name", Value::from(name.clone()));
        for (k, v) in entity.iter() {
            e.insert(k, v.clone());
        }
        self.entities.push(Value::Object(e));
        name
    }

    fn members(&mut self, members: &'static [Member]) -> Value {
        Value::Array(
            members
                .iter()
                .map(|m| {
                    let t = self.type_name(m.ty);
                    let mut o = Object::new().with("name", Value::from(m.name)).with("type", Value::from(t));
                    if m.optional {
                        o.insert("default", Value::Null);
                    }
                    Value::Object(o)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Streamer;

    fn obj(text: &str) -> Object {
        let mut out = Vec::new();
        Streamer::new().feed(text.as_bytes(), &mut out);
        match out.pop() {
            Some(Ok(Value::Object(o))) => o,
            other => panic!("not an object: {other:?}"),
        }
    }

    static CAP: Ty = Ty::Enum(&["oob"]);
    static CAPS: Ty = Ty::Array(&CAP);
    static QMP_CAPS: Ty = Ty::Obj(&[opt("enable", &CAPS)]);
    static GETFD: Ty = Ty::Obj(&[req("fdname", &STR)]);
    static SIZED: Ty = Ty::Obj(&[req("size", &INT)]);
    static INNER: Ty = Ty::Obj(&[req("data", &EMPTY)]);
    static KIND: Ty = Ty::Enum(&["null", "ringbuf"]);
    static BACKEND: Ty =
        Ty::Union { base: &[req("type", &KIND)], tag: "type", variants: &[("null", &INNER), ("ringbuf", &INNER)] };
    static ADD: Ty = Ty::Obj(&[req("id", &STR), req("backend", &BACKEND)]);

    fn check(ty: &Ty, text: &str) -> Result<(), String> {
        validate_args(ty, &obj(text))
    }

    /// Validation recursion follows the (static, shallow) schema, never the value: the
    /// deepest request a peer can send is checked in a few frames.
    #[test]
    fn deep_values_do_not_deepen_validation() {
        static ANYS: Ty = Ty::Obj(&[req("x", &ANY)]);
        static LIST: Ty = Ty::Array(&STR);
        static LISTS: Ty = Ty::Obj(&[req("x", &LIST)]);
        let deep = format!("{}1{}", "[".repeat(1022), "]".repeat(1022));
        let o = obj(&format!(r#"{{"x":{deep}}}"#));
        let o = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                assert_eq!(validate_args(&ANYS, &o), Ok(()));
                assert_eq!(
                    validate_args(&LISTS, &o),
                    Err("Invalid parameter type for 'x[0]', expected: string".into())
                );
                assert_eq!(validate_args(&GETFD, &o), Err("Parameter 'fdname' is missing".into()));
                o
            })
            .unwrap()
            .join()
            .unwrap();
        drop(o);
    }

    #[test]
    fn validation_errors_match_qemu() {
        assert_eq!(check(&GETFD, "{}"), Err("Parameter 'fdname' is missing".into()));
        assert_eq!(
            check(&GETFD, r#"{"fdname":1}"#),
            Err("Invalid parameter type for 'fdname', expected: string".into())
        );
        assert_eq!(check(&GETFD, r#"{"fdname":"x","bogus":1}"#), Err("Parameter 'bogus' is unexpected".into()));
        assert_eq!(check(&GETFD, r#"{"fdname":"x"}"#), Ok(()));
        assert_eq!(check(&EMPTY, r#"{"x":1}"#), Err("Parameter 'x' is unexpected".into()));
        assert_eq!(
            check(&SIZED, r#"{"size":"1"}"#),
            Err("Invalid parameter type for 'size', expected: integer".into())
        );
        assert_eq!(
            check(&SIZED, r#"{"size":1.5}"#),
            Err("Invalid parameter type for 'size', expected: integer".into())
        );
        assert_eq!(
            check(&SIZED, r#"{"size":99999999999999999999}"#),
            Err("Invalid parameter type for 'size', expected: integer".into())
        );
        assert_eq!(
            check(&QMP_CAPS, r#"{"enable":["foo"]}"#),
            Err("Parameter 'null' does not accept value 'foo'".into())
        );
        assert_eq!(
            check(&QMP_CAPS, r#"{"enable":"oob"}"#),
            Err("Invalid parameter type for 'enable', expected: array".into())
        );
        assert_eq!(check(&QMP_CAPS, r#"{"enable":["oob"]}"#), Ok(()));
        assert_eq!(
            check(&ADD, r#"{"id":"x","backend":{"type":"null"}}"#),
            Err("Parameter 'backend.data' is missing".into())
        );
        assert_eq!(
            check(&ADD, r#"{"id":"x","backend":{"type":"bogus","data":{}}}"#),
            Err("Parameter 'type' does not accept value 'bogus'".into())
        );
        assert_eq!(
            check(&ADD, r#"{"id":"x","backend":{"type":"null","data":{},"z":1}}"#),
            Err("Parameter 'backend.z' is unexpected".into())
        );
        assert_eq!(
            check(&ADD, r#"{"id":"x","backend":{"type":"null","data":{"q":1}}}"#),
            Err("Parameter 'backend.data.q' is unexpected".into())
        );
        assert_eq!(check(&ADD, r#"{"id":"x","backend":{"type":"null","data":{}}}"#), Ok(()));
    }

    #[test]
    fn schema_names_types_once() {
        let mut b = SchemaBuilder::new();
        b.command("getfd", &GETFD, &EMPTY);
        b.command("closefd", &GETFD, &EMPTY);
        b.command("chardev-add", &ADD, &EMPTY);
        let s = crate::json::to_string(&b.finish());
        assert!(s.starts_with(r#"[{"name": "str", "meta-type": "builtin", "json-type": "string"}, {"name": "0", "members": [{"name": "fdname", "type": "str"}], "meta-type": "object"}"#), "{s}");
        assert!(s.contains(r#"{"name": "getfd", "ret-type": "1", "meta-type": "command", "arg-type": "0"}"#), "{s}");
        assert!(s.contains(r#"{"name": "closefd", "ret-type": "1", "meta-type": "command", "arg-type": "0"}"#), "{s}");
        assert_eq!(s.matches(r#""meta-type": "command""#).count(), 3);
        assert_eq!(s.matches(r#""name": "str""#).count(), 1);
        assert!(s.contains(r#""tag": "type""#));
    }
}
