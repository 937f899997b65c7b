//! Backend descriptions shared by the command line, HMP `chardev-add` and QMP
//! `chardev-add`. Pure data: nothing here touches the OS, and nothing here depends on the
//! option parser (`opts` builds these values, `chardev::open` consumes them).
#![forbid(unsafe_code)]

use std::fmt;

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

impl ChardevSpec {
    /// What `fd=` names, for a socket on a passed fd.
    pub fn fd_ref(&self) -> Option<&FdRef> {
        match &self.backend {
            BackendSpec::Socket(SocketSpec { addr: SocketAddrSpec::Fd(f), .. }) => Some(f),
            _ => None,
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
    /// `fd=`: an inherited fd number or a socket-activation name on the command line, a
    /// getfd name at run time.
    Fd(FdRef),
}

/// An `fd=` value, classified once when the option is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdRef {
    /// A decimal `int` as QEMU's `qemu_parse_fd` reads it (a negative one too: it then fails
    /// as "not a socket"), with the text as written, which messages quote.
    Number { fd: i32, text: String },
    /// Anything else: a name (`getfd` at run time, socket activation on the command line).
    Name(String),
}

impl FdRef {
    pub fn parse(text: &str) -> FdRef {
        match parse_fd_text(text) {
            Ok(fd) => FdRef::Number { fd, text: text.to_string() },
            Err(_) => FdRef::Name(text.to_string()),
        }
    }

    /// The value as written.
    pub fn text(&self) -> &str {
        match self {
            FdRef::Number { text, .. } => text,
            FdRef::Name(name) => name,
        }
    }

    /// The fd number, if the value is one (possibly negative).
    pub fn number(&self) -> Option<i32> {
        match self {
            FdRef::Number { fd, .. } => Some(*fd),
            FdRef::Name(_) => None,
        }
    }
}

impl From<&str> for FdRef {
    fn from(text: &str) -> FdRef {
        FdRef::parse(text)
    }
}

impl From<String> for FdRef {
    fn from(text: String) -> FdRef {
        FdRef::parse(&text)
    }
}

/// Why a text is not an fd number: QEMU's `qemu_parse_fd` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdNumberError {
    /// `Unable to parse FD number X`.
    NotANumber(String),
    /// `Unable to parse FD number X: Numerical result out of range`.
    OutOfRange(String),
}

impl FdNumberError {
    /// The error for `text`, which is not an fd number.
    pub fn of(text: &str) -> FdNumberError {
        parse_fd_text(text).err().unwrap_or_else(|| FdNumberError::NotANumber(text.to_string()))
    }
}

impl fmt::Display for FdNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdNumberError::NotANumber(t) => write!(f, "Unable to parse FD number {t}"),
            FdNumberError::OutOfRange(t) => write!(f, "Unable to parse FD number {t}: Numerical result out of range"),
        }
    }
}

/// QEMU's `qemu_parse_fd`: a decimal fd number (C `strtol`: leading blanks and a sign are
/// accepted), within `int`, nothing after it. A negative number parses.
pub fn parse_fd_text(text: &str) -> Result<i32, FdNumberError> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(FdNumberError::NotANumber(text.to_string()));
    }
    let trimmed = digits.trim_start_matches('0');
    let value: Option<i64> = if trimmed.is_empty() {
        Some(0)
    } else if trimmed.len() > 10 {
        None
    } else {
        trimmed.parse().ok()
    };
    value
        .map(|v| if negative { -v } else { v })
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| FdNumberError::OutOfRange(text.to_string()))
}

/// A non-negative fd number (see [`parse_fd_text`]); `None` for anything else.
pub fn parse_fd_number(text: &str) -> Option<i32> {
    parse_fd_text(text).ok().filter(|n| *n >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_numbers() {
        assert_eq!(parse_fd_number("3"), Some(3));
        assert_eq!(parse_fd_number("0"), Some(0));
        assert_eq!(parse_fd_number(" 3"), Some(3));
        assert_eq!(parse_fd_number("+3"), Some(3));
        assert_eq!(parse_fd_number("-0"), Some(0));
        assert_eq!(parse_fd_number("007"), Some(7));
        assert_eq!(parse_fd_number("2147483647"), Some(i32::MAX));
        for bad in ["", "myfd", "3 ", "-1", "0x3", "2147483648", "99999999999999999999", "3a", " "] {
            assert_eq!(parse_fd_number(bad), None, "{bad}");
        }
        let text = |t: &str| parse_fd_text(t).map_err(|e| e.to_string());
        assert_eq!(text("-1"), Ok(-1));
        assert_eq!(text("myfd"), Err("Unable to parse FD number myfd".into()));
        assert_eq!(
            text("2147483648"),
            Err("Unable to parse FD number 2147483648: Numerical result out of range".into())
        );
        assert_eq!(
            text("-2147483649"),
            Err("Unable to parse FD number -2147483649: Numerical result out of range".into())
        );
    }

    #[test]
    fn fd_refs() {
        assert_eq!(FdRef::parse(" 3"), FdRef::Number { fd: 3, text: " 3".into() });
        assert_eq!(FdRef::parse("-1").number(), Some(-1));
        assert_eq!(FdRef::parse("myfd"), FdRef::Name("myfd".into()));
        assert_eq!(FdRef::parse("2147483648").text(), "2147483648");
        assert_eq!(
            FdNumberError::of("2147483648").to_string(),
            "Unable to parse FD number 2147483648: Numerical result out of range"
        );
        assert_eq!(FdNumberError::of("lf").to_string(), "Unable to parse FD number lf");
    }
}
