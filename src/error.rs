//! Error values shared across layers: QMP errors (protocol data, not Rust failures) and the
//! plain strerror text QEMU prints for OS errors.
#![forbid(unsafe_code)]

use std::io;

/// QAPI's `QapiErrorClass`: what kind of failure a QMP client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    GenericError,
    CommandNotFound,
    DeviceNotFound,
}

impl ErrorClass {
    /// The class as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
        }
    }
}

/// An error a monitor command returns: `{"error": {"class": C, "desc": D}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpError {
    pub class: ErrorClass,
    pub desc: String,
}

impl QmpError {
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> QmpError {
        QmpError { class, desc: desc.into() }
    }

    pub fn generic(desc: impl Into<String>) -> QmpError {
        QmpError::new(ErrorClass::GenericError, desc)
    }

    pub fn command_not_found(desc: impl Into<String>) -> QmpError {
        QmpError::new(ErrorClass::CommandNotFound, desc)
    }

    pub fn device_not_found(desc: impl Into<String>) -> QmpError {
        QmpError::new(ErrorClass::DeviceNotFound, desc)
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
    fn classes_on_the_wire() {
        assert_eq!(QmpError::generic("x").class.as_str(), "GenericError");
        assert_eq!(QmpError::command_not_found("x").class.as_str(), "CommandNotFound");
        assert_eq!(QmpError::device_not_found("x").class.as_str(), "DeviceNotFound");
    }

    #[test]
    fn os_text_is_strerror() {
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::ENOENT)), "No such file or directory");
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::EINVAL)), "Invalid argument");
        assert_eq!(os_text(&io::Error::from_raw_os_error(libc::EOPNOTSUPP)), "Operation not supported");
    }
}
