//! Hostile peers: inputs built to exhaust the stack or memory. fdmon answers with an error
//! and keeps serving the same connection.

mod common;

use common::*;

const STATUS: &str = r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#;

fn alive(c: &mut Client) {
    assert_eq!(c.cmd(r#"{"execute":"query-status"}"#), STATUS);
}

fn hmp(c: &mut Client, line: &str) -> String {
    let req = format!(
        r#"{{"execute":"human-monitor-command","arguments":{{"command-line":{}}}}}"#,
        fdmon::json::to_string(&fdmon::json::Value::from(line))
    );
    c.cmd(&req)
}

/// 200,000 nested parentheses in an HMP expression (QEMU 7.2 overflows its stack and
/// segfaults): fdmon refuses the expression and keeps serving.
#[test]
fn deep_hmp_expression_is_an_error_not_a_crash() {
    let (mut f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x"]);
    c.negotiate();
    let n = 200_000;
    let line = format!("ringbuf_read x {}1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "expression too deeply nested\r\nTry \"help ringbuf_read\" for more information\r\n"}"#
    );
    // Unary operators nest the same way.
    let line = format!("ringbuf_read x {}1", "-~".repeat(n));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "expression too deeply nested\r\nTry \"help ringbuf_read\" for more information\r\n"}"#
    );
    alive(&mut c);
    // A modest depth still evaluates.
    let line = format!("ringbuf_read x {}1{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(hmp(&mut c, &line), r#"{"return": "\r\n"}"#);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}

/// `ringbuf-write` base64 accepts and refuses what QEMU 7.2 does (the full table is the unit
/// test in `src/base64.rs`): `\n` is skipped, spaces are refused, `=` is a zero digit anywhere,
/// an incomplete last group is dropped.
#[test]
fn ringbuf_base64_like_qemu() {
    let (f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x"]);
    c.negotiate();
    let invalid = r#"{"error": {"class": "GenericError", "desc": "Base64 data contains invalid characters"}}"#;
    for (data, read) in [("aG\\nk=", Some("aGk=")), ("a=Gk", Some("aAGk")), ("aGVsbG8", Some("aGVs")), ("aGk= ", None)]
    {
        let w = c.cmd(&format!(
            r#"{{"execute":"ringbuf-write","arguments":{{"device":"x","data":"{data}","format":"base64"}}}}"#
        ));
        let r = c.cmd(r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":100,"format":"base64"}}"#);
        match read {
            Some(want) => {
                assert_eq!(w, r#"{"return": {}}"#, "{data}");
                assert_eq!(r, format!(r#"{{"return": "{want}"}}"#), "{data}");
            }
            None => {
                assert_eq!(w, invalid, "{data}");
                assert_eq!(r, r#"{"return": ""}"#, "{data}");
            }
        }
    }
    drop(f);
}

/// 200,000 unclosed `[` (and `{"a":` pairs): each 1025th level is "JSON nesting depth limit
/// exceeded" (QEMU's limit and text); a lexical error resynchronises and the connection
/// answers again.
#[test]
fn deep_json_is_an_error_not_a_crash() {
    let (mut f, mut c) = qmp_pair(&[]);
    c.negotiate();
    for open in ["[", r#"{"a":"#] {
        c.send(&open.repeat(200_000));
        c.send_bytes(b"\xff\n");
        c.send(r#"{"execute":"query-status"}"#);
        let mut depth_errors = 0;
        loop {
            let l = c.line();
            if l == STATUS {
                break;
            }
            depth_errors += usize::from(l.contains("JSON nesting depth limit exceeded"));
            assert!(l.starts_with(r#"{"error": {"class": "GenericError", "desc": "#), "{l}");
        }
        assert!(depth_errors > 0, "{open}");
    }
    // Deep arguments go through schema validation (which follows the schema, not the value).
    let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
    assert_eq!(
        c.cmd(&format!(r#"{{"execute":"ringbuf-write","arguments":{{"device":"x","data":{deep}}}}}"#)),
        r#"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'data', expected: string"}}"#
    );
    assert_eq!(
        c.cmd(&format!(r#"{{"execute":"query-status","arguments":{{"x":{deep}}}}}"#)),
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}"#
    );
    alive(&mut c);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A 1 MiB `chardev-add a,a,a,...` line: QEMU's first warning and error, and fdmon never
/// holds more than a few MiB for it (it used to peak at ~200 MiB: hundreds of bytes kept per
/// item of the option string).
#[test]
fn huge_option_string_is_bounded() {
    let (mut f, mut c) = qmp_pair(&[]);
    c.negotiate();
    let line = format!("chardev-add null,id=n,{}", "a,".repeat(500_000));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "warning: short-form boolean option 'a' deprecated\r\nPlease use a=on instead\r\nInvalid parameter 'a'\r\nError: Parsing chardev args failed\r\n"}"#
    );
    let line = format!("chardev-add null,id=n,{}", "logfile=x,".repeat(100_000));
    assert_eq!(
        hmp(&mut c, &line),
        r#"{"return": "too many options (fdmon takes at most 4096 in one string)\r\nError: Parsing chardev args failed\r\n"}"#
    );
    alive(&mut c);
    let peak = peak_rss_kib(f.pid());
    assert!(peak < 32 * 1024, "fdmon peaked at {peak} KiB");
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}

/// Deterministic structure-aware mutation (builds on `garbage_never_crashes_fdmon` in
/// `tests/qmp.rs`, which throws random bytes): valid requests from a corpus, mutated by byte
/// flips, interesting bytes, truncation, duplication, splicing and extra nesting, sent in
/// batches; after each batch fdmon must be alive and answer `query-status` exactly.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, corpus: &[&str]) -> Vec<u8> {
        const BYTES: &[u8] = b"{}[]:,\"'\\ \n\t0-+.eE9azux=()*/~$\x00\x1b\x7f\xc0\x80\xc3\xa9\xed\xa0\x80\xf4\xff";
        let mut v = corpus[self.below(corpus.len())].as_bytes().to_vec();
        for _ in 0..1 + self.below(3) {
            let at = self.below(v.len() + 1);
            match self.below(7) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = BYTES[self.below(BYTES.len())];
                }
                2 => v.truncate(at),
                3 => {
                    let len = self.below(v.len() - at + 1);
                    let dup = v[at..at + len].to_vec();
                    v.splice(at..at, dup);
                }
                4 => {
                    let other = corpus[self.below(corpus.len())].as_bytes();
                    let from = self.below(other.len());
                    v.truncate(at);
                    v.extend_from_slice(&other[from..]);
                }
                5 => {
                    let open = [b"[".as_slice(), b"{\"a\":", b"\"\\u", b"(", b"- ~"][self.below(5)];
                    // Now and then deep enough to overflow any unbounded recursion.
                    let n = if self.below(60) == 0 { 30_000 } else { 1 + self.below(40) };
                    let ins: Vec<u8> = open.iter().copied().cycle().take(open.len() * n).collect();
                    v.splice(at..at, ins);
                }
                _ => v.insert(at, BYTES[self.below(BYTES.len())]),
            }
        }
        v
    }
}

/// Requests that would end fdmon or touch the file system are not sent.
fn harmless(text: &[u8]) -> bool {
    let t = String::from_utf8_lossy(text).to_lowercase();
    let q = ["quit", "powerdown", "file", "path", "pipe", "socket", "stdio", "daemon"];
    !q.iter().any(|w| t.contains(w)) && !t.contains(":\"q") && !t.contains(": \"q") && !t.starts_with('q')
}

/// After a batch: resynchronise the lexer, make sure the VM runs, and read until the marked
/// `query-status` reply, which must be exact. Every line before it must be a QMP reply.
fn sync(f: &mut Fdmon, c: &mut Client, n: usize) {
    c.send_bytes(b"\xff\n{\"execute\":\"cont\"}\xff\n");
    c.send(&format!(r#"{{"execute":"query-status","id":"sync-{n}"}}"#));
    let want =
        format!(r#"{{"return": {{"status": "running", "singlestep": false, "running": true}}, "id": "sync-{n}"}}"#);
    loop {
        let l = c.line();
        if l.contains(&format!(r#""sync-{n}""#)) {
            assert_eq!(l, want);
            break;
        }
        // Replies can be larger than a request may be (escapes grow), so only short ones are
        // parsed in full.
        assert!(l.starts_with('{') && l.ends_with('}'), "not a QMP message: {}", &l[..l.len().min(300)]);
        if l.len() < 65536 {
            let v = parse(&l);
            let o = v.as_object().unwrap_or_else(|| panic!("not a QMP message: {l}"));
            assert!(o.contains_key("return") || o.contains_key("error") || o.contains_key("event"), "{l}");
        }
    }
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died in batch {n}");
}

#[test]
fn mutated_requests_never_break_the_connection() {
    let (mut f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x,size=4096", "-name", "vm"]);
    c.negotiate();
    let qmp: &[&str] = &[
        r#"{"execute":"query-status","id":{"a":[1,2.5e3,-0,true,null,"\u00e9\ud83d\ude00"]}}"#,
        r#"{"execute":"query-name"}"#,
        r#"{"execute":"query-chardev","id":[[[[["deep"]]]]]}"#,
        r#"{"execute":"query-commands"}"#,
        r#"{"execute":"ringbuf-write","arguments":{"device":"x","data":"aGVsbG8=","format":"base64"}}"#,
        r#"{"execute":"ringbuf-write","arguments":{"device":"x","data":"h\u0000i\n\"q\\"}}"#,
        r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":100,"format":"utf8"}}"#,
        r#"{"execute":"chardev-add","arguments":{"id":"r1","backend":{"type":"ringbuf","data":{"size":64}}}}"#,
        r#"{"execute":"chardev-add","arguments":{"id":"n1","backend":{"type":"null","data":{}}}}"#,
        r#"{"execute":"chardev-remove","arguments":{"id":"r1"}}"#,
        r#"{"execute":"stop"}"#,
        r#"{"execute":"cont"}"#,
        r#"{"execute":"query-fdsets"}"#,
        r#"{"execute":"getfd","arguments":{"fdname":"x"}}"#,
        r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#,
        r#"{"exec-oob":"query-status","id":"o"}"#,
        r#"{'execute':'query-version','id':'single \' quoted'}"#,
        r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}"#,
        r#"[1,{"execute":"query-status"},"x",{}]"#,
        "123 \"str\" -1.5e-3 true",
    ];
    let mut m = Mutator(0x2545F4914F6CDD1D);
    let mut sent = 0;
    for batch in 0..30 {
        let mut buf = Vec::new();
        while buf.len() < 16 * 1024 {
            let v = m.mutate(qmp);
            if harmless(&v) {
                buf.extend_from_slice(&v);
                buf.push(b'\n');
                sent += 1;
            }
        }
        c.send_bytes(&buf);
        sync(&mut f, &mut c, batch);
    }
    assert!(sent > 2000, "{sent}");
    let hmp_lines: &[&str] = &[
        "info status",
        "info chardev",
        "info name",
        "ringbuf_read x (1+2)*3-~4/5%6&7|8^9",
        "ringbuf_read x 'a'+0x1f-017",
        "ringbuf_write x \"quoted \\\"str\\\" \\n\"",
        "ringbuf_write x plain",
        "chardev-add ringbuf,id=r2,size=1024",
        "chardev-add null,id=n2,nodelay,noserver",
        "chardev-remove r2",
        "help info",
        "help",
        "stop",
        "c",
        "closefd nope",
        "x/10x 0",
    ];
    let mut sent = 0;
    for batch in 30..50 {
        let mut buf = Vec::new();
        while buf.len() < 16 * 1024 {
            let v = m.mutate(hmp_lines);
            if harmless(&v) {
                let line = String::from_utf8_lossy(&v).into_owned();
                buf.extend_from_slice(
                    format!(
                        r#"{{"execute":"human-monitor-command","arguments":{{"command-line":{}}}}}"#,
                        fdmon::json::to_string(&fdmon::json::Value::from(line))
                    )
                    .as_bytes(),
                );
                sent += 1;
            }
        }
        c.send_bytes(&buf);
        sync(&mut f, &mut c, batch);
    }
    assert!(sent > 1000, "{sent}");
    drop(f);
}

/// One reply line of many MiB, read in linear time (the client helpers rescan their buffer).
/// Only for replies that come alone: nothing may be buffered in `c`.
fn big_line(c: &mut Client) -> String {
    use std::io::Read;
    let mut line = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while !line.ends_with(b"\r\n") {
        let n = c.stream.read(&mut buf).expect("read");
        assert!(n > 0, "EOF");
        line.extend_from_slice(&buf[..n]);
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).unwrap()
}

/// `ringbuf-read` returns at most 1 MiB per request whatever `size` says (QEMU returns the
/// whole buffer, up to 1 GiB, in one reply); the rest stays for the next read. Reading a
/// 2 MiB buffer with `size` 1 GiB in one go costs fdmon a bounded amount of memory.
#[test]
fn ringbuf_read_is_bounded() {
    let (mut f, mut c) = qmp_pair(&["-chardev", "ringbuf,id=x,size=2M"]);
    c.negotiate();
    // Control bytes are the worst case for the JSON writer (`\u0001` is 6 bytes); written as
    // base64 (AQEB = three 0x01), 512 KiB per request.
    let write = format!(
        r#"{{"execute":"ringbuf-write","arguments":{{"device":"x","data":"{}","format":"base64"}}}}"#,
        "AQEB".repeat((512 << 10) / 3 + 1)
    );
    let fill = |c: &mut Client| {
        for _ in 0..4 {
            assert_eq!(c.cmd(&write), r#"{"return": {}}"#);
        }
    };
    fill(&mut c);
    let before = peak_rss_kib(f.pid());
    let read = r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1073741824}}"#;
    for _ in 0..2 {
        c.send(read);
        let r = big_line(&mut c);
        assert_eq!(r.len(), r#"{"return": ""}"#.len() + (6 << 20), "{}", &r[..100]);
    }
    assert_eq!(c.cmd(read), r#"{"return": ""}"#);
    let grown = peak_rss_kib(f.pid()) - before;
    assert!(grown < 48 * 1024, "one ringbuf-read grew fdmon by {grown} KiB");
    // HMP and base64 share the limit: of 2 MiB, HMP takes 1 MiB, base64 gets the other.
    fill(&mut c);
    c.send(r#"{"execute":"human-monitor-command","arguments":{"command-line":"ringbuf_read x 0x40000000"}}"#);
    big_line(&mut c);
    c.send(r#"{"execute":"ringbuf-read","arguments":{"device":"x","size":1073741824,"format":"base64"}}"#);
    assert_eq!(big_line(&mut c).len(), r#"{"return": ""}"#.len() + (1 << 20) / 3 * 4 + 4);
    assert_eq!(c.cmd(read), r#"{"return": ""}"#);
    alive(&mut c);
    assert!(f.child.try_wait().unwrap().is_none(), "fdmon died");
    drop(f);
}
