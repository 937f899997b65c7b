//! Everything fdmon reads from its command line: the QemuOpts `key=value` syntax ([`kv`]),
//! chardev descriptions built from it ([`chardev`], shared with HMP `chardev-add`) and the
//! whole argv ([`cli`]). Pure parsing with QEMU's exact messages and order of checks; nothing
//! here touches the OS or exits the process.

#![forbid(unsafe_code)]

pub mod chardev;
pub mod cli;
pub mod kv;

pub use cli::{parse_args, prefix, Action, Config, Deferred, MonitorMode, Readiness, SerialSpec, ADD_FD_NO_SET};
pub use kv::parse_kv;
