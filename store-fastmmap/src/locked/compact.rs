//! Compaction and the move journal: records move towards the page end in descending
//! offset order, each slot switched right after its record is copied; a record whose new
//! range overlaps its old one is copied top-down with its progress in the page's move
//! journal, so that a move a writer (or a repair) died in can be finished.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::{Linked, Locked, crash_order};
use crate::failpoint::Failpoint;
use crate::format::page::{Journal, slot_parts, slot_value};

impl Locked<'_> {
    /// Moves the records of `keep` (all linked, none overlapping) to the page end, in
    /// descending offset order, switching each slot (found in `pos`) right after its
    /// record is copied. Returns the new lowest used offset. The caller is inside a write
    /// section.
    pub(super) fn compact(&mut self, keep: &[Linked], pos: &HashMap<u64, usize>) -> usize {
        let geo = *self.page.geo();
        let mut order: Vec<&Linked> = keep.iter().collect();
        order.sort_by_key(|r| std::cmp::Reverse(r.off));
        let region = *self.page.region();
        let mut hi = geo.page_size as usize;
        let mut scratch = Vec::new();
        let mut moved = 0;
        for r in order {
            // The previous record's slot switch before this record's copy, which may
            // overwrite the previous record's old place.
            crash_order();
            let Some(&i) = pos.get(&r.value) else {
                continue;
            };
            let to = hi - r.size.min(hi);
            if to < r.off || to < geo.data_start() {
                // Overlapping records (a damaged page): leave this one where it is.
                hi = r.off;
                continue;
            }
            if to != r.off {
                scratch.clear();
                if !region.read_append(r.off, r.size, &mut scratch) {
                    hi = r.off;
                    continue;
                }
                if to >= r.off + r.size {
                    region.write_bytes(to, &scratch);
                } else {
                    self.move_overlapping(i, r.off, to, r.size);
                }
                let tag = slot_parts(r.value).1;
                // The slot switches after the copy is whole.
                crash_order();
                self.page
                    .slot(i)
                    .store(slot_value(to as u32, tag), Ordering::Relaxed);
                if self.page.journal().slot != 0 {
                    crash_order();
                    self.page.set_journal_slot(0);
                }
                moved += 1;
                if moved == 1 {
                    self.fail.hit(Failpoint::RebuildMidData);
                }
            }
            hi = to;
        }
        hi
    }

    /// Moves the record of `len` bytes at `from` to `to`, where `from < to < from + len`,
    /// under the move journal (see [`Self::move_down`]).
    fn move_overlapping(&mut self, slot: usize, from: usize, to: usize, len: usize) {
        let words = len / 8;
        let size = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        self.page.store_journal_move(&Journal {
            slot: 0,
            from: size(from),
            to: size(to),
            len: size(len),
            prog: size(words),
        });
        // The journal is valid once its slot is set, and before the first word moves.
        crash_order();
        self.page.set_journal_slot(size(slot + 1));
        crash_order();
        self.move_down(from, to, words, Failpoint::CompactMidMove);
    }

    /// Copies words `[0, prog)` of a record from `from` to `to` (`from < to`), top-down,
    /// recording progress in the journal often enough that the words not yet copied are
    /// still intact at `from`: copying word w overwrites word `w + shift` at `from`, which
    /// is at or above the recorded progress as long as it lags by at most `shift` words.
    /// So a writer killed here, and a repair killed finishing the move, are finished by
    /// the next repair from where they stopped. Returns false (nothing more copied) if a
    /// word lies outside the page.
    fn move_down(&mut self, from: usize, to: usize, prog: usize, fp: Failpoint) -> bool {
        let shift = (to - from) / 8;
        let region = *self.page.region();
        let mut w = prog;
        while w > 0 {
            w -= 1;
            let Some([word]) = region.load_words::<1>(from + 8 * w) else {
                return false;
            };
            if !region.store_words(to + 8 * w, [word]) {
                return false;
            }
            if (prog - w).is_multiple_of(shift) || w == 0 {
                // After the copies it counts, before the copies it allows.
                crash_order();
                self.page.set_journal_progress(w);
                crash_order();
            }
            if w == prog / 2 {
                self.fail.hit(fp);
            }
        }
        true
    }

    /// Finishes a journalled move a writer (or a repair) died in, if the journal is sane:
    /// words `[0, prog)` are still at `from`, the rest already at `to`.
    pub(super) fn finish_journal(&mut self) {
        let j = self.page.journal();
        if j.slot == 0 {
            return;
        }
        let geo = *self.page.geo();
        let (from, to, len, prog) = (
            j.from as usize,
            j.to as usize,
            j.len as usize,
            j.prog as usize,
        );
        let slot = (j.slot - 1) as usize;
        let sane = slot < geo.nslots()
            && from >= geo.data_start()
            && from < to
            && to < from + len
            && to + len <= geo.page_size as usize
            && len % 8 == 0
            && from % 8 == 0
            && to % 8 == 0
            && prog <= len / 8;
        if sane {
            let v = self.page.slot(slot).load(Ordering::Relaxed);
            let (off, tag) = slot_parts(v);
            if off as usize == from && self.move_down(from, to, prog, Failpoint::RepairMidJournal) {
                crash_order();
                self.page
                    .slot(slot)
                    .store(slot_value(to as u32, tag), Ordering::Relaxed);
            }
        }
        crash_order();
        self.page.set_journal_slot(0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Heap, get, key, put, repairs};
    use super::super::Evicted;

    #[test]
    fn overwrites_compact_and_keep_every_record() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for i in 0..10 {
                put(l, &key(i), &[i as u8; 100]);
            }
            for round in 0..500usize {
                let i = round % 3;
                // Varying sizes leave holes of every size: overlapping moves happen.
                let ev = put(l, &key(i), &vec![round as u8; 40 + round % 150]);
                assert_eq!(ev, Evicted::default());
            }
            for i in 3..10 {
                assert_eq!(get(l, &key(i)).unwrap(), vec![i as u8; 100]);
            }
            assert_eq!(l.page.journal().slot, 0, "journal cleared");
            assert_eq!(repairs(l), 0);
        });
    }
}
