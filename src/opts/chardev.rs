//! Turning a `-chardev` (or HMP `chardev-add`) option string into a
//! [`ChardevSpec`], with every check QEMU 7.2 makes before it touches the OS, in QEMU's
//! order, plus fdmon's own refusals (protocol layers, TLS, mux, logfile, sockets without an
//! address). It never opens, resolves or inspects anything: `fd=` becomes an [`FdRef`] (a
//! number or a name; which fd it means is decided when the chardev is opened) and host
//! names are not looked up.

pub use crate::chardev::spec::parse_fd_number;
use crate::chardev::spec::{BackendSpec, ChardevSpec, FdRef, SocketAddrSpec, SocketSpec};
use crate::chardev::validate::{self, SocketInput, SpecError, CLI_SOCKET_RULES};

use super::kv::{is_help_option, parse_kv, KvList, OptDesc, OptError, OptType, OptsList, ParseStop};

/// The backends fdmon implements, in the order `-chardev help` lists them.
pub const BACKEND_NAMES: &[&str] = &["socket", "ringbuf", "memory", "null", "file", "pipe", "stdio"];

/// Default ring buffer size (bytes) when `size=` is absent or truncates to 0.
pub const DEFAULT_RINGBUF_SIZE: u64 = 65536;

const fn s(name: &'static str) -> OptDesc {
    OptDesc::new(name, OptType::Str)
}
const fn b(name: &'static str) -> OptDesc {
    OptDesc::new(name, OptType::Bool)
}
const fn n(name: &'static str) -> OptDesc {
    OptDesc::new(name, OptType::Number)
}

/// QEMU 7.2's key list for `-chardev` (its union over all backends). The option-parsing stage
/// checks keys and value types against it, exactly like QEMU; keys fdmon has no backend for
/// are accepted there (hidden from `help`) and rejected later by [`chardev_from_kv`].
pub const CHARDEV_OPTS: OptsList = OptsList {
    name: "chardev",
    implied_key: Some("backend"),
    merge_lists: false,
    desc: &[
        s("backend"),
        s("path"),
        s("host"),
        s("port"),
        s("fd"),
        s("localaddr").hidden(),
        s("localport").hidden(),
        n("to"),
        b("ipv4"),
        b("ipv6"),
        b("wait"),
        b("server"),
        b("delay"),
        b("nodelay"),
        n("reconnect"),
        b("telnet"),
        b("tn3270"),
        s("tls-creds"),
        s("tls-authz"),
        b("websocket"),
        n("width").hidden(),
        n("height").hidden(),
        n("cols").hidden(),
        n("rows").hidden(),
        b("mux"),
        b("signal"),
        s("name").hidden(),
        n("debug").hidden(),
        OptDesc::new("size", OptType::Size),
        s("chardev").hidden(),
        b("append"),
        s("logfile"),
        b("logappend"),
        b("mouse").hidden(),
        b("clipboard").hidden(),
        b("tight"),
        b("abstract"),
    ],
};

const COMMON_KEYS: &[&str] = &["backend", "mux", "logfile", "logappend"];
const SOCKET_KEYS: &[&str] = &[
    "path",
    "abstract",
    "tight",
    "host",
    "port",
    "to",
    "ipv4",
    "ipv6",
    "nodelay",
    "delay",
    "fd",
    "server",
    "wait",
    "reconnect",
    "telnet",
    "tn3270",
    "websocket",
    "tls-creds",
    "tls-authz",
];
const RINGBUF_KEYS: &[&str] = &["size"];
const FILE_KEYS: &[&str] = &["path", "append"];
const PIPE_KEYS: &[&str] = &["path"];
const STDIO_KEYS: &[&str] = &["signal"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Socket,
    Ringbuf,
    Memory,
    Null,
    File,
    Pipe,
    Stdio,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "socket" => Kind::Socket,
            "ringbuf" => Kind::Ringbuf,
            "memory" => Kind::Memory,
            "null" => Kind::Null,
            "file" => Kind::File,
            "pipe" => Kind::Pipe,
            "stdio" => Kind::Stdio,
            _ => return None,
        })
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Socket => SOCKET_KEYS,
            Kind::Ringbuf | Kind::Memory => RINGBUF_KEYS,
            Kind::Null => &[],
            Kind::File => FILE_KEYS,
            Kind::Pipe => PIPE_KEYS,
            Kind::Stdio => STDIO_KEYS,
        }
    }
}

/// True when the option asks for the backend list (`-chardev help`, `chardev-add ?`).
/// QEMU checks this before anything else about the option; callers must too.
pub fn wants_backend_help(kv: &KvList) -> bool {
    kv.get("backend").is_some_and(is_help_option)
}

/// What `-chardev help` prints on stdout (ends with a newline). The first line keeps
/// QEMU's trailing space.
pub fn backend_help() -> String {
    let mut out = String::from("Available chardev backend types: ");
    for name in BACKEND_NAMES {
        out.push_str("\n  ");
        out.push_str(name);
    }
    out.push('\n');
    out
}

/// Builds the chardev an option string describes, making every check QEMU 7.2 makes between
/// reading the option and opening the backend, in QEMU's order:
///
/// 1. `chardev: no id specified`, `chardev: "ID" missing backend`,
///    `'NAME' is not a valid char driver name`;
/// 2. keys the chosen backend does not use: `Invalid parameter 'KEY'` (fdmon; QEMU ignores
///    them);
/// 3. the backend's own parse checks (socket: address count, `no port given`, `delay` vs
///    `nodelay`; file/pipe: missing path);
/// 4. the open-time checks (socket: `reconnect`/TLS with `fd`, missing TLS credentials, the
///    server/client rules, both IP families off; ringbuf: power of two);
/// 5. what fdmon refuses although QEMU accepts it: `mux=on`, `logfile`, a socket with no
///    address, `telnet`/`tn3270`/`websocket`.
///
/// Key syntax and value types are the option-parsing stage ([`super::kv::KvList::validate`]
/// with [`CHARDEV_OPTS`]); run that first, as QEMU does. A `help` backend is not handled
/// here: check [`wants_backend_help`] first. The stdio `-daemonize` check belongs to the
/// caller (it depends on other options).
pub fn chardev_from_kv(kv: &KvList) -> Result<ChardevSpec, OptError> {
    let id = kv.id().ok_or(OptError::NoChardevId)?;
    let backend = kv.get("backend").ok_or_else(|| OptError::MissingBackend(id.to_string()))?;
    let kind = Kind::from_name(backend).ok_or_else(|| OptError::InvalidDriverName(backend.to_string()))?;
    for key in kv.keys() {
        if !COMMON_KEYS.contains(&key) && !kind.keys().contains(&key) {
            return Err(OptError::InvalidParameter(key.to_string()));
        }
    }
    let mux = kv.get_bool("mux")?.unwrap_or(false);
    let logfile = kv.get("logfile").is_some();
    kv.get_bool("logappend")?;

    let backend = match kind {
        Kind::Socket => return socket_from_kv(id, kv, mux, logfile),
        Kind::Ringbuf | Kind::Memory => {
            BackendSpec::Ringbuf { size: ringbuf_size(kv)?, memory_alias: kind == Kind::Memory }
        }
        Kind::Null => BackendSpec::Null,
        Kind::File => BackendSpec::File {
            path: kv.get("path").ok_or(OptError::FileNoPath)?.to_string(),
            append: kv.get_bool("append")?.unwrap_or(false),
        },
        Kind::Pipe => BackendSpec::Pipe { path: kv.get("path").ok_or(OptError::PipeNoPath)?.to_string() },
        Kind::Stdio => BackendSpec::Stdio { signal: kv.get_bool("signal")?.unwrap_or(true) },
    };
    validate::common_refusals(mux, logfile)?;
    Ok(ChardevSpec { id: id.to_string(), backend })
}

/// QEMU stores the size in a C `int` (so it wraps), uses 65536 for 0, and wants a power of 2.
fn ringbuf_size(kv: &KvList) -> Result<u64, OptError> {
    let raw = kv.get_size("size")?.unwrap_or(0);
    let as_int = raw as i32;
    let size = if as_int == 0 { DEFAULT_RINGBUF_SIZE } else { i64::from(as_int) as u64 };
    if size & (size - 1) != 0 {
        return Err(SpecError::RingbufSize.into());
    }
    Ok(size)
}

fn socket_from_kv(id: &str, kv: &KvList, mux: bool, logfile: bool) -> Result<ChardevSpec, OptError> {
    // qemu_chr_parse_socket
    let path = kv.get("path");
    let host = kv.get("host");
    let port = kv.get("port");
    let fd = kv.get("fd");
    let tight = kv.get_bool("tight")?.unwrap_or(true);
    let abstract_ = kv.get_bool("abstract")?.unwrap_or(false);
    if usize::from(path.is_some()) + usize::from(fd.is_some()) + usize::from(host.is_some()) > 1 {
        return Err(OptError::TooManyAddresses);
    }
    if host.is_some() && port.is_none() {
        return Err(OptError::NoPortGiven);
    }
    if kv.contains("delay") && kv.contains("nodelay") {
        return Err(OptError::DelayAndNodelay);
    }
    let nodelay = !kv.get_bool("delay")?.unwrap_or(true) || kv.get_bool("nodelay")?.unwrap_or(false);
    let server = kv.get_bool("server")?.unwrap_or(false);
    let telnet = kv.get_bool("telnet")?.unwrap_or(false);
    let tn3270 = kv.get_bool("tn3270")?.unwrap_or(false);
    let websocket = kv.get_bool("websocket")?.unwrap_or(false);
    let wait_given = kv.contains("wait");
    let wait = kv.get_bool("wait")?.unwrap_or(true);
    let reconnect = kv.get_number("reconnect")?.map(|r| {
        // QEMU keeps it as int64 and only reconnects when it is > 0.
        if (r as i64) <= 0 {
            0
        } else {
            r
        }
    });
    let tls_creds = kv.get("tls-creds");
    let tls_authz = kv.get("tls-authz");

    let addr = if let Some(path) = path {
        SocketAddrSpec::Unix { path: path.to_string(), abstract_, tight }
    } else if host.is_some() || port.is_some() {
        // `port=` alone: QEMU 7.2 accepts it and then listens on nothing; fdmon refuses it
        // rather than guess an interface. An explicit empty `host=` (or the legacy
        // `tcp::PORT`) means every interface, as in QEMU, and is warned about when opened.
        if host.is_none() {
            return Err(OptError::PortWithoutHost);
        }
        let to = kv.get_number("to")?.map(|t| t as u16);
        SocketAddrSpec::Inet {
            host: host.unwrap_or("").to_string(),
            port: port.unwrap_or("").to_string(),
            to,
            ipv4: kv.get_bool("ipv4")?,
            ipv6: kv.get_bool("ipv6")?,
        }
    } else {
        // QEMU: no address at all is an empty fd string.
        SocketAddrSpec::Fd(FdRef::parse(fd.unwrap_or("")))
    };
    let is_fd = matches!(addr, SocketAddrSpec::Fd(_));

    // QEMU 7.2 (observed) looks the credentials object up before any other socket check, so
    // even an fd client with `reconnect` reports the missing object first. fdmon has no
    // `-object tls-creds-*`: every id is a missing object.
    let input = SocketInput {
        is_fd,
        server,
        wait_given,
        wait: server && wait,
        reconnect_given: reconnect.is_some(),
        tls_creds,
        tls_authz: tls_authz.is_some(),
        websocket,
    };
    validate::socket_rules(&input, CLI_SOCKET_RULES)?;
    if let SocketAddrSpec::Inet { ipv4: Some(false), ipv6: Some(false), .. } = addr {
        return Err(SpecError::NoIpFamily.into());
    }

    // fdmon's own refusals.
    validate::common_refusals(mux, logfile)?;
    if matches!(&addr, SocketAddrSpec::Fd(f) if f.text().is_empty()) {
        return Err(OptError::NoSocketAddress);
    }
    for (on, what) in [(telnet, "telnet"), (tn3270, "tn3270"), (websocket, "websocket")] {
        if on {
            return Err(SpecError::Unsupported(what).into());
        }
    }

    Ok(ChardevSpec {
        id: id.to_string(),
        backend: BackendSpec::Socket(SocketSpec {
            addr,
            server,
            wait: server && wait,
            nodelay,
            reconnect,
            tls_creds: None,
            tls_authz: None,
            telnet: false,
            tn3270: false,
            websocket: false,
        }),
    })
}

/// What HMP `chardev-add ARGS` does before touching the OS.
#[derive(Debug, Clone, PartialEq)]
pub struct ChardevAddParse {
    /// Short-form boolean warnings, printed first, each as is (two lines, no prefix).
    pub warnings: Vec<String>,
    pub result: Result<ChardevAddRequest, ChardevAddError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChardevAddRequest {
    /// Open this chardev. (QEMU's remaining errors come from opening it.)
    Create(ChardevSpec),
    /// `chardev-add help`: print this text (the backend list); not an error.
    ListBackends(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChardevAddError {
    /// The option string itself is bad: print this error (no `Error: ` prefix), then
    /// `Error: Parsing chardev args failed`.
    Parse(OptError),
    /// A `help` item: QEMU prints this key list (on its own stdout), then
    /// `Error: Parsing chardev args failed`.
    ParseHelp(String),
    /// The chardev cannot be created: print `Error: ` + this error.
    Create(OptError),
}

/// HMP `chardev-add`: split, check against [`CHARDEV_OPTS`] (`id_taken` says which ids the
/// command line's `-chardev`/legacy options hold: QEMU reports those as
/// `Duplicate ID 'x' for chardev`), then [`chardev_from_kv`]. `fd=` is kept as a getfd name.
pub fn parse_chardev_add(args: &str, id_taken: &dyn Fn(&str) -> bool) -> ChardevAddParse {
    let kv = parse_kv(args, CHARDEV_OPTS.implied_key);
    let checked = kv.validate(&CHARDEV_OPTS, id_taken);
    let result = match checked.result {
        Err(ParseStop::Help) => Err(ChardevAddError::ParseHelp(CHARDEV_OPTS.help_text())),
        Err(ParseStop::Error(e)) => Err(ChardevAddError::Parse(e)),
        Ok(()) if wants_backend_help(&kv) => Ok(ChardevAddRequest::ListBackends(backend_help())),
        Ok(()) => chardev_from_kv(&kv).map(ChardevAddRequest::Create).map_err(ChardevAddError::Create),
    };
    ChardevAddParse { warnings: checked.warnings, result }
}

#[cfg(test)]
#[rustfmt::skip]
mod tests {
    use super::*;

    fn spec(arg: &str) -> ChardevSpec {
        let kv = parse_kv(arg, Some("backend"));
        assert_eq!(kv.validate(&CHARDEV_OPTS, &|_| false).result, Ok(()), "{arg}");
        chardev_from_kv(&kv).unwrap_or_else(|e| panic!("{arg}: {e}"))
    }
    fn err(arg: &str) -> String {
        let kv = parse_kv(arg, Some("backend"));
        match kv.validate(&CHARDEV_OPTS, &|_| false).result {
            Ok(()) => chardev_from_kv(&kv).expect_err(arg).to_string(),
            Err(ParseStop::Error(e)) => e.to_string(),
            Err(ParseStop::Help) => "HELP".into(),
        }
    }
    fn sock(arg: &str) -> SocketSpec {
        match spec(arg).backend {
            BackendSpec::Socket(s) => s,
            other => panic!("{other:?}"),
        }
    }
    fn unix(path: &str) -> SocketAddrSpec {
        SocketAddrSpec::Unix { path: path.into(), abstract_: false, tight: true }
    }
    fn fd(n: &str) -> SocketAddrSpec {
        SocketAddrSpec::Fd(n.into())
    }

    #[test]
    fn ids_and_backends() {
        assert_eq!(err(""), "chardev: no id specified");
        assert_eq!(err("null"), "chardev: no id specified");
        assert_eq!(err("id=x"), "chardev: \"x\" missing backend");
        assert_eq!(err("bogus,id=x"), "'bogus' is not a valid char driver name");
        assert_eq!(err(",id=x"), "'' is not a valid char driver name");
        assert_eq!(err("pty,id=x"), "'pty' is not a valid char driver name");
        assert_eq!(err("id"), "'id' is not a valid char driver name");
        assert_eq!(spec("null,id=n"), ChardevSpec { id: "n".into(), backend: BackendSpec::Null });
        assert_eq!(spec("backend=null,id=n").backend, BackendSpec::Null);
        assert_eq!(spec("null,id=n,id=m").id, "n");
        assert_eq!(spec("null,id=n,backend=ringbuf").backend, BackendSpec::Ringbuf { size: 65536, memory_alias: false });
        assert_eq!(spec("null,id=a.b").id, "a.b");
        assert_eq!(err("null,id=1abc"), "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
        assert_eq!(err("null,id=x,mux=on"), "mux=on is not supported");
        assert_eq!(spec("null,id=x,mux=off").backend, BackendSpec::Null);
        assert_eq!(err("null,id=x,logfile=/tmp/l"), "logfile is not supported");
        assert_eq!(spec("null,id=x,logappend=on").backend, BackendSpec::Null);
        assert!(wants_backend_help(&parse_kv("help", Some("backend"))));
        assert!(wants_backend_help(&parse_kv("?,id=x", Some("backend"))));
        assert!(!wants_backend_help(&parse_kv("null,id=help", Some("backend"))));
    }

    #[test]
    fn unknown_keys() {
        assert_eq!(err("null,id=x,foo=1"), "Invalid parameter 'foo'");
        assert_eq!(err("null,id=x,nofoo"), "Invalid parameter 'foo'");
        assert_eq!(err("null,id=x,path=p"), "Invalid parameter 'path'");
        assert_eq!(err("null,id=x,width=80"), "Invalid parameter 'width'");
        assert_eq!(err("ringbuf,id=x,path=p"), "Invalid parameter 'path'");
        assert_eq!(err("file,id=x,path=p,size=1"), "Invalid parameter 'size'");
        assert_eq!(err("pipe,id=x,path=p,append=on"), "Invalid parameter 'append'");
        assert_eq!(err("stdio,id=x,server=on"), "Invalid parameter 'server'");
        assert_eq!(err("socket,id=x,fd=3,size=1"), "Invalid parameter 'size'");
        assert_eq!(err("socket,id=x,fd=3,signal=on"), "Invalid parameter 'signal'");
        // The backend is chosen by the last backend= item, keys are checked against it.
        assert_eq!(err("socket,fd=3,id=x,backend=null"), "Invalid parameter 'fd'");
    }

    #[test]
    fn simple_backends() {
        assert_eq!(spec("ringbuf,id=r").backend, BackendSpec::Ringbuf { size: 65536, memory_alias: false });
        assert_eq!(spec("memory,id=r").backend, BackendSpec::Ringbuf { size: 65536, memory_alias: true });
        assert_eq!(spec("ringbuf,id=r,size=8").backend, BackendSpec::Ringbuf { size: 8, memory_alias: false });
        assert_eq!(spec("ringbuf,id=r,size=1k").backend, BackendSpec::Ringbuf { size: 1024, memory_alias: false });
        assert_eq!(spec("ringbuf,id=r,size=1").backend, BackendSpec::Ringbuf { size: 1, memory_alias: false });
        assert_eq!(spec("ringbuf,id=r,size=0").backend, BackendSpec::Ringbuf { size: 65536, memory_alias: false });
        assert_eq!(spec("ringbuf,id=r,size=4G").backend, BackendSpec::Ringbuf { size: 65536, memory_alias: false });
        assert_eq!(err("ringbuf,id=r,size=100"), "size of ringbuf chardev must be power of two");
        assert_eq!(err("memory,id=r,size=3"), "size of ringbuf chardev must be power of two");
        assert_eq!(err("ringbuf,id=r,size=2G"), "size of ringbuf chardev must be power of two");
        assert_eq!(err("ringbuf,id=r,size=x").lines().next(), Some("Parameter 'size' expects a non-negative number below 2^64"));
        assert_eq!(spec("file,id=f,path=/tmp/o").backend, BackendSpec::File { path: "/tmp/o".into(), append: false });
        assert_eq!(spec("file,id=f,path=/tmp/o,append=on").backend, BackendSpec::File { path: "/tmp/o".into(), append: true });
        assert_eq!(spec("file,id=f,path=a,,b").backend, BackendSpec::File { path: "a,b".into(), append: false });
        assert_eq!(err("file,id=f"), "chardev: file: no filename given");
        assert_eq!(err("file,id=f,append=maybe"), "Parameter 'append' expects 'on' or 'off'");
        assert_eq!(spec("pipe,id=p,path=/tmp/p").backend, BackendSpec::Pipe { path: "/tmp/p".into() });
        assert_eq!(err("pipe,id=p"), "chardev: pipe: no device path given");
        assert_eq!(spec("stdio,id=s").backend, BackendSpec::Stdio { signal: true });
        assert_eq!(spec("stdio,id=s,signal=off").backend, BackendSpec::Stdio { signal: false });
        assert_eq!(spec("stdio,id=s,nosignal").backend, BackendSpec::Stdio { signal: false });
    }

    #[test]
    fn socket_addresses() {
        let s = sock("socket,id=m,fd=3,server=on,wait=off");
        assert_eq!(s, SocketSpec { addr: fd("3"), server: true, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false });
        assert!(sock("socket,id=m,fd=3,server=on").wait);
        assert!(!sock("socket,id=m,fd=3").server);
        assert!(!sock("socket,id=m,fd=3").wait);
        assert_eq!(sock("socket,id=m,fd=myfd").addr, fd("myfd"));
        assert_eq!(sock("socket,id=m,path=/tmp/a.sock,server=on,wait=off").addr, unix("/tmp/a.sock"));
        assert_eq!(sock("socket,id=m,path=/d/c,,omma.sock,server=on,wait=off").addr, unix("/d/c,omma.sock"));
        assert_eq!(sock("socket,id=m,path=x,abstract=on,tight=off,server=on").addr, SocketAddrSpec::Unix { path: "x".into(), abstract_: true, tight: false });
        assert_eq!(sock("socket,id=m,host=127.0.0.1,port=4444,server=on,wait=off").addr, SocketAddrSpec::Inet { host: "127.0.0.1".into(), port: "4444".into(), to: None, ipv4: None, ipv6: None });
        assert_eq!(sock("socket,id=m,host=h,port=45000,to=45010,ipv4=on,ipv6=off,server=on").addr, SocketAddrSpec::Inet { host: "h".into(), port: "45000".into(), to: Some(45010), ipv4: Some(true), ipv6: Some(false) });
        assert_eq!(err("socket,id=m,port=4444,server=on"), "'port' requires 'host': use host=127.0.0.1 (or host=0.0.0.0 for every interface)");
        assert_eq!(sock("socket,id=m,host=,port=4444,server=on").addr, SocketAddrSpec::Inet { host: "".into(), port: "4444".into(), to: None, ipv4: None, ipv6: None });
        assert_eq!(sock("socket,id=m,host=h,port=abc").addr, SocketAddrSpec::Inet { host: "h".into(), port: "abc".into(), to: None, ipv4: None, ipv6: None });
        assert_eq!(sock("socket,id=m,path=p1,path=p2,server=on").addr, unix("p2"));
        assert_eq!(err("socket,id=m,path=p,host=localhost,port=4444"), "None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(err("socket,id=m,fd=3,path=p"), "None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(err("socket,id=m,fd=3,host=h,port=1"), "None or one of 'path', 'fd' or 'host' option required.");
        assert_eq!(err("socket,id=m,host=127.0.0.1"), "chardev: socket: no port given");
        assert_eq!(err("socket,id=m,host=h,port=1,to=abc"), "Parameter 'to' expects a number");
        assert_eq!(err("socket,id=m,host=h,port=1,ipv4=off,ipv6=off,server=on"), "Cannot disable IPv4 and IPv6 at same time");
        assert_eq!(err("socket,id=m,host=h,port=1,noipv4,noipv6"), "Cannot disable IPv4 and IPv6 at same time");
        assert_eq!(err("socket,id=m"), "socket chardev needs one of 'path', 'fd' or 'host'");
        assert_eq!(err("socket,id=m,server=on,wait=off"), "socket chardev needs one of 'path', 'fd' or 'host'");
        assert_eq!(err("socket,id=m,fd=,server=on"), "socket chardev needs one of 'path', 'fd' or 'host'");
        // With no address QEMU applies its fd rules (it treats it as an empty fd).
        assert_eq!(err("socket,id=m,reconnect=1"), "'reconnect' option is incompatible with 'fd' address type");
    }

    #[test]
    fn socket_flags() {
        assert!(sock("socket,id=m,fd=3,nodelay=on").nodelay);
        assert!(sock("socket,id=m,fd=3,delay=off").nodelay);
        assert!(sock("socket,id=m,fd=3,nodelay").nodelay);
        assert!(!sock("socket,id=m,fd=3,delay=on").nodelay);
        assert!(!sock("socket,id=m,fd=3").nodelay);
        assert_eq!(err("socket,id=m,fd=3,delay=off,nodelay=on"), "'delay' and 'nodelay' are mutually exclusive");
        assert_eq!(err("socket,id=m,fd=3,server=maybe"), "Parameter 'server' expects 'on' or 'off'");
        assert_eq!(err("socket,id=m,fd=3,wait="), "Parameter 'wait' expects 'on' or 'off'");
        assert_eq!(sock("socket,id=m,path=p,reconnect=1").reconnect, Some(1));
        assert_eq!(sock("socket,id=m,path=p,reconnect=0").reconnect, Some(0));
        assert_eq!(sock("socket,id=m,path=p,reconnect=-1").reconnect, Some(0));
        assert_eq!(err("socket,id=m,path=p,reconnect=x"), "Parameter 'reconnect' expects a number");
        assert_eq!(err("socket,id=m,fd=3,reconnect=1"), "'reconnect' option is incompatible with 'fd' address type");
        assert_eq!(err("socket,id=m,fd=3,server=on,reconnect=1"), "'reconnect' option is incompatible with 'fd' address type");
        assert_eq!(err("socket,id=m,path=p,server=on,reconnect=1"), "'reconnect' option is incompatible with socket in server listen mode");
        assert_eq!(err("socket,id=m,path=p,wait=off"), "'wait' option is incompatible with socket in client connect mode");
        assert_eq!(err("socket,id=m,fd=3,nowait"), "'wait' option is incompatible with socket in client connect mode");
    }

    #[test]
    fn socket_tls_and_layers() {
        assert_eq!(err("socket,id=m,fd=3,tls-creds=tls0"), "No TLS credentials with id 'tls0'");
        assert_eq!(err("socket,id=m,fd=3,reconnect=1,tls-creds=tls0"), "No TLS credentials with id 'tls0'");
        assert_eq!(err("socket,id=m,fd=3,server=on,tls-creds=tls0"), "No TLS credentials with id 'tls0'");
        assert_eq!(err("socket,id=m,path=p,tls-creds=tls0"), "No TLS credentials with id 'tls0'");
        assert_eq!(err("socket,id=m,host=h,port=1,server=on,tls-creds=t,tls-authz=a"), "No TLS credentials with id 't'");
        assert_eq!(err("socket,id=m,fd=3,server=on,tls-authz=a"), "'tls_authz' option requires 'tls_creds' option");
        assert_eq!(err("socket,id=m,path=p,websocket=on"), "Websocket client is not implemented");
        assert_eq!(err("socket,id=m,path=p,server=on,websocket=on"), "websocket is not supported");
        assert_eq!(err("socket,id=m,fd=3,server=on,telnet=on"), "telnet is not supported");
        assert_eq!(err("socket,id=m,fd=3,server=on,tn3270=on"), "tn3270 is not supported");
        assert!(!sock("socket,id=m,fd=3,server=on,telnet=off").telnet);
        assert_eq!(err("socket,id=m,fd=3,server=on,mux=on"), "mux=on is not supported");
        // QEMU's own errors come before fdmon's refusals.
        assert_eq!(err("socket,id=m,path=p,telnet=on,wait=off"), "'wait' option is incompatible with socket in client connect mode");
    }

    #[test]
    fn backend_list() {
        assert_eq!(backend_help(), "Available chardev backend types: \n  socket\n  ringbuf\n  memory\n  null\n  file\n  pipe\n  stdio\n");
    }

    #[test]
    fn hmp_chardev_add() {
        let none = |_: &str| false;
        let r = parse_chardev_add("socket,fd=lf,server,nowait,id=c3", &none);
        assert_eq!(r.warnings, vec!["warning: short-form boolean option 'server' deprecated\nPlease use server=on instead", "warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead"]);
        match r.result {
            Ok(ChardevAddRequest::Create(c)) => {
                assert_eq!(c.id, "c3");
                assert_eq!(c.backend, BackendSpec::Socket(SocketSpec { addr: fd("lf"), server: true, wait: false, nodelay: false, reconnect: None, tls_creds: None, tls_authz: None, telnet: false, tn3270: false, websocket: false }));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_chardev_add("socket,path=/x,server=on,wait=off,id=c4,bogus=1", &none).result, Err(ChardevAddError::Parse(OptError::InvalidParameter("bogus".into()))));
        assert_eq!(parse_chardev_add("null", &none).result, Err(ChardevAddError::Create(OptError::NoChardevId)));
        assert_eq!(parse_chardev_add("help", &none).result, Ok(ChardevAddRequest::ListBackends(backend_help())));
        assert_eq!(parse_chardev_add("null,id=mon", &|id| id == "mon").result, Err(ChardevAddError::Parse(OptError::DuplicateId { id: "mon".into(), list: "chardev".into() })));
        assert!(matches!(parse_chardev_add("null,id=x,help", &none).result, Err(ChardevAddError::ParseHelp(t)) if t.starts_with("chardev options:\n  abstract=<bool (on/off)>\n")));
    }

    #[test]
    fn chardev_key_listing() {
        let help = CHARDEV_OPTS.help_text();
        for key in SOCKET_KEYS.iter().chain(COMMON_KEYS).chain(RINGBUF_KEYS).chain(FILE_KEYS).chain(STDIO_KEYS) {
            assert!(help.contains(&format!("  {key}=<")), "{key}");
        }
        assert!(!help.contains("width"));
    }
}
