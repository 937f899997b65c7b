//! Backend descriptions shared by the command line, HMP `chardev-add` and QMP
//! `chardev-add`. Pure data: nothing here touches the OS.

/// A character device to create: its id and what backs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChardevSpec {
    pub id: String,
    pub backend: BackendSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackendSpec {
    Socket(SocketSpec),
    /// `ringbuf` (or its alias `memory`, which only changes the filename shown).
    Ringbuf {
        size: u64,
        memory_alias: bool,
    },
    Null,
    File {
        path: String,
        append: bool,
    },
    Pipe {
        path: String,
    },
    Stdio {
        signal: bool,
    },
}

impl BackendSpec {
    /// The backend name as `query-chardev-backends` and error texts spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendSpec::Socket(_) => "socket",
            BackendSpec::Ringbuf { memory_alias: false, .. } => "ringbuf",
            BackendSpec::Ringbuf { memory_alias: true, .. } => "memory",
            BackendSpec::Null => "null",
            BackendSpec::File { .. } => "file",
            BackendSpec::Pipe { .. } => "pipe",
            BackendSpec::Stdio { .. } => "stdio",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SocketSpec {
    pub addr: SocketAddrSpec,
    pub server: bool,
    pub wait: bool,
    pub nodelay: bool,
    /// Seconds between client reconnect attempts (client mode only).
    pub reconnect: Option<u64>,
    pub tls_creds: Option<String>,
    pub tls_authz: Option<String>,
    pub telnet: bool,
    pub tn3270: bool,
    pub websocket: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SocketAddrSpec {
    Unix {
        path: String,
        abstract_: bool,
        tight: bool,
    },
    Inet {
        host: String,
        port: String,
        to: Option<u16>,
        ipv4: Option<bool>,
        ipv6: Option<bool>,
    },
    /// As written: a decimal number on the command line, a getfd name at runtime.
    Fd(String),
}
