//! QemuOpts numbers and sizes the way QEMU 7.2 reads them: C `strtoull` (base 0, wrapping
//! minus, glibc's C-locale rules) and `qemu_strtosz` (suffixes, fractions), byte for byte.

use super::OptError;

/// A QemuOpts number: C `strtoull` with base 0 (so `0x1f`, `017`, leading blanks, and a
/// minus sign that wraps around like C does), and nothing may follow it.
pub fn parse_number(key: &str, value: &str) -> Result<u64, OptError> {
    let r = strtoull(value.as_bytes(), 0);
    if r.consumed == 0 || r.consumed != value.len() {
        return Err(OptError::ExpectsNumber(key.into()));
    }
    if r.erange {
        return Err(OptError::NumberTooLarge { key: key.into(), value: value.into() });
    }
    Ok(r.value)
}

/// A QemuOpts size: a decimal number (a fraction needs a suffix), or `0x` hex, with an
/// optional suffix B, K, M, G, T, P, E (either case, powers of 1024).
pub fn parse_size(key: &str, value: &str) -> Result<u64, OptError> {
    match strtosz(value.as_bytes()) {
        Ok(v) => Ok(v),
        Err(SizeErr::Range) => Err(OptError::SizeOutOfRange { key: key.into(), value: value.into() }),
        Err(SizeErr::Invalid) => Err(OptError::ExpectsSize(key.into())),
    }
}

struct Strtoull {
    value: u64,
    /// 0 when no digits were found.
    consumed: usize,
    erange: bool,
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C `strtoull` (glibc, C locale) on bytes.
fn strtoull(b: &[u8], base: u32) -> Strtoull {
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&c) = b.get(i) {
        if c == b'+' || c == b'-' {
            negative = c == b'-';
            i += 1;
        }
    }
    let mut base = base;
    let hex_prefix = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
    if (base == 0 || base == 16) && hex_prefix {
        i += 2;
        base = 16;
    } else if base == 0 {
        base = if b.get(i) == Some(&b'0') { 8 } else { 10 };
    }
    let start = i;
    let mut acc: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
        match acc.checked_mul(u64::from(base)).and_then(|a| a.checked_add(u64::from(d))) {
            Some(a) => acc = a,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return Strtoull { value: 0, consumed: 0, erange: false };
    }
    let value = if overflow {
        u64::MAX
    } else if negative {
        acc.wrapping_neg()
    } else {
        acc
    };
    Strtoull { value, consumed: i, erange: overflow }
}

enum SizeErr {
    Invalid,
    Range,
}

fn suffix_mul(c: u8) -> Option<u64> {
    Some(match c.to_ascii_uppercase() {
        b'B' => 1,
        b'K' => 1 << 10,
        b'M' => 1 << 20,
        b'G' => 1 << 30,
        b'T' => 1 << 40,
        b'P' => 1 << 50,
        b'E' => 1 << 60,
        _ => return None,
    })
}

/// QEMU 7.2's `qemu_strtosz` (default unit: bytes, multiplier 1024).
fn strtosz(b: &[u8]) -> Result<u64, SizeErr> {
    let (result, end) = strtosz_inner(b);
    if end != b.len() {
        return Err(SizeErr::Invalid);
    }
    result
}

fn strtosz_inner(b: &[u8]) -> (Result<u64, SizeErr>, usize) {
    let r = strtoull(b, 10);
    if r.consumed == 0 {
        return (Err(SizeErr::Invalid), 0);
    }
    if r.erange {
        return (Err(SizeErr::Range), r.consumed);
    }
    let mut end = r.consumed;
    if b[..end].contains(&b'-') {
        return (Err(SizeErr::Invalid), 0);
    }
    let mut val = r.value;
    let mut valf: u64 = 0;
    if val == 0 && matches!(b.get(end), Some(b'x' | b'X')) {
        let r16 = strtoull(b, 16);
        if r16.consumed == 0 {
            return (Err(SizeErr::Invalid), 0);
        }
        if r16.erange {
            return (Err(SizeErr::Range), r16.consumed);
        }
        val = r16.value;
        end = r16.consumed;
        if b.get(end) == Some(&b'.') {
            return (Err(SizeErr::Invalid), 0);
        }
    } else if b.get(end) == Some(&b'.') {
        match strtod_fraction(&b[end..]) {
            None => end += 1,
            Some((_, true, _)) => return (Err(SizeErr::Invalid), 0),
            Some((consumed, false, fraction)) => {
                valf = (fraction * 18_446_744_073_709_551_616.0) as u64;
                end += consumed;
            }
        }
    }
    let mul = match b.get(end).and_then(|&c| suffix_mul(c)) {
        Some(m) => {
            end += 1;
            m
        }
        None => 1,
    };
    if mul == 1 {
        if valf != 0 {
            return (Err(SizeErr::Invalid), 0);
        }
        return (Ok(val), end);
    }
    let whole = u128::from(val) * u128::from(mul);
    let frac = u128::from(valf) * u128::from(mul);
    let total = whole + (frac >> 64) + u128::from((frac as u64) >> 63);
    match u64::try_from(total) {
        Ok(v) => (Ok(v), end),
        Err(_) => (Err(SizeErr::Range), end),
    }
}

/// C `strtod` on a string starting with `.`: `None` if it converts nothing, else
/// (bytes consumed, whether an exponent was consumed, value).
fn strtod_fraction(b: &[u8]) -> Option<(usize, bool, f64)> {
    let mut i = 1;
    while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
    }
    if i == 1 {
        return None;
    }
    let digits = std::str::from_utf8(&b[1..i]).ok()?;
    let value: f64 = format!("0.{digits}").parse().ok()?;
    let mut has_exp = false;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
            while b.get(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
            i = j;
            has_exp = true;
        }
    }
    Some((i, has_exp, value))
}

#[cfg(test)]
#[rustfmt::skip]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("to", "42"), Ok(42));
        assert_eq!(parse_number("to", "0x1f"), Ok(31));
        assert_eq!(parse_number("to", "0X1F"), Ok(31));
        assert_eq!(parse_number("to", "017"), Ok(15));
        assert_eq!(parse_number("to", "0"), Ok(0));
        assert_eq!(parse_number("to", " 7"), Ok(7));
        assert_eq!(parse_number("to", "+7"), Ok(7));
        assert_eq!(parse_number("to", "-1"), Ok(u64::MAX));
        assert_eq!(parse_number("to", "18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_number("to", "abc").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "12x").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "08").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "0x").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "1 ").unwrap_err().to_string(), "Parameter 'to' expects a number");
        assert_eq!(parse_number("to", "18446744073709551616").unwrap_err().to_string(), "Value '18446744073709551616' is too large for parameter 'to'");
        assert_eq!(parse_number("to", "99999999999999999999x").unwrap_err().to_string(), "Parameter 'to' expects a number");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("size", "1k"), Ok(1024));
        assert_eq!(parse_size("size", "1K"), Ok(1024));
        assert_eq!(parse_size("size", "8"), Ok(8));
        assert_eq!(parse_size("size", "8b"), Ok(8));
        assert_eq!(parse_size("size", "2M"), Ok(2 << 20));
        assert_eq!(parse_size("size", "1G"), Ok(1 << 30));
        assert_eq!(parse_size("size", "1t"), Ok(1 << 40));
        assert_eq!(parse_size("size", "1P"), Ok(1 << 50));
        assert_eq!(parse_size("size", "1E"), Ok(1 << 60));
        assert_eq!(parse_size("size", "1.5k"), Ok(1536));
        assert_eq!(parse_size("size", "1.k"), Ok(1024));
        assert_eq!(parse_size("size", "0.5e"), Ok(1 << 59));
        assert_eq!(parse_size("size", "0x10"), Ok(16));
        assert_eq!(parse_size("size", "0x10k"), Ok(16 << 10));
        assert_eq!(parse_size("size", " 4k"), Ok(4096));
        assert_eq!(parse_size("size", "15E"), Ok(15 << 60));
        let invalid = "Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.";
        for bad in ["", "x", "-1", "-1k", "1.5", "1.5b", "1x", "1kk", ".5k", "0x1.5", "1.5e3k", "k"] {
            assert_eq!(parse_size("size", bad).unwrap_err().to_string(), invalid, "{bad}");
        }
        assert_eq!(parse_size("size", "16E").unwrap_err().to_string(), "Value '16E' is out of range for parameter 'size'");
        assert_eq!(parse_size("size", "18446744073709551616").unwrap_err().to_string(), "Value '18446744073709551616' is out of range for parameter 'size'");
        assert_eq!(parse_size("size", "18446744073709551616k").unwrap_err().to_string(), invalid);
    }
}
