//! The documentation a user reads: the man page renders without a warning and names every
//! option, backend, command and event; `make install` / `make uninstall` put it in place.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn man_page() -> String {
    std::fs::read_to_string(root().join("doc/fdmon.1")).unwrap()
}

/// Renders the page with `man --warnings`; any warning fails. Returns the roff source with its
/// escapes for `-` and `\` undone, which is what the completeness checks read (the rendered
/// text may hyphenate words at line ends).
fn checked_source() -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l", "doc/fdmon.1"])
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .current_dir(root())
        .output()
        .expect("man (Debian package man-db) must be installed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "man --warnings complains:\n{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"));
    man_page().replace("\\-", "-").replace("\\e", "\\")
}

#[test]
fn man_page_renders_without_warnings_and_is_complete() {
    let page = checked_source();
    // Every option of the table `-h` prints.
    let (_, help, _) = run(&["-h"]);
    let mut options = 0;
    for line in help.lines().filter(|l| l.starts_with('-')) {
        for word in line.split_whitespace().filter(|w| w.starts_with('-')) {
            let name = word.split(['[', ',']).next().unwrap();
            if name.len() > 1 && name != "-or" {
                assert!(page.contains(name), "the man page does not mention {name}");
                options += 1;
            }
        }
    }
    assert!(options > 15, "{help}");
    for backend in ["socket", "ringbuf", "memory", "null", "file", "pipe", "stdio"] {
        assert!(page.contains(backend), "{backend}");
    }
    for key in [
        "fd=",
        "path=",
        "abstract=",
        "tight=",
        "host=",
        "port=",
        "to=",
        "ipv4=",
        "ipv6=",
        "nodelay=",
        "server=",
        "wait=",
        "reconnect=",
        "size=",
        "append=",
        "signal=",
    ] {
        assert!(page.contains(key), "the man page does not document {key}");
    }
    for section in ["ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "CLIENT MODE", "SIGNALS", "SECURITY"] {
        assert!(page.contains(section), "{section}");
    }
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        assert!(page.contains(var), "{var}");
    }
    // Every QMP command the monitor lists, and every event fdmon sends.
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let commands = c.cmd(r#"{"execute":"query-commands"}"#);
    let mut n = 0;
    for part in commands.split("\"name\": \"").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(page.contains(name), "the man page does not list the QMP command {name}");
        n += 1;
    }
    assert!(n > 20, "{commands}");
    for event in ["SHUTDOWN", "POWERDOWN", "RESET", "STOP", "RESUME"] {
        assert!(page.contains(event), "{event}");
    }
    // Every HMP command `help` lists.
    let help = c.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"help"}}"#);
    for line in help.split("\\r\\n").filter(|l| !l.is_empty()) {
        let first = line.trim_start_matches("{\"return\": \"").split([' ', '|']).next().unwrap();
        if !first.is_empty() && first != "\"}" {
            assert!(page.contains(first), "the man page does not list the HMP command {first}");
        }
    }
}

#[test]
fn man_page_says_what_s_does() {
    let page = man_page();
    assert!(page.contains("Do not start the workload"));
}

#[test]
fn make_install_and_uninstall() {
    let dest = TempDir::new("install");
    let destdir = format!("DESTDIR={}", dest.0.display());
    let bin = format!("FDMON_BIN={}", bin());
    let make = |target: &str| {
        let out = Command::new("make")
            .args(["-s", target, "PREFIX=/usr", &destdir, &bin])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "make {target}: {}", String::from_utf8_lossy(&out.stderr));
    };
    make("install");
    let installed = dest.path("usr/bin/fdmon");
    let page = dest.path("usr/share/man/man1/fdmon.1");
    assert_eq!(std::fs::read(&page).unwrap(), man_page().into_bytes());
    let out = Command::new(&installed).arg("-version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fdmon version "));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o644);
    make("uninstall");
    assert!(!installed.exists() && !page.exists());
}
