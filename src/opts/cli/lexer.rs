//! The pull-style argv lexer: `-opt` and `--opt` alike, options until `--`, then the
//! workload.

use super::*;

/// One option occurrence found by the first pass.
pub(super) struct Lexed<'a> {
    pub(super) def: &'static OptDef,
    /// The option as typed (`-chardev`, `--chardev`).
    pub(super) typed: String,
    pub(super) arg: Option<&'a OsString>,
}

/// Pull-style reader over argv: yields options until `--` or the end.
pub(super) struct Lexer<'a> {
    pub(super) args: &'a [OsString],
    pub(super) pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn next(&mut self) -> Result<Option<Lexed<'a>>, CliError> {
        let Some(raw) = self.args.get(self.pos) else {
            return Ok(None);
        };
        if raw.as_os_str() == "--" {
            return Ok(None);
        }
        self.pos += 1;
        let typed = raw.to_string_lossy().into_owned();
        if !typed.starts_with('-') {
            return Err(fail_msg(&typed, "unexpected argument (the workload command goes after '--')"));
        }
        let Some(def) = raw.to_str().and_then(lookup) else {
            return Err(fail_msg(&typed, "invalid option"));
        };
        let arg = if def.takes_arg() {
            let Some(arg) = self.args.get(self.pos) else {
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
        Ok(rest.to_vec())
    }
}
