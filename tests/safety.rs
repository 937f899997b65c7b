//! Safe defaults and hostile clients (issue 12, issue 8's smaller mismatches): private socket
//! files, no accidental wildcard listeners, exit clean-up that only removes fdmon's own socket,
//! inherited fds adopted before fdmon opens its own, chardev slots that do not grow, fd-passing
//! limits, and run-time `chardev-add` refusals with QEMU's texts.

mod common;

use common::*;

/// A field of /proc/PID/status in kB.
fn status_kb(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `n` chardev-add/chardev-remove cycles, pipelined in batches (replies are checked).
fn add_remove_cycles(c: &mut Client, n: usize, kind: &str) {
    let backend = match kind {
        "ringbuf" => r#"{"type":"ringbuf","data":{"size":16}}"#,
        _ => r#"{"type":"null","data":{}}"#,
    };
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(100);
        let mut req = String::new();
        for k in i..i + batch {
            req.push_str(&format!(r#"{{"execute":"chardev-add","arguments":{{"id":"c{k}","backend":{backend}}}}}"#));
            req.push_str(&format!(r#"{{"execute":"chardev-remove","arguments":{{"id":"c{k}"}}}}"#));
        }
        c.send(&req);
        for _ in 0..2 * batch {
            assert_eq!(c.reply(), r#"{"return": {}}"#);
        }
        i += batch;
    }
}

#[test]
fn chardev_add_remove_cycles_do_not_grow_memory() {
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    // Warm-up: allocator pools, buffers and the reply path reach their steady size.
    add_remove_cycles(&mut c, 500, "null");
    add_remove_cycles(&mut c, 500, "ringbuf");
    let before = status_kb(f.pid(), "RssAnon");
    let fds_before = f.fd_count();
    add_remove_cycles(&mut c, 1500, "null");
    add_remove_cycles(&mut c, 1500, "ringbuf");
    let after = status_kb(f.pid(), "RssAnon");
    // Before the fix every cycle left a ~270-byte slot behind: 3,000 cycles grew ~800 kB.
    assert!(after <= before + 128, "RssAnon grew from {before} kB to {after} kB over 3,000 cycles");
    assert_eq!(f.fd_count(), fds_before);
    // The table still works: a new chardev is listed with the monitor's, nothing else.
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"last","backend":{"type":"null","data":{}}}}"#),
        r#"{"return": {}}"#
    );
    let list = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert_eq!(list.matches("\"label\"").count(), 2, "{list}");
    assert!(list.contains(r#""label": "last""#) && list.contains(r#""label": "mon""#), "{list}");
    assert!(c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c5"}}"#).contains("Chardev 'c5' not found"));
}

/// `quit`: the SHUTDOWN event may come first.
fn quit(c: &mut Client) {
    c.send(r#"{"execute":"quit"}"#);
    assert_eq!(c.reply(), r#"{"return": {}}"#);
}

/// fdmon started by `sh` under `umask 000`.
fn spawn_with_umask_000(args: &[&str]) -> Fdmon {
    let mut v = vec!["-c", "umask 000; exec \"$0\" \"$@\"", bin()];
    v.extend_from_slice(args);
    spawn_program("sh", &v, Vec::new())
}

#[test]
fn path_socket_is_private_whatever_the_umask() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = TempDir::new("umask");
    let p = dir.str("m.sock");
    let spec = format!("socket,path={p},server=on,wait=off,id=m");
    let mut f = spawn_with_umask_000(&["-chardev", &spec, "-mon", "chardev=m,mode=control"]);
    let mut c = Client::connect_retry(dir.path("m.sock").as_path());
    let m = std::fs::symlink_metadata(&p).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o777, 0o600, "socket mode {:o}", m.permissions().mode());
    c.negotiate();
    // A run-time chardev-add gets the same mode.
    let q = dir.str("q.sock");
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"q","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{q}"}}}},"server":true,"wait":false}}}}}}}}"#
    );
    assert_eq!(c.cmd(&add), r#"{"return": {}}"#);
    assert_eq!(std::fs::symlink_metadata(&q).unwrap().permissions().mode() & 0o777, 0o600);
    // Files fdmon creates otherwise keep the caller's umask (file backend: 0666 & ~umask).
    let out = dir.str("out.txt");
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"o","backend":{{"type":"file","data":{{"out":"{out}"}}}}}}}}"#
    );
    assert_eq!(c.cmd(&add), r#"{"return": {}}"#);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o666);
    quit(&mut c);
    assert!(f.wait().success());
}

#[test]
fn exit_removes_only_the_socket_fdmon_created() {
    let dir = TempDir::new("race");
    let p = dir.str("race.sock");
    let spec = format!("socket,path={p},server=on,wait=off,id=m");
    let args = ["-chardev", spec.as_str(), "-mon", "chardev=m,mode=control"];
    let mut first = spawn(&args);
    drop(Client::connect_retry(dir.path("race.sock").as_path()));
    std::fs::remove_file(&p).unwrap();
    let mut second = spawn(&args);
    let mut c = Client::connect_retry(dir.path("race.sock").as_path());
    c.negotiate();
    first.signal(libc::SIGTERM);
    first.wait();
    // The second fdmon's socket is still there and still answers.
    assert!(std::fs::symlink_metadata(&p).is_ok(), "the first fdmon removed the second one's socket");
    assert_eq!(
        c.cmd(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#
    );
    quit(&mut c);
    assert!(second.wait().success());
    // ...and the second removes its own.
    assert!(std::fs::symlink_metadata(&p).is_err());
}

#[test]
fn fd_numbers_not_inherited_never_name_fdmons_own_fds() {
    // Whatever number fdmon's own signal pipe or a path= listener gets, `fd=N` that was not
    // inherited is QEMU 7.2's "not a socket" (QEMU says that for a closed number too).
    let dir = TempDir::new("adopt");
    let p = dir.str("own.sock");
    for n in 3..=8 {
        let own = format!("socket,path={p},server=on,wait=off,id=a");
        let named = format!("socket,fd={n},server=on,wait=off,id=b");
        let (code, _, err) = run(&["-chardev", &own, "-chardev", &named, "-mon", "chardev=b,mode=control"]);
        assert_eq!(code, Some(1), "fd={n} was accepted: fdmon adopted one of its own fds");
        assert_eq!(err, format!("fdmon: -chardev {named}: File descriptor '{n}' is not a socket\n"));
        assert!(std::fs::symlink_metadata(&p).is_err(), "start-up error left {p} behind");
    }
    // -pass-fd: the workload must not be handed fdmon's signal pipe.
    for n in 3..=6 {
        let ns = n.to_string();
        let (code, _, err) = run(&["-pass-fd", &ns, "--", "true"]);
        assert_eq!(code, Some(1), "-pass-fd {n} was accepted");
        assert_eq!(err, format!("fdmon: -pass-fd {n}: File descriptor {n} is not open\n"));
    }
}

fn add_inet(c: &mut Client, id: &str, host: &str, port: &str) -> String {
    c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"socket","data":{{"addr":{{"type":"inet","data":{{"host":"{host}","port":"{port}"}}}},"server":true,"wait":false}}}}}}}}"#
    ))
}

#[test]
fn port_without_host_is_refused() {
    let text = "'port' requires 'host': use host=127.0.0.1 (or host=0.0.0.0 for every interface)";
    for spec in ["socket,id=m,port=0,server=on,wait=off", "socket,id=m,port=0"] {
        let (code, _, err) = run(&["-chardev", spec, "-mon", "chardev=m,mode=control"]);
        assert_eq!((code, err), (Some(1), format!("fdmon: -chardev {spec}: {text}\n")));
    }
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let r = c.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"chardev-add socket,id=t,port=0,server=on,wait=off"}}"#);
    assert_eq!(r, format!(r#"{{"return": "Error: {text}\r\n"}}"#));
}

#[test]
fn listening_beyond_loopback_warns_once_on_stderr() {
    let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
    args.extend_from_slice(&[
        "-chardev",
        "socket,id=lo,host=127.0.0.1,port=0,server=on,wait=off",
        "-chardev",
        "socket,id=lo6,host=::1,port=0,server=on,wait=off,ipv6=on",
        "-qmp",
        "tcp::0,server=on,wait=off",
    ]);
    let (a, b) = pair();
    let mut f = spawn_with_fds(&args, vec![std::os::fd::OwnedFd::from(b)]);
    let mut c = Client::new(a);
    c.negotiate();
    assert_eq!(add_inet(&mut c, "any", "0.0.0.0", "0"), r#"{"return": {}}"#);
    assert_eq!(add_inet(&mut c, "lo2", "localhost", "0"), r#"{"return": {}}"#);
    quit(&mut c);
    let (code, err) = f.wait_output();
    assert_eq!(code, Some(0));
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    for (w, id) in warnings.iter().zip(["compat_monitor0", "any"]) {
        assert!(w.starts_with(&format!("fdmon: warning: chardev '{id}' listens on ")), "{w}");
        assert!(w.ends_with(": the monitor has no authentication, anyone who can connect controls fdmon"), "{w}");
    }
}

#[test]
fn tcp_server_resolves_service_names() {
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    // `http` is port 80: listening may be refused (not root, or in use), but the name resolves.
    let r = add_inet(&mut c, "web", "127.0.0.1", "http");
    if r == r#"{"return": {}}"# {
        let list = c.cmd(r#"{"execute":"query-chardev"}"#);
        assert!(list.contains("disconnected:tcp:127.0.0.1:80,server=on"), "{list}");
    } else {
        assert!(r.contains("Failed to find an available port: "), "{r}");
    }
    let r = add_inet(&mut c, "bad", "127.0.0.1", "no-such-service-xyz");
    assert!(r.contains("address resolution failed for 127.0.0.1:no-such-service-xyz: "), "{r}");
}

#[test]
fn getfd_with_more_than_16_fds_keeps_the_first() {
    use std::os::fd::AsFd;
    let (f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let base = f.fd_count();
    // 20 pipes: fdmon gets the write ends; a read end sees EOF once fdmon closes its copy.
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..20 {
        let (r, w) = fdmon::sys::fd::pipe(false).unwrap();
        reads.push(r);
        writes.push(w);
    }
    let refs: Vec<&dyn AsFd> = writes.iter().map(|w| w as &dyn AsFd).collect();
    c.send_fds(r#"{"execute":"getfd","arguments":{"fdname":"many"}}"#, &refs);
    drop(refs);
    drop(writes);
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert_eq!(f.fd_count(), base + 1, "exactly one fd kept, the rest closed");
    // The one kept is the first: writing into it is seen on the first read end.
    let eof = |r: &std::os::fd::OwnedFd| {
        let mut p = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(r), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; a 0 timeout only samples.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLHUP != 0 }
    };
    assert!(!eof(&reads[0]), "the first fd was not kept");
    for (i, r) in reads.iter().enumerate().skip(1) {
        assert!(eof(r), "fd {i} of 20 is still open in fdmon");
    }
    assert_eq!(c.cmd(r#"{"execute":"closefd","arguments":{"fdname":"many"}}"#), r#"{"return": {}}"#);
    assert_eq!(f.fd_count(), base);
}

#[test]
fn qmp_desc_has_no_hint_line_but_hmp_and_the_command_line_keep_it() {
    let long = format!("/tmp/{}", "x".repeat(120));
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"t","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{long}"}}}},"server":true,"wait":false}}}}}}}}"#
    ));
    assert_eq!(
        r,
        format!(
            r#"{{"error": {{"class": "GenericError", "desc": "Failed to add chardev 't': UNIX socket path '{long}' is too long"}}}}"#
        )
    );
    let r = c.cmd(&format!(
        r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"chardev-add socket,id=t,path={long},server=on,wait=off"}}}}"#
    ));
    assert_eq!(
        r,
        format!(
            r#"{{"return": "Error: UNIX socket path '{long}' is too long\r\nPath must be less than 108 bytes\r\n"}}"#
        )
    );
    let spec = format!("socket,id=t,path={long},server=on,wait=off");
    let (code, _, err) = run(&["-chardev", &spec]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("fdmon: -chardev {spec}: UNIX socket path '{long}' is too long\nPath must be less than 108 bytes\n")
    );
}

fn hmp(c: &mut Client, line: &str) -> String {
    c.cmd(&format!(r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"{line}"}}}}"#))
}

#[test]
fn chardev_add_refuses_logfile_a_second_stdio_and_wait_in_qmp_and_hmp() {
    let dir = TempDir::new("refuse");
    let (_f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let err = |desc: &str| format!(r#"{{"error": {{"class": "GenericError", "desc": "{desc}"}}}}"#);
    // logfile: QEMU would copy output there; fdmon refuses it, with the command line's text.
    let log = dir.str("log.txt");
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"l","backend":{{"type":"null","data":{{"logfile":"{log}","logappend":true}}}}}}}}"#
    ));
    assert_eq!(r, err("Failed to add chardev 'l': logfile is not supported"));
    assert!(std::fs::metadata(&log).is_err());
    assert_eq!(
        hmp(&mut c, &format!("chardev-add null,id=l,logfile={log}")),
        r#"{"return": "Error: logfile is not supported\r\n"}"#
    );
    let r = c.cmd(
        r#"{"execute":"chardev-add","arguments":{"id":"la","backend":{"type":"null","data":{"logappend":true}}}}"#,
    );
    assert_eq!(r, r#"{"return": {}}"#);
    // One stdio chardev at a time (QEMU's text), QMP and HMP.
    let stdio = |id: &str| {
        format!(r#"{{"execute":"chardev-add","arguments":{{"id":"{id}","backend":{{"type":"stdio","data":{{}}}}}}}}"#)
    };
    assert_eq!(c.cmd(&stdio("s1")), r#"{"return": {}}"#);
    assert_eq!(c.cmd(&stdio("s2")), err("Failed to add chardev 's2': cannot use stdio by multiple character devices"));
    assert_eq!(
        hmp(&mut c, "chardev-add stdio,id=s3"),
        r#"{"return": "Error: cannot use stdio by multiple character devices\r\n"}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"s1"}}"#), r#"{"return": {}}"#);
    assert_eq!(c.cmd(&stdio("s4")), r#"{"return": {}}"#);
    // wait=on (HMP's default for a server) is refused in both, with one text.
    let wait = "'wait' is not supported at runtime: it would stop every monitor until a client connects";
    let p = dir.str("w.sock");
    for line in [
        format!("chardev-add socket,id=w,path={p},server=on"),
        format!("chardev-add socket,id=w,path={p},server=on,wait=on"),
    ] {
        assert_eq!(hmp(&mut c, &line), format!(r#"{{"return": "Error: {wait}\r\n"}}"#));
    }
    let r = c.cmd(&format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"w","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{p}"}}}},"server":true,"wait":true}}}}}}}}"#
    ));
    assert_eq!(r, err(&format!("Failed to add chardev 'w': {wait}")));
    assert!(std::fs::symlink_metadata(&p).is_err());
}
