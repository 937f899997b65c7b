//! JSON for the QMP monitor: the `Value` model, a streaming parser for QEMU 7.2's
//! input dialect, and a writer for QEMU's output format (compact and pretty).
//! This module does no I/O and no QMP semantics. "QMP input must be a JSON object" and
//! the like belong to the monitor.
#![forbid(unsafe_code)]

mod parser;
mod value;
mod writer;

pub use parser::{Item, Message, RawMessage, Streamer, Walk};
pub use value::{Object, Value};
pub use writer::{to_string, to_string_pretty, write_u64, Layout, Writer};
#[cfg(test)]
use writer::{write_compact, write_pretty};

#[cfg(test)]
mod old_writer;
#[cfg(test)]
mod tests;
