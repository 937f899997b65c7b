//! The fdmon binary: everything happens in `fdmon::app`. The entry point is `main` in
//! `src/sys/entry.rs` (C's `main`, in place of std's runtime start-up; see there why), the only
//! unsafe code of this crate with the unwinder stubs of `src/sys/unwind_stubs.rs`, both kept
//! beside the library's other system code.
#![cfg_attr(not(test), no_main)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(test))]
#[allow(unsafe_code)]
#[path = "sys/entry.rs"]
mod entry;

#[cfg(all(not(test), panic = "abort"))]
#[allow(unsafe_code)]
#[path = "sys/unwind_stubs.rs"]
mod unwind_stubs;
