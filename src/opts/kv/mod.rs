//! The QemuOpts `key=value,...` option syntax: splitting an option string into items
//! (implied first key, `,,` escapes, short-form booleans with their deprecation warnings),
//! checking items against a key list (booleans, numbers, sizes, identifiers) and the exact
//! error texts QEMU prints for all of that. Pure string handling: it never touches the OS
//! and never prints anything itself.
//!
//! The error type is in `error`, the C number emulation (`strtoull`, `qemu_strtosz`) in
//! `cnum`.

mod cnum;
mod error;

use std::borrow::Cow;

pub use cnum::{parse_number, parse_size};
pub use error::OptError;

/// How a key's value is checked (QemuOpts' `QEMU_OPT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    Str,
    Bool,
    Number,
    Size,
}

impl OptType {
    fn help_name(self) -> &'static str {
        match self {
            OptType::Str => "str",
            OptType::Bool => "bool (on/off)",
            OptType::Number => "num",
            OptType::Size => "size",
        }
    }
}

/// One accepted key of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptDesc {
    pub name: &'static str,
    pub ty: OptType,
    /// One-line description for `-opt ...,help`.
    pub help: Option<&'static str>,
    /// Accepted (for QEMU compatibility of the check order) but not listed by `help`.
    pub hidden: bool,
}

impl OptDesc {
    pub const fn new(name: &'static str, ty: OptType) -> OptDesc {
        OptDesc { name, ty, help: None, hidden: false }
    }
    pub const fn with_help(self, help: &'static str) -> OptDesc {
        OptDesc { help: Some(help), ..self }
    }
    pub const fn hidden(self) -> OptDesc {
        OptDesc { hidden: true, ..self }
    }
}

/// The key list of one option (QemuOpts' `QemuOptsList`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptsList {
    /// Used in `Duplicate ID 'x' for NAME` and `NAME options:`.
    pub name: &'static str,
    /// The key of a first item written without `=` (`-chardev null` = `backend=null`).
    pub implied_key: Option<&'static str>,
    /// All occurrences of the option merge into one (`-name`); `id=` is then rejected.
    pub merge_lists: bool,
    /// Accepted keys. `id` is always accepted (unless `merge_lists`) and never listed here.
    pub desc: &'static [OptDesc],
}

impl OptsList {
    pub fn find(&self, key: &str) -> Option<&OptDesc> {
        self.desc.iter().find(|d| d.name == key)
    }

    /// Splits `arg` with this list's implied key (see [`parse_kv`]).
    #[cfg(test)]
    pub fn parse<'a>(&self, arg: &'a str) -> KvList<'a> {
        parse_kv(arg, self.implied_key)
    }

    /// What `-opt ...,help` prints on stdout: `NAME options:` then one sorted line per key.
    pub fn help_text(&self) -> String {
        let mut lines: Vec<String> = self
            .desc
            .iter()
            .filter(|d| !d.hidden)
            .map(|d| {
                let mut s = format!("  {}=<{}>", d.name, d.ty.help_name());
                if let Some(h) = d.help {
                    while s.len() < 24 {
                        s.push(' ');
                    }
                    s.push_str(" - ");
                    s.push_str(h);
                }
                s
            })
            .collect();
        lines.sort_unstable();
        let mut out = if lines.is_empty() {
            format!("There are no options for {}.\n", self.name)
        } else {
            format!("{} options:\n", self.name)
        };
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// Why checking an option string stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseStop {
    /// A `help` (or `?`) item: print [`OptsList::help_text`] on stdout; QEMU then exits 1.
    Help,
    Error(OptError),
}

/// The outcome of [`KvList::validate`]: the warnings to print (in order, before anything
/// else about this option) and whether the option string is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub warnings: Vec<String>,
    pub result: Result<(), ParseStop>,
}

/// One item of a split option string, borrowed from it (a value is copied only to undo
/// `,,`). `id` items are kept here too, but [`KvList::get`] and the item checks skip them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<'a> {
    key: &'a str,
    value: Cow<'a, str>,
    /// Index into `KvList::warnings` of the warning this item produced.
    warning: Option<u32>,
    /// A bare `help` / `?` item.
    help: bool,
}

/// A split option string, borrowing its keys and values from it (argv lives for the whole
/// run): every `key=value` in order, duplicates kept; the id is [`KvList::id`] and is not
/// one of [`KvList::pairs`]. `warnings` holds the short-form boolean warnings of the whole
/// string, each `warning: ...` + `\n` + `Please use ... instead`, without any
/// `fdmon: -opt ARG: ` prefix. Use [`KvList::validate`] to learn which of them QEMU would
/// actually print (it stops at the first bad item).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvList<'a> {
    entries: Vec<Entry<'a>>,
    pub warnings: Vec<String>,
    id: Option<Cow<'a, str>>,
    /// The string had more than [`MAX_ITEMS`] items; only the first ones were kept.
    overflow: bool,
}

/// Most items one option string is split into. QEMU has no limit; fdmon stops there so that
/// a 1 MiB `human-monitor-command` line (`chardev-add a,a,a,...`) cannot make it hold a few
/// hundred bytes per input byte. Validation reports the first bad item among those kept, as
/// QEMU would, and only then [`OptError::TooManyItems`].
pub const MAX_ITEMS: usize = 4096;

/// Splits a QemuOpts string. Never fails: every string has a meaning at this stage.
///
/// - Items are separated by `,`; `,,` inside a value is a literal comma.
/// - A first item without `=` is the value of `implied_key` (when given).
/// - Any other item without `=` is a short-form boolean: `foo` = `foo=on`, `nofoo` = `foo=off`,
///   each with a two-line deprecation warning (none for `help` / `?`).
/// - The id is the value of the first `id` item, read the way QEMU reads it (without the
///   implied key), so the first `id=` wins.
pub fn parse_kv<'a>(arg: &'a str, implied_key: Option<&'static str>) -> KvList<'a> {
    parse_impl(arg, implied_key, true)
}

/// Like [`parse_kv`] but the way QEMU parses the tail of a legacy `-qmp unix:...` device:
/// no warnings, no `help` items, no id (`id` items are dropped).
pub fn parse_kv_quiet<'a>(arg: &'a str, implied_key: Option<&'static str>) -> KvList<'a> {
    parse_impl(arg, implied_key, false)
}

fn parse_impl<'a>(arg: &'a str, implied_key: Option<&'static str>, noisy: bool) -> KvList<'a> {
    let mut kv = KvList::default();
    // QEMU reads the id from the string split without the implied key. That split has the
    // same items as this one, except when the first item takes the implied key and, read as
    // a bare word, is an `id`/`noid` flag or ends at a `,,` escape: then split again.
    let mut rescan = false;
    // At most one item per `,` plus one: sized once (bounded by the string and MAX_ITEMS).
    let n = (arg.bytes().filter(|&b| b == b',').count() + 1).min(MAX_ITEMS);
    kv.entries.reserve_exact(n);
    let mut p = arg;
    let mut first = implied_key;
    let mut count = 0;
    while !p.is_empty() {
        if count >= MAX_ITEMS {
            kv.overflow = true;
            break;
        }
        count += 1;
        let item = next_item(p, first);
        if first.is_some() && item.implied {
            let bare = &p[..p.bytes().position(|b| b == b',').unwrap_or(p.len())];
            rescan = matches!(bare, "id" | "noid") || matches!(item.value, Cow::Owned(_));
        }
        first = None;
        p = item.rest;
        if noisy && kv.id.is_none() && item.name == "id" && !item.implied {
            kv.id = Some(item.value.clone());
        }
        let mut warning = None;
        let mut help = false;
        if noisy {
            if let Some(flag) = item.flag {
                if flag.is_help {
                    help = true;
                } else {
                    warning = Some(kv.warnings.len() as u32);
                    kv.warnings.push(flag_warning(item.name, flag.negated));
                }
            }
        }
        if item.name == "id" && !noisy {
            // The legacy tail has no id: its `id` items are dropped.
            continue;
        }
        kv.entries.push(Entry { key: item.name, value: item.value, warning, help });
    }
    if noisy && (rescan || kv.overflow) {
        kv.id = scan_id(arg);
    }
    kv
}

fn scan_id(arg: &str) -> Option<Cow<'_, str>> {
    let mut p = arg;
    while !p.is_empty() {
        let item = next_item(p, None);
        if item.name == "id" {
            return Some(item.value);
        }
        p = item.rest;
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct Flag {
    negated: bool,
    is_help: bool,
}

/// One item, borrowed from the option string (a value is copied only to undo `,,`).
struct Item<'a> {
    name: &'a str,
    value: Cow<'a, str>,
    flag: Option<Flag>,
    /// The value of the implied key (the item has no `=`).
    implied: bool,
    rest: &'a str,
}

fn next_item<'a>(params: &'a str, implied: Option<&'a str>) -> Item<'a> {
    // A byte scan: both delimiters are ASCII, so `len` is a char boundary.
    let len = params.bytes().position(|b| b == b'=' || b == b',').unwrap_or(params.len());
    let (name, value, flag, after);
    let mut is_implied = false;
    if params.as_bytes().get(len) != Some(&b'=') {
        if let Some(implied) = implied {
            let (v, a) = opt_value(params);
            is_implied = true;
            name = implied;
            value = v;
            flag = None;
            after = a;
        } else {
            let raw = &params[..len];
            after = &params[len..];
            if let Some(stripped) = raw.strip_prefix("no") {
                name = stripped;
                value = "off".into();
                flag = Some(Flag { negated: true, is_help: false });
            } else {
                name = raw;
                value = "on".into();
                flag = Some(Flag { negated: false, is_help: is_help_option(raw) });
            }
        }
    } else {
        name = &params[..len];
        let (v, a) = opt_value(&params[len + 1..]);
        value = v;
        flag = None;
        after = a;
    }
    Item { name, value, flag, implied: is_implied, rest: after.strip_prefix(',').unwrap_or(after) }
}

/// Reads a value up to the next single `,`, turning each `,,` into `,` (borrowed when there
/// is none).
fn opt_value(mut p: &str) -> (Cow<'_, str>, &str) {
    match p.bytes().position(|b| b == b',') {
        None => return (p.into(), ""),
        Some(i) if p.as_bytes().get(i + 1) != Some(&b',') => return (p[..i].into(), &p[i..]),
        Some(_) => {}
    }
    let mut value = String::new();
    loop {
        match p.find(',') {
            None => {
                value.push_str(p);
                return (value.into(), "");
            }
            Some(i) if p.as_bytes().get(i + 1) == Some(&b',') => {
                value.push_str(&p[..=i]);
                p = &p[i + 2..];
            }
            Some(i) => {
                value.push_str(&p[..i]);
                return (value.into(), &p[i..]);
            }
        }
    }
}

fn flag_warning(name: &str, negated: bool) -> String {
    let prefix = if negated { "no" } else { "" };
    let advice = if name == "delay" {
        format!("nodelay={}", if negated { "on" } else { "off" })
    } else {
        format!("{}={}", name, if negated { "off" } else { "on" })
    };
    format!(
        "warning: short-form boolean option '{prefix}{name}' deprecated\n\
         Please use {advice} instead"
    )
}

/// `help` and `?` ask for help wherever QEMU accepts a help request.
pub fn is_help_option(s: &str) -> bool {
    s == "help" || s == "?"
}

/// QEMU's identifier rule: an ASCII letter, then ASCII letters, digits, `-`, `.`, `_`.
pub fn id_wellformed(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

impl<'a> KvList<'a> {
    /// An empty list that already has an id (as QEMU's legacy `-qmp` devices do).
    pub fn with_id(id: impl Into<Cow<'a, str>>) -> KvList<'a> {
        KvList { id: Some(id.into()), ..KvList::default() }
    }

    /// The option's id (first `id=` item); `None` when there is none.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The id as stored: borrowed from the option string unless it had to be copied.
    pub fn id_cow(&self) -> Option<&Cow<'a, str>> {
        self.id.as_ref()
    }

    /// Every `key=value` but the `id` items, in order (duplicates kept).
    pub fn pairs(&self) -> impl DoubleEndedIterator<Item = (&'a str, &str)> + '_ {
        self.entries.iter().filter(|e| e.key != "id").map(|e| (e.key, &*e.value))
    }

    /// The value of `key`: the last occurrence wins, except for `id` (see [`KvList::id`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        if key == "id" {
            return self.id();
        }
        self.entries.iter().rev().find(|e| e.key == key).map(|e| &*e.value)
    }

    /// The value of `key` as [`KvList::get`] finds it, borrowed from the option string
    /// unless it had to be copied.
    pub fn get_cow(&self, key: &str) -> Option<Cow<'a, str>> {
        if key == "id" {
            return self.id.clone();
        }
        self.entries.iter().rev().find(|e| e.key == key).map(|e| e.value.clone())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The last value of `key` as a boolean.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, OptError> {
        self.get(key).map(|v| parse_bool(key, v)).transpose()
    }

    /// The last value of `key` as a QemuOpts number (decimal, `0x` hex or `0` octal).
    pub fn get_number(&self, key: &str) -> Result<Option<u64>, OptError> {
        self.get(key).map(|v| parse_number(key, v)).transpose()
    }

    /// The last value of `key` as a size (`1k` = 1024, suffixes B K M G T P E).
    pub fn get_size(&self, key: &str) -> Result<Option<u64>, OptError> {
        self.get(key).map(|v| parse_size(key, v)).transpose()
    }

    /// The distinct keys, in order of first appearance (`id` not included).
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        let e = &self.entries;
        e.iter()
            .enumerate()
            .filter(|(i, x)| x.key != "id" && !e[..*i].iter().any(|p| p.key == x.key))
            .map(|(_, x)| x.key)
    }

    /// Appends `key=value` (QEMU's `qemu_opt_set`); setting `id` replaces the id.
    pub fn set(&mut self, key: &'a str, value: impl Into<Cow<'a, str>>) {
        if key == "id" {
            self.id = Some(value.into());
            return;
        }
        self.entries.push(Entry { key, value: value.into(), warning: None, help: false });
    }

    /// Appends every item of `other` (its id and warnings are ignored).
    pub fn extend(&mut self, other: KvList<'a>) {
        for e in other.entries {
            self.set(e.key, e.value);
        }
    }

    /// Checks the string the way `qemu_opts_parse_noisily` does, in QEMU's order: first the
    /// id (identifier syntax, then `id_taken` for duplicates; `id` at all for a merged list),
    /// then item by item: its warning, a `help` request, unknown key, value type. It stops at
    /// the first problem; `warnings` holds only the warnings QEMU prints before stopping.
    pub fn validate(&self, list: &OptsList, id_taken: &dyn Fn(&str) -> bool) -> Checked {
        let mut warnings = Vec::new();
        if let Err(e) = self.check_id(list, id_taken) {
            return Checked { warnings, result: Err(ParseStop::Error(e)) };
        }
        for e in &self.entries {
            if let Some(w) = e.warning {
                warnings.push(self.warnings[w as usize].clone());
            }
            if e.help {
                return Checked { warnings, result: Err(ParseStop::Help) };
            }
            if e.key == "id" {
                continue;
            }
            if let Err(e) = check_item(list, e.key, &e.value) {
                return Checked { warnings, result: Err(ParseStop::Error(e)) };
            }
        }
        if self.overflow {
            return Checked { warnings, result: Err(ParseStop::Error(OptError::TooManyItems)) };
        }
        Checked { warnings, result: Ok(()) }
    }

    /// Only the item checks of [`KvList::validate`] (keys and value types), no id, no help.
    pub fn check_items(&self, list: &OptsList) -> Result<(), OptError> {
        for (k, v) in self.pairs() {
            check_item(list, k, v)?;
        }
        if self.overflow {
            return Err(OptError::TooManyItems);
        }
        Ok(())
    }

    fn check_id(&self, list: &OptsList, id_taken: &dyn Fn(&str) -> bool) -> Result<(), OptError> {
        let Some(id) = self.id() else { return Ok(()) };
        if list.merge_lists {
            return Err(OptError::InvalidParameter("id".into()));
        }
        if !id_wellformed(id) {
            return Err(OptError::ExpectsIdentifier);
        }
        if id_taken(id) {
            return Err(OptError::DuplicateId { id: id.into(), list: list.name.into() });
        }
        Ok(())
    }
}

fn check_item(list: &OptsList, key: &str, value: &str) -> Result<(), OptError> {
    let desc = match list.find(key) {
        Some(d) => d,
        None if list.desc.is_empty() => return Ok(()),
        None => return Err(OptError::InvalidParameter(key.into())),
    };
    match desc.ty {
        OptType::Str => Ok(()),
        OptType::Bool => parse_bool(key, value).map(|_| ()),
        OptType::Number => parse_number(key, value).map(|_| ()),
        OptType::Size => parse_size(key, value).map(|_| ()),
    }
}

/// `on yes true y` / `off no false n`, case-sensitive.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, OptError> {
    match value {
        "on" | "yes" | "true" | "y" => Ok(true),
        "off" | "no" | "false" | "n" => Ok(false),
        _ => Err(OptError::ExpectsBool(key.into())),
    }
}

#[cfg(test)]
#[rustfmt::skip]
mod tests {
    use super::*;

    fn items(arg: &str, implied: Option<&'static str>) -> Vec<(String, String)> {
        parse_kv(arg, implied).owned_pairs()
    }
    impl KvList<'_> {
        fn owned_pairs(&self) -> Vec<(String, String)> {
            self.pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        }
    }
    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }
    const LIST: OptsList = OptsList {
        name: "test",
        implied_key: Some("first"),
        merge_lists: false,
        desc: &[
            OptDesc::new("first", OptType::Str),
            OptDesc::new("server", OptType::Bool),
            OptDesc::new("wait", OptType::Bool),
            OptDesc::new("delay", OptType::Bool),
            OptDesc::new("n", OptType::Number).with_help("a number"),
            OptDesc::new("size", OptType::Size),
            OptDesc::new("secret", OptType::Str).hidden(),
        ],
    };
    fn check(arg: &str) -> Checked {
        LIST.parse(arg).validate(&LIST, &|id| id == "taken")
    }
    fn check_err(arg: &str) -> String {
        match check(arg).result {
            Err(ParseStop::Error(e)) => e.to_string(),
            other => panic!("{arg}: {other:?}"),
        }
    }

    #[test]
    fn splitting() {
        assert_eq!(items("", Some("backend")), pairs(&[]));
        assert_eq!(items("null", Some("backend")), pairs(&[("backend", "null")]));
        assert_eq!(items("null,id=x", Some("backend")), pairs(&[("backend", "null")]));
        assert_eq!(items("backend=null", Some("backend")), pairs(&[("backend", "null")]));
        assert_eq!(items("a=1,b=2", None), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(items("a=1=2", None), pairs(&[("a", "1=2")]));
        assert_eq!(items("a=", None), pairs(&[("a", "")]));
        assert_eq!(items("a=1,", None), pairs(&[("a", "1")]));
        assert_eq!(items(",id=x", Some("backend")), pairs(&[("backend", "")]));
        assert_eq!(items("=v", None), pairs(&[("", "v")]));
        assert_eq!(items("x,y", Some("k")), pairs(&[("k", "x"), ("y", "on")]));
        assert_eq!(items("x=1,y", Some("k")), pairs(&[("x", "1"), ("y", "on")]));
    }

    #[test]
    fn comma_escapes() {
        assert_eq!(items("path=a,,b", None), pairs(&[("path", "a,b")]));
        assert_eq!(items("path=a,,,,b,c=d", None), pairs(&[("path", "a,,b"), ("c", "d")]));
        assert_eq!(items("path=a,,", None), pairs(&[("path", "a,")]));
        assert_eq!(items("a,,b,c=1", Some("k")), pairs(&[("k", "a,b"), ("c", "1")]));
        assert_eq!(items("a,,b", None), pairs(&[("a", "on"), ("", "on"), ("b", "on")]));
    }

    #[test]
    fn short_form_booleans() {
        let kv = parse_kv("socket,server,nowait,nodelay,delay", Some("backend"));
        assert_eq!(
            kv.owned_pairs(),
            pairs(&[
                ("backend", "socket"),
                ("server", "on"),
                ("wait", "off"),
                ("delay", "off"),
                ("delay", "on")
            ])
        );
        assert_eq!(kv.warnings[0], "warning: short-form boolean option 'server' deprecated\nPlease use server=on instead");
        assert_eq!(kv.warnings[1], "warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead");
        assert_eq!(kv.warnings[2], "warning: short-form boolean option 'nodelay' deprecated\nPlease use nodelay=on instead");
        assert_eq!(kv.warnings[3], "warning: short-form boolean option 'delay' deprecated\nPlease use nodelay=off instead");
        assert_eq!(parse_kv("n,pretty", Some("chardev")).warnings, vec!["warning: short-form boolean option 'pretty' deprecated\nPlease use pretty=on instead"]);
        assert_eq!(parse_kv("3", None).warnings, vec!["warning: short-form boolean option '3' deprecated\nPlease use 3=on instead"]);
        assert_eq!(parse_kv("no", None).owned_pairs(), pairs(&[("", "off")]));
        assert!(parse_kv("a,help,?", Some("k")).warnings.is_empty());
        assert_eq!(parse_kv("nohelp", None).warnings, vec!["warning: short-form boolean option 'nohelp' deprecated\nPlease use help=off instead"]);
        assert!(parse_kv_quiet("server,nowait", None).warnings.is_empty());
        assert_eq!(parse_kv_quiet("server,nowait", None).owned_pairs(), pairs(&[("server", "on"), ("wait", "off")]));
    }

    #[test]
    fn ids() {
        assert_eq!(parse_kv("null,id=n,id=m", Some("backend")).id(), Some("n"));
        assert_eq!(parse_kv("null,id=n,id=m", Some("backend")).get("id"), Some("n"));
        assert_eq!(parse_kv("null", Some("backend")).id(), None);
        assert_eq!(parse_kv("id=a,,b", Some("backend")).id(), Some("a,b"));
        // QEMU reads the id without the implied key: a bare first `id` is the flag id=on.
        assert_eq!(parse_kv("id", Some("backend")).id(), Some("on"));
        assert_eq!(parse_kv("id", Some("backend")).get("backend"), Some("id"));
        assert_eq!(parse_kv("noid", None).id(), Some("off"));
        assert_eq!(parse_kv_quiet("id=x,a=1", None).id(), None);
        assert_eq!(parse_kv_quiet("id=x,a=1", None).owned_pairs(), pairs(&[("a", "1")]));
    }

    /// The id taken from the split itself is the one a second split without the implied key
    /// finds (QEMU's reading), for every string built from these pieces.
    #[test]
    fn id_from_the_split_is_quemus_id() {
        assert_eq!(parse_kv("a,,id=x", Some("backend")).id(), Some("x"));
        assert_eq!(parse_kv("a,,id=x", Some("backend")).get("backend"), Some("a,id=x"));
        let pieces = ["id", "noid", "id=a", "id=b,,c", "x", "x,,", ",", ",,", "=", "no", "k=v", "id=", "help"];
        let mut strings = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for s in &strings {
                for p in pieces {
                    next.push(format!("{s}{p}"));
                    next.push(format!("{s}{p},"));
                }
            }
            strings = next;
        }
        for s in &strings {
            for implied in [None, Some("backend")] {
                assert_eq!(parse_kv(s, implied).id(), scan_id(s).as_deref(), "{s:?} {implied:?}");
            }
        }
    }

    #[test]
    fn last_wins() {
        let kv = parse_kv("path=p1,path=p2,null,backend=socket", Some("backend"));
        assert_eq!(kv.get("path"), Some("p2"));
        assert_eq!(kv.get("backend"), Some("socket"));
        assert_eq!(kv.keys().collect::<Vec<_>>(), vec!["path", "null", "backend"]);
        assert_eq!(kv.get("nothing"), None);
        assert!(kv.contains("null"));
    }

    #[test]
    fn booleans() {
        for t in ["on", "yes", "true", "y"] {
            assert_eq!(parse_bool("wait", t), Ok(true));
        }
        for f in ["off", "no", "false", "n"] {
            assert_eq!(parse_bool("wait", f), Ok(false));
        }
        for bad in ["ON", "On", "1", "0", "", "maybe", "Yes", "t", " on"] {
            assert_eq!(parse_bool("wait", bad).unwrap_err().to_string(), "Parameter 'wait' expects 'on' or 'off'");
        }
        assert_eq!(parse_kv("wait=", None).get_bool("wait").unwrap_err().to_string(), "Parameter 'wait' expects 'on' or 'off'");
        assert_eq!(parse_kv("wait=on,wait=n", None).get_bool("wait"), Ok(Some(false)));
        assert_eq!(parse_kv("", None).get_bool("wait"), Ok(None));
    }

    #[test]
    fn identifiers() {
        for good in ["a", "a.b", "A-1_x", "z9"] {
            assert!(id_wellformed(good), "{good}");
        }
        for bad in ["", "1abc", "a,b", "-a", "_a", "a b", "é", "aé", "a/b"] {
            assert!(!id_wellformed(bad), "{bad}");
        }
        assert_eq!(check_err("x,id=1abc"), "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
        assert_eq!(check_err("x,id=a,,b"), "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
        assert_eq!(check_err("x,id=taken"), "Duplicate ID 'taken' for test");
        assert_eq!(check("x,id=free").result, Ok(()));
    }

    #[test]
    fn validation_order() {
        assert_eq!(check_err("x,bogus=1"), "Invalid parameter 'bogus'");
        assert_eq!(check_err("x,nofoo"), "Invalid parameter 'foo'");
        assert_eq!(check_err("x,server=maybe"), "Parameter 'server' expects 'on' or 'off'");
        assert_eq!(check_err("x,n=z"), "Parameter 'n' expects a number");
        assert_eq!(check_err("x,size=z").lines().next(), Some("Parameter 'size' expects a non-negative number below 2^64"));
        // The warning of a rejected flag is still printed, later ones are not.
        let c = check("x,server,bogus,nowait");
        assert_eq!(c.warnings, vec!["warning: short-form boolean option 'server' deprecated\nPlease use server=on instead", "warning: short-form boolean option 'bogus' deprecated\nPlease use bogus=on instead"]);
        assert_eq!(c.result, Err(ParseStop::Error(OptError::InvalidParameter("bogus".into()))));
        // The id is checked before any item, so no warning at all.
        let c = check("x,server,id=1x");
        assert!(c.warnings.is_empty());
        assert_eq!(c.result, Err(ParseStop::Error(OptError::ExpectsIdentifier)));
        // help stops parsing; earlier errors win, later ones are not seen.
        assert_eq!(check("x,help,bogus=1").result, Err(ParseStop::Help));
        assert_eq!(check("x,?").result, Err(ParseStop::Help));
        assert_eq!(check_err("x,bogus=1,help"), "Invalid parameter 'bogus'");
        assert_eq!(check("help").result, Ok(()));
        let c = check("x,server,nowait,delay=on,n=0x10,size=64k,id=ok");
        assert_eq!(c.warnings.len(), 2);
        assert_eq!(c.result, Ok(()));
    }

    #[test]
    fn merged_lists_reject_id() {
        const NAME: OptsList = OptsList { name: "name", implied_key: Some("guest"), merge_lists: true, desc: &[OptDesc::new("guest", OptType::Str)] };
        let r = NAME.parse("g,id=x").validate(&NAME, &|_| false).result;
        assert_eq!(r, Err(ParseStop::Error(OptError::InvalidParameter("id".into()))));
        assert_eq!(NAME.parse("id").validate(&NAME, &|_| false).result, Err(ParseStop::Error(OptError::InvalidParameter("id".into()))));
    }

    #[test]
    fn help_listing() {
        assert_eq!(LIST.help_text(), "test options:\n  delay=<bool (on/off)>\n  first=<str>\n  n=<num>                - a number\n  server=<bool (on/off)>\n  size=<size>\n  wait=<bool (on/off)>\n");
        const EMPTY: OptsList = OptsList { name: "e", implied_key: None, merge_lists: false, desc: &[] };
        assert_eq!(EMPTY.help_text(), "There are no options for e.\n");
        // A list without keys accepts anything.
        assert_eq!(EMPTY.parse("a=1,b").validate(&EMPTY, &|_| false).result, Ok(()));
    }

    /// Hostile option strings (1 MiB, as `human-monitor-command` allows): split in linear
    /// time, at most `MAX_ITEMS` items kept, the first bad item still reported first.
    #[test]
    fn hostile_strings_are_bounded() {
        let many = "a,".repeat(1 << 19);
        let flags = parse_kv(&many, Some("backend"));
        assert_eq!(flags.entries.len(), MAX_ITEMS);
        assert!(flags.warnings.len() < MAX_ITEMS);
        assert_eq!(check_err(&format!("null,id=n,{}", "a,".repeat(1 << 19))).lines().last(), Some("Invalid parameter 'a'"));
        let ok_items = "n=1,".repeat(MAX_ITEMS);
        assert_eq!(check_err(&format!("null,{ok_items}")), "too many options (fdmon takes at most 4096 in one string)");
        let ok = format!("null,{}", "n=1,".repeat(MAX_ITEMS - 1));
        assert_eq!(check(&ok).result, Ok(()));
        for s in [",".repeat(1 << 20), ",,".repeat(1 << 19), "=".repeat(1 << 20), "a=,,".repeat(1 << 18)] {
            let kv = parse_kv(&s, None);
            assert!(kv.entries.len() <= MAX_ITEMS);
            assert!(kv.pairs().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= s.len());
        }
    }

    #[test]
    fn set_and_extend() {
        let mut kv = KvList::with_id("compat_monitor0");
        kv.set("backend", "socket");
        kv.extend(parse_kv_quiet("/tmp/x,server=on", Some("path")));
        assert_eq!(kv.id(), Some("compat_monitor0"));
        assert_eq!(kv.owned_pairs(), pairs(&[("backend", "socket"), ("path", "/tmp/x"), ("server", "on")]));
        kv.set("id", "other");
        assert_eq!(kv.id(), Some("other"));
    }
}
