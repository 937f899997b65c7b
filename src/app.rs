//! Start-up and shutdown around the event loop: command line to `State`, fd sets, chardevs,
//! monitors, pidfile, daemonizing and the workload. The only place that picks an exit status.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::activation::Activation;
use crate::chardev::open::{open, InheritedFds};
use crate::error::os_text;
use crate::monitor::{self, Mode};
use crate::opts::{self, Action, Config, Deferred, MonitorMode};
use crate::state::{RunState, State};
use crate::sys;
use crate::workload::Workload;

/// Runs fdmon with `args` (without argv[0]) and returns the exit status.
pub fn main(args: &[&OsStr]) -> i32 {
    let _ = sys::signal::ignore(libc::SIGPIPE);
    if matches!(args.first().and_then(|a| a.to_str()), Some("-client" | "--client")) {
        let owned: Vec<OsString> = args[1..].iter().map(|a| a.to_os_string()).collect();
        return crate::client::main(&owned);
    }
    let config = match opts::parse_args(args, &mut OnDemand(std::io::stdout), &mut OnDemand(std::io::stderr)) {
        Ok(Action::Run(c)) => c,
        Ok(Action::Exit(code)) => return code,
        Err(e) => {
            eprintln!("{}", e.text);
            return 1;
        }
    };
    match start(config) {
        Ok(code) => code,
        Err(text) => {
            eprintln!("{text}");
            1
        }
    }
}

/// A standard stream, set up only when something is written to it (std's stdout allocates
/// its line buffer when first used: a command line that prints nothing never needs it).
struct OnDemand<W: Write>(fn() -> W);

impl<W: Write> Write for OnDemand<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        (self.0)().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (self.0)().flush()
    }
}

/// Prefixes every line but the continuation lines of a multi-line reason.
fn at(origin: &str, reason: &str) -> String {
    format!("{}{reason}", opts::prefix(origin))
}

struct Pidfile {
    path: String,
    file: OwnedFd,
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = sys::fs::remove_file(&self.path);
    }
}

fn create_pidfile(path: &str) -> Result<Pidfile, String> {
    let file = sys::fs::open(path, libc::O_RDWR | libc::O_CREAT, 0o600)
        .map_err(|e| format!("fdmon: cannot create PID file: Could not create '{path}': {}", os_text(&e)))?;
    sys::fd::lock_exclusive_nonblocking(file.as_fd())
        .map_err(|e| format!("fdmon: cannot create PID file: Cannot lock pid file: {}", os_text(&e)))?;
    Ok(Pidfile { path: path.to_string(), file })
}

fn write_pid(p: &mut Pidfile) -> Result<(), String> {
    let text = format!("{}\n", sys::process::getpid());
    sys::fs::set_len(p.file.as_fd(), 0)
        .and_then(|_| sys::fd::write_all(p.file.as_fd(), text.as_bytes()))
        .map_err(|e| format!("fdmon: cannot create PID file: Failed to write PID to '{}': {}", p.path, os_text(&e)))
}

/// Forks into the background. The original process waits for one status byte from the daemon
/// (0 = ready) and exits with it; the daemon gets the write end of that pipe.
fn daemonize() -> Result<OwnedFd, String> {
    let (r, w) = sys::fd::pipe(false).map_err(|e| format!("fdmon: cannot daemonize: {}", os_text(&e)))?;
    match sys::process::fork().map_err(|e| format!("fdmon: cannot daemonize: {}", os_text(&e)))? {
        sys::process::Fork::Parent(_) => {
            drop(w);
            let mut b = [1u8; 1];
            let ok = matches!(sys::fd::read(r.as_fd(), &mut b), Ok(1)) && b[0] == 0;
            sys::process::exit_immediately(if ok { 0 } else { 1 });
        }
        sys::process::Fork::Child => {}
    }
    drop(r);
    let _ = sys::process::setsid();
    // QEMU's daemon umask: files it creates from now on (`-chardev file`, sockets, the pid
    // file) are at most rw-r-----.
    sys::process::set_umask(0o027);
    match sys::process::fork().map_err(|e| format!("fdmon: cannot daemonize: {}", os_text(&e)))? {
        sys::process::Fork::Parent(_) => sys::process::exit_immediately(0),
        sys::process::Fork::Child => {}
    }
    Ok(w)
}

/// Every inherited fd number the command line names, in command-line order by kind.
fn inherited_numbers(config: &Config, activation: Option<&Activation>) -> Vec<std::os::fd::RawFd> {
    use crate::chardev::spec::{BackendSpec, SocketAddrSpec};
    // `-add-fd` and `-pass-fd` refuse the standard streams (before any adoption, so their
    // error still reaches stderr); a chardev `fd=2` is adopted, and closed by its error, as
    // in QEMU.
    let mut v: Vec<std::os::fd::RawFd> = config.add_fds.iter().map(|a| a.fd).filter(|&n| n > 2).collect();
    for c in &config.chardevs {
        if let BackendSpec::Socket(s) = &c.spec.backend {
            if let Some(n) = match &s.addr {
                SocketAddrSpec::Fd(f) => f.number(),
                _ => None,
            } {
                v.push(n);
            }
        }
    }
    v.extend(config.pass_fds.iter().filter(|&&n| n > 2));
    // Every socket-activation fd: those no chardev names are closed after start-up.
    v.extend(activation.iter().flat_map(|a| a.numbers()));
    v
}

/// Opens a command-line chardev; an `fd=` moves from the inherited fds into it.
fn open_cli(
    spec: &crate::chardev::spec::ChardevSpec,
    inherited: &mut InheritedFds,
) -> Result<crate::chardev::Chardev, crate::chardev::open::OpenError> {
    crate::chardev::validate::before_open(spec)?;
    let fd = match spec.fd_ref() {
        Some(f) => Some(inherited.resolve(f)?),
        None => None,
    };
    open(spec, fd)
}

/// `-serial`, after the monitors as in QEMU: opens the legacy device's chardev (`serial0`) if
/// there is one, and puts the workload's console on the chardev.
fn open_console(
    state: &mut State,
    s: &opts::SerialSpec,
    inherited: &mut InheritedFds,
    signals: &sys::signal::SignalPipe,
    pidfile: &mut Option<Pidfile>,
) -> Result<(), String> {
    if let Some(e) = &s.deferred {
        return Err(e.clone());
    }
    let dev_text = s.origin.split_once(' ').map(|(_, d)| d).unwrap_or("");
    let last = at(&s.origin, &format!("could not connect serial device to character backend '{dev_text}'"));
    if let Some(c) = &s.new {
        let dev = open_cli(&c.spec, inherited).map_err(|e| format!("{}\n{last}", at(&s.origin, &e.to_string())))?;
        state.cli_chardev_ids.push(c.spec.id.clone());
        let slot = state.add_chardev(dev);
        let wait = matches!(&c.spec.backend, crate::chardev::spec::BackendSpec::Socket(s) if s.server && s.wait);
        if wait {
            let name = state.chardev(slot).map(|d| d.filename()).unwrap_or_default();
            eprintln!("{}", at(&s.origin, &format!("info: fdmon waiting for connection on: {name}")));
            match crate::event_loop::wait_for_client(state, slot, signals) {
                Ok(()) => {}
                Err(crate::event_loop::WaitEnd::Signal(sig)) => {
                    state.chardevs.clear();
                    drop(pidfile.take());
                    sys::signal::die_of(sig);
                }
                Err(crate::event_loop::WaitEnd::Fatal(text)) => return Err(text),
            }
        }
    }
    let slot = state.chardev_slot(&s.chardev).ok_or(last)?;
    if let Some(c) = state.chardev_mut(slot) {
        c.console = true;
    }
    state.console = Some(crate::console::Console::new(slot));
    Ok(())
}

fn start(config: Config) -> Result<i32, String> {
    // First, before fdmon opens any fd of its own (the signal pipe below, the pid file,
    // listeners): take every inherited fd the command line names, so that a number that was
    // not inherited stays "not open" instead of naming one of fdmon's own fds.
    // The environment is walked once for `LISTEN_*`; without them there is nothing to read.
    let listen_vars = sys::process::env_names_with_prefix(b"LISTEN_");
    let activation = if listen_vars.is_empty() {
        None
    } else {
        Activation::from_env(sys::process::getpid(), |k| sys::process::env_get(k).and_then(|v| v.into_string().ok()))?
    };
    let adopted = sys::fd::adopt_all_inherited(&inherited_numbers(&config, activation.as_ref()));
    let mut inherited = InheritedFds::new(adopted).with_activation(activation);
    let signals = sys::signal::install(&crate::event_loop::handled_signals())
        .map_err(|e| format!("fdmon: cannot install signal handlers: {}", os_text(&e)))?;
    for k in &listen_vars {
        sys::process::env_remove(std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()));
    }
    // fdmon's own service manager (a systemd Type=notify service): told READY=1 when fdmon is
    // ready; the workload never sees this socket.
    let supervisor = crate::notify::take_supervisor_socket();
    let mut state = State::new();
    state.no_shutdown = config.no_shutdown;
    state.name = config.name.clone();
    if let Some(u) = &config.uuid {
        state.uuid = u.to_ascii_lowercase();
    }
    state.shutdown_timeout = config.shutdown_timeout;
    if let Some(p) = &config.process_name {
        let _ = sys::process::set_process_name(p);
    }

    // QEMU's order from here on: every -add-fd row, the pid file, each chardev in command-line
    // order (its own errors, then opening it), then the monitors.
    let mut originals = Vec::new();
    for a in &config.add_fds {
        if let Some(e) = &a.deferred {
            return Err(e.clone());
        }
        // The number itself is only looked at while the table holds it (it was inherited).
        if !inherited.is_open(a.fd) || !sys::fd::is_inheritable(a.fd) {
            return Err(at(&a.origin, "fd is not valid or already in use"));
        }
        if a.set < 0 {
            return Err(at(&a.origin, opts::ADD_FD_NO_SET));
        }
        let copy = sys::fd::dup_number(a.fd).map_err(|e| at(&a.origin, &os_text(&e)))?;
        state.fdsets.add(Some(a.set), copy, a.opaque.clone()).map_err(|e| at(&a.origin, &e.to_string()))?;
        if !originals.contains(&a.fd) {
            originals.push(a.fd);
        }
    }
    // The fd sets hold copies: the inherited numbers close once all rows are in.
    for n in originals {
        inherited.close(n);
    }

    let ready = if config.daemonize { Some(daemonize()?) } else { None };
    let mut pidfile = match &config.pidfile {
        Some(p) => Some(create_pidfile(p)?),
        None => None,
    };

    for c in &config.chardevs {
        match &c.deferred {
            Some(Deferred::Error(e)) => return Err(e.clone()),
            Some(Deferred::Help(text)) => {
                print!("{text}");
                let _ = std::io::stdout().flush();
                return Ok(0);
            }
            None => {}
        }
        let dev = open_cli(&c.spec, &mut inherited).map_err(|e| at(&c.origin, &e.to_string()))?;
        state.cli_chardev_ids.push(c.spec.id.clone());
        let slot = state.add_chardev(dev);
        let wait = matches!(&c.spec.backend, crate::chardev::spec::BackendSpec::Socket(s) if s.server && s.wait);
        if wait {
            let name = state.chardev(slot).map(|d| d.filename()).unwrap_or_default();
            eprintln!("{}", at(&c.origin, &format!("info: fdmon waiting for connection on: {name}")));
            match crate::event_loop::wait_for_client(&mut state, slot, &signals) {
                Ok(()) => {}
                Err(crate::event_loop::WaitEnd::Signal(sig)) => {
                    // QEMU is still inside start-up here and dies of the signal: so does fdmon.
                    drop(state);
                    drop(pidfile);
                    sys::signal::die_of(sig);
                }
                Err(crate::event_loop::WaitEnd::Fatal(text)) => return Err(text),
            }
        }
    }
    // Socket-activation fds that no chardev took (and no -pass-fd names) close now.
    inherited.close_unused_activation(&config.pass_fds);

    for m in &config.monitors {
        if let Some(e) = &m.deferred {
            return Err(e.clone());
        }
        let slot = state
            .chardev_slot(&m.chardev)
            .ok_or_else(|| at(&m.origin, &format!("chardev \"{}\" not found", m.chardev)))?;
        let mode = match m.mode {
            MonitorMode::Control => Mode::Control { pretty: m.pretty },
            MonitorMode::Readline => Mode::Readline,
        };
        monitor::attach(&mut state, m.id.clone(), slot, mode).map_err(|e| at(&m.origin, &e.desc))?;
    }

    if let Some(s) = &config.serial {
        open_console(&mut state, s, &mut inherited, &signals, &mut pidfile)?;
    }

    if !config.workload.is_empty() {
        for &fd in &config.pass_fds {
            if !inherited.is_open(fd) {
                return Err(format!("fdmon: -pass-fd {fd}: File descriptor {fd} is not open"));
            }
        }
        let mut w = Workload::new(&config.workload, &config.pass_fds).map_err(|e| format!("fdmon: {e}"))?;
        // Everything the workload starts stays fdmon's descendant (and is ended with it).
        sys::process::set_child_subreaper()
            .map_err(|e| format!("fdmon: cannot become a subreaper: {}", os_text(&e)))?;
        if config.daemonize {
            // A daemon's workload never holds the caller's stdio, also when it starts before
            // fdmon's own 0/1/2 become /dev/null (at readiness, below).
            let null = sys::fd::open_devnull()
                .and_then(|n| if n.as_raw_fd() < 3 { sys::fd::dup_cloexec(n.as_fd()) } else { Ok(n) })
                .map_err(|e| format!("fdmon: cannot open /dev/null: {}", os_text(&e)))?;
            w.set_stdio(null);
        }
        if state.chardevs.iter().flatten().any(|c| c.is_stdio_tty()) {
            w.keep_terminal();
        }
        if config.ready == opts::Readiness::Notify {
            let sock = crate::notify::NotifySocket::create()?;
            sys::process::env_set("NOTIFY_SOCKET", sock.path());
            w.set_readiness(config.ready, Some(sock));
        } else {
            w.set_readiness(config.ready, None);
        }
        if let Some(con) = &state.console {
            w.set_console_size(con.size.0, con.size.1);
        }
        state.workload = Some(w);
        if !config.start_paused {
            state.start_workload().map_err(|e| format!("fdmon: {e}"))?;
        }
    }
    state.run_state = if config.start_paused { RunState::Prelaunch } else { RunState::Running };

    if let Some(p) = &mut pidfile {
        write_pid(p)?;
    }
    // Ready: every monitor listens and the workload (if one started) is ready; with -S there
    // is no workload start to wait for. Otherwise the event loop reports it later
    // (`State::report_ready`), or the failure if the workload ends first.
    state.ready_report = Some(crate::state::ReadyReport { daemon: ready, supervisor });
    let workload_pending = state.workload.as_ref().is_some_and(|w| w.pid.is_some() && !w.ready);
    if !workload_pending {
        state.report_ready();
    }

    let code = crate::event_loop::run(&mut state, &signals);
    if state.ready_report.as_ref().is_some_and(|r| r.daemon.is_some()) {
        // The caller of -daemonize still waits (its status is 1 when this process ends).
        eprintln!("fdmon: exiting before the workload was ready");
    }
    drop(state);
    drop(pidfile);
    // The -pass-fd fds (still adopted here) stay open for every workload start until now.
    drop(inherited);
    Ok(code)
}
