//! The fdmon binary: everything happens in `fdmon::app`.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = fdmon::app::main(args);
    std::process::exit(code);
}
