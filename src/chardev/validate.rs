//! Every check a chardev spec must pass before anything is opened, with QEMU 7.2's texts, for
//! all three entry points: the command line and HMP `chardev-add` (`opts::chardev`), QMP
//! `chardev-add` (`monitor::commands`) and `chardev::open`. Each entry point runs the same
//! socket rules ([`socket_rules`]) in the order QEMU checks them on that path
//! ([`CLI_SOCKET_RULES`], [`QMP_SOCKET_RULES`]). Pure: nothing here touches the OS or a
//! monitor.
#![forbid(unsafe_code)]

use super::spec::{BackendSpec, ChardevSpec, SocketSpec};

/// A spec refused before anything is opened. `Display` is QEMU's text (fdmon's own where
/// QEMU accepts the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    RingbufSize,
    RingbufTooLarge,
    NoTlsCreds(String),
    TlsAuthzWithoutCreds,
    ReconnectWithFd,
    ReconnectWithServer,
    WebsocketClient,
    WaitWithClient,
    NoIpFamily,
    /// A waiting server at run time (fdmon's refusal: it would stop every monitor).
    WaitAtRuntime,
    /// `telnet` or `tn3270` in a run-time spec.
    TelnetRuntime,
    /// A `websocket` server in a run-time spec.
    WebsocketRuntime,
    /// QMP `to` outside 0..=65535.
    ToNotAPort,
    /// A QMP `vsock` address.
    Vsock,
    /// fdmon's refusal of what QEMU accepts: `mux=on`, `logfile`, `telnet`, ...
    Unsupported(&'static str),
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecError::RingbufSize => f.write_str("size of ringbuf chardev must be power of two"),
            SpecError::RingbufTooLarge => f.write_str("ringbuf size is too large"),
            SpecError::NoTlsCreds(id) => write!(f, "No TLS credentials with id '{id}'"),
            SpecError::TlsAuthzWithoutCreds => f.write_str("'tls_authz' option requires 'tls_creds' option"),
            SpecError::ReconnectWithFd => f.write_str("'reconnect' option is incompatible with 'fd' address type"),
            SpecError::ReconnectWithServer => {
                f.write_str("'reconnect' option is incompatible with socket in server listen mode")
            }
            SpecError::WebsocketClient => f.write_str("Websocket client is not implemented"),
            SpecError::WaitWithClient => {
                f.write_str("'wait' option is incompatible with socket in client connect mode")
            }
            SpecError::NoIpFamily => f.write_str("Cannot disable IPv4 and IPv6 at same time"),
            SpecError::WaitAtRuntime => {
                f.write_str("'wait' is not supported at runtime: it would stop every monitor until a client connects")
            }
            SpecError::TelnetRuntime => f.write_str("telnet is not supported by fdmon"),
            SpecError::WebsocketRuntime => f.write_str("websocket is not supported by fdmon"),
            SpecError::ToNotAPort => f.write_str("Parameter 'to' expects a port number"),
            SpecError::Vsock => f.write_str("vsock sockets are not supported by fdmon"),
            SpecError::Unsupported(what) => write!(f, "{what} is not supported"),
        }
    }
}

/// A socket chardev as its entry point read it, before any rule ran: which options were given.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketInput<'a> {
    /// The address is `fd=` (or none at all, which QEMU treats as an empty fd).
    pub is_fd: bool,
    pub server: bool,
    /// `wait` given, whatever its value.
    pub wait_given: bool,
    /// `wait` in effect (a server waits unless told not to).
    pub wait: bool,
    /// `reconnect` given, whatever its value.
    pub reconnect_given: bool,
    pub tls_creds: Option<&'a str>,
    pub tls_authz: bool,
    pub websocket: bool,
}

/// One check on a socket chardev's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRule {
    /// fdmon has no credential objects: every `tls-creds` names a missing one.
    TlsCreds,
    ReconnectWithFd,
    TlsAuthz,
    ReconnectWithServer,
    WebsocketClient,
    WaitWithClient,
    WaitAtRuntime,
}

/// QEMU 7.2's order on the command line (and HMP): it looks the credentials object up before
/// any other socket check (observed), then `qmp_chardev_validate_socket`'s order.
pub const CLI_SOCKET_RULES: &[SocketRule] = &[
    SocketRule::TlsCreds,
    SocketRule::ReconnectWithFd,
    SocketRule::TlsAuthz,
    SocketRule::ReconnectWithServer,
    SocketRule::WebsocketClient,
    SocketRule::WaitWithClient,
];

/// QMP `chardev-add`'s order before the chardev id is looked at; `tls-authz` and the protocol
/// layers follow in [`before_open`].
pub const QMP_SOCKET_RULES: &[SocketRule] = &[
    SocketRule::TlsCreds,
    SocketRule::WaitWithClient,
    SocketRule::WaitAtRuntime,
    SocketRule::ReconnectWithFd,
    SocketRule::ReconnectWithServer,
];

/// Runs `rules` in order on `s`; the first that fails wins.
pub fn socket_rules(s: &SocketInput, rules: &[SocketRule]) -> Result<(), SpecError> {
    for rule in rules {
        let failed = match rule {
            SocketRule::TlsCreds => {
                if let Some(creds) = s.tls_creds {
                    return Err(SpecError::NoTlsCreds(creds.to_string()));
                }
                false
            }
            SocketRule::ReconnectWithFd => s.reconnect_given && s.is_fd,
            SocketRule::TlsAuthz => s.tls_authz,
            SocketRule::ReconnectWithServer => s.server && s.reconnect_given,
            SocketRule::WebsocketClient => !s.server && s.websocket,
            SocketRule::WaitWithClient => !s.server && s.wait_given,
            SocketRule::WaitAtRuntime => s.server && s.wait,
        };
        if failed {
            return Err(match rule {
                SocketRule::TlsCreds => unreachable!("returned above"),
                SocketRule::ReconnectWithFd => SpecError::ReconnectWithFd,
                SocketRule::TlsAuthz => SpecError::TlsAuthzWithoutCreds,
                SocketRule::ReconnectWithServer => SpecError::ReconnectWithServer,
                SocketRule::WebsocketClient => SpecError::WebsocketClient,
                SocketRule::WaitWithClient => SpecError::WaitWithClient,
                SocketRule::WaitAtRuntime => SpecError::WaitAtRuntime,
            });
        }
    }
    Ok(())
}

/// `mux=on` and `logfile`, which fdmon refuses for every backend (in this order).
pub fn common_refusals(mux: bool, logfile: bool) -> Result<(), SpecError> {
    if mux {
        return Err(SpecError::Unsupported("mux=on"));
    }
    if logfile {
        return Err(SpecError::Unsupported("logfile"));
    }
    Ok(())
}

/// Largest ring buffer fdmon creates.
pub const RINGBUF_MAX: u64 = 1 << 30;

/// The checks `chardev::open` makes before it touches the OS (and before the caller resolves
/// an `fd=` name, so a refused spec consumes no `getfd` name).
pub fn before_open(spec: &ChardevSpec) -> Result<(), SpecError> {
    match &spec.backend {
        BackendSpec::Socket(s) => socket_before_open(s),
        BackendSpec::Ringbuf { size, .. } => {
            if *size == 0 || !size.is_power_of_two() {
                return Err(SpecError::RingbufSize);
            }
            if *size > RINGBUF_MAX || usize::try_from(*size).is_err() {
                return Err(SpecError::RingbufTooLarge);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn socket_before_open(s: &SocketSpec) -> Result<(), SpecError> {
    let input =
        SocketInput { tls_creds: s.tls_creds.as_deref(), tls_authz: s.tls_authz.is_some(), ..Default::default() };
    socket_rules(&input, &[SocketRule::TlsCreds, SocketRule::TlsAuthz])?;
    if s.telnet || s.tn3270 {
        return Err(SpecError::TelnetRuntime);
    }
    if s.websocket {
        return Err(if s.server { SpecError::WebsocketRuntime } else { SpecError::WebsocketClient });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_its_order() {
        // tls-authz with a client's wait: the command line reports tls-authz first, QMP wait.
        let s = SocketInput { tls_authz: true, wait_given: true, ..Default::default() };
        assert_eq!(socket_rules(&s, CLI_SOCKET_RULES), Err(SpecError::TlsAuthzWithoutCreds));
        assert_eq!(socket_rules(&s, QMP_SOCKET_RULES), Err(SpecError::WaitWithClient));
        let s = SocketInput { tls_creds: Some("t"), reconnect_given: true, is_fd: true, ..Default::default() };
        assert_eq!(socket_rules(&s, CLI_SOCKET_RULES).unwrap_err().to_string(), "No TLS credentials with id 't'");
        let s = SocketInput { server: true, wait: true, ..Default::default() };
        assert_eq!(socket_rules(&s, CLI_SOCKET_RULES), Ok(()));
        assert_eq!(socket_rules(&s, QMP_SOCKET_RULES), Err(SpecError::WaitAtRuntime));
        assert_eq!(common_refusals(true, true).unwrap_err().to_string(), "mux=on is not supported");
    }
}
