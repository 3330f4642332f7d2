//! Checking and repairing a locked page: the header checks every lock holder makes, the
//! full verification of a record, [`Locked::salvage`] (see the module docs of `locked`),
//! and wiping a page at initialisation.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::{Damage, Locked};
use crate::format::checksum::{self, Fields};
use crate::format::header::FileCounter;
use crate::format::page::{PAGE_MAGIC, slot_parts};
use crate::format::record::{self, RecordHeader};
use crate::probe::record_header;
use crate::seqlock::SeqLock;

impl Locked<'_> {
    /// Checks the page after taking the lock; repairs it if a writer died mid-write or
    /// its header is impossible. Returns whether it repaired.
    #[inline]
    pub(crate) fn prepare(&mut self) -> bool {
        if SeqLock::new(self.page.seq()).is_odd() || self.header_damage().is_some() {
            self.salvage();
            return true;
        }
        false
    }

    /// Cheap consistency checks of the page header.
    pub(super) fn header_damage(&self) -> Option<Damage> {
        let p = &self.page;
        let geo = p.geo();
        let ps = geo.page_size as usize;
        let data_lo = p.data_lo() as usize;
        if p.magic() != PAGE_MAGIC || p.stored_index() != p.index() {
            return Some(Damage("page magic or index"));
        }
        if data_lo < geo.data_start() || data_lo > ps || !data_lo.is_multiple_of(8) {
            return Some(Damage("data_lo outside the data area"));
        }
        if p.count() as usize > geo.max_count() {
            return Some(Damage("count above the slot limit"));
        }
        if p.dead() as usize > ps - data_lo {
            return Some(Damage("dead bytes above the used bytes"));
        }
        None
    }

    /// The record a slot value points at, if it checks out completely (bounds,
    /// checksum, key hash: tag and page): its key bytes, header and value.
    pub(super) fn checked_record(&self, v: u64) -> Option<(Vec<u8>, RecordHeader, Vec<u8>)> {
        let (off, tag) = slot_parts(v);
        let hdr = record_header(&self.page, off as usize).ok()?;
        let mut bytes = Vec::with_capacity(hdr.size());
        if !self
            .page
            .region()
            .read_append(off as usize, hdr.size(), &mut bytes)
        {
            return None;
        }
        let (h, key, value) = record::parse(&bytes)?;
        let kh = self.hasher.hash(key);
        let ok = kh.tag == tag
            && kh.page == self.page.index()
            && checksum::of_value(self.hasher, Fields::of(kh.raw, &h), value) == h.check;
        ok.then(|| (key.to_vec(), h, value.to_vec()))
    }

    /// Repairs the page in place (see the module docs). Counted in `Stats::recovered`.
    pub(crate) fn salvage(&mut self) {
        self.repairs.pages.fetch_add(1, Ordering::Relaxed);
        FileCounter::Repairs.add(&self.file, 1);
        self.section(|l| l.salvage_in_section());
    }

    fn salvage_in_section(&mut self) {
        let geo = *self.page.geo();
        let n = geo.nslots();
        self.page.set_identity();
        self.finish_journal();
        // Unlink what does not check out, and every older copy of a key.
        let mut best: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
        let mut bad: Vec<u64> = Vec::new();
        // How many of `bad` are older copies of a key kept (not losses).
        let mut older = 0;
        for i in 0..n {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            match self.checked_record(v).map(|(key, h, _)| (key, h.version)) {
                None => bad.push(v),
                Some((key, version)) => match best.get_mut(&key) {
                    Some(b) if b.1 >= version => {
                        bad.push(v);
                        older += 1;
                    }
                    Some(b) => {
                        bad.push(b.0);
                        older += 1;
                        *b = (v, version);
                    }
                    None => {
                        best.insert(key, (v, version));
                    }
                },
            }
        }
        // Slot values of records that failed their checks: entries lost.
        let mut lost = bad.len() - older;
        if best.len() > geo.max_count() {
            let mut kept: Vec<(u64, u64)> = best.values().copied().collect();
            kept.sort_by_key(|&(_, version)| std::cmp::Reverse(version));
            bad.extend(kept[geo.max_count()..].iter().map(|&(v, _)| v));
            lost += best.len() - geo.max_count();
        }
        self.repairs.lost.fetch_add(lost as u64, Ordering::Relaxed);
        FileCounter::LostInRepair.add(&self.file, lost as u64);
        // Unlink them, then re-link records that their probe chain cannot reach (an
        // empty slot between their home and them): moved into the first empty slot of
        // their chain. Both linear in the slot table.
        self.unlink_values(&bad);
        self.relink_all(0);
        // A fresh version base, above any the page had unless it wrote 2^32 entries
        // since its last one (the counter itself may be damaged).
        let old = self.page.next_version().load(Ordering::Relaxed);
        let base = self.fresh_version_base().max(old);
        self.page.next_version().store(base, Ordering::Relaxed);
        // Recompute the header from what is linked.
        let recs = self.scan().unwrap_or_default();
        let ps = geo.page_size as usize;
        let lo = recs.iter().map(|r| r.off).min().unwrap_or(ps);
        let used: usize = recs.iter().map(|r| r.size).sum();
        self.page.set_count(recs.len());
        self.page.set_data_lo(lo);
        self.page.set_dead((ps - lo).saturating_sub(used));
        self.page.set_tick(self.page.tick().wrapping_add(1));
    }

    /// Makes the page empty (initialisation, under the header lock).
    pub(crate) fn wipe(&mut self) {
        self.section(|l| {
            let p = &l.page;
            for i in 0..p.geo().nslots() {
                p.slot(i).store(0, Ordering::Relaxed);
                p.stamp(i).store(0, Ordering::Relaxed);
            }
            p.set_identity();
            p.set_count(0);
            l.empty_data_area();
            p.set_tick(0);
            // The next write takes a fresh base from the file's counter: whatever lay
            // here (an old page's data, after a change of geometry) is no version source.
            p.next_version().store(0, Ordering::Relaxed);
            p.store_journal_move(&Default::default());
            p.set_journal_slot(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::fixture::{GEO, Heap, get, key, lost, put};
    use crate::format::geometry::Geometry;
    use crate::format::page::{Journal, home, slot_value};

    #[test]
    fn salvage_drops_duplicates_and_relinks_unreachable_records() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for i in 0..20 {
                put(l, &key(i), &key(i));
            }
            let n = GEO.nslots();
            // Duplicate one slot into an empty one (a delete killed mid-shift).
            let full = (0..n)
                .find(|&i| l.page.slot(i).load(Ordering::Relaxed) != 0)
                .unwrap();
            let empty = (0..n)
                .find(|&i| l.page.slot(i).load(Ordering::Relaxed) == 0)
                .unwrap();
            let v = l.page.slot(full).load(Ordering::Relaxed);
            l.page.slot(empty).store(v, Ordering::Relaxed);
            // Empty the first slot of a cluster of at least two: the rest become
            // unreachable from their home.
            let gap = (0..n)
                .find(|&i| {
                    l.page.slot(i).load(Ordering::Relaxed) != 0
                        && l.page.slot((i + 1) % n).load(Ordering::Relaxed) != 0
                        && i != empty
                        && i != full
                })
                .unwrap();
            let lost = l.page.slot(gap).load(Ordering::Relaxed);
            l.page.slot(gap).store(0, Ordering::Relaxed);
            l.salvage();
            let mut found = 0;
            for i in 0..20 {
                if get(l, &key(i)).is_some() {
                    found += 1;
                }
            }
            assert_eq!(found, 19, "only the record whose slot was wiped is gone");
            let linked = (0..n)
                .filter(|&i| l.page.slot(i).load(Ordering::Relaxed) != 0)
                .count();
            assert_eq!(linked, 19, "no duplicate left");
            assert_eq!(l.page.count(), 19);
            assert!(l.header_damage().is_none());
            assert_ne!(lost, 0);
        });
    }

    /// Regression (audit #2): repair unlinked bad slots one at a time, each a scan of
    /// the slot table plus a backward shift of the rest of the cluster: quadratic, over
    /// a minute under the page lock for a 16 MiB page (131,072 slots) full of garbage.
    #[test]
    fn salvage_of_a_16_mib_page_full_of_garbage_takes_linear_time() {
        let geo = Geometry {
            page_size: 16 << 20,
            num_pages: 1,
            locks: crate::LockKind::Fcntl,
        };
        let mut h = Heap::with_geometry(geo);
        h.with(|l| {
            l.wipe();
            let n = geo.nslots();
            // One cluster of `max_count` slots, each at its home, pointing at garbage.
            for i in 0..geo.max_count() {
                let tag = (((i as u64) << 32).div_ceil(n as u64)) as u32;
                assert_eq!(home(tag, n), i, "tag {tag} homes at slot {i}");
                l.page.slot(i).store(slot_value(8, tag), Ordering::Relaxed);
            }
            let t = std::time::Instant::now();
            l.salvage();
            let took = t.elapsed();
            assert!(
                took < std::time::Duration::from_secs(3),
                "salvage took {took:?}"
            );
            assert!((0..n).all(|i| l.page.slot(i).load(Ordering::Relaxed) == 0));
            assert_eq!(l.page.count(), 0);
            assert_eq!(lost(l), geo.max_count() as u64);
        });
    }

    #[test]
    fn a_journalled_move_is_finished_by_salvage() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            put(l, b"top", b"x");
            let big: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
            put(l, b"big", &big);
            let kh = l.hasher.hash(b"big");
            let f = l.find(b"big", kh.tag).unwrap().unwrap();
            let top = l.find(b"top", l.hasher.hash(b"top").tag).unwrap().unwrap();
            let shift = top.hdr.size();
            // Simulate a writer killed half way through moving `big` up by `shift`:
            // copy the upper half of its words, record progress, leave the slot old.
            let mut bytes = vec![0u8; f.hdr.size()];
            assert!(l.page.region().read_bytes(f.off, &mut bytes));
            let (from, to, words) = (f.off, f.off + shift, bytes.len() / 8);
            l.begin();
            l.unlink(top.slot);
            let half = words / 2;
            for w in (half..words).rev() {
                l.page
                    .region()
                    .write_bytes(to + 8 * w, &bytes[8 * w..8 * w + 8]);
            }
            l.page.store_journal_move(&Journal {
                slot: 0,
                from: from as u32,
                to: to as u32,
                len: bytes.len() as u32,
                prog: half as u32,
            });
            l.page.set_journal_slot(f.slot as u32 + 1);
            // (the process dies here: the counter stays odd)
            l.ticket = None;
            assert!(l.prepare(), "odd counter: repaired");
            assert_eq!(get(l, b"big").unwrap(), big);
            assert_eq!(l.page.journal().slot, 0);
        });
    }
}
