//! HMP argument syntax on raw bytes: command names, words and quoted strings, integer
//! expressions. Behaves like QEMU 7.2's monitor parser (including its error texts); never
//! runs anything and never prints (errors are returned as the text to print).

/// The C `isspace` set QEMU uses to separate words.
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

pub(super) fn skip_spaces(s: &[u8], pos: &mut usize) {
    while *pos < s.len() && is_space(s[*pos]) {
        *pos += 1;
    }
}

/// Longest command name QEMU compares (its buffer is 256 bytes with the NUL).
const MAX_NAME: usize = 255;

/// Finds the command name at `pos`: the bytes up to a space, a `/` or the end. Returns its
/// range, or `None` when only blanks are left.
pub(super) fn command_name(s: &[u8], pos: usize) -> Option<(usize, usize)> {
    let mut p = pos;
    skip_spaces(s, &mut p);
    if p >= s.len() {
        return None;
    }
    let start = p;
    while p < s.len() && s[p] != b'/' && !is_space(s[p]) {
        p += 1;
    }
    Some((start, p))
}

/// The part of a name QEMU compares against its table.
pub(super) fn lookup_name(name: &[u8]) -> &[u8] {
    &name[..name.len().min(MAX_NAME)]
}

/// One word: either unquoted (up to the next blank, taken literally) or a double-quoted
/// string where `\n \r \\ \' \"` are escapes. `Err` when there is no word, an escape is not
/// one of those, or the quote is not closed (QEMU reports all three as "string expected").
pub(super) fn word(s: &[u8], pos: &mut usize) -> Result<Vec<u8>, ()> {
    skip_spaces(s, pos);
    let mut p = *pos;
    if p >= s.len() {
        return Err(());
    }
    let mut out = Vec::new();
    if s[p] == b'"' {
        p += 1;
        while p < s.len() && s[p] != b'"' {
            if s[p] == b'\\' {
                let c = match s.get(p + 1) {
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(&c @ (b'\\' | b'\'' | b'"')) => c,
                    _ => return Err(()),
                };
                out.push(c);
                p += 2;
            } else {
                out.push(s[p]);
                p += 1;
            }
        }
        if p >= s.len() {
            return Err(());
        }
        p += 1;
    } else {
        while p < s.len() && !is_space(s[p]) {
            out.push(s[p]);
            p += 1;
        }
    }
    *pos = p;
    Ok(out)
}

/// Most words QEMU splits a line into for completion and `help` (its `MAX_ARGS`).
const MAX_ARGS: usize = 16;

/// Splits a whole line into words (as `help ARGS` and completion do); `None` if a word is
/// malformed or there are more than 16.
pub(super) fn words(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut pos = 0;
    let mut v = Vec::new();
    loop {
        skip_spaces(s, &mut pos);
        if pos >= s.len() {
            return Some(v);
        }
        if v.len() >= MAX_ARGS {
            return None;
        }
        v.push(word(s, &mut pos).ok()?);
    }
}

/// Evaluates an integer expression at `pos` and leaves `pos` after it (and after the blanks
/// that follow). Grammar and precedence as QEMU: `+ -` bind loosest, then `& | ^`, then
/// `* / %`, then unary `+ - ~`, `( )`, `'c'` and numbers in C notation (`10`, `0x1f`, `017`).
/// Arithmetic wraps like QEMU's 64-bit integers. The error is the line QEMU prints.
/// Parentheses and unary operators nest at most `MAX_EXPR_DEPTH` deep (QEMU has no limit
/// and overflows its stack); deeper is the error "expression too deeply nested".
pub(super) fn expr(s: &[u8], pos: &mut usize) -> Result<i64, Vec<u8>> {
    let mut e = Expr { s, p: *pos, depth: 0 };
    e.skip();
    let r = e.sum();
    *pos = e.p;
    r
}

/// Most parentheses and unary operators open at once in one expression. The recursion
/// costs a few hundred bytes of stack per level, so this stays far below any thread's stack.
pub const MAX_EXPR_DEPTH: usize = 1024;

struct Expr<'a> {
    s: &'a [u8],
    p: usize,
    /// `unary` calls active now.
    depth: usize,
}

fn err(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

impl Expr<'_> {
    fn cur(&self) -> u8 {
        self.s.get(self.p).copied().unwrap_or(0)
    }

    fn skip(&mut self) {
        skip_spaces(self.s, &mut self.p);
    }

    /// Steps over the current byte and the blanks after it.
    fn next(&mut self) {
        if self.p < self.s.len() {
            self.p += 1;
            self.skip();
        }
    }

    fn sum(&mut self) -> Result<i64, Vec<u8>> {
        let mut v = self.logic()?;
        loop {
            let op = self.cur();
            if op != b'+' && op != b'-' {
                return Ok(v);
            }
            self.next();
            let w = self.logic()?;
            v = if op == b'+' { v.wrapping_add(w) } else { v.wrapping_sub(w) };
        }
    }

    fn logic(&mut self) -> Result<i64, Vec<u8>> {
        let mut v = self.prod()?;
        loop {
            let op = self.cur();
            if op != b'&' && op != b'|' && op != b'^' {
                return Ok(v);
            }
            self.next();
            let w = self.prod()?;
            v = match op {
                b'&' => v & w,
                b'|' => v | w,
                _ => v ^ w,
            };
        }
    }

    fn prod(&mut self) -> Result<i64, Vec<u8>> {
        let mut v = self.unary()?;
        loop {
            let op = self.cur();
            if op != b'*' && op != b'/' && op != b'%' {
                return Ok(v);
            }
            self.next();
            let w = self.unary()?;
            v = match op {
                b'*' => v.wrapping_mul(w),
                _ if w == 0 => return Err(err("division by zero")),
                b'/' => v.wrapping_div(w),
                _ => v.wrapping_rem(w),
            };
        }
    }

    fn unary(&mut self) -> Result<i64, Vec<u8>> {
        if self.depth >= MAX_EXPR_DEPTH {
            return Err(err("expression too deeply nested"));
        }
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<i64, Vec<u8>> {
        match self.cur() {
            b'+' => {
                self.next();
                self.unary()
            }
            b'-' => {
                self.next();
                Ok(self.unary()?.wrapping_neg())
            }
            b'~' => {
                self.next();
                Ok(!self.unary()?)
            }
            b'(' => {
                self.next();
                let v = self.sum()?;
                if self.cur() != b')' {
                    return Err(err("')' expected"));
                }
                self.next();
                Ok(v)
            }
            b'\'' => {
                self.p += 1;
                if self.p >= self.s.len() {
                    return Err(err("character constant expected"));
                }
                // A C `char`: bytes above 0x7f are negative.
                let v = i64::from(self.s[self.p] as i8);
                self.p += 1;
                if self.cur() != b'\'' {
                    return Err(err("missing terminating ' character"));
                }
                self.next();
                Ok(v)
            }
            b'$' => {
                // Registers need a CPU; fdmon has none.
                self.p += 1;
                while self.p < self.s.len()
                    && (self.s[self.p].is_ascii_alphanumeric() || matches!(self.s[self.p], b'_' | b'.'))
                {
                    self.p += 1;
                }
                self.skip();
                Err(err("unknown register"))
            }
            0 if self.p >= self.s.len() => Err(err("unexpected end of expression")),
            c => {
                let Some((v, len, overflow)) = strtoull(&self.s[self.p..]) else {
                    let mut e = err("invalid char '");
                    e.push(c);
                    e.extend_from_slice(b"' in expression");
                    return Err(e);
                };
                if overflow {
                    return Err(err("number too large"));
                }
                self.p += len;
                self.skip();
                Ok(v as i64)
            }
        }
    }
}

/// C `strtoull(s, &end, 0)` for text that does not start with a blank or a sign: returns
/// (value, bytes used, overflowed), or `None` when no digit was converted.
fn strtoull(s: &[u8]) -> Option<(u64, usize, bool)> {
    let (radix, start) = if s.len() > 2 && s[0] == b'0' && (s[1] | 0x20) == b'x' && s[2].is_ascii_hexdigit() {
        (16, 2)
    } else if s.first() == Some(&b'0') {
        (8, 0)
    } else {
        (10, 0)
    };
    let mut v: u64 = 0;
    let mut overflow = false;
    let mut i = start;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        match v.checked_mul(u64::from(radix)).and_then(|x| x.checked_add(u64::from(d))) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if overflow { u64::MAX } else { v }, i, overflow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Result<(i64, usize), String> {
        let mut p = 0;
        expr(s.as_bytes(), &mut p).map(|v| (v, p)).map_err(|e| String::from_utf8(e).unwrap())
    }

    fn w(s: &str) -> Result<(String, usize), ()> {
        let mut p = 0;
        word(s.as_bytes(), &mut p).map(|v| (String::from_utf8(v).unwrap(), p))
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(w("abc def"), Ok(("abc".into(), 3)));
        assert_eq!(w("   abc"), Ok(("abc".into(), 6)));
        assert_eq!(w(r"hello\x20world"), Ok((r"hello\x20world".into(), 14)));
        assert_eq!(w(r#""quoted str" x"#), Ok(("quoted str".into(), 12)));
        assert_eq!(w(r#""a\nb\r\\\'\"""#), Ok(("a\nb\r\\'\"".into(), 14)));
        assert_eq!(w(r#""ab"cd"#), Ok(("ab".into(), 4)));
        assert_eq!(w(r#""""#), Ok(("".into(), 2)));
        assert_eq!(w(""), Err(()));
        assert_eq!(w("   "), Err(()));
        assert_eq!(w(r#""open"#), Err(()));
        assert_eq!(w(r#""bad \x""#), Err(()));
        assert_eq!(w("\"end\\"), Err(()));
        assert_eq!(w("é x"), Ok(("é".into(), 2)));
    }

    #[test]
    fn word_lists() {
        let v = |s: &str| {
            words(s.as_bytes()).map(|v| v.into_iter().map(|w| String::from_utf8(w).unwrap()).collect::<Vec<_>>())
        };
        assert_eq!(v("  info   status "), Some(vec!["info".to_string(), "status".to_string()]));
        assert_eq!(v(""), Some(vec![]));
        assert_eq!(v(r#"a "b c""#), Some(vec!["a".to_string(), "b c".to_string()]));
        assert_eq!(v(r#"a "b"#), None);
        assert_eq!(v(&"x ".repeat(16)).map(|v| v.len()), Some(16));
        assert_eq!(v(&"x ".repeat(17)), None);
    }

    #[test]
    fn command_names() {
        assert_eq!(command_name(b"  info  status", 0), Some((2, 6)));
        assert_eq!(command_name(b"x/10x 0", 0), Some((0, 1)));
        assert_eq!(command_name(b"   ", 0), None);
        assert_eq!(command_name(b"", 0), None);
        assert_eq!(command_name(b"stop\ncont", 0), Some((0, 4)));
    }

    #[test]
    fn expressions() {
        assert_eq!(ev("10"), Ok((10, 2)));
        assert_eq!(ev("  10  x"), Ok((10, 6)));
        assert_eq!(ev("0x1F"), Ok((31, 4)));
        assert_eq!(ev("017"), Ok((15, 3)));
        assert_eq!(ev("08"), Ok((0, 1)));
        assert_eq!(ev("0x"), Ok((0, 1)));
        assert_eq!(ev("1+2*3"), Ok((7, 5)));
        assert_eq!(ev("(1+2)*3"), Ok((9, 7)));
        assert_eq!(ev("2 + 3 & 1"), Ok((3, 9)));
        assert_eq!(ev("-5"), Ok((-5, 2)));
        assert_eq!(ev("~0"), Ok((-1, 2)));
        assert_eq!(ev("7 % 4 - 1"), Ok((2, 9)));
        assert_eq!(ev("- - 4 / 2"), Ok((2, 9)));
        assert_eq!(ev("'a'"), Ok((97, 3)));
        assert_eq!(ev("1a"), Ok((1, 1)));
        assert_eq!(ev("18446744073709551615"), Ok((-1, 20)));
        assert_eq!(ev("-9223372036854775808 / -1"), Ok((i64::MIN, 25)));
    }

    #[test]
    fn expression_errors() {
        assert_eq!(ev(""), Err("unexpected end of expression".into()));
        assert_eq!(ev("   "), Err("unexpected end of expression".into()));
        assert_eq!(ev("1+"), Err("unexpected end of expression".into()));
        assert_eq!(ev("abc"), Err("invalid char 'a' in expression".into()));
        assert_eq!(ev("1 + )"), Err("invalid char ')' in expression".into()));
        assert_eq!(ev("(1"), Err("')' expected".into()));
        assert_eq!(ev("4/0"), Err("division by zero".into()));
        assert_eq!(ev("4%(1-1)"), Err("division by zero".into()));
        assert_eq!(ev("99999999999999999999"), Err("number too large".into()));
        assert_eq!(ev("'"), Err("character constant expected".into()));
        assert_eq!(ev("'ab'"), Err("missing terminating ' character".into()));
        assert_eq!(ev("$pc"), Err("unknown register".into()));
    }

    #[test]
    fn nesting_is_bounded() {
        let n = MAX_EXPR_DEPTH - 1;
        let ok = format!("{}7{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ev(&ok), Ok((7, ok.len())));
        let deep = format!("{}7{}", "(".repeat(n + 1), ")".repeat(n + 1));
        assert_eq!(ev(&deep), Err("expression too deeply nested".into()));
        assert_eq!(ev(&"-".repeat(MAX_EXPR_DEPTH - 1)), Err("unexpected end of expression".into()));
        assert_eq!(ev(&"- ~ + ".repeat(200_000)), Err("expression too deeply nested".into()));
        assert_eq!(ev(&"(".repeat(1 << 20)), Err("expression too deeply nested".into()));
        // Long flat expressions do not nest.
        let flat = "1+".repeat(100_000) + "1";
        assert_eq!(ev(&flat), Ok((100_001, flat.len())));
    }
}
