//! The one `poll()` loop: rebuilds the pollfd array from the chardev registry each round, reads
//! and writes with bounded buffers, accepts one client per server chardev, turns signals from the
//! self-pipe into run-state events, and runs the exit sequence. Never blocks on a peer.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use crate::chardev::{ReadOutcome, OUT_HIGH};
use crate::monitor;
use crate::state::{RunState, State};
use crate::sys::poll::{self, PollFd};
use crate::sys::process;
use crate::sys::signal::SignalPipe;

/// How long fdmon waits for clients to take their last output before it closes them.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before accepting again after the process ran out of fds (EMFILE/ENFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// While a reset waits for the old tree, look at what is left of it this often (a SIGCHLD
/// also triggers a look).
const RESET_RESCAN: Duration = Duration::from_millis(100);
/// After SIGKILL to the tree, how long the exit sequence waits for it to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the exit sequence looks at what is left of the tree.
const TREE_RESCAN: Duration = Duration::from_millis(50);
/// Pause after a failed `poll()` before the next try.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// Consecutive failed `poll()` calls (each after [`POLL_ERROR_BACKOFF`]) that make the error
/// fatal.
const POLL_ERROR_LIMIT: u32 = 50;

/// Signals that end fdmon through the exit sequence (SHUTDOWN `host-signal`, workload
/// terminated): the three QEMU handles, and every other one whose default action would kill
/// fdmon without that sequence. Real-time signals (SIGRTMIN..SIGRTMAX) are added at run time.
pub const TERMINATING: [i32; 12] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGPWR,
    libc::SIGIO,
    libc::SIGSTKFLT,
];
/// Signals passed on to the workload's process group (as tini and dumb-init do).
pub const FORWARDED: [i32; 3] = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Whether `sig` ends fdmon through the exit sequence.
pub fn is_terminating(sig: i32) -> bool {
    TERMINATING.contains(&sig) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig)
}

/// Every signal fdmon installs its handler for.
pub fn handled_signals() -> Vec<i32> {
    let mut v: Vec<i32> = TERMINATING.to_vec();
    v.extend_from_slice(&FORWARDED);
    v.push(libc::SIGCHLD);
    v.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    v
}

/// The line fdmon prints when a terminating signal arrives, as QEMU 7.2 does: with the
/// sender's pid and name for `kill`/`sigqueue`, without for a signal the kernel generated
/// (a terminal's Ctrl-C, si_pid 0).
pub fn terminating_message(sig: i32, pid: i32, name: Option<String>) -> String {
    if pid == 0 {
        format!("fdmon: terminating on signal {sig}")
    } else {
        let name = name.unwrap_or_else(|| "<unknown process>".to_string());
        format!("fdmon: terminating on signal {sig} from pid {pid} ({name})")
    }
}

/// What to do after `poll()` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollVerdict {
    /// Try again (after [`POLL_ERROR_BACKOFF`]).
    Retry,
    /// The error persists: give up with a clear message.
    Fatal,
}

/// Counts consecutive `poll()` failures so that a persistent one neither spins nor hangs.
/// (`EINTR` never gets here: `sys::poll` reports it as a timeout.)
#[derive(Debug, Default)]
pub struct PollErrors {
    consecutive: u32,
}

impl PollErrors {
    pub fn ok(&mut self) {
        self.consecutive = 0;
    }

    /// Records a failure. `EAGAIN`, `ENOMEM` and anything else are retried after a short
    /// pause, until [`POLL_ERROR_LIMIT`] failures in a row: then [`PollVerdict::Fatal`].
    pub fn failed(&mut self, e: &std::io::Error) -> PollVerdict {
        if e.kind() == std::io::ErrorKind::Interrupted {
            return PollVerdict::Retry;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive >= POLL_ERROR_LIMIT {
            PollVerdict::Fatal
        } else {
            PollVerdict::Retry
        }
    }
}

/// `poll()` with the retry policy: `Ok(n)` as `poll`, `Err(text)` once the failure is
/// persistent (the text is the stderr line to print).
fn poll_checked(fds: &mut [PollFd], timeout: Option<Duration>, errors: &mut PollErrors) -> Result<usize, String> {
    match poll::poll(fds, timeout) {
        Ok(n) => {
            errors.ok();
            Ok(n)
        }
        Err(e) => match errors.failed(&e) {
            PollVerdict::Retry => {
                std::thread::sleep(POLL_ERROR_BACKOFF);
                Ok(0)
            }
            PollVerdict::Fatal => {
                Err(format!("fdmon: poll failed {POLL_ERROR_LIMIT} times in a row: {}", crate::error::os_text(&e)))
            }
        },
    }
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener(usize),
    Read(usize),
    Write(usize),
    /// A reconnecting client's connect in progress.
    Connecting(usize),
    /// The workload's readiness socket or pipe (see `notify`).
    Readiness,
    /// The console's pty master; `read` when POLLIN was asked for.
    Console {
        read: bool,
    },
}

struct Loop {
    accept_paused_until: Option<Instant>,
    /// A second terminating signal arrived while shutting down: no more grace.
    kill_now: bool,
    poll_errors: PollErrors,
    /// `poll()` failed persistently: the exit sequence runs without waiting on fds.
    poll_broken: bool,
}

/// Runs until fdmon should exit; returns the exit status.
pub fn run(state: &mut State, signals: &SignalPipe) -> i32 {
    let mut lp =
        Loop { accept_paused_until: None, kill_now: false, poll_errors: PollErrors::default(), poll_broken: false };
    loop {
        monitor::events::deliver(state);
        service(state);
        if let Some(exit) = state.exit {
            return finish(state, signals, &mut lp, exit.code);
        }
        state.recycle_freed_slots();
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
        if let Some(fd) = state.workload.as_ref().and_then(|w| w.readiness_fd()) {
            fds.push(PollFd::new(fd.as_raw_fd(), poll::IN));
            tokens.push(Token::Readiness);
        }
        if let Some(i) = console_interest(state) {
            let ev = if i.read { poll::IN } else { 0 } | if i.write { poll::OUT } else { 0 };
            fds.push(PollFd::new(i.fd, ev));
            tokens.push(Token::Console { read: i.read });
        }
        if state.resetting() {
            let t = now + RESET_RESCAN;
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        let timeout = deadline.map(|t| t.saturating_duration_since(now));
        match poll_checked(&mut fds, timeout, &mut lp.poll_errors) {
            Ok(_) => {}
            Err(text) => {
                eprintln!("{text}");
                lp.poll_broken = true;
                state.fatal_error();
                continue;
            }
        }
        if state.resetting() {
            state.after_reap();
            monitor::events::deliver(state);
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
                Token::Readiness => state.on_readiness_input(),
                Token::Console { read } => console_io(state, rev, read),
            }
            // What this source caused goes out before the next source's commands run.
            monitor::events::deliver(state);
        }
    }
}

/// Advances a reconnecting client chardev; a new connection gets its monitor's greeting.
fn reconnect(state: &mut State, slot: usize, ready: bool) {
    let Some(c) = state.chardev_mut(slot) else { return };
    if c.reconnect_step(Instant::now(), ready) {
        if let Some(m) = state.frontend(slot) {
            monitor::on_connect(state, m);
        }
    }
}

/// Runs buffered input, discards input nobody listens to, and drops finished connections.
fn service(state: &mut State) {
    for slot in 0..state.chardevs.len() {
        reconnect(state, slot, false);
    }
    // By slot, re-reading the length: a monitor removed by a command in this round leaves an
    // empty slot (reused only from the next round), which `process_input` skips; one added
    // in this round is appended and runs its buffered input now, before the poll set is
    // built (a non-empty input buffer is not polled for more).
    let mut m = 0;
    while m < state.monitors.len() {
        monitor::process_input(state, m);
        m += 1;
    }
    console_service(state);
    for slot in 0..state.chardevs.len() {
        let unused = !state.chardev_busy(slot);
        let Some(c) = state.chardev_mut(slot) else { continue };
        let Some(conn) = c.conn_mut() else { continue };
        if unused {
            conn.inbuf.clear();
            conn.pending_fds.clear();
        }
        if conn.done() && state.exit.is_none() {
            disconnect(state, slot);
        }
    }
}

/// The console: moves a new workload's pty master to it, and input from its chardev towards
/// the pty.
fn console_service(state: &mut State) {
    let Some(con) = &mut state.console else { return };
    if let Some(m) = state.workload.as_mut().and_then(|w| w.take_console_master()) {
        con.attach(m);
    }
    if let Some(dev) = state.chardevs.get_mut(con.slot).and_then(Option::as_mut) {
        con.take_input(dev);
    }
}

fn console_interest(state: &State) -> Option<crate::console::Interest> {
    let con = state.console.as_ref()?;
    con.interest(state.chardev(con.slot)?)
}

/// The console's pty master is ready: input goes to the workload, output to the chardev.
fn console_io(state: &mut State, rev: i16, read: bool) {
    let Some(con) = &mut state.console else { return };
    let Some(dev) = state.chardevs.get_mut(con.slot).and_then(Option::as_mut) else { return };
    if rev & poll::OUT != 0 {
        con.on_writable();
    }
    if read && rev & (poll::IN | poll::HUP | poll::ERR | poll::NVAL) != 0 {
        con.on_readable(dev);
    } else if !read && rev & (poll::HUP | poll::ERR | poll::NVAL) != 0 {
        con.on_write_hang_up();
    }
}

fn read(state: &mut State, slot: usize) {
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    match conn.read() {
        ReadOutcome::Data | ReadOutcome::WouldBlock => {}
        ReadOutcome::Eof | ReadOutcome::Error => {}
    }
    if let Some(m) = state.frontend(slot) {
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
    if let Some(m) = state.frontend(slot) {
        monitor::on_disconnect(state, m);
    }
}

fn accept(state: &mut State, slot: usize, lp: &mut Loop) {
    let Some(c) = state.chardev_mut(slot) else { return };
    match c.accept() {
        Ok(true) => {
            if let Some(m) = state.frontend(slot) {
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
        if sig == libc::SIGCHLD {
            reap(state);
        } else if FORWARDED.contains(&sig) {
            state.forward_signal(sig);
        } else if is_terminating(sig) {
            if state.exit.is_some() {
                lp.kill_now = true;
                continue;
            }
            let name = if pid == 0 { None } else { crate::sys::signal::process_name(pid) };
            eprintln!("{}", terminating_message(sig, pid, name));
            state.request_exit("host-signal");
        } else if sig == libc::SIGTSTP {
            tty_stop(state);
        } else if sig == libc::SIGCONT {
            tty_continue(state);
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
    state.after_reap();
}

/// The exit sequence: flush every client (bounded), close the chardevs, then end the workload
/// with SIGTERM and, after the grace period (or a second signal), SIGKILL.
fn finish(state: &mut State, signals: &SignalPipe, lp: &mut Loop, _code: i32) -> i32 {
    if let Some(con) = &mut state.console {
        if let Some(dev) = state.chardevs.get_mut(con.slot).and_then(Option::as_mut) {
            con.drain(dev);
        }
    }
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
        if fds.len() == 1 || now >= deadline || lp.kill_now || lp.poll_broken {
            break;
        }
        if let Err(text) = poll_checked(&mut fds, Some(deadline - now), &mut lp.poll_errors) {
            eprintln!("{text}");
            lp.poll_broken = true;
            continue;
        }
        for (pfd, slot) in fds.iter().zip(slots) {
            if pfd.revents() == 0 {
                continue;
            }
            if slot == usize::MAX {
                handle_signals(state, signals, lp);
                monitor::events::deliver(state);
            } else {
                write(state, slot);
            }
        }
    }
    if lp.poll_broken {
        // Without poll, one best-effort write to every socket peer (sockets never block
        // here; a pipe or terminal might, so they are left alone).
        for slot in 0..state.chardevs.len() {
            let socket =
                state.chardev(slot).and_then(|c| c.conn()).is_some_and(|c| c.wfd.is_none() && !c.out.is_empty());
            if socket {
                write(state, slot);
            }
        }
    }
    // Monitors close: every connection and listener goes, paths fdmon created are removed.
    for c in state.chardevs.iter_mut() {
        *c = None;
    }
    // The console's pty master closes with its chardev: the workload's session gets SIGHUP
    // (an interactive shell, which ignores SIGTERM, ends at once).
    state.console = None;
    terminate_workload(state, signals, lp);
    state.exit.map(|e| e.code).unwrap_or(0)
}

/// Ends the whole tree (see `workload`): SIGTERM to the workload's group and every other
/// descendant (SIGCONT too if paused), then after the grace period (or a second signal)
/// SIGKILL to whatever is left, repeated until nothing is left, reaping everything.
fn terminate_workload(state: &mut State, signals: &SignalPipe, lp: &mut Loop) {
    let paused = state.run_state == RunState::Paused;
    let grace = state.shutdown_timeout;
    let Some(w) = &mut state.workload else { return };
    w.cancel_reset();
    if w.pid.is_none() && w.tree().is_empty() {
        return;
    }
    w.expect_term = true;
    w.signal_tree(libc::SIGTERM);
    if paused {
        w.signal_tree(libc::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    if wait_tree_gone(state, signals, lp, deadline, true) {
        return;
    }
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        if let Some(w) = &state.workload {
            w.signal_tree(libc::SIGKILL);
        }
        if wait_tree_gone(state, signals, lp, (Instant::now() + TREE_RESCAN).min(deadline), false) {
            return;
        }
        if Instant::now() >= deadline {
            let left = state.workload.as_ref().map(|w| w.tree().len()).unwrap_or(0);
            eprintln!("fdmon: {left} processes of the workload did not die of SIGKILL; leaving them");
            return;
        }
    }
}

/// Reaps until the tree is empty (true) or `deadline` passes (false); a second terminating
/// signal ends the wait early when `stop_on_kill_now`.
fn wait_tree_gone(
    state: &mut State,
    signals: &SignalPipe,
    lp: &mut Loop,
    deadline: Instant,
    stop_on_kill_now: bool,
) -> bool {
    loop {
        reap(state);
        let alive = state.workload.as_ref().is_some_and(|w| w.pid.is_some() || !w.tree().is_empty());
        if !alive {
            return true;
        }
        let now = Instant::now();
        if (stop_on_kill_now && lp.kill_now) || now >= deadline {
            return false;
        }
        let wait = (deadline - now).min(TREE_RESCAN);
        if lp.poll_broken {
            std::thread::sleep(wait);
            continue;
        }
        let mut fds = [PollFd::new(signals.fd().as_raw_fd(), poll::IN)];
        match poll_checked(&mut fds, Some(wait), &mut lp.poll_errors) {
            Ok(_) if fds[0].revents() != 0 => handle_signals(state, signals, lp),
            Ok(_) => {}
            Err(text) => {
                eprintln!("{text}");
                lp.poll_broken = true;
            }
        }
    }
}

/// Why [`wait_for_client`] gave up.
#[derive(Debug)]
pub enum WaitEnd {
    /// A terminating signal arrived.
    Signal(i32),
    /// `poll()` failed persistently; the text is the stderr line.
    Fatal(String),
}

/// Blocks start-up until a client connects to a `wait=on` server chardev (or a terminating
/// signal arrives, or poll fails for good).
pub fn wait_for_client(state: &mut State, slot: usize, signals: &SignalPipe) -> Result<(), WaitEnd> {
    let mut errors = PollErrors::default();
    loop {
        let Some(c) = state.chardev(slot) else { return Ok(()) };
        let Some(l) = c.listener_to_poll() else { return Ok(()) };
        let mut fds = [PollFd::new(signals.fd().as_raw_fd(), poll::IN), PollFd::new(l.as_fd().as_raw_fd(), poll::IN)];
        poll_checked(&mut fds, None, &mut errors).map_err(WaitEnd::Fatal)?;
        if fds[0].revents() != 0 {
            for (sig, _) in signals.drain() {
                if is_terminating(sig) {
                    return Err(WaitEnd::Signal(sig));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_errors_retry_then_become_fatal() {
        let mut e = PollErrors::default();
        let einval = std::io::Error::from_raw_os_error(libc::EINVAL);
        let eintr = std::io::Error::from_raw_os_error(libc::EINTR);
        for _ in 0..POLL_ERROR_LIMIT - 1 {
            assert_eq!(e.failed(&einval), PollVerdict::Retry);
            // EINTR neither counts nor resets.
            assert_eq!(e.failed(&eintr), PollVerdict::Retry);
        }
        assert_eq!(e.failed(&einval), PollVerdict::Fatal);
        // One success starts the count again.
        e.ok();
        assert_eq!(e.failed(&std::io::Error::from_raw_os_error(libc::ENOMEM)), PollVerdict::Retry);
    }

    #[test]
    fn poll_checked_gives_up_on_a_persistent_error() {
        // More fds than RLIMIT_NOFILE allows: poll fails with EINVAL every time.
        let n = 1 << 21;
        let mut fds = vec![PollFd::new(-1, poll::IN); n];
        let mut errors = PollErrors::default();
        let t = Instant::now();
        let mut rounds = 0;
        let text = loop {
            match poll_checked(&mut fds, Some(Duration::ZERO), &mut errors) {
                Ok(_) => rounds += 1,
                Err(text) => break text,
            }
            assert!(rounds < 1000, "poll with {n} fds never failed");
        };
        assert_eq!(rounds as u32, POLL_ERROR_LIMIT - 1);
        assert!(t.elapsed() >= POLL_ERROR_BACKOFF * (POLL_ERROR_LIMIT - 1), "no back-off between tries");
        assert_eq!(text, format!("fdmon: poll failed {POLL_ERROR_LIMIT} times in a row: Invalid argument"));
    }

    #[test]
    fn terminating_message_like_qemu() {
        assert_eq!(terminating_message(2, 0, None), "fdmon: terminating on signal 2");
        assert_eq!(
            terminating_message(15, 42, Some("bash".into())),
            "fdmon: terminating on signal 15 from pid 42 (bash)"
        );
        assert_eq!(
            terminating_message(15, 42, None),
            "fdmon: terminating on signal 15 from pid 42 (<unknown process>)"
        );
    }

    #[test]
    fn signal_sets() {
        for s in [libc::SIGQUIT, libc::SIGALRM, libc::SIGTERM, libc::SIGRTMIN(), libc::SIGRTMAX()] {
            assert!(is_terminating(s), "{s}");
        }
        for s in [libc::SIGUSR1, libc::SIGCHLD, libc::SIGWINCH, libc::SIGSEGV, libc::SIGABRT, libc::SIGPIPE] {
            assert!(!is_terminating(s), "{s}");
        }
        let h = handled_signals();
        assert!(h.contains(&libc::SIGUSR2) && h.contains(&libc::SIGCHLD) && !h.contains(&libc::SIGSEGV));
    }
}
