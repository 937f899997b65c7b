//! fdmon under valgrind's memcheck: it starts there at all (valgrind keeps SIGRTMAX for itself,
//! and fdmon must not refuse to run without it), and a QMP and HMP session makes no invalid
//! memory access.
mod common;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use common::*;

#[test]
fn a_session_under_memcheck_is_clean() {
    let (a, b) = UnixStream::pair().unwrap();
    let args = [
        "-q",
        "--tool=memcheck",
        "--error-exitcode=99",
        "--leak-check=no",
        bin(),
        "-chardev",
        "socket,fd=3,id=mon",
        "-mon",
        "chardev=mon,mode=control",
        "-chardev",
        "ringbuf,id=rb",
    ];
    let mut f = spawn_program("valgrind", &args, vec![OwnedFd::from(b)]);
    let mut c = Client::new(a);
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("\"running\": true"));
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"rb","data":"aGVsbG8=","format":"base64"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":10}}"#), r#"{"return": "hello"}"#);
    let r = c.cmd(r#"{"execute":"human-monitor-command","arguments":{"command-line":"info chardev"}}"#);
    assert!(r.contains("rb: filename=ringbuf"), "{r}");
    let r = c.cmd(r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"null","data":{}}}}"#);
    assert_eq!(r, r#"{"return": {}}"#);
    assert!(c.cmd(r#"{"execute":"no-such"}"#).contains("CommandNotFound"));
    c.send_bytes(b"{\"execute\": [[[[");
    c.send(r#"}}}}{"execute":"quit"}"#);
    let (code, err) = f.wait_output();
    assert_eq!((code, err.as_str()), (Some(0), ""), "memcheck found errors (99) or fdmon failed");
}
