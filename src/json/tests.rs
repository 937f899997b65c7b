//! Tests for the JSON module: every case of qmp.md §1, grammar errors, limits, the
//! writer round trip, and a deterministic mutation run.
#![forbid(unsafe_code)]

use super::parser::qemu_lossy;
use super::*;

type Out = Vec<Result<Value, String>>;

fn render(r: &Result<Value, String>) -> String {
    match r {
        Ok(v) => to_string(v),
        Err(e) => format!("ERR {e}"),
    }
}

/// Feeds `input` all at once and byte by byte to `make()` streamers and checks that
/// both give the same results. Returns the whole-feed results.
fn feed_both(make: impl Fn() -> Streamer, input: &[u8]) -> Out {
    let mut whole = make();
    let mut a = Vec::new();
    whole.feed(input, &mut a);
    let mut bytewise = make();
    let mut b = Vec::new();
    for &c in input {
        bytewise.feed(&[c], &mut b);
    }
    assert_eq!(a, b, "whole vs byte-by-byte for {:?}", String::from_utf8_lossy(input));
    a
}

/// One line per case: results rendered as compact JSON, or "ERR desc".
fn run(input: &[u8]) -> Vec<String> {
    feed_both(Streamer::new, input).iter().map(render).collect()
}

fn run_limits(depth: usize, bytes: usize, input: &[u8]) -> Vec<String> {
    feed_both(|| Streamer::with_limits(depth, bytes), input).iter().map(render).collect()
}

/// Expected parse error, `JSON parse error, ` + `s`.
fn e(s: &str) -> String {
    format!("ERR JSON parse error, {s}")
}

fn ok(s: &str) -> String {
    s.to_owned()
}

fn one_err(input: &[u8]) -> String {
    let r = feed_both(Streamer::new, input);
    assert_eq!(r.len(), 1, "one result for {:?}: {:?}", String::from_utf8_lossy(input), r);
    match &r[0] {
        Err(d) => d.clone(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn one_ok(input: &[u8]) -> Value {
    let r = feed_both(Streamer::new, input);
    assert_eq!(r.len(), 1, "one result for {:?}: {:?}", String::from_utf8_lossy(input), r);
    r.into_iter().next().expect("one").expect("ok")
}

/// The desc as the monitor would put it on the wire (a JSON string).
fn wire(desc: &str) -> String {
    to_string(&Value::from(desc))
}

const QN: &str = r#"{"execute": "query-name"}"#;

// ---- §1 Input: framing ----

#[test]
fn several_objects_on_one_line() {
    assert_eq!(
        run(br#"{"execute":"query-name"}{"execute":"query-uuid"}"#),
        [ok(QN), ok(r#"{"execute": "query-uuid"}"#)]
    );
}

#[test]
fn one_object_over_several_writes() {
    let mut s = Streamer::new();
    let mut out = Vec::new();
    s.feed(br#"{"execute":"#, &mut out);
    assert!(out.is_empty());
    s.feed(b"\n", &mut out);
    assert!(out.is_empty());
    s.feed(br#""query-name"}"#, &mut out);
    assert_eq!(out.iter().map(render).collect::<Vec<_>>(), [ok(QN)]);
    assert_eq!(s.pending_bytes(), 0);
}

#[test]
fn whitespace_between_tokens() {
    assert_eq!(
        run(b"\n\t\r\n {\"execute\" : \"query-name\" , \"id\" : [1,{\"a\":null}] }"),
        [ok(r#"{"execute": "query-name", "id": [1, {"a": null}]}"#)]
    );
}

#[test]
fn bare_scalars_complete_on_next_char_strings_on_quote() {
    let mut s = Streamer::new();
    let mut out = Vec::new();
    s.feed(b"42", &mut out);
    assert!(out.is_empty(), "a number waits for the next char");
    s.feed(b"\n", &mut out);
    assert_eq!(out, [Ok(Value::Int(42))]);
    out.clear();
    s.feed(b"null", &mut out);
    assert!(out.is_empty());
    s.feed(b" ", &mut out);
    assert_eq!(out, [Ok(Value::Null)]);
    out.clear();
    s.feed(br#""hi""#, &mut out);
    assert_eq!(out, [Ok(Value::from("hi"))], "a string is complete at its closing quote");
    assert_eq!(run(b"foo\n"), [e("invalid keyword 'foo'")]);
    assert_eq!(run(b"[1,2] true false null 1.5 -7 "), ["[1, 2]", "true", "false", "null", "1.5", "-7"]);
}

#[test]
fn unclosed_brace_swallows_until_resync() {
    let mut s = Streamer::new();
    let mut out = Vec::new();
    s.feed(b"{\"execute\":\"query-name\"\n", &mut out);
    s.feed(br#"{"execute":"query-name"}"#, &mut out);
    assert!(out.is_empty());
    s.feed(b"\xff", &mut out);
    assert_eq!(out.iter().map(render).collect::<Vec<_>>(), [e("stray '\u{FFFD}'")]);
    assert_eq!(wire(out[0].as_ref().unwrap_err()), r#""JSON parse error, stray '\uFFFD'""#);
    out.clear();
    s.feed(br#"{"execute":"query-name","id":1}"#, &mut out);
    assert_eq!(out.iter().map(render).collect::<Vec<_>>(), [r#"{"execute": "query-name", "id": 1}"#]);
    // A NUL byte works too.
    assert_eq!(run(b"{\"execute\":\"query-name\"\n\x00{\"id\":2}"), [e("stray ''"), ok(r#"{"id": 2}"#)]);
}

// ---- §1 dialect table ----

#[test]
fn single_quotes() {
    assert_eq!(run(b"{'execute':'query-name'}"), [ok(QN)]);
    assert_eq!(run(br#"'a"b'"#), [ok(r#""a\"b""#)]);
    assert_eq!(run(br#"'a\'b'"#), [ok(r#""a'b""#)]);
    assert_eq!(run(br#""a\'b""#), [ok(r#""a'b""#)]);
    assert_eq!(run(br#""a'b""#), [ok(r#""a'b""#)]);
    assert_eq!(run(br#"'a\"b'"#), [ok(r#""a\"b""#)]);
}

#[test]
fn stray_characters() {
    assert_eq!(run(b"/* comment */\n"), [e("stray '/'")]);
    assert_eq!(run(b"NaN\n"), [e("stray 'N'")]);
    assert_eq!(run(b"Infinity\n"), [e("stray 'I'")]);
    assert_eq!(run(b"TRUE\n"), [e("stray 'T'")]);
    assert_eq!(run(b"+1\n"), [e("stray '+'")]);
    assert_eq!(run(b"012\n"), [e("stray '01'")]);
    assert_eq!(run(b"1.}"), [e("stray '1.}'")]);
    assert_eq!(run(b"%d\n"), [e("stray '%'")]);
    assert_eq!(run(b"\xff"), [e("stray '\u{FFFD}'")]);
    assert_eq!(run(b"\x00"), [e("stray ''")]);
    assert_eq!(run(b"- 1\n"), [e("stray '- '")]);
    assert_eq!(run(b"1e\n"), [e("stray '1e\n'")]);
    assert_eq!(run(b"1e+}"), [e("stray '1e+}'")]);
    assert_eq!(run(b"-a"), [e("stray '-a'")]);
    assert_eq!(run(b"\x01"), [e("stray '\u{1}'")]);
    assert_eq!(wire(&one_err(b"\x01")), r#""JSON parse error, stray '\u0001'""#);
    // The token text so far is quoted, decoded the way QEMU's writer decodes it.
    assert_eq!(run(b"\"\xc3\xa9\xff"), [e("stray '\"\u{e9}\u{FFFD}'")]);
    assert_eq!(run(b"\"\xc0\x80\x01"), [e("stray '\"\u{0}\u{1}'")]);
    assert_eq!(run(b"\"\xef\xbf\xbf\x01"), [e("stray '\"\u{FFFD}\u{1}'")]);
    assert_eq!(run(b"\"\xf8\x88\x80\x80\x80\x02"), [e("stray '\"\u{FFFD}\u{2}'")]);
    // A NUL ends the quoted token (C string).
    assert_eq!(run(b"\"abc\x00"), [e("stray '\"abc'")]);
}

#[test]
fn lexer_quirks() {
    // '0' ends at 'e': an integer and then a keyword.
    assert_eq!(run(b"0e1 "), ["0".to_string(), e("invalid keyword 'e'"), "1".to_string()]);
    assert_eq!(run(b"[0e]"), [e("expected separator in list")]);
    // A number ends at any byte that cannot continue it.
    assert_eq!(run(b"[1\"a\"]"), [e("expected separator in list")]);
    assert_eq!(run(b"1\xff"), ["1".to_string(), e("stray '\u{FFFD}'")]);
    assert_eq!(run(b"truex "), [e("invalid keyword 'truex'")]);
    assert_eq!(run(b"true1 "), ["true", "1"]);
    assert_eq!(run(b"nullnull "), [e("invalid keyword 'nullnull'")]);
    // Escapes take any non-control byte; the parser judges them afterwards.
    assert_eq!(run(br#""\""}"#), [ok(r#""\"""#), e("expecting value")]);
    // 0xFE/0xFF cannot appear in strings.
    assert_eq!(run(b"\"a\xfe\""), [e("stray '\"a\u{FFFD}'")]);
    // A lone '-' ends at a structural char, which it eats.
    assert_eq!(run(b"[-]"), [e("stray '-]'")]);
}

#[test]
fn keywords() {
    assert_eq!(run(b"foo\n"), [e("invalid keyword 'foo'")]);
    assert_eq!(run(br#"{"a":foo}"#), [e("invalid keyword 'foo'")]);
    assert_eq!(run(b"[nul]"), [e("invalid keyword 'nul'")]);
    let long = format!("{}\n", "a".repeat(2000));
    let d = one_err(long.as_bytes());
    assert_eq!(d.len(), "JSON parse error, ".len() + 1023, "QEMU's 1024-byte message buffer");
    assert!(d.starts_with("JSON parse error, invalid keyword 'aaa"));
}

#[test]
fn integers_and_doubles() {
    assert_eq!(one_ok(b"18446744073709551615 "), Value::UInt(u64::MAX));
    assert_eq!(one_ok(b"9223372036854775807 "), Value::Int(i64::MAX));
    assert_eq!(one_ok(b"9223372036854775808 "), Value::UInt(1 << 63));
    assert_eq!(one_ok(b"-9223372036854775808 "), Value::Int(i64::MIN));
    assert_eq!(run(b"18446744073709551615 "), ["18446744073709551615"]);
    assert_eq!(run(b"-9223372036854775808 "), ["-9223372036854775808"]);
    assert_eq!(run(b"18446744073709551616 "), ["1.8446744073709552e+19"]);
    assert_eq!(run(b"-9223372036854775809 "), ["-9.2233720368547758e+18"]);
    assert_eq!(run(b"123456789012345678901234567890 "), ["1.2345678901234568e+29"]);
    assert_eq!(one_ok(b"1E2 "), Value::Double(100.0));
    assert_eq!(
        run(b"1E2 1.5e3 -0 -1.0 0.1 1e400 -1e400 1e-400 "),
        ["100", "1500", "0", "-1", "0.10000000000000001", "inf", "-inf", "0"]
    );
    assert_eq!(one_ok(b"-0 "), Value::Int(0));
    assert_eq!(run(b"-0.0 "), ["-0"]);
    assert_eq!(run(b"0.5E-2 2e+2 7E+0 "), ["0.0050000000000000001", "200", "7"]);
    assert_eq!(run(br#"{"id":[1,{"a":18446744073709551616}]}"#), [ok(r#"{"id": [1, {"a": 1.8446744073709552e+19}]}"#)]);
}

#[test]
fn duplicate_keys() {
    assert_eq!(run(br#"{"a":1,"a":2}"#), [e("duplicate key")]);
    assert_eq!(run(br#"{"execute":"x","execute":"x"}"#), [e("duplicate key")]);
    assert_eq!(run(br#"{"a":{"b":1},"b":{"b":2}}"#), [ok(r#"{"a": {"b": 1}, "b": {"b": 2}}"#)]);
    // The value is parsed before the duplicate check.
    assert_eq!(run(br#"{"a":1,"a":[1 2]}"#), [e("expected separator in list")]);
    // A big object uses a hash set for the check; same answers.
    let mut big = String::from("{");
    for i in 0..100 {
        big.push_str(&format!("\"k{i}\":{i},"));
    }
    let dup = format!("{big}\"k57\":0}}");
    assert_eq!(run(dup.as_bytes()), [e("duplicate key")]);
    let fine = format!("{big}\"k100\":0}}");
    assert_eq!(one_ok(fine.as_bytes()).as_object().map(Object::len), Some(101));
}

#[test]
fn control_chars_in_strings() {
    assert_eq!(run(b"\"a\tb\"\n"), [e("stray '\"a\t'")]);
    assert_eq!(wire(&one_err(b"\"a\t")), r#""JSON parse error, stray '\"a\t'""#);
    // TAB does not end recovery; the final '}' does.
    assert_eq!(run(b"{\"execute\":\"a\tb\"}"), [e("stray '\"a\t'"), e("expecting value")]);
    assert_eq!(run(b"\"a\x01\""), [e("stray '\"a\u{1}'")]);
    assert_eq!(run(b"'a\nb'"), [e("stray ''a\n'")]);
}

#[test]
fn unicode_escapes() {
    assert_eq!(one_ok(br#""\u0000""#), Value::from("\u{0}"));
    assert_eq!(run(br#"{"id":"\u0000"}"#), [ok(r#"{"id": "\u0000"}"#)]);
    assert_eq!(one_ok(br#""\uD83D\uDE00""#), Value::from("\u{1F600}"));
    assert_eq!(run(br#""\uD83D\uDE00""#), [ok(r#""\uD83D\uDE00""#)]);
    assert_eq!(run(br#""\u00e9\u20AC""#), [ok(r#""\u00E9\u20AC""#)]);
    assert_eq!(one_err(br#""\ud83d""#), r"JSON parse error, \ud83d is not a valid Unicode character");
    assert_eq!(wire(&one_err(br#""\ud83d""#)), r#""JSON parse error, \\ud83d is not a valid Unicode character""#);
    assert_eq!(one_err(br#""\uffff""#), r"JSON parse error, \uffff is not a valid Unicode character");
    assert_eq!(one_err(br#""\uFFFE""#), r"JSON parse error, \uFFFE is not a valid Unicode character");
    assert_eq!(one_err(br#""\uFDD0""#), r"JSON parse error, \uFDD0 is not a valid Unicode character");
    assert_eq!(one_err(br#""\ude00""#), r"JSON parse error, \ude00 is not a valid Unicode character");
    // A lead surrogate followed by a \u that is not a trail: only the first escape is shown.
    assert_eq!(one_err(br#""\ud83d\u0041""#), r"JSON parse error, \ud83d is not a valid Unicode character");
    assert_eq!(one_err(br#""\ud83d\uzzzz""#), r"JSON parse error, \ud83d is not a valid Unicode character");
    // Pairs that encode noncharacters are rejected too (U+1FFFF, U+10FFFF).
    // Then QEMU shows both escapes (12 bytes).
    assert_eq!(one_err(br#""\uD83F\uDFFF""#), r"JSON parse error, \uD83F\uDFFF is not a valid Unicode character");
    assert_eq!(one_err(br#""\uDBFF\uDFFF""#), r"JSON parse error, \uDBFF\uDFFF is not a valid Unicode character");
    // Short or bad hex: QEMU shows 6 bytes from the backslash, cut at the token end.
    assert_eq!(one_err(br#""\u12""#), r#"JSON parse error, \u12" is not a valid Unicode character"#);
    assert_eq!(one_err(br#""\u""#), r#"JSON parse error, \u" is not a valid Unicode character"#);
    assert_eq!(one_err(br#""\uzzzzzz""#), r"JSON parse error, \uzzzz is not a valid Unicode character");
    assert_eq!(one_err(br#"{"a":"\u12"}"#), r#"JSON parse error, \u12" is not a valid Unicode character"#);
    assert_eq!(one_err("\"\\u1\u{e9}\"".as_bytes()), "JSON parse error, \\u1\u{e9}\" is not a valid Unicode character");
    assert_eq!(
        one_err("\"\\u12\u{20ac}\"".as_bytes()),
        "JSON parse error, \\u12\u{FFFD} is not a valid Unicode character"
    );
}

#[test]
fn escapes() {
    assert_eq!(one_ok(br#""\"\\\/\b\f\n\r\t""#), Value::from("\"\\/\u{8}\u{c}\n\r\t"));
    assert_eq!(one_err(br#""\x""#), "JSON parse error, invalid escape sequence in string");
    assert_eq!(one_err(br#""\U0041""#), "JSON parse error, invalid escape sequence in string");
    assert_eq!(one_err(br#""\0""#), "JSON parse error, invalid escape sequence in string");
    assert_eq!(one_err(b"\"\\\xc3\xa9\""), "JSON parse error, invalid escape sequence in string");
}

#[test]
fn utf8_in_strings() {
    let bad = "JSON parse error, invalid UTF-8 sequence in string";
    assert_eq!(one_err(b"\"\xc3b\""), bad);
    assert_eq!(one_err(b"\"\xc3\""), bad);
    assert_eq!(one_err(b"\"\xf8\x88\x80\x80\x80\""), bad);
    assert_eq!(one_err(b"\"\xfc\x84\x80\x80\x80\x80\""), bad);
    assert_eq!(one_err(b"\"\xf4\x8f\xbf\xbf\""), bad, "U+10FFFF is a noncharacter");
    assert_eq!(one_err(b"\"\xef\xbf\xbe\""), bad, "U+FFFE");
    assert_eq!(one_err(b"\"\xed\xa0\xbd\""), bad, "encoded surrogate");
    assert_eq!(one_err(b"\"\xe0\x80\x80\""), bad, "overlong 3-byte NUL");
    assert_eq!(one_err(b"\"\xc1\xbf\""), bad, "overlong");
    assert_eq!(one_err(b"\"\x80\""), bad, "stray continuation byte");
    assert_eq!(one_err(b"\"\xf4\x90\x80\x80\""), bad, "above U+10FFFF");
    assert_eq!(one_ok(b"\"\xc0\x80\""), Value::from("\u{0}"));
    assert_eq!(
        one_ok("\"\u{e9}\u{20ac}\u{1F600}\u{10FFFD}\"".as_bytes()),
        Value::from("\u{e9}\u{20ac}\u{1F600}\u{10FFFD}")
    );
    assert_eq!(one_ok(b"\"\x7f\""), Value::from("\u{7f}"));
}

#[test]
fn grammar_errors() {
    assert_eq!(run(br#"{"a":1,}"#), [e("expecting value")]);
    assert_eq!(run(b"[1,]"), [e("expecting value")]);
    assert_eq!(run(b"}"), [e("expecting value")]);
    assert_eq!(run(b"]"), [e("expecting value")]);
    assert_eq!(run(b":"), [e("expecting value")]);
    assert_eq!(run(b","), [e("expecting value")]);
    assert_eq!(run(br#"{"execute" "x"}"#), [e("missing : in object pair")]);
    assert_eq!(run(br#"{"a"}"#), [e("missing : in object pair")]);
    assert_eq!(run(b"{1:2}"), [e("key is not a string in object")]);
    assert_eq!(run(b"{true:2}"), [e("key is not a string in object")]);
    assert_eq!(run(b"{[1,2]:3}"), [e("key is not a string in object")]);
    assert_eq!(run(b"{[1 2]:3}"), [e("expected separator in list")]);
    assert_eq!(run(b"{foo:1}"), [e("invalid keyword 'foo'")]);
    assert_eq!(run(b"[1 2]"), [e("expected separator in list")]);
    assert_eq!(run(br#"{"a":1 "b":2}"#), [e("expected separator in dict")]);
    assert_eq!(run(br#"{"a":1]"#), [e("expected separator in dict")]);
    assert_eq!(run(b"[1}"), [e("expected separator in list")]);
    assert_eq!(run(b"{,}"), [e("expecting value")]);
    assert_eq!(run(b"[,]"), [e("expecting value")]);
    assert_eq!(run(br#"{"a":}"#), [e("expecting value")]);
    assert_eq!(run(br#"{"a"::1}"#), [e("expecting value")]);
    assert_eq!(run(b"[:]"), [e("expecting value")]);
    assert_eq!(run(b"{]"), [e("expecting value")]);
    assert_eq!(run(b"[1]]"), ["[1]".to_string(), e("expecting value")]);
    // One error per complete message; the tokens after the error still count braces.
    assert_eq!(run(br#"[1 2, {"a":1}] {"b":2}"#), [e("expected separator in list"), ok(r#"{"b": 2}"#)]);
    // Braces and brackets are counted separately, as QEMU does: `[[}` ends the message
    // because the brace count went negative.
    assert_eq!(run(b"[[}"), [e("expecting value")]);
    assert_eq!(run(b"[{]}"), [e("expecting value")]);
    assert_eq!(run(b"[{]"), Vec::<String>::new());
}

// ---- §1 resync ----

#[test]
fn resync_at_sign_example() {
    assert_eq!(
        run(br#"{"execute":"query-name", @ "id":6}{"execute":"query-name","id":7}"#),
        [
            e("stray '@'"),
            e("expecting value"),
            ok("6"),
            e("expecting value"),
            ok(r#"{"execute": "query-name", "id": 7}"#)
        ]
    );
}

#[test]
fn resync_comment_example() {
    assert_eq!(run(br#"{"execute":"query-name" /* c */}"#), [e("stray '/'"), e("expecting value")]);
}

#[test]
fn garbage_before_object() {
    assert_eq!(run(br#"xyz {"execute":"query-name"}"#), [e("invalid keyword 'xyz'"), ok(QN)]);
}

#[test]
fn unterminated_string_ends_at_lf() {
    assert_eq!(run(b"\"abc\n{\"execute\":\"query-name\"}"), [e("stray '\"abc\n'"), ok(QN)]);
    assert_eq!(wire(&one_err(b"\"abc\n")), r#""JSON parse error, stray '\"abc\n'""#);
}

#[test]
fn recovery_points() {
    // Skipped: anything but structural chars, control chars other than TAB, 0xFE, 0xFF.
    assert_eq!(run(b"@ abc \t \"x\" 12 [1]"), [e("stray '@'"), ok("[1]")]);
    // A control char ends recovery and is then itself stray.
    assert_eq!(run(b"@ abc\x01[1]"), [e("stray '@'"), e("stray '\u{1}'"), ok("[1]")]);
    // So does 0xFE.
    assert_eq!(run(b"@ abc\xfe[1]"), [e("stray '@'"), e("stray '\u{FFFD}'"), ok("[1]")]);
    // CR and LF end it quietly.
    assert_eq!(run(b"@ abc\r1 "), [e("stray '@'"), ok("1")]);
}

// ---- §1 limits ----

#[test]
fn depth_limit() {
    let ok_input = format!("{}{}", "[".repeat(1024), "]".repeat(1024));
    let r = feed_both(Streamer::new, ok_input.as_bytes());
    assert_eq!(r.len(), 1);
    assert!(r[0].is_ok());
    let mixed = format!("{}{}", "{\"a\":[".repeat(512), "]}".repeat(512));
    assert!(one_ok(mixed.as_bytes()).as_object().is_some());

    let bad = format!("{}{}", "[".repeat(1025), "]".repeat(1025));
    let r = run(bad.as_bytes());
    assert_eq!(r.len(), 1026);
    assert_eq!(r[0], "ERR JSON nesting depth limit exceeded");
    assert!(r[1..].iter().all(|x| *x == e("expecting value")));
    // And the stream is usable afterwards.
    assert_eq!(run(format!("{bad}{{\"a\":1}}").as_bytes()).last().map(String::as_str), Some(r#"{"a": 1}"#));

    assert_eq!(
        run_limits(2, 1000, b"[[1]] [[[1]]]"),
        [
            "[[1]]",
            "ERR JSON nesting depth limit exceeded",
            "1",
            &e("expecting value"),
            &e("expecting value"),
            &e("expecting value")
        ]
    );
}

#[test]
fn token_count_limit() {
    let mk = || {
        let mut s = Streamer::new();
        s.set_max_tokens(5);
        s
    };
    let r: Vec<String> = feed_both(mk, b"[1,2] [1,2,3]").iter().map(render).collect();
    assert_eq!(r, ["[1, 2]", "ERR JSON token count limit exceeded", &e("expecting value")]);
}

#[test]
fn byte_cap_counts_token_bytes_only() {
    assert_eq!(run_limits(1024, 7, b"{  \"a\"  :  1  }"), [r#"{"a": 1}"#]);
    assert_eq!(run_limits(1024, 6, br#"{"a":1}"#), ["ERR JSON token size limit exceeded"]);
    assert_eq!(run_limits(1024, 6, br#"{"a":1} [1]"#), ["ERR JSON token size limit exceeded", "[1]"]);
    // A scalar token alone is capped as well.
    assert_eq!(run_limits(1024, 4, b"123456 [1]"), ["ERR JSON token size limit exceeded", "[1]"]);
}

#[test]
fn byte_cap_hit_early_and_bounded() {
    const CAP: usize = 1 << 20;
    let mut s = Streamer::new();
    let mut out = Vec::new();
    let head = br#"{"execute":"x","arguments":{"data":""#;
    s.feed(head, &mut out);
    let chunk = vec![b'a'; 4096];
    let mut fed = head.len();
    let mut max_pending = 0;
    let mut erred_at = None;
    for _ in 0..(3 * CAP / chunk.len()) {
        s.feed(&chunk, &mut out);
        fed += chunk.len();
        max_pending = max_pending.max(s.pending_bytes());
        if erred_at.is_none() && !out.is_empty() {
            erred_at = Some(fed);
        }
    }
    assert_eq!(out.iter().map(render).collect::<Vec<_>>(), ["ERR JSON token size limit exceeded"]);
    let at = erred_at.expect("error reported");
    assert!(at > CAP && at <= CAP + chunk.len(), "reported in the chunk that crossed the cap ({at})");
    assert!(max_pending <= CAP, "pending bytes bounded ({max_pending})");
    assert_eq!(s.pending_bytes(), 0, "the rest of the string is skipped, not held");
    // Rest of the giant message, then resync and a good command.
    out.clear();
    s.feed(br#""}}{"execute":"x"}"#, &mut out);
    assert_eq!(
        out.iter().map(render).collect::<Vec<_>>(),
        [e("expecting value"), e("expecting value"), ok(r#"{"execute": "x"}"#)]
    );
}

#[test]
fn byte_cap_chunked_equals_whole() {
    let mut input = br#"{"execute":"x","arguments":{"data":""#.to_vec();
    input.extend(std::iter::repeat_n(b'b', 3000));
    input.extend_from_slice(br#""}}{"execute":"y"}"#);
    let r = run_limits(1024, 1000, &input);
    assert_eq!(
        r,
        ["ERR JSON token size limit exceeded", &e("expecting value"), &e("expecting value"), r#"{"execute": "y"}"#]
    );
}

// ---- writer round trip ----

const ROUND_TRIP: &[&str] = &[
    r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#,
    r#"{"return": {}}"#,
    r#"{"return": {"UUID": "00000000-0000-0000-0000-000000000000"}}"#,
    r#"{"return": {}, "id": [1, {"a": null}]}"#,
    r#"{"id": "a", "error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'foo'"}}"#,
    r#"{"timestamp": {"seconds": 1795598615, "microseconds": 754047}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}"#,
    r#"[18446744073709551615, -9223372036854775808, 1.8446744073709552e+19, 0.10000000000000001, 1500, -1, 0]"#,
    r#"["\u0000\u0001\u001F\u007F\b\f\n\r\t\"\\/", "\u00E9\uD83D\uDE00\uFFFD"]"#,
    r#"[[], {}, [[]], [{}], {"a": {"b": {"c": []}}}]"#,
    r#""just a string""#,
    r#"true"#,
    r#"null"#,
    r#"-5"#,
    r#"2.4999999999999999e-08"#,
];

#[test]
fn round_trip() {
    for text in ROUND_TRIP {
        let input = format!("{text} ");
        let v = one_ok(input.as_bytes());
        assert_eq!(to_string(&v), *text, "compact round trip");
        let pretty = to_string_pretty(&v);
        assert_eq!(one_ok(format!("{pretty} ").as_bytes()), v, "pretty output parses back");
        let mut s = String::new();
        write_compact(&v, &mut s);
        write_pretty(&v, &mut s);
        assert_eq!(s, format!("{text}{pretty}"));
    }
}

#[test]
fn qemu_lossy_matches_qemu_decoder() {
    assert_eq!(qemu_lossy(b"ab"), "ab");
    assert_eq!(qemu_lossy(b"\xff\xfe"), "\u{FFFD}\u{FFFD}");
    assert_eq!(qemu_lossy(b"\xc0\x80"), "\u{0}");
    assert_eq!(qemu_lossy(b"\xe2\x82"), "\u{FFFD}");
    assert_eq!(qemu_lossy(b"\xe2\x82x"), "\u{FFFD}x");
    assert_eq!(qemu_lossy(b"\xf8\x88\x80\x80\x80z"), "\u{FFFD}z");
    assert_eq!(qemu_lossy(b"\xef\xbf\xbf"), "\u{FFFD}");
    assert_eq!(qemu_lossy(b"a\x00b"), "a");
}

// ---- deterministic mutation test ----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CORPUS: &[&[u8]] = &[
    br#"{"execute":"qmp_capabilities"}"#,
    br#"{"execute":"query-name","id":1}"#,
    br#"{'execute':'query-status','id':'a'}"#,
    br#"{"execute":"getfd","arguments":{"fdname":"x"},"id":[1,{"a":null}]}"#,
    br#"{"execute":"chardev-add","arguments":{"id":"r","backend":{"type":"ringbuf","data":{"size":1024}}}}"#,
    br#"{"execute":"ringbuf-write","arguments":{"device":"r","data":"\u00e9\uD83D\uDE00\n\t\"\\"}}"#,
    br#"{"execute":"human-monitor-command","arguments":{"command-line":"info version"}}"#,
    br#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#,
    br#"{"exec-oob":"migrate-recover","id":"e"}"#,
    br#"[1, 2.5, -0, 1E2, 18446744073709551616, true, false, null]"#,
    br#"{"execute":"query-name", @ "id":6}{"execute":"query-name","id":7}"#,
    br#"{"execute":"query-name" /* c */}"#,
    b"xyz {\"execute\":\"query-name\"}",
    b"\"abc\n{\"execute\":\"query-name\"}",
    br#"{"a":1,"a":2}"#,
    br#"{1:2}"#,
    br#"{"execute" "x"}"#,
    br#"[1,]"#,
    br#""\ud83d" "\uffff" "\x""#,
    b"\"\xc3b\" \"\xc0\x80\" \"\xf4\x8f\xbf\xbf\"",
    b"012 1.} +1 NaN TRUE %d",
    b"\xff\x00{\"execute\":\"query-name\"}",
    br#"[[[[[[[[[[]]]]]]]]]]"#,
    br#"{"id":{"a":{"b":{"c":{"d":[{},[],{}]}}}}}"#,
    b"42\nnull\n\"hi\"\nfoo\n",
    br#"{"execute":"add-fd","arguments":{"fdset-id":1,"opaque":"x"},"id":99}"#,
    br#"{"a":'b',"c":[1,2,3],"d":{"e":-1.5e-3}}"#,
    br#"{"execute":"x","id":9223372036854775807}"#,
    b"{\"a\":\"\t\"}",
    br#"{"execute":"quit"}{"execute":"system_reset"}"#,
];

const BYTES: &[u8] = b"{}[]\"'\\\xff\x00\n:,\t0-e.u\xc0\x80\xf4 a/";
const SNIPPETS: &[&[u8]] =
    &[b"\\u", b"\\ud83d", b"1e400", b"true", b"{\"a\":", b"]]]]", b"[[[[", b"\\uDE00", b"''", b"\"\""];

fn mutate(rng: &mut XorShift, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = BYTES[rng.below(BYTES.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, BYTES[rng.below(BYTES.len())]);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below(4);
                v.drain(i..(i + n).min(len));
            }
            4 => v.truncate(rng.below(len + 1)),
            5 if len > 0 => {
                let i = rng.below(len);
                let j = i + rng.below(len - i + 1);
                let piece = v[i..j].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, piece);
            }
            6 => {
                let other = CORPUS[rng.below(CORPUS.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let s = SNIPPETS[rng.below(SNIPPETS.len())];
                let at = rng.below(len + 1);
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v.truncate(400);
    v
}

#[test]
fn mutation_chunking_and_recovery() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut oks = 0usize;
    let mut errs = 0usize;
    for round in 0..100_000 {
        let base = CORPUS[rng.below(CORPUS.len())];
        let input = mutate(&mut rng, base);
        // Every fourth input runs with tight limits so the limit paths get exercised.
        let tight = round % 4 == 0;
        let make = || {
            if tight {
                Streamer::with_limits(3, 64)
            } else {
                Streamer::new()
            }
        };

        let mut whole = make();
        let mut a = Vec::new();
        whole.feed(&input, &mut a);

        let mut chunked = make();
        let mut b = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let n = 1 + rng.below(9);
            let end = (pos + n).min(input.len());
            chunked.feed(&input[pos..end], &mut b);
            pos = end;
        }
        assert_eq!(a, b, "chunked differs for {:?}", String::from_utf8_lossy(&input));
        assert!(chunked.pending_bytes() <= if tight { 2 * 64 } else { 2 * input.len() });

        for r in &a {
            match r {
                Ok(v) => {
                    oks += 1;
                    let text = to_string(v);
                    assert!(text.is_ascii());
                    if !text.contains("inf") && !text.contains("nan") {
                        let mut s = Streamer::new();
                        let mut back = Vec::new();
                        s.feed(format!("{text} ").as_bytes(), &mut back);
                        // Double(100.0) comes back as Int(100), as in QEMU; the text is stable.
                        assert_eq!(back.len(), 1, "round trip of {text}");
                        assert_eq!(back[0].as_ref().map(to_string), Ok(text.clone()));
                    }
                }
                Err(d) => {
                    errs += 1;
                    assert!(d.starts_with("JSON "), "{d}");
                    assert!(to_string(&Value::from(d.as_str())).is_ascii());
                }
            }
        }

        let mut tail = Vec::new();
        chunked.feed(b"\xff{\"execute\":\"x\"}", &mut tail);
        let last = tail.last().expect("at least the recovered command");
        let want = Value::from(Object::new().with("execute", "x"));
        assert_eq!(last, &Ok(want), "no recovery after {:?}", String::from_utf8_lossy(&input));
        assert_eq!(chunked.pending_bytes(), 0);
    }
    // The corpus and mutations must reach both outcomes often.
    assert!(oks > 10_000 && errs > 100_000, "oks {oks} errs {errs}");
}

// ---- differential test against a real QEMU, skipped when none is installed ----

/// Inputs whose every byte matters: limits, long tokens, each byte value in several
/// lexer states, Unicode edge cases, numbers, QDict ordering of echoed ids.
fn differential_cases() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = CORPUS.iter().map(|c| c.to_vec()).collect();
    let mut add = |x: &[u8]| v.push(x.to_vec());
    add(format!("{}{}", "[".repeat(1024), "]".repeat(1024)).as_bytes());
    add(format!("{}{}", "[".repeat(1025), "]".repeat(1025)).as_bytes());
    add(format!("{{\"id\":{}1{}}}", "{\"a\":".repeat(1023), "}".repeat(1023)).as_bytes());
    add(format!("{}\n", "a".repeat(2000)).as_bytes());
    add(format!("\"{}\x01", "b".repeat(3000)).as_bytes());
    for d in ["-0.0", "1e400", "-1e400", "1e-400", "5e-324", "0.1", "2.5e-8", "1e17", "1e16", "-0", "1E2", "-1.0"] {
        add(format!("{{\"id\":{d}}}").as_bytes());
    }
    for d in ["18446744073709551616", "-9223372036854775809", "9223372036854775808", "123456.125e-3"] {
        add(format!("{{\"id\":{d}}}").as_bytes());
    }
    for s in [
        "\\uFDD0",
        "\\uFDF0",
        "\\uD800\\uDC00",
        "a\\u0000b",
        "\x7f",
        "\\uD83D\\u",
        "\\u12",
        "\\uD83F\\uDFFF",
        "\u{e9}\u{10fffd}",
    ] {
        add(format!("{{\"id\":\"{s}\"}}").as_bytes());
    }
    for b in [
        &b"\xc0\x80"[..],
        b"\xe0\x80\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xe2\x82",
        b"\xef\xb7\x90",
    ] {
        add(&[&b"{\"id\":\""[..], b, b"\"}"].concat());
        add(&[&b"\""[..], b, b"\x01"].concat());
        add(&[&b"{\"id\":\"\\u1"[..], b, b"\"}"].concat());
    }
    for c in 0u8..=255 {
        add(&[b'{', b'"', b'i', b'd', b'"', b':', b'"', b'a', c, b'"', b'}']);
        add(&[c, b'[', b'1', b']']);
        add(&[b'@', b' ', c, b'[', b'1', b']']);
        add(&[b'1', b'.', c, b' ', b'[', b'1', b']']);
    }
    for keys in [["running", "singlestep", "status"], ["status", "singlestep", "running"], ["major", "minor", "micro"]]
    {
        let members: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("\"{k}\":{i}")).collect();
        add(format!("{{\"id\":{{{}}}}}", members.join(",")).as_bytes());
    }
    v
}

/// Kills and reaps QEMU and removes its socket, however the test ends.
struct Qemu(std::process::Child, std::path::PathBuf);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// Feeds the same bytes to QEMU 7.2 (before capabilities negotiation, so no command
/// runs) and to the Streamer, and checks every reply: parse errors byte for byte,
/// non-objects, and the echoed `id` (which exercises the writer and QDict order).
#[test]
fn differential_against_qemu() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    // The expectations are QEMU 7.2's; other versions may differ (e.g. in QDict order).
    let version = Command::new("qemu-system-x86_64").arg("--version").output();
    match version {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("version 7.2.") => {}
        _ => {
            eprintln!("no qemu-system-x86_64 7.2: differential test skipped");
            return;
        }
    }
    let sock = std::env::temp_dir().join(format!("fdmon-json-diff-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let spawned = Command::new("qemu-system-x86_64")
        .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = spawned.expect("spawn qemu-system-x86_64");
    let _qemu = Qemu(child, sock.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(Instant::now() < deadline, "QEMU did not open its QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut read_line = || {
        let mut l = String::new();
        reader.read_line(&mut l).expect("read from QEMU");
        assert!(l.ends_with("\r\n"), "QEMU line: {l:?}");
        l.truncate(l.len() - 2);
        l
    };
    assert!(read_line().starts_with(r#"{"QMP": {"version": {"qemu": {"micro": "#));

    let mut inputs = differential_cases();
    let mut rng = XorShift(0x005E_ED0F_D1FF);
    for _ in 0..3000 {
        let base = CORPUS[rng.below(CORPUS.len())];
        inputs.push(mutate(&mut rng, base));
    }
    let mut checked = 0;
    for (n, mut input) in inputs.into_iter().enumerate() {
        input.push(0xff);
        input.extend_from_slice(format!("{{\"execute\":\"sync\",\"id\":\"SYNC-{n}\"}}").as_bytes());
        let results = feed_both(Streamer::new, &input);
        let negotiates = results.iter().any(|r| {
            r.as_ref().ok().and_then(Value::as_object).and_then(|o| o.get("execute")).and_then(Value::as_str)
                == Some("qmp_capabilities")
        });
        if negotiates {
            continue; // Would leave negotiation mode and let later commands run.
        }
        writer.write_all(&input).expect("write to QEMU");
        let mut got = Vec::new();
        loop {
            let l = read_line();
            let done = l.starts_with(&format!("{{\"id\": \"SYNC-{n}\""));
            got.push(l);
            if done {
                break;
            }
        }
        let what = String::from_utf8_lossy(&input).into_owned();
        assert_eq!(got.len(), results.len(), "reply count for {what:?}: {got:?}");
        for (r, g) in results.iter().zip(&got) {
            match r {
                Err(d) => {
                    let want = format!(r#"{{"error": {{"class": "GenericError", "desc": {}}}}}"#, wire(d));
                    assert_eq!(*g, want, "for {what:?}");
                }
                Ok(Value::Object(o)) => match o.get("id") {
                    Some(id) => {
                        let mut id = id.clone();
                        id.qdict_order();
                        let want = format!(r#"{{"id": {}, "error": {{"class": ""#, to_string(&id));
                        assert!(g.starts_with(&want), "for {what:?}: {g} vs {want}");
                    }
                    None => assert!(g.starts_with(r#"{"error": {"class": ""#) && !g.contains(r#""desc": "JSON "#)),
                },
                Ok(_) => assert_eq!(
                    *g, r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#,
                    "for {what:?}"
                ),
            }
        }
        checked += 1;
    }
    assert!(checked > 4000, "checked {checked}");
}

/// The deepest value a peer can send (1024 levels, arrays and objects mixed) goes through
/// everything fdmon does with a request's `id`: clone, compare, QDict order, both writers,
/// drop. `Value`'s derived impls recurse, so this runs on a 1 MiB stack (debug build), an eighth
/// of the 8 MiB main thread fdmon runs on: the parser's depth limit bounds them.
#[test]
fn deepest_value_on_a_small_stack() {
    let t = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let text = format!("{}1{}", "{\"b\":[".repeat(512), "]}".repeat(512));
            let mut v = one_ok(text.as_bytes());
            let w = v.clone();
            assert_eq!(v, w);
            v.qdict_order();
            assert_eq!(to_string(&v).len(), text.len() + 512);
            assert!(to_string_pretty(&w).len() > text.len());
            let _ = format!("{w:?}");
            drop(v);
            drop(w);
        })
        .unwrap();
    t.join().unwrap();
}

// ---- the borrowed walk agrees with the full parse ----

/// The object `walk_object` saw, rebuilt, or the whole value it fell back to.
fn walked(raw: RawMessage<'_>) -> Result<Value, String> {
    let mut members = Object::new();
    match raw.walk_object(|k, item| members.insert(String::from_utf8_lossy(k).into_owned(), item.into_value()))? {
        Walk::Walked => Ok(Value::Object(members)),
        Walk::Value(v) => {
            // A fallback is only for non-objects and objects with many members.
            assert!(v.as_object().map_or(true, |o| o.len() > 4), "needless fallback for {v}");
            Ok(v)
        }
    }
}

fn walk_vs_parse(input: &[u8], tight: bool) {
    let mut s = if tight { Streamer::with_limits(3, 64) } else { Streamer::new() };
    let _ = s.feed_each(input, |m| {
        if let Message::Complete(raw) = m {
            assert_eq!(walked(raw), raw.parse(), "walk differs for {:?}", String::from_utf8_lossy(input));
        }
        std::ops::ControlFlow::Continue(())
    });
}

#[test]
fn walk_object_matches_parse() {
    for c in CORPUS {
        walk_vs_parse(c, false);
    }
    for c in [
        &br#"{}"#[..],
        br#"{"a":1,}"#,
        br#"{,}"#,
        br#"{"a"}"#,
        br#"{"a":}"#,
        br#"{"a":1 "b":2}"#,
        br#"{[1,]:2}"#,
        br#"{{}:2}"#,
        br#"{foo:1}"#,
        br#"{1.5:1}"#,
        br#"{"\x":1}"#,
        br#"{"a":"\x"}"#,
        br#"{"a":1,"b":2,"c":3,"d":4,"a":5}"#,
        br#"{"a":1,"b":2,"c":3,"d":4,"e":5}"#,
        br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"e":6}"#,
        br#"{"a":[1,}"#,
        br#"{"a":{}, "b":[], "c":{"x":[]}}"#,
        br#"{"k\u00e9":'v\u00e9', "\u0000":"\u0000"}"#,
        br#"{"a":1}}"#,
        br#"{"a":]}"#,
        br#"{"a":[}]}"#,
    ] {
        walk_vs_parse(c, false);
    }
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for round in 0..50_000 {
        let base = CORPUS[rng.below(CORPUS.len())];
        walk_vs_parse(&mutate(&mut rng, base), round % 4 == 0);
    }
}

#[test]
fn walk_borrows_plain_strings() {
    let mut s = Streamer::new();
    let mut seen = Vec::new();
    let _ = s.feed_each(br#"{"execute":"query-status","id":"a\n"}"#, |m| {
        let Message::Complete(raw) = m else { panic!("an error") };
        let w = raw.walk_object(|k, item| {
            seen.push((
                String::from_utf8_lossy(k).into_owned(),
                matches!(&item, Item::Str(std::borrow::Cow::Borrowed(_))),
                item.into_value(),
            ))
        });
        assert_eq!(w, Ok(Walk::Walked));
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(
        seen,
        [("execute".to_string(), true, Value::from("query-status")), ("id".to_string(), false, Value::from("a\n"))]
    );
}

#[test]
fn feed_each_stops_when_told() {
    let mut s = Streamer::new();
    let mut n = 0;
    let flow = s.feed_each(b"1 2 3 4 ", |_| {
        n += 1;
        if n == 2 {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    });
    assert_eq!((flow, n), (std::ops::ControlFlow::Break(()), 2));
    // Between messages: the next feed starts clean.
    assert_eq!(run_on(&mut s, b"[5] "), ["[5]"]);
}

fn run_on(s: &mut Streamer, input: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    s.feed(input, &mut out);
    out.iter().map(render).collect()
}

// ---- the streaming writer gives the old writer's bytes ----

fn same_as_old_writer(v: &Value) {
    assert_eq!(to_string(v), super::old_writer::to_string(v), "compact");
    let pretty = super::old_writer::to_string_pretty(v);
    assert_eq!(to_string_pretty(v), pretty, "pretty");
    let mut crlf = Vec::new();
    Writer::new(&mut crlf, Layout::PrettyCrlf).value(v);
    assert_eq!(String::from_utf8(crlf).unwrap(), pretty.replace('\n', "\r\n"), "pretty crlf");
}

#[test]
fn writer_matches_old_writer_over_corpus() {
    let mut n = 0;
    let mut rng = XorShift(0x5851_F42D_4C95_7F2D);
    let mut inputs: Vec<Vec<u8>> = CORPUS.iter().map(|c| c.to_vec()).collect();
    inputs.extend(ROUND_TRIP.iter().map(|c| c.as_bytes().to_vec()));
    for _ in 0..30_000 {
        let base = CORPUS[rng.below(CORPUS.len())];
        inputs.push(mutate(&mut rng, base));
    }
    for input in &inputs {
        let mut out = Vec::new();
        Streamer::new().feed(input, &mut out);
        for v in out.iter().flatten() {
            same_as_old_writer(v);
            n += 1;
        }
    }
    for d in [0.0, -0.0, 0.1, 1e300, -1e-300, f64::INFINITY, f64::NAN, 5e-324, 1500.0] {
        same_as_old_writer(&Value::Double(d));
    }
    for i in [0, 1, -1, 9, 10, -10, i64::MIN, i64::MAX] {
        same_as_old_writer(&Value::Int(i));
    }
    same_as_old_writer(&Value::UInt(u64::MAX));
    let all: String =
        (0u32..0x800).chain([0xFFFD, 0xFFFE, 0xFFFF, 0xFDD0, 0x1F600, 0x10FFFF]).filter_map(char::from_u32).collect();
    same_as_old_writer(&Value::from(Object::new().with(all.as_str(), all.as_str())));
    assert!(n > 5_000, "{n} values");
}

#[test]
fn writer_streams_fixed_shapes() {
    let shape = |layout| {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, layout);
        w.begin_object().key("return").begin_object();
        w.key("status").str("running").key("singlestep").bool(false).key("n").int(-42).key("u").uint(7);
        w.key("list").begin_array().int(1).begin_object().end_object().begin_array().end_array().null().end_array();
        w.end_object().key("id").str("a\"b\u{e9}");
        w.end_object();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        shape(Layout::Compact),
        r#"{"return": {"status": "running", "singlestep": false, "n": -42, "u": 7, "list": [1, {}, [], null]}, "id": "a\"b\u00E9"}"#
    );
    let pretty = "{\r\n    \"return\": {\r\n        \"status\": \"running\",\r\n        \"singlestep\": false,\r\n        \"n\": -42,\r\n        \"u\": 7,\r\n        \"list\": [\r\n            1,\r\n            {\r\n            },\r\n            [\r\n            ],\r\n            null\r\n        ]\r\n    },\r\n    \"id\": \"a\\\"b\\u00E9\"\r\n}";
    assert_eq!(shape(Layout::PrettyCrlf), pretty);
    assert_eq!(shape(Layout::Pretty), pretty.replace("\r\n", "\n"));
    // The writer only appends.
    let mut out = b"keep".to_vec();
    Writer::new(&mut out, Layout::Compact).int(0);
    assert_eq!(out, b"keep0");
}

/// Simple objects are read straight from the input when all of one is there; byte by
/// byte they go through the lexer. Both must agree, also on near misses.
#[test]
fn simple_objects_read_at_once_match_the_lexer() {
    for input in [
        &br#"{"execute":"query-status","id":1}"#[..],
        br#" { "execute" : "stop" , "id" : -0 , "arguments" : { } } "#,
        b"{\t\"a\"\r:\n[]}{}",
        br#"{"a":true,"b":false,"c":null,"d":"x y"}"#,
        br#"{"a":1,"b":2,"c":3,"d":4,"e":5}"#,
        br#"{"a":1,"a":2}"#,
        br#"{"a":999999999999999999,"b":-999999999999999999}"#,
        br#"{"a":9999999999999999999}"#,
        br#"{"a":01}"#,
        br#"{"a":1.5}"#,
        br#"{"a":1e3}"#,
        br#"{"a":-}"#,
        br#"{"a":nul}"#,
        br#"{"a":nulll}"#,
        br#"{"a":truex}"#,
        br#"{"a":"\n"}"#,
        br#"{"a":'x'}"#,
        br#"{"a":{"b":1}}"#,
        br#"{"a":[1]}"#,
        br#"{"a":1,}"#,
        br#"{"a" 1}"#,
        br#"{"a":1 "b":2}"#,
        b"{\"a\":\"\x7f\"}",
        b"{\"\xc3\xa9\":1}",
        br#"{"a":1}}"#,
        br#"{"a":1"#,
        br#"{"a":1"#,
    ] {
        let _ = run(input);
        let _ = run_limits(1, 8, input);
        let _ = run_limits(2, 30, input);
    }
    assert_eq!(run(br#"{"a":true,"b":false,"c":null,"d":-12}"#), [r#"{"a": true, "b": false, "c": null, "d": -12}"#]);
}
