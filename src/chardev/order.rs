//! The order in which QEMU 7.2 lists chardevs (`query-chardev`, HMP `info chardev`).
//!
//! QEMU keeps its chardevs as the children of one QOM container, whose properties live in a
//! GLib hash table keyed by the chardev id; `query-chardev` walks that table and prepends each
//! entry to its result, so the list is the table's iteration order reversed. That order
//! depends on the ids and on the table's history (growth, tombstones left by removals), so it
//! is reproduced by keeping a model of the table: the behaviour of GLib 2.74's `GHashTable`
//! (Debian 12's), observed and checked against QEMU 7.2 by `tests/chardev_order.rs`:
//! - string hash: djb2 over the key's bytes as signed chars (h = h * 33 + c, from 5381); values
//!   0 and 1 mark empty and removed buckets, so a hash below 2 is stored as 2;
//! - `1 << shift` buckets (at least 8), a key's first bucket is `(hash * 11) % prime(shift)`,
//!   then quadratic probing (`+1, +2, +3...` masked to the size); an insert reuses the first
//!   tombstone it passed;
//! - only an insert into an empty bucket can resize: when the table is more than 15/16 used
//!   (tombstones included) or less than 1/4 full, it is rebuilt in place for
//!   `nnodes * 1.333` entries, which also clears the tombstones;
//! - a removal only leaves a tombstone (QEMU removes children through a table iterator, which
//!   never resizes).
//!
//! Memory is bounded by the live ids, as in GLib: tombstones never exceed 15/16 of the table.

/// `prime_mod[shift]`: the modulus GLib uses for a table of `1 << shift` buckets.
const PRIME_MOD: [u32; 32] = [
    1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287,
    1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789,
    2147483647,
];
const MIN_SHIFT: u32 = 3;
const UNUSED: u32 = 0;
const TOMBSTONE: u32 = 1;

fn is_real(h: u32) -> bool {
    h >= 2
}

/// GLib's `g_str_hash`, with the reserved values mapped as the table does.
pub fn str_hash(key: &str) -> u32 {
    let mut h: u32 = 5381;
    for &b in key.as_bytes() {
        h = h.wrapping_mul(33).wrapping_add(b as i8 as i32 as u32);
    }
    if is_real(h) {
        h
    } else {
        2
    }
}

/// One bucket's entry: the chardev id, and the slot of fdmon's chardev table that holds it
/// (so that a lookup by id is one hash probe, not a scan of the table).
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    slot: usize,
}

/// A model of the chardev container's hash table: ids (with their chardev slot).
#[derive(Debug, Clone)]
pub struct ChardevOrder {
    shift: u32,
    hashes: Vec<u32>,
    keys: Vec<Option<Entry>>,
    nnodes: usize,
    noccupied: usize,
}

impl Default for ChardevOrder {
    fn default() -> Self {
        ChardevOrder::new()
    }
}

impl ChardevOrder {
    pub fn new() -> ChardevOrder {
        let size = 1usize << MIN_SHIFT;
        ChardevOrder { shift: MIN_SHIFT, hashes: vec![UNUSED; size], keys: vec![None; size], nnodes: 0, noccupied: 0 }
    }

    fn size(&self) -> usize {
        1usize << self.shift
    }

    fn mask(&self) -> usize {
        self.size() - 1
    }

    fn first_bucket(&self, hash: u32) -> usize {
        (hash.wrapping_mul(11) % PRIME_MOD[self.shift as usize]) as usize
    }

    /// The bucket holding `key`, else the one an insert would use.
    fn lookup(&self, key: &str, hash: u32) -> usize {
        let mut i = self.first_bucket(hash);
        let mut tombstone = None;
        let mut step = 0;
        while self.hashes[i] != UNUSED {
            if self.hashes[i] == hash && self.keys[i].as_ref().is_some_and(|e| e.id == key) {
                return i;
            }
            if self.hashes[i] == TOMBSTONE && tombstone.is_none() {
                tombstone = Some(i);
            }
            step += 1;
            i = (i + step) & self.mask();
        }
        tombstone.unwrap_or(i)
    }

    /// A chardev was added in `slot` (QEMU: the container gained a child property).
    pub fn insert(&mut self, key: &str, slot: usize) {
        let hash = str_hash(key);
        let i = self.lookup(key, hash);
        let old = self.hashes[i];
        if is_real(old) {
            return;
        }
        self.hashes[i] = hash;
        self.keys[i] = Some(Entry { id: key.to_string(), slot });
        self.nnodes += 1;
        if old == UNUSED {
            self.noccupied += 1;
            self.maybe_resize();
        }
    }

    /// The slot of chardev `key`, if it is in the table: one hash probe.
    pub fn slot(&self, key: &str) -> Option<usize> {
        let i = self.lookup(key, str_hash(key));
        if is_real(self.hashes[i]) {
            self.keys[i].as_ref().map(|e| e.slot)
        } else {
            None
        }
    }

    /// A chardev was removed: its bucket becomes a tombstone.
    pub fn remove(&mut self, key: &str) {
        let i = self.lookup(key, str_hash(key));
        if is_real(self.hashes[i]) {
            self.hashes[i] = TOMBSTONE;
            self.keys[i] = None;
            self.nnodes -= 1;
        }
    }

    fn maybe_resize(&mut self) {
        let size = self.size();
        let occ = self.noccupied;
        if (size > self.nnodes * 4 && size > 1 << MIN_SHIFT) || size <= occ + occ / 16 {
            self.resize();
        }
    }

    /// GLib's in-place rehash: every entry moves to its first free bucket in the new size,
    /// evicting (and then re-placing) an entry not yet moved.
    fn resize(&mut self) {
        let old_size = self.size();
        let want = (self.nnodes as f64 * 1.333) as u64;
        let shift = (u64::BITS - want.leading_zeros()).max(MIN_SHIFT);
        self.shift = shift;
        let new_size = self.size();
        if new_size > old_size {
            self.hashes.resize(new_size, UNUSED);
            self.keys.resize(new_size, None);
        }
        let mut moved = vec![false; new_size.max(old_size)];
        for i in 0..old_size {
            let mut node_hash = self.hashes[i];
            if !is_real(node_hash) {
                self.hashes[i] = UNUSED;
                continue;
            }
            if moved[i] {
                continue;
            }
            self.hashes[i] = UNUSED;
            let mut key = self.keys[i].take();
            loop {
                let mut b = self.first_bucket(node_hash);
                let mut step = 0;
                while moved[b] {
                    step += 1;
                    b = (b + step) & self.mask();
                }
                moved[b] = true;
                let replaced = self.hashes[b];
                self.hashes[b] = node_hash;
                let replaced_key = std::mem::replace(&mut self.keys[b], key);
                if !is_real(replaced) {
                    break;
                }
                node_hash = replaced;
                key = replaced_key;
            }
        }
        if new_size < old_size {
            self.hashes.truncate(new_size);
            self.keys.truncate(new_size);
        }
        self.noccupied = self.nnodes;
    }

    /// The ids in QEMU's `query-chardev` order (the table's iteration order, reversed).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().rev().filter_map(|k| k.as_ref().map(|e| e.id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(ops: &[(&str, bool)]) -> Vec<String> {
        let mut t = ChardevOrder::new();
        for &(k, add) in ops {
            if add {
                t.insert(k, 0)
            } else {
                t.remove(k)
            }
        }
        t.ids().map(String::from).collect()
    }

    #[test]
    fn str_hash_is_djb2_over_signed_bytes() {
        assert_eq!(str_hash(""), 5381);
        assert_eq!(str_hash("a"), 5381 * 33 + 97);
        assert_eq!(str_hash("\u{e9}"), (5381u32 * 33 - 61).wrapping_mul(33).wrapping_sub(87));
    }

    /// Observed on QEMU 7.2 (tests/golden/fdpass/chardev-add_fd.txt).
    #[test]
    fn matches_qemu_for_a_few_ids() {
        assert_eq!(order(&[("mon", true), ("c1", true), ("d1", true), ("c3", true)]), ["c3", "c1", "mon", "d1"]);
    }

    /// Observed on QEMU 7.2: 40 ids, 36 removed (no shrink), then two more.
    #[test]
    fn removal_leaves_tombstones_and_growth_rehashes() {
        let ids: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        let mut ops: Vec<(&str, bool)> = vec![("mon", true)];
        ops.extend(ids.iter().map(|k| (k.as_str(), true)));
        ops.extend(ids.iter().take(36).map(|k| (k.as_str(), false)));
        ops.extend([("z1", true), ("z2", true)]);
        assert_eq!(order(&ops), ["z2", "c39", "c37", "z1", "mon", "c38", "c36"]);
    }

    #[test]
    fn add_remove_cycles_stay_bounded() {
        let mut t = ChardevOrder::new();
        t.insert("mon", 0);
        for i in 0..10_000 {
            let k = format!("x{i}");
            t.insert(&k, 1);
            t.remove(&k);
        }
        assert!(t.hashes.len() <= 16, "{}", t.hashes.len());
        assert_eq!(t.ids().collect::<Vec<_>>(), ["mon"]);
        assert_eq!((t.slot("mon"), t.slot("x9999")), (Some(0), None));
    }
}
