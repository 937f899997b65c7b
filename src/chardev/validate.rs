//! The checks a chardev spec must pass before anything is opened, with QEMU 7.2's texts and
//! in QEMU's order. Pure: nothing here touches the OS or a monitor.
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
    WebsocketClient,
    /// `telnet` or `tn3270` in a run-time spec.
    TelnetRuntime,
    /// A `websocket` server in a run-time spec.
    WebsocketRuntime,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecError::RingbufSize => f.write_str("size of ringbuf chardev must be power of two"),
            SpecError::RingbufTooLarge => f.write_str("ringbuf size is too large"),
            SpecError::NoTlsCreds(id) => write!(f, "No TLS credentials with id '{id}'"),
            SpecError::TlsAuthzWithoutCreds => f.write_str("'tls_authz' option requires 'tls_creds' option"),
            SpecError::WebsocketClient => f.write_str("Websocket client is not implemented"),
            SpecError::TelnetRuntime => f.write_str("telnet is not supported by fdmon"),
            SpecError::WebsocketRuntime => f.write_str("websocket is not supported by fdmon"),
        }
    }
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
    // QEMU looks the credentials object up before any other check; fdmon has no credential
    // objects at all, so every reference is to a missing one.
    if let Some(creds) = &s.tls_creds {
        return Err(SpecError::NoTlsCreds(creds.clone()));
    }
    if s.tls_authz.is_some() {
        return Err(SpecError::TlsAuthzWithoutCreds);
    }
    if s.telnet || s.tn3270 {
        return Err(SpecError::TelnetRuntime);
    }
    if s.websocket {
        return Err(if s.server { SpecError::WebsocketRuntime } else { SpecError::WebsocketClient });
    }
    Ok(())
}
