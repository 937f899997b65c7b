//! fdmon: a QEMU-compatible QMP/HMP monitor served on pre-opened sockets, with an optional
//! supervised workload. All unsafe code lives in `sys`.
//!
//! Every module is private to the crate (so the compiler reports what nothing uses); the
//! public modules below are a narrow facade over them, holding only what the binary
//! (`app::main`), the integration tests and the fuzz targets (`fuzz/fuzz_targets`) use. Inside
//! the crate each facade re-exports its whole module, so `crate::sys::fd::...` and the like
//! keep working.
#![deny(unsafe_op_in_unsafe_fn)]

mod activation;
#[path = "app.rs"]
mod app_impl;
mod base64;
#[path = "chardev/mod.rs"]
mod chardev_impl;
mod client;
mod console;
mod error;
mod event;
mod event_loop;
mod fdset;
#[path = "json/mod.rs"]
mod json_impl;
#[path = "monitor/mod.rs"]
mod monitor_impl;
mod notify;
#[path = "opts/mod.rs"]
mod opts_impl;
#[path = "state.rs"]
mod state_impl;
#[path = "sys/mod.rs"]
mod sys_impl;
mod workload;

/// The binary's entry point.
pub mod app {
    pub use crate::app_impl::main;
    #[allow(unused_imports)]
    pub(crate) use crate::app_impl::*;
}

/// Chardevs, for the fuzz harness's connected monitor.
pub mod chardev {
    #[allow(unused_imports)]
    pub(crate) use crate::chardev_impl::*;
    pub use crate::chardev_impl::{Backend, Chardev, Conn, Connected, OUT_HIGH};
}

/// The JSON value, parser and writers (tests and fuzz targets).
pub mod json {
    #[allow(unused_imports)]
    pub(crate) use crate::json_impl::*;
    pub use crate::json_impl::{to_string, to_string_pretty, Object, Streamer, Value};
}

/// Monitors: what the fuzz targets drive and the command table the tests compare with QEMU.
pub mod monitor {
    #[allow(unused_imports)]
    pub(crate) use crate::monitor_impl::*;
    pub use crate::monitor_impl::{on_connect, process_input, Mode, Monitor};

    pub mod commands {
        #[allow(unused_imports)]
        pub(crate) use crate::monitor_impl::commands::*;
        pub use crate::monitor_impl::commands::{Caller, COMMANDS, EXTENSIONS};
    }

    pub mod hmp {
        pub use crate::monitor_impl::hmp::human_monitor_command;
        #[allow(unused_imports)]
        pub(crate) use crate::monitor_impl::hmp::*;
    }
}

/// Option parsing (the fuzz targets).
pub mod opts {
    #[allow(unused_imports)]
    pub(crate) use crate::opts_impl::*;

    pub mod chardev {
        #[allow(unused_imports)]
        pub(crate) use crate::opts_impl::chardev::*;
        pub use crate::opts_impl::chardev::{chardev_from_kv, parse_chardev_add, CHARDEV_OPTS};
    }

    pub mod kv {
        pub use crate::opts_impl::kv::parse_kv_quiet;
        #[allow(unused_imports)]
        pub(crate) use crate::opts_impl::kv::*;
    }
}

/// The state commands run on (the fuzz targets).
pub mod state {
    pub use crate::state_impl::State;
    #[allow(unused_imports)]
    pub(crate) use crate::state_impl::*;
}

/// The OS wrappers the tests use to set up fds and sockets.
pub mod sys {
    #[allow(unused_imports)]
    pub(crate) use crate::sys_impl::*;

    pub mod fd {
        #[allow(unused_imports)]
        pub(crate) use crate::sys_impl::fd::*;
        pub use crate::sys_impl::fd::{pipe, set_nonblocking};
    }

    pub mod socket {
        #[allow(unused_imports)]
        pub(crate) use crate::sys_impl::socket::*;
        pub use crate::sys_impl::socket::{send_with_fds, unix_connect, unix_listen, UnixAddr};
    }
}

/// The layering DESIGN.md describes, checked on the sources: a `use` that points upwards fails.
#[cfg(test)]
mod layering {
    fn source(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn files(dir: &str) -> Vec<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
        let mut v: Vec<String> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".rs"))
            .collect();
        v.sort();
        v
    }

    fn assert_no(path: &str, forbidden: &[&str]) {
        let text = source(path);
        for f in forbidden {
            assert!(!text.contains(f), "{path} uses {f}");
        }
    }

    #[test]
    fn nothing_points_upwards() {
        // Domain code builds no JSON and never calls the monitor layer.
        for f in ["state.rs", "fdset.rs", "workload.rs", "event.rs"] {
            assert_no(f, &["crate::json", "json::"]);
        }
        let state = source("state.rs");
        for line in state.lines().filter(|l| l.contains("crate::monitor")) {
            assert!(line.contains("crate::monitor::session::"), "state.rs: {line}");
        }
        assert_no("event.rs", &["crate::"]);
        assert_no("monitor/session.rs", &["crate::state", "&mut State", "&State"]);
        // The chardev layer knows neither options nor monitors.
        for f in files("chardev") {
            assert_no(&f, &["crate::opts", "crate::monitor", "named_fds"]);
        }
        assert_no("chardev/spec.rs", &["crate::", "crate::sys"]);
        assert_no("chardev/validate.rs", &["crate::sys", "crate::state"]);
    }
}
