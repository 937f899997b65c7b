//! Streaming JSON input in QEMU 7.2's dialect: lexer, message splitter and parser.
//! It works byte by byte and keeps the same state however the input is split. It never
//! recurses, and a peer cannot make it hold much more than `max_message_bytes`.
//!
//! The pipeline follows QEMU's design (json-lexer.c, json-streamer.c, json-parser.c),
//! written afresh:
//! * The lexer is a state machine over bytes. A byte no state accepts is a *lexical*
//!   error, "stray 'TOKEN'". After that the lexer skips input up to a resync point.
//! * The splitter counts `{`/`}` and `[`/`]`, each pair on its own counter, as QEMU
//!   does. A message is complete when neither count is positive, or either is negative.
//!   A top-level scalar is complete when its token is.
//! * When a message completes, the parser turns its tokens into a `Value` or reports
//!   the first grammar error in QEMU's words.
//!
//! Tokens of the pending message sit in one byte buffer. There is no per-token
//! allocation, so the bytes held track the bytes received.
#![forbid(unsafe_code)]

use super::value::{Object, Value};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// QEMU's MAX_NESTING.
pub const DEFAULT_MAX_DEPTH: usize = 1024;
/// fdmon's cap on the token bytes of one message. QEMU's is 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// QEMU's MAX_TOKEN_COUNT. With a 1 MiB byte cap it cannot be reached; it stays for
/// callers that raise the byte cap.
pub const DEFAULT_MAX_TOKENS: usize = 2 << 20;

const ERR_SIZE: &str = "JSON token size limit exceeded";
const ERR_COUNT: &str = "JSON token count limit exceeded";
const ERR_DEPTH: &str = "JSON nesting depth limit exceeded";

/// Lexer states, one per state of QEMU's table (minus interpolation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    Recovery,
    DqStr,
    DqEsc,
    SqStr,
    SqEsc,
    Zero,
    Digits,
    Sign,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    Str,
}

/// What the lexer does with one byte.
enum Step {
    /// Consume the byte into the current token and move to a state.
    Stay(State),
    /// Consume the byte; it completes a token.
    Emit(Tok),
    /// The byte ends the current token without being part of it; look at it again in
    /// `Start`.
    EmitBefore(Tok),
    /// Consume and forget the byte (whitespace, or skipping during recovery).
    Skip,
    /// Recovery ends here; look at the byte again in `Start`.
    Resume,
    /// Lexical error; the byte is consumed and is part of the reported token.
    Error,
}

fn structural(b: u8) -> Option<Tok> {
    Some(match b {
        b'{' => Tok::LCurly,
        b'}' => Tok::RCurly,
        b'[' => Tok::LSquare,
        b']' => Tok::RSquare,
        b':' => Tok::Colon,
        b',' => Tok::Comma,
        _ => return None,
    })
}

fn step(state: State, b: u8) -> Step {
    use State::*;
    match state {
        Start => match b {
            b'"' => Step::Stay(DqStr),
            b'\'' => Step::Stay(SqStr),
            b'0' => Step::Stay(Zero),
            b'1'..=b'9' => Step::Stay(Digits),
            b'-' => Step::Stay(Sign),
            b'a'..=b'z' => Step::Stay(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip,
            _ => match structural(b) {
                Some(t) => Step::Emit(t),
                None => Step::Error,
            },
        },
        // Skip to a structural char, a control char other than TAB, or 0xFE/0xFF.
        Recovery => match b {
            b'\t' => Step::Skip,
            0x00..=0x1f | 0xfe | 0xff => Step::Resume,
            _ if structural(b).is_some() => Step::Resume,
            _ => Step::Skip,
        },
        DqStr => match b {
            b'"' => Step::Emit(Tok::Str),
            b'\\' => Step::Stay(DqEsc),
            0x20..=0xfd => Step::Stay(DqStr),
            _ => Step::Error,
        },
        SqStr => match b {
            b'\'' => Step::Emit(Tok::Str),
            b'\\' => Step::Stay(SqEsc),
            0x20..=0xfd => Step::Stay(SqStr),
            _ => Step::Error,
        },
        // Any non-control byte may follow a backslash; the parser judges escapes.
        DqEsc => match b {
            0x20..=0xfd => Step::Stay(DqStr),
            _ => Step::Error,
        },
        SqEsc => match b {
            0x20..=0xfd => Step::Stay(SqStr),
            _ => Step::Error,
        },
        Zero => match b {
            b'0'..=b'9' => Step::Error,
            b'.' => Step::Stay(Mantissa),
            _ => Step::EmitBefore(Tok::Integer),
        },
        Digits => match b {
            b'0'..=b'9' => Step::Stay(Digits),
            b'e' | b'E' => Step::Stay(ExpE),
            b'.' => Step::Stay(Mantissa),
            _ => Step::EmitBefore(Tok::Integer),
        },
        Sign => match b {
            b'0' => Step::Stay(Zero),
            b'1'..=b'9' => Step::Stay(Digits),
            _ => Step::Error,
        },
        Mantissa => match b {
            b'0'..=b'9' => Step::Stay(MantissaDigits),
            _ => Step::Error,
        },
        MantissaDigits => match b {
            b'0'..=b'9' => Step::Stay(MantissaDigits),
            b'e' | b'E' => Step::Stay(ExpE),
            _ => Step::EmitBefore(Tok::Float),
        },
        ExpE => match b {
            b'+' | b'-' => Step::Stay(ExpSign),
            b'0'..=b'9' => Step::Stay(ExpDigits),
            _ => Step::Error,
        },
        ExpSign => match b {
            b'0'..=b'9' => Step::Stay(ExpDigits),
            _ => Step::Error,
        },
        ExpDigits => match b {
            b'0'..=b'9' => Step::Stay(ExpDigits),
            _ => Step::EmitBefore(Tok::Float),
        },
        Keyword => match b {
            b'a'..=b'z' => Step::Stay(Keyword),
            _ => Step::EmitBefore(Tok::Keyword),
        },
    }
}

/// Streaming parser with QEMU's dialect. Feed it bytes in any split. It appends one
/// `Result` per complete top-level message. An `Err` holds QEMU's exact error text.
#[derive(Debug)]
pub struct Streamer {
    state: State,
    /// Tokens of the pending message, back to back, then the token being lexed. A
    /// space separates two adjacent scalar tokens so they can be told apart later.
    buf: Vec<u8>,
    /// Where the token being lexed starts in `buf`.
    tok_start: usize,
    /// Token bytes of the pending message, separators not counted.
    msg_bytes: usize,
    /// Completed tokens in the pending message.
    tokens: usize,
    braces: i64,
    brackets: i64,
    max_depth: usize,
    max_bytes: usize,
    max_tokens: usize,
}

impl Default for Streamer {
    fn default() -> Self {
        Self::new()
    }
}

impl Streamer {
    /// Nesting depth 1024 (QEMU's), message cap 1 MiB of token bytes.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// `max_depth`: most `{`+`[` open at once (QEMU: 1024). `max_message_bytes`: most
    /// token bytes (whitespace excluded) in one message before "JSON token size limit
    /// exceeded".
    ///
    /// The size error is reported on the byte that crosses the cap. The message is then
    /// dropped and the lexer resyncs as after a lexical error. QEMU, whose cap is 64 MiB,
    /// checks at token end and restarts lexing mid-token; with any cap the rest of the
    /// message is garbage. `pending_bytes()` stays at most 2 * cap (worst case is a space
    /// between adjacent scalar tokens). Keep `max_depth` modest, because the derived
    /// `Drop`/`Clone`/`PartialEq` of `Value` recurse.
    pub fn with_limits(max_depth: usize, max_message_bytes: usize) -> Self {
        Streamer {
            state: State::Start,
            buf: Vec::new(),
            tok_start: 0,
            msg_bytes: 0,
            tokens: 0,
            braces: 0,
            brackets: 0,
            max_depth,
            max_bytes: max_message_bytes,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// Feeds raw bytes. Appends each complete top-level message to `out`, in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Value, String>>) {
        let _ = self.feed_each(bytes, |m| {
            out.push(match m {
                Message::Complete(raw) => raw.parse(),
                Message::Error(e) => Err(e),
            });
            ControlFlow::Continue(())
        });
    }

    /// Feeds raw bytes and calls `f` for each complete top-level message, in order, without
    /// building anything: a [`RawMessage`] borrows the streamer's buffer, which keeps its
    /// capacity from one message to the next. When `f` breaks, the rest of `bytes` is left
    /// unread and `Break` is returned; the streamer is then between messages.
    pub fn feed_each(&mut self, bytes: &[u8], mut f: impl FnMut(Message<'_>) -> ControlFlow<()>) -> ControlFlow<()> {
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: between messages, a simple object that is all there is read at
            // once, without the token buffer. Limits this small cannot be reached by one.
            if self.state == State::Start && self.buf.is_empty() && bytes[i] == b'{' && self.simple_ok() {
                let mut members = [SimpleMember::default(); SIMPLE_MEMBERS];
                if let Some((n, simple)) = scan_simple(&bytes[i..], &mut members) {
                    if n <= self.max_bytes {
                        i += n;
                        f(Message::Complete(RawMessage(Raw::Simple(simple))))?;
                        continue;
                    }
                }
            }
            // Fast path: the plain bytes of a string token, in one run.
            if matches!(self.state, State::DqStr | State::SqStr) {
                let quote = if self.state == State::DqStr { b'"' } else { b'\'' };
                let run = bytes[i..]
                    .iter()
                    .position(|&b| b == quote || b == b'\\' || !(0x20..=0xfd).contains(&b))
                    .unwrap_or(bytes.len() - i);
                let run = run.min(self.max_bytes.saturating_sub(self.msg_bytes));
                if run > 0 {
                    self.msg_bytes += run;
                    self.buf.extend_from_slice(&bytes[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = bytes[i];
            i += 1;
            self.feed_byte(b, &mut f)?;
        }
        ControlFlow::Continue(())
    }

    /// Whether the limits leave room for any simple object: two levels, its few tokens.
    fn simple_ok(&self) -> bool {
        self.max_depth >= 2 && self.max_tokens >= 4 * SIMPLE_MEMBERS * 2 + 2
    }

    /// Bytes held for the incomplete message: its tokens so far, including a partial one.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    fn feed_byte(&mut self, b: u8, f: &mut impl FnMut(Message<'_>) -> ControlFlow<()>) -> ControlFlow<()> {
        // At most two rounds: a byte that ends a token (or recovery) is looked at once
        // more in `Start`, and `Start` never hands a byte back.
        loop {
            match step(self.state, b) {
                Step::Stay(next) => {
                    if self.state == State::Start {
                        self.begin_scalar();
                    }
                    self.state = next;
                    self.push_byte(b, f)?;
                    return ControlFlow::Continue(());
                }
                Step::Emit(tok) => {
                    if self.state == State::Start {
                        self.tok_start = self.buf.len();
                    }
                    if self.push_byte(b, f)? {
                        self.state = State::Start;
                        return self.complete(tok, f);
                    }
                    return ControlFlow::Continue(());
                }
                Step::EmitBefore(tok) => {
                    self.state = State::Start;
                    self.complete(tok, f)?;
                }
                Step::Skip => return ControlFlow::Continue(()),
                Step::Resume => self.state = State::Start,
                Step::Error => {
                    let mut text =
                        if self.state == State::Start { Vec::new() } else { self.buf[self.tok_start..].to_vec() };
                    text.push(b);
                    // QEMU formats the token with %s, so a NUL ends it.
                    if let Some(nul) = text.iter().position(|&c| c == 0) {
                        text.truncate(nul);
                    }
                    self.reset_message();
                    self.state = State::Recovery;
                    let mut e = String::from("JSON parse error, stray '");
                    e.push_str(&qemu_lossy(&text));
                    e.push('\'');
                    return f(Message::Error(e));
                }
            }
        }
    }

    /// A string, number or keyword token starts. If the previous token was also a
    /// scalar, put a space between them in `buf`.
    fn begin_scalar(&mut self) {
        if let Some(&last) = self.buf.last() {
            if structural(last).is_none() {
                self.buf.push(b' ');
            }
        }
        self.tok_start = self.buf.len();
    }

    /// Appends a token byte and enforces the byte cap the moment it is crossed. On
    /// overflow, drops the message and resyncs as after a lexical error. Returns false
    /// then.
    fn push_byte(&mut self, b: u8, f: &mut impl FnMut(Message<'_>) -> ControlFlow<()>) -> ControlFlow<(), bool> {
        self.msg_bytes += 1;
        if self.msg_bytes > self.max_bytes {
            self.reset_message();
            self.state = State::Recovery;
            f(Message::Error(ERR_SIZE.to_owned()))?;
            return ControlFlow::Continue(false);
        }
        self.buf.push(b);
        ControlFlow::Continue(true)
    }

    /// A token is complete (its bytes are in `buf`). This is QEMU's
    /// json_message_process_token(): counters, limits, then end-of-message check.
    fn complete(&mut self, tok: Tok, f: &mut impl FnMut(Message<'_>) -> ControlFlow<()>) -> ControlFlow<()> {
        match tok {
            Tok::LCurly => self.braces += 1,
            Tok::RCurly => self.braces -= 1,
            Tok::LSquare => self.brackets += 1,
            Tok::RSquare => self.brackets -= 1,
            _ => {}
        }
        if self.tokens + 1 > self.max_tokens {
            self.reset_message();
            return f(Message::Error(ERR_COUNT.to_owned()));
        }
        if self.braces + self.brackets > self.max_depth as i64 {
            self.reset_message();
            return f(Message::Error(ERR_DEPTH.to_owned()));
        }
        self.tokens += 1;
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return ControlFlow::Continue(());
        }
        let flow = f(Message::Complete(RawMessage(Raw::Tokens(&self.buf))));
        self.reset_message();
        flow
    }

    fn reset_message(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        self.tok_start = 0;
        self.msg_bytes = 0;
        self.tokens = 0;
        self.braces = 0;
        self.brackets = 0;
    }
}

/// Re-reads the tokens of a complete message from the streamer's buffer. The lexer
/// already checked each token, so only boundaries are needed here.
struct Tokens<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (Tok, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        while buf.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let first = *buf.get(start)?;
        let tok = if let Some(t) = structural(first) {
            self.pos += 1;
            t
        } else if first == b'"' || first == b'\'' {
            self.pos += 1;
            while let Some(&c) = buf.get(self.pos) {
                self.pos += 1;
                if c == b'\\' {
                    self.pos += 1;
                } else if c == first {
                    break;
                }
            }
            self.pos = self.pos.min(buf.len());
            Tok::Str
        } else if first.is_ascii_lowercase() {
            while buf.get(self.pos).is_some_and(u8::is_ascii_lowercase) {
                self.pos += 1;
            }
            Tok::Keyword
        } else {
            let mut float = false;
            while let Some(&c) = buf.get(self.pos) {
                match c {
                    b'0'..=b'9' | b'+' | b'-' => {}
                    b'.' | b'e' | b'E' => float = true,
                    _ => break,
                }
                self.pos += 1;
            }
            if float {
                Tok::Float
            } else {
                Tok::Integer
            }
        };
        Some((tok, &buf[start..self.pos]))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArrState {
    Open,
    Comma,
    Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ObjState {
    /// After `{`: a key or `}`.
    Open,
    /// After `,`: a key (anything else is "expecting value").
    Comma,
    /// After a key: `:`.
    Key,
    /// After `:`: a value.
    Colon,
    /// After a member: `,` or `}`.
    Value,
}

/// Keys in an open object. Past this many members, a sorted set backs the
/// duplicate-key check so a large object is not quadratic.
const HASH_KEYS_AT: usize = 16;

struct ObjFrame {
    members: Vec<(String, Value)>,
    /// `Cow` only to share the set code with the command-line parser's id sets.
    keys: Option<BTreeSet<Cow<'static, str>>>,
    key: String,
    state: ObjState,
}

enum Frame {
    Array(Vec<Value>, ArrState),
    Object(ObjFrame),
}

/// The parse_error() prefix. QEMU formats the message into a 1024-byte buffer first,
/// so it keeps at most 1023 bytes.
fn perr(msg: &str) -> String {
    let mut end = msg.len().min(1023);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("JSON parse error, {}", &msg[..end])
}

/// Parses the tokens of one complete message. Same first error as QEMU's recursive
/// descent (which stops at its first error), with an explicit stack instead of recursion.
fn parse_message(buf: &[u8]) -> Result<Value, String> {
    let mut toks = Tokens { buf, pos: 0 };
    let Some(first) = toks.next() else { return Err(perr("premature EOI")) };
    let v = parse_value(&mut toks, first)?;
    // The splitter ends a message no later than its value; QEMU asserts the same.
    debug_assert!(toks.next().is_none(), "tokens after a complete value");
    Ok(v)
}

/// Parses one value that starts with token `first` and leaves `toks` just after it.
fn parse_value(toks: &mut Tokens<'_>, first: (Tok, &[u8])) -> Result<Value, String> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut cur = Some(first);
    while let Some((tok, text)) = cur {
        let wants_value = match stack.last() {
            None => true,
            Some(Frame::Array(_, ArrState::Open)) => tok != Tok::RSquare,
            Some(Frame::Array(_, ArrState::Comma)) => true,
            Some(Frame::Array(_, ArrState::Value)) => false,
            Some(Frame::Object(f)) => match f.state {
                ObjState::Open => tok != Tok::RCurly,
                ObjState::Comma | ObjState::Colon => true,
                ObjState::Key | ObjState::Value => false,
            },
        };
        let done = if wants_value {
            match tok {
                Tok::LCurly => {
                    stack.push(Frame::Object(ObjFrame {
                        members: Vec::new(),
                        keys: None,
                        key: String::new(),
                        state: ObjState::Open,
                    }));
                    None
                }
                Tok::LSquare => {
                    stack.push(Frame::Array(Vec::new(), ArrState::Open));
                    None
                }
                Tok::Integer | Tok::Float | Tok::Str | Tok::Keyword => {
                    let v = scalar(tok, text)?;
                    deliver(&mut stack, v)?
                }
                Tok::RCurly | Tok::RSquare | Tok::Colon | Tok::Comma => return Err(perr("expecting value")),
            }
        } else {
            match stack.last_mut() {
                Some(Frame::Array(_, st)) => match tok {
                    Tok::RSquare => close(&mut stack)?,
                    Tok::Comma if *st == ArrState::Value => {
                        *st = ArrState::Comma;
                        None
                    }
                    _ => return Err(perr("expected separator in list")),
                },
                Some(Frame::Object(f)) => match (f.state, tok) {
                    (ObjState::Key, Tok::Colon) => {
                        f.state = ObjState::Colon;
                        None
                    }
                    (ObjState::Key, _) => return Err(perr("missing : in object pair")),
                    (_, Tok::RCurly) => close(&mut stack)?,
                    (ObjState::Value, Tok::Comma) => {
                        f.state = ObjState::Comma;
                        None
                    }
                    _ => return Err(perr("expected separator in dict")),
                },
                None => unreachable!("a value is wanted at top level"),
            }
        };
        if let Some(v) = done {
            return Ok(v);
        }
        cur = toks.next();
    }
    Err(perr("premature EOI"))
}

/// Pops the top container and hands its value to the frame below.
fn close(stack: &mut Vec<Frame>) -> Result<Option<Value>, String> {
    let v = match stack.pop() {
        Some(Frame::Array(items, _)) => Value::Array(items),
        Some(Frame::Object(f)) => Value::Object(Object(f.members)),
        None => unreachable!("close with an empty stack"),
    };
    deliver(stack, v)
}

/// A value is complete. Returns it if it is the whole message.
fn deliver(stack: &mut [Frame], v: Value) -> Result<Option<Value>, String> {
    match stack.last_mut() {
        None => Ok(Some(v)),
        Some(Frame::Array(items, st)) => {
            items.push(v);
            *st = ArrState::Value;
            Ok(None)
        }
        Some(Frame::Object(f)) => match f.state {
            ObjState::Open | ObjState::Comma => match v {
                Value::Str(k) => {
                    f.key = k;
                    f.state = ObjState::Key;
                    Ok(None)
                }
                _ => Err(perr("key is not a string in object")),
            },
            ObjState::Colon => {
                let key = std::mem::take(&mut f.key);
                let dup = match &f.keys {
                    Some(set) => set.contains(key.as_str()),
                    None => f.members.iter().any(|(k, _)| *k == key),
                };
                if dup {
                    return Err(perr("duplicate key"));
                }
                if let Some(set) = &mut f.keys {
                    set.insert(Cow::Owned(key.clone()));
                }
                f.members.push((key, v));
                if f.keys.is_none() && f.members.len() >= HASH_KEYS_AT {
                    // Inserted one by one: the same set code as above (no bulk-build code).
                    let mut set = BTreeSet::new();
                    for (k, _) in &f.members {
                        set.insert(Cow::Owned(k.clone()));
                    }
                    f.keys = Some(set);
                }
                f.state = ObjState::Value;
                Ok(None)
            }
            ObjState::Key | ObjState::Value => unreachable!("no value expected"),
        },
    }
}

fn scalar(tok: Tok, text: &[u8]) -> Result<Value, String> {
    match tok {
        Tok::Str => parse_string(text),
        Tok::Keyword => match text {
            b"true" => Ok(Value::Bool(true)),
            b"false" => Ok(Value::Bool(false)),
            b"null" => Ok(Value::Null),
            _ => Err(perr(&format!("invalid keyword '{}'", String::from_utf8_lossy(text)))),
        },
        Tok::Integer | Tok::Float => {
            let s = String::from_utf8_lossy(text);
            if tok == Tok::Integer {
                // int64 if it fits, else uint64 (no minus sign), else a double.
                if let Ok(i) = s.parse::<i64>() {
                    return Ok(Value::Int(i));
                }
                if !s.starts_with('-') {
                    if let Ok(u) = s.parse::<u64>() {
                        return Ok(Value::UInt(u));
                    }
                }
            }
            // Like strtod: correctly rounded, overflow gives an infinity.
            Ok(Value::Double(s.parse::<f64>().unwrap_or(0.0)))
        }
        _ => unreachable!("not a scalar token"),
    }
}

/// QEMU's is_valid_codepoint(): in range, not a surrogate, not a noncharacter.
fn valid_codepoint(cp: u32) -> bool {
    cp <= 0x10FFFF && !(0xFDD0..=0xFDEF).contains(&cp) && (cp & 0xFFFE) != 0xFFFE && !(0xD800..=0xDFFF).contains(&cp)
}

/// Decodes one modified-UTF-8 sequence at the start of `s` (non-empty, first byte not
/// NUL). Returns the code point, or None if invalid, and how many bytes to skip. The
/// rules are those of QEMU's mod_utf8_codepoint(): overlong forms are rejected except
/// C0 80 (U+0000), and so are surrogates, noncharacters and anything above U+10FFFF.
/// On a missing continuation byte it skips the lead byte and the continuation bytes
/// it found.
fn mod_utf8_decode(s: &[u8]) -> (Option<u32>, usize) {
    const MIN_CP: [u32; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let b0 = s[0];
    if b0 < 0x80 {
        return (Some(u32::from(b0)), 1);
    }
    if b0 >= 0xFE || b0 & 0x40 == 0 {
        return (None, 1);
    }
    let len = b0.leading_ones() as usize; // 2..=6
    let mut cp = u32::from(b0) & ((0x80u32 >> len) - 1);
    for i in 1..len {
        let c = s.get(i).copied().unwrap_or(0);
        if c & 0xC0 != 0x80 {
            return (None, i);
        }
        cp = (cp << 6) | u32::from(c & 0x3F);
    }
    if !valid_codepoint(cp) || (cp < MIN_CP[len - 2] && !(cp == 0 && len == 2)) {
        return (None, len);
    }
    (Some(cp), len)
}

/// Turns bytes into text the way QEMU's writer would read them: modified UTF-8, with
/// each invalid sequence becoming U+FFFD. Used for bytes quoted in error messages.
pub(super) fn qemu_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            break;
        }
        let (cp, n) = mod_utf8_decode(&bytes[i..]);
        out.push(cp.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
        i += n;
    }
    out
}

/// Four hex digits at `s[at..]`, or None (QEMU's cvt4hex; past the end counts as a
/// non-digit, as the C string's NUL would).
fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let mut cp = 0u32;
    for k in 0..4 {
        let d = char::from(*s.get(at + k)?).to_digit(16)?;
        cp = (cp << 4) | d;
    }
    Some(cp)
}

/// A string token, borrowed when it holds only printable ASCII and no escapes (then its
/// bytes are its text), else decoded by [`parse_string`].
fn str_token(tok: &[u8]) -> Result<Cow<'_, str>, String> {
    let inner = &tok[1..tok.len().saturating_sub(1).max(1)];
    if inner.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'\\') {
        if let Ok(s) = std::str::from_utf8(inner) {
            return Ok(Cow::Borrowed(s));
        }
    }
    match parse_string(tok)? {
        Value::Str(s) => Ok(Cow::Owned(s)),
        _ => unreachable!("parse_string gives a string"),
    }
}

/// Decodes a string token, quotes included, by QEMU's parse_string() rules.
fn parse_string(tok: &[u8]) -> Result<Value, String> {
    let quote = tok[0];
    let mut out = String::new();
    let mut i = 1;
    while i < tok.len() && tok[i] != quote {
        if tok[i] == b'\\' {
            let beg = i;
            let esc = tok.get(i + 1).copied().unwrap_or(0);
            i += 2;
            let c = match esc {
                b'"' => '"',
                b'\'' => '\'',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let mut cp = hex4(tok, i);
                    i += 4;
                    if let Some(lead @ 0xD800..=0xDBFF) = cp {
                        if tok.get(i) == Some(&b'\\') && tok.get(i + 1) == Some(&b'u') {
                            cp = match hex4(tok, i + 2) {
                                Some(trail @ 0xDC00..=0xDFFF) => {
                                    i += 6;
                                    Some(0x10000 + ((lead & 0x3FF) << 10) + (trail & 0x3FF))
                                }
                                _ => None,
                            };
                        }
                    }
                    match cp.filter(|&cp| valid_codepoint(cp)).and_then(char::from_u32) {
                        Some(c) => c,
                        None => {
                            // "%.*s": what was consumed (6 bytes), cut at the token end.
                            let end = i.min(tok.len());
                            let shown = qemu_lossy(&tok[beg..end]);
                            return Err(perr(&format!("{shown} is not a valid Unicode character")));
                        }
                    }
                }
                _ => return Err(perr("invalid escape sequence in string")),
            };
            out.push(c);
        } else {
            let (cp, n) = mod_utf8_decode(&tok[i..]);
            match cp.and_then(char::from_u32) {
                Some(c) => out.push(c),
                None => return Err(perr("invalid UTF-8 sequence in string")),
            }
            i += n;
        }
    }
    Ok(Value::Str(out))
}

/// What [`Streamer::feed_each`] hands on: a complete message, or QEMU's text for a
/// lexical or limit error (the bytes that caused it are gone).
pub enum Message<'a> {
    Complete(RawMessage<'a>),
    Error(String),
}

/// One complete message, checked by the lexer but not yet parsed.
#[derive(Clone, Copy)]
pub struct RawMessage<'a>(Raw<'a>);

#[derive(Clone, Copy)]
enum Raw<'a> {
    /// The tokens, back to back, from the streamer's buffer.
    Tokens(&'a [u8]),
    /// A simple object read straight from the input (see [`scan_simple`]).
    Simple(Simple<'a>),
}

/// Most members a simple object has.
const SIMPLE_MEMBERS: usize = 4;

/// An object of at most [`SIMPLE_MEMBERS`] distinct keys whose keys and values are plain
/// double-quoted strings (printable ASCII, no backslash), small integers, `true`, `false`,
/// `null`, `{}` or `[]`: every request without arguments, most with them. `text` is the
/// message as sent (printable ASCII and whitespace only); spans index it.
#[derive(Clone, Copy)]
struct Simple<'a> {
    text: &'a [u8],
    members: &'a [SimpleMember],
}

/// Spans are `u32` to keep the message small (it is moved around whole); a simple object
/// is never longer than the byte cap, far below 4 GiB.
#[derive(Clone, Copy, Default)]
struct SimpleMember {
    key: (u32, u32),
    value: SimpleValue,
}

#[derive(Clone, Copy, Default)]
enum SimpleValue {
    Str(u32, u32),
    Int(i64),
    Bool(bool),
    #[default]
    Null,
    EmptyObject,
    EmptyArray,
}

impl<'a> Simple<'a> {
    fn members(&self) -> impl Iterator<Item = (&'a [u8], Item<'a>)> + '_ {
        let text = self.text;
        self.members.iter().map(move |m| {
            let item = match m.value {
                SimpleValue::Str(a, b) => Item::Ascii(&text[a as usize..b as usize]),
                SimpleValue::Int(i) => Item::Int(i),
                SimpleValue::Bool(b) => Item::Bool(b),
                SimpleValue::Null => Item::Null,
                SimpleValue::EmptyObject => Item::Object(Object::new()),
                SimpleValue::EmptyArray => Item::Array(Vec::new()),
            };
            (&text[m.key.0 as usize..m.key.1 as usize], item)
        })
    }
}

/// Byte classes for [`scan_simple`]: 1 a plain string byte (printable ASCII but `"` and
/// `\\`), 2 whitespace the lexer skips.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = 1;
        b += 1;
    }
    t[b'"' as usize] = 0;
    t[b'\\' as usize] = 0;
    t[b' ' as usize] = 1 | 2;
    t[b'\t' as usize] = 2;
    t[b'\r' as usize] = 2;
    t[b'\n' as usize] = 2;
    t
};

fn skip_ws(s: &[u8], mut p: usize) -> usize {
    while s.get(p).is_some_and(|&b| CLASS[usize::from(b)] & 2 != 0) {
        p += 1;
    }
    p
}

/// A plain string token starting at `s[p] == '"'`: its content span and the index after
/// its closing quote. None for anything else (escapes, other bytes, or no closing quote yet).
fn plain_string(s: &[u8], p: usize) -> Option<((u32, u32), usize)> {
    let start = p + 1;
    let len = s.get(start..)?.iter().position(|&b| CLASS[usize::from(b)] & 1 == 0)?;
    let end = start + len;
    let span = (u32::try_from(start).ok()?, u32::try_from(end).ok()?);
    (s[end] == b'"').then_some((span, end + 1))
}

/// True for a byte that ends a number or keyword token the way the lexer sees it and may
/// follow a member value: whitespace, `,` or `}`.
fn ends_simple_value(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}')
}

fn simple_value(s: &[u8], p: usize) -> Option<(SimpleValue, usize)> {
    match *s.get(p)? {
        b'"' => {
            let ((a, b), next) = plain_string(s, p)?;
            Some((SimpleValue::Str(a, b), next))
        }
        c @ (b'-' | b'0'..=b'9') => {
            let neg = c == b'-';
            let digits = if neg { p + 1 } else { p };
            let n = s.get(digits..)?.iter().take_while(|b| b.is_ascii_digit()).count();
            // At most 18 digits always fits an i64; "01" is a lexical error.
            if n == 0 || n > 18 || (n > 1 && s[digits] == b'0') {
                return None;
            }
            let end = digits + n;
            if !ends_simple_value(*s.get(end)?) {
                return None;
            }
            let v = s[digits..end].iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
            Some((SimpleValue::Int(if neg { -v } else { v }), end))
        }
        b't' | b'f' | b'n' => {
            let (v, len) = match s.get(p..p + 4)? {
                b"true" => (SimpleValue::Bool(true), 4),
                b"null" => (SimpleValue::Null, 4),
                b"fals" if s.get(p + 4) == Some(&b'e') => (SimpleValue::Bool(false), 5),
                _ => return None,
            };
            ends_simple_value(*s.get(p + len)?).then_some((v, p + len))
        }
        open @ (b'{' | b'[') => {
            let q = skip_ws(s, p + 1);
            match (open, *s.get(q)?) {
                (b'{', b'}') => Some((SimpleValue::EmptyObject, q + 1)),
                (b'[', b']') => Some((SimpleValue::EmptyArray, q + 1)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads a simple object (see [`Simple`]) that starts at `s[0] == '{'` and ends within `s`.
/// Returns how many bytes it spans. None when the message is anything else, or incomplete:
/// the lexer then reads it byte by byte, with the same result for a simple one.
fn scan_simple<'a>(s: &'a [u8], members: &'a mut [SimpleMember; SIMPLE_MEMBERS]) -> Option<(usize, Simple<'a>)> {
    let mut n = 0;
    let mut p = skip_ws(s, 1);
    if *s.get(p)? == b'}' {
        p += 1;
    } else {
        loop {
            if *s.get(p)? != b'"' {
                return None;
            }
            let (key, after) = plain_string(s, p)?;
            p = skip_ws(s, after);
            if *s.get(p)? != b':' {
                return None;
            }
            let (value, after) = simple_value(s, skip_ws(s, p + 1))?;
            let text = |(a, b): (u32, u32)| &s[a as usize..b as usize];
            if n == SIMPLE_MEMBERS || members[..n].iter().any(|m| text(m.key) == text(key)) {
                return None;
            }
            members[n] = SimpleMember { key, value };
            n += 1;
            p = skip_ws(s, after);
            match *s.get(p)? {
                b',' => p = skip_ws(s, p + 1),
                b'}' => {
                    p += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    Some((p, Simple { text: &s[..p], members: &members[..n] }))
}

/// A member value of a walked object: a scalar (strings borrowed from the message when
/// they need no decoding) or a container, built only when one is there.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Cow<'a, str>),
    /// A string of printable ASCII without escapes, straight from the message: its bytes
    /// are its text.
    Ascii(&'a [u8]),
    Array(Vec<Value>),
    Object(Object),
}

impl Item<'_> {
    /// The value this item stands for.
    pub fn into_value(self) -> Value {
        match self {
            Item::Ascii(b) => Value::Str(String::from_utf8_lossy(b).into_owned()),
            Item::Null => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(i) => Value::Int(i),
            Item::UInt(u) => Value::UInt(u),
            Item::Double(d) => Value::Double(d),
            Item::Str(s) => Value::Str(s.into_owned()),
            Item::Array(a) => Value::Array(a),
            Item::Object(o) => Value::Object(o),
        }
    }
}

impl From<Value> for Item<'_> {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => Item::Null,
            Value::Bool(b) => Item::Bool(b),
            Value::Int(i) => Item::Int(i),
            Value::UInt(u) => Item::UInt(u),
            Value::Double(d) => Item::Double(d),
            Value::Str(s) => Item::Str(Cow::Owned(s)),
            Value::Array(a) => Item::Array(a),
            Value::Object(o) => Item::Object(o),
        }
    }
}

/// How [`RawMessage::walk_object`] ended.
#[derive(Debug, PartialEq)]
pub enum Walk {
    /// The message is an object and every member went to the visitor.
    Walked,
    /// The message is not an object, or has more members than the walker tracks: here it
    /// is whole, and the visitor's calls so far are to be forgotten.
    Value(Value),
}

/// Most members [`RawMessage::walk_object`] checks for duplicates by itself.
const WALK_KEYS: usize = 4;

fn scalar_item(tok: Tok, text: &[u8]) -> Result<Item<'_>, String> {
    match tok {
        Tok::Str => Ok(Item::Str(str_token(text)?)),
        _ => Ok(Item::from(scalar(tok, text)?)),
    }
}

/// A container value starting at `first`: `{}` and `[]` without building a parser stack.
fn container_item<'a>(toks: &mut Tokens<'a>, first: (Tok, &'a [u8])) -> Result<Item<'a>, String> {
    let mut peek = Tokens { buf: toks.buf, pos: toks.pos };
    match (first.0, peek.next()) {
        (Tok::LCurly, Some((Tok::RCurly, _))) => {
            toks.pos = peek.pos;
            Ok(Item::Object(Object::new()))
        }
        (Tok::LSquare, Some((Tok::RSquare, _))) => {
            toks.pos = peek.pos;
            Ok(Item::Array(Vec::new()))
        }
        _ => Ok(Item::from(parse_value(toks, first)?)),
    }
}

impl<'a> RawMessage<'a> {
    /// The whole message as a `Value`, or QEMU's first grammar error.
    pub fn parse(&self) -> Result<Value, String> {
        match &self.0 {
            Raw::Tokens(buf) => parse_message(buf),
            Raw::Simple(simple) => Ok(Value::Object(Object(
                simple
                    .members()
                    .map(|(k, item)| (String::from_utf8_lossy(k).into_owned(), item.into_value()))
                    .collect(),
            ))),
        }
    }

    /// Walks a top-level object member by member, in order, calling `visit(key, value)`
    /// (the key's UTF-8 bytes)
    /// with strings borrowed from the message where possible, and containers built only
    /// when a member holds one. Errors are exactly those of [`RawMessage::parse`], in
    /// the same order (a member is visited only once its value and its key's uniqueness
    /// are checked, so a later error may follow visits).
    pub fn walk_object(&self, mut visit: impl FnMut(&[u8], Item<'a>)) -> Result<Walk, String> {
        let buf = match &self.0 {
            Raw::Tokens(buf) => *buf,
            Raw::Simple(simple) => {
                for (k, item) in simple.members() {
                    visit(k, item);
                }
                return Ok(Walk::Walked);
            }
        };
        let mut toks = Tokens { buf, pos: 0 };
        match toks.next() {
            Some((Tok::LCurly, _)) => {}
            _ => return parse_message(buf).map(Walk::Value),
        }
        let mut keys: [Cow<'a, str>; WALK_KEYS] = Default::default();
        let mut nkeys = 0;
        loop {
            let Some((tok, text)) = toks.next() else { return Err(perr("premature EOI")) };
            let key = match tok {
                Tok::RCurly if nkeys == 0 => return Ok(Walk::Walked),
                Tok::Str => str_token(text)?,
                Tok::LCurly | Tok::LSquare => {
                    parse_value(&mut toks, (tok, text))?;
                    return Err(perr("key is not a string in object"));
                }
                Tok::Integer | Tok::Float | Tok::Keyword => {
                    scalar(tok, text)?;
                    return Err(perr("key is not a string in object"));
                }
                Tok::RCurly | Tok::RSquare | Tok::Colon | Tok::Comma => return Err(perr("expecting value")),
            };
            match toks.next() {
                Some((Tok::Colon, _)) => {}
                Some(_) => return Err(perr("missing : in object pair")),
                None => return Err(perr("premature EOI")),
            }
            let item = match toks.next() {
                None => return Err(perr("premature EOI")),
                Some((tok @ (Tok::LCurly | Tok::LSquare), text)) => container_item(&mut toks, (tok, text))?,
                Some((tok @ (Tok::Integer | Tok::Float | Tok::Keyword | Tok::Str), text)) => scalar_item(tok, text)?,
                Some(_) => return Err(perr("expecting value")),
            };
            if keys[..nkeys].contains(&key) {
                return Err(perr("duplicate key"));
            }
            if nkeys == WALK_KEYS {
                return parse_message(buf).map(Walk::Value);
            }
            visit(key.as_bytes(), item);
            keys[nkeys] = key;
            nkeys += 1;
            match toks.next() {
                Some((Tok::Comma, _)) => {}
                Some((Tok::RCurly, _)) => {
                    debug_assert!(toks.next().is_none(), "tokens after a complete value");
                    return Ok(Walk::Walked);
                }
                Some(_) => return Err(perr("expected separator in dict")),
                None => return Err(perr("premature EOI")),
            }
        }
    }
}

#[cfg(test)]
impl Streamer {
    /// Lets tests reach the token-count limit without feeding 2 Mi tokens.
    pub(super) fn set_max_tokens(&mut self, n: usize) {
        self.max_tokens = n;
    }
}
