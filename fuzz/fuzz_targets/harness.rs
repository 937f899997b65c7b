//! Shared by the targets that run commands: a fresh `State` with one monitor whose chardev is
//! a connected socket (one end of a socketpair, never read: output is dropped), fed through
//! `monitor::process_input`, the function the event loop calls. Commands that create files
//! or sockets do so in a private scratch directory.
#![allow(dead_code)]

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Once;

use fdmon::chardev::{Backend, Chardev, Conn, Connected, OUT_HIGH};
use fdmon::monitor::{self, Mode, Monitor};
use fdmon::state::State;

/// Moves into a scratch directory once, so `chardev-add file,path=x` stays out of the tree.
pub fn scratch_cwd() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("fdmon-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::env::set_current_dir(&dir);
    });
}

/// A state with monitor 0 connected in `mode` (greeting or banner already queued), plus the
/// peer's end of the socket (kept open so writes would not fail).
pub fn state_with_monitor(mode: Mode) -> (State, UnixStream) {
    scratch_cwd();
    let mut st = State::new();
    let (peer, ours) = UnixStream::pair().expect("socketpair");
    let conn = Conn::new(OwnedFd::from(ours), true);
    let ch = Chardev {
        id: "mon".to_string(),
        backend: Backend::Connected(Connected { conn: Some(conn), gone: String::new(), reconnect: None }),
        stdio: false,
        console: false,
    };
    let slot = st.add_chardev(ch);
    let m = st.add_monitor(slot, Monitor::new(None, mode));
    monitor::on_connect(&mut st, m);
    (st, peer)
}

/// Hands `bytes` to monitor 0 as the loop does, discarding output whenever it piles up
/// (standing in for a peer that reads everything).
pub fn feed(st: &mut State, bytes: &[u8]) {
    if let Some(c) = st.monitor_conn(0) {
        c.inbuf.extend_from_slice(bytes);
    }
    loop {
        monitor::process_input(st, 0);
        if st.exit.is_some() {
            return;
        }
        let Some(c) = st.monitor_conn(0) else { return };
        if !c.has_input() || c.closing {
            return;
        }
        let out = c.pending_out().len();
        assert!(out < OUT_HIGH * 64, "one slice of input produced {out} bytes of output");
        c.discard_output();
    }
}
