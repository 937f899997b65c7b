//! Everything fdmon reads from its command line: the QemuOpts `key=value` syntax ([`kv`]),
//! chardev descriptions built from it ([`chardev`], shared with HMP `chardev-add`) and the
//! whole argv ([`cli`]). Pure parsing with QEMU's exact messages and order of checks; nothing
//! here touches the OS or exits the process.

#![forbid(unsafe_code)]

pub mod chardev;
pub mod cli;
pub mod kv;

pub use chardev::{
    backend_help, chardev_from_kv, parse_chardev_add, parse_fd_number, parse_fd_text, wants_backend_help,
    ChardevAddError, ChardevAddParse, ChardevAddRequest, BACKEND_NAMES, CHARDEV_OPTS,
};
pub use cli::{
    help_text, parse_args, prefix, version_text, Action, AddFdSpec, CliChardev, CliError, Config, Deferred,
    MonitorMode, MonitorSpec, Readiness, SerialSpec, ADD_FD_NO_SET, OPTIONS,
};
pub use kv::{parse_kv, KvList, OptError};
