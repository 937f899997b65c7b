//! Error values shared across layers: QMP errors (protocol data, not Rust failures) and the
//! plain strerror text QEMU prints for OS errors.
#![forbid(unsafe_code)]

use std::io;

/// An error a monitor command returns: `{"error": {"class": C, "desc": D}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpError {
    pub class: &'static str,
    pub desc: String,
}

impl QmpError {
    pub fn generic(desc: impl Into<String>) -> QmpError {
        QmpError { class: "GenericError", desc: desc.into() }
    }

    pub fn command_not_found(desc: impl Into<String>) -> QmpError {
        QmpError { class: "CommandNotFound", desc: desc.into() }
    }

    pub fn device_not_found(desc: impl Into<String>) -> QmpError {
        QmpError { class: "DeviceNotFound", desc: desc.into() }
    }
}

/// The C library's text for an OS error (`No such file or directory`), without Rust's
/// ` (os error 2)` suffix.
pub fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_text_is_strerror() {
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::ENOENT)), "No such file or directory");
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::EINVAL)), "Invalid argument");
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::EOPNOTSUPP)), "Operation not supported");
    }
}
