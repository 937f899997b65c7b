//! Terminals, driven through real pseudo-terminals: the stdio monitor's terminal mode and its
//! restoration, who owns the terminal's foreground, and job control (Ctrl-Z / fg).

mod common;

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;

/// A pty pair: the test drives the master; the program under test gets the slave.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
}

fn openpty() -> Pty {
    // SAFETY: plain libc calls on fds this function owns; ptsname_r writes into `name`.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(s >= 0, "open {:?}", CStr::from_ptr(name.as_ptr()));
        Pty { master: std::fs::File::from_raw_fd(m), slave: OwnedFd::from_raw_fd(s) }
    }
}

/// Every termios field of the slave.
fn termios(pty: &Pty) -> libc::termios {
    // SAFETY: termios is plain old data filled by tcgetattr on our own fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(pty.slave.as_raw_fd(), &mut t), 0);
        t
    }
}

fn same_termios(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_line == b.c_line
        && a.c_cc == b.c_cc
        && a.c_ispeed == b.c_ispeed
        && a.c_ospeed == b.c_ospeed
}

/// The foreground process group of the pty (asked through the master).
fn foreground(pty: &Pty) -> i32 {
    // SAFETY: tcgetpgrp on our own master fd.
    unsafe { libc::tcgetpgrp(pty.master.as_raw_fd()) }
}

/// A program running as session leader on the pty's slave (its controlling terminal).
struct OnPty {
    pty: Pty,
    child: std::process::Child,
    seen: String,
    /// The terminal's settings before the program started.
    before: libc::termios,
    /// Everything the terminal showed.
    log: String,
}

impl OnPty {
    fn spawn(prog: &str, args: &[&str], env: &[(&str, &str)]) -> OnPty {
        let pty = openpty();
        let before = termios(&pty);
        let mut cmd = Command::new(prog);
        cmd.args(args).envs(env.iter().copied());
        let io = |p: &Pty| Stdio::from(p.slave.try_clone().unwrap());
        cmd.stdin(io(&pty)).stdout(io(&pty)).stderr(io(&pty));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        OnPty { pty, child, seen: String::new(), before, log: String::new() }
    }

    fn fdmon(args: &[&str]) -> OnPty {
        OnPty::spawn(bin(), args, &[])
    }

    fn send(&mut self, bytes: &[u8]) {
        self.pty.master.write_all(bytes).unwrap();
    }

    /// Reads terminal output until `pat` appears after what earlier calls consumed.
    fn expect(&mut self, pat: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.seen.find(pat) {
                let upto = i + pat.len();
                let got = self.seen[..upto].to_string();
                self.seen.drain(..upto);
                return got;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {pat:?}; terminal shows {:?}", self.seen);
            let mut p = libc::pollfd { fd: self.pty.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 100) };
            if p.revents & libc::POLLIN != 0 {
                match self.pty.master.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                        self.log.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            } else if p.revents != 0 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// Waits (bounded) for the program to exit; returns its status.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // Keep draining so the program never blocks on a full terminal.
            let mut buf = [0u8; 4096];
            let mut p = libc::pollfd { fd: self.pty.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 10) };
            if p.revents & libc::POLLIN != 0 {
                if let Ok(n) = self.pty.master.read(&mut buf) {
                    self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                    self.log.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "program did not exit; terminal shows {:?}", self.seen);
        }
    }
}

/// Processes in session `sid` (from /proc/PID/stat).
fn session_members(sid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after "(comm)": state ppid pgrp session ...
        let rest: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        if rest.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(sid) {
            v.push(pid);
        }
    }
    v
}

impl Drop for OnPty {
    fn drop(&mut self) {
        // The whole session: fdmon, its workload, a shell's jobs in their own groups.
        let sid = self.child.id() as i32;
        for pid in session_members(sid) {
            // SAFETY: kill(2) of a process in the session our child leads.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stdio_monitor_mode_matches_qemu_and_is_restored_after_quit() {
    let mut t = OnPty::fdmon(&["-monitor", "stdio"]);
    let before = t.before;
    t.expect("(qemu) ");
    let during = termios(&t.pty);
    // QEMU 7.2's settings (stty -a under a pty): -icanon -echo -iexten -icrnl -ixon, isig kept.
    assert_eq!(during.c_lflag & (libc::ICANON | libc::ECHO | libc::ECHONL | libc::IEXTEN), 0);
    assert_ne!(during.c_lflag & libc::ISIG, 0);
    assert_eq!(during.c_iflag & (libc::ICRNL | libc::IXON | libc::INLCR | libc::IGNCR), 0);
    assert_ne!(during.c_oflag & libc::OPOST, 0);
    assert_eq!((during.c_cc[libc::VMIN], during.c_cc[libc::VTIME]), (1, 0));

    // Line editing: a typo erased with DEL; Enter is CR (no ICRNL any more).
    t.send(b"info statx\x7fus\r");
    t.expect("VM status: running");
    t.expect("(qemu) ");
    // Ctrl-D is a byte for the editor, not an end of file.
    t.send(b"\x04");
    // History: Up brings the last line back.
    t.send(b"\x1b[A");
    t.expect("info status");
    t.send(b"\r");
    t.expect("VM status: running");
    // Completion.
    t.send(b"info statu\t\r");
    t.expect("VM status: running");
    t.send(b"quit\r");
    assert_eq!(t.wait().code(), Some(0));
    assert!(same_termios(&before, &termios(&t.pty)), "terminal settings not restored");
}

#[test]
fn signal_off_makes_ctrl_c_a_byte_for_the_monitor() {
    let mut t = OnPty::fdmon(&["-chardev", "stdio,id=s,signal=off", "-mon", "chardev=s"]);
    let before = t.before;
    t.expect("(qemu) ");
    assert_eq!(termios(&t.pty).c_lflag & libc::ISIG, 0);
    t.send(b"\x03");
    t.send(b"info status\r");
    t.expect("VM status: running");
    assert!(t.child.try_wait().unwrap().is_none(), "fdmon died of Ctrl-C");
    t.send(b"quit\r");
    assert_eq!(t.wait().code(), Some(0));
    assert!(same_termios(&before, &termios(&t.pty)));
}

#[test]
fn ctrl_c_with_signal_on_terminates_and_restores() {
    let mut t = OnPty::fdmon(&["-monitor", "stdio"]);
    let before = t.before;
    t.expect("(qemu) ");
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0, "monitor mode not applied");
    t.send(b"\x03");
    t.expect("terminating on signal 2");
    t.wait();
    assert!(same_termios(&before, &termios(&t.pty)));
}

#[test]
fn start_up_error_after_the_mode_change_restores_the_terminal() {
    let mut t = OnPty::fdmon(&["-monitor", "stdio", "-mon", "chardev=nosuch"]);
    let before = t.before;
    t.expect("chardev \"nosuch\" not found");
    assert_eq!(t.wait().code(), Some(1));
    assert!(same_termios(&before, &termios(&t.pty)));
}

#[test]
fn workload_exit_restores_the_terminal() {
    let mut t = OnPty::fdmon(&["-monitor", "stdio", "--", "sleep", "1"]);
    let before = t.before;
    t.expect("(qemu) ");
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0, "monitor mode not applied");
    t.wait();
    assert!(same_termios(&before, &termios(&t.pty)));
}

#[test]
fn without_a_stdio_monitor_the_workload_gets_the_foreground() {
    let dir = TempDir::new("tty-a");
    let sock = dir.str("q.sock");
    let mut t =
        OnPty::fdmon(&["-qmp", &format!("unix:{sock},server=on,wait=off"), "--", "sh", "-c", "echo READY; exec cat"]);
    t.expect("READY");
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    let pid = workload_pid(&mut c).expect("no workload pid");
    wait_until("workload in the foreground", || foreground(&t.pty) == pid);
    t.send(b"hello\n");
    t.expect("hello\r\nhello");
}

#[test]
fn with_a_stdio_monitor_fdmon_keeps_the_foreground() {
    let dir = TempDir::new("tty-b");
    let sock = dir.str("q.sock");
    let mut t = OnPty::fdmon(&[
        "-monitor",
        "stdio",
        "-qmp",
        &format!("unix:{sock},server=on,wait=off"),
        "--",
        "sh",
        "-c",
        "sleep 1; exec cat",
    ]);
    t.expect("(qemu) ");
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    assert_eq!(foreground(&t.pty), t.child.id() as i32);
    t.send(b"info status\r");
    t.expect("VM status: running");
    // The workload reads the terminal from the background: SIGTTIN stops it, fdmon reports it.
    assert!(c.event().contains(r#""event": "STOP""#));
    t.send(b"info status\r");
    t.expect("VM status: paused");
    assert_eq!(foreground(&t.pty), t.child.id() as i32);
    t.send(b"quit\r");
    t.wait();
}

#[test]
fn a_background_fdmon_gives_nobody_the_terminal() {
    let dir = TempDir::new("tty-c");
    let sock = dir.str("q.sock");
    let script = format!("\"$FDMON\" -qmp unix:{sock},server=on,wait=off -- sleep 30 & echo BG $!; wait");
    let mut t = OnPty::spawn("bash", &["--norc", "--noprofile", "-m", "-c", &script], &[("FDMON", bin())]);
    t.expect("BG ");
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    let pid = workload_pid(&mut c).expect("no workload pid");
    assert!(pid > 0);
    assert_eq!(foreground(&t.pty), t.child.id() as i32, "the shell must keep the terminal");
    c.cmd(r#"{"execute":"quit"}"#);
}

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_resumes() {
    ctrl_z_cycle("\"$FDMON\"");
}

#[test]
fn ctrl_z_suspends_a_job_that_runs_fdmon_from_sh_c() {
    // fdmon shares its process group with the `sh` the shell started: the whole job stops.
    ctrl_z_cycle("sh -c '\"$FDMON\" \"$@\"; echo END' sh");
}

fn ctrl_z_cycle(launcher: &str) {
    let dir = TempDir::new("tty-z");
    let sock = dir.str("q.sock");
    let mut t = OnPty::spawn(
        "bash",
        &["--norc", "--noprofile", "--noediting", "-i"],
        &[("PS1", "PROMPT$ "), ("FDMON", bin()), ("TERM", "dumb")],
    );
    t.expect("PROMPT$ ");
    t.send(format!("{launcher} -qmp unix:{sock},server=on,wait=off -- cat\r").as_bytes());
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    t.send(b"one\r");
    t.expect("one\r\none");
    t.send(b"\x1a");
    t.expect("Stopped");
    t.expect("PROMPT$ ");
    t.send(b"fg\r");
    assert!(c.event().contains(r#""event": "STOP""#));
    assert!(c.event().contains(r#""event": "RESUME""#));
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains(r#""status": "running""#));
    t.send(b"two\r");
    t.expect("two\r\ntwo");
    // End of input for cat: the workload exits, fdmon with it, the prompt comes back.
    t.send(b"\x04");
    t.expect("PROMPT$ ");
    t.send(b"exit\r");
    t.wait();
}

#[test]
fn a_workload_stopped_by_someone_else_is_paused_until_cont() {
    let (ours, theirs) = pair();
    let mut args: Vec<&str> = QMP_PAIR_ARGS.to_vec();
    args.extend(["--", "sleep", "30"]);
    let _f = spawn_with_fds(&args, vec![OwnedFd::from(theirs)]);
    let mut c = Client::new(ours);
    c.negotiate();
    let pid = workload_pid(&mut c).expect("no workload pid");
    // SAFETY: kill(2) of the workload we started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    assert!(c.event().contains(r#""event": "STOP""#));
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains(r#""status": "paused""#));
    // As in QEMU, RESUME comes before the reply.
    c.send(r#"{"execute":"cont"}"#);
    assert!(c.event().contains(r#""event": "RESUME""#));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains(r#""status": "running""#));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = stat.rsplit(')').next().unwrap().split_whitespace().next().unwrap().to_string();
    assert_ne!(state, "T", "workload still stopped");
}

#[test]
fn ctrl_z_on_the_monitor_terminal_gives_the_shell_its_settings_back() {
    let mut t = OnPty::spawn(
        "bash",
        &["--norc", "--noprofile", "--noediting", "-i"],
        &[("PS1", "PROMPT$ "), ("FDMON", bin()), ("TERM", "dumb")],
    );
    t.expect("PROMPT$ ");
    let shell = termios(&t.pty);
    t.send(b"\"$FDMON\" -monitor stdio\r");
    t.expect("(qemu) ");
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0);
    t.send(b"\x1a");
    t.expect("Stopped");
    t.expect("PROMPT$ ");
    // bash has its own settings back (it would restore them itself; fdmon restored first).
    let stopped = termios(&t.pty);
    assert_ne!(stopped.c_lflag & libc::ICANON, 0);
    assert!(same_termios(&shell, &stopped));
    t.send(b"fg\r");
    t.send(b"info status\r");
    t.expect("VM status: running");
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0, "monitor mode not re-applied after fg");
    t.send(b"quit\r");
    t.expect("PROMPT$ ");
    assert!(same_termios(&shell, &termios(&t.pty)));
    t.send(b"exit\r");
    t.wait();
}

#[test]
fn wait_on_start_up_signal_restores_the_terminal() {
    let dir = TempDir::new("tty-wait");
    let sock = dir.str("q.sock");
    let q = format!("socket,id=q,path={sock},server=on,wait=on");
    let mut t = OnPty::fdmon(&["-chardev", "stdio,id=s", "-mon", "chardev=s", "-chardev", &q, "-mon", "chardev=q"]);
    t.expect("waiting for connection");
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0, "stdio opens first: its mode is on");
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(t.child.id() as i32, libc::SIGTERM) };
    let status = t.wait();
    assert!(!status.success());
    assert!(same_termios(&t.before, &termios(&t.pty)));
}

/// The same keystrokes on a terminal, to fdmon and to QEMU: the terminal shows the same bytes.
#[test]
fn hmp_on_a_terminal_matches_qemu() {
    let keys: &[&[u8]] = &[
        b"info statx\x7fus\r",
        b"\x1b[A\r",
        b"info statu\t\r",
        b"info s\x04tatus\r",
        b"info uuid\r",
        b"\x1b[A\x1b[A\x1b[B\r",
        b"quit\r",
    ];
    terminal_differential(&["-monitor", "stdio"], keys);
}

/// With `signal=off`, Ctrl-C and Ctrl-Z are bytes for the line editor in both.
#[test]
fn signal_off_keys_match_qemu() {
    let keys: &[&[u8]] = &[b"info st\x03atus\r", b"info\x1a status\r", b"quit\r"];
    terminal_differential(&["-chardev", "stdio,id=s,signal=off", "-mon", "chardev=s"], keys);
}

fn terminal_differential(args: &[&str], keys: &[&[u8]]) {
    if !qemu_available() {
        return;
    }
    let session = |prog: &str, args: &[&str]| {
        let mut t = OnPty::spawn(prog, args, &[]);
        t.expect("(qemu) ");
        for k in keys {
            t.send(k);
            if *k != b"quit\r" {
                t.expect("(qemu) ");
            }
        }
        t.wait();
        t.log.clone()
    };
    let ours = session(bin(), args);
    let mut qemu_args = vec!["-machine", "none", "-nodefaults", "-display", "none"];
    qemu_args.extend_from_slice(args);
    let theirs = session(QEMU, &qemu_args);
    let norm = |s: &str| {
        s.lines().skip(1).map(|l| l.replace("qemu-system-x86_64", "PROG").replace("fdmon", "PROG")).collect::<Vec<_>>()
    };
    assert_eq!(norm(&ours), norm(&theirs), "left fdmon, right QEMU");
}

#[test]
fn chardev_add_stdio_at_run_time_takes_the_terminal_back() {
    let dir = TempDir::new("tty-add");
    let sock = dir.str("q.sock");
    let mut t = OnPty::fdmon(&[
        "-qmp",
        &format!("unix:{sock},server=on,wait=off"),
        "--",
        "sh",
        "-c",
        "echo READY; exec sleep 30",
    ]);
    t.expect("READY");
    let mut c = Client::connect_retry(std::path::Path::new(&sock));
    c.negotiate();
    let pid = workload_pid(&mut c).expect("no workload pid");
    wait_until("workload in the foreground", || foreground(&t.pty) == pid);
    let r = c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"s","backend":{"type":"stdio","data":{}}}}"#);
    assert_eq!(r, r#"{"return": {}}"#);
    assert_eq!(foreground(&t.pty), t.child.id() as i32);
    assert_eq!(termios(&t.pty).c_lflag & libc::ICANON, 0, "monitor mode applied");
    // fdmon reads the terminal without being stopped for it.
    t.send(b"typed\r");
    std::thread::sleep(QUIET);
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("running"));
    c.cmd(r#"{"execute":"quit"}"#);
    t.wait();
    assert!(same_termios(&t.before, &termios(&t.pty)));
}
