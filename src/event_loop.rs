//! The one `poll()` loop: keeps its pollfd array across rounds (rebuilt from the chardev
//! registry only when sources come or go), services only the chardevs on the state's work
//! list, reads and writes with bounded buffers (a reply is written in the round that made it),
//! accepts one client per server chardev, turns signals from the self-pipe into run-state
//! events, and runs the exit sequence. Never blocks on a peer.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::chardev::{Chardev, OUT_HIGH};
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
    TERMINATING.contains(&sig) || crate::sys::signal::realtime().contains(&sig)
}

/// Every signal fdmon installs its handler for.
pub fn handled_signals() -> Vec<i32> {
    let rt = crate::sys::signal::realtime();
    // One allocation of the final size.
    let mut v: Vec<i32> = Vec::with_capacity(TERMINATING.len() + FORWARDED.len() + 1 + rt.clone().count());
    v.extend_from_slice(&TERMINATING);
    v.extend_from_slice(&FORWARDED);
    v.push(libc::SIGCHLD);
    v.extend(rt);
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
                poll::sleep(POLL_ERROR_BACKOFF);
                Ok(0)
            }
            PollVerdict::Fatal => {
                Err(format!("fdmon: poll failed {POLL_ERROR_LIMIT} times in a row: {}", crate::error::os_text(&e)))
            }
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
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

/// The entries at the start of the poll set, whatever the chardevs: the signal pipe (0), the
/// readiness source and the console (a negative fd while there is none).
const READINESS_ENTRY: usize = 1;
const CONSOLE_ENTRY: usize = 2;
const FIXED_ENTRIES: usize = 3;

/// One poll entry of a chardev.
#[derive(Clone, Copy)]
struct Entry {
    token: Token,
    fd: RawFd,
    events: i16,
}

/// Most entries one chardev has (a connection with a separate write side).
const MAX_SLOT_ENTRIES: usize = 3;

/// The poll entries chardev `slot` needs now. Their number and tokens change only when a
/// source comes or goes (a connection, a listener to accept on, a connect in progress); the
/// fds and events of a present source change in place (a negative fd while a pipe's side has
/// nothing to do, so it is not polled at all).
fn chardev_entries(slot: usize, c: &Chardev, accept_ok: bool) -> ([Entry; MAX_SLOT_ENTRIES], usize) {
    let mut e = [Entry { token: Token::Signal, fd: -1, events: 0 }; MAX_SLOT_ENTRIES];
    let mut n = 0;
    let mut push = |token, fd, events| {
        if n < MAX_SLOT_ENTRIES {
            e[n] = Entry { token, fd, events };
            n += 1;
        }
    };
    if let (Some(fd), _) = c.reconnect_wait() {
        push(Token::Connecting(slot), fd.as_raw_fd(), poll::OUT);
    }
    if accept_ok {
        if let Some(l) = c.listener_to_poll() {
            push(Token::Listener(slot), l.as_raw_fd(), poll::IN);
        }
    }
    if let Some(conn) = c.conn() {
        let want_in = conn.wants_readable();
        let want_out = conn.wants_writable();
        match &conn.wfd {
            None => {
                let ev = if want_in { poll::IN } else { 0 } | if want_out { poll::OUT } else { 0 };
                push(Token::Read(slot), conn.fd.as_raw_fd(), ev);
            }
            Some(w) => {
                let (fd, ev) = if want_in { (conn.fd.as_raw_fd(), poll::IN) } else { (-1, 0) };
                push(Token::Read(slot), fd, ev);
                let (fd, ev) = if want_out { (w.as_raw_fd(), poll::OUT) } else { (-1, 0) };
                push(Token::Write(slot), fd, ev);
            }
        }
    }
    (e, n)
}

struct Loop {
    accept_paused_until: Option<Instant>,
    /// A second terminating signal arrived while shutting down: no more grace.
    kill_now: bool,
    poll_errors: PollErrors,
    /// `poll()` failed persistently: the exit sequence runs without waiting on fds.
    poll_broken: bool,
    /// The poll set, kept across rounds: [`FIXED_ENTRIES`] first, then each chardev's.
    fds: Vec<PollFd>,
    tokens: Vec<Token>,
    /// Per chardev slot: where its entries start in `fds` and how many there are.
    slots: Vec<(usize, usize)>,
    /// Slots of client chardevs with `reconnect=` (the only ones with timers).
    reconnecting: Vec<usize>,
    /// The poll set no longer has the right sources: rebuild it before polling.
    stale: bool,
}

impl Loop {
    fn new(signal_fd: RawFd) -> Loop {
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        fds.push(PollFd::new(signal_fd, poll::IN));
        tokens.push(Token::Signal);
        fds.push(PollFd::new(-1, 0));
        tokens.push(Token::Readiness);
        fds.push(PollFd::new(-1, 0));
        tokens.push(Token::Console { read: false });
        Loop {
            accept_paused_until: None,
            kill_now: false,
            poll_errors: PollErrors::default(),
            poll_broken: false,
            fds,
            tokens,
            slots: Vec::new(),
            reconnecting: Vec::new(),
            stale: true,
        }
    }

    /// Builds the chardevs' part of the poll set from the registry (only when sources came or
    /// went). Freed slots become reusable right before, so no entry names a reused slot.
    fn rebuild(&mut self, state: &mut State) {
        state.recycle_freed_slots();
        state.sources_changed = false;
        self.stale = false;
        self.fds.truncate(FIXED_ENTRIES);
        self.tokens.truncate(FIXED_ENTRIES);
        self.slots.clear();
        self.slots.resize(state.chardevs.len(), (FIXED_ENTRIES, 0));
        self.reconnecting.clear();
        let accept_ok = self.accept_paused_until.is_none();
        for (slot, c) in state.chardevs.iter().enumerate() {
            let Some(c) = c else { continue };
            if c.has_reconnect() {
                self.reconnecting.push(slot);
            }
            let (e, n) = chardev_entries(slot, c, accept_ok);
            self.slots[slot] = (self.fds.len(), n);
            for x in &e[..n] {
                self.fds.push(PollFd::new(x.fd, x.events));
                self.tokens.push(x.token);
            }
        }
    }

    /// Brings chardev `slot`'s entries up to date in place, or marks the set stale when its
    /// sources changed.
    fn update(&mut self, state: &State, slot: usize) {
        let (start, old) = self.slots.get(slot).copied().unwrap_or((FIXED_ENTRIES, 0));
        let Some(c) = state.chardev(slot) else {
            if old > 0 {
                self.stale = true;
            }
            return;
        };
        // The common case: a socket connection, whose one entry only changes its events.
        if let Some(conn) = c.conn().filter(|conn| conn.wfd.is_none()) {
            if old == 1 && self.tokens.get(start) == Some(&Token::Read(slot)) {
                let ev = if conn.wants_readable() { poll::IN } else { 0 }
                    | if conn.wants_writable() { poll::OUT } else { 0 };
                if let Some(p) = self.fds.get_mut(start) {
                    p.set(conn.fd.as_raw_fd(), ev);
                }
                return;
            }
        }
        let (e, n) = chardev_entries(slot, c, self.accept_paused_until.is_none());
        let same = n == old && e[..n].iter().enumerate().all(|(k, x)| self.tokens.get(start + k) == Some(&x.token));
        if !same {
            self.stale = true;
            return;
        }
        for (k, x) in e[..n].iter().enumerate() {
            if let Some(p) = self.fds.get_mut(start + k) {
                p.set(x.fd, x.events);
            }
        }
    }

    /// The earliest timer: the accept back-off, a reconnect attempt, the reset rescan.
    fn deadline(&self, state: &State) -> Option<Instant> {
        let mut deadline = self.accept_paused_until;
        for &slot in &self.reconnecting {
            if let Some(t) = state.chardev(slot).and_then(|c| c.reconnect_wait().1) {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        }
        if state.resetting() {
            let t = Instant::now() + RESET_RESCAN;
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        deadline
    }
}

/// Runs until fdmon should exit; returns the exit status.
///
/// Each round: run the work list (see [`service`]), bring the poll set up to date (rebuilt
/// only when sources came or went), poll, and handle the entries that reported, stopping
/// once as many as `poll` counted were seen. Replies are written in the round that produced
/// them; POLLOUT is asked for only after a write could not take everything.
pub fn run(state: &mut State, signals: &SignalPipe) -> i32 {
    let mut lp = Loop::new(signals.fd().as_raw_fd());
    loop {
        monitor::events::deliver(state);
        service(state, &mut lp);
        if let Some(exit) = state.exit {
            return finish(state, signals, &mut lp, exit.code);
        }
        state.recycle_freed_slots();
        if lp.stale || state.sources_changed {
            lp.rebuild(state);
        }
        let readiness = state.workload.as_ref().and_then(|w| w.readiness_fd()).map(|fd| fd.as_raw_fd());
        lp.fds[READINESS_ENTRY].set(readiness.unwrap_or(-1), if readiness.is_some() { poll::IN } else { 0 });
        match console_interest(state) {
            Some(i) => {
                let ev = if i.read { poll::IN } else { 0 } | if i.write { poll::OUT } else { 0 };
                lp.fds[CONSOLE_ENTRY].set(i.fd, ev);
                lp.tokens[CONSOLE_ENTRY] = Token::Console { read: i.read };
            }
            None => lp.fds[CONSOLE_ENTRY].set(-1, 0),
        }
        let timeout = if state.work_len() > 0 {
            Some(Duration::ZERO)
        } else {
            lp.deadline(state).map(|t| t.saturating_duration_since(Instant::now()))
        };
        let ready = match poll_checked(&mut lp.fds, timeout, &mut lp.poll_errors) {
            Ok(n) => n,
            Err(text) => {
                eprintln!("{text}");
                lp.poll_broken = true;
                state.fatal_error();
                continue;
            }
        };
        if state.resetting() {
            state.after_reap();
            monitor::events::deliver(state);
        }
        let mut seen = 0;
        let mut i = 0;
        while seen < ready && i < lp.fds.len() {
            let rev = lp.fds[i].revents();
            let tok = lp.tokens[i];
            i += 1;
            if rev == 0 {
                continue;
            }
            seen += 1;
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

/// Due timers: the end of the accept back-off, reconnect attempts (only chardevs with a
/// reconnect timer are looked at, and the clock is read only when one of them is set).
fn timers(state: &mut State, lp: &mut Loop) {
    let reconnect_due =
        lp.reconnecting.iter().any(|&s| state.chardev(s).is_some_and(|c| c.reconnect_wait().1.is_some()));
    if !reconnect_due && lp.accept_paused_until.is_none() {
        return;
    }
    let now = Instant::now();
    if lp.accept_paused_until.is_some_and(|t| now >= t) {
        lp.accept_paused_until = None;
        lp.stale = true;
    }
    for i in 0..lp.reconnecting.len() {
        let slot = lp.reconnecting[i];
        if state.chardev(slot).and_then(|c| c.reconnect_wait().1).is_some_and(|t| now >= t) {
            reconnect(state, slot, false);
        }
    }
}

/// Runs the work list: the buffered input of every chardev touched since the last round (by
/// slot, the list growing while it runs: output to other monitors, a monitor added in this
/// round running its buffered input now), then writes each one's output at once (except on a
/// shared blocking fd, written only after POLLOUT), discards input nobody listens to, drops
/// finished connections and updates poll interest. Repeats while a monitor that stopped at
/// the output high-water mark can go on after its output was written.
fn service(state: &mut State, lp: &mut Loop) {
    timers(state, lp);
    console_service(state);
    // Bounded, so that a monitor that never makes progress cannot hold the loop: whatever is
    // left stays on the work list and the next poll does not wait.
    for _ in 0..64 {
        let mut i = 0;
        while let Some(slot) = state.work_at(i) {
            if let Some(m) = state.frontend(slot) {
                monitor::process_input(state, m);
            }
            i += 1;
        }
        let mut again = false;
        let mut i = 0;
        while let Some(slot) = state.work_at(i) {
            again |= settle(state, lp, slot);
            i += 1;
        }
        if !again {
            state.work_done();
            return;
        }
    }
    // Keep the slots whose input can still run for the next round.
    let mut i = 0;
    let mut keep = Vec::new();
    while let Some(slot) = state.work_at(i) {
        if runnable(state, slot) {
            keep.push(slot);
        }
        i += 1;
    }
    state.work_done();
    for slot in keep {
        state.touch(slot);
    }
}

/// Whether chardev `slot` has input its monitor can run now.
fn runnable(state: &State, slot: usize) -> bool {
    let Some(c) = state.chardev(slot) else { return false };
    let Some(conn) = c.conn() else { return false };
    if !conn.has_input() || conn.closing || conn.pending_out().len() >= OUT_HIGH || state.exit.is_some() {
        return false;
    }
    state.frontend(slot).is_some()
}

/// After chardev `slot`'s input ran: writes its output, drops unused input and a finished
/// connection, updates its poll entries. Returns whether its monitor can run more input now.
fn settle(state: &mut State, lp: &mut Loop, slot: usize) -> bool {
    let unused = !state.chardev_busy(slot);
    let Some(c) = state.chardev_mut(slot) else {
        lp.update(state, slot);
        return false;
    };
    let Some(conn) = c.conn_mut() else {
        lp.update(state, slot);
        return false;
    };
    if unused {
        conn.discard_input();
        conn.pending_fds.clear();
    }
    let mut failed = false;
    if conn.can_write_now() && conn.flush().is_err() {
        conn.discard_output();
        conn.discard_input();
        conn.closing = true;
        failed = true;
    }
    if (failed || conn.done()) && state.exit.is_none() {
        disconnect(state, slot);
    }
    lp.update(state, slot);
    runnable(state, slot)
}

/// The console: moves a new workload's pty master to it, and input from its chardev towards
/// the pty.
fn console_service(state: &mut State) {
    let Some(con) = &mut state.console else { return };
    if let Some(m) = state.workload.as_mut().and_then(|w| w.take_console_master()) {
        con.attach(m);
    }
    let slot = con.slot;
    if let Some(dev) = state.chardevs.get_mut(slot).and_then(Option::as_mut) {
        con.take_input(dev);
    }
    // Its interest follows the console's (input taken, output added): look at it this round.
    state.touch(slot);
}

fn console_interest(state: &State) -> Option<crate::console::Interest> {
    let con = state.console.as_ref()?;
    con.interest(state.chardev(con.slot)?)
}

/// The console's pty master is ready: input goes to the workload, output to the chardev.
fn console_io(state: &mut State, rev: i16, read: bool) {
    if let Some(slot) = state.console.as_ref().map(|c| c.slot) {
        state.touch(slot);
    }
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

/// One read (its input runs when the work list does, this round).
fn read(state: &mut State, slot: usize) {
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    // End of stream and errors set `read_eof`; the work list then drops a finished connection.
    let _ = conn.read();
}

fn write(state: &mut State, slot: usize) {
    let Some(conn) = state.chardev_mut(slot).and_then(|c| c.conn_mut()) else { return };
    if conn.flush().is_err() {
        conn.discard_output();
        conn.discard_input();
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
        conn.discard_output();
        conn.discard_input();
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
            lp.stale = true;
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
                if conn.has_output() {
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
            let socket = state.chardev(slot).and_then(|c| c.conn()).is_some_and(|c| c.wfd.is_none() && c.has_output());
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
            poll::sleep(wait);
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
                    Err(_) => poll::sleep(ACCEPT_BACKOFF),
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

    fn connected(id: &str) -> (Chardev, std::os::fd::OwnedFd) {
        let (a, b) = crate::sys::socket::socketpair().unwrap();
        let backend = crate::chardev::Backend::Connected(crate::chardev::Connected {
            conn: Some(crate::chardev::Conn::new(a, true)),
            gone: String::new(),
            reconnect: None,
        });
        (Chardev { id: id.into(), backend, stdio: false, console: false }, b)
    }

    /// The token and fd of every chardev entry of the poll set.
    fn entries(lp: &Loop) -> Vec<(usize, RawFd, i16)> {
        lp.tokens[FIXED_ENTRIES..]
            .iter()
            .zip(&lp.fds[FIXED_ENTRIES..])
            .map(|(t, p)| match t {
                Token::Read(s) => (*s, p.fd(), p.events()),
                _ => panic!("unexpected token"),
            })
            .collect()
    }

    #[test]
    fn the_work_list_holds_each_touched_slot_once() {
        let mut state = State::new();
        let (a, _pa) = connected("a");
        let (b, _pb) = connected("b");
        let sa = state.add_chardev(a);
        let sb = state.add_chardev(b);
        assert_eq!((state.work_at(0), state.work_at(1), state.work_len()), (Some(sa), Some(sb), 2));
        state.work_done();
        assert_eq!(state.work_len(), 0);
        assert!(state.chardev(sb).is_some(), "looking does not touch");
        assert_eq!(state.work_len(), 0);
        let _ = state.chardev_mut(sb);
        let _ = state.monitor_conn(0);
        let _ = state.chardev_mut(sb);
        state.touch(99);
        assert_eq!((state.work_at(0), state.work_len()), (Some(sb), 1), "once, and only live slots");
    }

    #[test]
    fn the_poll_set_persists_and_a_freed_slot_waits_for_the_rebuild() {
        let mut state = State::new();
        let mut lp = Loop::new(-1);
        let (a, _pa) = connected("a");
        let (b, _pb) = connected("b");
        let sa = state.add_chardev(a);
        let sb = state.add_chardev(b);
        state.work_done();
        lp.rebuild(&mut state);
        let fd_b = state.chardev(sb).and_then(|c| c.conn()).map(|c| c.fd.as_raw_fd()).unwrap();
        assert_eq!(entries(&lp)[1], (sb, fd_b, poll::IN));
        // Interest changes in place: output that could not be written asks for POLLOUT.
        if let Some(c) = state.chardev_mut(sb).and_then(|c| c.conn_mut()) {
            c.inbuf.extend_from_slice(b"pending");
        }
        lp.update(&state, sb);
        assert!(!lp.stale);
        assert_eq!(entries(&lp)[1], (sb, fd_b, 0), "no POLLIN while input waits");
        // Removal: the set is stale, and the slot is not reused before the rebuild.
        state.remove_chardev(sa);
        lp.update(&state, sa);
        assert!(lp.stale && state.sources_changed);
        let (c, _pc) = connected("c");
        let sc = state.add_chardev(c);
        assert_ne!(sc, sa, "a slot freed in this round is not reused in it");
        state.remove_chardev(sc);
        lp.rebuild(&mut state);
        assert!(!lp.stale && !state.sources_changed);
        assert_eq!(entries(&lp).iter().map(|e| e.0).collect::<Vec<_>>(), vec![sb]);
        let (d, _pd) = connected("d");
        let sd = state.add_chardev(d);
        assert!(sd == sa || sd == sc, "after the rebuild a freed slot is reused");
        assert!(state.sources_changed, "and the set is rebuilt again before the next poll");
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
