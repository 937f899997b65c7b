//! The one `poll()` loop: rebuilds the pollfd array from the chardev registry each round, reads
//! and writes with bounded buffers, accepts one client per server chardev, turns signals from the
//! self-pipe into run-state events, and runs the exit sequence. Never blocks on a peer.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use crate::chardev::{Backend, ReadOutcome, OUT_HIGH};
use crate::monitor;
use crate::state::{RunState, State};
use crate::sys::poll::{self, PollFd};
use crate::sys::process;
use crate::sys::signal::SignalPipe;

/// How long fdmon waits for clients to take their last output before it closes them.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before accepting again after the process ran out of fds (EMFILE/ENFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener(usize),
    Read(usize),
    Write(usize),
    /// A reconnecting client's connect in progress.
    Connecting(usize),
}

struct Loop {
    accept_paused_until: Option<Instant>,
    /// A second terminating signal arrived while shutting down: no more grace.
    kill_now: bool,
}

/// Runs until fdmon should exit; returns the exit status.
pub fn run(state: &mut State, signals: &SignalPipe) -> i32 {
    let mut lp = Loop { accept_paused_until: None, kill_now: false };
    loop {
        service(state);
        if let Some(exit) = state.exit {
            return finish(state, signals, &mut lp, exit.code);
        }
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        fds.push(PollFd::new(signals.fd().as_raw_fd(), poll::IN));
        tokens.push(Token::Signal);
        let now = Instant::now();
        let accept_ok = lp.accept_paused_until.is_none_or(|t| now >= t);
        if accept_ok {
            lp.accept_paused_until = None;
        }
        let mut deadline = lp.accept_paused_until;
        for (slot, c) in state.chardevs.iter().enumerate() {
            let Some(c) = c else { continue };
            let (connecting, next_try) = c.reconnect_wait();
            if let Some(fd) = connecting {
                fds.push(PollFd::new(fd.as_raw_fd(), poll::OUT));
                tokens.push(Token::Connecting(slot));
            }
            if let Some(t) = next_try {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
            if accept_ok {
                if let Some(l) = c.listener_to_poll() {
                    fds.push(PollFd::new(l.as_raw_fd(), poll::IN));
                    tokens.push(Token::Listener(slot));
                }
            }
            if let Some(conn) = c.conn() {
                let want_in = !conn.read_eof && !conn.closing && conn.inbuf.is_empty() && conn.out.len() < OUT_HIGH;
                let want_out = !conn.out.is_empty();
                match &conn.wfd {
                    None => {
                        let ev = if want_in { poll::IN } else { 0 } | if want_out { poll::OUT } else { 0 };
                        fds.push(PollFd::new(conn.fd.as_raw_fd(), ev));
                        tokens.push(Token::Read(slot));
                    }
                    Some(w) => {
                        if want_in {
                            fds.push(PollFd::new(conn.fd.as_raw_fd(), poll::IN));
                            tokens.push(Token::Read(slot));
                        }
                        if want_out {
                            fds.push(PollFd::new(w.as_raw_fd(), poll::OUT));
                            tokens.push(Token::Write(slot));
                        }
                    }
                }
            }
        }
        let timeout = deadline.map(|t| t.saturating_duration_since(now));
        if poll::poll(&mut fds, timeout).is_err() {
            continue;
        }
        for (pfd, tok) in fds.iter().zip(tokens) {
            let rev = pfd.revents();
            if rev == 0 {
                continue;
            }
            match tok {
                Token::Signal => handle_signals(state, signals, &mut lp),
                Token::Listener(slot) => accept(state, slot, &mut lp),
                Token::Read(slot) => {
                    if rev & poll::IN != 0 {
                        read(state, slot);
                    }
                    if rev & poll::OUT != 0 {
                        write(state, slot);
                    }
                    if rev & (poll::HUP | poll::ERR | poll::NVAL) != 0 && rev & poll::IN == 0 {
                        read_side_gone(state, slot);
                    }
                }
                Token::Write(slot) => {
                    if rev & poll::OUT != 0 {
                        write(state, slot);
                    } else {
                        hang_up(state, slot);
                    }
                }
                Token::Connecting(slot) => reconnect(state, slot, true),
            }
        }
    }
}

/// Advances a reconnecting client chardev; a new connection gets its monitor's greeting.
fn reconnect(state: &mut State, slot: usize, ready: bool) {
    let Some(c) = state.chardev_mut(slot) else { return };
    if c.reconnect_step(Instant::now(), ready) {
        if let Some(m) = c.frontend {
            monitor::on_connect(state, m);
        }
    }
}

/// Runs buffered input, discards input nobody listens to, and drops finished connections.
fn service(state: &mut State) {
    for slot in 0..state.chardevs.len() {
        reconnect(state, slot, false);
    }
    for m in 0..state.monitors.len() {
        monitor::process_input(state, m);
    }
    for slot in 0..state.chardevs.len() {
        let Some(c) = state.chardev_mut(slot) else { continue };
        let frontend = c.frontend;
        let Some(conn) = c.conn_mut() else { continue };
        if frontend.is_none() {
            conn.inbuf.clear();
            conn.pending_fds.clear();
        }
        if conn.done() && state.exit.is_none() {
            disconnect(state, slot);
        }
    }
}

fn read(state: &mut State, slot: usize) {
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    match conn.read() {
        ReadOutcome::Data | ReadOutcome::WouldBlock => {}
        ReadOutcome::Eof | ReadOutcome::Error => {}
    }
    if let Some(m) = state.chardev(slot).and_then(|c| c.frontend) {
        monitor::process_input(state, m);
    }
}

fn write(state: &mut State, slot: usize) {
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    if conn.flush().is_err() {
        conn.out.clear();
        conn.inbuf.clear();
        conn.closing = true;
        if state.exit.is_none() {
            disconnect(state, slot);
        }
    }
}

/// The read side reported a hang-up without data. A socket is gone in both directions; a pipe or
/// stdio pair may still take output (replies to what was read before EOF).
fn read_side_gone(state: &mut State, slot: usize) {
    if let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) {
        if conn.wfd.is_some() {
            conn.read_eof = true;
            return;
        }
    }
    hang_up(state, slot);
}

fn hang_up(state: &mut State, slot: usize) {
    if let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) {
        conn.out.clear();
        conn.inbuf.clear();
        conn.closing = true;
    }
    if state.exit.is_none() {
        disconnect(state, slot);
    }
}

/// The peer is gone: drop the connection (and its pending fds); the monitor waits for the next.
fn disconnect(state: &mut State, slot: usize) {
    let Some(c) = state.chardev_mut(slot) else { return };
    c.drop_conn();
    if let Some(m) = c.frontend {
        monitor::on_disconnect(state, m);
    }
}

fn accept(state: &mut State, slot: usize, lp: &mut Loop) {
    let Some(c) = state.chardev_mut(slot) else { return };
    match c.accept() {
        Ok(true) => {
            if let Some(m) = c.frontend {
                monitor::on_connect(state, m);
            }
        }
        Ok(false) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
            ) =>
        {
            lp.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
        }
        Err(_) => {}
    }
}

fn handle_signals(state: &mut State, signals: &SignalPipe, lp: &mut Loop) {
    for (sig, pid) in signals.drain() {
        match sig {
            libc::SIGCHLD => reap(state),
            libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                if state.exit.is_some() {
                    lp.kill_now = true;
                    continue;
                }
                let name = crate::sys::signal::process_name(pid).unwrap_or_else(|| "<unknown process>".to_string());
                eprintln!("fdmon: terminating on signal {sig} from pid {pid} ({name})");
                state.request_exit("host-signal");
            }
            libc::SIGTSTP => tty_stop(state),
            libc::SIGCONT => tty_continue(state),
            _ => {}
        }
    }
}

/// Ctrl-Z on the monitor's terminal: the user's settings go back, fdmon stops like any job, and
/// the monitor's mode returns when it is continued in the foreground.
fn tty_stop(state: &mut State) {
    for c in state.chardevs.iter_mut().flatten() {
        if let Some(t) = c.tty_mode() {
            t.suspend();
        }
    }
    crate::sys::signal::stop_self(libc::SIGTSTP);
    tty_continue(state);
}

fn tty_continue(state: &mut State) {
    for c in state.chardevs.iter_mut().flatten() {
        if let Some(t) = c.tty_mode() {
            t.resume();
        }
    }
}

fn reap(state: &mut State) {
    while let Some((pid, status)) = process::reap_any() {
        state.on_child_exit(pid, status);
    }
}

/// The exit sequence: flush every client (bounded), close the chardevs, then end the workload
/// with SIGTERM and, after the grace period (or a second signal), SIGKILL.
fn finish(state: &mut State, signals: &SignalPipe, lp: &mut Loop, _code: i32) -> i32 {
    let deadline = Instant::now() + FLUSH_TIMEOUT;
    loop {
        let mut fds = vec![PollFd::new(signals.fd().as_raw_fd(), poll::IN)];
        let mut slots = vec![usize::MAX];
        for (slot, c) in state.chardevs.iter().enumerate() {
            if let Some(conn) = c.as_ref().and_then(|c| c.conn()) {
                if !conn.out.is_empty() {
                    fds.push(PollFd::new(conn.write_fd().as_raw_fd(), poll::OUT));
                    slots.push(slot);
                }
            }
        }
        let now = Instant::now();
        if fds.len() == 1 || now >= deadline || lp.kill_now {
            break;
        }
        if poll::poll(&mut fds, Some(deadline - now)).is_err() {
            continue;
        }
        for (pfd, slot) in fds.iter().zip(slots) {
            if pfd.revents() == 0 {
                continue;
            }
            if slot == usize::MAX {
                handle_signals(state, signals, lp);
            } else {
                write(state, slot);
            }
        }
    }
    // Monitors close: every connection and listener goes, paths fdmon created are removed.
    for c in state.chardevs.iter_mut() {
        *c = None;
    }
    terminate_workload(state, signals, lp);
    state.exit.map(|e| e.code).unwrap_or(0)
}

fn terminate_workload(state: &mut State, signals: &SignalPipe, lp: &mut Loop) {
    let paused = state.run_state == RunState::Paused;
    let grace = state.shutdown_timeout;
    let Some(w) = &mut state.workload else { return };
    if w.pid.is_none() {
        return;
    }
    w.expect_term = true;
    w.signal(libc::SIGTERM);
    if paused {
        w.signal(libc::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    loop {
        reap(state);
        let alive = state.workload.as_ref().is_some_and(|w| w.pid.is_some());
        if !alive {
            return;
        }
        let now = Instant::now();
        if lp.kill_now || now >= deadline {
            break;
        }
        let mut fds = [PollFd::new(signals.fd().as_raw_fd(), poll::IN)];
        if poll::poll(&mut fds, Some(deadline - now)).is_ok() && fds[0].revents() != 0 {
            handle_signals(state, signals, lp);
        }
    }
    if let Some(w) = &mut state.workload {
        w.kill_and_reap();
    }
}

/// Blocks start-up until a client connects to a `wait=on` server chardev (or a terminating
/// signal arrives: then Err with the signal number).
pub fn wait_for_client(state: &mut State, slot: usize, signals: &SignalPipe) -> Result<(), i32> {
    loop {
        let Some(c) = state.chardev(slot) else { return Ok(()) };
        let Some(l) = c.listener_to_poll() else { return Ok(()) };
        let mut fds = [PollFd::new(signals.fd().as_raw_fd(), poll::IN), PollFd::new(l.as_fd().as_raw_fd(), poll::IN)];
        if poll::poll(&mut fds, None).is_err() {
            continue;
        }
        if fds[0].revents() != 0 {
            for (sig, _) in signals.drain() {
                if matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGHUP) {
                    return Err(sig);
                }
                if sig == libc::SIGCHLD {
                    reap(state);
                }
            }
        }
        if fds[1].revents() != 0 {
            if let Some(c) = state.chardev_mut(slot) {
                match c.accept() {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(_) => std::thread::sleep(ACCEPT_BACKOFF),
                }
            }
        }
    }
}

/// Whether chardev `slot` is a server with `wait` semantics still pending.
pub fn is_server(state: &State, slot: usize) -> bool {
    matches!(state.chardev(slot).map(|c| &c.backend), Some(Backend::Server(_)))
}
