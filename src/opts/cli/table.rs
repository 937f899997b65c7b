//! The option table: one row per option (names, argument, `-h` text), which drives both the
//! lexer and `-h`, and the key lists of the options that take `key=value` arguments.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OptId {
    Help,
    Version,
    Name,
    Uuid,
    Chardev,
    Mon,
    Qmp,
    QmpPretty,
    Monitor,
    Serial,
    Stopped,
    NoShutdown,
    Pidfile,
    Daemonize,
    AddFd,
    PassFd,
    ShutdownTimeout,
    Ready,
    Client,
    Workload,
}

/// One row of the option table. Parsing and `-h` both come from [`OPTIONS`].
#[derive(Debug)]
pub struct OptDef {
    /// Names without the leading dash; the first is the main one.
    pub names: &'static [&'static str],
    /// The argument placeholder; `Some` exactly when the option takes an argument.
    pub arg: Option<&'static str>,
    /// Usage lines for `-h` when `-NAME ARG` is not enough (continuation lines start with
    /// blanks).
    pub synopsis: &'static [&'static str],
    /// Description lines for `-h`.
    pub help: &'static [&'static str],
    pub(super) id: OptId,
}

impl OptDef {
    /// Whether the next argv element is this option's argument.
    pub fn takes_arg(&self) -> bool {
        self.arg.is_some() && self.id != OptId::Workload
    }

    pub(super) fn usage(&self) -> String {
        let mut s = self.names.iter().map(|n| format!("-{n}")).collect::<Vec<_>>().join(" or ");
        if let Some(arg) = self.arg {
            s.push(' ');
            s.push_str(arg);
        }
        s
    }

    pub(super) fn help_lines(&self) -> String {
        const INDENT: &str = "                ";
        let lines: Vec<String> = if self.synopsis.is_empty() {
            vec![self.usage()]
        } else {
            self.synopsis.iter().map(|s| s.to_string()).collect()
        };
        let mut help = self.help.iter();
        let mut out = String::new();
        if lines.len() == 1 && lines[0].len() < INDENT.len() {
            match help.next() {
                Some(first) => out.push_str(&format!("{:<16}{}\n", lines[0], first)),
                None => out.push_str(&format!("{}\n", lines[0])),
            }
        } else {
            for l in &lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        for h in help {
            out.push_str(INDENT);
            out.push_str(h);
            out.push('\n');
        }
        out
    }
}

/// Every option fdmon knows, in `-h` order.
pub static OPTIONS: &[OptDef] = &[
    OptDef { names: &["h", "help"], arg: None, synopsis: &[], help: &["display this help and exit"], id: OptId::Help },
    OptDef {
        names: &["version"],
        arg: None,
        synopsis: &[],
        help: &["display version information and exit"],
        id: OptId::Version,
    },
    OptDef {
        names: &["name"],
        arg: Some("string1[,process=string2][,debug-threads=on|off]"),
        synopsis: &[],
        help: &["set the name query-name reports; 'process' also renames this", "process as ps and top show it"],
        id: OptId::Name,
    },
    OptDef {
        names: &["uuid"],
        arg: Some("%08x-%04x-%04x-%04x-%012x"),
        synopsis: &[],
        help: &["set the UUID query-uuid reports"],
        id: OptId::Uuid,
    },
    OptDef {
        names: &["chardev"],
        arg: Some("backend,id=id[,options]"),
        synopsis: &[
            "-chardev help",
            "-chardev socket,id=id,fd=N[,server=on|off][,wait=on|off][,nodelay=on|off]",
            "-chardev socket,id=id,path=path[,abstract=on|off][,tight=on|off]",
            "         [,server=on|off][,wait=on|off][,reconnect=seconds]",
            "-chardev socket,id=id[,host=host],port=port[,to=to][,ipv4=on|off][,ipv6=on|off]",
            "         [,nodelay=on|off][,server=on|off][,wait=on|off][,reconnect=seconds]",
            "-chardev ringbuf|memory,id=id[,size=size]",
            "-chardev null,id=id",
            "-chardev file,id=id,path=path[,append=on|off]",
            "-chardev pipe,id=id,path=path",
            "-chardev stdio,id=id[,signal=on|off]",
        ],
        help: &[
            "create character device 'id'; fd=N adopts the inherited socket N",
            "(server=on: a listening socket, server=off: a connected one)",
        ],
        id: OptId::Chardev,
    },
    OptDef {
        names: &["mon"],
        arg: Some("[chardev=]name[,mode=readline|control][,pretty[=on|off]]"),
        synopsis: &[],
        help: &["monitor on chardev 'name': HMP (readline, the default) or QMP;", "id=id names it for monitor-remove"],
        id: OptId::Mon,
    },
    OptDef {
        names: &["qmp"],
        arg: Some("dev"),
        synopsis: &[],
        help: &["like -monitor, but speaking QMP ('control' mode)"],
        id: OptId::Qmp,
    },
    OptDef {
        names: &["qmp-pretty"],
        arg: Some("dev"),
        synopsis: &[],
        help: &["like -qmp, with pretty-printed JSON"],
        id: OptId::QmpPretty,
    },
    OptDef {
        names: &["monitor"],
        arg: Some("dev"),
        synopsis: &[],
        help: &[
            "run HMP on legacy device 'dev': unix:path[,opts],",
            "tcp:host:port[,opts], stdio, chardev:id, or none",
        ],
        id: OptId::Monitor,
    },
    OptDef {
        names: &["serial"],
        arg: Some("dev"),
        synopsis: &[],
        help: &[
            "the workload's console: its stdin, stdout and stderr are a new",
            "pseudo-terminal (80x24, see console-resize), copied to 'dev':",
            "chardev:id, a legacy device as for -monitor, or none; at most one",
        ],
        id: OptId::Serial,
    },
    OptDef {
        names: &["S"],
        arg: None,
        synopsis: &[],
        help: &["do not start the workload (state 'prelaunch') until 'cont'"],
        id: OptId::Stopped,
    },
    OptDef {
        names: &["no-shutdown"],
        arg: None,
        synopsis: &[],
        help: &["stay in the shutdown state instead of exiting"],
        id: OptId::NoShutdown,
    },
    OptDef {
        names: &["pidfile"],
        arg: Some("file"),
        synopsis: &[],
        help: &["write the process id to 'file' and keep it locked"],
        id: OptId::Pidfile,
    },
    OptDef {
        names: &["daemonize"],
        arg: None,
        synopsis: &[],
        help: &["go to the background once start-up is complete"],
        id: OptId::Daemonize,
    },
    OptDef {
        names: &["add-fd"],
        arg: Some("fd=fd,set=set[,opaque=opaque]"),
        synopsis: &[],
        help: &["put a copy of inherited fd 'fd' into fd set 'set'"],
        id: OptId::AddFd,
    },
    OptDef {
        names: &["pass-fd"],
        arg: Some("N"),
        synopsis: &[],
        help: &["keep inherited fd N open for the workload (repeatable)"],
        id: OptId::PassFd,
    },
    OptDef {
        names: &["shutdown-timeout"],
        arg: Some("secs"),
        synopsis: &[],
        help: &[
            "seconds the workload gets between SIGTERM and SIGKILL",
            "when fdmon quits (default 5; fractions allowed)",
        ],
        id: OptId::ShutdownTimeout,
    },
    OptDef {
        names: &["client"],
        arg: Some("ADDR"),
        synopsis: &[
            "-client ADDR [-timeout SECS] [-hmp LINE] [-wait-event NAME] [-wait-ready]",
            "         [COMMAND [KEY=VALUE...] | REQUEST-JSON | -]",
        ],
        help: &[
            "be a QMP client instead (first argument only): connect once",
            "to ADDR (unix:PATH, tcp:HOST:PORT, fd:N or a socket path), run",
            "the command, print its result as JSON and exit: 0 ok, 1 error",
            "reply, 2 no monitor, 3 timeout (-timeout, default 30 s)",
        ],
        id: OptId::Client,
    },
    OptDef {
        names: &["ready"],
        arg: Some("notify|fd=N"),
        synopsis: &[],
        help: &[
            "when the workload is ready (WORKLOAD_READY; -daemonize waits):",
            "'notify': it sends READY=1 to $NOTIFY_SOCKET (sd_notify);",
            "'fd=N': it writes a line to its fd N; default: once exec'd",
        ],
        id: OptId::Ready,
    },
    OptDef {
        names: &["-"],
        arg: Some("PROGRAM [ARGS...]"),
        synopsis: &[],
        help: &["run PROGRAM as the supervised workload; everything after '--'", "is passed to it unchanged"],
        id: OptId::Workload,
    },
];

pub const MON_OPTS: OptsList = OptsList {
    name: "mon",
    implied_key: Some("chardev"),
    merge_lists: false,
    desc: &[
        OptDesc::new("mode", OptType::Str),
        OptDesc::new("chardev", OptType::Str),
        OptDesc::new("pretty", OptType::Bool),
    ],
};

pub(super) const NAME_OPTS: OptsList = OptsList {
    name: "name",
    implied_key: Some("guest"),
    merge_lists: true,
    desc: &[
        OptDesc::new("guest", OptType::Str).with_help("the name query-name reports"),
        OptDesc::new("process", OptType::Str).with_help("the process name shown by ps and top"),
        OptDesc::new("debug-threads", OptType::Bool).with_help("accepted for compatibility; no effect"),
    ],
};

pub(super) const ADD_FD_OPTS: OptsList = OptsList {
    name: "add-fd",
    implied_key: None,
    merge_lists: false,
    desc: &[
        OptDesc::new("fd", OptType::Number).with_help("inherited fd to copy into the set (the original is closed)"),
        OptDesc::new("set", OptType::Number).with_help("id of the fd set"),
        OptDesc::new("opaque", OptType::Str).with_help("free-form text shown by query-fdsets"),
    ],
};

/// `fdmon version X` and a copyright line (what `-version` prints).
pub fn version_text() -> String {
    format!(
        "{PROGRAM} version {}\nCopyright (c) the fdmon developers; license {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_LICENSE"),
    )
}

/// What `-h` prints: the version lines, the usage line, then every option of [`OPTIONS`].
pub fn help_text() -> String {
    let mut out = version_text();
    out.push_str(&format!("usage: {PROGRAM} [options] [-- PROGRAM [ARGS...]]\n\n"));
    for def in OPTIONS {
        out.push_str(&def.help_lines());
    }
    out
}

pub(super) fn lookup(arg: &str) -> Option<&'static OptDef> {
    let name = arg.strip_prefix('-')?;
    let name = name.strip_prefix('-').unwrap_or(name);
    OPTIONS.iter().find(|d| d.id != OptId::Workload && d.names.contains(&name))
}
