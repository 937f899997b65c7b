//! systemd's socket-activation protocol, read side: which inherited fds are fdmon's
//! (`LISTEN_PID`, `LISTEN_FDS`, fds 3 and up) and their names (`LISTEN_FDNAMES`), so that
//! `-chardev socket,fd=NAME` can name one. Reads the environment only; it never opens, checks
//! or adopts an fd (start-up does, with every other inherited fd) and never keeps the
//! variables (start-up removes them so the workload never sees them).
#![forbid(unsafe_code)]

use std::os::fd::RawFd;

/// The first fd of socket activation (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;
/// Most fds fdmon takes from `LISTEN_FDS` (systemd passes far fewer in practice).
pub const MAX_FDS: usize = 1024;

/// fds passed by socket activation, with their names, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Activation {
    pub fds: Vec<(RawFd, String)>,
}

impl Activation {
    /// Reads the variables (through `var`) for process `pid`. `Ok(None)`: no activation for this
    /// process (no `LISTEN_PID`, or another process's). `Err` is the start-up error text.
    pub fn from_env(pid: i32, var: impl Fn(&str) -> Option<String>) -> Result<Option<Activation>, String> {
        let Some(listen_pid) = var("LISTEN_PID") else { return Ok(None) };
        if listen_pid.trim().parse::<i32>().ok() != Some(pid) {
            return Ok(None);
        }
        let count = var("LISTEN_FDS").unwrap_or_default();
        let n: usize =
            count.trim().parse().map_err(|_| format!("fdmon: LISTEN_FDS={count}: not a number of file descriptors"))?;
        if n > MAX_FDS {
            return Err(format!("fdmon: LISTEN_FDS={count}: more than {MAX_FDS} file descriptors"));
        }
        let names = var("LISTEN_FDNAMES");
        let mut names = names.as_deref().map(|s| s.split(':')).into_iter().flatten();
        let fds = (0..n)
            .map(|i| {
                // systemd names an fd without a name "unknown".
                let name = names.next().filter(|s| !s.is_empty()).unwrap_or("unknown");
                (FIRST_FD + i as RawFd, name.to_string())
            })
            .collect();
        Ok(Some(Activation { fds }))
    }

    pub fn numbers(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.fds.iter().map(|(n, _)| *n)
    }

    /// The fd numbers called `name`, in order.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = RawFd> + 'a {
        self.fds.iter().filter(move |(_, n)| n == name).map(|(fd, _)| *fd)
    }

    /// What was passed, for error messages: `qmp (fd 3), unknown (fd 4)` or `nothing`.
    pub fn describe(&self) -> String {
        if self.fds.is_empty() {
            return "nothing".into();
        }
        self.fds.iter().map(|(fd, n)| format!("{n} (fd {fd})")).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn variables() {
        let a =
            Activation::from_env(42, env(&[("LISTEN_PID", "42"), ("LISTEN_FDS", "3"), ("LISTEN_FDNAMES", "qmp::hmp")]));
        let a = a.unwrap().unwrap();
        assert_eq!(a.fds, [(3, "qmp".into()), (4, "unknown".into()), (5, "hmp".into())]);
        assert_eq!(a.named("hmp").collect::<Vec<_>>(), [5]);
        assert_eq!(a.describe(), "qmp (fd 3), unknown (fd 4), hmp (fd 5)");
        // Fewer names than fds; names beyond LISTEN_FDS are ignored.
        let a = Activation::from_env(1, env(&[("LISTEN_PID", "1"), ("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "a")]));
        assert_eq!(a.unwrap().unwrap().fds, [(3, "a".into()), (4, "unknown".into())]);
        let a = Activation::from_env(1, env(&[("LISTEN_PID", "1"), ("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "a:b")]));
        assert_eq!(a.unwrap().unwrap().fds, [(3, "a".into())]);
        // Duplicate names are kept in order.
        let a = Activation::from_env(1, env(&[("LISTEN_PID", "1"), ("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "x:x")]));
        assert_eq!(a.unwrap().unwrap().named("x").collect::<Vec<_>>(), [3, 4]);
    }

    #[test]
    fn not_for_this_process() {
        assert_eq!(Activation::from_env(7, env(&[])), Ok(None));
        assert_eq!(Activation::from_env(7, env(&[("LISTEN_PID", "8"), ("LISTEN_FDS", "1")])), Ok(None));
        assert_eq!(Activation::from_env(7, env(&[("LISTEN_PID", "x"), ("LISTEN_FDS", "1")])), Ok(None));
        let none = Activation::from_env(7, env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "0")])).unwrap().unwrap();
        assert_eq!(none.describe(), "nothing");
    }

    #[test]
    fn bad_counts() {
        let e = Activation::from_env(7, env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "two")])).unwrap_err();
        assert_eq!(e, "fdmon: LISTEN_FDS=two: not a number of file descriptors");
        let e = Activation::from_env(7, env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "5000")])).unwrap_err();
        assert_eq!(e, "fdmon: LISTEN_FDS=5000: more than 1024 file descriptors");
        assert!(Activation::from_env(7, env(&[("LISTEN_PID", "7")])).is_err());
    }
}
