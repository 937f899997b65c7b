//! The seed's Perl launcher, run as written with `fdmon` in place of `qemu-system-x86_64`.

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn seed_perl_example_works_with_fdmon() {
    // perl is required (CI installs it): a missing perl fails here, it does not skip.
    let st = Command::new("perl").arg("-e").arg("1").status();
    assert!(st.as_ref().is_ok_and(|s| s.success()), "perl is required for this test: {st:?}");
    let dir = TempDir::new("seed");
    let sock = dir.str("qmp");
    let script = format!(
        r#"
use IO::Socket::UNIX;
use Fcntl;
unlink "{sock}";
my $srv = IO::Socket::UNIX->new(
    Type => SOCK_STREAM(),
    Local => "{sock}",
    Listen => 1,
);
my $flags = fcntl $srv, F_GETFD, 0;
fcntl $srv, F_SETFD, $flags & ~FD_CLOEXEC;
my $fd = $srv->fileno();
exec "{bin}",
    "-chardev", "socket,fd=$fd,server,nowait,id=mon",
    "-mon", "chardev=mon,mode=control";
"#,
        bin = bin()
    );
    let mut child = Reaped(
        Command::new("perl").arg("-e").arg(&script).stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap(),
    );
    // The launcher creates the socket before exec; wait for that (not for fdmon). The path
    // exists from `bind`, connecting works from `listen`: wait for the listening flag
    // (`__SO_ACCEPTCON`) in /proc/net/unix.
    wait_until("the launcher's listening socket", || {
        std::fs::read_to_string("/proc/net/unix").is_ok_and(|t| {
            t.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 8 && f[7] == sock && f[3] == "00010000"
            })
        })
    });
    let mut c = Client::connect(std::path::Path::new(&sock));
    c.negotiate();
    assert_eq!(
        c.cmd(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#
    );
    let chardevs = c.cmd(r#"{"execute":"query-chardev"}"#);
    assert_eq!(
        chardevs,
        format!(r#"{{"return": [{{"frontend-open": true, "filename": "unix:{sock},server=on", "label": "mon"}}]}}"#)
    );
    c.send(r#"{"execute":"quit"}"#);
    assert!(c.event().contains("host-qmp-quit"));
    assert_eq!(c.line(), r#"{"return": {}}"#);
    c.expect_eof();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    let mut err = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let arg = "socket,fd=3,server,nowait,id=mon";
    let _ = arg;
    assert!(
        err.contains("warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\n"),
        "{err}"
    );
    assert!(
        err.contains("warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead\n"),
        "{err}"
    );
    assert!(err.starts_with("fdmon: -chardev socket,fd="), "{err}");
}

/// The launcher (then fdmon, which it execs): killed and reaped if the test fails early.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
