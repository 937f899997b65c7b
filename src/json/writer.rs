//! Writes JSON the way QEMU 7.2's json-writer does, compact or pretty, straight into a byte
//! buffer: [`Writer`] streams fixed-shape replies member by member (`&'static str` keys, no
//! `Value` tree), and writes a `Value` when there is one. Output is ASCII only. Pretty lines
//! end with `\n`, or with `\r\n` for the monitor, so nothing is rewritten afterwards; the
//! writer never adds a final line end. Objects are written in their own member order (see
//! `Object::qdict_order` for QEMU's order).
#![forbid(unsafe_code)]

use super::value::{Object, Value};
use std::fmt::Write as _;

/// Compact QEMU style: `{"a": 1, "b": [1, 2]}`.
pub fn to_string(v: &Value) -> String {
    let mut s = String::new();
    write_compact(v, &mut s);
    s
}

/// Pretty QEMU style: 4-space indent, lines joined by "\n", no trailing newline.
pub fn to_string_pretty(v: &Value) -> String {
    let mut s = String::new();
    write_pretty(v, &mut s);
    s
}

pub fn write_compact(v: &Value, out: &mut String) {
    push_ascii(out, v, Layout::Compact);
}

pub fn write_pretty(v: &Value, out: &mut String) {
    push_ascii(out, v, Layout::Pretty);
}

fn push_ascii(out: &mut String, v: &Value, layout: Layout) {
    let mut bytes = Vec::new();
    Writer::new(&mut bytes, layout).value(v);
    // The writer emits ASCII only.
    out.push_str(std::str::from_utf8(&bytes).unwrap_or_default());
}

/// QEMU's two output styles; pretty with the line end the destination wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"a": 1, "b": [1, 2]}`.
    Compact,
    /// 4-space indent, `\n` line ends.
    Pretty,
    /// 4-space indent, `\r\n` line ends (what a monitor sends).
    PrettyCrlf,
}

/// A streaming JSON writer appending to `out` (it only ever appends). Calls must nest
/// properly: `begin_object`, then `key` + a value per member, then `end_object`.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    layout: Layout,
    depth: usize,
    /// No member or element yet in the innermost open container.
    first: bool,
    /// A key was written; its value comes next, without a separator.
    after_key: bool,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>, layout: Layout) -> Self {
        Writer { out, layout, depth: 0, first: true, after_key: false }
    }

    /// The layout this writer writes.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The buffer, to append text known to be valid at this point.
    pub fn out(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// A writer for the value of a member of a top-level object, alone: what it writes can
    /// later be spliced in with [`Writer::raw_json`] right after that member's key.
    pub fn member_value(out: &'a mut Vec<u8>, layout: Layout) -> Self {
        Writer { out, layout, depth: 1, first: false, after_key: true }
    }

    /// Bytes some writer wrote, as the next value.
    pub fn raw_json(&mut self, bytes: &[u8]) -> &mut Self {
        self.separate();
        self.out.extend_from_slice(bytes);
        self.first = false;
        self
    }

    fn newline(&mut self, depth: usize) {
        match self.layout {
            Layout::Compact => return,
            Layout::Pretty => self.out.push(b'\n'),
            Layout::PrettyCrlf => self.out.extend_from_slice(b"\r\n"),
        }
        for _ in 0..depth {
            self.out.extend_from_slice(b"    ");
        }
    }

    /// QEMU's maybe_comma_name(): ", " (or ",\n" + indent) between members, and only the
    /// indent before the first.
    fn separate(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if self.depth == 0 {
            return;
        }
        if self.first {
            self.first = false;
        } else if self.layout == Layout::Compact {
            self.out.extend_from_slice(b", ");
            return;
        } else {
            self.out.push(b',');
        }
        self.newline(self.depth);
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.separate();
        self.out.push(b'{');
        self.depth += 1;
        self.first = true;
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.close(b'}')
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.separate();
        self.out.push(b'[');
        self.depth += 1;
        self.first = true;
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.close(b']')
    }

    fn close(&mut self, c: u8) -> &mut Self {
        self.depth = self.depth.saturating_sub(1);
        self.newline(self.depth);
        self.out.push(c);
        self.first = false;
        self
    }

    /// A member name that needs no escaping (fdmon's own keys).
    pub fn key(&mut self, k: &'static str) -> &mut Self {
        debug_assert!(k.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'), "{k}");
        self.separate();
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\": ");
        self.after_key = true;
        self
    }

    /// Any member name, escaped.
    pub fn key_escaped(&mut self, k: &str) -> &mut Self {
        self.separate();
        write_str(k, self.out);
        self.out.extend_from_slice(b": ");
        self.after_key = true;
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.separate();
        write_str(s, self.out);
        self
    }

    /// A string known to be printable ASCII without `"` or `\\` (nothing to escape).
    pub fn ascii(&mut self, s: &[u8]) -> &mut Self {
        debug_assert!(s.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
        self.separate();
        self.out.push(b'"');
        self.out.extend_from_slice(s);
        self.out.push(b'"');
        self
    }

    pub fn int(&mut self, i: i64) -> &mut Self {
        self.separate();
        if i < 0 {
            self.out.push(b'-');
        }
        write_u64(i.unsigned_abs(), self.out);
        self
    }

    pub fn uint(&mut self, u: u64) -> &mut Self {
        self.separate();
        write_u64(u, self.out);
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    pub fn null(&mut self) -> &mut Self {
        self.raw("null")
    }

    pub fn double(&mut self, d: f64) -> &mut Self {
        self.separate();
        let mut s = String::new();
        write_double(d, &mut s);
        self.out.extend_from_slice(s.as_bytes());
        self
    }

    fn raw(&mut self, text: &str) -> &mut Self {
        self.separate();
        self.out.extend_from_slice(text.as_bytes());
        self
    }

    /// An object's members, in its order, inside `{}`.
    pub fn object(&mut self, o: &Object) -> &mut Self {
        self.tree(Open::Object(o.0.iter()))
    }

    /// An array's elements inside `[]`.
    pub fn array(&mut self, a: &[Value]) -> &mut Self {
        self.tree(Open::Array(a.iter()))
    }

    /// Any value, without recursion: a container gets a frame on an explicit stack, so
    /// depth costs heap, not call stack.
    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Array(a) => self.array(a),
            Value::Object(o) => self.object(o),
            scalar => self.scalar(scalar),
        }
    }

    fn scalar(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::UInt(u) => self.uint(*u),
            Value::Double(d) => self.double(*d),
            Value::Str(s) => self.str(s),
            Value::Array(_) | Value::Object(_) => unreachable!("containers have frames"),
        }
    }

    fn tree(&mut self, root: Open<'_>) -> &mut Self {
        let mut stack: Vec<Open<'_>> = Vec::new();
        self.open(root, &mut stack);
        while let Some(top) = stack.last_mut() {
            let next = match top {
                Open::Array(it) => it.next().map(|v| (None, v)),
                Open::Object(it) => it.next().map(|(k, v)| (Some(k.as_str()), v)),
            };
            match next {
                Some((key, v)) => {
                    if let Some(k) = key {
                        self.key_escaped(k);
                    }
                    match v {
                        Value::Array(a) => self.open(Open::Array(a.iter()), &mut stack),
                        Value::Object(o) => self.open(Open::Object(o.0.iter()), &mut stack),
                        scalar => {
                            self.scalar(scalar);
                        }
                    }
                }
                None => {
                    match stack.pop() {
                        Some(Open::Array(_)) => self.end_array(),
                        _ => self.end_object(),
                    };
                }
            }
        }
        self
    }

    fn open<'v>(&mut self, o: Open<'v>, stack: &mut Vec<Open<'v>>) {
        match o {
            Open::Array(_) => self.begin_array(),
            Open::Object(_) => self.begin_object(),
        };
        stack.push(o);
    }
}

enum Open<'a> {
    Array(std::slice::Iter<'a, Value>),
    Object(std::slice::Iter<'a, (String, Value)>),
}

/// Decimal digits of `u`, without `format!`.
pub fn write_u64(mut u: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// True for the code points QEMU's `is_valid_codepoint` rejects among chars a Rust
/// `String` can hold: the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF.
fn is_nonchar(cp: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&cp) || (cp & 0xFFFE) == 0xFFFE
}

fn write_u4hex(cp: u32, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((cp >> shift) & 0xF) as usize]);
    }
}

/// QEMU's `quoted_str()`. Noncharacters come out as `\uFFFD` because QEMU's decoder
/// rejects them and writes the replacement character.
fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().position(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\');
        let run = run.unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        let Some(c) = s[i..].chars().next() else { break };
        i += c.len_utf8();
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let mut cp = u32::from(c);
                if is_nonchar(cp) {
                    cp = 0xFFFD;
                }
                if cp > 0xFFFF {
                    let v = cp - 0x10000;
                    write_u4hex(0xD800 + (v >> 10), out);
                    write_u4hex(0xDC00 + (v & 0x3FF), out);
                } else {
                    write_u4hex(cp, out);
                }
            }
        }
    }
    out.push(b'"');
}

/// C's `printf("%.17g", d)` as glibc prints it, which is what QEMU uses.
///
/// Integral values below 1e17 print without a fraction (`1500`, `-1`). Others get up
/// to 17 significant digits (`0.10000000000000001`, `1.8446744073709552e+19`).
/// `-0.0` prints `-0`, as glibc does (the integer token `-0` parses as `Int(0)` and
/// prints `0`). Non-finite values print `inf`, `-inf`, `nan`, `-nan` exactly like QEMU.
/// That is not valid JSON, but fidelity wins here. The parser never produces NaN, and
/// only produces an infinity when a client sends something like `1e400`.
pub(super) fn write_double(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str(if d.is_sign_negative() { "-nan" } else { "nan" });
        return;
    }
    if d.is_infinite() {
        out.push_str(if d < 0.0 { "-inf" } else { "inf" });
        return;
    }
    if d == 0.0 {
        out.push_str(if d.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    const P: i32 = 17;
    // Rust's exact formatter gives the 17 correctly rounded significant digits and the
    // exponent X that %e would use. %g then picks the style from X.
    let e = format!("{:.*e}", (P - 1) as usize, d.abs());
    let (mant, exp) = e.split_once('e').expect("{:e} has an exponent");
    let x: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if d < 0.0 {
        out.push('-');
    }
    if (-4..P).contains(&x) {
        // Fixed style with P-1-X decimals, then trailing zeros stripped.
        let (int_part, frac_part) = if x >= 0 {
            let split = (x + 1) as usize;
            (digits[..split].to_string(), digits[split..].to_string())
        } else {
            ("0".to_string(), "0".repeat((-x - 1) as usize) + &digits)
        };
        out.push_str(&int_part);
        let frac = frac_part.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str(&digits[..1]);
        let frac = digits[1..].trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        let _ = write!(out, "e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::super::value::Object;
    use super::*;

    fn dbl(d: f64) -> String {
        to_string(&Value::Double(d))
    }

    fn s(x: &str) -> String {
        to_string(&Value::from(x))
    }

    #[test]
    fn compact_shapes() {
        let v = Value::from(Object::new().with("a", 1).with("b", vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(to_string(&v), r#"{"a": 1, "b": [1, 2]}"#);
        assert_eq!(to_string(&Value::from(Object::new())), "{}");
        assert_eq!(to_string(&Value::Array(vec![])), "[]");
        assert_eq!(to_string(&Value::Null), "null");
        assert_eq!(to_string(&Value::Bool(true)), "true");
        assert_eq!(to_string(&Value::Bool(false)), "false");
        assert_eq!(to_string(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(to_string(&Value::UInt(u64::MAX)), "18446744073709551615");
        let nested = Value::from(vec![Value::from(Object::new()), Value::Array(vec![]), Value::Null]);
        assert_eq!(to_string(&nested), "[{}, [], null]");
        assert_eq!(nested.to_string(), "[{}, [], null]");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(s("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(s("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(s("\u{0}\u{1}\u{1f}\u{7f}"), r#""\u0000\u0001\u001F\u007F""#);
        assert_eq!(s("é€"), r#""\u00E9\u20AC""#);
        assert_eq!(s("😀"), r#""\uD83D\uDE00""#);
        assert_eq!(s("\u{10FFFD}"), r#""\uDBFF\uDFFD""#);
        assert_eq!(s("\u{FFFF}\u{FDD0}\u{1FFFE}\u{10FFFF}"), r#""\uFFFD\uFFFD\uFFFD\uFFFD""#);
        assert_eq!(s("\u{FFFD}\u{FDEF}\u{FDF0}"), r#""\uFFFD\uFFFD\uFDF0""#);
        assert_eq!(s(" ~'"), r#"" ~'""#);
        // Keys are escaped the same way.
        let v = Value::from(Object::new().with("k\u{e9}\n", 1));
        assert_eq!(to_string(&v), r#"{"k\u00E9\n": 1}"#);
    }

    #[test]
    fn doubles_like_percent_17g() {
        assert_eq!(dbl(1500.0), "1500");
        assert_eq!(dbl(-1.0), "-1");
        assert_eq!(dbl(100.0), "100");
        assert_eq!(dbl(0.0), "0");
        assert_eq!(dbl(-0.0), "-0");
        assert_eq!(dbl(0.1), "0.10000000000000001");
        assert_eq!(dbl(1.5), "1.5");
        assert_eq!(dbl(-2.5), "-2.5");
        assert_eq!(dbl(18446744073709551616.0), "1.8446744073709552e+19");
        assert_eq!(dbl(-9223372036854775809.0), "-9.2233720368547758e+18");
        assert_eq!(dbl(1e30), "1e+30");
        assert_eq!(dbl(1e16), "10000000000000000");
        assert_eq!(dbl(1e17), "1e+17");
        assert_eq!(dbl(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(dbl(0.0001), "0.0001");
        assert_eq!(dbl(0.00001), "1.0000000000000001e-05");
        assert_eq!(dbl(1e-300), "1e-300");
        assert_eq!(dbl(0.005), "0.0050000000000000001");
        assert_eq!(dbl(2.5e-8), "2.4999999999999999e-08");
        assert_eq!(dbl(5e-324), "4.9406564584124654e-324");
        assert_eq!(dbl(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(dbl(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(dbl(f64::INFINITY), "inf");
        assert_eq!(dbl(f64::NEG_INFINITY), "-inf");
        assert_eq!(dbl(f64::NAN), "nan");
        assert_eq!(dbl(-f64::NAN), "-nan");
    }

    #[test]
    fn pretty_shapes() {
        let ret = Value::from(Object::new().with("return", Object::new()).with("id", 1));
        assert_eq!(to_string_pretty(&ret), "{\n    \"return\": {\n    },\n    \"id\": 1\n}");
        let err = Value::from(Object::new().with("id", Value::Array(vec![])).with(
            "error",
            Object::new().with("class", "CommandNotFound").with("desc", "The command bogus has not been found"),
        ));
        let want = "{\n    \"id\": [\n    ],\n    \"error\": {\n        \"class\": \"CommandNotFound\",\n        \"desc\": \"The command bogus has not been found\"\n    }\n}";
        assert_eq!(to_string_pretty(&err), want);
        assert_eq!(to_string_pretty(&Value::from(Object::new())), "{\n}");
        assert_eq!(to_string_pretty(&Value::Array(vec![])), "[\n]");
        assert_eq!(to_string_pretty(&Value::Int(3)), "3");
        let arr = Value::from(vec![Value::Int(1), Value::from(vec![Value::Int(2)])]);
        assert_eq!(to_string_pretty(&arr), "[\n    1,\n    [\n        2\n    ]\n]");
    }

    #[test]
    fn deep_values_do_not_recurse() {
        let mut v = Value::Null;
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let s = to_string(&v);
        assert_eq!(s.len(), 100_000 * 2 + 4);
        // Take the tree apart by hand so Drop does not recurse 100k deep.
        let mut cur = v;
        while let Value::Array(mut a) = cur {
            cur = a.pop().unwrap_or(Value::Null);
        }
    }
}
