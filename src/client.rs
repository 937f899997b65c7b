//! `fdmon -client`: a one-shot QMP client in the same binary, for shells and Makefiles that have
//! no Python or socat. It connects once (no retry loop: with fd passing the socket already
//! listens), negotiates, runs commands, waits for events or readiness, and maps every outcome to
//! an exit status. It never retries a connect and never outlives `-timeout`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::os_text;
use crate::json::{self, Object, Streamer, Value};
use crate::sys;
use crate::sys::poll::{self, PollFd};
use crate::sys::socket::{ConnectTo, Family, UnixAddr};

/// The bound on a whole run when `-timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit statuses of `fdmon -client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The monitor answered with an error.
    MonitorError = 1,
    /// Could not connect, the peer is not a QMP monitor, or the command line is wrong.
    Connect = 2,
    /// `-timeout` expired.
    Timeout = 3,
}

pub const USAGE: &str = "\
usage: fdmon -client ADDR [-timeout SECS] [-hmp LINE] [-wait-event NAME] [-wait-ready]
                    [COMMAND [KEY=VALUE...] | REQUEST-JSON | -]
ADDR: unix:PATH, tcp:HOST:PORT, fd:N (an inherited connected socket) or a socket path
";

/// What one run does.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub addr: String,
    pub timeout: Option<Duration>,
    /// Requests to send, in order, each with how its reply is printed.
    pub requests: Vec<(Value, Print)>,
    /// Read further requests from stdin, one per line.
    pub stdin: bool,
    pub wait_event: Option<String>,
    pub wait_ready: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    /// The `return` value as one line of JSON.
    Json,
    /// The `return` string of `human-monitor-command` as a terminal shows it.
    Text,
}

/// Parses the arguments after `-client`.
pub fn parse(args: &[OsString]) -> Result<Plan, String> {
    let mut args: Vec<String> = args
        .iter()
        .map(|a| a.to_str().map(str::to_string).ok_or_else(|| "arguments must be valid UTF-8".to_string()))
        .collect::<Result<_, _>>()?;
    args.reverse();
    let mut plan = Plan::default();
    let mut addr = None;
    // Words of the request, when one is given as COMMAND [KEY=VALUE...] or REQUEST-JSON.
    let mut words: Vec<String> = Vec::new();
    while let Some(a) = args.pop() {
        // Options may stand anywhere; a KEY=VALUE argument always has a '='.
        let opt = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).filter(|o| !o.is_empty() && !o.contains('='));
        let value =
            |args: &mut Vec<String>, name: &str| args.pop().ok_or_else(|| format!("option -{name} needs an argument"));
        match opt {
            Some("timeout") => {
                let v = value(&mut args, "timeout")?;
                let secs: f64 = v.parse().map_err(|_| format!("-timeout: '{v}' is not a number of seconds"))?;
                if !(secs > 0.0 && secs <= 1e9) {
                    return Err(format!("-timeout: '{v}' must be a positive number of seconds"));
                }
                plan.timeout = Some(Duration::from_secs_f64(secs));
            }
            Some("hmp") => {
                let line = value(&mut args, "hmp")?;
                let req = Object::new()
                    .with("execute", "human-monitor-command")
                    .with("arguments", Object::new().with("command-line", line));
                plan.requests.push((Value::Object(req), Print::Text));
            }
            Some("wait-event") => plan.wait_event = Some(value(&mut args, "wait-event")?),
            Some("wait-ready") => plan.wait_ready = true,
            Some(o) => return Err(format!("unknown option -{o}")),
            None if addr.is_none() => addr = Some(a),
            None if a == "-" && words.is_empty() => plan.stdin = true,
            None if plan.stdin => return Err(format!("unexpected argument '{a}' after -")),
            None => words.push(a),
        }
    }
    if !words.is_empty() {
        plan.requests.push((request(&words)?, Print::Json));
    }
    plan.addr = addr.ok_or("missing ADDR")?;
    if plan.requests.is_empty() && !plan.stdin && plan.wait_event.is_none() && !plan.wait_ready {
        return Err("nothing to do: give a COMMAND, a REQUEST-JSON, -, -hmp, -wait-event or -wait-ready".into());
    }
    Ok(plan)
}

/// One JSON value, or None when `text` is not exactly one JSON value.
fn json_value(text: &str) -> Option<Value> {
    let mut out = Vec::new();
    let mut s = Streamer::new();
    s.feed(text.as_bytes(), &mut out);
    s.feed(b"\n", &mut out);
    match (out.len(), out.pop(), s.pending_bytes()) {
        (1, Some(Ok(v)), 0) => Some(v),
        _ => None,
    }
}

/// A request from qmp-shell's syntax: `COMMAND KEY=VALUE...` (VALUE as JSON when it parses as
/// JSON, else a string; `a.b=1` nests), or one word holding a whole request object.
pub fn request(words: &[String]) -> Result<Value, String> {
    let Some((first, rest)) = words.split_first() else { return Err("empty request".into()) };
    if first.starts_with('{') {
        if !rest.is_empty() {
            return Err(format!("unexpected argument '{}' after a request object", rest[0]));
        }
        return match json_value(first) {
            Some(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!("'{first}' is not a JSON object")),
        };
    }
    let mut arguments = Object::new();
    for w in rest {
        let (key, value) = w.split_once('=').ok_or_else(|| format!("argument '{w}' is not KEY=VALUE"))?;
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("argument '{w}' has an empty key"));
        }
        let value = json_value(value).unwrap_or_else(|| Value::from(value));
        insert_path(&mut arguments, key, value).map_err(|()| format!("argument '{w}' conflicts with another"))?;
    }
    let mut req = Object::new().with("execute", first.as_str());
    if !arguments.is_empty() {
        req.insert("arguments", arguments);
    }
    Ok(Value::Object(req))
}

fn insert_path(obj: &mut Object, key: &str, value: Value) -> Result<(), ()> {
    match key.split_once('.') {
        None if obj.contains_key(key) => Err(()),
        None => {
            obj.insert(key, value);
            Ok(())
        }
        Some((head, tail)) => {
            if !obj.contains_key(head) {
                obj.insert(head, Object::new());
            }
            match obj.get_mut(head).and_then(Value::as_object_mut) {
                Some(inner) => insert_path(inner, tail, value),
                None => Err(()),
            }
        }
    }
}

/// Splits a stdin line into words the way a shell would for these simple cases: whitespace
/// separates, `'...'` is literal, `"..."` allows `\"` and `\\`, and `\` escapes outside quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let t = line.trim();
    if t.starts_with('{') {
        return Ok(vec![t.to_string()]);
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = t.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Why a run stopped early.
enum Fail {
    Connect(String),
    Timeout(String),
    Monitor(String),
}

/// A QMP connection with a deadline for everything.
struct Session {
    fd: OwnedFd,
    addr: String,
    deadline: Instant,
    parser: Streamer,
    queue: std::collections::VecDeque<Result<Value, String>>,
    /// Events seen so far, oldest first.
    events: Vec<Value>,
    eof: bool,
}

impl Session {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn send(&mut self, req: &Value, waiting: &str) -> Result<(), Fail> {
        let mut text = json::to_string(req);
        text.push('\n');
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            let mut p = [PollFd::new(std::os::fd::AsRawFd::as_raw_fd(&self.fd), poll::OUT)];
            self.wait(&mut p, waiting)?;
            match sys::socket::send(self.fd.as_fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Connect(format!("{}: {}", self.addr, os_text(&e)))),
            }
        }
        Ok(())
    }

    fn wait(&self, p: &mut [PollFd], waiting: &str) -> Result<(), Fail> {
        loop {
            let left = self.left();
            if left.is_zero() {
                return Err(Fail::Timeout(format!("{}: timed out {waiting}", self.addr)));
            }
            match poll::poll(p, Some(left)) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Fail::Connect(format!("{}: poll: {}", self.addr, os_text(&e)))),
            }
        }
    }

    /// The next message from the monitor (events included).
    fn next(&mut self, waiting: &str) -> Result<Value, Fail> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return m.map_err(|e| Fail::Connect(format!("{}: not a QMP monitor: {e}", self.addr)));
            }
            if self.eof {
                return Err(Fail::Connect(format!("{}: connection closed by the monitor {waiting}", self.addr)));
            }
            let mut p = [PollFd::new(std::os::fd::AsRawFd::as_raw_fd(&self.fd), poll::IN)];
            self.wait(&mut p, waiting)?;
            let mut buf = [0u8; 4096];
            match sys::fd::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let mut out = Vec::new();
                    self.parser.feed(&buf[..n], &mut out);
                    self.queue.extend(out);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Connect(format!("{}: {}", self.addr, os_text(&e)))),
            }
        }
    }

    /// Sends one request and returns its `return` value; events that arrive meanwhile are kept.
    fn execute(&mut self, req: &Value) -> Result<Value, Fail> {
        let name = req.as_object().and_then(|o| o.get("execute")).and_then(Value::as_str).unwrap_or("request");
        let waiting = format!("waiting for the reply to {name}");
        self.send(req, &waiting)?;
        loop {
            let msg = self.next(&waiting)?;
            let Some(o) = msg.as_object() else {
                return Err(Fail::Connect(format!(
                    "{}: not a QMP monitor: unexpected {}",
                    self.addr,
                    json::to_string(&msg)
                )));
            };
            if o.contains_key("event") {
                self.events.push(msg);
                continue;
            }
            if let Some(r) = o.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = o.get("error").and_then(Value::as_object) {
                let class = e.get("class").and_then(Value::as_str).unwrap_or("GenericError");
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("");
                return Err(Fail::Monitor(format!("fdmon: {class}: {desc}")));
            }
            return Err(Fail::Connect(format!(
                "{}: not a QMP monitor: unexpected {}",
                self.addr,
                json::to_string(&msg)
            )));
        }
    }

    /// Waits for event `name`, counting the ones that already arrived.
    fn wait_event(&mut self, name: &str) -> Result<Value, Fail> {
        let is = |v: &Value| v.as_object().and_then(|o| o.get("event")).and_then(Value::as_str) == Some(name);
        if let Some(i) = self.events.iter().position(is) {
            return Ok(self.events.remove(i));
        }
        let waiting = format!("waiting for event {name}");
        loop {
            let msg = self.next(&waiting)?;
            if is(&msg) {
                return Ok(msg);
            }
        }
    }

    /// Waits until `query-workload` says the workload is ready; re-checks on each
    /// `WORKLOAD_READY`, so a readiness before the connect is never missed.
    fn wait_ready(&mut self) -> Result<Value, Fail> {
        let query = Value::Object(Object::new().with("execute", "query-workload"));
        loop {
            self.events.clear();
            let info = self.execute(&query)?;
            let w = info.as_object().and_then(|o| o.get("workload")).and_then(Value::as_object);
            let Some(w) = w else {
                return Err(Fail::Monitor("fdmon: GenericError: there is no workload".into()));
            };
            let ready = match w.get("ready").and_then(Value::as_bool) {
                Some(r) => r,
                None => w.contains_key("pid"),
            };
            if ready {
                return Ok(Value::Object(w.clone()));
            }
            self.wait_event("WORKLOAD_READY")?;
        }
    }
}

/// Parses an ADDR and connects to it, bounded by `deadline`.
fn connect(addr: &str, deadline: Instant) -> Result<OwnedFd, Fail> {
    let fail = |why: String| Fail::Connect(format!("fdmon: cannot connect to {addr}: {why}"));
    if let Some(n) = addr.strip_prefix("fd:") {
        let fd: i32 = n.parse().ok().filter(|&n| n >= 0).ok_or_else(|| fail(format!("'{n}' is not an fd number")))?;
        // The client opened nothing yet: the number can only be inherited.
        let (_, adopted) = sys::fd::adopt_all_inherited(&[fd]).pop().ok_or_else(|| fail("not adopted".into()))?;
        let fd = adopted.map_err(|e| fail(os_text(&e)))?;
        match sys::socket::socket_type(fd.as_fd()) {
            Ok(t) if t == libc::SOCK_STREAM => {}
            Ok(_) => return Err(fail("not a stream socket".into())),
            Err(_) => return Err(fail("not a socket".into())),
        }
        let _ = sys::fd::set_cloexec(fd.as_fd(), true);
        return Ok(fd);
    }
    let targets = if let Some(rest) = addr.strip_prefix("tcp:") {
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| fail("expected tcp:HOST:PORT".into()))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if port.is_empty() {
            return Err(fail("expected tcp:HOST:PORT".into()));
        }
        let host = if host.is_empty() { None } else { Some(host) };
        sys::socket::resolve(host, port, Family::Any, false)
            .map_err(fail)?
            .into_iter()
            .map(ConnectTo::Tcp)
            .collect::<Vec<_>>()
    } else {
        let path = addr.strip_prefix("unix:").unwrap_or(addr);
        if path.is_empty() {
            return Err(fail("empty socket path".into()));
        }
        vec![ConnectTo::Unix(UnixAddr::Path(path.as_bytes().to_vec()), false)]
    };
    let mut last = String::from("no address");
    for t in &targets {
        match sys::socket::connect_start(t) {
            Ok((fd, true)) => return Ok(fd),
            Ok((fd, false)) => {
                let mut p = [PollFd::new(std::os::fd::AsRawFd::as_raw_fd(&fd), poll::OUT)];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Fail::Timeout(format!("fdmon: {addr}: timed out connecting")));
                    }
                    if poll::poll(&mut p, Some(left)).map_err(|e| fail(os_text(&e)))? > 0 {
                        break;
                    }
                }
                match sys::socket::take_error(fd.as_fd()) {
                    Ok(()) => return Ok(fd),
                    Err(e) => last = os_text(&e),
                }
            }
            // A unix listener whose backlog is full answers EAGAIN to a non-blocking connect.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                last = "the monitor's listen queue is full (it is busy with other clients)".into();
            }
            Err(e) => last = os_text(&e),
        }
    }
    Err(fail(last))
}

fn print_reply(out: &mut impl Write, v: &Value, how: Print) -> io::Result<()> {
    match (how, v) {
        (Print::Text, Value::Str(s)) => out.write_all(s.replace("\r\n", "\n").as_bytes()),
        _ => {
            let mut line = json::to_string(v);
            line.push('\n');
            out.write_all(line.as_bytes())
        }
    }?;
    out.flush()
}

fn run(plan: &Plan) -> Result<(), Fail> {
    let timeout = plan.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = Instant::now() + timeout;
    let fd = connect(&plan.addr, deadline)?;
    let mut s = Session {
        fd,
        addr: plan.addr.clone(),
        deadline,
        parser: Streamer::new(),
        queue: Default::default(),
        events: Vec::new(),
        eof: false,
    };
    let greeting = s.next("waiting for the QMP greeting (is the monitor busy with another client?)")?;
    if !greeting.as_object().is_some_and(|o| o.contains_key("QMP")) {
        return Err(Fail::Connect(format!(
            "fdmon: {}: not a QMP monitor: the greeting is {}",
            plan.addr,
            json::to_string(&greeting)
        )));
    }
    s.execute(&Value::Object(Object::new().with("execute", "qmp_capabilities")))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let wrote = |e: io::Error| Fail::Connect(format!("fdmon: stdout: {}", os_text(&e)));
    for (req, how) in &plan.requests {
        let r = s.execute(req)?;
        print_reply(&mut out, &r, *how).map_err(wrote)?;
    }
    if plan.stdin {
        for line in StdinLines::default() {
            let line = line.map_err(|e| Fail::Connect(format!("fdmon: stdin: {}", os_text(&e))))?;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let req = split_words(t)
                .and_then(|w| request(&w))
                .map_err(|e| Fail::Connect(format!("fdmon: stdin: {e}: {t}")))?;
            let r = s.execute(&req)?;
            print_reply(&mut out, &r, Print::Json).map_err(wrote)?;
        }
    }
    if plan.wait_ready {
        let w = s.wait_ready()?;
        print_reply(&mut out, &w, Print::Json).map_err(wrote)?;
    }
    if let Some(name) = &plan.wait_event {
        let ev = s.wait_event(name)?;
        print_reply(&mut out, &ev, Print::Json).map_err(wrote)?;
    }
    Ok(())
}

/// `fdmon -client ...`: returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let plan = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprint!("fdmon: -client: {e}\n{USAGE}");
            return Exit::Connect as i32;
        }
    };
    let code = match run(&plan) {
        Ok(()) => Exit::Ok,
        Err(Fail::Monitor(m)) => {
            eprintln!("{m}");
            Exit::MonitorError
        }
        Err(Fail::Connect(m)) => {
            let m = if m.starts_with("fdmon: ") { m } else { format!("fdmon: {m}") };
            eprintln!("{m}");
            Exit::Connect
        }
        Err(Fail::Timeout(m)) => {
            let m = if m.starts_with("fdmon: ") { m } else { format!("fdmon: {m}") };
            eprintln!("{m} (-timeout {:?})", plan.timeout.unwrap_or(DEFAULT_TIMEOUT));
            Exit::Timeout
        }
    };
    code as i32
}

/// The lines of standard input, as `BufRead::lines` gives them (without `\n` or `\r\n`;
/// invalid UTF-8 is `InvalidData`), read straight from fd 0 (std's buffered stdin would add
/// libc imports that cost start-up time for every run, see `sys::raw`).
#[derive(Default)]
struct StdinLines {
    buf: Vec<u8>,
    eof: bool,
}

impl Iterator for StdinLines {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<io::Result<String>> {
        loop {
            let line = match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                    l.pop();
                    if l.last() == Some(&b'\r') {
                        l.pop();
                    }
                    l
                }
                None if self.eof && self.buf.is_empty() => return None,
                None if self.eof => std::mem::take(&mut self.buf),
                None => {
                    self.buf.reserve(4096);
                    match sys::fd::read_spare(io::stdin().as_fd(), &mut self.buf) {
                        Ok(0) => self.eof = true,
                        Ok(_) => {}
                        Err(e) => {
                            self.eof = true;
                            self.buf.clear();
                            return Some(Err(e));
                        }
                    }
                    continue;
                }
            };
            return Some(
                String::from_utf8(line)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(words: &str) -> String {
        let w: Vec<String> = split_words(words).unwrap();
        json::to_string(&request(&w).unwrap())
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn qmp_shell_arguments() {
        assert_eq!(req("query-status"), r#"{"execute": "query-status"}"#);
        assert_eq!(
            req("ringbuf-read device=rb size=100"),
            r#"{"execute": "ringbuf-read", "arguments": {"device": "rb", "size": 100}}"#
        );
        assert_eq!(req("chardev-remove id=x"), r#"{"execute": "chardev-remove", "arguments": {"id": "x"}}"#);
        assert_eq!(
            req("c a=true b=null c=\"s\""),
            r#"{"execute": "c", "arguments": {"a": true, "b": null, "c": "s"}}"#
        );
        assert_eq!(req("c a.b=1 a.c=x"), r#"{"execute": "c", "arguments": {"a": {"b": 1, "c": "x"}}}"#);
        assert_eq!(req("c 'd={\"k\": [1, 2]}'"), r#"{"execute": "c", "arguments": {"d": {"k": [1, 2]}}}"#);
        assert_eq!(req("c d=1x"), r#"{"execute": "c", "arguments": {"d": "1x"}}"#);
        assert_eq!(req("c d="), r#"{"execute": "c", "arguments": {"d": ""}}"#);
        assert_eq!(req(r#"{"execute": "x", "id": 5}"#), r#"{"execute": "x", "id": 5}"#);
    }

    #[test]
    fn bad_requests() {
        let bad = |w: &[&str]| request(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err();
        assert_eq!(bad(&["c", "novalue"]), "argument 'novalue' is not KEY=VALUE");
        assert_eq!(bad(&["c", "=1"]), "argument '=1' has an empty key");
        assert_eq!(bad(&["c", "a=1", "a=2"]), "argument 'a=2' conflicts with another");
        assert_eq!(bad(&["c", "a=1", "a.b=2"]), "argument 'a.b=2' conflicts with another");
        assert_eq!(bad(&["{x"]), "'{x' is not a JSON object");
        assert_eq!(split_words("a 'b").unwrap_err(), "unterminated ' quote");
    }

    #[test]
    fn command_lines() {
        let p = plan(&["unix:/s", "-timeout", "2.5", "query-status"]).unwrap();
        assert_eq!(p.addr, "unix:/s");
        assert_eq!(p.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(p.requests.len(), 1);
        let p = plan(&["/s", "-hmp", "info status", "-wait-event", "STOP", "--wait-ready"]).unwrap();
        assert_eq!(p.requests[0].1, Print::Text);
        assert_eq!(p.wait_event.as_deref(), Some("STOP"));
        assert!(p.wait_ready);
        // Options may follow the command; a word with '=' is always an argument.
        let p = plan(&["/s", "c", "-x=1", "-wait-event", "RESET", "y=2"]).unwrap();
        assert_eq!(json::to_string(&p.requests[0].0), r#"{"execute": "c", "arguments": {"-x": 1, "y": 2}}"#);
        assert_eq!(p.wait_event.as_deref(), Some("RESET"));
        assert!(plan(&["/s", "-"]).unwrap().stdin);
        assert_eq!(plan(&[]).unwrap_err(), "missing ADDR");
        assert_eq!(plan(&["/s"]).unwrap_err().split(':').next(), Some("nothing to do"));
        assert_eq!(plan(&["/s", "-bogus"]).unwrap_err(), "unknown option -bogus");
        assert_eq!(plan(&["/s", "-timeout"]).unwrap_err(), "option -timeout needs an argument");
        assert_eq!(
            plan(&["/s", "-timeout", "0", "x"]).unwrap_err(),
            "-timeout: '0' must be a positive number of seconds"
        );
        assert_eq!(plan(&["/s", "-", "x"]).unwrap_err(), "unexpected argument 'x' after -");
    }
}
