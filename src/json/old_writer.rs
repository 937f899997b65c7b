//! The writer as it was before the streaming one (test reference only): the new writer
//! must give the same bytes.
//! Output is ASCII only. It never adds a trailing newline and never turns "\n" into
//! "\r\n"; the monitor does that. Objects are written in their own member order (see
//! `Object::qdict_order` for QEMU's order).
#![forbid(unsafe_code)]

use super::value::Value;
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

#[allow(dead_code)]
pub fn write_compact(v: &Value, out: &mut String) {
    write(v, out, false);
}

#[allow(dead_code)]
pub fn write_pretty(v: &Value, out: &mut String) {
    write(v, out, true);
}

enum Open<'a> {
    Array(std::slice::Iter<'a, Value>),
    Object(std::slice::Iter<'a, (String, Value)>),
}

struct Frame<'a> {
    items: Open<'a>,
    first: bool,
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("    ");
    }
}

/// Writes one value without recursion. A container gets a frame on an explicit stack,
/// so depth costs heap, not call stack.
fn write(root: &Value, out: &mut String, pretty: bool) {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    open_or_scalar(root, out, &mut stack);
    while let Some(top) = stack.last_mut() {
        let next = match &mut top.items {
            Open::Array(it) => it.next().map(|v| (None, v)),
            Open::Object(it) => it.next().map(|(k, v)| (Some(k.as_str()), v)),
        };
        let depth = stack.len();
        match next {
            Some((key, v)) => {
                // QEMU's maybe_comma_name(): ", " (or ",\n" + indent) between members,
                // and only the indent before the first member.
                let frame = stack.last_mut().expect("non-empty stack");
                if frame.first {
                    frame.first = false;
                    if pretty {
                        newline(out, depth);
                    }
                } else {
                    out.push(',');
                    if pretty {
                        newline(out, depth);
                    } else {
                        out.push(' ');
                    }
                }
                if let Some(k) = key {
                    write_str(k, out);
                    out.push_str(": ");
                }
                open_or_scalar(v, out, &mut stack);
            }
            None => {
                let frame = stack.pop().expect("non-empty stack");
                if pretty {
                    newline(out, stack.len());
                }
                out.push(match frame.items {
                    Open::Array(_) => ']',
                    Open::Object(_) => '}',
                });
            }
        }
    }
}

fn open_or_scalar<'a>(v: &'a Value, out: &mut String, stack: &mut Vec<Frame<'a>>) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Double(d) => write_double(*d, out),
        Value::Str(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            stack.push(Frame { items: Open::Array(a.iter()), first: true });
        }
        Value::Object(o) => {
            out.push('{');
            stack.push(Frame { items: Open::Object(o.0.iter()), first: true });
        }
    }
}

/// True for the code points QEMU's `is_valid_codepoint` rejects among chars a Rust
/// `String` can hold: the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF.
fn is_nonchar(cp: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&cp) || (cp & 0xFFFE) == 0xFFFE
}

/// QEMU's `quoted_str()`. Noncharacters come out as `\uFFFD` because QEMU's decoder
/// rejects them and writes the replacement character.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='\u{7e}' => out.push(c),
            _ => {
                let mut cp = u32::from(c);
                if is_nonchar(cp) {
                    cp = 0xFFFD;
                }
                if cp > 0xFFFF {
                    let v = cp - 0x10000;
                    let _ = write!(out, "\\u{:04X}\\u{:04X}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    let _ = write!(out, "\\u{cp:04X}");
                }
            }
        }
    }
    out.push('"');
}

/// C's `printf("%.17g", d)` as glibc prints it, which is what QEMU uses.
///
/// Integral values below 1e17 print without a fraction (`1500`, `-1`). Others get up
/// to 17 significant digits (`0.10000000000000001`, `1.8446744073709552e+19`).
/// `-0.0` prints `-0`, as glibc does (the integer token `-0` parses as `Int(0)` and
/// prints `0`). Non-finite values print `inf`, `-inf`, `nan`, `-nan` exactly like QEMU.
/// That is not valid JSON, but fidelity wins here. The parser never produces NaN, and
/// only produces an infinity when a client sends something like `1e400`.
fn write_double(d: f64, out: &mut String) {
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
