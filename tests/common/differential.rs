//! The one differential harness: the same input against fdmon and against QEMU 7.2 (live when
//! installed, and always against its recorded transcript in `tests/golden/`, see `golden.rs`).
//! A case is a function `Imp -> Transcript`; it starts the implementation with
//! [`pair_session`] (a QMP monitor on a socketpair at fd 3) and drives it with [`exchange`]
//! (a request, then a sentinel whose reply marks the end of the request's output), so fdmon
//! and QEMU see byte-identical input. Used by tests/differential.rs, tests/fdpass.rs and
//! tests/cli.rs; each keeps its own normalisation and its own golden files.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use super::{start_imp, Client, Fdmon, Imp};

/// Starts `imp` with `mon` (the options that put a monitor on fd 3), then `extra`; fd 3 is a
/// socketpair end whose other end is the returned client, `more` are at fds 4, 5, ... Nothing
/// is read: the greeting is the caller's (`c.line()`, or `c.negotiate()`).
pub fn pair_session<S: AsRef<str>>(imp: Imp, mon: &[&str], extra: &[S], more: Vec<OwnedFd>) -> (Fdmon, Client) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut args: Vec<String> = mon.iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.as_ref().to_string()));
    let mut fds = vec![OwnedFd::from(b)];
    fds.extend(more);
    let p = start_imp(imp, &args, fds);
    (p, Client::new(a))
}

/// The sentinel request `seq` of a session: a command every state answers with a return
/// carrying its id.
pub fn sentinel(seq: usize) -> String {
    format!(r#"{{"execute":"query-name","id":"sentinel-{seq}"}}"#)
}

/// Sends `text` (in one message with `fds` attached, when there are any) and then sentinel
/// `seq`; returns every line that came before the sentinel's reply, as received.
pub fn exchange(c: &mut Client, seq: usize, text: &str, fds: &[&dyn AsFd]) -> Vec<String> {
    if fds.is_empty() {
        c.send(text);
    } else {
        c.send_fds(text, fds);
    }
    c.send(&sentinel(seq));
    let want = format!(r#""id": "sentinel-{seq}""#);
    let mut lines = Vec::new();
    loop {
        let l = c.line();
        if l.contains(&want) {
            return lines;
        }
        lines.push(l);
    }
}
