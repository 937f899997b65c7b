//! The benchmark floor: the least work a program serving fdmon's wire role can do. It writes
//! fdmon's QMP greeting on every connection and answers every input line with
//! `{"return": {}}\r\n`; nothing is parsed.
//!
//! `floor [--threads] [--path PATH] [FD...]` serves the inherited fds (default: 3). Each fd is a
//! connected socket (served at once) or a listener (accept, serve one client at a time, like
//! fdmon). `--path PATH` creates, binds and listens on a unix socket itself (the `path=` race
//! the fd-passing figures compare with). Single-threaded, one blocking `poll()` loop, unless
//! `--threads`: then one thread per fd with blocking reads (the thread-per-monitor floor).
//! A connected socket that hangs up is closed; when no fd is left the floor exits.
//!
//! Started like fdmon: C's `main` in place of std's runtime start-up (see fdmon's
//! `src/sys/entry.rs`), stdio sanitized the same way, linked with the same flags (the
//! checkout's `.cargo/config.toml`, the same release profile).
#![no_main]

use std::os::raw::c_int;

const GREETING: &[u8] =
    b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, \"package\": \"fdmon\"}, \"capabilities\": [\"oob\"]}}\r\n";
const REPLY: &[u8] = b"{\"return\": {}}\r\n";
const MAX_FDS: usize = 4096;

fn write_all(fd: c_int, mut b: &[u8]) -> bool {
    while !b.is_empty() {
        // SAFETY: b is a valid readable slice.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        b = &b[n as usize..];
    }
    true
}

fn is_listener(fd: c_int) -> bool {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for writes.
    let r =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, (&mut v as *mut c_int).cast(), &mut len) };
    r == 0 && v != 0
}

fn accept(fd: c_int) -> c_int {
    // SAFETY: null address arguments are allowed.
    unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) }
}

/// Reads what is there and answers each newline; false on hang-up or error.
fn serve_some(fd: c_int, buf: &mut [u8]) -> bool {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
    }
    let lines = buf[..n as usize].iter().filter(|&&b| b == b'\n').count();
    // All replies of one read go out in one write.
    let mut out = [0u8; 16 * 64];
    let mut left = lines;
    while left > 0 {
        let k = left.min(64);
        for i in 0..k {
            out[i * REPLY.len()..(i + 1) * REPLY.len()].copy_from_slice(REPLY);
        }
        if !write_all(fd, &out[..k * REPLY.len()]) {
            return false;
        }
        left -= k;
    }
    true
}

fn close(fd: c_int) {
    // SAFETY: fd is owned by the caller and not used afterwards.
    unsafe { libc::close(fd) };
}

/// One thread per fd: blocking reads.
fn serve_thread(fd: c_int) {
    let listener = is_listener(fd);
    let mut buf = [0u8; 4096];
    loop {
        let conn = if listener { accept(fd) } else { fd };
        if conn < 0 {
            continue;
        }
        if write_all(conn, GREETING) {
            while serve_some(conn, &mut buf) {}
        }
        close(conn);
        if !listener {
            return;
        }
    }
}

fn path_listener(path: &str) -> c_int {
    // SAFETY: plain socket calls on a zeroed sockaddr_un we fill within bounds.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let mut a: libc::sockaddr_un = std::mem::zeroed();
        a.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let p = path.as_bytes();
        if fd < 0 || p.len() >= a.sun_path.len() {
            libc::_exit(1);
        }
        for (i, &b) in p.iter().enumerate() {
            a.sun_path[i] = b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::bind(fd, (&a as *const libc::sockaddr_un).cast(), len) != 0 || libc::listen(fd, 16) != 0 {
            libc::_exit(1);
        }
        fd
    }
}

/// fds 0, 1 and 2 on /dev/null when closed, as std's start-up (and fdmon's) does.
fn sanitize_standard_fds() {
    let mut pfds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: pfds is a valid array of 3 pollfds; timeout 0 never blocks.
    if unsafe { libc::poll(pfds.as_mut_ptr(), 3, 0) } == -1 {
        return;
    }
    for p in pfds {
        // SAFETY: a constant NUL-terminated path.
        if p.revents & libc::POLLNVAL != 0 && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } == -1 {
            std::process::abort();
        }
    }
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const std::os::raw::c_char) -> c_int {
    sanitize_standard_fds();
    let args: Vec<String> = (1..usize::try_from(argc).unwrap_or(0))
        // SAFETY: libc passes argc NUL-terminated strings in argv.
        .map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_string_lossy().into_owned())
        .collect();
    serve(args);
    0
}

fn serve(args: Vec<String>) {
    let mut threads = false;
    let mut fds: Vec<c_int> = Vec::new();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = true,
            "--path" => match args.next() {
                Some(p) => fds.push(path_listener(&p)),
                None => std::process::exit(2),
            },
            n => match n.parse::<c_int>() {
                Ok(fd) if fd >= 0 && fds.len() < MAX_FDS => fds.push(fd),
                _ => std::process::exit(2),
            },
        }
    }
    if fds.is_empty() {
        fds.push(3);
    }
    // SAFETY: ignoring SIGPIPE; a hung-up peer gives EPIPE instead.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if threads {
        let handles: Vec<_> = fds.into_iter().map(|fd| std::thread::spawn(move || serve_thread(fd))).collect();
        for h in handles {
            let _ = h.join();
        }
        return;
    }
    // pollfd per source; `listen[i]` is the listener behind slot i (-1: an inherited connection).
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(fds.len());
    let mut listen: Vec<c_int> = Vec::with_capacity(fds.len());
    for &fd in &fds {
        if is_listener(fd) {
            listen.push(fd);
        } else {
            listen.push(-1);
            if !write_all(fd, GREETING) {
                continue;
            }
        }
        pfds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    }
    listen.truncate(pfds.len());
    let mut buf = [0u8; 4096];
    loop {
        if pfds.iter().all(|p| p.fd < 0) {
            return;
        }
        // SAFETY: pfds is a valid array of pfds.len() entries.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n <= 0 {
            continue;
        }
        for i in 0..pfds.len() {
            let p = pfds[i];
            if p.fd < 0 || p.revents == 0 {
                continue;
            }
            pfds[i].revents = 0;
            if listen[i] == p.fd {
                // Listening: accept one client and serve it in this slot.
                let c = accept(p.fd);
                if c >= 0 && write_all(c, GREETING) {
                    pfds[i].fd = c;
                } else if c >= 0 {
                    close(c);
                }
            } else if !serve_some(p.fd, &mut buf) {
                close(p.fd);
                pfds[i].fd = listen[i]; // back to accepting, or -1 (gone)
            }
        }
    }
}

/// The unwinder entry points std refers to, fdmon's own (so the floor needs no
/// `libgcc_s.so.1` either and is linked like fdmon).
#[cfg(panic = "abort")]
#[path = "../../../src/sys/unwind_stubs.rs"]
mod unwind_stubs;
