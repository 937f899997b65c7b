//! HMP (readline mode) against the real binary: banner and prompt bytes, the exact echo, every
//! command's output and error text, fd passing with getfd/chardev-add, quit, and
//! `human-monitor-command` over a QMP monitor in the same process.

mod common;

use common::*;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};

const HMP_PAIR: &[&str] = &["-chardev", "socket,fd=3,id=mon", "-mon", "chardev=mon,mode=readline"];

/// Reads the banner and first prompt, which must be exactly that.
fn expect_banner(c: &mut Client) {
    assert_eq!(c.until(HMP_PROMPT), hmp_banner());
}

/// fdmon with an HMP monitor on a socketpair; the banner has been read.
fn hmp_pair(extra: &[&str]) -> (Fdmon, Client) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut args: Vec<&str> = HMP_PAIR.to_vec();
    args.extend_from_slice(extra);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(b)]);
    let mut c = Client::new(a);
    expect_banner(&mut c);
    (f, c)
}

/// fdmon with HMP on fd 3 and QMP on fd 4 (both socketpairs); banner read, QMP negotiated.
fn hmp_and_qmp(extra: &[&str]) -> (Fdmon, Client, Client) {
    let (ha, hb) = UnixStream::pair().unwrap();
    let (qa, qb) = UnixStream::pair().unwrap();
    let mut args: Vec<&str> = vec![
        "-chardev",
        "socket,fd=3,id=hmp",
        "-mon",
        "chardev=hmp,mode=readline",
        "-chardev",
        "socket,fd=4,id=qmp",
        "-mon",
        "chardev=qmp,mode=control",
    ];
    args.extend_from_slice(extra);
    let f = spawn_with_fds(&args, vec![OwnedFd::from(hb), OwnedFd::from(qb)]);
    let mut h = Client::new(ha);
    expect_banner(&mut h);
    let mut q = Client::new(qa);
    q.negotiate();
    (f, h, q)
}

fn hmc_request(line: &str) -> String {
    let arg = fdmon::json::to_string(&fdmon::json::Value::from(line));
    format!(r#"{{"execute":"human-monitor-command","arguments":{{"command-line":{arg}}}}}"#)
}

/// Runs `line` with human-monitor-command and returns the reply line.
fn hmc(q: &mut Client, line: &str) -> String {
    q.cmd(&hmc_request(line))
}

#[test]
fn banner_prompt_and_exact_echo() {
    let (_f, mut c) = hmp_pair(&[]);
    c.send("stop\n");
    assert_eq!(
        c.until(HMP_PROMPT),
        "s\x1b[K\x1b[Dst\x1b[K\x1b[D\x1b[Dsto\x1b[K\x1b[D\x1b[D\x1b[Dstop\x1b[K\r\n(qemu) "
    );
    // An empty line.
    c.send("\n");
    assert_eq!(c.until(HMP_PROMPT), "\r\n(qemu) ");
    // Without Enter only the echo comes back.
    c.send("info version");
    assert_eq!(c.until("info version\x1b[K"), hmp_echo("info version"));
    c.expect_silence();
    c.send("\n");
    assert_eq!(c.until(HMP_PROMPT), format!("\r\n{}fdmon\r\n(qemu) ", env!("CARGO_PKG_VERSION")));
}

#[test]
fn cr_lf_is_two_enters_and_editing_keys() {
    let (_f, mut c) = hmp_pair(&[]);
    c.send("info status\r\n");
    assert_eq!(
        c.until("(qemu) \r\n(qemu) "),
        format!("{}\r\nVM status: running\r\n(qemu) \r\n(qemu) ", hmp_echo("info status"))
    );
    // Ctrl-C and other control bytes are ignored.
    c.send("\x03\x00");
    c.expect_silence();
    // Backspace (DEL and BS) redraws the shorter line.
    c.send("stopx\x7f");
    assert_eq!(
        c.until("stopx\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dstop\x1b[K"),
        hmp_echo("stopx") + "\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dstop\x1b[K"
    );
    c.send("\n");
    assert_eq!(c.until(HMP_PROMPT), "\r\n(qemu) ");
    assert_eq!(hmp_line(&mut c, "info status"), "VM status: paused\r\n");
    c.send("ab\x08\x08");
    assert_eq!(c.until("\x1b[D\x1b[K"), "a\x1b[K\x1b[Dab\x1b[K\x1b[D\x1b[Da\x1b[K\x1b[D\x1b[K");
    // History: ESC [ A brings back the previous line.
    c.send("\x1b[A");
    assert_eq!(c.until("info status\x1b[K"), "info status\x1b[K");
    c.send("\x1b[A");
    assert_eq!(c.until("stop\x1b[K"), format!("{}stop\x1b[K", "\x1b[D".repeat(11)));
    c.send("\x1b[B\x1b[B");
    assert_eq!(
        c.until("\x1b[D\x1b[D\x1b[D\x1b[D\x1b[K"),
        format!(
            "{}info status\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[K",
            "\x1b[D".repeat(4)
        )
    );
    // Cursor left, then typing inserts before the cursor.
    c.send("cnt\x1b[D\x1b[Do\n");
    let got = c.until(HMP_PROMPT);
    assert!(got.ends_with("\x1b[D\x1b[Dcont\x1b[K\x1b[D\x1b[D\r\n(qemu) "), "{got:?}");
    assert_eq!(hmp_line(&mut c, "info status"), "VM status: running\r\n");
}

#[test]
fn tab_completion() {
    let (_f, mut c) = hmp_pair(&[]);
    c.send("info stat\t");
    let want = format!("{}{}info status \x1b[K", hmp_echo("info stat"), "\x1b[D".repeat(9));
    assert_eq!(c.until("info status \x1b[K"), want);
    c.send("\n");
    assert_eq!(c.until(HMP_PROMPT), "\r\nVM status: running\r\n(qemu) ");
    c.send("s\t");
    assert_eq!(
        c.until("(qemu) s\x1b[K"),
        "s\x1b[K\r\ns                 stop              system_powerdown  system_reset      \r\n(qemu) s\x1b[K"
    );
    c.send("\x7f\n");
    assert_eq!(c.until(HMP_PROMPT), "\x1b[D\x1b[K\r\n(qemu) ");
    c.send("info \t");
    assert_eq!(
        c.until("(qemu) info \x1b[K"),
        format!(
            "{}\r\nchardev   name      status    uuid      version   workload  \r\n(qemu) info \x1b[K",
            hmp_echo("info ")
        )
    );
}

#[test]
fn info_commands_and_help() {
    let (_f, mut c) = hmp_pair(&["-name", "vm1", "-uuid", "12345678-1234-1234-1234-123456789abc"]);
    assert_eq!(hmp_line(&mut c, "info version"), format!("{}fdmon\r\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(hmp_line(&mut c, "  info   version  "), format!("{}fdmon\r\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(hmp_line(&mut c, "info name"), "vm1\r\n");
    assert_eq!(hmp_line(&mut c, "info uuid"), "12345678-1234-1234-1234-123456789abc\r\n");
    assert_eq!(hmp_line(&mut c, "info chardev"), "mon: filename=unix:\r\n");
    assert_eq!(hmp_line(&mut c, "info workload"), "workload: none\r\n");
    assert_eq!(hmp_line(&mut c, "help stop"), "stop|s  -- pause the workload\r\n");
    assert_eq!(hmp_line(&mut c, "? q"), "quit|q  -- exit fdmon now, ending the workload\r\n");
    assert_eq!(hmp_line(&mut c, "help info status"), "info status  -- print the run state (running|paused)\r\n");
    assert_eq!(hmp_line(&mut c, "help nonexist"), "unknown command: 'nonexist'\r\n");
    let all = hmp_line(&mut c, "help");
    let names: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "chardev-add",
            "chardev-remove",
            "closefd",
            "console_resize",
            "cont|c",
            "getfd",
            "help|?",
            "info",
            "monitor-add",
            "monitor-remove",
            "quit|q",
            "ringbuf_read",
            "ringbuf_write",
            "stop|s",
            "system_powerdown",
            "system_reset"
        ]
    );
    assert!(all.lines().all(|l| l.contains(" -- ")), "{all:?}");
    let info = hmp_line(&mut c, "info");
    assert_eq!(info, hmp_line(&mut c, "help info"));
    assert_eq!(info.lines().count(), 6);
    assert!(info.lines().all(|l| l.starts_with("info ")), "{info:?}");

    let (_f, mut c) = hmp_pair(&[]);
    assert_eq!(hmp_line(&mut c, "info name"), "");
    assert_eq!(hmp_line(&mut c, "info uuid"), "00000000-0000-0000-0000-000000000000\r\n");
}

#[test]
fn error_texts() {
    let (_f, mut c) = hmp_pair(&[]);
    let try_help = |msg: &str, cmd: &str| format!("{msg}\r\nTry \"help {cmd}\" for more information\r\n");
    assert_eq!(hmp_line(&mut c, "bogus"), "unknown command: 'bogus'\r\n");
    assert_eq!(hmp_line(&mut c, "INFO VERSION"), "unknown command: 'INFO'\r\n");
    assert_eq!(hmp_line(&mut c, "info bogus"), "unknown command: 'info bogus'\r\n");
    assert_eq!(hmp_line(&mut c, "info ver"), "unknown command: 'info ver'\r\n");
    assert_eq!(hmp_line(&mut c, "getfd"), try_help("getfd: string expected", "getfd"));
    assert_eq!(hmp_line(&mut c, "ringbuf_read"), try_help("ringbuf_read: string expected", "ringbuf_read"));
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1"), try_help("unexpected end of expression", "ringbuf_read"));
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1 a"), try_help("invalid char 'a' in expression", "ringbuf_read"));
    assert_eq!(hmp_line(&mut c, "stop now"), try_help("stop|s: extraneous characters at the end of line", "stop"));
    assert_eq!(hmp_line(&mut c, "q now"), try_help("quit|q: extraneous characters at the end of line", "q"));
    assert_eq!(
        hmp_line(&mut c, "info status x"),
        try_help("status: extraneous characters at the end of line", "info status")
    );
    assert_eq!(hmp_line(&mut c, "ringbuf_read nope 1"), "Error: Device 'nope' not found\r\n");
    assert_eq!(hmp_line(&mut c, "chardev-remove nope"), "Error: Chardev 'nope' not found\r\n");
    assert_eq!(hmp_line(&mut c, "chardev-remove mon"), "Error: Chardev 'mon' is busy\r\n");
    assert_eq!(hmp_line(&mut c, "chardev-add null"), "Error: chardev: no id specified\r\n");
    assert_eq!(
        hmp_line(&mut c, "chardev-add null,id=mon"),
        "Duplicate ID 'mon' for chardev\r\nError: Parsing chardev args failed\r\n"
    );
    assert_eq!(
        hmp_line(&mut c, "chardev-add socket,path=/nonexistent/h2.sock,server=on,wait=off,id=c4,bogus=1"),
        "Invalid parameter 'bogus'\r\nError: Parsing chardev args failed\r\n"
    );
    assert_eq!(
        hmp_line(&mut c, "chardev-add socket,fd=3,server=on,wait=off,id=c2"),
        "Error: File descriptor named '3' has not been found\r\n"
    );
    assert_eq!(
        hmp_line(&mut c, "chardev-add socket,fd=lf,server,nowait,id=c3"),
        "warning: short-form boolean option 'server' deprecated\r\nPlease use server=on instead\r\n\
         warning: short-form boolean option 'nowait' deprecated\r\nPlease use wait=off instead\r\n\
         Error: File descriptor named 'lf' has not been found\r\n"
    );
    // The monitor is still alive and well.
    assert_eq!(hmp_line(&mut c, "info status"), "VM status: running\r\n");
}

#[test]
fn run_state_transitions() {
    let (_f, mut c) = hmp_pair(&[]);
    let status = |c: &mut Client| hmp_line(c, "info status");
    assert_eq!(status(&mut c), "VM status: running\r\n");
    assert_eq!(hmp_line(&mut c, "stop"), "");
    assert_eq!(status(&mut c), "VM status: paused\r\n");
    assert_eq!(hmp_line(&mut c, "c"), "");
    assert_eq!(status(&mut c), "VM status: running\r\n");
    assert_eq!(hmp_line(&mut c, "system_reset"), "");
    assert_eq!(status(&mut c), "VM status: running\r\n");
    assert_eq!(hmp_line(&mut c, "s"), "");
    assert_eq!(hmp_line(&mut c, "system_reset"), "");
    assert_eq!(status(&mut c), "VM status: paused (prelaunch)\r\n");
    assert_eq!(hmp_line(&mut c, "cont"), "");
    assert_eq!(status(&mut c), "VM status: running\r\n");
    assert_eq!(hmp_line(&mut c, "system_powerdown"), "");

    let (_f, mut c) = hmp_pair(&["-S"]);
    assert_eq!(status(&mut c), "VM status: paused (prelaunch)\r\n");
    assert_eq!(hmp_line(&mut c, "stop"), "");
    assert_eq!(status(&mut c), "VM status: paused (prelaunch)\r\n");
    assert_eq!(hmp_line(&mut c, "cont"), "");
    assert_eq!(status(&mut c), "VM status: running\r\n");
}

#[test]
fn ringbuf_read_and_write() {
    let (_f, mut c) = hmp_pair(&[]);
    assert_eq!(hmp_line(&mut c, "chardev-add ringbuf,id=r1,size=64"), "");
    assert_eq!(hmp_line(&mut c, "info chardev"), "mon: filename=unix:\r\nr1: filename=ringbuf\r\n");
    assert_eq!(hmp_line(&mut c, r#"ringbuf_write r1 "quoted str""#), "");
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1 0x10"), "quoted str\r\n");
    assert_eq!(hmp_line(&mut c, r"ringbuf_write r1 a\x20b"), "");
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1 (1+1)*4"), "a\\\\x20b\r\n");
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1 0"), "Error: size must be greater than zero\r\n");
    // UTF-8 is echoed raw and stored as typed.
    c.send("ringbuf_write r1 \u{e9}\n");
    assert!(c.until(HMP_PROMPT).ends_with("ringbuf_write r1 \u{e9}\x1b[K\r\n(qemu) "));
    assert_eq!(hmp_line(&mut c, "ringbuf_read r1 10"), "\u{e9}\r\n");
    assert_eq!(
        hmp_line(&mut c, "chardev-add ringbuf,id=r1"),
        "Error: attempt to add duplicate property 'r1' to object (type 'container')\r\n"
    );
    assert_eq!(hmp_line(&mut c, "chardev-remove r1"), "");
    assert_eq!(hmp_line(&mut c, "info chardev"), "mon: filename=unix:\r\n");
}

#[test]
fn getfd_then_chardev_add_of_a_passed_listener() {
    let dir = TempDir::new("hmpfd");
    let (_f, mut c) = hmp_pair(&[]);
    assert_eq!(hmp_line(&mut c, "getfd myfd"), "Error: No file descriptor supplied via SCM_RIGHTS\r\n");
    let path = dir.path("h1.sock");
    let l = UnixListener::bind(&path).unwrap();

    // The fd rides on the same message as the command line.
    c.send_fds("getfd myfd\n", &[&l]);
    assert_eq!(c.until(HMP_PROMPT), format!("{}\r\n(qemu) ", hmp_echo("getfd myfd")));
    drop(l);
    let f2 = std::fs::File::open("/dev/null").unwrap();
    c.send_fds("getfd 1x\n", &[&f2]);
    assert_eq!(
        c.until(HMP_PROMPT),
        format!(
            "{}\r\nError: Parameter 'fdname' expects a name not starting with a digit\r\n(qemu) ",
            hmp_echo("getfd 1x")
        )
    );
    assert_eq!(hmp_line(&mut c, "chardev-add socket,fd=myfd,server=on,wait=off,id=c1"), "");
    let p = path.to_string_lossy();
    assert_eq!(
        hmp_line(&mut c, "info chardev"),
        // QEMU's hash-table order (see chardev::order).
        format!("c1: filename=disconnected:unix:{p},server=on\r\nmon: filename=unix:\r\n")
    );
    // The lookup consumed the name.
    assert_eq!(hmp_line(&mut c, "closefd myfd"), "Error: File descriptor named 'myfd' not found\r\n");
    assert_eq!(hmp_line(&mut c, "closefd nosuch"), "Error: File descriptor named 'nosuch' not found\r\n");
    assert_eq!(
        hmp_line(&mut c, "chardev-add socket,fd=myfd,server=on,wait=off,id=c2"),
        "Error: File descriptor named 'myfd' has not been found\r\n"
    );
    assert_eq!(
        hmp_line(&mut c, "chardev-add socket,fd=x,server=on,wait=off,id=c1"),
        "Error: Chardev with id 'c1' already exists\r\n"
    );

    // A client of the new chardev is accepted (no monitor serves it).
    let _peer = UnixStream::connect(&path).unwrap();
    let want = format!("c1: filename=unix:{p},server=on\r\nmon: filename=unix:\r\n");
    let mut last = String::new();
    wait_until("the client of c1 to be accepted", || {
        last = hmp_line(&mut c, "info chardev");
        last == want
    });

    // getfd + closefd: nothing printed on success.
    let f3 = std::fs::File::open("/dev/null").unwrap();
    c.send_fds("getfd other\n", &[&f3]);
    assert_eq!(c.until(HMP_PROMPT), format!("{}\r\n(qemu) ", hmp_echo("getfd other")));
    assert_eq!(hmp_line(&mut c, "closefd other"), "");
    assert_eq!(hmp_line(&mut c, "chardev-remove c1"), "");
}

#[test]
fn inherited_listener_sessions_and_per_monitor_names() {
    let dir = TempDir::new("hmpl");
    let (l, path) = listener(&dir, "hmp.sock");
    let _f = spawn_with_fds(
        &["-chardev", "socket,fd=3,server=on,wait=off,id=mon", "-mon", "chardev=mon,mode=readline"],
        vec![OwnedFd::from(l)],
    );
    let mut c = Client::connect(&path);
    expect_banner(&mut c);
    let p = path.to_string_lossy().into_owned();
    assert_eq!(hmp_line(&mut c, "info chardev"), format!("mon: filename=unix:{p},server=on\r\n"));
    let f = std::fs::File::open("/dev/null").unwrap();
    c.send_fds("getfd kept\n", &[&f]);
    assert_eq!(c.until(HMP_PROMPT), format!("{}\r\n(qemu) ", hmp_echo("getfd kept")));
    // Half a line, then the client goes away.
    c.send("info sta");
    c.until("info sta\x1b[K");
    drop(c);

    // A new session: fresh banner, empty line and history, names kept.
    let mut c = Client::connect(&path);
    expect_banner(&mut c);
    c.send("\x1b[A");
    c.expect_silence();
    assert_eq!(hmp_line(&mut c, "closefd kept"), "");
    assert_eq!(hmp_line(&mut c, "closefd kept"), "Error: File descriptor named 'kept' not found\r\n");
}

#[test]
fn quit_echoes_then_closes() {
    let (mut f, mut c) = hmp_pair(&[]);
    c.send("quit\n");
    assert_eq!(c.until("\r\n"), format!("{}\r\n", hmp_echo("quit")));
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));

    // Bytes after `q` on the same line are not processed.
    let (mut f, mut c) = hmp_pair(&[]);
    c.send("q\nstop\n");
    assert_eq!(c.until("\r\n"), "q\x1b[K\r\n");
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn workload_info() {
    let (mut f, mut c) = hmp_pair(&["--", "sleep", "30"]);
    let w = hmp_line(&mut c, "info workload");
    let pid = w
        .strip_prefix("workload: sleep, pid ")
        .and_then(|r| r.strip_suffix(", ready\r\n"))
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or_else(|| panic!("{w:?}"));
    assert!(pid > 0);
    assert_eq!(hmp_line(&mut c, "stop"), "");
    assert_eq!(hmp_line(&mut c, "info status"), "VM status: paused\r\n");
    assert_eq!(hmp_line(&mut c, "cont"), "");
    c.send("q\n");
    c.until("\r\n");
    c.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}

#[test]
fn human_monitor_command_over_qmp() {
    let (mut f, mut h, mut q) = hmp_and_qmp(&[]);
    assert_eq!(hmc(&mut q, "info status"), r#"{"return": "VM status: running\r\n"}"#);
    assert_eq!(hmc(&mut q, ""), r#"{"return": ""}"#);
    assert_eq!(hmc(&mut q, "bogus"), r#"{"return": "unknown command: 'bogus'\r\n"}"#);
    assert_eq!(hmc(&mut q, "closefd nope"), r#"{"return": "Error: File descriptor named 'nope' not found\r\n"}"#);
    assert_eq!(
        hmc(&mut q, "info status\ninfo name"),
        r#"{"return": "status: extraneous characters at the end of line\r\nTry \"help info status\" for more information\r\n"}"#
    );
    assert_eq!(hmc(&mut q, "info chardev"), r#"{"return": "qmp: filename=unix:\r\nhmp: filename=unix:\r\n"}"#);
    // Events caused by the command come first; the HMP monitor never sees them.
    q.send(&hmc_request("stop"));
    assert_eq!(q.event(), r#"{"event": "STOP"}"#);
    assert_eq!(q.line(), r#"{"return": ""}"#);
    assert_eq!(hmp_line(&mut h, "info status"), "VM status: paused\r\n");
    assert_eq!(hmp_line(&mut h, "cont"), "");
    assert_eq!(q.event(), r#"{"event": "RESUME"}"#);
    h.expect_silence();
    // cpu-index: 0 is accepted and ignored (qmp-shell -H), anything else is an error.
    assert_eq!(
        q.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"info name","cpu-index":0}}"#),
        r#"{"return": ""}"#
    );
    assert_eq!(
        q.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"info name","cpu-index":1}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'cpu-index' expects a CPU number"}}"#
    );
    // An fd sent with human-monitor-command stays pending on the QMP connection.
    let dn = std::fs::File::open("/dev/null").unwrap();
    q.send_fds(&hmc_request("getfd x"), &[&dn]);
    assert_eq!(q.line(), r#"{"return": "Error: No file descriptor supplied via SCM_RIGHTS\r\n"}"#);
    assert_eq!(q.cmd(r#"{"execute":"getfd","arguments":{"fdname":"x"}}"#), r#"{"return": {}}"#);
    // ...and QMP names are invisible to it.
    assert_eq!(hmc(&mut q, "closefd x"), r#"{"return": "Error: File descriptor named 'x' not found\r\n"}"#);
    assert_eq!(q.cmd(r#"{"execute":"closefd","arguments":{"fdname":"x"}}"#), r#"{"return": {}}"#);
    // ringbuf_read escaping, as JSON shows it.
    assert_eq!(hmc(&mut q, "chardev-add ringbuf,id=r1,size=64"), r#"{"return": ""}"#);
    let data = fdmon::json::to_string(&fdmon::json::Value::from("a\u{1}\tb\nc\\d\u{7f}e\u{e9}"));
    let w = format!(r#"{{"execute":"ringbuf-write","arguments":{{"device":"r1","data":{data}}}}}"#);
    assert_eq!(q.cmd(&w), r#"{"return": {}}"#);
    assert_eq!(hmc(&mut q, "ringbuf_read r1 64"), r#"{"return": "a\\u0001\tb\r\nc\\\\d\\u007Fe\u00E9\r\n"}"#);
    // quit: SHUTDOWN, an empty return, then EOF on both monitors.
    q.send(&hmc_request("q"));
    assert_eq!(q.event(), r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#);
    assert_eq!(q.line(), r#"{"return": ""}"#);
    q.expect_eof();
    h.expect_eof();
    assert_eq!(f.wait().code(), Some(0));
}
