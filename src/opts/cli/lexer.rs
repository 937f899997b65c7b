//! The pull-style argv lexer: `-opt` and `--opt` alike, options until `--`, then the
//! workload.

use std::borrow::Cow;
use std::ffi::OsStr;

use super::*;

/// One option occurrence found by the first pass.
pub(super) struct Lexed<'a> {
    pub(super) def: &'static OptDef,
    /// The option as typed (`-chardev`, `--chardev`), borrowed from argv unless it is not
    /// UTF-8 (then with U+FFFD for each bad sequence).
    pub(super) typed: Cow<'a, str>,
    pub(super) arg: Option<&'a OsStr>,
}

/// Pull-style reader over argv: yields options until `--` or the end.
pub(super) struct Lexer<'a, A> {
    pub(super) args: &'a [A],
    pub(super) pos: usize,
}

impl<'a, A: AsRef<OsStr>> Lexer<'a, A> {
    pub(super) fn next(&mut self) -> Result<Option<Lexed<'a>>, CliError> {
        let Some(raw) = self.args.get(self.pos).map(AsRef::as_ref) else {
            return Ok(None);
        };
        if raw == "--" {
            return Ok(None);
        }
        self.pos += 1;
        // One UTF-8 check; the lossy copy only for a name that is not UTF-8.
        let name = raw.to_str();
        let typed = name.map_or_else(|| raw.to_string_lossy(), Cow::Borrowed);
        if !typed.starts_with('-') {
            return Err(fail_msg(&typed, "unexpected argument (the workload command goes after '--')"));
        }
        let Some(def) = name.and_then(lookup) else {
            return Err(fail_msg(&typed, "invalid option"));
        };
        let arg = if def.takes_arg() {
            let Some(arg) = self.args.get(self.pos).map(AsRef::as_ref) else {
                return Err(fail_msg(&typed, "requires an argument"));
            };
            self.pos += 1;
            Some(arg)
        } else {
            None
        };
        Ok(Some(Lexed { def, typed, arg }))
    }

    /// After `next` returned `None`: the workload, if argv has a `--`.
    pub(super) fn workload(&self) -> Result<Vec<OsString>, CliError> {
        if self.pos >= self.args.len() {
            return Ok(Vec::new());
        }
        let rest = &self.args[self.pos + 1..];
        if rest.is_empty() {
            return Err(fail_msg("--", "requires a program to run"));
        }
        Ok(rest.iter().map(|a| a.as_ref().to_os_string()).collect())
    }
}
