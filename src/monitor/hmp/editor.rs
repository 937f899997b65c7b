//! The readline line editor of an HMP session: one byte in, echo bytes out, and the finished
//! line on Enter. It redraws exactly the way QEMU's monitor does (cursor left over what was
//! shown, the whole line, erase to end of line, then cursor placement), because clients
//! match on those bytes. It never assumes a terminal, never runs commands and never looks
//! at the state: completion candidates come from the caller.

/// Longest line kept; further bytes are dropped (QEMU's `READLINE_CMD_BUF_SIZE`).
pub(super) const MAX_LINE: usize = 4095;
/// Lines remembered for ESC [ A / ESC [ B.
pub(super) const MAX_HISTORY: usize = 64;
/// Most completion candidates collected for one Tab.
pub(super) const MAX_COMPLETIONS: usize = 256;

const LEFT: &[u8] = b"\x1b[D";
const RIGHT: &[u8] = b"\x1b[C";
const ERASE_EOL: &[u8] = b"\x1b[K";
const CLEAR_SCREEN: &[u8] = b"\x1b[2J\x1b[1;1H";

/// What Tab completes the word before the cursor with: `index` bytes of that word are
/// already typed; every candidate is a whole word.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Completions {
    pub index: usize,
    pub items: Vec<Vec<u8>>,
}

impl Completions {
    /// Adds a candidate once (QEMU drops duplicates and stops at 256).
    pub fn add(&mut self, item: &[u8]) {
        if self.items.len() < MAX_COMPLETIONS && !self.items.iter().any(|i| i == item) {
            self.items.push(item.to_vec());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EscState {
    Norm,
    /// After ESC.
    Esc,
    /// After ESC [: digits accumulate in `esc_param`.
    Csi,
    /// After ESC O.
    Ss3,
}

pub(crate) struct Editor {
    buf: Vec<u8>,
    cursor: usize,
    /// The line as last drawn, and where the terminal cursor was left.
    shown: Vec<u8>,
    shown_cursor: usize,
    esc: EscState,
    esc_param: u32,
    /// Oldest first; no duplicates.
    history: Vec<Vec<u8>>,
    /// The history entry being shown (ESC [ A was used), if any.
    hist_entry: Option<usize>,
}

impl Default for Editor {
    fn default() -> Self {
        Editor {
            buf: Vec::new(),
            cursor: 0,
            shown: Vec::new(),
            shown_cursor: 0,
            esc: EscState::Norm,
            esc_param: 0,
            history: Vec::new(),
            hist_entry: None,
        }
    }
}

impl Editor {
    /// Feeds one byte. Echo goes to `out` (with bare `\n` line ends); a finished line is
    /// returned. `complete` is asked for candidates for the text before the cursor on Tab.
    pub(super) fn byte(
        &mut self,
        ch: u8,
        out: &mut Vec<u8>,
        complete: &mut dyn FnMut(&[u8]) -> Completions,
    ) -> Option<Vec<u8>> {
        let mut line = None;
        match self.esc {
            EscState::Norm => match ch {
                0x01 => self.cursor = 0,
                0x04 => self.delete_char(),
                0x05 => self.cursor = self.buf.len(),
                b'\t' => self.complete(out, complete),
                0x0c => {
                    out.extend_from_slice(CLEAR_SCREEN);
                    self.show_prompt(out);
                }
                b'\n' | b'\r' => {
                    let l = std::mem::take(&mut self.buf);
                    self.hist_add(&l);
                    out.push(b'\n');
                    self.cursor = 0;
                    self.shown.clear();
                    self.shown_cursor = 0;
                    line = Some(l);
                }
                0x0e => self.hist_down(),
                0x10 => self.hist_up(),
                0x17 => self.back_word(),
                0x1b => self.esc = EscState::Esc,
                0x7f | 0x08 => self.backspace(),
                // QEMU also takes 0x9b as an 8-bit CSI; fdmon does not, so that UTF-8 text
                // containing that byte (`Û` is C3 9B) is not mangled.
                c if c >= 32 => self.insert(c),
                _ => {}
            },
            EscState::Esc => {
                self.esc_param = 0;
                self.esc = match ch {
                    b'[' => EscState::Csi,
                    b'O' => EscState::Ss3,
                    _ => EscState::Norm,
                };
            }
            EscState::Csi => {
                self.esc = EscState::Norm;
                match ch {
                    b'A' | b'F' => self.hist_up(),
                    b'B' | b'E' => self.hist_down(),
                    b'D' => self.cursor = self.cursor.saturating_sub(1),
                    b'C' => self.cursor = (self.cursor + 1).min(self.buf.len()),
                    b'0'..=b'9' => {
                        self.esc_param = self.esc_param.saturating_mul(10).saturating_add(u32::from(ch - b'0'));
                        self.esc = EscState::Csi;
                    }
                    b'~' => match self.esc_param {
                        1 => self.cursor = 0,
                        3 => self.delete_char(),
                        4 => self.cursor = self.buf.len(),
                        _ => {}
                    },
                    _ => {}
                }
            }
            EscState::Ss3 => {
                self.esc = EscState::Norm;
                match ch {
                    b'F' => self.cursor = self.buf.len(),
                    b'H' => self.cursor = 0,
                    _ => {}
                }
            }
        }
        self.update(out);
        line
    }

    /// Redraws what changed since the last redraw.
    fn update(&mut self, out: &mut Vec<u8>) {
        if self.buf != self.shown {
            for _ in 0..self.shown_cursor {
                out.extend_from_slice(LEFT);
            }
            out.extend_from_slice(&self.buf);
            out.extend_from_slice(ERASE_EOL);
            self.shown.clone_from(&self.buf);
            self.shown_cursor = self.buf.len();
        }
        if self.cursor != self.shown_cursor {
            let (step, n) = if self.cursor > self.shown_cursor {
                (RIGHT, self.cursor - self.shown_cursor)
            } else {
                (LEFT, self.shown_cursor - self.cursor)
            };
            for _ in 0..n {
                out.extend_from_slice(step);
            }
            self.shown_cursor = self.cursor;
        }
    }

    /// The prompt after other output: the whole line is redrawn next.
    fn show_prompt(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(super::PROMPT.as_bytes());
        self.shown.clear();
        self.shown_cursor = 0;
        self.esc = EscState::Norm;
    }

    fn insert(&mut self, c: u8) {
        if self.buf.len() < MAX_LINE {
            self.buf.insert(self.cursor, c);
            self.cursor += 1;
        }
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.delete_char();
        }
    }

    fn delete_char(&mut self) {
        if self.cursor < self.buf.len() {
            self.buf.remove(self.cursor);
        }
    }

    /// Ctrl-W: deletes the word before the cursor and the blanks after it.
    fn back_word(&mut self) {
        if self.cursor == 0 {
            return;
        }
        let mut start = self.cursor;
        while start > 0 && super::parse::is_space(self.buf[start - 1]) {
            start -= 1;
        }
        while start > 0 && !super::parse::is_space(self.buf[start - 1]) {
            start -= 1;
        }
        self.buf.drain(start..self.cursor);
        self.cursor = start;
    }

    fn set_line(&mut self, l: &[u8]) {
        self.buf = l[..l.len().min(MAX_LINE)].to_vec();
        self.cursor = self.buf.len();
    }

    fn hist_up(&mut self) {
        let idx = match self.hist_entry {
            Some(0) => return,
            Some(i) => i - 1,
            None if self.history.is_empty() => return,
            None => self.history.len() - 1,
        };
        self.hist_entry = Some(idx);
        let l = self.history[idx].clone();
        self.set_line(&l);
    }

    fn hist_down(&mut self) {
        let Some(i) = self.hist_entry else { return };
        if i + 1 < self.history.len() {
            self.hist_entry = Some(i + 1);
            let l = self.history[i + 1].clone();
            self.set_line(&l);
        } else {
            self.hist_entry = None;
            self.set_line(&[]);
        }
    }

    /// Remembers an entered line; a line already in the history moves to the end.
    fn hist_add(&mut self, l: &[u8]) {
        if l.is_empty() {
            return;
        }
        if let Some(i) = self.history.iter().position(|h| h == l) {
            let h = self.history.remove(i);
            self.history.push(h);
        } else {
            if self.history.len() == MAX_HISTORY {
                self.history.remove(0);
            }
            self.history.push(l.to_vec());
        }
        self.hist_entry = None;
    }

    /// Tab: one candidate is completed in place (plus a space); several are listed in
    /// columns under the line, their common prefix is completed, and the prompt and line are
    /// drawn again.
    fn complete(&mut self, out: &mut Vec<u8>, complete: &mut dyn FnMut(&[u8]) -> Completions) {
        let c = complete(&self.buf[..self.cursor]);
        let mut items = c.items;
        match items.len() {
            0 => {}
            1 => {
                let item = &items[0];
                for &b in item.get(c.index..).unwrap_or_default() {
                    self.insert(b);
                }
                if item.last().is_some_and(|&b| b != b'/') {
                    self.insert(b' ');
                }
            }
            _ => {
                items.sort_unstable();
                out.push(b'\n');
                let mut prefix = items[0].len();
                let mut width = 0;
                for it in &items {
                    prefix = prefix.min(it.len());
                    prefix = items[0][..prefix].iter().zip(it.iter()).take_while(|(a, b)| a == b).count();
                    width = width.max(it.len());
                }
                for b in items[0].get(c.index..prefix).unwrap_or_default().to_vec() {
                    self.insert(b);
                }
                let width = (width + 2).clamp(10, 80);
                let cols = 80 / width;
                for (i, it) in items.iter().enumerate() {
                    out.extend_from_slice(it);
                    out.resize(out.len() + width.saturating_sub(it.len()), b' ');
                    if (i + 1) % cols == 0 || i + 1 == items.len() {
                        out.push(b'\n');
                    }
                }
                self.show_prompt(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &[u8]) -> Completions {
        Completions::default()
    }

    /// Feeds `input`; returns the echo (as a string with escapes kept) and the lines.
    fn feed_with(e: &mut Editor, input: &[u8], f: &mut dyn FnMut(&[u8]) -> Completions) -> (String, Vec<String>) {
        let mut out = Vec::new();
        let mut lines = Vec::new();
        for &b in input {
            if let Some(l) = e.byte(b, &mut out, f) {
                lines.push(String::from_utf8_lossy(&l).into_owned());
            }
        }
        (String::from_utf8_lossy(&out).into_owned(), lines)
    }

    fn feed(e: &mut Editor, input: &[u8]) -> (String, Vec<String>) {
        feed_with(e, input, &mut none)
    }

    fn echo(input: &[u8]) -> String {
        feed(&mut Editor::default(), input).0
    }

    #[test]
    fn echo_of_stop() {
        let mut e = Editor::default();
        let (out, lines) = feed(&mut e, b"stop\n");
        assert_eq!(out, "s\x1b[K\x1b[Dst\x1b[K\x1b[D\x1b[Dsto\x1b[K\x1b[D\x1b[D\x1b[Dstop\x1b[K\n");
        assert_eq!(lines, vec!["stop"]);
    }

    #[test]
    fn cr_and_lf_each_end_a_line() {
        let mut e = Editor::default();
        let (out, lines) = feed(&mut e, b"a\r\n\n");
        assert_eq!(out, "a\x1b[K\n\n\n");
        assert_eq!(lines, vec!["a", "", ""]);
    }

    #[test]
    fn backspace() {
        assert_eq!(echo(b"ab\x7f"), "a\x1b[K\x1b[Dab\x1b[K\x1b[D\x1b[Da\x1b[K");
        assert_eq!(echo(b"ab\x08"), "a\x1b[K\x1b[Dab\x1b[K\x1b[D\x1b[Da\x1b[K");
        // Nothing to delete: nothing drawn.
        assert_eq!(echo(b"\x7f\x08"), "");
        let mut e = Editor::default();
        assert_eq!(feed(&mut e, b"ab\x7f\x7f\x7fc\n").1, vec!["c"]);
    }

    #[test]
    fn control_bytes_are_ignored() {
        assert_eq!(echo(b"\x03\x00\x02\x07"), "");
        let mut e = Editor::default();
        assert_eq!(feed(&mut e, b"a\x03b\n").1, vec!["ab"]);
    }

    #[test]
    fn utf8_is_echoed_raw() {
        let mut e = Editor::default();
        let mut out = Vec::new();
        for &b in "é\n".as_bytes() {
            e.byte(b, &mut out, &mut none);
        }
        assert_eq!(out, b"\xc3\x1b[K\x1b[D\xc3\xa9\x1b[K\n");
    }

    #[test]
    fn cursor_keys() {
        // ESC [ D moves left only; typing then inserts before the cursor.
        let mut e = Editor::default();
        let (out, _) = feed(&mut e, b"ab\x1b[D");
        assert_eq!(out, "a\x1b[K\x1b[Dab\x1b[K\x1b[D");
        let (out, _) = feed(&mut e, b"X");
        assert_eq!(out, "\x1b[DaXb\x1b[K\x1b[D");
        let (out, _) = feed(&mut e, b"\x1b[C");
        assert_eq!(out, "\x1b[C");
        // At the end, right does nothing; at the start, left does nothing.
        assert_eq!(feed(&mut e, b"\x1b[C").0, "");
        assert_eq!(feed(&mut e, b"\x01").0, "\x1b[D\x1b[D\x1b[D");
        assert_eq!(feed(&mut e, b"\x1b[D").0, "");
        assert_eq!(feed(&mut e, b"\x05").0, "\x1b[C\x1b[C\x1b[C");
        assert_eq!(feed(&mut e, b"\x1b[1~\x1b[3~").0, "\x1b[D\x1b[D\x1b[DXb\x1b[K\x1b[D\x1b[D");
        assert_eq!(feed(&mut e, b"\x1b[4~\x1bOH\x1bOF").0, "\x1b[C\x1b[C\x1b[D\x1b[D\x1b[C\x1b[C");
        assert_eq!(feed(&mut e, b"\n").1, vec!["Xb"]);
    }

    #[test]
    fn unknown_escapes_are_swallowed() {
        let mut e = Editor::default();
        let (out, lines) = feed(&mut e, b"\x1bxa\x1b[Zb\x1b[12;5Hc\n");
        // ESC x drops x; ESC [ Z drops Z; ESC [ 1 2 ; ends at ';', then "5Hc" is typed.
        assert_eq!(lines, vec!["ab5Hc"]);
        assert!(out.ends_with("ab5Hc\x1b[K\n"), "{out:?}");
    }

    #[test]
    fn history() {
        let mut e = Editor::default();
        feed(&mut e, b"info status\nstop\n\n");
        assert_eq!(feed(&mut e, b"\x1b[A").0, "stop\x1b[K");
        assert_eq!(feed(&mut e, b"\x1b[A").0, "\x1b[D\x1b[D\x1b[D\x1b[Dinfo status\x1b[K");
        // At the oldest entry, up does nothing.
        assert_eq!(feed(&mut e, b"\x1b[A").0, "");
        assert_eq!(feed(&mut e, b"\x1b[B").0, format!("{}stop\x1b[K", "\x1b[D".repeat(11)));
        // Down past the newest entry clears the line.
        assert_eq!(feed(&mut e, b"\x1b[B").0, "\x1b[D\x1b[D\x1b[D\x1b[D\x1b[K");
        assert_eq!(feed(&mut e, b"\x1b[B").0, "");
        // Ctrl-P / Ctrl-N too; re-entering a line moves it to the end.
        feed(&mut e, b"\x10\x10\n");
        assert_eq!(e.history, vec![b"stop".to_vec(), b"info status".to_vec()]);
    }

    #[test]
    fn history_is_bounded() {
        let mut e = Editor::default();
        for i in 0..100 {
            feed(&mut e, format!("cmd{i}\n").as_bytes());
        }
        assert_eq!(e.history.len(), MAX_HISTORY);
        assert_eq!(e.history[0], b"cmd36");
        assert_eq!(e.history[63], b"cmd99");
    }

    #[test]
    fn line_cap() {
        let mut e = Editor::default();
        let mut out = Vec::new();
        for _ in 0..MAX_LINE {
            e.byte(b'x', &mut out, &mut none);
        }
        out.clear();
        e.byte(b'y', &mut out, &mut none);
        assert!(out.is_empty());
        let l = e.byte(b'\n', &mut out, &mut none).unwrap();
        assert_eq!(l.len(), MAX_LINE);
        assert!(l.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn ctrl_w_and_ctrl_d() {
        let mut e = Editor::default();
        assert_eq!(feed(&mut e, b"info  stat\x17\n").1, vec!["info  "]);
        assert_eq!(feed(&mut e, b"word\x17\x17\n").1, vec![""]);
        assert_eq!(feed(&mut e, b"ab\x01\x04\n").1, vec!["b"]);
    }

    #[test]
    fn clear_screen() {
        let mut e = Editor::default();
        assert_eq!(feed(&mut e, b"ab\x0c").0, "a\x1b[K\x1b[Dab\x1b[K\x1b[2J\x1b[1;1H(qemu) ab\x1b[K");
    }

    fn cands(index: usize, items: &[&str]) -> Completions {
        Completions { index, items: items.iter().map(|s| s.as_bytes().to_vec()).collect() }
    }

    #[test]
    fn completion_single() {
        let mut e = Editor::default();
        let mut seen = Vec::new();
        let mut f = |p: &[u8]| {
            seen.push(String::from_utf8_lossy(p).into_owned());
            cands(3, &["stop"])
        };
        let (out, _) = feed_with(&mut e, b"sto\t", &mut f);
        assert_eq!(seen, vec!["sto"]);
        assert!(out.ends_with("\x1b[D\x1b[D\x1b[Dstop \x1b[K"), "{out:?}");
    }

    #[test]
    fn completion_several() {
        let mut e = Editor::default();
        feed(&mut e, b"info stat");
        let mut f = |_: &[u8]| cands(4, &["status", "stats"]);
        let (out, _) = feed_with(&mut e, b"\t", &mut f);
        assert_eq!(out, "\nstats     status    \n(qemu) info stat\x1b[K");
        // A longer common prefix is completed.
        let mut e = Editor::default();
        feed(&mut e, b"system");
        let mut f = |_: &[u8]| cands(6, &["system_reset", "system_powerdown"]);
        let (out, _) = feed_with(&mut e, b"\t", &mut f);
        assert_eq!(out, "\nsystem_powerdown  system_reset      \n(qemu) system_\x1b[K");
        // Columns wrap at 80.
        let mut e = Editor::default();
        let many: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut f = |_: &[u8]| cands(0, &refs);
        let (out, _) = feed_with(&mut e, b"\t", &mut f);
        assert_eq!(
            out,
            format!(
                "\n{}\n{}",
                refs[..8].iter().map(|c| format!("{c:<10}")).collect::<String>(),
                "c8        c9        \n(qemu) c\x1b[K"
            )
        );
        // No candidates: nothing happens.
        let mut e = Editor::default();
        assert_eq!(feed(&mut e, b"zz\t").0, "z\x1b[K\x1b[Dzz\x1b[K");
    }
}
