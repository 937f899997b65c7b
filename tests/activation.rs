//! Socket activation by name (systemd's LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES): set by hand,
//! and through the real `systemd-socket-activate`.
mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use common::*;

/// Runs fdmon through `sh -c` so that LISTEN_PID can be the pid fdmon will have ($$ survives
/// exec); `fds` land at 3, 4, ...
fn activated(fdmon_args: &[&str], fds: Vec<OwnedFd>, env: &[(&str, &str)]) -> Fdmon {
    let mut args = vec!["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", bin()];
    args.extend_from_slice(fdmon_args);
    spawn_env("sh", &args, fds, env)
}

#[test]
fn names_pick_the_passed_fds() {
    let dir = TempDir::new("activation");
    let (l1, p1) = listener(&dir, "qmp.sock");
    let (l2, p2) = listener(&dir, "hmp.sock");
    let (l3, p3) = listener(&dir, "spare.sock");
    let args = [
        "-chardev",
        "socket,fd=hmp,server=on,wait=off,id=h",
        "-mon",
        "chardev=h,mode=readline",
        "-chardev",
        "socket,fd=qmp,server=on,wait=off,id=mon",
        "-mon",
        "chardev=mon,mode=control",
        "--",
        "sleep",
        "60",
    ];
    let env = [("LISTEN_FDS", "3"), ("LISTEN_FDNAMES", "qmp:hmp:spare"), ("FDMON_TEST_KEPT", "a=b c")];
    let _f = activated(&args, vec![OwnedFd::from(l1), OwnedFd::from(l2), OwnedFd::from(l3)], &env);
    let mut q = Client::connect(&p1);
    q.negotiate();
    let pid = workload_pid(&mut q).expect("no workload pid");
    let mut h = Client::connect(&p2);
    assert!(h.until("(qemu) ").contains("monitor - type 'help'"), "no HMP banner on the hmp fd");
    // The spare listener no chardev named was closed: nobody listens on it any more. (A
    // sibling test's child may hold a copy between its fork and its exec for a moment; a
    // listener fdmon kept open would never go away and fail the wait.)
    wait_until("the spare listener to be closed", || {
        std::os::unix::net::UnixStream::connect(&p3).is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    // The workload sees neither the variables nor any of the fds (once it has exec'd: before,
    // the child still has fdmon's environment and close-on-exec fds).
    wait_until("the workload's exec", || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
    });
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("LISTEN_"), "the workload got LISTEN_* variables");
    // The rest of the environment is passed on as it was (fdmon edits a copy for the child).
    let entries: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    assert!(entries.contains(&&b"FDMON_TEST_KEPT=a=b c"[..]), "the workload lost a variable");
    assert!(entries.iter().any(|e| e.starts_with(b"PATH=")), "the workload lost PATH");
    // `sleep` itself opens files while it starts (glibc's locale archive), so its fd table is
    // read until it settles; an fd fdmon leaked would stay and fail the wait.
    let fds = || {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        fds
    };
    wait_until("the workload holding only fds 0, 1 and 2", || fds() == ["0", "1", "2"]);
}

#[test]
fn numbers_still_work_beside_names() {
    let dir = TempDir::new("activation-num");
    let (l1, p1) = listener(&dir, "a.sock");
    let (l2, p2) = listener(&dir, "b.sock");
    let args = [
        "-chardev",
        "socket,fd=4,server=on,wait=off,id=m1",
        "-mon",
        "chardev=m1,mode=control",
        "-chardev",
        "socket,fd=first,server=on,wait=off,id=m2",
        "-mon",
        "chardev=m2,mode=control",
    ];
    let _f = activated(
        &args,
        vec![OwnedFd::from(l1), OwnedFd::from(l2)],
        &[("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "first:second")],
    );
    Client::connect(&p1).negotiate();
    Client::connect(&p2).negotiate();
}

#[test]
fn a_name_not_passed_is_an_error_naming_what_was() {
    let dir = TempDir::new("activation-missing");
    let (l, _) = listener(&dir, "a.sock");
    let args = ["-chardev", "socket,fd=qmp,server=on,wait=off,id=mon", "-mon", "chardev=mon,mode=control"];
    let mut f = activated(&args, vec![OwnedFd::from(l)], &[("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "control")]);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "fdmon: -chardev socket,fd=qmp,server=on,wait=off,id=mon: File descriptor named 'qmp' was not passed by \
         socket activation (passed: control (fd 3))\n"
    );
    // The same name twice, passed once.
    let (l, _) = listener(&dir, "b.sock");
    let args = ["-chardev", "socket,fd=x,server=on,wait=off,id=a", "-chardev", "socket,fd=x,server=on,wait=off,id=b"];
    let mut f = activated(&args, vec![OwnedFd::from(l)], &[("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "x")]);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(1));
    assert!(
        err.ends_with("File descriptor named 'x' is already used by another chardev (passed: x (fd 3))\n"),
        "{err}"
    );
    // A bad LISTEN_FDS for this process.
    let mut f = activated(&["-chardev", "null,id=n"], vec![], &[("LISTEN_FDS", "many")]);
    assert_eq!(f.wait_output(), (Some(1), "fdmon: LISTEN_FDS=many: not a number of file descriptors\n".into()));
}

#[test]
fn variables_of_another_process_are_ignored() {
    let dir = TempDir::new("activation-other");
    let (l, _) = listener(&dir, "a.sock");
    let args = ["-chardev", "socket,fd=qmp,server=on,wait=off,id=mon", "-mon", "chardev=mon,mode=control"];
    // LISTEN_PID=1 is not fdmon: the name is QEMU's unparsable fd number.
    let env = [("LISTEN_PID", "1"), ("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "qmp")];
    let mut f = spawn_env(bin(), &args, vec![OwnedFd::from(l)], &env);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: -chardev socket,fd=qmp,server=on,wait=off,id=mon: Unable to parse FD number qmp\n");
}

/// `KEY=` from a unit file of examples/systemd.
fn unit_value(file: &str, key: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{key}=");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("{file} has no {key}=")).to_string()
}

#[test]
fn the_example_units_under_systemd_socket_activate() {
    let dir = TempDir::new("activation-sd");
    let path = dir.str("qmp.sock");
    // The example units' fd name and command line, with this build's fdmon and a stand-in workload.
    let name = unit_value("fdmon.socket", "FileDescriptorName");
    let exec = unit_value("fdmon.service", "ExecStart");
    let mut argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/fdmon");
    argv[0] = bin();
    let dashes = argv.iter().position(|a| *a == "--").expect("a workload after --");
    argv.truncate(dashes);
    argv.extend(["--", "sleep", "60"]);
    let mut sa = Command::new("systemd-socket-activate")
        .args(["-l", &path, &format!("--fdname={name}")])
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd) must be installed");
    let mut err = BufReader::new(sa.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with(&format!("Listening on {path} as 3.")), "{line}");
    let mut guard = Fdmon { child: sa };
    // One connect: the activator execs fdmon, which serves the queued connection.
    let mut c = Client::connect(std::path::Path::new(&path));
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-workload"}"#).contains("\"program\": \"sleep\""));
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(guard.wait().code(), Some(0));
}
