//! Socket chardevs end to end: fd / path / tcp listeners and clients, wait on and off, one client
//! at a time, filenames, path safety, runtime chardev-add/remove, and start-up errors.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

fn qmp_over_pair(extra: &[&str]) -> (Fdmon, Client) {
    let (f, mut c) = qmp_pair(extra);
    c.negotiate();
    (f, c)
}

/// The first line fdmon writes to stderr (the stream is taken from the process).
fn first_stderr_line(f: &mut Fdmon) -> String {
    let mut line = String::new();
    BufReader::new(f.child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    line
}

fn chardevs(c: &mut Client) -> String {
    c.cmd(r#"{"execute":"query-chardev"}"#)
}

fn entry(label: &str, filename: &str, open: bool) -> String {
    format!(r#"{{"frontend-open": {open}, "filename": "{filename}", "label": "{label}"}}"#)
}

#[test]
fn bad_fds_on_the_command_line() {
    let dir = TempDir::new("badfd");
    let file = std::fs::File::create(dir.path("f")).unwrap();
    let (conn_a, _conn_b) = UnixStream::pair().unwrap();
    let unbound = UnixListener::bind(dir.path("tmp")).map(|_| ()).ok();
    let _ = unbound;
    let udp = UnixDatagram::unbound().unwrap();
    let cases: Vec<(&str, Vec<OwnedFd>, &str)> = vec![
        ("socket,fd=myfd,server=on,wait=off,id=mon", vec![], "Unable to parse FD number myfd"),
        ("socket,fd=99,server=on,wait=off,id=mon", vec![], "File descriptor '99' is not a socket"),
        ("socket,fd=3,server=on,wait=off,id=mon", vec![OwnedFd::from(file)], "File descriptor '3' is not a socket"),
        (
            "socket,fd=3,server=on,wait=off,id=mon",
            vec![OwnedFd::from(conn_a)],
            "Failed to listen on fd socket: Invalid argument",
        ),
        (
            "socket,fd=3,server=on,wait=off,id=mon",
            vec![OwnedFd::from(udp)],
            "Failed to listen on fd socket: Operation not supported",
        ),
    ];
    for (arg, fds, msg) in cases {
        let (code, out, err) = run_with_fds(&["-chardev", arg, "-mon", "chardev=mon,mode=control"], fds);
        assert_eq!(code, Some(1), "{arg}");
        assert_eq!(out, "");
        assert_eq!(err, format!("fdmon: -chardev {arg}: {msg}\n"), "{arg}");
    }
}

#[test]
fn bound_but_not_listening_fd_starts_listening() {
    let dir = TempDir::new("bound");
    let p = dir.path("b.sock");
    // A bound, not listening socket: bind a listener's address via a raw socket.
    let raw = fdmon::sys::socket::unix_listen(
        &fdmon::sys::socket::UnixAddr::Path(p.to_string_lossy().as_bytes().to_vec()),
        true,
        1,
    )
    .unwrap();
    let f = spawn_with_fds(common::QMP_ARGS, vec![raw]);
    let mut c = Client::connect(&p);
    c.negotiate();
    assert_eq!(
        chardevs(&mut c),
        format!("{{\"return\": [{}]}}", entry("mon", &format!("unix:{},server=on", p.display()), true))
    );
    drop(f);
}

#[test]
fn unix_path_server_filenames_and_one_client_at_a_time() {
    let dir = TempDir::new("path");
    let p = dir.str("p3.sock");
    let (l, _) = listener(&dir, "ctl.sock");
    let arg = format!("socket,path={p},server=on,wait=off,id=srv");
    let f = spawn_with_fds(
        &[
            "-chardev",
            &arg,
            "-mon",
            "chardev=srv,mode=control",
            "-chardev",
            "socket,fd=3,server=on,wait=off,id=ctl",
            "-mon",
            "chardev=ctl,mode=control",
        ],
        vec![OwnedFd::from(l)],
    );
    let mut ctl = Client::connect(&dir.path("ctl.sock"));
    ctl.negotiate();
    let list = chardevs(&mut ctl);
    assert!(list.contains(&entry("srv", &format!("disconnected:unix:{p},server=on"), true)), "{list}");
    let mut a = Client::connect_retry(std::path::Path::new(&p));
    a.negotiate();
    let list = chardevs(&mut ctl);
    assert!(list.contains(&entry("srv", &format!("unix:{p},server=on"), true)), "{list}");
    let mut b = Client::connect(std::path::Path::new(&p));
    b.expect_silence();
    drop(a);
    b.negotiate();
    drop(b);
    wait_until("disconnected filename", || chardevs(&mut ctl).contains("disconnected:unix:"));
    ctl.send(r#"{"execute":"quit"}"#);
    ctl.event();
    ctl.line();
    let mut f = f;
    assert_eq!(f.wait().code(), Some(0));
    assert!(!std::path::Path::new(&p).exists(), "fdmon removes the socket it created");
}

#[test]
fn wait_on_blocks_start_up_until_a_client_connects() {
    let dir = TempDir::new("wait");
    let p = dir.str("w.sock");
    let arg = format!("socket,path={p},server=on,id=mon");
    let mut f = spawn(&["-chardev", &arg, "-mon", "chardev=mon,mode=control"]);
    let line = first_stderr_line(&mut f);
    assert_eq!(
        line,
        format!("fdmon: -chardev {arg}: info: fdmon waiting for connection on: disconnected:unix:{p},server=on\n")
    );
    let mut c = Client::connect(std::path::Path::new(&p));
    c.negotiate();
    assert_eq!(chardevs(&mut c), format!("{{\"return\": [{}]}}", entry("mon", &format!("unix:{p},server=on"), true)));
}

#[test]
fn inherited_listener_with_wait_on() {
    let dir = TempDir::new("waitfd");
    let (l, p) = listener(&dir, "l2.sock");
    let mut f = spawn_with_fds(
        &["-chardev", "socket,fd=3,server=on,id=mon", "-mon", "chardev=mon,mode=control"],
        vec![OwnedFd::from(l)],
    );
    let line = first_stderr_line(&mut f);
    assert_eq!(
        line,
        format!("fdmon: -chardev socket,fd=3,server=on,id=mon: info: fdmon waiting for connection on: disconnected:unix:{},server=on\n", p.display())
    );
    let mut c = Client::connect(&p);
    c.negotiate();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn tcp_server_and_filenames() {
    let (_f, mut c) = qmp_over_pair(&[
        "-chardev",
        "socket,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on,id=t",
        "-mon",
        "chardev=t,mode=control",
    ]);
    let list = chardevs(&mut c);
    let start = list.find("disconnected:tcp:127.0.0.1:").expect(&list) + "disconnected:tcp:127.0.0.1:".len();
    let port: u16 = list[start..].split(',').next().unwrap().parse().unwrap();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let local = s.local_addr().unwrap().port();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut r = BufReader::new(s);
    let mut g = String::new();
    r.read_line(&mut g).unwrap();
    assert!(g.starts_with(r#"{"QMP": "#));
    let want = entry("t", &format!("tcp:127.0.0.1:{port},server=on <-> 127.0.0.1:{local}"), true);
    wait_until("tcp filename", || chardevs(&mut c).contains(&want));
}

#[test]
fn tcp_port_ranges_take_the_next_free_port() {
    let p = free_port();
    let a = format!("socket,host=127.0.0.1,port={p},to={},server=on,wait=off,id=a", p + 10);
    let b = format!("socket,host=127.0.0.1,port={p},to={},server=on,wait=off,id=b", p + 10);
    let (_f, mut c) = qmp_over_pair(&["-chardev", &a, "-chardev", &b]);
    let list = chardevs(&mut c);
    assert!(list.contains(&entry("a", &format!("disconnected:tcp:127.0.0.1:{p},server=on"), false)), "{list}");
    assert!(
        list.contains(&format!("disconnected:tcp:127.0.0.1:{},server=on", p + 1)) || list.contains("\"label\": \"b\""),
        "{list}"
    );
}

#[test]
fn client_mode_connects_at_start_up() {
    let dir = TempDir::new("client");
    let (l, p) = listener(&dir, "srv.sock");
    let arg = format!("socket,path={},id=c", p.display());
    let _f = spawn(&["-chardev", &arg, "-mon", "chardev=c,mode=control"]);
    let (s, _) = l.accept().unwrap();
    let mut c = Client::new(s);
    c.negotiate();
    assert_eq!(chardevs(&mut c), format!("{{\"return\": [{}]}}", entry("c", "unix:", true)));

    let missing = dir.str("nothere.sock");
    let arg = format!("socket,path={missing},id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Failed to connect to '{missing}': No such file or directory\n"));

    let port = free_port();
    let arg = format!("socket,host=127.0.0.1,port={port},id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Failed to connect to '127.0.0.1:{port}': Connection refused\n"));
}

#[test]
fn tcp_client_mode() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let arg = format!("socket,host=127.0.0.1,port={port},id=c");
    let _f = spawn(&["-chardev", &arg, "-mon", "chardev=c,mode=control"]);
    let (s, peer) = l.accept().unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut g = String::new();
    r.read_line(&mut g).unwrap();
    assert!(g.starts_with(r#"{"QMP": "#));
    let _ = peer;
}

#[test]
fn path_safety() {
    let dir = TempDir::new("safety");
    let reg = dir.str("regular");
    std::fs::write(&reg, "precious").unwrap();
    let arg = format!("socket,path={reg},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Refusing to replace '{reg}': it is not a socket\n"));
    assert_eq!(std::fs::read_to_string(&reg).unwrap(), "precious");

    let link = dir.str("link");
    std::os::unix::fs::symlink(&reg, &link).unwrap();
    let arg = format!("socket,path={link},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Refusing to replace '{link}': it is a symbolic link\n"));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

    let (_live, live) = listener(&dir, "live.sock");
    let live = live.to_string_lossy().into_owned();
    let arg = format!("socket,path={live},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Refusing to replace '{live}': a process is listening on it\n"));

    let stale = dir.str("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(std::path::Path::new(&stale).exists());
    let arg = format!("socket,path={stale},server=on,wait=off,id=m");
    let f = spawn(&["-chardev", &arg, "-mon", "chardev=m,mode=control"]);
    let mut c = Client::connect_retry(std::path::Path::new(&stale));
    c.negotiate();
    drop(f);

    let adir = dir.str("adir");
    std::fs::create_dir(&adir).unwrap();
    let arg = format!("socket,path={adir},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Failed to unlink socket {adir}: Is a directory\n"));

    let nodir = dir.str("nodir/x.sock");
    let arg = format!("socket,path={nodir},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("fdmon: -chardev {arg}: Failed to bind socket to {nodir}: No such file or directory\n"));

    let long = format!("/tmp/{}", "a".repeat(120));
    let arg = format!("socket,path={long},server=on,wait=off,id=x");
    let (code, _, err) = run(&["-chardev", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("fdmon: -chardev {arg}: UNIX socket path '{long}' is too long\nPath must be less than 108 bytes\n")
    );
}

#[test]
fn no_tls_no_telnet() {
    let (code, _, err) = run(&["-chardev", "socket,path=/tmp/x.sock,server=on,wait=off,tls-creds=tls0,id=x"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: -chardev socket,path=/tmp/x.sock,server=on,wait=off,tls-creds=tls0,id=x: No TLS credentials with id 'tls0'\n");
    // QEMU looks the object up first, so even an fd client gets the missing-object error.
    let (a, _b) = UnixStream::pair().unwrap();
    let (code, _, err) =
        run_with_fds(&["-chardev", "socket,fd=3,reconnect=1,tls-creds=tls0,id=x"], vec![OwnedFd::from(a)]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "fdmon: -chardev socket,fd=3,reconnect=1,tls-creds=tls0,id=x: No TLS credentials with id 'tls0'\n");
    let (code, _, err) = run(&["-chardev", "socket,path=/tmp/x.sock,server=on,wait=off,telnet=on,id=x"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("fdmon: -chardev socket,path=/tmp/x.sock,server=on,wait=off,telnet=on,id=x: "), "{err}");
    assert!(err.contains("telnet"), "{err}");
}

#[test]
fn runtime_chardev_add_and_remove() {
    let dir = TempDir::new("rt");
    let (_f, mut c) = qmp_over_pair(&[]);
    let p = dir.str("rt.sock");
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"c1","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{p}"}}}}}}}}}}}}"#
    );
    assert_eq!(c.cmd(&add), r#"{"return": {}}"#);
    assert_eq!(c.cmd(&add), r#"{"error": {"class": "GenericError", "desc": "Chardev with id 'c1' already exists"}}"#);
    let list = chardevs(&mut c);
    assert!(list.contains(&entry("c1", &format!("disconnected:unix:{p},server=on"), false)), "{list}");
    let mut peer = UnixStream::connect(&p).unwrap();
    wait_until("connected filename", || chardevs(&mut c).contains(&entry("c1", &format!("unix:{p},server=on"), false)));
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"mon"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Chardev 'mon' is busy"}}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c1"}}"#), r#"{"return": {}}"#);
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut b = [0u8; 8];
    use std::io::Read;
    assert!(matches!(peer.read(&mut b), Ok(0) | Err(_)));
    assert!(!std::path::Path::new(&p).exists());
    assert_eq!(
        c.cmd(r#"{"execute":"chardev-remove","arguments":{"id":"c1"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Chardev 'c1' not found"}}"#
    );
    // client mode with wait is QEMU's error; server with wait is refused at run time
    let q = dir.str("nothere.sock");
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"c2","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{q}"}}}},"server":false,"wait":false}}}}}}}}"#
    );
    assert_eq!(
        c.cmd(&add),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'c2': 'wait' option is incompatible with socket in client connect mode"}}"#
    );
    let add = format!(
        r#"{{"execute":"chardev-add","arguments":{{"id":"c3","backend":{{"type":"socket","data":{{"addr":{{"type":"unix","data":{{"path":"{q}"}}}},"server":false}}}}}}}}"#
    );
    assert_eq!(
        c.cmd(&add),
        format!(
            r#"{{"error": {{"class": "GenericError", "desc": "Failed to add chardev 'c3': Failed to connect to '{q}': No such file or directory"}}}}"#
        )
    );
    let inet = r#"{"execute":"chardev-add","arguments":{"id":"t1","backend":{"type":"socket","data":{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"0"}}}}}}"#;
    assert_eq!(c.cmd(inet), r#"{"return": {}}"#);
    assert!(chardevs(&mut c).contains("disconnected:tcp:127.0.0.1:"));
    let tls = r#"{"execute":"chardev-add","arguments":{"id":"t2","backend":{"type":"socket","data":{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"0"}},"tls-creds":"tls0"}}}}"#;
    assert_eq!(
        c.cmd(tls),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 't2': No TLS credentials with id 'tls0'"}}"#
    );
    let rb = r#"{"execute":"chardev-add","arguments":{"id":"rb2","backend":{"type":"ringbuf","data":{"size":15}}}}"#;
    assert_eq!(
        c.cmd(rb),
        r#"{"error": {"class": "GenericError", "desc": "Failed to add chardev 'rb2': size of ringbuf chardev must be power of two"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"query-chardev-backends"}"#),
        r#"{"return": [{"name": "socket"}, {"name": "ringbuf"}, {"name": "memory"}, {"name": "null"}, {"name": "file"}, {"name": "pipe"}, {"name": "stdio"}]}"#
    );
}

#[test]
fn ringbuf_backend() {
    let (_f, mut c) = qmp_over_pair(&["-chardev", "ringbuf,id=rb,size=8"]);
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"rb","data":"hello world!"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":100}}"#),
        r#"{"return": "o world!"}"#
    );
    assert_eq!(c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":100}}"#), r#"{"return": ""}"#);
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"rb","data":"aGk=","format":"base64"}}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":100,"format":"base64"}}"#),
        r#"{"return": "aGk="}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"rb","size":0}}"#),
        r#"{"error": {"class": "GenericError", "desc": "size must be greater than zero"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"mon","data":"x"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "mon is not a ringbuf device"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"nosuch","data":"x"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Device 'nosuch' not found"}}"#
    );
    assert_eq!(
        c.cmd(r#"{"execute":"ringbuf-write","arguments":{"device":"rb","data":"!!!","format":"base64"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Base64 data contains invalid characters"}}"#
    );
}

#[test]
fn sigterm_while_waiting_for_the_first_client_kills_like_qemu() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new("waitsig");
    let p = dir.str("w.sock");
    let arg = format!("socket,path={p},server=on,id=mon");
    let mut f = spawn(&["-chardev", &arg, "-mon", "chardev=mon,mode=control"]);
    let line = first_stderr_line(&mut f);
    assert!(line.contains("waiting for connection"), "{line}");
    f.signal(libc::SIGTERM);
    let status = f.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!std::path::Path::new(&p).exists(), "the socket fdmon created is removed");
}

#[test]
fn client_reconnect_retries_in_the_background() {
    let dir = TempDir::new("reconnect");
    let p = dir.str("later.sock");
    let arg = format!("socket,path={p},reconnect=1,id=c");
    let mut f = spawn(&["-chardev", &arg, "-mon", "chardev=c,mode=control"]);
    let line = first_stderr_line(&mut f);
    assert_eq!(
        line,
        format!("fdmon: Unable to connect character device c: Failed to connect to '{p}': No such file or directory\n")
    );
    // The server appears later: fdmon connects within its retry interval.
    let l = UnixListener::bind(&p).unwrap();
    let (s, _) = l.accept().unwrap();
    let mut c = Client::new(s);
    c.negotiate();
    assert_eq!(chardevs(&mut c), format!("{{\"return\": [{}]}}", entry("c", "unix:", true)));
    drop(c);
    // ... and again after the peer leaves, with a fresh session.
    let (s, _) = l.accept().unwrap();
    let mut c = Client::new(s);
    c.negotiate();
    assert!(f.child.try_wait().unwrap().is_none());
}
