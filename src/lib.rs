//! fdmon: a QEMU-compatible QMP/HMP monitor served on pre-opened sockets, with an optional
//! supervised workload. All unsafe code lives in `sys`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod activation;
pub mod app;
pub mod base64;
pub mod chardev;
pub mod client;
pub mod console;
pub mod error;
pub mod event;
pub mod event_loop;
pub mod fdset;
pub mod json;
pub mod monitor;
pub mod notify;
pub mod opts;
pub mod state;
pub mod sys;
pub mod workload;
