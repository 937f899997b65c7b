//! HMP: the first byte picks the path. Bit 0: through a readline monitor (line editor, echo,
//! completion) or through `human-monitor-command`. Bit 1: the rest is an integer expression
//! (`ringbuf_read x EXPR`) or a whole command line.
#![no_main]

#[path = "harness.rs"]
mod harness;

use fdmon::monitor::hmp::human_monitor_command;
use fdmon::monitor::Mode;
use libfuzzer_sys::fuzz_target;

fn hmc(st: &mut fdmon::state::State, line: &str) {
    let _ = human_monitor_command(st, line, None);
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else { return };
    let (mut st, _peer) = harness::state_with_monitor(Mode::Readline);
    hmc(&mut st, "chardev-add ringbuf,id=x,size=64");
    let mut line = Vec::new();
    if how & 2 != 0 {
        line.extend_from_slice(b"ringbuf_read x ");
    }
    line.extend_from_slice(rest);
    if how & 1 != 0 {
        harness::feed(&mut st, &line);
    } else {
        hmc(&mut st, &String::from_utf8_lossy(&line));
    }
});
