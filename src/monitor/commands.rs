//! The command table: name, argument type, return type and argument reader of every QMP
//! command. Validation, dispatch, `query-commands` and `query-qmp-schema` all read this one
//! table, so they cannot drift apart. A request's arguments, once validated, become a typed
//! [`Cmd`]; [`execute`] runs it with plain functions over `State` (shared with HMP), which
//! return a domain [`Reply`] that only the monitor layer turns into JSON.
#![forbid(unsafe_code)]

use super::reply::Reply;
use super::schema::{opt, req, Member, SchemaBuilder, Ty, ANY, BOOL, EMPTY, INT, STR};
use crate::chardev::open::{open, OpenError};
use crate::chardev::spec::{BackendSpec, ChardevSpec, SocketAddrSpec, SocketSpec};
use crate::chardev::validate::{self, SpecError};
use crate::error::QmpError;
use crate::json::{Object, Value};
use crate::state::State;

/// Who runs a command: a monitor, or (`None`) the throw-away HMP context of
/// `human-monitor-command`, which has no fds and no names.
pub struct Caller {
    pub monitor: Option<usize>,
}

/// Builds the typed command from arguments that passed `args`' validation.
pub type Reader = for<'a> fn(&'a Object) -> Result<Cmd<'a>, QmpError>;

pub struct Command {
    pub name: &'static str,
    pub args: &'static Ty,
    pub ret: &'static Ty,
    pub read: Reader,
}

/// `ringbuf-write`/`ringbuf-read`'s `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Utf8,
    Base64,
}

/// `monitor-add`'s `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMode {
    Readline,
    Control,
}

/// A command with its typed arguments, borrowed from the request (or from an HMP line).
#[derive(Debug)]
pub enum Cmd<'a> {
    /// `enable` held `oob`.
    QmpCapabilities {
        oob: bool,
    },
    QueryVersion,
    QueryCommands,
    QueryQmpSchema,
    QueryStatus,
    QueryName,
    QueryUuid,
    Stop,
    Cont,
    SystemReset,
    SystemPowerdown,
    Quit,
    QueryChardev,
    QueryChardevBackends,
    ChardevAdd(ChardevSpec),
    ChardevRemove {
        id: &'a str,
    },
    Getfd {
        fdname: &'a str,
    },
    Closefd {
        fdname: &'a str,
    },
    AddFd {
        fdset_id: Option<i64>,
        opaque: Option<&'a str>,
    },
    RemoveFd {
        fdset_id: i64,
        fd: Option<i64>,
    },
    QueryFdsets,
    RingbufWrite {
        device: &'a str,
        data: &'a str,
        format: DataFormat,
    },
    RingbufRead {
        device: &'a str,
        size: i64,
        format: DataFormat,
    },
    HumanMonitorCommand {
        command_line: &'a str,
        cpu_index: Option<i64>,
    },
    QueryWorkload,
    MonitorAdd {
        id: &'a str,
        chardev: &'a str,
        mode: MonitorMode,
        pretty: bool,
    },
    MonitorRemove {
        id: &'a str,
    },
    ConsoleResize {
        cols: i64,
        rows: i64,
    },
}

// ---- types -------------------------------------------------------------------------------

static QMP_CAPABILITY: Ty = Ty::Enum(&["oob"]);
static QMP_CAPABILITY_LIST: Ty = Ty::Array(&QMP_CAPABILITY);
static QMP_CAPABILITIES_ARGS: Ty = Ty::Obj(&[opt("enable", &QMP_CAPABILITY_LIST)]);

static VERSION_TRIPLE: Ty = Ty::Obj(&[req("major", &INT), req("minor", &INT), req("micro", &INT)]);
static VERSION_INFO: Ty = Ty::Obj(&[req("qemu", &VERSION_TRIPLE), req("package", &STR)]);
static COMMAND_INFO: Ty = Ty::Obj(&[req("name", &STR)]);
static COMMAND_INFO_LIST: Ty = Ty::Array(&COMMAND_INFO);
pub static RUN_STATE: Ty = Ty::Enum(&[
    "debug",
    "inmigrate",
    "internal-error",
    "io-error",
    "paused",
    "postmigrate",
    "prelaunch",
    "finish-migrate",
    "restore-vm",
    "running",
    "save-vm",
    "shutdown",
    "suspended",
    "watchdog",
    "guest-panicked",
    "colo",
]);
static STATUS_INFO: Ty = Ty::Obj(&[req("running", &BOOL), req("singlestep", &BOOL), req("status", &RUN_STATE)]);
static NAME_INFO: Ty = Ty::Obj(&[opt("name", &STR)]);
static UUID_INFO: Ty = Ty::Obj(&[req("UUID", &STR)]);
static SCHEMA_INFO_LIST: Ty = Ty::Array(&ANY);

static CHARDEV_INFO: Ty = Ty::Obj(&[req("label", &STR), req("filename", &STR), req("frontend-open", &BOOL)]);
static CHARDEV_INFO_LIST: Ty = Ty::Array(&CHARDEV_INFO);
static CHARDEV_BACKEND_INFO: Ty = Ty::Obj(&[req("name", &STR)]);
static CHARDEV_BACKEND_INFO_LIST: Ty = Ty::Array(&CHARDEV_BACKEND_INFO);

static FDNAME_ARGS: Ty = Ty::Obj(&[req("fdname", &STR)]);
static ADD_FD_ARGS: Ty = Ty::Obj(&[opt("fdset-id", &INT), opt("opaque", &STR)]);
static ADD_FD_INFO: Ty = Ty::Obj(&[req("fdset-id", &INT), req("fd", &INT)]);
static REMOVE_FD_ARGS: Ty = Ty::Obj(&[req("fdset-id", &INT), opt("fd", &INT)]);
static FDSET_FD_INFO: Ty = Ty::Obj(&[req("fd", &INT), opt("opaque", &STR)]);
static FDSET_FD_INFO_LIST: Ty = Ty::Array(&FDSET_FD_INFO);
static FDSET_INFO: Ty = Ty::Obj(&[req("fdset-id", &INT), req("fds", &FDSET_FD_INFO_LIST)]);
static FDSET_INFO_LIST: Ty = Ty::Array(&FDSET_INFO);

static HMP_ARGS: Ty = Ty::Obj(&[req("command-line", &STR), opt("cpu-index", &INT)]);

static DATA_FORMAT: Ty = Ty::Enum(&["utf8", "base64"]);
static RINGBUF_WRITE_ARGS: Ty = Ty::Obj(&[req("device", &STR), req("data", &STR), opt("format", &DATA_FORMAT)]);
static RINGBUF_READ_ARGS: Ty = Ty::Obj(&[req("device", &STR), req("size", &INT), opt("format", &DATA_FORMAT)]);

static ID_ARGS: Ty = Ty::Obj(&[req("id", &STR)]);
static MONITOR_MODE: Ty = Ty::Enum(&["readline", "control"]);
static MONITOR_ADD_ARGS: Ty =
    Ty::Obj(&[req("id", &STR), req("chardev", &STR), req("mode", &MONITOR_MODE), opt("pretty", &BOOL)]);
static CONSOLE_RESIZE_ARGS: Ty = Ty::Obj(&[req("cols", &INT), req("rows", &INT)]);

// Chardev backends, in QEMU's legacy "simple union" shape: {"type": T, "data": {...}}.
const COMMON: [Member; 2] = [opt("logfile", &STR), opt("logappend", &BOOL)];
static STRING_WRAPPER: Ty = Ty::Obj(&[req("str", &STR)]);
static INET_ADDR: Ty = Ty::Obj(&[
    req("host", &STR),
    req("port", &STR),
    opt("numeric", &BOOL),
    opt("to", &INT),
    opt("ipv4", &BOOL),
    opt("ipv6", &BOOL),
    opt("keep-alive", &BOOL),
]);
static UNIX_ADDR: Ty = Ty::Obj(&[req("path", &STR), opt("abstract", &BOOL), opt("tight", &BOOL)]);
static VSOCK_ADDR: Ty = Ty::Obj(&[req("cid", &STR), req("port", &STR)]);
static INET_WRAPPER: Ty = Ty::Obj(&[req("data", &INET_ADDR)]);
static UNIX_WRAPPER: Ty = Ty::Obj(&[req("data", &UNIX_ADDR)]);
static VSOCK_WRAPPER: Ty = Ty::Obj(&[req("data", &VSOCK_ADDR)]);
static FD_WRAPPER: Ty = Ty::Obj(&[req("data", &STRING_WRAPPER)]);
static ADDR_KIND: Ty = Ty::Enum(&["inet", "unix", "vsock", "fd"]);
pub static SOCKET_ADDRESS_LEGACY: Ty = Ty::Union {
    base: &[req("type", &ADDR_KIND)],
    tag: "type",
    variants: &[("inet", &INET_WRAPPER), ("unix", &UNIX_WRAPPER), ("vsock", &VSOCK_WRAPPER), ("fd", &FD_WRAPPER)],
};
static CHARDEV_SOCKET: Ty = Ty::Obj(&[
    COMMON[0],
    COMMON[1],
    req("addr", &SOCKET_ADDRESS_LEGACY),
    opt("tls-creds", &STR),
    opt("tls-authz", &STR),
    opt("server", &BOOL),
    opt("wait", &BOOL),
    opt("nodelay", &BOOL),
    opt("telnet", &BOOL),
    opt("tn3270", &BOOL),
    opt("websocket", &BOOL),
    opt("reconnect", &INT),
]);
static CHARDEV_COMMON: Ty = Ty::Obj(&COMMON);
static CHARDEV_RINGBUF: Ty = Ty::Obj(&[COMMON[0], COMMON[1], opt("size", &INT)]);
static CHARDEV_FILE: Ty = Ty::Obj(&[COMMON[0], COMMON[1], opt("in", &STR), req("out", &STR), opt("append", &BOOL)]);
static CHARDEV_HOSTDEV: Ty = Ty::Obj(&[COMMON[0], COMMON[1], req("device", &STR)]);
static CHARDEV_STDIO: Ty = Ty::Obj(&[COMMON[0], COMMON[1], opt("signal", &BOOL)]);
static SOCKET_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_SOCKET)]);
static RINGBUF_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_RINGBUF)]);
static COMMON_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_COMMON)]);
static FILE_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_FILE)]);
static HOSTDEV_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_HOSTDEV)]);
static STDIO_WRAPPER: Ty = Ty::Obj(&[req("data", &CHARDEV_STDIO)]);
pub static BACKEND_KINDS: &[&str] = &["socket", "ringbuf", "memory", "null", "file", "pipe", "stdio"];
static BACKEND_KIND: Ty = Ty::Enum(BACKEND_KINDS);
pub static CHARDEV_BACKEND: Ty = Ty::Union {
    base: &[req("type", &BACKEND_KIND)],
    tag: "type",
    variants: &[
        ("socket", &SOCKET_WRAPPER),
        ("ringbuf", &RINGBUF_WRAPPER),
        ("memory", &RINGBUF_WRAPPER),
        ("null", &COMMON_WRAPPER),
        ("file", &FILE_WRAPPER),
        ("pipe", &HOSTDEV_WRAPPER),
        ("stdio", &STDIO_WRAPPER),
    ],
};
static CHARDEV_ADD_ARGS: Ty = Ty::Obj(&[req("id", &STR), req("backend", &CHARDEV_BACKEND)]);
static CHARDEV_RETURN: Ty = Ty::Obj(&[opt("pty", &STR)]);

static WORKLOAD_INFO: Ty = Ty::Obj(&[
    req("program", &STR),
    opt("pid", &INT),
    req("ready", &BOOL),
    opt("status", &STR),
    opt("exit-code", &INT),
    opt("exit-signal", &INT),
]);
static WORKLOAD_INFO_OPT: Ty = Ty::Obj(&[opt("workload", &WORKLOAD_INFO)]);

// ---- events ------------------------------------------------------------------------------

pub static SHUTDOWN_CAUSE: Ty = Ty::Enum(&[
    "none",
    "host-error",
    "host-qmp-quit",
    "host-qmp-system-reset",
    "host-signal",
    "host-ui",
    "guest-shutdown",
    "guest-reset",
    "guest-panic",
    "subsystem-reset",
    "snapshot-load",
]);
static SHUTDOWN_DATA: Ty = Ty::Obj(&[req("guest", &BOOL), req("reason", &SHUTDOWN_CAUSE)]);
/// fdmon's own: the workload started as `pid` is ready (`-ready`).
static WORKLOAD_READY_DATA: Ty = Ty::Obj(&[req("pid", &INT)]);

/// Every event fdmon can send, with its data type.
pub static EVENTS: &[(&str, &Ty)] = &[
    ("SHUTDOWN", &SHUTDOWN_DATA),
    ("POWERDOWN", &EMPTY),
    ("RESET", &SHUTDOWN_DATA),
    ("STOP", &EMPTY),
    ("RESUME", &EMPTY),
    ("WORKLOAD_READY", &WORKLOAD_READY_DATA),
];

// ---- the table ---------------------------------------------------------------------------

macro_rules! cmd {
    ($name:expr, $args:expr, $ret:expr, $read:expr) => {
        Command { name: $name, args: $args, ret: $ret, read: $read }
    };
}

pub static COMMANDS: &[Command] = &[
    cmd!("qmp_capabilities", &QMP_CAPABILITIES_ARGS, &EMPTY, |a| {
        let oob = a.get("enable").and_then(Value::as_array).is_some_and(|l| !l.is_empty());
        Ok(Cmd::QmpCapabilities { oob })
    }),
    cmd!("query-version", &EMPTY, &VERSION_INFO, |_| Ok(Cmd::QueryVersion)),
    cmd!("query-commands", &EMPTY, &COMMAND_INFO_LIST, |_| Ok(Cmd::QueryCommands)),
    cmd!("query-qmp-schema", &EMPTY, &SCHEMA_INFO_LIST, |_| Ok(Cmd::QueryQmpSchema)),
    cmd!("query-status", &EMPTY, &STATUS_INFO, |_| Ok(Cmd::QueryStatus)),
    cmd!("query-name", &EMPTY, &NAME_INFO, |_| Ok(Cmd::QueryName)),
    cmd!("query-uuid", &EMPTY, &UUID_INFO, |_| Ok(Cmd::QueryUuid)),
    cmd!("stop", &EMPTY, &EMPTY, |_| Ok(Cmd::Stop)),
    cmd!("cont", &EMPTY, &EMPTY, |_| Ok(Cmd::Cont)),
    cmd!("system_reset", &EMPTY, &EMPTY, |_| Ok(Cmd::SystemReset)),
    cmd!("system_powerdown", &EMPTY, &EMPTY, |_| Ok(Cmd::SystemPowerdown)),
    cmd!("quit", &EMPTY, &EMPTY, |_| Ok(Cmd::Quit)),
    cmd!("query-chardev", &EMPTY, &CHARDEV_INFO_LIST, |_| Ok(Cmd::QueryChardev)),
    cmd!("query-chardev-backends", &EMPTY, &CHARDEV_BACKEND_INFO_LIST, |_| Ok(Cmd::QueryChardevBackends)),
    cmd!("chardev-add", &CHARDEV_ADD_ARGS, &CHARDEV_RETURN, read_chardev_add),
    cmd!("chardev-remove", &ID_ARGS, &EMPTY, |a| Ok(Cmd::ChardevRemove { id: str_arg(a, "id") })),
    cmd!("getfd", &FDNAME_ARGS, &EMPTY, |a| Ok(Cmd::Getfd { fdname: str_arg(a, "fdname") })),
    cmd!("closefd", &FDNAME_ARGS, &EMPTY, |a| Ok(Cmd::Closefd { fdname: str_arg(a, "fdname") })),
    cmd!("add-fd", &ADD_FD_ARGS, &ADD_FD_INFO, |a| {
        Ok(Cmd::AddFd { fdset_id: int_arg(a, "fdset-id"), opaque: a.get("opaque").and_then(Value::as_str) })
    }),
    cmd!("remove-fd", &REMOVE_FD_ARGS, &EMPTY, |a| {
        Ok(Cmd::RemoveFd { fdset_id: int_arg(a, "fdset-id").unwrap_or(-1), fd: int_arg(a, "fd") })
    }),
    cmd!("query-fdsets", &EMPTY, &FDSET_INFO_LIST, |_| Ok(Cmd::QueryFdsets)),
    cmd!("ringbuf-write", &RINGBUF_WRITE_ARGS, &EMPTY, |a| {
        Ok(Cmd::RingbufWrite { device: str_arg(a, "device"), data: str_arg(a, "data"), format: format_arg(a) })
    }),
    cmd!("ringbuf-read", &RINGBUF_READ_ARGS, &STR, |a| {
        let size = int_arg(a, "size").unwrap_or(0);
        Ok(Cmd::RingbufRead { device: str_arg(a, "device"), size, format: format_arg(a) })
    }),
    cmd!("human-monitor-command", &HMP_ARGS, &STR, |a| {
        Ok(Cmd::HumanMonitorCommand { command_line: str_arg(a, "command-line"), cpu_index: int_arg(a, "cpu-index") })
    }),
    cmd!("query-workload", &EMPTY, &WORKLOAD_INFO_OPT, |_| Ok(Cmd::QueryWorkload)),
    cmd!("monitor-add", &MONITOR_ADD_ARGS, &EMPTY, |a| {
        let mode = if str_arg(a, "mode") == "control" { MonitorMode::Control } else { MonitorMode::Readline };
        let (id, chardev, pretty) = (str_arg(a, "id"), str_arg(a, "chardev"), bool_arg(a, "pretty", false));
        Ok(Cmd::MonitorAdd { id, chardev, mode, pretty })
    }),
    cmd!("monitor-remove", &ID_ARGS, &EMPTY, |a| Ok(Cmd::MonitorRemove { id: str_arg(a, "id") })),
    cmd!("console-resize", &CONSOLE_RESIZE_ARGS, &EMPTY, |a| {
        Ok(Cmd::ConsoleResize { cols: int_arg(a, "cols").unwrap_or(0), rows: int_arg(a, "rows").unwrap_or(0) })
    }),
];

/// fdmon's own commands (not in QEMU 7.2): a comparison with QEMU's `query-commands` or
/// `query-qmp-schema` leaves them out.
pub static EXTENSIONS: &[&str] = &["query-workload", "monitor-add", "monitor-remove", "console-resize"];

/// The command named `name` (its UTF-8 bytes).
pub fn find(name: &[u8]) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name.as_bytes() == name)
}

/// Runs a typed command for `caller`.
pub fn execute(state: &mut State, caller: &Caller, cmd: Cmd<'_>) -> Result<Reply, QmpError> {
    match cmd {
        Cmd::QmpCapabilities { .. } => {
            Err(QmpError::command_not_found("Capabilities negotiation is already complete, command ignored"))
        }
        Cmd::QueryVersion => Ok(Reply::Version),
        Cmd::QueryCommands => Ok(Reply::Commands),
        Cmd::QueryQmpSchema => Ok(Reply::Schema),
        Cmd::QueryStatus => Ok(Reply::Status(state.run_state)),
        Cmd::QueryName => Ok(Reply::Name),
        Cmd::QueryUuid => Ok(Reply::Uuid),
        Cmd::Stop => stop(state),
        Cmd::Cont => cont(state),
        Cmd::SystemReset => system_reset(state),
        Cmd::SystemPowerdown => system_powerdown(state),
        Cmd::Quit => quit(state),
        Cmd::QueryChardev => Ok(Reply::Chardevs(chardev_list(state))),
        Cmd::QueryChardevBackends => Ok(Reply::ChardevBackends),
        Cmd::ChardevAdd(spec) => chardev_add(state, caller, &spec),
        Cmd::ChardevRemove { id } => chardev_remove(state, id),
        Cmd::Getfd { fdname } => getfd(state, caller, fdname),
        Cmd::Closefd { fdname } => closefd(state, caller, fdname),
        Cmd::AddFd { fdset_id, opaque } => add_fd(state, caller, fdset_id, opaque),
        Cmd::RemoveFd { fdset_id, fd } => remove_fd(state, fdset_id, fd),
        Cmd::QueryFdsets => query_fdsets(state),
        Cmd::RingbufWrite { device, data, format } => ringbuf_write(state, device, data, format),
        Cmd::RingbufRead { device, size, format } => ringbuf_read(state, device, size, format),
        Cmd::HumanMonitorCommand { command_line, cpu_index } => {
            crate::monitor::hmp::human_monitor_command(state, command_line, cpu_index).map(Reply::Str)
        }
        Cmd::QueryWorkload => query_workload(state),
        Cmd::MonitorAdd { id, chardev, mode, pretty } => monitor_add(state, id, chardev, mode, pretty),
        Cmd::MonitorRemove { id } => monitor_remove(state, id),
        Cmd::ConsoleResize { cols, rows } => console_resize(state, cols, rows),
    }
}

fn ok() -> Result<Reply, QmpError> {
    Ok(Reply::Empty)
}

fn str_arg<'a>(args: &'a Object, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or("")
}

fn int_arg(args: &Object, name: &str) -> Option<i64> {
    args.get(name).and_then(Value::as_i64)
}

fn format_arg(args: &Object) -> DataFormat {
    match args.get("format").and_then(Value::as_str) {
        Some("base64") => DataFormat::Base64,
        _ => DataFormat::Utf8,
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// fdmon's introspection schema, generated from `COMMANDS` and `EVENTS`.
pub fn schema() -> Value {
    let mut b = SchemaBuilder::new();
    for c in COMMANDS {
        b.command(c.name, c.args, c.ret);
    }
    for (name, data) in EVENTS {
        b.event(name, data);
    }
    b.finish()
}

pub fn stop(state: &mut State) -> Result<Reply, QmpError> {
    state.vm_stop();
    ok()
}

pub fn cont(state: &mut State) -> Result<Reply, QmpError> {
    state.vm_cont()?;
    ok()
}

pub fn system_reset(state: &mut State) -> Result<Reply, QmpError> {
    state.vm_reset()?;
    ok()
}

pub fn system_powerdown(state: &mut State) -> Result<Reply, QmpError> {
    state.vm_powerdown();
    ok()
}

pub fn quit(state: &mut State) -> Result<Reply, QmpError> {
    state.request_exit("host-qmp-quit");
    ok()
}

/// `(label, filename, frontend-open)` for every chardev, in QEMU 7.2's order (its hash table's,
/// see `chardev::order`).
pub fn chardev_list(state: &State) -> Vec<(String, String, bool)> {
    let by_id: std::collections::BTreeMap<&str, (usize, &crate::chardev::Chardev)> = state
        .chardevs
        .iter()
        .enumerate()
        .filter_map(|(s, c)| Some((c.as_ref()?.id.as_str(), (s, c.as_ref()?))))
        .collect();
    state
        .chardev_order
        .ids()
        .filter_map(|id| by_id.get(id))
        .map(|&(slot, c)| (c.id.clone(), c.filename(), state.chardev_busy(slot)))
        .collect()
}

pub fn chardev_remove(state: &mut State, id: &str) -> Result<Reply, QmpError> {
    let slot = state.chardev_slot(id).ok_or_else(|| QmpError::generic(format!("Chardev '{id}' not found")))?;
    if state.chardev_busy(slot) {
        return Err(QmpError::generic(format!("Chardev '{id}' is busy")));
    }
    state.remove_chardev(slot);
    ok()
}

pub fn getfd(state: &mut State, caller: &Caller, name: &str) -> Result<Reply, QmpError> {
    let fd = super::take_received_fd(state, caller.monitor)
        .ok_or_else(|| QmpError::generic("No file descriptor supplied via SCM_RIGHTS"))?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        // The fd was taken and is closed here, as QEMU does.
        drop(fd);
        return Err(QmpError::generic("Parameter 'fdname' expects a name not starting with a digit"));
    }
    let Some(mon) = caller.monitor.and_then(|m| state.monitor_mut(m)) else {
        return Err(QmpError::generic("No file descriptor supplied via SCM_RIGHTS"));
    };
    let names = &mut mon.named_fds;
    if let Some(entry) = names.iter_mut().find(|(n, _)| n == name) {
        entry.1 = fd;
    } else {
        if names.len() >= super::MAX_NAMED_FDS {
            return Err(QmpError::generic(format!(
                "Too many named file descriptors (at most {} per monitor)",
                super::MAX_NAMED_FDS
            )));
        }
        names.push((name.to_string(), fd));
    }
    ok()
}

pub fn closefd(state: &mut State, caller: &Caller, name: &str) -> Result<Reply, QmpError> {
    let not_found = || QmpError::generic(format!("File descriptor named '{name}' not found"));
    let mon = caller.monitor.and_then(|m| state.monitor_mut(m)).ok_or_else(not_found)?;
    let names = &mut mon.named_fds;
    let i = names.iter().position(|(n, _)| n == name).ok_or_else(not_found)?;
    names.remove(i);
    ok()
}

fn add_fd(state: &mut State, caller: &Caller, set: Option<i64>, opaque: Option<&str>) -> Result<Reply, QmpError> {
    let fd = super::take_received_fd(state, caller.monitor)
        .ok_or_else(|| QmpError::generic("No file descriptor supplied via SCM_RIGHTS"))?;
    if set.is_some_and(|s| s < 0) {
        // The fd was taken and closes here, as in QEMU.
        return Err(QmpError::generic("Parameter 'fdset-id' expects a non-negative value"));
    }
    let (num, set) = state.fdsets.add(set, fd, opaque.map(str::to_string))?;
    Ok(Reply::FdAdded { fd: i64::from(num), fdset_id: set })
}

fn remove_fd(state: &mut State, set: i64, fd: Option<i64>) -> Result<Reply, QmpError> {
    let running = state.run_state == crate::state::RunState::Running;
    let no_clients = state.no_monitor_clients();
    state.fdsets.remove(set, fd, running, no_clients)?;
    ok()
}

fn query_fdsets(state: &mut State) -> Result<Reply, QmpError> {
    Ok(Reply::Json(fdsets_json(&state.fdsets.query())))
}

fn fdsets_json(sets: &[crate::fdset::FdSetInfo]) -> Value {
    let fd_json = |e: &crate::fdset::FdInfo| {
        let mut o = Object::new().with("fd", Value::Int(i64::from(e.fd)));
        if let Some(op) = e.opaque {
            o.insert("opaque", Value::from(op));
        }
        Value::Object(o)
    };
    let set_json = |s: &crate::fdset::FdSetInfo| {
        let fds = s.fds.iter().map(fd_json).collect();
        Value::Object(Object::new().with("fds", Value::Array(fds)).with("fdset-id", Value::Int(s.id)))
    };
    Value::Array(sets.iter().map(set_json).collect())
}

fn ringbuf_slot(state: &State, dev: &str) -> Result<usize, QmpError> {
    let slot = state.chardev_slot(dev).ok_or_else(|| QmpError::generic(format!("Device '{dev}' not found")))?;
    match state.chardev(slot).map(|c| &c.backend) {
        Some(crate::chardev::Backend::Ringbuf { .. }) => Ok(slot),
        _ => Err(QmpError::generic(format!("{dev} is not a ringbuf device"))),
    }
}

pub fn ringbuf_write(state: &mut State, dev: &str, data: &str, format: DataFormat) -> Result<Reply, QmpError> {
    let slot = ringbuf_slot(state, dev)?;
    let bytes = if format == DataFormat::Base64 {
        crate::base64::decode(data).ok_or_else(|| QmpError::generic("Base64 data contains invalid characters"))?
    } else {
        modified_utf8(data)
    };
    if let Some(c) = state.chardev_mut(slot) {
        c.write(&bytes);
    }
    ok()
}

/// QEMU stores U+0000 as the two bytes C0 80 ("modified UTF-8").
fn modified_utf8(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len());
    for b in s.bytes() {
        if b == 0 {
            v.extend_from_slice(&[0xc0, 0x80]);
        } else {
            v.push(b);
        }
    }
    v
}

/// Decodes stored bytes as QEMU's JSON writer does: UTF-8 with C0 80 meaning U+0000, anything
/// invalid as U+FFFD.
pub fn decode_modified_utf8(bytes: &[u8]) -> String {
    let mut v = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xc0 && bytes.get(i + 1) == Some(&0x80) {
            v.push(0);
            i += 2;
        } else {
            v.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// Most bytes one `ringbuf-read` (or HMP `ringbuf_read`) returns, whatever its `size`. QEMU
/// returns up to `size` (a ring buffer holds up to 1 GiB), which makes one reply up to 6 GiB
/// of JSON; fdmon's largest reply is then about 6 MiB and the rest stays for the next read.
pub const RINGBUF_READ_MAX: usize = 1 << 20;

/// Reads up to `size` bytes (at most [`RINGBUF_READ_MAX`]) from a ringbuf. Shared with HMP
/// `ringbuf_read`.
pub fn ringbuf_take(state: &mut State, dev: &str, size: i64) -> Result<Vec<u8>, QmpError> {
    let slot = ringbuf_slot(state, dev)?;
    if size <= 0 {
        return Err(QmpError::generic("size must be greater than zero"));
    }
    let Some(crate::chardev::Chardev { backend: crate::chardev::Backend::Ringbuf { data, .. }, .. }) =
        state.chardev_mut(slot)
    else {
        return Err(QmpError::generic(format!("{dev} is not a ringbuf device")));
    };
    let n = usize::try_from(size).unwrap_or(usize::MAX).min(data.len()).min(RINGBUF_READ_MAX);
    Ok(data.drain(..n).collect())
}

fn ringbuf_read(state: &mut State, dev: &str, size: i64, format: DataFormat) -> Result<Reply, QmpError> {
    let bytes = ringbuf_take(state, dev, size)?;
    Ok(Reply::Str(match format {
        DataFormat::Base64 => crate::base64::encode(&bytes),
        DataFormat::Utf8 => decode_modified_utf8(&bytes),
    }))
}

fn bool_arg(o: &Object, name: &str, default: bool) -> bool {
    o.get(name).and_then(Value::as_bool).unwrap_or(default)
}

/// Converts QMP's `backend` union (already validated) into a `ChardevSpec`, with the spec checks
/// of `chardev::validate` in QMP's order.
fn backend_spec(id: &str, backend: &Object) -> Result<ChardevSpec, SpecError> {
    let empty = Object::new();
    let kind = str_arg(backend, "type");
    let data = backend.get("data").and_then(Value::as_object).unwrap_or(&empty);
    // QEMU copies output to `logfile`; fdmon does not implement it and says so, with the text
    // the command line (and HMP) uses. `logappend` alone means nothing and is accepted.
    validate::common_refusals(false, data.get("logfile").is_some())?;
    let backend = match kind {
        "socket" => {
            let addr = data.get("addr").and_then(Value::as_object).unwrap_or(&empty);
            let ad = addr.get("data").and_then(Value::as_object).unwrap_or(&empty);
            let addr = match str_arg(addr, "type") {
                "unix" => SocketAddrSpec::Unix {
                    path: str_arg(ad, "path").to_string(),
                    abstract_: bool_arg(ad, "abstract", false),
                    tight: bool_arg(ad, "tight", true),
                },
                "inet" => SocketAddrSpec::Inet {
                    host: str_arg(ad, "host").to_string(),
                    port: str_arg(ad, "port").to_string(),
                    to: match ad.get("to").and_then(Value::as_i64) {
                        None => None,
                        Some(t) => Some(u16::try_from(t).map_err(|_| SpecError::ToNotAPort)?),
                    },
                    ipv4: ad.get("ipv4").and_then(Value::as_bool),
                    ipv6: ad.get("ipv6").and_then(Value::as_bool),
                },
                "fd" => SocketAddrSpec::Fd(str_arg(ad, "str").into()),
                _ => return Err(SpecError::Vsock),
            };
            let server = bool_arg(data, "server", true);
            let wait = bool_arg(data, "wait", false);
            let reconnect = data.get("reconnect").and_then(Value::as_i64);
            let input = validate::SocketInput {
                is_fd: matches!(addr, SocketAddrSpec::Fd(_)),
                server,
                wait_given: data.get("wait").is_some(),
                wait,
                reconnect_given: reconnect.is_some(),
                tls_creds: data.get("tls-creds").and_then(Value::as_str),
                ..Default::default()
            };
            validate::socket_rules(&input, validate::QMP_SOCKET_RULES)?;
            BackendSpec::Socket(SocketSpec {
                addr,
                server,
                wait,
                nodelay: bool_arg(data, "nodelay", false),
                reconnect: reconnect.map(|r| u64::try_from(r).unwrap_or(0)),
                tls_creds: data.get("tls-creds").and_then(Value::as_str).map(str::to_string),
                tls_authz: data.get("tls-authz").and_then(Value::as_str).map(str::to_string),
                telnet: bool_arg(data, "telnet", false),
                tn3270: bool_arg(data, "tn3270", false),
                websocket: bool_arg(data, "websocket", false),
            })
        }
        "ringbuf" | "memory" => {
            let size = data.get("size").and_then(Value::as_i64).unwrap_or(65536);
            BackendSpec::Ringbuf { size: u64::try_from(size).unwrap_or(0), memory_alias: kind == "memory" }
        }
        "null" => BackendSpec::Null,
        "file" => BackendSpec::File { path: str_arg(data, "out").to_string(), append: bool_arg(data, "append", false) },
        "pipe" => BackendSpec::Pipe { path: str_arg(data, "device").to_string() },
        _ => BackendSpec::Stdio { signal: bool_arg(data, "signal", true) },
    };
    Ok(ChardevSpec { id: id.to_string(), backend })
}

/// Creates a chardev at run time; `fd=` names are looked up (and consumed) in the calling
/// monitor's names. Shared with HMP `chardev-add`.
pub fn add_chardev(state: &mut State, caller: &Caller, spec: &ChardevSpec) -> Result<(), QmpError> {
    if state.chardev_slot(&spec.id).is_some() {
        return Err(QmpError::generic(format!("Chardev with id '{}' already exists", spec.id)));
    }
    let fail = |e: String| QmpError::generic(format!("Failed to add chardev '{}': {e}", spec.id));
    match &spec.backend {
        // QEMU's text; fdmon's rule is simply "one live stdio chardev at a time".
        BackendSpec::Stdio { .. } if state.stdio_in_use() => {
            return Err(fail("cannot use stdio by multiple character devices".into()));
        }
        // HMP's `chardev-add` reaches here with wait=on (its default for a server).
        BackendSpec::Socket(s) if s.server && s.wait => return Err(fail(SpecError::WaitAtRuntime.to_string())),
        _ => {}
    }
    crate::chardev::validate::before_open(spec).map_err(|e| fail(e.to_string()))?;
    // `fd=NAME`: the calling monitor's `getfd` name moves into the new chardev.
    let fd = match spec.fd_ref() {
        Some(f) => Some(
            super::take_named_fd(state, caller.monitor, f.text())
                .ok_or_else(|| fail(OpenError::NamedFdNotFound(f.text().to_string()).to_string()))?,
        ),
        None => None,
    };
    let mut dev = open(spec, fd).map_err(|e| fail(e.to_string()))?;
    if dev.is_stdio_tty() {
        // fdmon reads the terminal from now on: it must hold the foreground, not the workload.
        if let Some(w) = &mut state.workload {
            w.take_terminal();
        }
        if let Some(t) = dev.tty_mode() {
            t.resume();
        }
    }
    state.add_chardev(dev);
    Ok(())
}

fn read_chardev_add(args: &Object) -> Result<Cmd<'_>, QmpError> {
    let id = str_arg(args, "id");
    let empty = Object::new();
    let backend = args.get("backend").and_then(Value::as_object).unwrap_or(&empty);
    let spec =
        backend_spec(id, backend).map_err(|e| QmpError::generic(format!("Failed to add chardev '{id}': {e}")))?;
    Ok(Cmd::ChardevAdd(spec))
}

/// QMP's `chardev-add`: [`add_chardev`] with the error as QMP shows it.
fn chardev_add(state: &mut State, caller: &Caller, spec: &ChardevSpec) -> Result<Reply, QmpError> {
    add_chardev(state, caller, spec).map_err(|mut e| {
        // A reason's second line is a hint (`Path must be less than 108 bytes`): QEMU prints
        // hints on the command line and in HMP, but a QMP desc never carries one.
        if let Some(i) = e.desc.find('\n') {
            e.desc.truncate(i);
        }
        e
    })?;
    ok()
}

/// The reply reads `Workload::info` when it is written (as `query-name` reads the name).
fn query_workload(_: &mut State) -> Result<Reply, QmpError> {
    Ok(Reply::Workload)
}

pub(super) fn workload_json(w: &crate::workload::WorkloadInfo) -> Value {
    use crate::sys::process::WaitStatus;
    let mut o = Object::new().with("program", Value::from(w.program));
    if let Some(pid) = w.pid {
        o.insert("pid", Value::Int(i64::from(pid)));
    }
    o.insert("ready", Value::Bool(w.ready));
    if let Some(s) = w.status {
        o.insert("status", Value::from(s));
    }
    match w.last_exit {
        Some(WaitStatus::Exited(c)) => o.insert("exit-code", Value::Int(i64::from(c))),
        Some(WaitStatus::Signaled(s)) => o.insert("exit-signal", Value::Int(i64::from(s))),
        _ => {}
    }
    Value::Object(o)
}

/// `monitor-add` (fdmon's): a QMP or HMP monitor on an existing chardev, greeting at once on
/// a connected one and each client of a listener. Shared with HMP `monitor-add`.
pub fn monitor_add(
    state: &mut State,
    id: &str,
    chardev: &str,
    mode: MonitorMode,
    pretty: bool,
) -> Result<Reply, QmpError> {
    // QEMU's texts and order for the same mistakes on `-mon`.
    if !crate::opts::kv::id_wellformed(id) {
        return Err(QmpError::generic("Parameter 'id' expects an identifier"));
    }
    if state.monitor_slot(id).is_some() {
        return Err(QmpError::generic(format!("Duplicate ID '{id}' for mon")));
    }
    let slot =
        state.chardev_slot(chardev).ok_or_else(|| QmpError::generic(format!("chardev \"{chardev}\" not found")))?;
    let mode = match mode {
        MonitorMode::Control => super::Mode::Control { pretty },
        _ if pretty => return Err(QmpError::generic("'pretty' is not compatible with HMP monitors")),
        _ => super::Mode::Readline,
    };
    super::attach(state, Some(id.to_string()), slot, mode)?;
    ok()
}

/// `monitor-remove` (fdmon's): the monitor stops at once; the reply to a monitor's removal
/// of itself is the last thing it sends. Its chardev stays, free for `chardev-remove`.
pub fn monitor_remove(state: &mut State, id: &str) -> Result<Reply, QmpError> {
    let m = state.monitor_slot(id).ok_or_else(|| QmpError::generic(format!("Monitor '{id}' not found")))?;
    super::detach(state, m);
    ok()
}

/// fdmon's `console-resize`: the window size of the workload's console (`-serial`), now (its
/// foreground process group gets SIGWINCH) and for every later start. Shared with HMP.
pub fn console_resize(state: &mut State, cols: i64, rows: i64) -> Result<Reply, QmpError> {
    let dim = |name: &str, v: i64| {
        u16::try_from(v)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| QmpError::generic(format!("Parameter '{name}' expects a value between 1 and 65535")))
    };
    let (cols, rows) = (dim("cols", cols)?, dim("rows", rows)?);
    let Some(con) = &mut state.console else {
        return Err(QmpError::generic("No console: fdmon was started without -serial"));
    };
    con.resize(cols, rows)
        .map_err(|e| QmpError::generic(format!("Cannot resize the console: {}", crate::error::os_text(&e))))?;
    if let Some(w) = &mut state.workload {
        w.set_console_size(cols, rows);
    }
    ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_listed_once_and_in_the_schema() {
        let s = crate::json::to_string(&schema());
        for c in COMMANDS {
            assert_eq!(COMMANDS.iter().filter(|d| d.name == c.name).count(), 1, "{}", c.name);
            assert!(s.contains(&format!(r#"{{"name": "{}", "ret-type""#, c.name)), "{}", c.name);
        }
        for (e, _) in EVENTS {
            assert!(s.contains(&format!(r#"{{"name": "{e}", "meta-type": "event""#)), "{e}");
        }
    }

    #[test]
    fn modified_utf8_encodes_nul() {
        assert_eq!(modified_utf8("é\u{0}z"), vec![0xc3, 0xa9, 0xc0, 0x80, b'z']);
    }
}
