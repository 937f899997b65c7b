//! The `key=value,...` option parser: split (with and without an implied key), validate
//! against the chardev option list, build a chardev spec, and HMP `chardev-add`'s parse.
#![no_main]

use fdmon::opts::chardev::{chardev_from_kv, parse_chardev_add, CHARDEV_OPTS};
use fdmon::opts::kv::parse_kv_quiet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let plain = parse_kv_quiet(s, None);
    let _ = plain.keys();
    for k in ["size", "port", "path", "id"] {
        let _ = plain.get_size(k);
        let _ = plain.get_number(k);
        let _ = plain.get_bool(k);
    }
    let kv = parse_kv_quiet(s, CHARDEV_OPTS.implied_key);
    let checked = kv.validate(&CHARDEV_OPTS, &|id| id == "mon");
    if checked.result.is_ok() {
        let _ = chardev_from_kv(&kv);
    }
    let _ = parse_chardev_add(s, &|id| id == "mon");
});
