//! fd sets (`-add-fd`, `add-fd`, `remove-fd`, `query-fdsets`): numbered groups of fds fdmon
//! holds for a client. Bookkeeping only: nothing in fdmon opens `/dev/fdset/N`.
#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use crate::json::{Object, Value};

struct Entry {
    fd: OwnedFd,
    opaque: Option<String>,
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
    pub fn add(&mut self, id: Option<i64>, fd: OwnedFd, opaque: Option<String>) -> Result<(i32, i64), String> {
        if self.sets.iter().map(|s| s.fds.len()).sum::<usize>() >= MAX_FDS {
            return Err(format!("Too many file descriptors in fd sets (at most {MAX_FDS})"));
        }
        let id = match id {
            Some(i) => i,
            None => (0..).find(|i| !self.sets.iter().any(|s| s.id == *i)).unwrap_or(0),
        };
        let num = fd.as_raw_fd();
        let entry = Entry { fd, opaque };
        match self.sets.iter_mut().find(|s| s.id == id) {
            Some(s) => s.fds.push(entry),
            None => self.sets.push(FdSet { id, fds: vec![entry] }),
        }
        Ok((num, id))
    }

    /// Removes one fd of a set, or the whole set.
    pub fn remove(&mut self, id: i64, fd: Option<i64>) -> Result<(), String> {
        let not_found = || match fd {
            Some(f) => format!("File descriptor named 'fdset-id:{id}, fd:{f}' not found"),
            None => format!("File descriptor named 'fdset-id:{id}' not found"),
        };
        let si = self.sets.iter().position(|s| s.id == id).ok_or_else(not_found)?;
        match fd {
            None => {
                self.sets.remove(si);
            }
            Some(f) => {
                let set = &mut self.sets[si];
                let i = set.fds.iter().position(|e| i64::from(e.fd.as_raw_fd()) == f).ok_or_else(not_found)?;
                set.fds.remove(i);
                if set.fds.is_empty() {
                    self.sets.remove(si);
                }
            }
        }
        Ok(())
    }

    /// Sets in descending id order, fds in insertion order.
    pub fn query(&self) -> Value {
        let mut sets: Vec<&FdSet> = self.sets.iter().collect();
        sets.sort_by(|a, b| b.id.cmp(&a.id));
        Value::Array(
            sets.into_iter()
                .map(|s| {
                    let fds = s
                        .fds
                        .iter()
                        .map(|e| {
                            let mut o = Object::new().with("fd", Value::Int(i64::from(e.fd.as_raw_fd())));
                            if let Some(op) = &e.opaque {
                                o.insert("opaque", Value::from(op.as_str()));
                            }
                            Value::Object(o)
                        })
                        .collect();
                    Value::Object(Object::new().with("fds", Value::Array(fds)).with("fdset-id", Value::Int(s.id)))
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}
