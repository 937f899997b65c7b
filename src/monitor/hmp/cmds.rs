//! The HMP command table and interpreter: one command line in, the text to print out. The
//! operations themselves are the QMP handlers of `commands`; this module only parses HMP
//! syntax, calls them and formats their results the way QEMU's HMP does. It never writes to a
//! connection (the caller does), so `human-monitor-command` can reuse it unchanged.

use super::editor::Completions;
use super::parse::{self, skip_spaces};
use crate::chardev::Backend;
use crate::error::QmpError;
use crate::json::Value;
use crate::monitor::commands::{self, Caller, Cmd as Qmp, DataFormat, MonitorMode};
use crate::monitor::reply::Reply;
use crate::opts::chardev::{parse_chardev_add, ChardevAddError, ChardevAddRequest, BACKEND_NAMES};
use crate::state::RunState;
use crate::state::State;

/// How one argument is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// A word or quoted string (QEMU `s`).
    Str,
    /// The same, or nothing when the line ends (QEMU `s?`).
    OptStr,
    /// The rest of the line as typed, or nothing (QEMU `S?`).
    OptRest,
    /// An integer expression that fits in 32 bits (QEMU `i`).
    Int,
}

/// A parsed argument.
enum Val {
    None,
    Str(Vec<u8>),
    Int(i64),
}

impl Val {
    fn bytes(&self) -> &[u8] {
        match self {
            Val::Str(s) => s,
            _ => b"",
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

type Run = fn(&mut Ctx, &[Val]);
type Complete = fn(&State, usize, &[u8], &mut Completions);

pub(super) struct Cmd {
    /// `name` or `name|alias`, as `help` and the "extraneous characters" error show it.
    name: &'static str,
    args: &'static [Arg],
    /// Argument synopsis for `help`.
    params: &'static str,
    help: &'static str,
    run: Run,
    /// Sub-commands (`info`).
    sub: Option<&'static [Cmd]>,
    /// Completion of the arguments.
    complete: Option<Complete>,
}

const fn cmd(name: &'static str, args: &'static [Arg], params: &'static str, help: &'static str, run: Run) -> Cmd {
    Cmd { name, args, params, help, run, sub: None, complete: None }
}

/// Sorted by name, as QEMU sorts its tables (so `help` lists them alphabetically).
pub(super) static COMMANDS: &[Cmd] = &[
    Cmd {
        complete: Some(complete_backend),
        ..cmd("chardev-add", &[Arg::Str], "args", "create a character device from -chardev style options", chardev_add)
    },
    Cmd {
        complete: Some(complete_chardev),
        ..cmd("chardev-remove", &[Arg::Str], "id", "remove a character device that no monitor uses", chardev_remove)
    },
    cmd("closefd", &[Arg::Str], "name", "close a file descriptor named with getfd", closefd),
    cmd(
        "console_resize",
        &[Arg::Int, Arg::Int],
        "cols rows",
        "set the window size of the workload's console (-serial)",
        console_resize,
    ),
    cmd("cont|c", &[], "", "resume the workload, starting it if it never ran", cont),
    cmd("getfd", &[Arg::Str], "name", "name the file descriptor that came with SCM_RIGHTS", getfd),
    cmd("help|?", &[Arg::OptRest], "[cmd]", "list the commands, or describe one", help),
    Cmd {
        sub: Some(INFO),
        ..cmd("info", &[Arg::OptStr], "[subcommand]", "show facts about fdmon and its workload", info_help)
    },
    cmd(
        "monitor-add",
        &[Arg::Str],
        "args",
        "add a monitor on a chardev from -mon style options (id= required)",
        monitor_add,
    ),
    Cmd {
        complete: Some(complete_monitor),
        ..cmd("monitor-remove", &[Arg::Str], "id", "remove a monitor; its chardev stays", monitor_remove)
    },
    cmd("quit|q", &[], "", "exit fdmon now, ending the workload", quit),
    Cmd {
        complete: Some(complete_ringbuf),
        ..cmd(
            "ringbuf_read",
            &[Arg::Str, Arg::Int],
            "device size",
            "take up to size bytes out of a ring buffer chardev",
            ringbuf_read,
        )
    },
    Cmd {
        complete: Some(complete_ringbuf),
        ..cmd(
            "ringbuf_write",
            &[Arg::Str, Arg::Str],
            "device data",
            "append text to a ring buffer chardev",
            ringbuf_write,
        )
    },
    cmd("stop|s", &[], "", "pause the workload", stop),
    cmd("system_powerdown", &[], "", "ask the workload to shut down (SIGTERM)", system_powerdown),
    cmd("system_reset", &[], "", "restart the workload (or go back to prelaunch)", system_reset),
];

static INFO: &[Cmd] = &[
    cmd("chardev", &[], "", "list the character devices and their filenames", info_chardev),
    cmd("name", &[], "", "print the -name value, if one was given", info_name),
    cmd("status", &[], "", "print the run state (running|paused)", info_status),
    cmd("uuid", &[], "", "print the -uuid value", info_uuid),
    cmd("version", &[], "", "print the fdmon version", info_version),
    cmd("workload", &[], "", "describe the supervised program: pid and last exit", info_workload),
];

/// Whether `name` is one of the `|`-separated names of `list`.
fn has_name(list: &str, name: &[u8]) -> bool {
    list.split('|').any(|n| n.as_bytes() == name)
}

/// Where a command runs and where its output goes.
pub(super) struct Ctx<'a> {
    pub state: &'a mut State,
    pub caller: Caller,
    /// Output with bare `\n` line ends.
    pub out: Vec<u8>,
}

impl Ctx<'_> {
    fn print(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn error(&mut self, e: &QmpError) {
        self.print(&format!("Error: {}\n", e.desc));
    }

    /// Runs a typed command through the handlers QMP uses and prints its error, if any.
    fn call(&mut self, cmd: Qmp<'_>) -> Option<Reply> {
        match commands::execute(self.state, &self.caller, cmd) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&e);
                None
            }
        }
    }
}

/// Runs one command line (QEMU's `handle_hmp_command`).
pub(super) fn run_line(ctx: &mut Ctx, line: &[u8]) {
    let mut pos = 0;
    let Some(cmd) = find_command(ctx, line, COMMANDS, &mut pos) else { return };
    // `pos` is after the command name(s) and the blanks after them.
    let name_end = pos;
    match parse_args(cmd, line, &mut pos) {
        Ok(args) => (cmd.run)(ctx, &args),
        Err(msg) => {
            ctx.out.extend_from_slice(&msg);
            ctx.out.push(b'\n');
            let mut end = name_end;
            while end > 0 && parse::is_space(line[end - 1]) {
                end -= 1;
            }
            ctx.print("Try \"help ");
            ctx.out.extend_from_slice(&line[..end]);
            ctx.print("\" for more information\n");
        }
    }
}

/// Reads the command name(s) at `pos`, descending into sub-command tables.
fn find_command(ctx: &mut Ctx, line: &[u8], table: &'static [Cmd], pos: &mut usize) -> Option<&'static Cmd> {
    let (start, end) = parse::command_name(line, *pos)?;
    let name = parse::lookup_name(&line[start..end]);
    let Some(cmd) = table.iter().find(|c| has_name(c.name, name)) else {
        // QEMU quotes the line from its very start (blanks included) to the end of the name.
        ctx.print("unknown command: '");
        ctx.out.extend_from_slice(&line[..end]);
        ctx.print("'\n");
        return None;
    };
    *pos = end;
    skip_spaces(line, pos);
    match cmd.sub {
        Some(sub) if *pos < line.len() => find_command(ctx, line, sub, pos),
        _ => Some(cmd),
    }
}

/// Reads the arguments of `cmd`; the error is the text to print before "Try help".
fn parse_args(cmd: &Cmd, line: &[u8], pos: &mut usize) -> Result<Vec<Val>, Vec<u8>> {
    let mut vals = Vec::new();
    for &a in cmd.args {
        skip_spaces(line, pos);
        let v = match a {
            Arg::OptStr | Arg::OptRest if *pos >= line.len() => Val::None,
            Arg::Str | Arg::OptStr => match parse::word(line, pos) {
                Ok(w) => Val::Str(w),
                Err(()) => return Err(format!("{}: string expected", cmd.name).into_bytes()),
            },
            Arg::OptRest => {
                let rest = line[*pos..].to_vec();
                *pos = line.len();
                Val::Str(rest)
            }
            Arg::Int => {
                let v = parse::expr(line, pos)?;
                if (v >> 32) & 0xffff_ffff != 0 {
                    return Err(format!("'{}' has failed: integer is for 32-bit values", cmd.name).into_bytes());
                }
                Val::Int(v)
            }
        };
        vals.push(v);
    }
    skip_spaces(line, pos);
    if *pos < line.len() {
        return Err(format!("{}: extraneous characters at the end of line", cmd.name).into_bytes());
    }
    Ok(vals)
}

// ---- help --------------------------------------------------------------------------------

fn help_line(ctx: &mut Ctx, prefix: &[Vec<u8>], cmd: &Cmd) {
    for p in prefix {
        ctx.out.extend_from_slice(p);
        ctx.out.push(b' ');
    }
    ctx.print(&format!("{} {} -- {}\n", cmd.name, cmd.params, cmd.help));
}

fn help_dump(ctx: &mut Ctx, table: &[Cmd], args: &[Vec<u8>], i: usize) {
    let Some(want) = args.get(i) else {
        for c in table {
            help_line(ctx, &args[..i], c);
        }
        return;
    };
    match table.iter().find(|c| has_name(c.name, want)) {
        Some(c) => match c.sub {
            Some(sub) => help_dump(ctx, sub, args, i + 1),
            None => help_line(ctx, &args[..i], c),
        },
        None => {
            ctx.print("unknown command: '");
            ctx.out.extend_from_slice(&args[..=i].join(&b' '));
            ctx.print("'\n");
        }
    }
}

/// `help [words]`: a malformed word list prints nothing, as in QEMU.
fn help_for(ctx: &mut Ctx, text: &[u8]) {
    if let Some(args) = parse::words(text) {
        help_dump(ctx, COMMANDS, &args, 0);
    }
}

fn help(ctx: &mut Ctx, a: &[Val]) {
    help_for(ctx, a[0].bytes());
}

fn info_help(ctx: &mut Ctx, _: &[Val]) {
    help_for(ctx, b"info");
}

// ---- commands ----------------------------------------------------------------------------

fn getfd(ctx: &mut Ctx, a: &[Val]) {
    ctx.call(Qmp::Getfd { fdname: &a[0].text() });
}

fn closefd(ctx: &mut Ctx, a: &[Val]) {
    ctx.call(Qmp::Closefd { fdname: &a[0].text() });
}

fn stop(ctx: &mut Ctx, _: &[Val]) {
    ctx.call(Qmp::Stop);
}

fn cont(ctx: &mut Ctx, _: &[Val]) {
    ctx.call(Qmp::Cont);
}

fn console_resize(ctx: &mut Ctx, a: &[Val]) {
    let int = |v: &Val| match v {
        Val::Int(n) => *n,
        _ => 0,
    };
    ctx.call(Qmp::ConsoleResize { cols: int(&a[0]), rows: int(&a[1]) });
}

fn system_reset(ctx: &mut Ctx, _: &[Val]) {
    ctx.call(Qmp::SystemReset);
}

fn system_powerdown(ctx: &mut Ctx, _: &[Val]) {
    ctx.call(Qmp::SystemPowerdown);
}

fn quit(ctx: &mut Ctx, _: &[Val]) {
    ctx.call(Qmp::Quit);
}

fn chardev_remove(ctx: &mut Ctx, a: &[Val]) {
    ctx.call(Qmp::ChardevRemove { id: &a[0].text() });
}

fn chardev_add(ctx: &mut Ctx, a: &[Val]) {
    let text = a[0].text();
    // Ids QEMU still holds as command-line options answer "Duplicate ID". fdmon does not
    // record which chardevs came from the command line; a chardev serving a monitor surely
    // did (runtime chardevs never get one).
    let state = &*ctx.state;
    let taken = |id: &str| state.cli_chardev_ids.iter().any(|i| i == id);
    let parsed = parse_chardev_add(&text, &taken);
    for w in &parsed.warnings {
        ctx.print(w);
        ctx.print("\n");
    }
    match parsed.result {
        Ok(ChardevAddRequest::ListBackends(list)) => ctx.print(&list),
        Ok(ChardevAddRequest::Create(spec)) => {
            if ctx.state.chardev_slot(&spec.id).is_some() {
                // What QEMU reports for a chardev created at run time: the object tree's text.
                // For sockets QEMU says "duplicate yank instance", an internal detail; fdmon
                // says what is wrong instead.
                let desc = match spec.backend {
                    crate::chardev::spec::BackendSpec::Socket(_) => {
                        format!("Chardev with id '{}' already exists", spec.id)
                    }
                    _ => format!("attempt to add duplicate property '{}' to object (type 'container')", spec.id),
                };
                ctx.error(&QmpError::generic(desc));
                return;
            }
            if let Err(mut e) = commands::add_chardev(ctx.state, &ctx.caller, &spec) {
                // HMP shows the bare reason, without QMP's "Failed to add chardev" wrapper.
                let wrapper = format!("Failed to add chardev '{}': ", spec.id);
                if let Some(reason) = e.desc.strip_prefix(&wrapper) {
                    e.desc = reason.to_string();
                }
                ctx.error(&e);
            }
        }
        Err(ChardevAddError::Parse(e)) => {
            ctx.print(&format!("{e}\nError: Parsing chardev args failed\n"));
        }
        // QEMU prints the key list on its own stdout, not on the monitor.
        Err(ChardevAddError::ParseHelp(_)) => ctx.print("Error: Parsing chardev args failed\n"),
        Err(ChardevAddError::Create(e)) => ctx.print(&format!("Error: {e}\n")),
    }
}

/// `monitor-add [chardev=]NAME,id=ID[,mode=readline|control][,pretty=on|off]`: `-mon`'s
/// syntax and defaults (readline), plus a required id; the QMP handler does the rest.
fn monitor_add(ctx: &mut Ctx, a: &[Val]) {
    let list = &crate::opts::cli::MON_OPTS;
    let text = a[0].text();
    let kv = crate::opts::parse_kv(&text, list.implied_key);
    let checked = kv.validate(list, &|_| false);
    for w in &checked.warnings {
        ctx.print(w);
        ctx.print("\n");
    }
    match checked.result {
        Ok(()) => {}
        Err(crate::opts::kv::ParseStop::Help) => return ctx.print(&list.help_text()),
        Err(crate::opts::kv::ParseStop::Error(e)) => return ctx.print(&format!("Error: {e}\n")),
    }
    let (Some(id), Some(chardev)) = (kv.id(), kv.get("chardev")) else {
        let missing = if kv.id().is_none() { "id" } else { "chardev" };
        return ctx.print(&format!("Error: Parameter '{missing}' is missing\n"));
    };
    let mode = kv.get("mode").unwrap_or("readline");
    if mode != "readline" && mode != "control" {
        return ctx.print(&format!("Error: Parameter 'mode' does not accept value '{mode}'\n"));
    }
    let mode = if mode == "control" { MonitorMode::Control } else { MonitorMode::Readline };
    let pretty = kv.get_bool("pretty").ok().flatten().unwrap_or(false);
    ctx.call(Qmp::MonitorAdd { id, chardev, mode, pretty });
}

fn monitor_remove(ctx: &mut Ctx, a: &[Val]) {
    ctx.call(Qmp::MonitorRemove { id: &a[0].text() });
}

fn ringbuf_write(ctx: &mut Ctx, a: &[Val]) {
    ctx.call(Qmp::RingbufWrite { device: &a[0].text(), data: &a[1].text(), format: DataFormat::Utf8 });
}

fn ringbuf_read(ctx: &mut Ctx, a: &[Val]) {
    let size = match a[1] {
        Val::Int(n) => n & 0xffff_ffff,
        _ => 0,
    };
    let dev = a[0].text();
    match commands::ringbuf_take(ctx.state, &dev, size) {
        Ok(data) => {
            let text = escape_ringbuf(&data);
            ctx.out.extend_from_slice(&text);
            ctx.out.push(b'\n');
        }
        Err(e) => ctx.error(&e),
    }
}

/// Ring buffer bytes as HMP prints them: up to the first NUL, `\` doubled, control bytes
/// other than TAB and LF (and DEL) as `\uXXXX`, everything else raw.
pub(super) fn escape_ringbuf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data.iter().take_while(|&&b| b != 0) {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' | b'\n' => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04X}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fn info_version(ctx: &mut Ctx, _: &[Val]) {
    // QEMU prints major.minor.micro immediately followed by the package string, with
    // nothing between them ("7.2.22Debian 1:7.2+dfsg-..."); fdmon's package is "fdmon", so
    // this prints "0.1.0fdmon".
    if ctx.call(Qmp::QueryVersion) == Some(Reply::Version) {
        let (major, minor, micro) = crate::monitor::qmp::version();
        ctx.print(&format!("{major}.{minor}.{micro}{}\n", crate::monitor::qmp::PACKAGE));
    }
}

fn info_status(ctx: &mut Ctx, _: &[Val]) {
    let Some(Reply::Status(rs)) = ctx.call(Qmp::QueryStatus) else { return };
    match rs {
        RunState::Running => ctx.print("VM status: running\n"),
        RunState::Paused => ctx.print("VM status: paused\n"),
        other => {
            ctx.print("VM status: paused (");
            ctx.print(other.as_str());
            ctx.print(")\n");
        }
    }
}

fn info_chardev(ctx: &mut Ctx, _: &[Val]) {
    let Some(Reply::Chardevs(list)) = ctx.call(Qmp::QueryChardev) else { return };
    for (label, filename, _) in list {
        ctx.print(&label);
        ctx.print(": filename=");
        ctx.print(&filename);
        ctx.print("\n");
    }
}

fn info_name(ctx: &mut Ctx, _: &[Val]) {
    if ctx.call(Qmp::QueryName) != Some(Reply::Name) {
        return;
    }
    if let Some(n) = ctx.state.name.clone() {
        ctx.print(&n);
        ctx.print("\n");
    }
}

fn info_uuid(ctx: &mut Ctx, _: &[Val]) {
    if ctx.call(Qmp::QueryUuid) != Some(Reply::Uuid) {
        return;
    }
    let u = ctx.state.uuid.clone();
    ctx.print(&u);
    ctx.print("\n");
}

/// fdmon's own: `workload: PROGRAM, pid N, ready` (or `not ready`) while it runs, then
/// `, status "TEXT"` once it sent one (JSON-quoted); `workload: PROGRAM, not running`
/// otherwise, then the last exit if there was one (`, last exit status N` or
/// `, last killed by signal N`); `workload: none` without `-- PROGRAM`.
fn info_workload(ctx: &mut Ctx, _: &[Val]) {
    let Some(Reply::Workload) = ctx.call(Qmp::QueryWorkload) else { return };
    let Some(w) = &ctx.state.workload else {
        ctx.print("workload: none\n");
        return;
    };
    let info = w.info();
    let mut line = format!("workload: {}", info.program);
    match info.pid {
        Some(pid) => {
            line.push_str(&format!(", pid {pid}"));
            line.push_str(if info.ready { ", ready" } else { ", not ready" });
        }
        None => line.push_str(", not running"),
    }
    if let Some(s) = info.status {
        line.push_str(&format!(", status {}", crate::json::to_string(&Value::from(s))));
    }
    match info.last_exit {
        Some(crate::sys::process::WaitStatus::Exited(c)) => line.push_str(&format!(", last exit status {c}")),
        Some(crate::sys::process::WaitStatus::Signaled(s)) => line.push_str(&format!(", last killed by signal {s}")),
        _ => {}
    }
    line.push('\n');
    ctx.print(&line);
}

// ---- completion --------------------------------------------------------------------------

/// Candidates for Tab with `line` the text before the cursor (QEMU's
/// `monitor_find_completion`).
pub(super) fn complete(state: &State, line: &[u8]) -> Completions {
    let mut c = Completions::default();
    let Some(mut args) = parse::words(line) else { return c };
    if line.last().is_some_and(|&b| parse::is_space(b)) {
        if args.len() >= 16 {
            return c;
        }
        args.push(Vec::new());
    }
    complete_in(state, COMMANDS, &args, &mut c);
    c
}

fn complete_in(state: &State, table: &[Cmd], args: &[Vec<u8>], c: &mut Completions) {
    if args.len() <= 1 {
        let typed = args.first().map(Vec::as_slice).unwrap_or_default();
        c.index = typed.len();
        for cmd in table {
            for n in cmd.name.split('|') {
                if n.as_bytes().starts_with(typed) {
                    c.add(n.as_bytes());
                }
            }
        }
        return;
    }
    let Some(cmd) = table.iter().find(|cmd| has_name(cmd.name, &args[0])) else { return };
    if let Some(sub) = cmd.sub {
        complete_in(state, sub, &args[1..], c);
    } else if let Some(f) = cmd.complete {
        f(state, args.len(), &args[args.len() - 1], c);
    } else if cmd.name == "help|?" {
        complete_in(state, COMMANDS, &args[1..], c);
    }
}

/// Adds the `names` that start with `typed`, for the first argument only.
fn complete_from<'a>(nargs: usize, typed: &[u8], names: impl Iterator<Item = &'a str>, c: &mut Completions) {
    if nargs != 2 {
        return;
    }
    c.index = typed.len();
    for n in names {
        if n.as_bytes().starts_with(typed) {
            c.add(n.as_bytes());
        }
    }
}

fn complete_backend(_: &State, nargs: usize, typed: &[u8], c: &mut Completions) {
    complete_from(nargs, typed, BACKEND_NAMES.iter().copied(), c);
}

fn complete_chardev(state: &State, nargs: usize, typed: &[u8], c: &mut Completions) {
    complete_from(nargs, typed, state.chardevs.iter().flatten().map(|d| d.id.as_str()), c);
}

fn complete_monitor(state: &State, nargs: usize, typed: &[u8], c: &mut Completions) {
    complete_from(nargs, typed, state.monitors.iter().flatten().filter_map(|m| m.id.as_deref()), c);
}

fn complete_ringbuf(state: &State, nargs: usize, typed: &[u8], c: &mut Completions) {
    let rings = state.chardevs.iter().flatten().filter(|d| matches!(d.backend, Backend::Ringbuf { .. }));
    complete_from(nargs, typed, rings.map(|d| d.id.as_str()), c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunState;

    fn run_as(state: &mut State, line: &str) -> String {
        let mut ctx = Ctx { state, caller: Caller { monitor: None }, out: Vec::new() };
        run_line(&mut ctx, line.as_bytes());
        String::from_utf8(ctx.out).unwrap()
    }

    fn run(line: &str) -> String {
        run_as(&mut State::new(), line)
    }

    fn try_help(msg: &str, cmd: &str) -> String {
        format!("{msg}\nTry \"help {cmd}\" for more information\n")
    }

    #[test]
    fn tables_are_sorted_and_complete() {
        for t in [COMMANDS, INFO] {
            let names: Vec<&str> = t.iter().map(|c| c.name).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted);
        }
    }

    #[test]
    fn unknown_commands() {
        assert_eq!(run("bogus"), "unknown command: 'bogus'\n");
        assert_eq!(run("bogus with args"), "unknown command: 'bogus'\n");
        assert_eq!(run("INFO VERSION"), "unknown command: 'INFO'\n");
        assert_eq!(run("info bogus"), "unknown command: 'info bogus'\n");
        assert_eq!(run("info ver"), "unknown command: 'info ver'\n");
        assert_eq!(run("info fdsets"), "unknown command: 'info fdsets'\n");
        assert_eq!(run("info commands"), "unknown command: 'info commands'\n");
        assert_eq!(run("add_fd"), "unknown command: 'add_fd'\n");
        assert_eq!(run("  info   bogus x"), "unknown command: '  info   bogus'\n");
        assert_eq!(run(""), "");
        assert_eq!(run("   "), "");
    }

    #[test]
    fn argument_errors() {
        assert_eq!(run("getfd"), try_help("getfd: string expected", "getfd"));
        assert_eq!(run("closefd  "), try_help("closefd: string expected", "closefd"));
        assert_eq!(run("chardev-add"), try_help("chardev-add: string expected", "chardev-add"));
        assert_eq!(run("ringbuf_read"), try_help("ringbuf_read: string expected", "ringbuf_read"));
        assert_eq!(run("ringbuf_read r1"), try_help("unexpected end of expression", "ringbuf_read"));
        assert_eq!(run("ringbuf_read r1 abc"), try_help("invalid char 'a' in expression", "ringbuf_read"));
        assert_eq!(
            run("ringbuf_read r1 1 2"),
            try_help("ringbuf_read: extraneous characters at the end of line", "ringbuf_read")
        );
        assert_eq!(
            run("ringbuf_read r1 -1"),
            try_help("'ringbuf_read' has failed: integer is for 32-bit values", "ringbuf_read")
        );
        assert_eq!(
            run("ringbuf_read r1 0x100000000"),
            try_help("'ringbuf_read' has failed: integer is for 32-bit values", "ringbuf_read")
        );
        assert_eq!(run("ringbuf_write r1"), try_help("ringbuf_write: string expected", "ringbuf_write"));
        assert_eq!(run("ringbuf_write é"), try_help("ringbuf_write: string expected", "ringbuf_write"));
        assert_eq!(
            run("ringbuf_write r1 two words"),
            try_help("ringbuf_write: extraneous characters at the end of line", "ringbuf_write")
        );
        assert_eq!(run(r#"ringbuf_write r1 "open"#), try_help("ringbuf_write: string expected", "ringbuf_write"));
        assert_eq!(run("stop now"), try_help("stop|s: extraneous characters at the end of line", "stop"));
        assert_eq!(run("s now"), try_help("stop|s: extraneous characters at the end of line", "s"));
        assert_eq!(run("quit x"), try_help("quit|q: extraneous characters at the end of line", "quit"));
        assert_eq!(run("stop/x"), try_help("stop|s: extraneous characters at the end of line", "stop"));
        assert_eq!(run("info status x"), try_help("status: extraneous characters at the end of line", "info status"));
        assert_eq!(
            run("info status\ninfo name"),
            try_help("status: extraneous characters at the end of line", "info status")
        );
        assert_eq!(
            run("  info  status  x"),
            try_help("status: extraneous characters at the end of line", "  info  status")
        );
        assert_eq!(run("getfd a b"), try_help("getfd: extraneous characters at the end of line", "getfd"));
    }

    #[test]
    fn help_output() {
        assert_eq!(run("help stop"), "stop|s  -- pause the workload\n");
        assert_eq!(run("? s"), "stop|s  -- pause the workload\n");
        assert_eq!(run("help getfd"), "getfd name -- name the file descriptor that came with SCM_RIGHTS\n");
        assert_eq!(run("help info status"), "info status  -- print the run state (running|paused)\n");
        assert_eq!(run("help stop extra words"), "stop|s  -- pause the workload\n");
        assert_eq!(run("help nonexist"), "unknown command: 'nonexist'\n");
        assert_eq!(run("help info nonexist"), "unknown command: 'info nonexist'\n");
        assert_eq!(run(r#"help "unterminated"#), "");
        let all = run("help");
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), COMMANDS.len());
        assert_eq!(lines[0], "chardev-add args -- create a character device from -chardev style options");
        assert!(lines.contains(&"cont|c  -- resume the workload, starting it if it never ran"));
        assert!(lines.contains(&"quit|q  -- exit fdmon now, ending the workload"));
        assert_eq!(run("?"), all);
        let info = run("help info");
        assert_eq!(info.lines().count(), INFO.len());
        assert!(info.starts_with("info chardev  -- "));
        assert!(info.contains("info version  -- print the fdmon version\n"));
        assert_eq!(run("info"), info);
        assert_eq!(run("info   "), info);
    }

    #[test]
    fn info_commands() {
        let mut s = State::new();
        assert_eq!(run_as(&mut s, "info version"), format!("{}fdmon\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(run_as(&mut s, "  info   version  "), format!("{}fdmon\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(run_as(&mut s, "info status"), "VM status: running\n");
        assert_eq!(run_as(&mut s, "info name"), "");
        assert_eq!(run_as(&mut s, "info uuid"), "00000000-0000-0000-0000-000000000000\n");
        assert_eq!(run_as(&mut s, "info chardev"), "");
        assert_eq!(run_as(&mut s, "info workload"), "workload: none\n");
        s.name = Some("vm1".into());
        s.uuid = "12345678-1234-1234-1234-123456789abc".into();
        assert_eq!(run_as(&mut s, "info name"), "vm1\n");
        assert_eq!(run_as(&mut s, "info uuid"), "12345678-1234-1234-1234-123456789abc\n");
    }

    #[test]
    fn run_states() {
        let mut s = State::new();
        assert_eq!(run_as(&mut s, "stop"), "");
        assert_eq!(run_as(&mut s, "info status"), "VM status: paused\n");
        assert_eq!(run_as(&mut s, "c"), "");
        assert_eq!(run_as(&mut s, "info status"), "VM status: running\n");
        assert_eq!(run_as(&mut s, "s"), "");
        assert_eq!(run_as(&mut s, "system_reset"), "");
        assert_eq!(run_as(&mut s, "info status"), "VM status: paused (prelaunch)\n");
        assert_eq!(run_as(&mut s, "stop"), "");
        assert_eq!(run_as(&mut s, "info status"), "VM status: paused (prelaunch)\n");
        assert_eq!(run_as(&mut s, "cont"), "");
        assert_eq!(run_as(&mut s, "system_powerdown"), "");
        s.run_state = RunState::Shutdown;
        assert_eq!(run_as(&mut s, "info status"), "VM status: paused (shutdown)\n");
        assert_eq!(run_as(&mut s, "cont"), "Error: Resetting the Virtual Machine is required\n");
        assert_eq!(run_as(&mut s, "q"), "");
        assert!(s.exit.is_some());
    }

    #[test]
    fn fd_commands_without_a_monitor() {
        assert_eq!(run("getfd myfd"), "Error: No file descriptor supplied via SCM_RIGHTS\n");
        assert_eq!(run("closefd nosuch"), "Error: File descriptor named 'nosuch' not found\n");
        assert_eq!(run(r#"closefd "a b""#), "Error: File descriptor named 'a b' not found\n");
    }

    #[test]
    fn chardevs() {
        let mut s = State::new();
        assert_eq!(run_as(&mut s, "chardev-add ringbuf,id=r1,size=16"), "");
        assert_eq!(run_as(&mut s, "chardev-add null,id=n1"), "");
        // QEMU's hash-table order, not creation order.
        assert_eq!(run_as(&mut s, "info chardev"), "n1: filename=null\nr1: filename=ringbuf\n");
        assert_eq!(run_as(&mut s, "chardev-add null"), "Error: chardev: no id specified\n");
        assert_eq!(
            run_as(&mut s, "chardev-add ringbuf,id=r2,size=15"),
            "Error: size of ringbuf chardev must be power of two\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add null,id=r1"),
            "Error: attempt to add duplicate property 'r1' to object (type 'container')\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add socket,fd=x,server=on,wait=off,id=n1"),
            "Error: Chardev with id 'n1' already exists\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add socket,path=/nonexistent/h2.sock,server=on,wait=off,id=c4,bogus=1"),
            "Invalid parameter 'bogus'\nError: Parsing chardev args failed\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add socket,fd=3,server=on,wait=off,id=c2"),
            "Error: File descriptor named '3' has not been found\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add socket,fd=lf,server,nowait,id=c3"),
            "warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\n\
             warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead\n\
             Error: File descriptor named 'lf' has not been found\n"
        );
        assert_eq!(
            run_as(&mut s, "chardev-add null,id=1abc").lines().last(),
            Some("Error: Parsing chardev args failed")
        );
        assert!(run_as(&mut s, "chardev-add help").starts_with("Available chardev backend types: \n  socket\n"));
        assert_eq!(run_as(&mut s, "chardev-remove n1"), "");
        assert_eq!(run_as(&mut s, "chardev-remove nope"), "Error: Chardev 'nope' not found\n");
        assert_eq!(run_as(&mut s, "info chardev"), "r1: filename=ringbuf\n");
    }

    #[test]
    fn ringbufs() {
        let mut s = State::new();
        run_as(&mut s, "chardev-add ringbuf,id=r1,size=64");
        assert_eq!(run_as(&mut s, r#"ringbuf_write r1 "quoted str""#), "");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 100"), "quoted str\n");
        assert_eq!(run_as(&mut s, r"ringbuf_write r1 hello\x20world"), "");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 5"), "hello\n");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 2*(3+1)+1"), "\\\\x20world\n");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 0"), "Error: size must be greater than zero\n");
        assert_eq!(run_as(&mut s, "ringbuf_read nope 1"), "Error: Device 'nope' not found\n");
        assert_eq!(run_as(&mut s, "ringbuf_write nope x"), "Error: Device 'nope' not found\n");
        run_as(&mut s, "chardev-add null,id=n1");
        assert_eq!(run_as(&mut s, "ringbuf_read n1 1"), "Error: n1 is not a ringbuf device\n");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 10"), "\n");
        assert_eq!(run_as(&mut s, "ringbuf_write r1 \"a\\nb\\\\\""), "");
        assert_eq!(run_as(&mut s, "ringbuf_read r1 10"), "a\nb\\\\\n");
    }

    #[test]
    fn ringbuf_escaping() {
        let data = "a\x01\tb\nc\\d\x7fe\u{e9}".as_bytes();
        assert_eq!(escape_ringbuf(data), "a\\u0001\tb\nc\\\\d\\u007Fe\u{e9}".as_bytes());
        assert_eq!(escape_ringbuf(b"ab\0cd"), b"ab");
        assert_eq!(escape_ringbuf(b"\x1b\xff"), b"\\u001B\xff");
    }

    fn comp(state: &State, line: &str) -> (usize, Vec<String>) {
        let c = complete(state, line.as_bytes());
        let mut v: Vec<String> = c.items.into_iter().map(|i| String::from_utf8(i).unwrap()).collect();
        v.sort();
        (c.index, v)
    }

    #[test]
    fn completion() {
        let mut s = State::new();
        run_as(&mut s, "chardev-add ringbuf,id=r1");
        run_as(&mut s, "chardev-add null,id=n1");
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(comp(&s, "sto"), (3, v(&["stop"])));
        assert_eq!(comp(&s, "s"), (1, v(&["s", "stop", "system_powerdown", "system_reset"])));
        assert_eq!(comp(&s, "").1.len(), COMMANDS.iter().map(|c| c.name.split('|').count()).sum::<usize>());
        assert_eq!(comp(&s, "info st"), (2, v(&["status"])));
        assert_eq!(comp(&s, "info ").1.len(), INFO.len());
        assert_eq!(comp(&s, "help inf"), (3, v(&["info"])));
        assert_eq!(comp(&s, "help info v"), (1, v(&["version"])));
        assert_eq!(comp(&s, "chardev-remove "), (0, v(&["n1", "r1"])));
        run_as(&mut s, "monitor-add r1,id=mr");
        assert_eq!(comp(&s, "monitor-remove "), (0, v(&["mr"])));
        assert_eq!(comp(&s, "monitor-r"), (9, v(&["monitor-remove"])));
        assert_eq!(comp(&s, "ringbuf_read "), (0, v(&["r1"])));
        assert_eq!(comp(&s, "ringbuf_read r1 "), (0, v(&[])));
        assert_eq!(comp(&s, "chardev-add ri"), (2, v(&["ringbuf"])));
        assert_eq!(comp(&s, "bogus x"), (0, v(&[])));
        assert_eq!(comp(&s, "stop "), (0, v(&[])));
        assert_eq!(comp(&s, "\"open"), (0, v(&[])));
    }
}
