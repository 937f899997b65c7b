//! The QMP request path: a fresh state with one control monitor, fed the input the way the
//! event loop does. The first byte picks pretty output (bit 0) and whether capabilities are
//! negotiated first (bit 1), so that commands run.
#![no_main]

#[path = "harness.rs"]
mod harness;

use fdmon::monitor::Mode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else { return };
    let (mut st, _peer) = harness::state_with_monitor(Mode::Control { pretty: how & 1 != 0 });
    if how & 2 != 0 {
        harness::feed(&mut st, br#"{"execute":"qmp_capabilities"}"#);
    }
    harness::feed(&mut st, rest);
});
