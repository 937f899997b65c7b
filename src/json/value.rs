//! The JSON value model: `Value` and the insertion-ordered `Object`.
//! It does no parsing and no formatting. Those live in `parser.rs` and `writer.rs`.
#![forbid(unsafe_code)]

use std::fmt;

/// A JSON value as QEMU's QObject models it.
///
/// Integers are kept exactly. `Int` holds every value in the i64 range. `UInt` is only
/// for values above `i64::MAX`, so each integer has one representation. The
/// `From<u64>` impl and the parser both keep that rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// Only for values > `i64::MAX`.
    UInt(u64),
    Double(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Object),
}

/// An insertion-ordered map with unique keys. Lookups are linear, which is fine for
/// the small objects QMP uses. The parser has its own duplicate check for large ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object(pub(super) Vec<(String, Value)>);

impl Object {
    pub fn new() -> Self {
        Object(Vec::new())
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    pub fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    /// If the key exists, replaces its value in place and keeps its position, as
    /// `qdict_put` does. Otherwise appends the pair.
    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<Value>) {
        let k = k.into();
        let v = v.into();
        match self.0.iter_mut().find(|(key, _)| *key == k) {
            Some((_, slot)) => *slot = v,
            None => self.0.push((k, v)),
        }
    }

    /// Removes a key and returns its value. The other members keep their order.
    pub fn remove(&mut self, k: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(key, _)| key == k)?;
        Some(self.0.remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Builder form of [`Object::insert`].
    pub fn with(mut self, k: impl Into<String>, v: impl Into<Value>) -> Self {
        self.insert(k, v);
        self
    }

    /// Reorders members, recursively, into the order QEMU 7.2 prints a QDict.
    ///
    /// QEMU keeps objects in a 512-bucket hash table (`tdb_hash(key) % 512`) and
    /// prints bucket by bucket. Inside a bucket the most recently inserted key comes
    /// first. So this order is what QEMU sends on the wire, *provided* the members were
    /// inserted in the order QEMU inserts them. For QAPI output that is schema order,
    /// and only keys that share a bucket depend on it. Examples checked against the
    /// spec: greeting `micro, minor, major`, `return` before `id`, `id` before `error`,
    /// `class` before `desc`, `timestamp, event, data`.
    ///
    /// Use it on a client value that is echoed back, such as the `id`, straight from the
    /// parser (which keeps the client's order, the same order QEMU inserts in). Call it
    /// only once: sorting uses up the insertion order, so a second call flips keys that
    /// share a bucket (`status`/`singlestep`, `minor`/`micro`).
    pub fn qdict_order(&mut self) {
        let mut stack: Vec<&mut Value> = Vec::new();
        sort_members(self);
        for (_, v) in self.0.iter_mut() {
            stack.push(v);
        }
        drain_qdict_order(stack);
    }
}

/// Sorts one object's members into QDict order. Does not recurse.
fn sort_members(o: &mut Object) {
    let mut keyed: Vec<(u32, usize, (String, Value))> =
        std::mem::take(&mut o.0).into_iter().enumerate().map(|(i, kv)| (qdict_bucket(&kv.0), i, kv)).collect();
    // Bucket ascending. Inside a bucket, later insertion first (QLIST_INSERT_HEAD).
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    o.0 = keyed.into_iter().map(|(_, _, kv)| kv).collect();
}

fn drain_qdict_order(mut stack: Vec<&mut Value>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                sort_members(o);
                for (_, c) in o.0.iter_mut() {
                    stack.push(c);
                }
            }
            Value::Array(a) => {
                for c in a.iter_mut() {
                    stack.push(c);
                }
            }
            _ => {}
        }
    }
}

/// The bucket QEMU's QDict puts `key` in. QEMU hashes the key's bytes in modified
/// UTF-8, where U+0000 is the two bytes C0 80.
pub(super) fn qdict_bucket(key: &str) -> u32 {
    let mut bytes: Vec<u8> = Vec::with_capacity(key.len());
    for &b in key.as_bytes() {
        if b == 0 {
            bytes.extend_from_slice(&[0xC0, 0x80]);
        } else {
            bytes.push(b);
        }
    }
    let mut value: u32 = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &b) in bytes.iter().enumerate() {
        let shift = ((i as u32).wrapping_mul(5)) % 24;
        value = value.wrapping_add(u32::from(b) << shift);
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345) % 512
}

impl IntoIterator for Object {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Object {
    /// Later duplicates replace earlier ones in place, as with [`Object::insert`].
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// `Int`, or `UInt` if it fits. Never converts a `Double`, so `1.0` is not an integer.
    /// QAPI acts the same way: `"size": 1.5` is "expected: integer".
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// A non-negative `Int`, or a `UInt`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// Any number as f64, the way QEMU's `qnum_get_double` converts it.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// QAPI's name for the type: "null", "boolean", "integer", "number", "string",
    /// "array", "object". These are the words QEMU uses in
    /// "Invalid parameter type for 'x', expected: integer".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Double(_) => "number",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Deep reorder into QEMU's QDict print order. Call it once, on a value still in
    /// insertion order. See [`Object::qdict_order`].
    pub fn qdict_order(&mut self) {
        drain_qdict_order(vec![self]);
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Str(s.clone())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    fn from(u: u32) -> Self {
        Value::Int(i64::from(u))
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    }
}

impl From<usize> for Value {
    fn from(u: usize) -> Self {
        Value::from(u as u64)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::Object(o)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl fmt::Display for Value {
    /// Compact QEMU form, the same as [`super::to_string`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::writer::to_string(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(keys: &[&str]) -> Vec<String> {
        let mut o = Object::new();
        for k in keys {
            o.insert(*k, Value::Null);
        }
        o.qdict_order();
        o.keys().map(str::to_owned).collect()
    }

    #[test]
    fn object_basics() {
        let mut o = Object::new().with("a", 1).with("b", "x").with("a", 2);
        assert_eq!(o.len(), 2);
        assert_eq!(o.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(o.get("a"), Some(&Value::Int(2)));
        assert_eq!(o.remove("a"), Some(Value::Int(2)));
        assert_eq!(o.remove("a"), None);
        assert_eq!(o.iter().collect::<Vec<_>>(), [("b", &Value::from("x"))]);
        assert!(!o.is_empty());
        assert!(Object::new().is_empty());
    }

    #[test]
    fn accessors() {
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::Int(-1).as_u64(), None);
        assert_eq!(Value::Int(7).as_u64(), Some(7));
        assert_eq!(Value::UInt(u64::MAX).as_i64(), None);
        assert_eq!(Value::UInt(5).as_i64(), Some(5));
        assert_eq!(Value::Double(1.0).as_i64(), None);
        assert_eq!(Value::from("s").as_str(), Some("s"));
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
        assert_eq!(Value::from(vec![Value::Null]).as_array().map(Vec::len), Some(1));
        assert_eq!(Value::from(Object::new()).as_object(), Some(&Object::new()));
        assert_eq!(Value::Double(1.5).type_name(), "number");
        assert_eq!(Value::UInt(u64::MAX).type_name(), "integer");
        assert_eq!(Value::Bool(false).type_name(), "boolean");
    }

    #[test]
    fn qdict_order_matches_observed_qemu_output() {
        // The QAPI visitor inserts in schema order; the wire shows the order on the right.
        assert_eq!(order(&["major", "minor", "micro"]), ["micro", "minor", "major"]);
        assert_eq!(order(&["qemu", "package"]), ["qemu", "package"]);
        assert_eq!(order(&["version", "capabilities"]), ["version", "capabilities"]);
        assert_eq!(order(&["return", "id"]), ["return", "id"]);
        assert_eq!(order(&["error", "id"]), ["id", "error"]);
        assert_eq!(order(&["class", "desc"]), ["class", "desc"]);
        assert_eq!(order(&["event", "data", "timestamp"]), ["timestamp", "event", "data"]);
        assert_eq!(order(&["seconds", "microseconds"]), ["seconds", "microseconds"]);
        assert_eq!(order(&["guest", "reason"]), ["guest", "reason"]);
        // query-status: schema order running, singlestep, status -> wire order below.
        assert_eq!(order(&["running", "singlestep", "status"]), ["status", "singlestep", "running"]);
        let mut v = Value::from(vec![Value::from(Object::new().with("error", 1).with("id", 2))]);
        v.qdict_order();
        assert_eq!(v.to_string(), r#"[{"id": 2, "error": 1}]"#);
    }
}
