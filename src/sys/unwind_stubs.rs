//! The unwinder entry points std refers to, so the binary needs no `libgcc_s.so.1` (built with
//! `panic = "abort"` only). Nothing unwinds in such a build: a panic prints its message and
//! aborts. The only one std calls outside unwinding is `_Unwind_Backtrace` (for
//! `RUST_BACKTRACE`), which reports an empty stack here; the others run only inside an
//! unwinding that never starts, and abort.
//!
//! Shared with the benchmark floor (`bench/floor`, "linked like fdmon"), which includes this
//! file by path. Included only in `panic = "abort"` builds.

use std::ffi::{c_int, c_void};

type Ctx = *mut c_void;

/// `_URC_END_OF_STACK`: the walk ends before the first frame.
#[no_mangle]
pub extern "C" fn _Unwind_Backtrace(_trace: *mut c_void, _arg: *mut c_void) -> c_int {
    5
}
#[no_mangle]
pub extern "C" fn _Unwind_Resume(_exception: *mut c_void) -> ! {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetIP(_ctx: Ctx) -> usize {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetIPInfo(_ctx: Ctx, _before: *mut c_int) -> usize {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetLanguageSpecificData(_ctx: Ctx) -> *mut c_void {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetRegionStart(_ctx: Ctx) -> usize {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetTextRelBase(_ctx: Ctx) -> usize {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_GetDataRelBase(_ctx: Ctx) -> usize {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_SetGR(_ctx: Ctx, _reg: c_int, _value: usize) {
    std::process::abort()
}
#[no_mangle]
pub extern "C" fn _Unwind_SetIP(_ctx: Ctx, _value: usize) {
    std::process::abort()
}
