//! The slot table of a locked page: backward-shift unlinking of one record, bulk
//! unlinking of many, relinking records their probe chain cannot reach, and the first
//! empty slot of a chain. Linear probing without tombstones.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::Locked;
use crate::failpoint::Failpoint;
use crate::format::page::{home, slot_parts};

impl Locked<'_> {
    /// Empties slot `hole` by shifting the rest of its cluster back (linear probing
    /// without tombstones). A crash part way leaves a duplicated slot, never a lost one.
    pub(super) fn unlink(&mut self, hole: usize) {
        let n = self.page.geo().nslots();
        let mut hole = hole % n;
        let mut j = hole;
        let mut moved = false;
        for _ in 0..n {
            j = if j + 1 == n { 0 } else { j + 1 };
            let v = self.page.slot(j).load(Ordering::Relaxed);
            if v == 0 {
                break;
            }
            let k = home(slot_parts(v).1, n);
            // The entry at j may move to the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if stays {
                continue;
            }
            self.page.slot(hole).store(v, Ordering::Relaxed);
            let st = self.page.stamp(j).load(Ordering::Relaxed);
            self.page.stamp(hole).store(st, Ordering::Relaxed);
            if !moved {
                moved = true;
                self.fail.hit(Failpoint::DeleteMidShift);
            }
            hole = j;
        }
        self.page.slot(hole).store(0, Ordering::Relaxed);
    }

    /// Unlinks one slot per entry of `values` (a multiset: a value listed twice
    /// unlinks two slots holding it) in time linear in the slot table, and returns the
    /// values (with multiplicity) it found no slot for. The slots are emptied in one pass,
    /// then the probe chains they cut are closed by moving records back (see
    /// `relink_unreachable`). A crash part way leaves every record linked, some maybe
    /// unreachable or duplicated, which repair fixes. (Backward-shift deletion, one
    /// `unlink` per value, would cost a slot-table scan plus a cluster walk per value:
    /// quadratic with the 131,072 slots of a 16 MiB page.)
    pub(super) fn unlink_values(&mut self, values: &[u64]) -> HashMap<u64, usize> {
        let n = self.page.geo().nslots();
        let mut want: HashMap<u64, usize> = HashMap::with_capacity(values.len());
        for &v in values.iter().filter(|&&v| v != 0) {
            *want.entry(v).or_default() += 1;
        }
        if want.is_empty() {
            return want;
        }
        // A slot empty before any is emptied here: on a sound page every probe chain
        // lies after it in cyclic order, so one relinking pass from it suffices.
        let start = (0..n)
            .find(|&i| self.page.slot(i).load(Ordering::Relaxed) == 0)
            .unwrap_or(0);
        for i in 0..n {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            if let Some(c) = want.get_mut(&v)
                && *c > 0
            {
                *c -= 1;
                self.page.slot(i).store(0, Ordering::Relaxed);
            }
        }
        self.relink_all(start);
        want.retain(|_, c| *c > 0);
        want
    }

    /// Runs `relink_unreachable` passes from `start` until one moves nothing. One pass
    /// does on a sound page; each move brings a record closer to its home, so the passes
    /// end on any page.
    pub(super) fn relink_all(&mut self, start: usize) {
        let n = self.page.geo().nslots();
        for _ in 0..n {
            if self.relink_unreachable(start) == 0 {
                break;
            }
        }
    }

    /// One pass over the slot table in cyclic order from `start`: every record with an
    /// empty slot between its home and its slot moves to the first empty slot on its
    /// chain (copied there, then its old slot emptied). Returns how many moved. Costs the
    /// sum of the records' probe distances.
    fn relink_unreachable(&mut self, start: usize) -> usize {
        let n = self.page.geo().nslots();
        let next = |i: usize| if i + 1 == n { 0 } else { i + 1 };
        let mut moved = 0;
        let mut j = start % n;
        for _ in 0..n {
            j = next(j);
            let v = self.page.slot(j).load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            let mut e = home(slot_parts(v).1, n);
            while e != j && self.page.slot(e).load(Ordering::Relaxed) != 0 {
                e = next(e);
            }
            if e != j {
                let st = self.page.stamp(j).load(Ordering::Relaxed);
                self.page.stamp(e).store(st, Ordering::Relaxed);
                self.page.slot(e).store(v, Ordering::Relaxed);
                self.page.slot(j).store(0, Ordering::Relaxed);
                moved += 1;
            }
        }
        moved
    }

    /// The first empty slot on `tag`'s probe chain.
    pub(super) fn empty_slot(&self, tag: u32) -> Option<usize> {
        let n = self.page.geo().nslots();
        let h = home(tag, n);
        (0..n)
            .map(|s| (h + s) % n)
            .find(|&i| self.page.slot(i).load(Ordering::Relaxed) == 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::Evicted;
    use super::super::fixture::{GEO, Heap, get, key, lost, put};

    #[test]
    fn inserts_and_backward_shift_deletes_keep_every_chain_reachable() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for i in 0..GEO.max_count() {
                assert_eq!(put(l, &key(i), &key(i)), Evicted::default());
            }
            for i in (0..GEO.max_count()).step_by(2) {
                let kh = l.hasher.hash(&key(i));
                let f = l.find(&key(i), kh.tag).unwrap().unwrap();
                l.remove(&f);
            }
            for i in 0..GEO.max_count() {
                let want = (i % 2 == 1).then(|| key(i));
                assert_eq!(get(l, &key(i)), want, "key {i}");
            }
            assert_eq!(l.page.count() as usize, GEO.max_count() / 2);
            assert!(l.header_damage().is_none());
        });
    }

    #[test]
    fn bulk_unlinking_keeps_every_other_key_reachable() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            let keys: Vec<Vec<u8>> = (0..GEO.max_count()).map(key).collect();
            for k in &keys {
                put(l, k, k);
            }
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for round in 0..20 {
                // Unlink a pseudo-random third of what is linked.
                let mut gone = Vec::new();
                let mut values = Vec::new();
                for k in &keys {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let kh = l.hasher.hash(k);
                    if let Some(f) = l.find(k, kh.tag).unwrap()
                        && x.is_multiple_of(3)
                    {
                        values.push(l.page.slot(f.slot).load(Ordering::Relaxed));
                        gone.push(k.clone());
                    }
                }
                l.begin();
                assert!(l.unlink_values(&values).is_empty(), "round {round}");
                l.end();
                for k in &gone {
                    assert_eq!(get(l, k), None, "round {round}");
                }
                // Every other key is still found (its chain has no gap), then put back.
                for k in &keys {
                    if !gone.contains(k) {
                        assert_eq!(get(l, k).as_deref(), Some(&k[..]), "round {round}");
                    }
                }
                l.salvage();
                for k in &gone {
                    put(l, k, k);
                }
            }
            assert_eq!(lost(l), 0);
        });
    }
}
