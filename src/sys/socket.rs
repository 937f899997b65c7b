//! Sockets: Unix and TCP listeners and connections, addresses, name resolution, and
//! SCM_RIGHTS fd passing.
//!
//! Every socket it creates is `CLOEXEC` from birth; sockets it returns for the event loop are
//! nonblocking. It never sends without `MSG_NOSIGNAL`, so a vanished peer is `EPIPE`, not a
//! signal.

use super::raw;
use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

use super::{cvt, cvt_size, errno, fd, retry};

/// The address of a Unix-domain socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddr {
    /// A filesystem path (without a trailing NUL).
    Path(Vec<u8>),
    /// A Linux abstract name, without the leading NUL.
    ///
    /// As returned by [`local_addr`]/[`peer_addr`] it is every byte the kernel reports, so a
    /// name bound with `tight = false` comes back padded with NULs to 107 bytes: the name is
    /// the part before the first NUL, and the socket was bound tight iff `len() < 107`.
    Abstract(Vec<u8>),
    /// No address (a `socketpair` end, or an unbound client socket).
    Unnamed,
}

/// A socket address as reported by `getsockname`/`getpeername`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    Unix(UnixAddr),
    Inet(SocketAddr),
    /// Any other family; the number is the `AF_*` value.
    Other(i32),
}

/// Address family filter for [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// Size of `sun_path` (108 on Linux).
const SUN_PATH_LEN: usize = 108;
/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH_OFFSET: usize = mem::size_of::<libc::sa_family_t>();

fn getsockopt_int(fd: BorrowedFd, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    let mut val: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `val` and `len` are valid for writes and `len` holds the size of `val`.
    cvt(unsafe { raw::getsockopt(fd.as_raw_fd(), level, name, (&mut val as *mut libc::c_int).cast(), &mut len) })?;
    Ok(val)
}

fn setsockopt_int(fd: BorrowedFd, level: libc::c_int, name: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value points at a live c_int and the length says so.
    cvt(unsafe {
        raw::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&val as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `SO_TYPE`: `libc::SOCK_STREAM`, `SOCK_DGRAM`, ... Fails with `ENOTSOCK` for a file or pipe.
pub fn socket_type(fd: BorrowedFd) -> io::Result<i32> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)
}

/// `SO_ACCEPTCONN`: whether `listen()` was called on the socket.
pub fn is_listening(fd: BorrowedFd) -> io::Result<bool> {
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0)
}

/// `listen(2)`.
pub fn listen(fd: BorrowedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a borrowed, open fd; no memory is passed.
    cvt(unsafe { raw::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, retried on `EINTR`.
///
/// `Ok(None)` when nothing is pending (`EAGAIN`), and also when the pending connection died
/// before it was accepted (`ECONNABORTED`) or carried one of the network errors Linux passes
/// on from a TCP connection (`EPROTO`, `ENOPROTOOPT`, `ENETDOWN`, `ENONET`, `EHOSTDOWN`,
/// `EHOSTUNREACH`, `ENETUNREACH`): those concern one connection, not the listener, so the
/// caller just goes back to `poll` (which reports the listener again if more are waiting).
/// Anything else (`EMFILE`, `ENFILE`, `ENOBUFS`, `EINVAL` for a non-listening socket...) is
/// `Err`.
pub fn accept(fd: BorrowedFd) -> io::Result<Option<OwnedFd>> {
    let r = retry(|| {
        // SAFETY: a null address and length are allowed; the flags make the new fd CLOEXEC.
        cvt(unsafe {
            raw::accept4(fd.as_raw_fd(), ptr::null_mut(), ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })
    });
    match r {
        // SAFETY: accept4 just returned this fd; no one else owns it.
        Ok(new) => Ok(Some(unsafe { OwnedFd::from_raw_fd(new) })),
        Err(e) => match e.raw_os_error() {
            Some(
                libc::EAGAIN
                | libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::ENETDOWN
                | libc::ENONET
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH,
            ) => Ok(None),
            _ => Err(e),
        },
    }
}

/// A socket address in a buffer big enough for any family, plus its length.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn zeroed() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero bytes are a valid value.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    fn from_inet(addr: SocketAddr) -> RawAddr {
        let mut raw = RawAddr::zeroed();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and at least as aligned as
                // sockaddr_in, so the write stays inside `raw.storage`.
                unsafe { ptr::write(raw.as_mut_ptr().cast::<libc::sockaddr_in>(), sin) };
                raw.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain old data; all-zero bytes are a valid value.
                let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_scope_id = a.scope_id();
                // SAFETY: sockaddr_storage is larger than and at least as aligned as
                // sockaddr_in6, so the write stays inside `raw.storage`.
                unsafe { ptr::write(raw.as_mut_ptr().cast::<libc::sockaddr_in6>(), sin6) };
                raw.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    /// Builds a `sockaddr_un`. Path: up to 108 bytes, no NUL inside, not empty. Abstract: up
    /// to 107 bytes; `tight` gives the exact length, otherwise the full structure, padded with
    /// NULs (QEMU's `tight=off`). Unnamed: just the family (autobind when bound).
    fn from_unix(addr: &UnixAddr, tight: bool) -> io::Result<RawAddr> {
        let mut raw = RawAddr::zeroed();
        // SAFETY: sockaddr_un is plain old data; all-zero bytes are a valid value.
        let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let len = match addr {
            UnixAddr::Path(p) => {
                if p.is_empty() || p.len() > SUN_PATH_LEN || p.contains(&0) {
                    return Err(invalid_unix_addr(p, "path"));
                }
                for (d, s) in sun.sun_path.iter_mut().zip(p) {
                    *d = *s as libc::c_char;
                }
                SUN_PATH_OFFSET + (p.len() + 1).min(SUN_PATH_LEN)
            }
            UnixAddr::Abstract(name) => {
                if name.len() > SUN_PATH_LEN - 1 {
                    return Err(invalid_unix_addr(name, "abstract name"));
                }
                for (d, s) in sun.sun_path[1..].iter_mut().zip(name) {
                    *d = *s as libc::c_char;
                }
                if tight {
                    SUN_PATH_OFFSET + 1 + name.len()
                } else {
                    mem::size_of::<libc::sockaddr_un>()
                }
            }
            UnixAddr::Unnamed => SUN_PATH_OFFSET,
        };
        // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_un.
        unsafe { ptr::write(raw.as_mut_ptr().cast::<libc::sockaddr_un>(), sun) };
        raw.len = len as libc::socklen_t;
        Ok(raw)
    }

    fn to_sockaddr(&self) -> SockAddr {
        let family = libc::c_int::from(self.storage.ss_family);
        let len = self.len as usize;
        match family {
            libc::AF_UNIX => {
                // SAFETY: the storage is large and aligned enough for a sockaddr_un and
                // every byte of it is initialized (zeroed, then written by the kernel).
                let sun = unsafe { &*self.as_ptr().cast::<libc::sockaddr_un>() };
                let n = len.saturating_sub(SUN_PATH_OFFSET).min(SUN_PATH_LEN);
                let bytes: Vec<u8> = sun.sun_path[..n].iter().map(|&c| c as u8).collect();
                SockAddr::Unix(match bytes.first() {
                    None => UnixAddr::Unnamed,
                    Some(0) => UnixAddr::Abstract(bytes[1..].to_vec()),
                    Some(_) => {
                        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                        UnixAddr::Path(bytes[..end].to_vec())
                    }
                })
            }
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family is AF_INET and the kernel wrote a full sockaddr_in; the
                // storage is aligned for it.
                let sin = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                SockAddr::Inet(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family is AF_INET6 and the kernel wrote a full sockaddr_in6;
                // the storage is aligned for it.
                let sin6 = unsafe { &*self.as_ptr().cast::<libc::sockaddr_in6>() };
                SockAddr::Inet(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                )))
            }
            other => SockAddr::Other(other),
        }
    }
}

fn invalid_unix_addr(name: &[u8], what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid UNIX socket {what} '{}'", String::from_utf8_lossy(name)),
    )
}

/// `getsockname`: Unix (path, abstract or unnamed), IPv4/IPv6, or the bare family.
pub fn local_addr(fd: BorrowedFd) -> io::Result<SockAddr> {
    let mut raw = RawAddr::zeroed();
    // SAFETY: `raw.storage` is writable for `raw.len` bytes.
    cvt(unsafe { raw::getsockname(fd.as_raw_fd(), raw.as_mut_ptr(), &mut raw.len) })?;
    Ok(raw.to_sockaddr())
}

/// `getpeername`; `ENOTCONN` for an unconnected socket.
pub fn peer_addr(fd: BorrowedFd) -> io::Result<SockAddr> {
    let mut raw = RawAddr::zeroed();
    // SAFETY: `raw.storage` is writable for `raw.len` bytes.
    cvt(unsafe { raw::getpeername(fd.as_raw_fd(), raw.as_mut_ptr(), &mut raw.len) })?;
    Ok(raw.to_sockaddr())
}

fn new_socket(family: libc::c_int, flags: libc::c_int) -> io::Result<OwnedFd> {
    new_socket_of(family, libc::SOCK_STREAM, flags)
}

fn new_socket_of(family: libc::c_int, kind: libc::c_int, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers; SOCK_CLOEXEC is always part of the type.
    let fd = cvt(unsafe { raw::socket(family, kind | libc::SOCK_CLOEXEC | flags, 0) })?;
    // SAFETY: socket just returned this fd; no one else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: BorrowedFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` points to `addr.len` initialized bytes of a socket address.
    cvt(unsafe { raw::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len) }).map(drop)
}

/// `bind`; a filesystem socket is created mode 0600 whatever the process umask: bind runs under
/// umask 0177, restored right after (umask is process-wide; fdmon is single-threaded).
fn bind_private(fd: BorrowedFd, addr: &UnixAddr, raw: &RawAddr) -> io::Result<()> {
    if !matches!(addr, UnixAddr::Path(_)) {
        return bind(fd, raw);
    }
    // SAFETY: umask only swaps the process file-creation mask; it cannot fail.
    let old = unsafe { raw::umask(0o177) };
    let r = bind(fd, raw);
    // SAFETY: as above; this restores the caller's mask before anything else runs.
    unsafe { raw::umask(old) };
    r
}

/// Blocking connect on a blocking socket. `EINTR` is handled: a Unix connect interrupted
/// while waiting for backlog room did not happen and is simply retried; a TCP connect goes on
/// in the background, so the retry sees `EALREADY`, and we wait for it with `poll` and read
/// its result from `SO_ERROR`.
fn connect_blocking(fd: BorrowedFd, addr: &RawAddr) -> io::Result<()> {
    let mut retried = false;
    loop {
        // SAFETY: `addr` points to `addr.len` initialized bytes of a socket address.
        let r = cvt(unsafe { raw::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len) });
        match r {
            Ok(_) => return Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => retried = true,
                Some(libc::EISCONN) if retried => return Ok(()),
                Some(libc::EALREADY | libc::EINPROGRESS) if retried => return wait_connected(fd),
                _ => return Err(e),
            },
        }
    }
}

fn wait_connected(fd: BorrowedFd) -> io::Result<()> {
    let mut fds = [super::poll::PollFd::new(fd.as_raw_fd(), super::poll::OUT)];
    loop {
        if super::poll::poll(&mut fds, None)? > 0 {
            break;
        }
    }
    take_error(fd)
}

/// Creates a listening Unix stream socket (`CLOEXEC`, `O_NONBLOCK`) bound to `addr`.
///
/// `tight` matters only for `Abstract`: the address length is exactly the name (`true`), or
/// the whole `sockaddr_un` with the name padded by NULs (`false`, QEMU's `tight=off`).
/// `Unnamed` binds to a kernel-chosen abstract name (autobind). A path that is empty, longer
/// than 108 bytes, or contains a NUL, or an abstract name over 107 bytes, is `Err` with kind
/// `InvalidInput`. An existing file at the path is not removed (`EADDRINUSE`): unlinking a
/// stale socket is the caller's decision.
///
/// A `Path` socket file is created with mode 0600 whatever the process umask: `bind` runs
/// under umask 0177, restored right after (umask is process-wide; fdmon is single-threaded).
/// `fchmod` would not do: on Linux it does not change a socket's inode, and a later `chmod`
/// would leave a window in which others could connect.
pub fn unix_listen(addr: &UnixAddr, tight: bool, backlog: i32) -> io::Result<OwnedFd> {
    let raw = RawAddr::from_unix(addr, tight)?;
    let sock = new_socket(libc::AF_UNIX, libc::SOCK_NONBLOCK)?;
    bind_private(sock.as_fd(), addr, &raw)?;
    listen(sock.as_fd(), backlog)?;
    Ok(sock)
}

/// Connects a Unix stream socket to `addr` (blocking, `EINTR` handled; `tight` as in
/// [`unix_listen`]), then returns it `O_NONBLOCK` and `CLOEXEC`. `Unnamed` is `InvalidInput`.
pub fn unix_connect(addr: &UnixAddr, tight: bool) -> io::Result<OwnedFd> {
    if *addr == UnixAddr::Unnamed {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot connect to an unnamed UNIX socket"));
    }
    let raw = RawAddr::from_unix(addr, tight)?;
    let sock = new_socket(libc::AF_UNIX, 0)?;
    connect_blocking(sock.as_fd(), &raw)?;
    fd::set_nonblocking(sock.as_fd(), true)?;
    Ok(sock)
}

/// Where a non-blocking connect should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTo {
    Unix(UnixAddr, bool),
    Tcp(SocketAddr),
}

/// Starts a non-blocking connect (`CLOEXEC`, `O_NONBLOCK`). `Ok((fd, true))`: connected at once;
/// `Ok((fd, false))`: in progress, poll the fd for writability and then call [`take_error`].
pub fn connect_start(to: &ConnectTo) -> io::Result<(OwnedFd, bool)> {
    let (family, raw) = match to {
        ConnectTo::Unix(addr, tight) => {
            if *addr == UnixAddr::Unnamed {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot connect to an unnamed UNIX socket"));
            }
            (libc::AF_UNIX, RawAddr::from_unix(addr, *tight)?)
        }
        ConnectTo::Tcp(a) => (inet_family(a), RawAddr::from_inet(*a)),
    };
    let sock = new_socket(family, libc::SOCK_NONBLOCK)?;
    loop {
        // SAFETY: `raw` points to `raw.len` initialized bytes of a socket address.
        let r = cvt(unsafe { raw::connect(sock.as_raw_fd(), raw.as_ptr(), raw.len) });
        match r {
            Ok(_) => return Ok((sock, true)),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINPROGRESS) => return Ok((sock, false)),
                // A full unix backlog on a non-blocking connect: treat as refused for now.
                _ => return Err(e),
            },
        }
    }
}

/// The pending error of a socket (`SO_ERROR`), e.g. the outcome of a non-blocking connect.
pub fn take_error(fd: BorrowedFd) -> io::Result<()> {
    match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)? {
        0 => Ok(()),
        code => Err(errno(code)),
    }
}

fn inet_family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Creates a listening TCP socket (`CLOEXEC`, `O_NONBLOCK`, `SO_REUSEADDR`) bound to `addr`.
/// For an IPv6 address, `v6only: Some(b)` sets `IPV6_V6ONLY` to `b`; `None` keeps the system
/// default. It is ignored for IPv4.
pub fn tcp_listen(addr: SocketAddr, v6only: Option<bool>, backlog: i32) -> io::Result<OwnedFd> {
    let sock = new_socket(inet_family(&addr), libc::SOCK_NONBLOCK)?;
    setsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if let (SocketAddr::V6(_), Some(only)) = (addr, v6only) {
        setsockopt_int(sock.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, libc::c_int::from(only))?;
    }
    bind(sock.as_fd(), &RawAddr::from_inet(addr))?;
    listen(sock.as_fd(), backlog)?;
    Ok(sock)
}

/// Connects a TCP socket (blocking, `EINTR` handled), then returns it `O_NONBLOCK`, `CLOEXEC`.
pub fn tcp_connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    let sock = new_socket(inet_family(&addr), 0)?;
    connect_blocking(sock.as_fd(), &RawAddr::from_inet(addr))?;
    fd::set_nonblocking(sock.as_fd(), true)?;
    Ok(sock)
}

/// `TCP_NODELAY`.
pub fn set_nodelay(fd: BorrowedFd, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, libc::c_int::from(on))
}

/// Frees a getaddrinfo list when dropped.
struct AddrInfoList(*mut libc::addrinfo);

impl Drop for AddrInfoList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a successful getaddrinfo and is freed only here.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

fn gai_error_text(code: libc::c_int) -> String {
    if code == libc::EAI_SYSTEM {
        return io::Error::last_os_error().to_string();
    }
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string (or null).
    let p = unsafe { libc::gai_strerror(code) };
    if p.is_null() {
        return format!("getaddrinfo error {code}");
    }
    // SAFETY: `p` is non-null and points to a static NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `getaddrinfo` for stream sockets. `host: None` means the wildcard address when `passive`,
/// loopback otherwise. `passive` sets `AI_PASSIVE` (for listening); connecting lookups use
/// `AI_ADDRCONFIG` (as QEMU does). Addresses keep getaddrinfo's order; duplicates are dropped.
///
/// `Err` is the `gai_strerror` text, e.g. "Servname not supported for ai_socktype" or
/// "Name or service not known" (for `EAI_SYSTEM`, the errno text).
pub fn resolve(host: Option<&str>, service: &str, family: Family, passive: bool) -> Result<Vec<SocketAddr>, String> {
    if cfg!(target_feature = "crt-static") {
        return resolve_builtin(host, service, family, passive);
    }
    resolve_getaddrinfo(host, service, family, passive)
}

/// The resolver of a static build: glibc's getaddrinfo would load NSS modules at run time
/// (absent in an initramfs or an empty chroot), so a static fdmon resolves by itself what
/// needs no configuration: numeric addresses, `localhost` (127.0.0.1, then ::1), no host
/// (the wildcard when `passive`, loopback otherwise) and numeric ports. Any other host or
/// service name is an error that says so.
pub fn resolve_builtin(
    host: Option<&str>,
    service: &str,
    family: Family,
    passive: bool,
) -> Result<Vec<SocketAddr>, String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let port: u16 = match service.parse() {
        Ok(p) => p,
        Err(_) => {
            return Err(format!(
                "Servname not supported for ai_socktype (a static fdmon knows only port numbers: '{service}')"
            ))
        }
    };
    let v4 = !matches!(family, Family::V6);
    let v6 = !matches!(family, Family::V4);
    let mut ips: Vec<IpAddr> = Vec::new();
    match host {
        None | Some("localhost") if !(passive && host.is_none()) => {
            if v4 {
                ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
            if v6 {
                ips.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
        }
        None => {
            if v4 {
                ips.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            }
            if v6 {
                ips.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            }
        }
        Some(h) => {
            let bare = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h);
            match bare.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V4(_)) if v4 => ips.push(ip),
                Ok(ip @ IpAddr::V6(_)) if v6 => ips.push(ip),
                Ok(_) => return Err("Address family for hostname not supported".into()),
                Err(_) => {
                    return Err(format!(
                    "Name or service not known (a static fdmon resolves only numeric addresses and localhost: '{h}')"
                ))
                }
            }
        }
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

fn resolve_getaddrinfo(
    host: Option<&str>,
    service: &str,
    family: Family,
    passive: bool,
) -> Result<Vec<SocketAddr>, String> {
    let host_c = match host.map(CString::new).transpose() {
        Ok(h) => h,
        Err(_) => return Err(format!("invalid host name '{}'", host.unwrap_or(""))),
    };
    let service_c = match CString::new(service) {
        Ok(s) => s,
        Err(_) => return Err(format!("invalid service '{service}'")),
    };
    // SAFETY: addrinfo is plain old data; all-zero (null pointers) is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = match family {
        Family::Any => libc::AF_UNSPEC,
        Family::V4 => libc::AF_INET,
        Family::V6 => libc::AF_INET6,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = if passive { libc::AI_PASSIVE } else { libc::AI_ADDRCONFIG };
    let mut res: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and outlive the call (or the host is null),
    // `hints` is initialized, and `res` is a valid out-pointer.
    let rc = unsafe {
        libc::getaddrinfo(host_c.as_ref().map_or(ptr::null(), |h| h.as_ptr()), service_c.as_ptr(), &hints, &mut res)
    };
    if rc != 0 {
        return Err(gai_error_text(rc));
    }
    let list = AddrInfoList(res);
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut cur = list.0;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getaddrinfo returned, alive until `list` drops.
        let ai = unsafe { &*cur };
        if !ai.ai_addr.is_null() {
            let mut raw = RawAddr::zeroed();
            let n = (ai.ai_addrlen as usize).min(mem::size_of::<libc::sockaddr_storage>());
            // SAFETY: ai_addr points to ai_addrlen readable bytes; we copy at most the size of
            // the destination storage.
            unsafe { ptr::copy_nonoverlapping(ai.ai_addr.cast::<u8>(), raw.as_mut_ptr().cast(), n) };
            raw.len = n as libc::socklen_t;
            if let SockAddr::Inet(a) = raw.to_sockaddr() {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        cur = ai.ai_next;
    }
    Ok(out)
}

/// Most fds one [`recv_with_fds`] can take in (QEMU 7.2's `TCP_MAX_FDS`); more are
/// `MSG_CTRUNC`: the kernel installs these and closes the rest.
pub const MAX_RECV_FDS: usize = 16;

const FD_SIZE: usize = mem::size_of::<libc::c_int>();

/// `CMSG_SPACE(n * sizeof(int))`.
fn cmsg_space(nfds: usize) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    unsafe { libc::CMSG_SPACE((nfds * FD_SIZE) as libc::c_uint) as usize }
}

/// A control-message buffer aligned for `cmsghdr` (8 bytes).
fn cmsg_buffer(nfds: usize) -> Vec<u64> {
    vec![0u64; cmsg_space(nfds).div_ceil(mem::size_of::<u64>())]
}

/// Size in `u64` words of the control buffer [`recvmsg_dontwait`] keeps on the stack: room for
/// `MAX_RECV_FDS` fds plus credentials (112 bytes on Linux x86-64 and aarch64), with margin.
const CONTROL_WORDS: usize = 32;

/// A control message of [`recvmsg_dontwait`]: its level, type and payload.
struct Cmsg<'a> {
    level: libc::c_int,
    kind: libc::c_int,
    data: &'a [u8],
}

/// `recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC | flags)` into the `len` bytes at `ptr`, with a
/// control buffer of `control_bytes` (at most `CONTROL_WORDS` words, on the stack: no
/// allocation per call), retried on `EINTR`; `each` sees every control message. Returns the
/// byte count and the message flags.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the whole call.
unsafe fn recvmsg_dontwait(
    fd: BorrowedFd,
    ptr: *mut u8,
    len: usize,
    control_bytes: usize,
    flags: libc::c_int,
    mut each: impl FnMut(Cmsg<'_>),
) -> io::Result<(usize, libc::c_int)> {
    // Not zeroed: the kernel writes the control messages and `msg_controllen` says how much;
    // only that part is read below.
    let mut control = [mem::MaybeUninit::<u64>::uninit(); CONTROL_WORDS];
    if control_bytes > mem::size_of_val(&control) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "control buffer too large"));
    }
    let mut iov = libc::iovec { iov_base: ptr.cast(), iov_len: len };
    // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    let n = retry(|| {
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control_bytes as _;
        msg.msg_flags = 0;
        // SAFETY: `msg` points to one iovec covering `len` writable bytes at `ptr` (the
        // caller's contract) and to the control buffer, of at least `control_bytes` bytes;
        // all of them outlive the call.
        cvt_size(unsafe { raw::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT | flags) })
    })?;
    if msg.msg_controllen == 0 {
        return Ok((n, msg.msg_flags));
    }
    // SAFETY: CMSG_LEN is pure arithmetic.
    let header = unsafe { libc::CMSG_LEN(0) } as usize;
    // SAFETY: `msg` was filled by a successful recvmsg: msg_control/msg_controllen describe
    // the part of our control buffer the kernel initialized, which is still alive.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside the buffer.
        let hdr = unsafe { &*cmsg };
        let payload = (hdr.cmsg_len as usize).saturating_sub(header);
        // SAFETY: the payload of this cmsg starts at CMSG_DATA and holds `payload` bytes inside
        // the control buffer (the kernel wrote cmsg_len accordingly); the buffer outlives `data`.
        let data = unsafe { std::slice::from_raw_parts(libc::CMSG_DATA(cmsg), payload) };
        each(Cmsg { level: hdr.cmsg_level, kind: hdr.cmsg_type, data });
        // SAFETY: `cmsg` is a valid header of `msg`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok((n, msg.msg_flags))
}

/// Takes ownership of the fds of an `SCM_RIGHTS` payload.
fn take_rights(data: &[u8], fds: &mut Vec<OwnedFd>) {
    for chunk in data.chunks_exact(FD_SIZE) {
        let raw = libc::c_int::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if raw >= 0 {
            // SAFETY: the kernel just installed this fd for us (SCM_RIGHTS); no one else owns it.
            fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
}

/// `recvmsg(MSG_CMSG_CLOEXEC)`, retried on `EINTR`. Fds that arrive with the data (every
/// `SCM_RIGHTS` message, up to [`MAX_RECV_FDS`] in all) are appended to `fds` already owned,
/// with `CLOEXEC` set. Returns `(bytes, truncated)`; `truncated` means `MSG_CTRUNC`: the
/// sender passed more than fit, the kernel closed the excess, and the fds that did arrive are
/// still in `fds` for the caller to keep or drop. `Ok((0, false))` is end of stream. It never
/// blocks (`MSG_DONTWAIT`, whatever the socket's mode): nothing to read is `Err(WouldBlock)`.
/// The control buffer lives on the stack; `fds` grows only when fds arrive.
#[cfg(test)]
pub fn recv_with_fds(fd: BorrowedFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<(usize, bool)> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    unsafe { recv_rights(fd, buf.as_mut_ptr(), buf.len(), fds) }
}

/// [`recv_with_fds`] into the spare capacity of `buf` (appending, no zeroing, no copy): the
/// connection's input buffer is read into directly. `buf` must have spare capacity
/// (`InvalidInput` otherwise).
pub fn recv_with_fds_spare(fd: BorrowedFd, buf: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> io::Result<(usize, bool)> {
    let mut truncated = false;
    let n = super::fill_spare(buf, |ptr, len| {
        // SAFETY: `ptr` is valid for writes of `len` bytes for the whole call (fill_spare).
        let (n, t) = unsafe { recv_rights(fd, ptr, len, fds) }?;
        truncated = t;
        Ok(n)
    })?;
    Ok((n, truncated))
}

/// The `recvmsg` of [`recv_with_fds`].
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the whole call.
unsafe fn recv_rights(fd: BorrowedFd, ptr: *mut u8, len: usize, fds: &mut Vec<OwnedFd>) -> io::Result<(usize, bool)> {
    // SAFETY: forwarded from the caller's contract.
    let (n, flags) = unsafe {
        recvmsg_dontwait(fd, ptr, len, cmsg_space(MAX_RECV_FDS), 0, |c| {
            if c.level == libc::SOL_SOCKET && c.kind == libc::SCM_RIGHTS {
                take_rights(c.data, fds);
            }
        })
    }?;
    Ok((n, flags & libc::MSG_CTRUNC != 0))
}

/// `sendmsg(MSG_NOSIGNAL)` of `data` with `fds` as one `SCM_RIGHTS` message (none if `fds` is
/// empty), retried on `EINTR`. `data` must not be empty (`InvalidInput`): fds travel with a
/// byte. Returns the bytes sent; the fds go with the first byte even when the send is partial.
/// Honors the socket's own blocking mode (`WouldBlock` when nonblocking and full).
pub fn send_with_fds(fd: BorrowedFd, data: &[u8], fds: &[BorrowedFd]) -> io::Result<usize> {
    if data.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "send_with_fds needs at least one data byte"));
    }
    let mut control = if fds.is_empty() { Vec::new() } else { cmsg_buffer(fds.len()) };
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len()) as _;
        // SAFETY: msg_control points to a zeroed, aligned buffer of msg_controllen bytes;
        // CMSG_FIRSTHDR returns its start, or null if it could not hold a header.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        if cmsg.is_null() {
            return Err(io::Error::other("control buffer too small"));
        }
        // SAFETY: `cmsg` is the first header of the buffer, which has room for the header and
        // `fds.len()` ints (CMSG_SPACE); the fd numbers are copied bytewise (no alignment).
        unsafe {
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * FD_SIZE) as libc::c_uint) as _;
            let data = libc::CMSG_DATA(cmsg);
            for (i, f) in fds.iter().enumerate() {
                ptr::write_unaligned(data.add(i * FD_SIZE).cast::<libc::c_int>(), f.as_raw_fd());
            }
        }
    }
    retry(|| {
        // SAFETY: `msg` describes `data` (read only by sendmsg despite the *mut iov_base) and
        // the control buffer; both outlive the call.
        cvt_size(unsafe { raw::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
    })
}

/// `recv(MSG_DONTWAIT)`, retried on `EINTR`: never blocks, whatever the socket's own mode (an
/// inherited socket stays blocking for its other owners). On something that is not a socket
/// (`ENOTSOCK`) it falls back to `read()`, which the caller must only do after `POLLIN` on a
/// blocking fd.
#[cfg(test)]
pub fn recv(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    let r = retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
        cvt_size(unsafe { raw::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) })
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => super::fd::read(fd, buf),
        other => other,
    }
}

/// [`recv`] into the spare capacity of `buf` (appending, no zeroing, no copy), with the same
/// `read()` fallback for what is not a socket. `buf` must have spare capacity (`InvalidInput`
/// otherwise).
pub fn recv_spare(fd: BorrowedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let r = super::fill_spare(buf, |ptr, len| {
        retry(|| {
            // SAFETY: `ptr` is valid for writes of `len` bytes for the whole call (fill_spare).
            cvt_size(unsafe { raw::recv(fd.as_raw_fd(), ptr.cast(), len, libc::MSG_DONTWAIT) })
        })
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => fd::read_spare(fd, buf),
        other => other,
    }
}

/// `send(MSG_NOSIGNAL | MSG_DONTWAIT)`, retried on `EINTR`: never blocks, never raises
/// SIGPIPE. On something that is not a socket (`ENOTSOCK`: a pipe, a file, a tty) it falls
/// back to `write()`, which then follows that fd's own `O_NONBLOCK` flag.
pub fn send(fd: BorrowedFd, data: &[u8]) -> io::Result<usize> {
    let r = retry(|| {
        // SAFETY: `data` is valid for reads of `data.len()` bytes for the whole call.
        cvt_size(unsafe {
            // sendto without an address is send (one imported symbol fewer).
            raw::sendto(
                fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                ptr::null(),
                0,
            )
        })
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => super::fd::write(fd, data),
        other => other,
    }
}

/// Creates a Unix datagram socket (`CLOEXEC`, `O_NONBLOCK`) bound to `addr` (`tight` as in
/// [`unix_listen`]; a `Path` socket file is mode 0600 whatever the umask), with `SO_PASSCRED`
/// on, so that every datagram it receives carries the sender's pid, uid and gid (see
/// [`recv_datagram`]).
pub fn unix_datagram_bind(addr: &UnixAddr, tight: bool) -> io::Result<OwnedFd> {
    let raw = RawAddr::from_unix(addr, tight)?;
    let sock = new_socket_of(libc::AF_UNIX, libc::SOCK_DGRAM, libc::SOCK_NONBLOCK)?;
    setsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_PASSCRED, 1)?;
    bind_private(sock.as_fd(), addr, &raw)?;
    Ok(sock)
}

/// Sends one datagram to the Unix datagram socket at `addr` (tight abstract names), from a new
/// unbound socket; never blocks (`MSG_DONTWAIT`), never raises SIGPIPE.
pub fn unix_datagram_send(addr: &UnixAddr, data: &[u8]) -> io::Result<usize> {
    let raw = RawAddr::from_unix(addr, true)?;
    // SAFETY: socket takes no pointers; SOCK_CLOEXEC is part of the type.
    let fd = cvt(unsafe { raw::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket just returned this fd; no one else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    retry(|| {
        // SAFETY: `data` is valid for `data.len()` bytes and `raw` for `raw.len` bytes.
        cvt_size(unsafe {
            raw::sendto(
                sock.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                raw.as_ptr(),
                raw.len,
            )
        })
    })
}

/// The sender of a datagram, from `SCM_CREDENTIALS` (the kernel checks these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub pid: i32,
    pub uid: u32,
}

/// One datagram read by [`recv_datagram`].
#[derive(Debug)]
pub struct Datagram {
    /// Bytes stored in the caller's buffer (at most its length).
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`): the rest is gone.
    pub truncated: bool,
    /// Fds that came with it (up to [`MAX_RECV_FDS`]; the kernel closes the rest,
    /// `MSG_CTRUNC`), owned and `CLOEXEC`: dropping them closes them.
    pub fds: Vec<OwnedFd>,
    /// The sender, when the socket has `SO_PASSCRED` and the credentials fit.
    pub creds: Option<Creds>,
}

/// `recvmsg(MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC)` of one datagram, retried on `EINTR`.
/// Nothing queued is `Err(WouldBlock)`. Bounded: at most `buf.len()` bytes and
/// [`MAX_RECV_FDS`] fds are kept, whatever the sender sent.
pub fn recv_datagram(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<Datagram> {
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let cred_space = unsafe { libc::CMSG_SPACE(mem::size_of::<libc::ucred>() as libc::c_uint) } as usize;
    let mut fds = Vec::new();
    let mut creds = None;
    let control = cmsg_space(MAX_RECV_FDS) + cred_space;
    let each = |c: Cmsg<'_>| {
        if c.level != libc::SOL_SOCKET {
            return;
        }
        if c.kind == libc::SCM_RIGHTS {
            take_rights(c.data, &mut fds);
        } else if c.kind == libc::SCM_CREDENTIALS && c.data.len() >= mem::size_of::<libc::ucred>() {
            // SAFETY: the payload holds a whole ucred (checked above); read_unaligned.
            let u = unsafe { ptr::read_unaligned(c.data.as_ptr().cast::<libc::ucred>()) };
            creds = Some(Creds { pid: u.pid, uid: u.uid });
        }
    };
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let (n, flags) = unsafe { recvmsg_dontwait(fd, buf.as_mut_ptr(), buf.len(), control, libc::MSG_TRUNC, each) }?;
    Ok(Datagram { len: n.min(buf.len()), truncated: flags & libc::MSG_TRUNC != 0, fds, creds })
}

/// A connected pair of Unix stream sockets, `CLOEXEC`, blocking.
#[cfg(test)]
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    cvt(unsafe { raw::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded; both fds are new and owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `shutdown(SHUT_WR)`: the peer reads end of stream; we can still read.
#[cfg(test)]
pub fn shutdown_write(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: shutdown on a borrowed, open fd; no memory is passed.
    cvt(unsafe { raw::shutdown(fd.as_raw_fd(), libc::SHUT_WR) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::poll::{self, PollFd};
    use crate::sys::testutil::{unique, TempPath};
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    fn ident(fd: BorrowedFd) -> (u64, u64) {
        let f = std::fs::File::from(fd.try_clone_to_owned().unwrap());
        let m = f.metadata().unwrap();
        (m.dev(), m.ino())
    }

    /// Waits (5 s at most) until `fd` is readable. A signal from another test may end a
    /// poll early with Ok(0), so poll again until the deadline.
    fn wait_readable(fd: BorrowedFd) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut fds = [PollFd::new(fd.as_raw_fd(), poll::IN)];
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if poll::poll(&mut fds, Some(left)).unwrap() == 1 {
                return;
            }
            assert!(!left.is_zero(), "timed out");
        }
    }

    #[test]
    fn pass_one_fd() {
        let (a, b) = socketpair().unwrap();
        let (r, w) = fd::pipe(false).unwrap();
        assert_eq!(send_with_fds(a.as_fd(), b"x", &[w.as_fd()]).unwrap(), 1);
        drop(w);
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let (n, trunc) = recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap();
        assert_eq!((n, trunc, &buf[..1]), (1, false, &b"x"[..]));
        assert_eq!(got.len(), 1);
        assert!(fd::is_cloexec(got[0].as_fd()).unwrap());
        fd::write(got[0].as_fd(), b"via").unwrap();
        drop(got);
        let mut out = [0u8; 8];
        assert_eq!(fd::read(r.as_fd(), &mut out).unwrap(), 3);
        assert_eq!(&out[..3], b"via");
        // All write ends are closed now.
        assert_eq!(fd::read(r.as_fd(), &mut out).unwrap(), 0);
    }

    #[test]
    fn pass_three_fds_in_one_message() {
        let (a, b) = socketpair().unwrap();
        let (r1, w1) = fd::pipe(false).unwrap();
        let (r2, _w2) = fd::pipe(false).unwrap();
        let n = fd::open_devnull().unwrap();
        let sent = [w1.as_fd(), r2.as_fd(), n.as_fd()];
        send_with_fds(a.as_fd(), b"abc", &sent).unwrap();
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let (len, trunc) = recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap();
        assert_eq!((len, trunc), (3, false));
        assert_eq!(got.len(), 3);
        for (g, s) in got.iter().zip(sent.iter()) {
            assert_ne!(g.as_raw_fd(), s.as_raw_fd());
            assert_eq!(ident(g.as_fd()), ident(*s));
            assert!(fd::is_cloexec(g.as_fd()).unwrap());
        }
        drop(r1);
    }

    #[test]
    fn fds_appended_and_plain_data() {
        let (a, b) = socketpair().unwrap();
        let mut got = vec![fd::open_devnull().unwrap()];
        send_with_fds(a.as_fd(), b"plain", &[]).unwrap();
        let mut buf = [0u8; 16];
        let (n, trunc) = recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap();
        assert_eq!((n, trunc, got.len()), (5, false, 1));
        let e = send_with_fds(a.as_fd(), b"", &[]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        drop(a);
        assert_eq!(recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap(), (0, false));
    }

    #[test]
    fn too_many_fds_truncates_without_leak() {
        let (a, b) = socketpair().unwrap();
        let (r, w) = fd::pipe(false).unwrap();
        let dups: Vec<OwnedFd> = (0..20).map(|_| fd::dup_cloexec(w.as_fd()).unwrap()).collect();
        let borrowed: Vec<BorrowedFd> = dups.iter().map(|d| d.as_fd()).collect();
        send_with_fds(a.as_fd(), b"z", &borrowed).unwrap();
        drop(borrowed);
        drop(dups);
        drop(w);
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        let (n, trunc) = recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap();
        assert_eq!(n, 1);
        assert!(trunc, "MSG_CTRUNC expected");
        assert!(!got.is_empty() && got.len() <= MAX_RECV_FDS, "{}", got.len());
        drop(got);
        // If any copy of the write end survived anywhere in this process (a leaked fd), the
        // read end would never see end of file.
        wait_readable(r.as_fd());
        assert_eq!(fd::read(r.as_fd(), &mut buf).unwrap(), 0);
    }

    /// A notify-style datagram socket: credentials on every datagram, at most
    /// MAX_RECV_FDS fds kept (the rest closed by the kernel), oversized datagrams flagged.
    #[test]
    fn datagram_credentials_fds_and_truncation() {
        let path = crate::sys::testutil::TempPath::new("dgram");
        let addr = UnixAddr::Path(path.0.as_os_str().as_encoded_bytes().to_vec());
        let rx = unix_datagram_bind(&addr, true).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(recv_datagram(rx.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        tx.connect(&path.0).unwrap();
        let (r, w) = fd::pipe(false).unwrap();
        let dups: Vec<OwnedFd> = (0..20).map(|_| fd::dup_cloexec(w.as_fd()).unwrap()).collect();
        let borrowed: Vec<BorrowedFd> = dups.iter().map(|d| d.as_fd()).collect();
        send_with_fds(tx.as_fd(), b"READY=1", &borrowed).unwrap();
        drop(borrowed);
        drop(dups);
        drop(w);
        let d = recv_datagram(rx.as_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..d.len], d.truncated), (&b"READY=1"[..], false));
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { raw::geteuid() };
        assert_eq!(d.creds, Some(Creds { pid: crate::sys::process::getpid(), uid }));
        assert!(!d.fds.is_empty() && d.fds.len() <= MAX_RECV_FDS, "{}", d.fds.len());
        drop(d);
        wait_readable(r.as_fd());
        assert_eq!(fd::read(r.as_fd(), &mut buf).unwrap(), 0, "a passed fd survived");
        tx.send(&[b'x'; 100]).unwrap();
        let d = recv_datagram(rx.as_fd(), &mut buf).unwrap();
        assert_eq!((d.len, d.truncated), (64, true));
        assert_eq!(recv_datagram(rx.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // Sending to it by address.
        assert_eq!(unix_datagram_send(&addr, b"hi").unwrap(), 2);
        assert_eq!(recv_datagram(rx.as_fd(), &mut buf).unwrap().len, 2);
    }

    #[test]
    fn recv_into_spare_capacity_appends_without_touching_the_rest() {
        let (a, b) = socketpair().unwrap();
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        let mut got = Vec::new();
        send_with_fds(a.as_fd(), b"0123456789", &[]).unwrap();
        // Only the spare capacity (6 bytes) is read; the rest stays queued.
        let (n, trunc) = recv_with_fds_spare(b.as_fd(), &mut buf, &mut got).unwrap();
        assert_eq!((n, trunc, got.len()), (6, false, 0));
        assert_eq!(buf, b"ab012345");
        assert_eq!(buf.capacity(), 8, "no reallocation");
        // No spare capacity left: refused, not mistaken for end of stream.
        let e = recv_with_fds_spare(b.as_fd(), &mut buf, &mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(recv_spare(b.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        buf.clear();
        assert_eq!(recv_spare(b.as_fd(), &mut buf).unwrap(), 4);
        assert_eq!(buf, b"6789");
        assert_eq!(recv_spare(b.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert_eq!(recv_with_fds_spare(b.as_fd(), &mut buf, &mut got).unwrap(), (0, false));
        assert_eq!(buf, b"6789");
        // A pipe (not a socket) is read with read().
        let (r, w) = fd::pipe(true).unwrap();
        fd::write(w.as_fd(), b"xyz").unwrap();
        assert_eq!(recv_spare(r.as_fd(), &mut buf).unwrap(), 3);
        assert_eq!(buf, b"6789xyz");
        drop(w);
        assert_eq!(recv_spare(r.as_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn recv_into_spare_capacity_takes_fds_and_reports_ctrunc() {
        let (a, b) = socketpair().unwrap();
        let (r, w) = fd::pipe(false).unwrap();
        let mut buf = Vec::with_capacity(16);
        let mut got = Vec::new();
        send_with_fds(a.as_fd(), b"fd", &[w.as_fd(), r.as_fd()]).unwrap();
        assert_eq!(recv_with_fds_spare(b.as_fd(), &mut buf, &mut got).unwrap(), (2, false));
        assert_eq!((buf.as_slice(), got.len()), (&b"fd"[..], 2));
        assert!(got.iter().all(|f| fd::is_cloexec(f.as_fd()).unwrap()));
        // More than MAX_RECV_FDS: MSG_CTRUNC, the fds that fit are owned, the rest closed.
        let dups: Vec<OwnedFd> = (0..20).map(|_| fd::dup_cloexec(w.as_fd()).unwrap()).collect();
        let borrowed: Vec<BorrowedFd> = dups.iter().map(|d| d.as_fd()).collect();
        send_with_fds(a.as_fd(), b"z", &borrowed).unwrap();
        drop(borrowed);
        drop(dups);
        drop(w);
        let mut more = Vec::new();
        assert_eq!(recv_with_fds_spare(b.as_fd(), &mut buf, &mut more).unwrap(), (1, true));
        assert_eq!(buf, b"fdz");
        assert!(!more.is_empty() && more.len() <= MAX_RECV_FDS, "{}", more.len());
        drop(more);
        drop(got);
        // No copy of the write end survived (no leak): end of file.
        let mut tmp = [0u8; 1];
        wait_readable(r.as_fd());
        assert_eq!(fd::read(r.as_fd(), &mut tmp).unwrap(), 0);
    }

    #[test]
    fn recv_would_block_on_nonblocking() {
        let (a, b) = socketpair().unwrap();
        fd::set_nonblocking(b.as_fd(), true).unwrap();
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        let e = recv_with_fds(b.as_fd(), &mut buf, &mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(a);
    }

    #[test]
    fn send_on_socket_and_pipe() {
        let (a, b) = socketpair().unwrap();
        assert_eq!(send(a.as_fd(), b"hi").unwrap(), 2);
        let mut buf = [0u8; 4];
        assert_eq!(fd::read(b.as_fd(), &mut buf).unwrap(), 2);
        let (r, w) = fd::pipe(true).unwrap();
        assert_eq!(send(w.as_fd(), b"pipe").unwrap(), 4);
        assert_eq!(fd::read(r.as_fd(), &mut buf).unwrap(), 4);
        drop(b);
        let e = send(a.as_fd(), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }

    #[test]
    fn shutdown_write_gives_eof() {
        let (a, b) = socketpair().unwrap();
        shutdown_write(a.as_fd()).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(fd::read(b.as_fd(), &mut buf).unwrap(), 0);
        fd::write(b.as_fd(), b"ok").unwrap();
        assert_eq!(fd::read(a.as_fd(), &mut buf).unwrap(), 2);
    }

    #[test]
    fn socketpair_is_unnamed_stream_not_listening() {
        let (a, b) = socketpair().unwrap();
        assert!(fd::is_cloexec(a.as_fd()).unwrap());
        assert_eq!(local_addr(a.as_fd()).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
        assert_eq!(peer_addr(b.as_fd()).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
        assert_eq!(socket_type(a.as_fd()).unwrap(), libc::SOCK_STREAM);
        assert!(!is_listening(a.as_fd()).unwrap());
    }

    #[test]
    fn socket_type_on_non_socket() {
        let n = fd::open_devnull().unwrap();
        assert_eq!(socket_type(n.as_fd()).unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
        assert_eq!(is_listening(n.as_fd()).unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
        let (r, _w) = fd::pipe(false).unwrap();
        assert_eq!(socket_type(r.as_fd()).unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
    }

    #[test]
    fn unix_path_listen_connect_accept() {
        let p = TempPath::new("sock");
        let path = p.0.as_os_str().as_encoded_bytes().to_vec();
        let addr = UnixAddr::Path(path.clone());
        let l = unix_listen(&addr, true, 8).unwrap();
        assert!(fd::is_cloexec(l.as_fd()).unwrap());
        assert!(is_listening(l.as_fd()).unwrap());
        assert_eq!(socket_type(l.as_fd()).unwrap(), libc::SOCK_STREAM);
        assert_eq!(local_addr(l.as_fd()).unwrap(), SockAddr::Unix(addr.clone()));
        assert!(accept(l.as_fd()).unwrap().is_none());
        let c = unix_connect(&addr, true).unwrap();
        assert!(fd::is_cloexec(c.as_fd()).unwrap());
        assert_eq!(peer_addr(c.as_fd()).unwrap(), SockAddr::Unix(addr.clone()));
        assert_eq!(local_addr(c.as_fd()).unwrap(), SockAddr::Unix(UnixAddr::Unnamed));
        let s = accept(l.as_fd()).unwrap().expect("pending connection");
        assert!(fd::is_cloexec(s.as_fd()).unwrap());
        // Accepted sockets are nonblocking.
        let mut buf = [0u8; 4];
        assert_eq!(fd::read(s.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // The client too.
        assert_eq!(fd::read(c.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        fd::write(c.as_fd(), b"q").unwrap();
        wait_readable(s.as_fd());
        assert_eq!(fd::read(s.as_fd(), &mut buf).unwrap(), 1);
        // Binding again to an existing path fails; nothing is unlinked for the caller.
        assert_eq!(unix_listen(&addr, true, 8).unwrap_err().raw_os_error(), Some(libc::EADDRINUSE));
    }

    #[test]
    fn unix_path_too_long_or_bad() {
        let long = UnixAddr::Path(vec![b'a'; 109]);
        assert_eq!(unix_listen(&long, true, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(unix_connect(&long, true).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let nul = UnixAddr::Path(b"/tmp/a\0b".to_vec());
        assert_eq!(unix_listen(&nul, true, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let empty = UnixAddr::Path(Vec::new());
        assert_eq!(unix_listen(&empty, true, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let abs = UnixAddr::Abstract(vec![b'a'; 108]);
        assert_eq!(unix_listen(&abs, true, 1).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(unix_connect(&UnixAddr::Unnamed, true).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        // 108 bytes (no room for a NUL) is still a valid path length; it just doesn't exist.
        let max = UnixAddr::Path(vec![b'a'; 108]);
        assert_eq!(unix_connect(&max, true).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn unix_abstract_tight() {
        let name = unique("abs-tight").into_bytes();
        let addr = UnixAddr::Abstract(name.clone());
        let l = unix_listen(&addr, true, 8).unwrap();
        assert_eq!(local_addr(l.as_fd()).unwrap(), SockAddr::Unix(addr.clone()));
        let c = unix_connect(&addr, true).unwrap();
        assert_eq!(peer_addr(c.as_fd()).unwrap(), SockAddr::Unix(addr.clone()));
        assert!(accept(l.as_fd()).unwrap().is_some());
        // A padded (tight=off) address is a different name.
        assert_eq!(unix_connect(&addr, false).unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn unix_abstract_padded() {
        let name = unique("abs-pad").into_bytes();
        let addr = UnixAddr::Abstract(name.clone());
        let l = unix_listen(&addr, false, 8).unwrap();
        let mut padded = name.clone();
        padded.resize(SUN_PATH_LEN - 1, 0);
        assert_eq!(local_addr(l.as_fd()).unwrap(), SockAddr::Unix(UnixAddr::Abstract(padded)));
        let _c = unix_connect(&addr, false).unwrap();
        assert!(accept(l.as_fd()).unwrap().is_some());
        assert_eq!(unix_connect(&addr, true).unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn unix_autobind() {
        let l = unix_listen(&UnixAddr::Unnamed, true, 1).unwrap();
        match local_addr(l.as_fd()).unwrap() {
            SockAddr::Unix(UnixAddr::Abstract(n)) => assert_eq!(n.len(), 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tcp_listen_connect_accept() {
        let l = tcp_listen("127.0.0.1:0".parse().unwrap(), None, 8).unwrap();
        assert!(is_listening(l.as_fd()).unwrap());
        assert!(fd::is_cloexec(l.as_fd()).unwrap());
        let addr = match local_addr(l.as_fd()).unwrap() {
            SockAddr::Inet(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        assert!(accept(l.as_fd()).unwrap().is_none());
        let c = tcp_connect(addr).unwrap();
        set_nodelay(c.as_fd(), true).unwrap();
        assert_eq!(peer_addr(c.as_fd()).unwrap(), SockAddr::Inet(addr));
        wait_readable(l.as_fd());
        let s = accept(l.as_fd()).unwrap().expect("pending connection");
        assert_eq!(local_addr(s.as_fd()).unwrap(), SockAddr::Inet(addr), "accepted socket's local address");
        assert_eq!(peer_addr(s.as_fd()).unwrap(), local_addr(c.as_fd()).unwrap());
    }

    #[test]
    fn tcp_v6_loopback_v6only() {
        // IPv6 may be disabled in the test environment; skip then.
        let l = match tcp_listen("[::1]:0".parse().unwrap(), Some(true), 8) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                return
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(getsockopt_int(l.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap(), 1);
        let addr = match local_addr(l.as_fd()).unwrap() {
            SockAddr::Inet(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(addr.ip(), Ipv6Addr::LOCALHOST);
        let _c = tcp_connect(addr).unwrap();
        wait_readable(l.as_fd());
        assert!(accept(l.as_fd()).unwrap().is_some());
    }

    #[test]
    fn tcp_connect_refused() {
        // Take a free port, then close the listener.
        let l = tcp_listen("127.0.0.1:0".parse().unwrap(), None, 1).unwrap();
        let addr = match local_addr(l.as_fd()).unwrap() {
            SockAddr::Inet(a) => a,
            other => panic!("{other:?}"),
        };
        drop(l);
        assert_eq!(tcp_connect(addr).unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn resolve_localhost_and_wildcard() {
        let addrs = resolve(Some("localhost"), "0", Family::Any, false).unwrap();
        assert!(!addrs.is_empty());
        for a in &addrs {
            assert!(a.ip().is_loopback(), "{a}");
            assert_eq!(a.port(), 0);
        }
        let v4 = resolve(Some("127.0.0.1"), "4444", Family::V4, false).unwrap();
        assert_eq!(v4, vec!["127.0.0.1:4444".parse::<SocketAddr>().unwrap()]);
        let any = resolve(None, "5555", Family::V4, true).unwrap();
        assert_eq!(any, vec!["0.0.0.0:5555".parse::<SocketAddr>().unwrap()]);
        let any = resolve(None, "5555", Family::Any, true).unwrap();
        assert!(any.iter().all(|a| a.ip().is_unspecified() && a.port() == 5555));
        let lo = resolve(None, "80", Family::Any, false).unwrap();
        assert!(lo.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn resolve_errors_are_gai_text() {
        assert_eq!(
            resolve(Some("localhost"), "no-such-service-xyz", Family::Any, false).unwrap_err(),
            "Servname not supported for ai_socktype"
        );
        assert!(resolve(Some("a\0b"), "0", Family::Any, false).is_err());
        assert!(resolve(Some("localhost"), "0\0", Family::Any, false).is_err());
        // "1.2.3.4" is no IPv6 address: an "Address family ..." / "Name or service" error.
        assert!(resolve(Some("1.2.3.4"), "0", Family::V6, true).is_err());
    }

    #[test]
    fn builtin_resolver_of_static_builds() {
        let r = |h: Option<&str>, s: &str, f: Family, p: bool| {
            resolve_builtin(h, s, f, p).map(|v| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "))
        };
        assert_eq!(r(Some("localhost"), "4444", Family::Any, true).unwrap(), "127.0.0.1:4444 [::1]:4444");
        assert_eq!(r(Some("localhost"), "1", Family::V6, false).unwrap(), "[::1]:1");
        assert_eq!(r(None, "5", Family::Any, true).unwrap(), "0.0.0.0:5 [::]:5");
        assert_eq!(r(None, "5", Family::V4, false).unwrap(), "127.0.0.1:5");
        assert_eq!(r(Some("10.1.2.3"), "80", Family::Any, false).unwrap(), "10.1.2.3:80");
        assert_eq!(r(Some("::1"), "80", Family::Any, false).unwrap(), "[::1]:80");
        assert_eq!(r(Some("[fe80::1]"), "80", Family::V6, false).unwrap(), "[fe80::1]:80");
        assert!(r(Some("1.2.3.4"), "0", Family::V6, true).is_err());
        assert!(r(Some("example.org"), "80", Family::Any, false).unwrap_err().contains("'example.org'"));
        assert!(r(Some("localhost"), "http", Family::Any, false).unwrap_err().contains("'http'"));
    }
}
