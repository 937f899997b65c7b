//! The checks a chardev spec must pass before anything is opened, with QEMU 7.2's texts and
//! in QEMU's order. Pure: nothing here touches the OS or a monitor.
#![forbid(unsafe_code)]

use super::spec::{BackendSpec, ChardevSpec, SocketSpec};

/// Largest ring buffer fdmon creates.
pub const RINGBUF_MAX: u64 = 1 << 30;

/// The checks `chardev::open` makes before it touches the OS (and before the caller resolves
/// an `fd=` name, so a refused spec consumes no `getfd` name).
pub fn before_open(spec: &ChardevSpec) -> Result<(), String> {
    match &spec.backend {
        BackendSpec::Socket(s) => socket_before_open(s),
        BackendSpec::Ringbuf { size, .. } => {
            if *size == 0 || !size.is_power_of_two() {
                return Err("size of ringbuf chardev must be power of two".into());
            }
            if *size > RINGBUF_MAX || usize::try_from(*size).is_err() {
                return Err("ringbuf size is too large".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn socket_before_open(s: &SocketSpec) -> Result<(), String> {
    // QEMU looks the credentials object up before any other check; fdmon has no credential
    // objects at all, so every reference is to a missing one.
    if let Some(creds) = &s.tls_creds {
        return Err(format!("No TLS credentials with id '{creds}'"));
    }
    if s.tls_authz.is_some() {
        return Err("'tls_authz' option requires 'tls_creds' option".into());
    }
    if s.telnet || s.tn3270 {
        return Err("telnet is not supported by fdmon".into());
    }
    if s.websocket {
        return Err(if s.server {
            "websocket is not supported by fdmon"
        } else {
            "Websocket client is not implemented"
        }
        .into());
    }
    Ok(())
}
