//! `make static`: a fully static fdmon that serves QMP and listens on `host=localhost` in an
//! empty chroot (no /lib, no /etc, no /dev), and whose built-in client works there too.
mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

/// The stripped static binary may be at most this large.
const MAX_STATIC_SIZE: u64 = 1536 * 1024;

fn build_static() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("make").arg("-s").arg("static").current_dir(root).output().expect("run make static");
    assert!(out.status.success(), "make static failed:\n{}", String::from_utf8_lossy(&out.stderr));
    root.join("target/static/fdmon")
}

/// The ELF program header types of `bin` (64-bit little endian only).
fn program_headers(bin: &Path) -> Vec<u32> {
    let b = std::fs::read(bin).unwrap();
    assert_eq!(&b[..6], b"\x7fELF\x02\x01", "not a 64-bit little-endian ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).map(|i| u32::from_le_bytes(b[phoff + i * phentsize..][..4].try_into().unwrap())).collect()
}

/// Starts `/fdmon ARGS` chrooted into `root`; `keep` stays open at its own number.
/// Err when this machine cannot chroot (not root).
fn spawn_chrooted(root: &Path, args: &[&str], keep: Option<&OwnedFd>) -> std::io::Result<Child> {
    let dir = CString::new(root.to_str().unwrap()).unwrap();
    let keep_fd = keep.map_or(-1, |f| f.as_raw_fd());
    let mut cmd = Command::new("/fdmon");
    cmd.args(args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls on data prepared before fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::chroot(dir.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if keep_fd >= 0 && libc::fcntl(keep_fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn static_binary_serves_qmp_in_an_empty_chroot() {
    let bin = build_static();
    let headers = program_headers(&bin);
    assert!(!headers.contains(&3), "static fdmon has a PT_INTERP: it is dynamically linked");
    assert!(!headers.contains(&2), "static fdmon has a PT_DYNAMIC: it needs a loader");
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(size <= MAX_STATIC_SIZE, "static fdmon is {size} bytes, more than {MAX_STATIC_SIZE}");

    let root = TempDir::new("static-chroot");
    copy_executable(&bin.to_string_lossy(), &root.str("fdmon"));
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs = OwnedFd::from(theirs);
    let fdarg = format!("socket,fd={},id=mon", theirs.as_raw_fd());
    let args = [
        "-chardev",
        &fdarg,
        "-mon",
        "chardev=mon,mode=control",
        "-chardev",
        "socket,id=tcp,host=localhost,port=0,server=on,wait=off",
        "-mon",
        "chardev=tcp,mode=control",
    ];
    let child = match spawn_chrooted(&root.0, &args, Some(&theirs)) {
        Ok(c) => c,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM)) => {
            eprintln!("SKIP: chroot is impossible here ({e}); the static binary was built and checked only");
            return;
        }
        Err(e) => panic!("cannot start the static fdmon in a chroot: {e}"),
    };
    drop(theirs);
    let mut guard = Fdmon { child };
    let mut c = Client::new(ours);
    c.negotiate();
    assert!(c.cmd(r#"{"execute":"query-status"}"#).contains("\"status\": \"running\""));

    // The TCP monitor listens on localhost, resolved without NSS.
    let chardevs = c.cmd(r#"{"execute":"query-chardev"}"#);
    let at = chardevs.find("disconnected:tcp:127.0.0.1:").expect(&chardevs) + "disconnected:tcp:127.0.0.1:".len();
    let port: u16 = chardevs[at..].split(',').next().unwrap().parse().unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    assert!(line(&mut r).starts_with("{\"QMP\": {\"version\""));
    drop(r);
    drop(tcp);

    // The static client, in the same empty root, resolves localhost by itself.
    let addr = format!("tcp:localhost:{port}");
    let client = spawn_chrooted(&root.0, &["-client", &addr, "query-status"], None).unwrap();
    let out = client.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("{\"status\": \"running\""));

    c.send(r#"{"execute":"quit"}"#);
    let status = guard.wait();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    guard.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(err, "");
    let _ = std::io::stdout().flush();
}
