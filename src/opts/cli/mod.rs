//! The fdmon command line: a pull-style lexer over argv (`-opt` == `--opt`), one option
//! table that drives both parsing and `-h`, and the three passes QEMU makes over its
//! options (names, then values left to right, then meaning). It prints only help, version
//! and warnings (to the writers it is given), never exits, and never touches the OS: fd
//! validity, sockets, pid files and the like are checked by the caller afterwards.
//!
//! `table` holds the option table and `-h`, `lexer` the argv lexer, `legacy` QEMU's legacy
//! `-qmp`/`-monitor`/`-serial` device syntax; this module the three passes and `Config`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::chardev::spec::{BackendSpec, ChardevSpec, SocketAddrSpec};

use super::chardev::{backend_help, chardev_from_kv, parse_fd_number, wants_backend_help, CHARDEV_OPTS};
use super::kv::{id_wellformed, parse_kv, parse_kv_quiet, KvList, OptDesc, OptError, OptType, OptsList, ParseStop};

mod legacy;
mod lexer;
mod table;

use legacy::*;
use lexer::*;
use table::*;
pub use table::{help_text, version_text, OptDef, MON_OPTS};

/// The name every diagnostic starts with.
pub const PROGRAM: &str = "fdmon";

/// Grace period between SIGTERM and SIGKILL for the workload when fdmon quits.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMode {
    /// QMP.
    Control,
    /// HMP (the default for `-mon`).
    Readline,
}

/// A check whose outcome QEMU reports only when start-up reaches that item: `-add-fd` rows
/// first, then the pid file, then each chardev in order, then the monitors. The caller runs
/// the OS checks in the same order and stops at the first failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// The full stderr text (prefixed); exit status 1.
    Error(String),
    /// `-chardev help`: this text goes to stdout; exit status 0.
    Help(String),
}

/// A chardev from `-chardev`, or the one a legacy `-qmp`/`-monitor DEV` creates.
#[derive(Debug, Clone, PartialEq)]
pub struct CliChardev {
    /// Only a placeholder (the id and a null backend) when `deferred` is set.
    pub spec: ChardevSpec,
    /// Start-up stops here with this outcome.
    pub deferred: Option<Deferred>,
    /// The option as typed, e.g. `-chardev socket,fd=3,id=mon` or `-qmp stdio`; pass it to
    /// [`prefix`] for start-up errors about this chardev.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    /// `-mon id=`; for `-qmp`/`-monitor` the label QEMU gives the option (`compat_monitorN`,
    /// or LABEL for `chardev:LABEL`); `None` for `-mon` without `id=`.
    pub id: Option<String>,
    /// Id of the chardev (always one of `Config::chardevs`).
    pub chardev: String,
    pub mode: MonitorMode,
    pub pretty: bool,
    pub origin: String,
    /// Start-up stops here with this error text.
    pub deferred: Option<String>,
}

/// `-serial DEV`: the workload's console on a chardev (an existing one with `chardev:ID`, or
/// `serial0` created from a legacy device). Opened after the monitors, as QEMU does.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSpec {
    /// Id of the console's chardev.
    pub chardev: String,
    /// The chardev a legacy device creates (`serial0`); `None` for `chardev:ID`.
    pub new: Option<CliChardev>,
    pub origin: String,
    /// Start-up stops here with this error text (after the monitors).
    pub deferred: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AddFdSpec {
    /// At least 3 unless `deferred` is set. The caller checks it is open and has no FD_CLOEXEC
    /// (`fd is not valid or already in use`), then that `set` is >= 0 (QEMU's order).
    pub fd: i32,
    /// May be negative: `set option is required and must be non-negative` ([`ADD_FD_NO_SET`]).
    pub set: i64,
    pub opaque: Option<String>,
    pub origin: String,
    /// Start-up stops at this row with this error text.
    pub deferred: Option<String>,
}

/// The `-add-fd` error for a missing or negative `set=`, checked after the fd itself.
pub const ADD_FD_NO_SET: &str = "set option is required and must be non-negative";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// In command-line order (`-chardev` and legacy `-qmp`/`-monitor` interleaved).
    pub chardevs: Vec<CliChardev>,
    /// In command-line order; each uses a different chardev.
    pub monitors: Vec<MonitorSpec>,
    /// `-serial`: at most one (fdmon has one workload console).
    pub serial: Option<SerialSpec>,
    /// `-S`
    pub start_paused: bool,
    pub no_shutdown: bool,
    /// `-name guest=`; `None` when no `-name` gave one.
    pub name: Option<String>,
    /// `-name process=`
    pub process_name: Option<String>,
    /// Lower-case canonical form.
    pub uuid: Option<String>,
    pub pidfile: Option<String>,
    pub daemonize: bool,
    pub add_fds: Vec<AddFdSpec>,
    /// Distinct, >= 3, in command-line order.
    pub pass_fds: Vec<i32>,
    pub shutdown_timeout: Duration,
    /// Everything after `--`, verbatim; empty when there is no `--`.
    pub workload: Vec<OsString>,
    /// `-ready`: when the workload counts as ready.
    pub ready: Readiness,
}

/// `-ready`: how the workload says it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// No `-ready`: as soon as its exec succeeded.
    #[default]
    Exec,
    /// `-ready notify`: `READY=1` on the `NOTIFY_SOCKET` fdmon gives it (sd_notify).
    Notify,
    /// `-ready fd=N`: a line written to its fd N (s6's notification-fd).
    Fd(i32),
}

/// Parses the argument of `-ready`.
fn parse_readiness(arg: &str) -> Option<Readiness> {
    match arg {
        "notify" => Some(Readiness::Notify),
        _ => arg.strip_prefix("fd=").and_then(parse_fd_number).map(Readiness::Fd),
    }
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // the shape the rest of fdmon expects
pub enum Action {
    Run(Config),
    /// Exit with this status now; whatever had to be printed (`-version`, `-h`,
    /// `-chardev help`, an option's key list) has been written to `out`.
    Exit(i32),
}

/// A fatal command-line error; the process exits with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The complete stderr text: every line, prefixes included, no trailing newline.
    pub text: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CliError {}

/// `fdmon: ORIGIN: ` — the prefix of every message about one option (`origin` as stored in
/// the config: the option name as typed, a space, the raw argument).
pub fn prefix(origin: &str) -> String {
    format!("{PROGRAM}: {origin}: ")
}

fn fail(origin: &str, e: &OptError) -> CliError {
    CliError { text: format!("{}{}", prefix(origin), e) }
}

fn fail_msg(origin: &str, msg: &str) -> CliError {
    CliError { text: format!("{}{}", prefix(origin), msg) }
}

struct PendingOpts<'a> {
    kv: KvList<'a>,
    origin: String,
}

/// Strings borrowed from argv where they can be (`Cow::Owned` for a `,,` escape or a
/// legacy option's label).
struct PendingMon<'a> {
    id: Option<Cow<'a, str>>,
    chardev: Option<Cow<'a, str>>,
    mode: Option<Cow<'a, str>>,
    pretty: bool,
    origin: String,
}

#[derive(Default)]
struct Parser<'a> {
    chardevs: Vec<PendingOpts<'a>>,
    /// The ids each option list holds so far (QEMU's `Duplicate ID` check), as sets: a
    /// command line with thousands of chardevs is not checked by scanning every id before.
    chardev_ids: BTreeSet<Cow<'a, str>>,
    mons: Vec<PendingMon<'a>>,
    mon_ids: BTreeSet<Cow<'a, str>>,
    add_fds: Vec<PendingOpts<'a>>,
    add_fd_ids: BTreeSet<Cow<'a, str>>,
    pass_fds: Vec<(i32, String)>,
    monitor_index: u32,
    /// `-serial` as typed: (argument, origin).
    serial: Option<(String, String)>,
    start_paused: bool,
    no_shutdown: bool,
    daemonize: bool,
    name: Option<String>,
    process_name: Option<String>,
    uuid: Option<String>,
    pidfile: Option<String>,
    shutdown_timeout: Option<Duration>,
    ready: Option<(Readiness, String)>,
}

/// Parses argv (without `argv[0]`), in QEMU's order:
///
/// 1. every option name is looked up first (`invalid option`, `requires an argument`, and
///    fdmon's checks of `--` and stray arguments);
/// 2. options are handled left to right: `-version`/`-h` print and stop (exit 0); errors
///    in an option's value stop here; warnings are written to `warn` as they are met;
/// 3. the meaning is checked after all options were read: `-add-fd` values, then each
///    chardev (`-chardev help` prints the backend list and stops with exit 0), then each
///    monitor, then `-pass-fd`.
///
/// `out` gets help and version text; `warn` gets complete warning lines.
pub fn parse_args<A: AsRef<std::ffi::OsStr>>(
    args: &[A],
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<Action, CliError> {
    let mut lexer = Lexer { args, pos: 0 };
    let mut options = Vec::new();
    while let Some(opt) = lexer.next()? {
        options.push(opt);
    }
    let workload = lexer.workload()?;

    let mut parser = Parser::default();
    for opt in &options {
        if let Some(action) = parser.handle(opt, out, warn)? {
            return Ok(action);
        }
    }
    parser.finish(workload)
}

fn write_warnings(warn: &mut dyn Write, origin: &str, warnings: &[String]) {
    for w in warnings {
        let _ = writeln!(warn, "{}{}", prefix(origin), w);
    }
}

impl<'a> Parser<'a> {
    /// `qemu_opts_parse_noisily`: `Ok(None)` when a `help` item printed the key list.
    fn parse_opts(
        list: &OptsList,
        arg: &'a str,
        origin: &str,
        taken: &BTreeSet<Cow<'a, str>>,
        out: &mut dyn Write,
        warn: &mut dyn Write,
    ) -> Result<Option<KvList<'a>>, CliError> {
        let kv = parse_kv(arg, list.implied_key);
        let checked = kv.validate(list, &|id| taken.contains(id));
        write_warnings(warn, origin, &checked.warnings);
        match checked.result {
            Ok(()) => Ok(Some(kv)),
            Err(ParseStop::Help) => {
                let _ = out.write_all(list.help_text().as_bytes());
                Ok(None)
            }
            Err(ParseStop::Error(e)) => Err(fail(origin, &e)),
        }
    }

    fn handle(
        &mut self,
        opt: &Lexed<'a>,
        out: &mut dyn Write,
        warn: &mut dyn Write,
    ) -> Result<Option<Action>, CliError> {
        // One UTF-8 check of the argument; the lossy copy only for the error.
        let utf8 = opt.arg.map(|a| a.to_str().ok_or(a));
        let origin = match utf8 {
            Some(a) => {
                let a = a.map_or_else(|bad| bad.to_string_lossy(), Cow::Borrowed);
                let mut o = String::with_capacity(opt.typed.len() + 1 + a.len());
                o.push_str(&opt.typed);
                o.push(' ');
                o.push_str(&a);
                o
            }
            None => opt.typed.to_string(),
        };
        let arg = match utf8 {
            None => "",
            Some(a) => a.map_err(|_| fail(&origin, &OptError::NotUtf8))?,
        };
        match opt.def.id {
            OptId::Help => {
                let _ = out.write_all(help_text().as_bytes());
                return Ok(Some(Action::Exit(0)));
            }
            OptId::Version => {
                let _ = out.write_all(version_text().as_bytes());
                return Ok(Some(Action::Exit(0)));
            }
            OptId::Chardev => {
                let taken = &self.chardev_ids;
                let Some(kv) = Self::parse_opts(&CHARDEV_OPTS, arg, &origin, taken, out, warn)? else {
                    return Ok(Some(Action::Exit(1)));
                };
                if let Some(id) = kv.id_cow() {
                    self.chardev_ids.insert(id.clone());
                }
                self.chardevs.push(PendingOpts { kv, origin });
            }
            OptId::Mon => {
                let taken = &self.mon_ids;
                let Some(kv) = Self::parse_opts(&MON_OPTS, arg, &origin, taken, out, warn)? else {
                    return Ok(Some(Action::Exit(1)));
                };
                if let Some(id) = kv.id_cow() {
                    self.mon_ids.insert(id.clone());
                }
                self.mons.push(PendingMon {
                    id: kv.id_cow().cloned(),
                    chardev: kv.get_cow("chardev"),
                    mode: kv.get_cow("mode"),
                    pretty: kv.get_bool("pretty").ok().flatten().unwrap_or(false),
                    origin,
                });
            }
            OptId::Qmp => self.legacy_monitor(arg, origin, MonitorMode::Control, false)?,
            OptId::QmpPretty => self.legacy_monitor(arg, origin, MonitorMode::Control, true)?,
            OptId::Monitor => {
                // QEMU compares only the first four characters.
                if !arg.starts_with("none") {
                    self.legacy_monitor(arg, origin, MonitorMode::Readline, false)?;
                }
            }
            OptId::Serial => {
                // QEMU: `none` is no serial port; anything else is parsed once the monitors
                // exist (see `serial_spec`).
                if arg != "none" {
                    if let Some((_, first)) = &self.serial {
                        return Err(fail_msg(
                            &origin,
                            &format!("only one -serial is supported (fdmon has one workload console: {first})"),
                        ));
                    }
                    self.serial = Some((arg.to_string(), origin));
                }
            }
            OptId::Name => {
                let Some(kv) = Self::parse_opts(&NAME_OPTS, arg, &origin, &BTreeSet::new(), out, warn)? else {
                    return Ok(Some(Action::Exit(1)));
                };
                // All -name options merge; a later key overrides an earlier one.
                if let Some(g) = kv.get("guest") {
                    self.name = Some(g.to_string());
                }
                if let Some(p) = kv.get("process") {
                    self.process_name = Some(p.to_string());
                }
            }
            OptId::Uuid => {
                self.uuid = Some(parse_uuid(arg).ok_or_else(|| fail(&origin, &OptError::BadUuid))?);
            }
            OptId::Stopped => self.start_paused = true,
            OptId::NoShutdown => self.no_shutdown = true,
            OptId::Daemonize => self.daemonize = true,
            OptId::Pidfile => self.pidfile = Some(arg.to_string()),
            OptId::AddFd => {
                let taken = &self.add_fd_ids;
                let Some(kv) = Self::parse_opts(&ADD_FD_OPTS, arg, &origin, taken, out, warn)? else {
                    return Ok(Some(Action::Exit(1)));
                };
                if let Some(id) = kv.id_cow() {
                    self.add_fd_ids.insert(id.clone());
                }
                self.add_fds.push(PendingOpts { kv, origin });
            }
            OptId::PassFd => {
                let fd = parse_fd_number(arg).ok_or_else(|| fail(&origin, &OptError::BadFdNumber(arg.to_string())))?;
                self.pass_fds.push((fd, origin));
            }
            OptId::ShutdownTimeout => {
                let t = parse_seconds(arg).ok_or_else(|| fail(&origin, &OptError::BadTimeout(arg.to_string())))?;
                self.shutdown_timeout = Some(t);
            }
            OptId::Client => return Err(fail(&origin, &OptError::ClientNotFirst)),
            OptId::Ready => {
                let r = parse_readiness(arg)
                    .ok_or_else(|| fail_msg(&origin, &format!("invalid value '{arg}': expected 'notify' or 'fd=N'")))?;
                self.ready = Some((r, origin));
            }
            OptId::Workload => unreachable!("`--` is not looked up as an option"),
        }
        Ok(None)
    }

    fn finish(self, workload: Vec<OsString>) -> Result<Action, CliError> {
        let mut add_fds = Vec::with_capacity(self.add_fds.len());
        for p in self.add_fds {
            // QEMU reads both as uint64 and stores them in an int / int64_t.
            let fd = match p.kv.get_number("fd") {
                Ok(Some(v)) => v as i32,
                _ => -1,
            };
            let set = match p.kv.get_number("set") {
                Ok(Some(v)) => v as i64,
                _ => -1,
            };
            let deferred = if fd < 0 {
                Some(fail(&p.origin, &OptError::AddFdNoFd).text)
            } else if fd <= 2 {
                Some(fail(&p.origin, &OptError::StdStreamFd).text)
            } else {
                None
            };
            add_fds.push(AddFdSpec {
                fd,
                set,
                opaque: p.kv.get("opaque").map(String::from),
                origin: p.origin,
                deferred,
            });
        }

        let mut chardevs: Vec<CliChardev> = Vec::with_capacity(self.chardevs.len());
        let mut stdio_used = false;
        for p in self.chardevs {
            // Built only when start-up stops at this chardev.
            let placeholder = || ChardevSpec { id: p.kv.id().unwrap_or("").to_string(), backend: BackendSpec::Null };
            let (spec, deferred) = if wants_backend_help(&p.kv) {
                (placeholder(), Some(Deferred::Help(backend_help())))
            } else {
                match chardev_from_kv(&p.kv) {
                    Err(e) => (placeholder(), Some(Deferred::Error(fail(&p.origin, &e).text))),
                    Ok(spec) if matches!(spec.backend, BackendSpec::Stdio { .. }) && self.daemonize => {
                        (spec, Some(Deferred::Error(fail(&p.origin, &OptError::StdioWithDaemonize).text)))
                    }
                    Ok(spec) if matches!(spec.backend, BackendSpec::Stdio { .. }) && stdio_used => {
                        (spec, Some(Deferred::Error(fail(&p.origin, &OptError::StdioInUse).text)))
                    }
                    Ok(spec) => {
                        stdio_used |= matches!(spec.backend, BackendSpec::Stdio { .. });
                        (spec, None)
                    }
                }
            };
            chardevs.push(CliChardev { spec, deferred, origin: p.origin });
        }

        // Lookups by id in sets: O(n log n) for n chardevs and monitors. `chardev_ids` holds
        // the id of every chardev whose options were accepted (a chardev without one has a
        // deferred error, which start-up reports before any monitor's).
        let mut in_use: BTreeSet<Cow<'a, str>> = BTreeSet::new();
        // With one monitor there is nothing to collide with: no set to build.
        let several = self.mons.len() > 1;
        let mut monitors: Vec<MonitorSpec> = Vec::with_capacity(self.mons.len());
        for m in self.mons {
            let mode = match m.mode.as_deref() {
                None | Some("readline") => Ok(MonitorMode::Readline),
                Some("control") => Ok(MonitorMode::Control),
                Some(other) => Err(OptError::BadEnumValue { key: "mode".into(), value: other.into() }),
            };
            let named = m.chardev.is_some();
            let chardev = m.chardev.unwrap_or_default();
            let problem = match &mode {
                Err(e) => Some(e.clone()),
                _ if !named => Some(OptError::MissingParameter("chardev".into())),
                _ if !self.chardev_ids.contains(&chardev) => Some(OptError::ChardevNotFound(chardev.to_string())),
                Ok(MonitorMode::Readline) if m.pretty => Some(OptError::PrettyWithHmp),
                _ if in_use.contains(&chardev) => Some(OptError::DeviceInUse(chardev.to_string())),
                _ => None,
            };
            if problem.is_none() && several {
                in_use.insert(chardev.clone());
            }
            let deferred = problem.map(|e| fail(&m.origin, &e).text);
            monitors.push(MonitorSpec {
                id: m.id.map(Cow::into_owned),
                chardev: chardev.into_owned(),
                mode: mode.unwrap_or(MonitorMode::Readline),
                pretty: m.pretty,
                origin: m.origin,
                deferred,
            });
        }

        let serial = self.serial.as_ref().map(|(arg, origin)| {
            serial_spec(arg, origin, &chardevs, &monitors, &self.chardev_ids, self.daemonize, stdio_used)
        });

        // The fd numbers other options use, sorted (built only when there is a `-pass-fd`):
        // a binary search per `-pass-fd`; the user is looked up only for the error.
        let mut used: Vec<i32> = Vec::new();
        if !self.pass_fds.is_empty() {
            used.extend(add_fds.iter().filter(|a| a.deferred.is_none()).map(|a| a.fd));
            used.extend(chardevs.iter().filter_map(|c| socket_fd(&c.spec)));
            used.sort_unstable();
        }
        // The distinct `-pass-fd` numbers, sorted, each with whether it was kept yet (the
        // kept list stays in command-line order).
        let mut distinct: Vec<i32> = self.pass_fds.iter().map(|(fd, _)| *fd).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut kept = vec![false; distinct.len()];
        let mut pass_fds = Vec::new();
        for (fd, origin) in &self.pass_fds {
            if *fd <= 2 {
                return Err(fail(origin, &OptError::StdStreamFd));
            }
            if used.binary_search(fd).is_ok() {
                // An `-add-fd` row names it before a chardev does.
                let by = add_fds
                    .iter()
                    .find(|a| a.fd == *fd && a.deferred.is_none())
                    .map(|a| &a.origin)
                    .or_else(|| chardevs.iter().find(|c| socket_fd(&c.spec) == Some(*fd)).map(|c| &c.origin));
                if let Some(by) = by {
                    return Err(fail(origin, &OptError::FdAlsoUsed { fd: *fd, by: by.clone() }));
                }
            }
            if let Ok(i) = distinct.binary_search(fd) {
                if !kept[i] {
                    kept[i] = true;
                    pass_fds.push(*fd);
                }
            }
        }

        if let Some((Readiness::Fd(fd), origin)) = &self.ready {
            if *fd <= 2 {
                return Err(fail(origin, &OptError::StdStreamFd));
            }
            if distinct.binary_search(fd).is_ok() {
                return Err(fail(origin, &OptError::FdAlsoUsed { fd: *fd, by: format!("-pass-fd {fd}") }));
            }
        }

        Ok(Action::Run(Config {
            chardevs,
            monitors,
            serial,
            start_paused: self.start_paused,
            no_shutdown: self.no_shutdown,
            name: self.name,
            process_name: self.process_name,
            uuid: self.uuid,
            pidfile: self.pidfile,
            daemonize: self.daemonize,
            add_fds,
            pass_fds,
            shutdown_timeout: self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            workload,
            ready: self.ready.map(|(r, _)| r).unwrap_or_default(),
        }))
    }
}

impl Config {
    /// The first deferred outcome start-up would meet, leaving out the OS checks in between
    /// (fd validity, pid file, opening chardevs).
    #[cfg(test)]
    pub fn first_deferred(&self) -> Option<Deferred> {
        let add_fd = self.add_fds.iter().find_map(|a| {
            a.deferred.clone().or_else(|| (a.set < 0).then(|| format!("{}{ADD_FD_NO_SET}", prefix(&a.origin))))
        });
        add_fd
            .map(Deferred::Error)
            .or_else(|| self.chardevs.iter().find_map(|c| c.deferred.clone()))
            .or_else(|| self.monitors.iter().find_map(|m| m.deferred.clone().map(Deferred::Error)))
            .or_else(|| self.serial.as_ref().and_then(|s| s.deferred.clone()).map(Deferred::Error))
    }
}

fn socket_fd(spec: &ChardevSpec) -> Option<i32> {
    match &spec.backend {
        BackendSpec::Socket(s) => match &s.addr {
            SocketAddrSpec::Fd(f) => f.number().filter(|n| *n >= 0),
            _ => None,
        },
        _ => None,
    }
}

/// QEMU's UUID syntax: 8-4-4-4-12 hex digits. Returned in lower case, as QEMU prints it.
fn parse_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() };
        if !ok {
            return None;
        }
    }
    Some(s.to_ascii_lowercase())
}

/// Decimal seconds: `5`, `0.25`, `.5`, `2.`; no sign, no exponent.
fn parse_seconds(s: &str) -> Option<Duration> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = 0u32;
    for (i, c) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
#[rustfmt::skip]
mod tests {
    use super::*;
    use crate::chardev::spec::SocketSpec;

    /// Parses, then resolves deferred outcomes as start-up would (minus the OS checks).
    fn run(args: &[&str]) -> (Result<Action, CliError>, String, String) {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (mut out, mut warn) = (Vec::new(), Vec::new());
        let mut r = parse_args(&args, &mut out, &mut warn);
        if let Ok(Action::Run(c)) = &r {
            match c.first_deferred() {
                Some(Deferred::Error(text)) => r = Err(CliError { text }),
                Some(Deferred::Help(text)) => {
                    out.extend_from_slice(text.as_bytes());
                    r = Ok(Action::Exit(0));
                }
                None => {}
            }
        }
        (r, String::from_utf8(out).unwrap(), String::from_utf8(warn).unwrap())
    }
    /// The stderr text of a failing command line.
    fn err(args: &[&str]) -> String {
        match run(args).0 {
            Err(e) => e.text,
            Ok(a) => panic!("{args:?} succeeded: {a:?}"),
        }
    }
    fn cfg(args: &[&str]) -> Config {
        match run(args).0 {
            Ok(Action::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }
    /// (exit status, stdout) of a command line that stops early.
    fn exits(args: &[&str]) -> (i32, String) {
        match run(args) {
            (Ok(Action::Exit(n)), out, _) => (n, out),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    fn warns(args: &[&str]) -> String {
        run(args).2
    }
    fn version() -> String {
        version_text()
    }
    const ID_ERR: &str = "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.";
    const MON: &str = "socket,fd=3,server=on,wait=off,id=mon";

    #[test]
    fn names_are_checked_first() {
        assert_eq!(err(&["-version", "-bogus"]), "fdmon: -bogus: invalid option");
        assert_eq!(err(&["-bogus", "-version"]), "fdmon: -bogus: invalid option");
        assert_eq!(err(&["--bogus"]), "fdmon: --bogus: invalid option");
        assert_eq!(err(&["-"]), "fdmon: -: invalid option");
        assert_eq!(err(&["---name", "x"]), "fdmon: ---name: invalid option");
        assert_eq!(err(&["-h", "-name"]), "fdmon: -name: requires an argument");
        assert_eq!(err(&["-name"]), "fdmon: -name: requires an argument");
        assert_eq!(err(&["--chardev"]), "fdmon: --chardev: requires an argument");
        assert_eq!(err(&["-version", "foo"]), "fdmon: foo: unexpected argument (the workload command goes after '--')");
        assert_eq!(err(&["-version", "--"]), "fdmon: --: requires a program to run");
        assert_eq!(err(&["-chardev", "bogus,id=x", "-bogus"]), "fdmon: -bogus: invalid option");
        // Options after `--` belong to the workload and are not looked at.
        assert_eq!(exits(&["-version", "--", "-bogus"]).0, 0);
    }

    #[test]
    fn version_and_help_stop_when_reached() {
        assert_eq!(exits(&["-version"]), (0, version()));
        assert_eq!(exits(&["--version"]), (0, version()));
        assert_eq!(version(), format!("fdmon version {}\nCopyright (c) the fdmon developers; license MIT OR Apache-2.0\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(exits(&["-h"]), (0, help_text()));
        assert_eq!(exits(&["-help"]), (0, help_text()));
        assert_eq!(exits(&["--help"]), (0, help_text()));
        assert_eq!(err(&["-chardev", "null,id=1abc", "-version"]), format!("fdmon: -chardev null,id=1abc: {ID_ERR}"));
        assert_eq!(exits(&["-version", "-chardev", "null,id=1abc"]), (0, version()));
        assert_eq!(exits(&["-chardev", "bogus,id=x", "-version"]), (0, version()));
        assert_eq!(exits(&["-chardev", "null,id=x", "-mon", "x,mode=bogus", "-version"]), (0, version()));
        assert_eq!(exits(&["-mon", "nope", "-version"]), (0, version()));
        assert_eq!(err(&["-uuid", "x", "-version"]), "fdmon: -uuid x: failed to parse UUID string: wrong format");
        assert_eq!(exits(&["-version", "-h"]), (0, version()));
        assert_eq!(exits(&["-h", "-version"]), (0, help_text()));
        assert_eq!(err(&["-mon", "x,bogus=1", "-version"]), "fdmon: -mon x,bogus=1: Invalid parameter 'bogus'");
        assert_eq!(err(&["-chardev", "socket,id=x,server=maybe", "-version"]), "fdmon: -chardev socket,id=x,server=maybe: Parameter 'server' expects 'on' or 'off'");
        assert_eq!(exits(&["-chardev", "null,id=x,path=p", "-version"]), (0, version()));
    }

    #[test]
    fn serial_option() {
        // chardev:ID names an existing chardev; none is no console; a legacy device is serial0.
        let c = cfg(&["-chardev", "ringbuf,id=r", "-serial", "chardev:r"]);
        assert_eq!(c.serial, Some(SerialSpec { chardev: "r".into(), new: None, origin: "-serial chardev:r".into(), deferred: None }));
        assert_eq!(cfg(&["-serial", "none"]).serial, None);
        assert_eq!(cfg(&["-serial", "none", "-serial", "null"]).serial.unwrap().chardev, "serial0");
        let s = cfg(&["-serial", "unix:/tmp/s.sock,server=on,wait=off"]).serial.unwrap();
        assert_eq!(s.new.unwrap().spec, cfg(&["-chardev", "socket,id=serial0,path=/tmp/s.sock,server=on,wait=off"]).chardevs[0].spec);
        let s = cfg(&["-serial", "file:/tmp/f.log"]).serial.unwrap();
        assert_eq!(s.new.unwrap().spec.backend, BackendSpec::File { path: "/tmp/f.log".into(), append: false });
        assert_eq!(cfg(&["-serial", "stdio"]).serial.unwrap().new.unwrap().spec.backend, BackendSpec::Stdio { signal: true });
        // QEMU 7.2's texts (its reason, then "could not connect ..."), reported after the monitors.
        let tail = |d: &str| format!("fdmon: -serial {d}: could not connect serial device to character backend '{d}'");
        assert_eq!(err(&["-serial", "chardev:nope"]), tail("chardev:nope"));
        assert_eq!(err(&["-serial", "bogus"]), format!("fdmon: -serial bogus: 'bogus' is not a valid char driver\n{}", tail("bogus")));
        assert_eq!(err(&["-serial", ""]), format!("fdmon: -serial : '' is not a valid char driver\n{}", tail("")));
        assert_eq!(err(&["-serial", "tcp:host"]), tail("tcp:host"));
        assert_eq!(err(&["-serial", "unix:/x,bogus"]), format!("fdmon: -serial unix:/x,bogus: Invalid parameter 'bogus'\n{}", tail("unix:/x,bogus")));
        assert_eq!(err(&["-qmp", "stdio", "-serial", "stdio"]), format!("fdmon: -serial stdio: cannot use stdio by multiple character devices\n{}", tail("stdio")));
        assert_eq!(err(&["-daemonize", "-serial", "stdio"]), format!("fdmon: -serial stdio: cannot use stdio with -daemonize\n{}", tail("stdio")));
        assert_eq!(err(&["-chardev", "null,id=serial0", "-serial", "null"]), format!("fdmon: -serial null: Duplicate ID 'serial0' for chardev\n{}", tail("null")));
        // fdmon's own: one frontend per chardev, one console.
        assert_eq!(err(&["-chardev", "null,id=n", "-mon", "n", "-serial", "chardev:n"]), format!("fdmon: -serial chardev:n: Device 'n' is in use\n{}", tail("chardev:n")));
        assert_eq!(err(&["-serial", "null", "-serial", "chardev:x"]), "fdmon: -serial chardev:x: only one -serial is supported (fdmon has one workload console: -serial null)");
        // The serial port comes after the monitors (QEMU's order).
        assert_eq!(err(&["-serial", "bogus", "-monitor", "chardev:nope"]), "fdmon: -monitor chardev:nope: chardev \"nope\" not found");
    }

    #[test]
    fn help_comes_from_the_table() {
        let help = help_text();
        assert!(help.starts_with(&format!("{}usage: fdmon [options] [-- PROGRAM [ARGS...]]\n\n", version())));
        for def in OPTIONS {
            for name in def.names {
                assert!(help.contains(&format!("-{name}")), "{name}");
            }
            for line in def.help {
                assert!(help.contains(line), "{line}");
            }
            for line in def.synopsis {
                assert!(line.starts_with(&format!("-{} ", def.names[0])) || line.starts_with("         ["), "{line}");
            }
        }
        for line in [
            "-h or -help     display this help and exit\n",
            "-version        display version information and exit\n",
            "-mon [chardev=]name[,mode=readline|control][,pretty[=on|off]]\n",
            "-qmp dev        like -monitor, but speaking QMP ('control' mode)\n",
            "-qmp-pretty dev like -qmp, with pretty-printed JSON\n",
            "-monitor dev    run HMP on legacy device 'dev': unix:path[,opts],\n                tcp:host:port[,opts], stdio, chardev:id, or none\n",
            "-add-fd fd=fd,set=set[,opaque=opaque]\n                put a copy of inherited fd 'fd' into fd set 'set'\n",
            "-pidfile file   write the process id to 'file' and keep it locked\n",
            "-S              do not start the workload (state 'prelaunch') until 'cont'\n",
            "-client ADDR [-timeout SECS] [-hmp LINE] [-wait-event NAME] [-wait-ready]\n",
            "-no-shutdown    stay in the shutdown state instead of exiting\n",
            "-daemonize      go to the background once start-up is complete\n",
            "-name string1[,process=string2][,debug-threads=on|off]\n",
            "-uuid %08x-%04x-%04x-%04x-%012x\n",
            "-pass-fd N      keep inherited fd N open for the workload (repeatable)\n",
            "-serial dev     the workload's console: its stdin, stdout and stderr are a new\n",
            "-shutdown-timeout secs\n                seconds the workload gets",
            "-chardev help\n-chardev socket,id=id,fd=N",
            "-- PROGRAM [ARGS...]\n                run PROGRAM as the supervised workload",
        ] {
            assert!(help.contains(line), "{line}");
        }
        // Every option the parser accepts is in the table and vice versa.
        for name in ["chardev", "mon", "qmp", "qmp-pretty", "monitor", "serial", "S", "no-shutdown", "name", "uuid", "pidfile", "daemonize", "add-fd", "pass-fd", "shutdown-timeout", "ready", "version", "h", "help"] {
            assert!(lookup(&format!("-{name}")).is_some(), "{name}");
            assert!(lookup(&format!("--{name}")).is_some(), "{name}");
        }
        assert!(lookup("---").is_none());
        assert!(lookup("-").is_none());
    }

    #[test]
    fn chardev_option() {
        let c = cfg(&["-chardev", MON, "-mon", "chardev=mon,mode=control"]);
        assert_eq!(c.chardevs, vec![CliChardev { spec: ChardevSpec { id: "mon".into(), backend: BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Fd("3".into()), server: true, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }) }, deferred: None, origin: format!("-chardev {MON}") }]);
        assert_eq!(c.monitors, vec![MonitorSpec { id: None, chardev: "mon".into(), mode: MonitorMode::Control, pretty: false, origin: "-mon chardev=mon,mode=control".into(), deferred: None }]);
        assert_eq!(cfg(&["--chardev", "null,id=n"]).chardevs[0].origin, "--chardev null,id=n");
        assert_eq!(err(&["-chardev", "null"]), "fdmon: -chardev null: chardev: no id specified");
        assert_eq!(err(&["-chardev", ""]), "fdmon: -chardev : chardev: no id specified");
        assert_eq!(err(&["-chardev", "id=x"]), "fdmon: -chardev id=x: chardev: \"x\" missing backend");
        assert_eq!(err(&["-chardev", "bogus,id=x"]), "fdmon: -chardev bogus,id=x: 'bogus' is not a valid char driver name");
        assert_eq!(err(&["-chardev", ",id=x"]), "fdmon: -chardev ,id=x: '' is not a valid char driver name");
        assert_eq!(err(&["-chardev", "null,id=x", "-chardev", "null,id=x"]), "fdmon: -chardev null,id=x: Duplicate ID 'x' for chardev");
        assert_eq!(err(&["-chardev", "null,id=x,foo=1"]), "fdmon: -chardev null,id=x,foo=1: Invalid parameter 'foo'");
        assert_eq!(err(&["-chardev", "null,id=x,path=p"]), "fdmon: -chardev null,id=x,path=p: Invalid parameter 'path'");
        assert_eq!(err(&["-chardev", "socket,id=x,fd=3,nofoo"]), "fdmon: -chardev socket,id=x,fd=3,nofoo: Invalid parameter 'foo'");
        assert_eq!(err(&["-chardev", "null,id=1abc"]), format!("fdmon: -chardev null,id=1abc: {ID_ERR}"));
        assert_eq!(err(&["-chardev", "null,id=a,,b"]), format!("fdmon: -chardev null,id=a,,b: {ID_ERR}"));
        // First id wins.
        assert_eq!(err(&["-chardev", "null,id=n,id=m", "-mon", "m"]), "fdmon: -mon m: chardev \"m\" not found");
        assert_eq!(cfg(&["-chardev", "null,id=a.b"]).chardevs[0].spec.id, "a.b");
        // Last value wins otherwise.
        assert_eq!(cfg(&["-chardev", "null,id=n,backend=ringbuf"]).chardevs[0].spec.backend, BackendSpec::Ringbuf { size: 65536, memory_alias: false });
        assert_eq!(cfg(&["-chardev", "socket,id=s,path=p1,path=p2,server=on,wait=off"]).chardevs[0].spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Unix { path: "p2".into(), abstract_: false, tight: true }, server: true, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
    }

    #[test]
    fn chardev_socket_errors() {
        let e = |a: &str| err(&["-chardev", a]);
        assert_eq!(e("socket,path=/x,host=localhost,port=4444,id=x"), "fdmon: -chardev socket,path=/x,host=localhost,port=4444,id=x: None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(e("socket,fd=3,path=/x,id=x"), "fdmon: -chardev socket,fd=3,path=/x,id=x: None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(e("socket,host=127.0.0.1,id=x"), "fdmon: -chardev socket,host=127.0.0.1,id=x: chardev: socket: no port given");
        assert_eq!(e("socket,host=h,port=1,to=abc,id=x"), "fdmon: -chardev socket,host=h,port=1,to=abc,id=x: Parameter 'to' expects a number");
        assert_eq!(e("socket,host=h,port=1,ipv4=off,ipv6=off,server=on,id=x"), "fdmon: -chardev socket,host=h,port=1,ipv4=off,ipv6=off,server=on,id=x: Cannot disable IPv4 and IPv6 at same time");
        assert_eq!(e("socket,fd=3,delay=off,nodelay=on,id=x"), "fdmon: -chardev socket,fd=3,delay=off,nodelay=on,id=x: 'delay' and 'nodelay' are mutually exclusive");
        assert_eq!(e("socket,fd=3,reconnect=1,id=x"), "fdmon: -chardev socket,fd=3,reconnect=1,id=x: 'reconnect' option is incompatible with 'fd' address type");
        assert_eq!(e("socket,path=/x,server=on,reconnect=1,id=x"), "fdmon: -chardev socket,path=/x,server=on,reconnect=1,id=x: 'reconnect' option is incompatible with socket in server listen mode");
        assert_eq!(e("socket,fd=3,tls-creds=tls0,id=x"), "fdmon: -chardev socket,fd=3,tls-creds=tls0,id=x: No TLS credentials with id 'tls0'");
        assert_eq!(e("socket,fd=3,server=on,tls-creds=tls0,id=x"), "fdmon: -chardev socket,fd=3,server=on,tls-creds=tls0,id=x: No TLS credentials with id 'tls0'");
        assert_eq!(e("socket,fd=3,server=on,tls-authz=a,id=x"), "fdmon: -chardev socket,fd=3,server=on,tls-authz=a,id=x: 'tls_authz' option requires 'tls_creds' option");
        assert_eq!(e("socket,path=/x,websocket=on,id=x"), "fdmon: -chardev socket,path=/x,websocket=on,id=x: Websocket client is not implemented");
        assert_eq!(e("socket,path=/x,server=on,websocket=on,id=x"), "fdmon: -chardev socket,path=/x,server=on,websocket=on,id=x: websocket is not supported");
        assert_eq!(e("socket,fd=3,server=on,telnet=on,id=x"), "fdmon: -chardev socket,fd=3,server=on,telnet=on,id=x: telnet is not supported");
        assert_eq!(e("socket,fd=3,server=on,tn3270=on,id=x"), "fdmon: -chardev socket,fd=3,server=on,tn3270=on,id=x: tn3270 is not supported");
        assert_eq!(e("socket,id=x"), "fdmon: -chardev socket,id=x: socket chardev needs one of 'path', 'fd' or 'host'");
        assert_eq!(e("socket,server=on,wait=off,id=x"), "fdmon: -chardev socket,server=on,wait=off,id=x: socket chardev needs one of 'path', 'fd' or 'host'");
        assert_eq!(e("socket,path=/x,wait=off,id=x"), "fdmon: -chardev socket,path=/x,wait=off,id=x: 'wait' option is incompatible with socket in client connect mode");
        assert_eq!(e("socket,path=/x,server=on,wait=,id=x"), "fdmon: -chardev socket,path=/x,server=on,wait=,id=x: Parameter 'wait' expects 'on' or 'off'");
        assert_eq!(e("ringbuf,size=100,id=r"), "fdmon: -chardev ringbuf,size=100,id=r: size of ringbuf chardev must be power of two");
        assert_eq!(e("ringbuf,size=x,id=r"), "fdmon: -chardev ringbuf,size=x,id=r: Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.");
        assert_eq!(e("file,id=f"), "fdmon: -chardev file,id=f: chardev: file: no filename given");
        assert_eq!(e("pipe,id=p"), "fdmon: -chardev pipe,id=p: chardev: pipe: no device path given");
        assert_eq!(e("null,id=n,mux=on"), "fdmon: -chardev null,id=n,mux=on: mux=on is not supported");
        // fd= stays a string; checking it needs the OS (the caller's job).
        assert_eq!(cfg(&["-chardev", "socket,fd=myfd,id=x"]).chardevs[0].spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Fd("myfd".into()), server: false, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
        // Checks run in command-line order after all options were read.
        assert_eq!(err(&["-chardev", "bogus,id=a", "-chardev", "null,id=b,foo=1"]), "fdmon: -chardev null,id=b,foo=1: Invalid parameter 'foo'");
        assert_eq!(err(&["-chardev", "bogus,id=a", "-chardev", "null,id=b,path=x"]), "fdmon: -chardev bogus,id=a: 'bogus' is not a valid char driver name");
    }

    #[test]
    fn chardev_help() {
        let list = "Available chardev backend types: \n  socket\n  ringbuf\n  memory\n  null\n  file\n  pipe\n  stdio\n";
        assert_eq!(exits(&["-chardev", "help"]), (0, list.to_string()));
        assert_eq!(exits(&["-chardev", "?"]), (0, list.to_string()));
        assert_eq!(exits(&["-chardev", "help", "-chardev", "bogus,id=x"]), (0, list.to_string()));
        assert_eq!(err(&["-chardev", "bogus,id=x", "-chardev", "help"]), "fdmon: -chardev bogus,id=x: 'bogus' is not a valid char driver name");
        assert_eq!(exits(&["-chardev", "help", "-version"]), (0, version()));
        // A help item in the middle lists the keys and fails (QEMU exits 1).
        let (status, out) = exits(&["-chardev", "null,id=x,help"]);
        assert_eq!(status, 1);
        assert!(out.starts_with("chardev options:\n  abstract=<bool (on/off)>\n  append=<bool (on/off)>\n"), "{out}");
        assert_eq!(exits(&["-mon", "x,help"]), (1, "mon options:\n  chardev=<str>\n  mode=<str>\n  pretty=<bool (on/off)>\n".to_string()));
        assert_eq!(exits(&["-name", "g,help"]).1, "name options:\n  debug-threads=<bool (on/off)> - accepted for compatibility; no effect\n  guest=<str>            - the name query-name reports\n  process=<str>          - the process name shown by ps and top\n");
        assert_eq!(exits(&["-add-fd", "help"]).0, 1);
    }

    #[test]
    fn short_form_warnings() {
        let a = "socket,path=/tmp/a.sock,server,nowait,id=x";
        assert_eq!(warns(&["-chardev", a]), format!("fdmon: -chardev {a}: warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\nfdmon: -chardev {a}: warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead\n"));
        assert_eq!(warns(&["-chardev", "socket,fd=3,nodelay,id=x"]), "fdmon: -chardev socket,fd=3,nodelay,id=x: warning: short-form boolean option 'nodelay' deprecated\nPlease use nodelay=on instead\n");
        assert_eq!(warns(&["-chardev", MON, "-mon", "mon,mode=control,pretty"]), "fdmon: -mon mon,mode=control,pretty: warning: short-form boolean option 'pretty' deprecated\nPlease use pretty=on instead\n");
        assert!(cfg(&["-chardev", MON, "-mon", "mon,mode=control,pretty"]).monitors[0].pretty);
        assert_eq!(warns(&["--chardev", "socket,fd=3,server,id=x"]), "fdmon: --chardev socket,fd=3,server,id=x: warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\n");
        // Printed even when the key is then rejected, and before the error.
        let (r, _, w) = run(&["-add-fd", "3"]);
        assert_eq!(w, "fdmon: -add-fd 3: warning: short-form boolean option '3' deprecated\nPlease use 3=on instead\n");
        assert_eq!(r.unwrap_err().text, "fdmon: -add-fd 3: Invalid parameter '3'");
        let (r, _, w) = run(&["-chardev", "null,id=x,nofoo"]);
        assert_eq!(w, "fdmon: -chardev null,id=x,nofoo: warning: short-form boolean option 'nofoo' deprecated\nPlease use foo=off instead\n");
        assert!(r.is_err());
        // Warnings are printed as options are met, before a later -version.
        let (r, out, w) = run(&["-chardev", "socket,fd=3,server,id=x", "-version"]);
        assert_eq!(r, Ok(Action::Exit(0)));
        assert_eq!(out, version());
        assert_eq!(w, "fdmon: -chardev socket,fd=3,server,id=x: warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\n");
        // ...but not for options after it.
        assert_eq!(warns(&["-version", "-chardev", "socket,fd=3,server,id=x"]), "");
        // An id error comes before any warning of the same option.
        assert_eq!(warns(&["-chardev", "socket,server,id=1x"]), "");
    }

    #[test]
    fn mon_option() {
        let c = cfg(&["-chardev", MON, "-mon", "mon"]);
        assert_eq!(c.monitors, vec![MonitorSpec { id: None, chardev: "mon".into(), mode: MonitorMode::Readline, pretty: false, origin: "-mon mon".into(), deferred: None }]);
        assert!(cfg(&["-chardev", MON, "-mon", "chardev=mon,mode=control,pretty=on"]).monitors[0].pretty);
        assert_eq!(cfg(&["-chardev", MON, "-mon", "mon,mode=control,mode=readline"]).monitors[0].mode, MonitorMode::Readline);
        assert_eq!(cfg(&["-chardev", MON, "-mon", "mon,pretty=off"]).monitors[0].mode, MonitorMode::Readline);
        assert_eq!(err(&["-mon", "mon"]), "fdmon: -mon mon: chardev \"mon\" not found");
        assert_eq!(err(&["-mon", "mode=control"]), "fdmon: -mon mode=control: Parameter 'chardev' is missing");
        assert_eq!(err(&["-chardev", MON, "-mon", "mon,mode=bogus"]), "fdmon: -mon mon,mode=bogus: Parameter 'mode' does not accept value 'bogus'");
        assert_eq!(err(&["-mon", "mode=bogus"]), "fdmon: -mon mode=bogus: Parameter 'mode' does not accept value 'bogus'");
        assert_eq!(err(&["-mon", "mode=,chardev=x"]), "fdmon: -mon mode=,chardev=x: Parameter 'mode' does not accept value ''");
        assert_eq!(err(&["-chardev", MON, "-mon", "mon,pretty=maybe"]), "fdmon: -mon mon,pretty=maybe: Parameter 'pretty' expects 'on' or 'off'");
        assert_eq!(err(&["-chardev", MON, "-mon", "mon,pretty=on"]), "fdmon: -mon mon,pretty=on: 'pretty' is not compatible with HMP monitors");
        assert_eq!(err(&["-chardev", MON, "-mon", "mon,mode=readline,pretty=on"]), "fdmon: -mon mon,mode=readline,pretty=on: 'pretty' is not compatible with HMP monitors");
        assert_eq!(err(&["-chardev", "null,id=n", "-mon", "n", "-mon", "n,mode=control"]), "fdmon: -mon n,mode=control: Device 'n' is in use");
        assert_eq!(err(&["-chardev", MON, "-mon", "mon,foo=1"]), "fdmon: -mon mon,foo=1: Invalid parameter 'foo'");
        assert_eq!(err(&["-mon", "x,id=1"]), format!("fdmon: -mon x,id=1: {ID_ERR}"));
        assert_eq!(err(&["-mon", "x,id=m", "-mon", "y,id=m"]), "fdmon: -mon y,id=m: Duplicate ID 'm' for mon");
        // The id reaches the monitor (monitor-remove names it); the first id= wins.
        assert_eq!(cfg(&["-chardev", MON, "-mon", "mon,id=m1,id=m2"]).monitors[0].id.as_deref(), Some("m1"));
        assert_eq!(cfg(&["-chardev", MON, "-mon", "id=m1,chardev=mon"]).monitors[0].id.as_deref(), Some("m1"));
        assert_eq!(cfg(&["-chardev", MON, "-mon", "mon"]).monitors[0].id, None);
        // Meaning checks: chardevs first, then monitors, each in order.
        assert_eq!(err(&["-mon", "nope", "-chardev", "bogus,id=x"]), "fdmon: -chardev bogus,id=x: 'bogus' is not a valid char driver name");
        assert_eq!(err(&["-mon", "a", "-mon", "b,mode=bogus"]), "fdmon: -mon a: chardev \"a\" not found");
    }

    #[test]
    fn legacy_monitors() {
        let c = cfg(&["-qmp", "unix:/tmp/q.sock,server=on,wait=off"]);
        assert_eq!(c.chardevs, vec![CliChardev { spec: ChardevSpec { id: "compat_monitor0".into(), backend: BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Unix { path: "/tmp/q.sock".into(), abstract_: false, tight: true }, server: true, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }) }, deferred: None, origin: "-qmp unix:/tmp/q.sock,server=on,wait=off".into() }]);
        assert_eq!(c.monitors, vec![MonitorSpec { id: Some("compat_monitor0".into()), chardev: "compat_monitor0".into(), mode: MonitorMode::Control, pretty: false, origin: "-qmp unix:/tmp/q.sock,server=on,wait=off".into(), deferred: None }]);
        // wait defaults to on for servers here too.
        assert_eq!(cfg(&["-qmp", "unix:/tmp/q.sock,server=on"]).chardevs[0].spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Unix { path: "/tmp/q.sock".into(), abstract_: false, tight: true }, server: true, wait: true, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
        assert_eq!(cfg(&["-qmp", "unix:path=/tmp/q.sock,server=on,wait=off"]).chardevs[0].spec, cfg(&["-qmp", "unix:/tmp/q.sock,server=on,wait=off"]).chardevs[0].spec);
        // The legacy tail is parsed without deprecation warnings (QEMU's qemu_opts_do_parse).
        assert_eq!(warns(&["-qmp", "unix:/tmp/q.sock,server,nowait"]), "");
        assert_eq!(cfg(&["-qmp", "unix:/tmp/q.sock,server,nowait"]).chardevs[0].spec, cfg(&["-qmp", "unix:/tmp/q.sock,server=on,wait=off"]).chardevs[0].spec);
        assert_eq!(cfg(&["-qmp-pretty", "stdio"]).monitors[0], MonitorSpec { id: Some("compat_monitor0".into()), chardev: "compat_monitor0".into(), mode: MonitorMode::Control, pretty: true, origin: "-qmp-pretty stdio".into(), deferred: None });
        assert_eq!(cfg(&["-qmp", "stdio"]).chardevs[0].spec, ChardevSpec { id: "compat_monitor0".into(), backend: BackendSpec::Stdio { signal: true } });
        assert_eq!(cfg(&["-monitor", "stdio"]).monitors[0].mode, MonitorMode::Readline);
        let tcp = cfg(&["-qmp", "tcp:127.0.0.1:4444,server=on,wait=off,nodelay=on,to=4450,ipv4=on"]);
        assert_eq!(tcp.chardevs[0].spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Inet { host: "127.0.0.1".into(), port: "4444".into(), to: Some(4450), ipv4: Some(true), ipv6: None }, server: true, wait: false, nodelay: true, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
        assert_eq!(cfg(&["-qmp", "tcp::1"]).chardevs[0].spec.backend, BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Inet { host: "".into(), port: "1".into(), to: None, ipv4: None, ipv6: None }, server: false, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
        // chardev:ID puts a monitor on an existing chardev.
        let c = cfg(&["-chardev", "null,id=n", "-monitor", "chardev:n"]);
        assert_eq!(c.monitors, vec![MonitorSpec { id: Some("n".into()), chardev: "n".into(), mode: MonitorMode::Readline, pretty: false, origin: "-monitor chardev:n".into(), deferred: None }]);
        assert_eq!(c.chardevs.len(), 1);
        assert_eq!(err(&["-monitor", "chardev:nope"]), "fdmon: -monitor chardev:nope: chardev \"nope\" not found");
        assert_eq!(err(&["-monitor", "chardev:1x"]), "fdmon: -monitor chardev:1x: Parameter 'id' expects an identifier");
        assert_eq!(err(&["-monitor", "chardev:"]), "fdmon: -monitor chardev:: Parameter 'id' expects an identifier");
        assert_eq!(err(&["-chardev", "null,id=n", "-monitor", "chardev:n", "-qmp", "chardev:n"]), "fdmon: -qmp chardev:n: Duplicate ID 'n' for mon");
        // -monitor none: no monitor and no number; -qmp none is an error.
        assert_eq!(cfg(&["-monitor", "none"]).monitors, vec![]);
        assert_eq!(cfg(&["-monitor", "none"]).chardevs, vec![]);
        assert_eq!(cfg(&["-monitor", "nonesuch"]).monitors, vec![]);
        assert_eq!(err(&["-qmp", "none"]), "fdmon: -qmp none: 'none' is not a valid char driver\nfdmon: -qmp none: parse error: none");
    }

    #[test]
    fn compat_monitor_numbering() {
        let c = cfg(&["-monitor", "none", "-qmp", "stdio", "-chardev", "null,id=n", "-monitor", "chardev:n", "-qmp-pretty", "unix:/tmp/a,server=on,wait=off", "-monitor", "none", "-qmp", "unix:/tmp/b,server=on,wait=off"]);
        let labels: Vec<&str> = c.chardevs.iter().map(|x| x.spec.id.as_str()).collect();
        assert_eq!(labels, vec!["compat_monitor0", "n", "compat_monitor2", "compat_monitor3"]);
        let mons: Vec<&str> = c.monitors.iter().map(|m| m.chardev.as_str()).collect();
        assert_eq!(mons, vec!["compat_monitor0", "n", "compat_monitor2", "compat_monitor3"]);
        assert_eq!(c.chardevs[2].origin, "-qmp-pretty unix:/tmp/a,server=on,wait=off");
        // A user id can collide with a compat label, either way round.
        assert_eq!(err(&["-chardev", "null,id=compat_monitor0", "-qmp", "stdio"]), "fdmon: -qmp stdio: Duplicate ID 'compat_monitor0' for chardev\nfdmon: -qmp stdio: parse error: stdio");
        assert_eq!(err(&["-qmp", "stdio", "-chardev", "null,id=compat_monitor0"]), "fdmon: -chardev null,id=compat_monitor0: Duplicate ID 'compat_monitor0' for chardev");
        assert_eq!(err(&["-mon", "x,id=compat_monitor0", "-qmp", "stdio"]), "fdmon: -qmp stdio: Duplicate ID 'compat_monitor0' for mon");
        assert_eq!(err(&["-qmp", "stdio", "-mon", "compat_monitor0,mode=control"]), "fdmon: -mon compat_monitor0,mode=control: Device 'compat_monitor0' is in use");
    }

    #[test]
    fn legacy_errors() {
        assert_eq!(err(&["-qmp", "fd:5"]), "fdmon: -qmp fd:5: 'fd:5' is not a valid char driver\nfdmon: -qmp fd:5: parse error: fd:5");
        assert_eq!(err(&["-qmp", "socket,fd=5"]), "fdmon: -qmp socket,fd=5: 'socket,fd=5' is not a valid char driver\nfdmon: -qmp socket,fd=5: parse error: socket,fd=5");
        assert_eq!(err(&["-qmp", "unix:/d/x.sock,bogus"]), "fdmon: -qmp unix:/d/x.sock,bogus: Invalid parameter 'bogus'\nfdmon: -qmp unix:/d/x.sock,bogus: parse error: unix:/d/x.sock,bogus");
        assert_eq!(err(&["-qmp", "unix:/d/x.sock,server=maybe"]), "fdmon: -qmp unix:/d/x.sock,server=maybe: Parameter 'server' expects 'on' or 'off'\nfdmon: -qmp unix:/d/x.sock,server=maybe: parse error: unix:/d/x.sock,server=maybe");
        assert_eq!(err(&["-qmp", "unix:/x,help"]), "fdmon: -qmp unix:/x,help: Invalid parameter 'help'\nfdmon: -qmp unix:/x,help: parse error: unix:/x,help");
        assert_eq!(err(&["-qmp", "tcp:host"]), "fdmon: -qmp tcp:host: parse error: tcp:host");
        assert_eq!(err(&["-qmp", "tcp:host:"]), "fdmon: -qmp tcp:host:: parse error: tcp:host:");
        assert_eq!(err(&["-qmp", "tcp:h:1,bogus=2"]), "fdmon: -qmp tcp:h:1,bogus=2: Invalid parameter 'bogus'\nfdmon: -qmp tcp:h:1,bogus=2: parse error: tcp:h:1,bogus=2");
        assert_eq!(err(&["-qmp", "mon:foo"]), "fdmon: -qmp mon:foo: 'foo' is not a valid char driver\nfdmon: -qmp mon:foo: parse error: mon:foo");
        assert_eq!(err(&["-monitor", "vc:80"]), "fdmon: -monitor vc:80: parse error: vc:80");
        // Value-stage errors stop before a later -version; meaning errors do not.
        assert_eq!(err(&["-qmp", "none", "-version"]), "fdmon: -qmp none: 'none' is not a valid char driver\nfdmon: -qmp none: parse error: none");
        assert_eq!(exits(&["-qmp", "pty", "-version"]).0, 0);
        // Valid for QEMU, not implemented by fdmon: rejected when the chardev is created.
        assert_eq!(err(&["-qmp", "pty"]), "fdmon: -qmp pty: 'pty' is not a valid char driver name");
        assert_eq!(err(&["-qmp", "vc:80x24"]), "fdmon: -qmp vc:80x24: 'vc' is not a valid char driver name");
        assert_eq!(err(&["-qmp", "udp::4555@:4556"]), "fdmon: -qmp udp::4555@:4556: 'udp' is not a valid char driver name");
        assert_eq!(err(&["-qmp", "/dev/ttyS0"]), "fdmon: -qmp /dev/ttyS0: 'serial' is not a valid char driver name");
        assert_eq!(err(&["-qmp", "telnet::4444,server=on,wait=off"]), "fdmon: -qmp telnet::4444,server=on,wait=off: telnet is not supported");
        assert_eq!(err(&["-monitor", "mon:stdio"]), "fdmon: -monitor mon:stdio: mux=on is not supported");
        assert_eq!(err(&["-qmp", "unix:/x,server=on,wait=off,fd=3"]), "fdmon: -qmp unix:/x,server=on,wait=off,fd=3: None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(cfg(&["-qmp", "null"]).chardevs[0].spec.backend, BackendSpec::Null);
        assert_eq!(cfg(&["-qmp", "file:/tmp/o"]).chardevs[0].spec.backend, BackendSpec::File { path: "/tmp/o".into(), append: false });
        assert_eq!(cfg(&["-qmp", "pipe:/tmp/p"]).chardevs[0].spec.backend, BackendSpec::Pipe { path: "/tmp/p".into() });
    }

    #[test]
    fn daemonize_and_stdio() {
        assert_eq!(err(&["-daemonize", "-qmp", "stdio"]), "fdmon: -qmp stdio: cannot use stdio with -daemonize");
        assert_eq!(err(&["-chardev", "stdio,id=s", "-daemonize"]), "fdmon: -chardev stdio,id=s: cannot use stdio with -daemonize");
        assert_eq!(err(&["-chardev", "stdio,id=s", "-chardev", "stdio,id=t"]), "fdmon: -chardev stdio,id=t: cannot use stdio by multiple character devices");
        let c = cfg(&["-daemonize", "-pidfile", "/run/x.pid", "-chardev", MON, "-mon", "mon"]);
        assert!(c.daemonize);
        assert_eq!(c.pidfile.as_deref(), Some("/run/x.pid"));
    }

    #[test]
    fn simple_options() {
        let c = cfg(&[]);
        assert_eq!(c, Config { chardevs: vec![], monitors: vec![], serial: None, start_paused: false, no_shutdown: false, name: None, process_name: None, uuid: None, pidfile: None, daemonize: false, add_fds: vec![], pass_fds: vec![], shutdown_timeout: Duration::from_secs(5), workload: vec![], ready: Readiness::Exec });
        let c = cfg(&["-S", "-S", "-no-shutdown", "--no-shutdown", "-pidfile", "a", "-pidfile", "b"]);
        assert!(c.start_paused && c.no_shutdown);
        assert_eq!(c.pidfile.as_deref(), Some("b"));
        assert_eq!(cfg(&["-name", "g1"]).name.as_deref(), Some("g1"));
        assert_eq!(cfg(&["-name", "guest=g1,process=fdmonproc,debug-threads=on"]).process_name.as_deref(), Some("fdmonproc"));
        assert_eq!(cfg(&["-name", ""]).name, None);
        assert_eq!(cfg(&["-name", "guest="]).name.as_deref(), Some(""));
        assert_eq!(cfg(&["-name", "a,,b"]).name.as_deref(), Some("a,b"));
        let merged = cfg(&["-name", "a,process=p", "-name", "b"]);
        assert_eq!((merged.name.as_deref(), merged.process_name.as_deref()), (Some("b"), Some("p")));
        assert_eq!(err(&["-name", "g,bogus=1"]), "fdmon: -name g,bogus=1: Invalid parameter 'bogus'");
        assert_eq!(err(&["-name", "g,id=x"]), "fdmon: -name g,id=x: Invalid parameter 'id'");
        assert_eq!(err(&["-name", "g,debug-threads=maybe"]), "fdmon: -name g,debug-threads=maybe: Parameter 'debug-threads' expects 'on' or 'off'");
        assert_eq!(cfg(&["-uuid", "6AF2C1A4-1F0B-4E1D-9B7E-0123456789AB"]).uuid.as_deref(), Some("6af2c1a4-1f0b-4e1d-9b7e-0123456789ab"));
        for bad in ["", "x", "6af2c1a4-1f0b-4e1d-9b7e-0123456789a", "6af2c1a4-1f0b-4e1d-9b7e-0123456789abc", "6af2c1a4x1f0b-4e1d-9b7e-0123456789ab", "6af2c1a4-1f0b-4e1d-9b7e-0123456789ag"] {
            assert_eq!(err(&["-uuid", bad]), format!("fdmon: -uuid {bad}: failed to parse UUID string: wrong format"));
        }
    }

    #[test]
    fn add_fd_option() {
        let c = cfg(&["-add-fd", "fd=3,set=2,opaque=cli-A", "-add-fd", "fd=4,set=2", "--add-fd", "set=7,fd=0x5,opaque=a,,b"]);
        assert_eq!(c.add_fds, vec![
            AddFdSpec { fd: 3, set: 2, opaque: Some("cli-A".into()), origin: "-add-fd fd=3,set=2,opaque=cli-A".into(), deferred: None },
            AddFdSpec { fd: 4, set: 2, opaque: None, origin: "-add-fd fd=4,set=2".into(), deferred: None },
            AddFdSpec { fd: 5, set: 7, opaque: Some("a,b".into()), origin: "--add-fd set=7,fd=0x5,opaque=a,,b".into(), deferred: None },
        ]);
        assert_eq!(err(&["-add-fd", "set=1"]), "fdmon: -add-fd set=1: fd option is required and must be non-negative");
        assert_eq!(err(&["-add-fd", "fd=-1,set=1"]), "fdmon: -add-fd fd=-1,set=1: fd option is required and must be non-negative");
        assert_eq!(err(&["-add-fd", "fd=0,set=1"]), "fdmon: -add-fd fd=0,set=1: fd cannot be a standard I/O stream");
        assert_eq!(err(&["-add-fd", "fd=2,set=1"]), "fdmon: -add-fd fd=2,set=1: fd cannot be a standard I/O stream");
        assert_eq!(err(&["-add-fd", "fd=3"]), "fdmon: -add-fd fd=3: set option is required and must be non-negative");
        assert_eq!(err(&["-add-fd", "fd=3,set=-1"]), "fdmon: -add-fd fd=3,set=-1: set option is required and must be non-negative");
        assert_eq!(err(&["-add-fd", "fd=x,set=1"]), "fdmon: -add-fd fd=x,set=1: Parameter 'fd' expects a number");
        assert_eq!(err(&["-add-fd", "fd=3,set=1,bogus=1"]), "fdmon: -add-fd fd=3,set=1,bogus=1: Invalid parameter 'bogus'");
        assert_eq!(err(&["-add-fd", "fd=3,set=1,id=a", "-add-fd", "fd=4,set=1,id=a"]), "fdmon: -add-fd fd=4,set=1,id=a: Duplicate ID 'a' for add-fd");
        // Value errors stop at the option; range checks come after all options.
        assert_eq!(err(&["-add-fd", "fd=x,set=1", "-version"]), "fdmon: -add-fd fd=x,set=1: Parameter 'fd' expects a number");
        assert_eq!(exits(&["-add-fd", "fd=0,set=1", "-version"]).0, 0);
        // QEMU truncates the number into an int.
        assert_eq!(cfg(&["-add-fd", "fd=4294967299,set=1"]).add_fds[0].fd, 3);
        // -add-fd checks come before chardev checks.
        assert_eq!(err(&["-chardev", "bogus,id=x", "-add-fd", "fd=1,set=1"]), "fdmon: -add-fd fd=1,set=1: fd cannot be a standard I/O stream");
    }

    #[test]
    fn fdmon_options() {
        assert_eq!(cfg(&["-pass-fd", "5", "-pass-fd", "7", "-pass-fd", "5"]).pass_fds, vec![5, 7]);
        assert_eq!(cfg(&["-ready", "notify"]).ready, Readiness::Notify);
        assert_eq!(cfg(&["-ready", "fd=5"]).ready, Readiness::Fd(5));
        assert_eq!(err(&["-ready", "fd=1"]), "fdmon: -ready fd=1: fd cannot be a standard I/O stream");
        assert_eq!(err(&["-ready", "fd=x"]), "fdmon: -ready fd=x: invalid value 'fd=x': expected 'notify' or 'fd=N'");
        assert_eq!(err(&["-ready", "yes"]), "fdmon: -ready yes: invalid value 'yes': expected 'notify' or 'fd=N'");
        assert_eq!(err(&["-pass-fd", "5", "-ready", "fd=5"]), "fdmon: -ready fd=5: fd 5 is also used by -pass-fd 5");
        assert_eq!(err(&["-pass-fd", "x"]), "fdmon: -pass-fd x: Unable to parse FD number x");
        assert_eq!(err(&["-pass-fd", "-1"]), "fdmon: -pass-fd -1: Unable to parse FD number -1");
        assert_eq!(err(&["-pass-fd", "2"]), "fdmon: -pass-fd 2: fd cannot be a standard I/O stream");
        assert_eq!(err(&["-add-fd", "fd=5,set=1", "-pass-fd", "5"]), "fdmon: -pass-fd 5: fd 5 is also used by -add-fd fd=5,set=1");
        assert_eq!(err(&["-chardev", MON, "-pass-fd", "3"]), format!("fdmon: -pass-fd 3: fd 3 is also used by -chardev {MON}"));
        assert_eq!(cfg(&["-shutdown-timeout", "2.5"]).shutdown_timeout, Duration::from_millis(2500));
        assert_eq!(cfg(&["-shutdown-timeout", "0"]).shutdown_timeout, Duration::ZERO);
        assert_eq!(cfg(&["-shutdown-timeout", ".25"]).shutdown_timeout, Duration::from_millis(250));
        assert_eq!(cfg(&["-shutdown-timeout", "10."]).shutdown_timeout, Duration::from_secs(10));
        assert_eq!(cfg(&["-shutdown-timeout", "1.0000000019"]).shutdown_timeout, Duration::new(1, 1));
        for bad in ["", ".", "-1", "1e3", "abc", "1.2.3", " 1", "inf", "99999999999999999999999"] {
            assert_eq!(err(&["-shutdown-timeout", bad]), format!("fdmon: -shutdown-timeout {bad}: invalid timeout '{bad}': expected a non-negative number of seconds"));
        }
    }

    #[test]
    fn workload() {
        let c = cfg(&["-S", "--", "sleep", "10"]);
        assert_eq!(c.workload, vec![OsString::from("sleep"), OsString::from("10")]);
        assert!(c.start_paused);
        let c = cfg(&["--", "prog", "--", "-S", "-version", "--chardev"]);
        assert_eq!(c.workload, ["prog", "--", "-S", "-version", "--chardev"].map(OsString::from).to_vec());
        assert!(!c.start_paused);
        assert_eq!(err(&["-S", "--"]), "fdmon: --: requires a program to run");
        assert_eq!(cfg(&["--", ""]).workload, vec![OsString::from("")]);
        // `--` as an option's argument is just a value.
        assert_eq!(cfg(&["-name", "--"]).name.as_deref(), Some("--"));
        assert_eq!(cfg(&["-pidfile", "--", "--", "x"]).workload, vec![OsString::from("x")]);
    }

    #[test]
    fn non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'n', b'u', b'l', b'l', b',', b'i', b'd', b'=', 0xff]);
        let (mut out, mut warn) = (Vec::new(), Vec::new());
        let r = parse_args(&[OsString::from("-chardev"), bad.clone()], &mut out, &mut warn);
        assert_eq!(r.unwrap_err().text, "fdmon: -chardev null,id=\u{FFFD}: argument is not valid UTF-8");
        let r = parse_args(&[OsString::from_vec(vec![b'-', 0xff])], &mut out, &mut warn);
        assert_eq!(r.unwrap_err().text, "fdmon: -\u{FFFD}: invalid option");
        let r = parse_args(&[OsString::from_vec(vec![0xff])], &mut out, &mut warn);
        assert_eq!(r.unwrap_err().text, "fdmon: \u{FFFD}: unexpected argument (the workload command goes after '--')");
        // The workload is passed through untouched.
        let r = parse_args(&[OsString::from("--"), bad.clone()], &mut out, &mut warn);
        assert_eq!(r.map(|a| match a { Action::Run(c) => c.workload, _ => vec![] }), Ok(vec![bad]));
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("-chardev socket,fd=99,server=on,wait=off,id=mon"), "fdmon: -chardev socket,fd=99,server=on,wait=off,id=mon: ");
        assert_eq!(CliError { text: "x".into() }.to_string(), "x");
    }

    /// Many chardevs and monitors: the id checks (now sets, not scans) report as before.
    #[test]
    fn many_chardevs_and_monitors() {
        let n = 2000;
        let mut args: Vec<String> = Vec::new();
        for i in 0..n {
            args.extend(["-chardev".into(), format!("socket,fd={},id=m{i}", i + 3), "-mon".into(), format!("chardev=m{i},mode=control")]);
        }
        let argv = |extra: &[&str]| -> Vec<String> { args.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect() };
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let c = cfg(&refs(&argv(&[])));
        assert_eq!((c.chardevs.len(), c.monitors.len()), (n, n));
        assert_eq!(c.monitors[n - 1].chardev, format!("m{}", n - 1));
        assert_eq!(err(&refs(&argv(&["-chardev", "null,id=m1999"]))), "fdmon: -chardev null,id=m1999: Duplicate ID 'm1999' for chardev");
        assert_eq!(err(&refs(&argv(&["-mon", "m7,id=x", "-mon", "m8,id=x"]))), "fdmon: -mon m8,id=x: Duplicate ID 'x' for mon");
        assert_eq!(err(&refs(&argv(&["-mon", "m1500,mode=control"]))), "fdmon: -mon m1500,mode=control: Device 'm1500' is in use");
        assert_eq!(err(&refs(&argv(&["-mon", "m2000"]))), "fdmon: -mon m2000: chardev \"m2000\" not found");
        assert_eq!(err(&refs(&argv(&["-qmp", "chardev:m5"]))), "fdmon: -qmp chardev:m5: Device 'm5' is in use");
        assert_eq!(err(&refs(&argv(&["-pass-fd", "1000"]))), "fdmon: -pass-fd 1000: fd 1000 is also used by -chardev socket,fd=1000,id=m997");
        assert_eq!(cfg(&refs(&argv(&["-pass-fd", "9000", "-pass-fd", "9000"]))).pass_fds, vec![9000]);
    }

    /// The usual command line costs a bounded number of allocations: keys, values and ids
    /// are borrowed from argv; only what `Config` owns (origins, ids, the chardev name, the
    /// fd text) and the lists are allocated.
    #[test]
    fn the_usual_command_line_allocates_little() {
        let args = ["-chardev", "socket,fd=3,id=m0", "-mon", "chardev=m0,mode=control"];
        let (mut out, mut warn) = (Vec::new(), Vec::new());
        let before = crate::sys::alloc_count::allocs();
        let r = parse_args(&args, &mut out, &mut warn);
        let n = crate::sys::alloc_count::allocs() - before;
        assert!(matches!(r, Ok(Action::Run(_))));
        drop(r);
        assert!(n <= 13, "{n} allocations");
    }

    #[test]
    fn label_truncation() {
        assert_eq!(truncate_label("short"), "short");
        assert_eq!(truncate_label(&"a".repeat(40)), "a".repeat(31));
        assert_eq!(truncate_label(&format!("{}é", "a".repeat(30))), format!("{}\u{FFFD}", "a".repeat(30)));
        let long = format!("{}b", "a".repeat(31));
        let c = cfg(&["-chardev", &format!("null,id={}", "a".repeat(31)), "-monitor", &format!("chardev:{long}")]);
        assert_eq!(c.monitors[0].chardev, "a".repeat(31));
    }
}
