//! How the domain layers' errors reach a QMP client: every one is a `GenericError` whose
//! `desc` is the error's text, so command handlers can use `?` on them.
#![forbid(unsafe_code)]

use crate::chardev::open::OpenError;
use crate::chardev::validate::SpecError;
use crate::error::QmpError;
use crate::fdset::FdSetError;
use crate::workload::WorkloadError;

macro_rules! generic_from {
    ($($t:ty),*) => {
        $(impl From<$t> for QmpError {
            fn from(e: $t) -> QmpError {
                QmpError::generic(e.to_string())
            }
        })*
    };
}

generic_from!(OpenError, SpecError, FdSetError, WorkloadError);
