//! Standard base64 (RFC 4648, with padding) for `ringbuf-write`/`ringbuf-read`.
#![forbid(unsafe_code)]

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `ringbuf-write`'s base64 exactly as QEMU 7.2 does: the text may hold only the 64
/// alphabet characters, `=` and `\n` (anything else, spaces and `\r` included, is `None`:
/// "Base64 data contains invalid characters"). Then GLib's lenient decoder runs: `\n` is
/// skipped, `=` counts as a zero digit anywhere, every complete group of four digits yields
/// three bytes minus one for each of its last two digits that is `=`, and a trailing
/// incomplete group is dropped.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n');
    if !text.bytes().all(valid) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut digits = 0;
    // The last two digits of the group, newest first.
    let mut last = [0u8; 2];
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => 0,
            _ => continue,
        };
        last = [c, last[0]];
        acc = (acc << 6) | u32::from(v);
        digits += 1;
        if digits == 4 {
            out.push((acc >> 16) as u8);
            if last[1] != b'=' {
                out.push((acc >> 8) as u8);
            }
            if last[0] != b'=' {
                out.push(acc as u8);
            }
            digits = 0;
            acc = 0;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert_eq!(encode(b"hi"), "aGk=");
        assert_eq!(encode(b""), "");
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("w6nAgHo=").unwrap(), vec![0xc3, 0xa9, 0xc0, 0x80, b'z']);
        assert_eq!(decode("!!!"), None);
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&v)).unwrap(), v);
        }
    }

    /// `ringbuf-write` with `format: base64` on QEMU 7.2 (qemu-system-x86_64 -machine none,
    /// `-chardev ringbuf,id=rb,size=4096`), each input followed by a base64 `ringbuf-read`
    /// that drains the buffer: the bytes QEMU wrote (hex), or `None` where QEMU answered
    /// "Base64 data contains invalid characters".
    const QEMU_7_2: &[(&str, Option<&str>)] = &[
        ("", Some("")),
        ("aGVsbG8=", Some("68656c6c6f")),
        ("aGVsbG8", Some("68656c")),
        ("aGVsbG8==", Some("68656c6c6f")),
        ("aGVsbA==", Some("68656c6c")),
        ("aGVsbA=", Some("68656c")),
        ("aGVsbA", Some("68656c")),
        ("aGVsbA===", Some("68656c6c")),
        ("aGk=", Some("6869")),
        ("aGk", Some("")),
        ("aA==", Some("68")),
        ("aA=", Some("")),
        ("aA", Some("")),
        ("a", Some("")),
        ("ab", Some("")),
        ("abc", Some("")),
        ("abcd", Some("69b71d")),
        ("abcde", Some("69b71d")),
        ("aG k=", None),
        (" aGk=", None),
        ("aGk= ", None),
        ("aGk=\n", Some("6869")),
        ("aG\nk=", Some("6869")),
        ("aG\tk=", None),
        ("aG\rk=", None),
        ("\n", Some("")),
        ("a=Gk", Some("6801a4")),
        ("aG=k", Some("6824")),
        ("=aGk", Some("01a1a4")),
        ("aGk=aGk=", Some("68696869")),
        ("aGk==aGk", Some("686901a1a4")),
        ("aA==aA==", Some("6868")),
        ("====", Some("00")),
        ("=", Some("")),
        ("==", Some("")),
        ("a===", Some("68")),
        ("aGVsbG8=\n", Some("68656c6c6f")),
        ("aGV\nsbG8=", Some("68656c6c6f")),
        ("aGVs\nbG8=", Some("68656c6c6f")),
        ("!!!", None),
        ("aGk!", None),
        ("aGk-", None),
        ("aGk_", None),
        ("aGVs bG8=", None),
        ("YQ", Some("")),
        ("YR==", Some("61")),
        ("YWJ", Some("")),
        ("YWJj", Some("616263")),
        ("YWJi", Some("616262")),
        ("YWI=", Some("6162")),
        ("YWJ=", Some("6162")),
        ("/+/+", Some("ffeffe")),
        ("-_-_", None),
        ("aGVsbG8=aGk=", Some("68656c6c6f6869")),
        ("\u{e9}", None),
        ("aGk=\u{0}", None),
        ("aGVsbG8=\r\n", None),
        ("aGVs\r\nbG8=\r\n", None),
        ("a\u{b}Gk=", None),
        ("a\u{c}Gk=", None),
    ];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn decodes_like_qemu_7_2() {
        for (input, want) in QEMU_7_2 {
            assert_eq!(decode(input).map(|b| hex(&b)).as_deref(), *want, "input {input:?}");
        }
    }
}
