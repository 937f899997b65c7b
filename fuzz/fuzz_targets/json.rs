//! The JSON streamer, fed in two pieces at a fuzzer-chosen split, then every complete value
//! written back (compact and pretty) and put in QDict order.
#![no_main]

use fdmon::json::{to_string, to_string_pretty, Streamer, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let at = (split as usize * data.len()) / 255;
    let mut s = Streamer::new();
    let mut out = Vec::new();
    s.feed(&data[..at.min(data.len())], &mut out);
    s.feed(&data[at.min(data.len())..], &mut out);
    for v in out.into_iter().flatten() {
        let text = to_string(&v);
        // What fdmon writes parses back (a top-level scalar needs a delimiter after it).
        let mut again = Vec::new();
        Streamer::new().feed(format!("{text} ").as_bytes(), &mut again);
        if !matches!(v, Value::Double(_)) && !text.contains("nan") && !text.contains("inf") {
            assert!(again.len() == 1 && again[0].is_ok(), "{text}");
        }
        let _ = to_string_pretty(&v);
        let mut w = v;
        w.qdict_order();
        let _ = to_string(&w);
    }
});
