//! fd sets (`-add-fd`, `add-fd`, `remove-fd`, `query-fdsets`): numbered groups of fds fdmon
//! holds for a client. Bookkeeping only: nothing in fdmon opens `/dev/fdset/N`.
//!
//! Lifetime follows QEMU 7.2: `remove-fd` only marks fds; marked fds close while the run state
//! is `running`, and when the last monitor client disconnects in that state every fd closes
//! (nothing holds a `/dev/fdset` duplicate). A set with no fds left disappears.
#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

/// Why an fd-set operation failed. `Display` is QEMU's text (fdmon's for its limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdSetError {
    /// More than [`MAX_FDS`] fds in all sets together.
    TooMany,
    /// No such set, or no such fd in it.
    NotFound { id: i64, fd: Option<i64> },
}

impl std::fmt::Display for FdSetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FdSetError::TooMany => write!(f, "Too many file descriptors in fd sets (at most {MAX_FDS})"),
            FdSetError::NotFound { id, fd: Some(n) } => {
                write!(f, "File descriptor named 'fdset-id:{id}, fd:{n}' not found")
            }
            FdSetError::NotFound { id, fd: None } => write!(f, "File descriptor named 'fdset-id:{id}' not found"),
        }
    }
}

/// One set as `query-fdsets` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdSetInfo<'a> {
    pub id: i64,
    pub fds: Vec<FdInfo<'a>>,
}

/// One fd of a set: its number in fdmon and the `opaque` text given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdInfo<'a> {
    pub fd: i32,
    pub opaque: Option<&'a str>,
}

struct Entry {
    fd: OwnedFd,
    opaque: Option<String>,
    /// `remove-fd` asked for it; it closes at the next cleanup while running.
    removed: bool,
}

struct FdSet {
    id: i64,
    fds: Vec<Entry>,
}

/// Most fds fdmon keeps in all sets together.
pub const MAX_FDS: usize = 1024;

#[derive(Default)]
pub struct FdSets {
    sets: Vec<FdSet>,
}

impl FdSets {
    /// Adds `fd` to set `id` (or the lowest free id). Returns (fd number, set id).
    pub fn add(&mut self, id: Option<i64>, fd: OwnedFd, opaque: Option<String>) -> Result<(i32, i64), FdSetError> {
        if self.sets.iter().map(|s| s.fds.len()).sum::<usize>() >= MAX_FDS {
            return Err(FdSetError::TooMany);
        }
        let id = match id {
            Some(i) => i,
            None => (0..).find(|i| !self.sets.iter().any(|s| s.id == *i)).unwrap_or(0),
        };
        let num = fd.as_raw_fd();
        let entry = Entry { fd, opaque, removed: false };
        match self.sets.iter_mut().find(|s| s.id == id) {
            Some(s) => s.fds.push(entry),
            None => self.sets.push(FdSet { id, fds: vec![entry] }),
        }
        Ok((num, id))
    }

    /// Marks one fd of a set, or the whole set, for removal, then cleans that set up.
    pub fn remove(&mut self, id: i64, fd: Option<i64>, running: bool, no_clients: bool) -> Result<(), FdSetError> {
        let not_found = || FdSetError::NotFound { id, fd };
        let set = self.sets.iter_mut().find(|s| s.id == id).ok_or_else(not_found)?;
        match fd {
            None => set.fds.iter_mut().for_each(|e| e.removed = true),
            Some(f) => {
                let e = set.fds.iter_mut().find(|e| i64::from(e.fd.as_raw_fd()) == f).ok_or_else(not_found)?;
                e.removed = true;
            }
        }
        self.cleanup(Some(id), running, no_clients);
        Ok(())
    }

    /// QEMU's fd-set cleanup for one set (or all): while running, close the fds marked
    /// removed, or every fd when no monitor client is connected; drop sets left empty.
    pub fn cleanup(&mut self, only: Option<i64>, running: bool, no_clients: bool) {
        for set in self.sets.iter_mut().filter(|s| only.is_none_or(|id| s.id == id)) {
            if running {
                set.fds.retain(|e| !(e.removed || no_clients));
            }
        }
        self.sets.retain(|s| !s.fds.is_empty());
    }

    /// Sets in descending id order, fds in insertion order.
    pub fn query(&self) -> Vec<FdSetInfo<'_>> {
        let mut sets: Vec<FdSetInfo> = self
            .sets
            .iter()
            .map(|s| FdSetInfo {
                id: s.id,
                fds: s.fds.iter().map(|e| FdInfo { fd: e.fd.as_raw_fd(), opaque: e.opaque.as_deref() }).collect(),
            })
            .collect();
        sets.sort_unstable_by_key(|s| std::cmp::Reverse(s.id));
        sets
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        crate::sys::fd::open_devnull().unwrap()
    }

    fn shape(s: &FdSets) -> Vec<(i64, usize)> {
        s.sets.iter().map(|x| (x.id, x.fds.len())).collect()
    }

    #[test]
    fn lowest_free_id_and_listing_order() {
        let mut s = FdSets::default();
        assert_eq!(s.add(Some(2), fd(), None).unwrap().1, 2);
        assert_eq!(s.add(None, fd(), Some("x".into())).unwrap().1, 0);
        assert_eq!(s.add(None, fd(), None).unwrap().1, 1);
        let q = s.query();
        assert_eq!(q.iter().map(|s| s.id).collect::<Vec<_>>(), [2, 1, 0]);
        assert_eq!(q[2].fds[0].opaque, Some("x"));
    }

    #[test]
    fn removal_waits_for_running_as_in_qemu() {
        let mut s = FdSets::default();
        s.add(Some(1), fd(), None).unwrap();
        let (n, _) = s.add(Some(1), fd(), None).unwrap();
        // Not running: marked, still listed.
        s.remove(1, None, false, false).unwrap();
        assert_eq!(shape(&s), vec![(1, 2)]);
        // Marked fds still count as present for another remove-fd.
        s.remove(1, Some(i64::from(n)), false, false).unwrap();
        // Running: a cleanup closes the marked fds and the set goes.
        s.cleanup(None, true, false);
        assert_eq!(shape(&s), vec![]);
        let text = |r: Result<(), FdSetError>| r.map_err(|e| e.to_string());
        assert_eq!(text(s.remove(1, None, true, false)), Err("File descriptor named 'fdset-id:1' not found".into()));
        assert_eq!(
            text(s.remove(1, Some(9), true, false)),
            Err("File descriptor named 'fdset-id:1, fd:9' not found".into())
        );
    }

    #[test]
    fn last_client_leaving_while_running_drops_everything() {
        let mut s = FdSets::default();
        s.add(Some(3), fd(), None).unwrap();
        s.cleanup(None, false, true);
        assert_eq!(shape(&s), vec![(3, 1)]);
        s.cleanup(None, true, false);
        assert_eq!(shape(&s), vec![(3, 1)]);
        s.cleanup(None, true, true);
        assert!(s.is_empty());
    }
}
