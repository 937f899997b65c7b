//! HMP (readline mode): the human monitor as QEMU 7.2 speaks it on a socket, byte for byte:
//! banner and prompt, a line editor that echoes every byte, the command interpreter, and the
//! QMP command `human-monitor-command` that runs one line without a connection. Never prints
//! events, never assumes a terminal, and never implements an operation itself: the QMP
//! handlers in `commands` do the work.
#![forbid(unsafe_code)]

mod cmds;
pub(super) mod editor;
mod parse;

use super::commands::Caller;
use super::Session;
use crate::error::QmpError;
use crate::state::State;

pub const PROMPT: &str = "(qemu) ";

pub fn banner() -> &'static str {
    concat!("fdmon ", env!("CARGO_PKG_VERSION"), " monitor - type 'help' for more information\n")
}

/// The banner and the first prompt, to monitor `m`'s peer.
pub fn send_banner(state: &mut State, m: usize) {
    super::send_text(state, m, banner());
    super::send_text(state, m, PROMPT);
}

pub use super::session::HmpSession;

/// Turns every `\n` into `\r\n`, as every monitor output does.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 8);
    for &b in bytes {
        if b == b'\n' {
            v.push(b'\r');
        }
        v.push(b);
    }
    v
}

/// Writes raw bytes (echo may hold half a UTF-8 character) to monitor `m`'s peer.
fn send(state: &mut State, m: usize, bytes: &[u8]) {
    if !bytes.is_empty() {
        super::send_bytes(state, m, bytes);
    }
}

fn send_to(state: &mut State, slot: usize, bytes: &[u8]) {
    super::output(state, None, slot, |out| super::push_crlf(out, bytes));
}

/// Bytes typed by the peer of monitor `m`: echo, and run each line entered. Stops as soon as
/// fdmon is exiting (after `quit` nothing more is written) or the session has ended. A
/// monitor that removed itself prints that command's output and no prompt, and reads no more.
pub fn feed(state: &mut State, m: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() && state.exit.is_none() {
        let Some(mon) = state.monitor_mut(m) else { return };
        let slot = m;
        // The session leaves the state while bytes are edited, so that completion can read
        // the state; it is back in place before a command runs.
        let mut session = match std::mem::replace(&mut mon.session, Session::Idle) {
            Session::Hmp(s) => s,
            other => {
                mon.session = other;
                return;
            }
        };
        let mut echo = Vec::new();
        let mut line = None;
        while i < bytes.len() && line.is_none() {
            line = session.editor.byte(bytes[i], &mut echo, &mut |text| cmds::complete(state, text));
            i += 1;
        }
        if let Some(mon) = state.monitor_mut(m) {
            mon.session = Session::Hmp(session);
        }
        send(state, m, &echo);
        let Some(line) = line else { return };
        let mut ctx = cmds::Ctx { state, caller: Caller { monitor: Some(m) }, out: Vec::new() };
        cmds::run_line(&mut ctx, &line);
        let out = ctx.out;
        super::events::deliver(state);
        if state.monitor(m).is_none() {
            send_to(state, slot, &out);
            return;
        }
        send(state, m, &out);
        if state.exit.is_some() {
            return;
        }
        send(state, m, PROMPT.as_bytes());
    }
}

/// Runs one HMP command line for QMP, in a throw-away context with no monitor (so no
/// received fds and no getfd names), and returns its output as a string with `\r\n` line
/// ends. HMP failures are part of that text, never QMP errors.
pub fn human_monitor_command(state: &mut State, line: &str, cpu_index: Option<i64>) -> Result<String, QmpError> {
    // qmp-shell -H always sends cpu-index 0; fdmon has no CPUs, so 0 is the only valid one.
    if cpu_index.is_some_and(|cpu| cpu != 0) {
        return Err(QmpError::generic("Parameter 'cpu-index' expects a CPU number"));
    }
    // QEMU hands the line on as a C string.
    let line = line.split('\0').next().unwrap_or("");
    let mut ctx = cmds::Ctx { state, caller: Caller { monitor: None }, out: Vec::new() };
    cmds::run_line(&mut ctx, line.as_bytes());
    Ok(super::commands::decode_modified_utf8(&crlf(&ctx.out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Object, Value};
    use crate::monitor::commands::DataFormat;

    fn hmc(state: &mut State, args: Object) -> Result<Value, QmpError> {
        let line = args.get("command-line").and_then(Value::as_str).unwrap_or("");
        human_monitor_command(state, line, args.get("cpu-index").and_then(Value::as_i64)).map(Value::from)
    }

    fn line(s: &str) -> Object {
        Object::new().with("command-line", Value::from(s))
    }

    #[test]
    fn banner_text() {
        assert_eq!(
            banner(),
            format!("fdmon {} monitor - type 'help' for more information\n", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn hmc_output() {
        let mut s = State::new();
        assert_eq!(hmc(&mut s, line("info status")), Ok(Value::from("VM status: running\r\n")));
        assert_eq!(hmc(&mut s, line("")), Ok(Value::from("")));
        assert_eq!(hmc(&mut s, line("stop")), Ok(Value::from("")));
        assert_eq!(hmc(&mut s, line("info status")), Ok(Value::from("VM status: paused\r\n")));
        assert_eq!(hmc(&mut s, line("bogus")), Ok(Value::from("unknown command: 'bogus'\r\n")));
        assert_eq!(
            hmc(&mut s, line("closefd nope")),
            Ok(Value::from("Error: File descriptor named 'nope' not found\r\n"))
        );
        assert_eq!(
            hmc(&mut s, line("info status\ninfo name")),
            Ok(Value::from(
                "status: extraneous characters at the end of line\r\nTry \"help info status\" for more information\r\n"
            ))
        );
        assert_eq!(hmc(&mut s, line("info status\0garbage")), Ok(Value::from("VM status: paused\r\n")));
    }

    #[test]
    fn hmc_cpu_index() {
        let mut s = State::new();
        let ok = line("info name").with("cpu-index", Value::Int(0));
        assert_eq!(hmc(&mut s, ok), Ok(Value::from("")));
        for bad in [1, 5, -1] {
            let args = line("info name").with("cpu-index", Value::Int(bad));
            assert_eq!(hmc(&mut s, args), Err(QmpError::generic("Parameter 'cpu-index' expects a CPU number")));
        }
    }

    #[test]
    fn hmc_ringbuf_decodes_like_json() {
        let mut s = State::new();
        hmc(&mut s, line("chardev-add ringbuf,id=r1,size=16")).unwrap();
        // One 0xff byte.
        crate::monitor::commands::ringbuf_write(&mut s, "r1", "/w==", DataFormat::Base64).unwrap();
        assert_eq!(hmc(&mut s, line("ringbuf_read r1 4")), Ok(Value::from("\u{fffd}\r\n")));
    }
}
