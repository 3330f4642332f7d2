//! The page layout and its atomic view.
//!
//! ```text
//!  +-----------------------------------------------------------------+
//!  |                               seq                               |   0
//!  +--------------------------------+--------------------------------+
//!  |             magic              |             index              |   8
//!  +--------------------------------+--------------------------------+
//!  |             count              |            data_lo             |  16
//!  +--------------------------------+--------------------------------+
//!  |              dead              |              tick              |  24
//!  +--------------------------------+--------------------------------+
//!  |             j_slot             |             j_from             |  32
//!  +--------------------------------+--------------------------------+
//!  |              j_to              |             j_len              |  40
//!  +--------------------------------+--------------------------------+
//!  |             j_prog             |         reserved, zero         |  48
//!  +--------------------------------+--------------------------------+
//!  |                          next_version                           |  56
//!  +-----------------------------------------------------------------+
//!  |            slot table: nslots rows (one u64 per slot)           |  64
//!  +--------------------------------+--------------------------------+
//!  | LRU stamps: nslots u32, two per row                             |  64 + 8*nslots
//!  +-----------------------------------------------------------------+
//!  | data area: free gap, then from data_lo the records, packed      |  data_start =
//!  | towards the page end                                            |  align8(64 + 12*nslots)
//!  +-----------------------------------------------------------------+
//! ```
//! A slot is `(record offset u32) | (tag u32) << 32`, 0 = empty; stamp i belongs to slot i.
//! `nslots = page_size / 128`. The seqlock counter `seq` guards everything in the page
//! except the stamps, which readers store without the lock (they are hints).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::geometry::Geometry;
use super::region::Region;

/// The seqlock counter (u64).
pub(crate) const SEQ_OFFSET: usize = 0;
/// `PAGE_MAGIC` (u32).
pub(crate) const MAGIC_OFFSET: usize = SEQ_OFFSET + 8;
/// The page's own index (u32), to detect misplaced data.
pub(crate) const INDEX_OFFSET: usize = MAGIC_OFFSET + 4;
/// Records linked from the slot table (u32).
pub(crate) const COUNT_OFFSET: usize = INDEX_OFFSET + 4;
/// Lowest offset used by a record (u32); `page_size` when the data area is empty.
pub(crate) const DATA_LO_OFFSET: usize = COUNT_OFFSET + 4;
/// Bytes in `[data_lo, page_size)` held by no linked record (u32).
pub(crate) const DEAD_OFFSET: usize = DATA_LO_OFFSET + 4;
/// The page's LRU clock, advanced by every write (u32, wrapping).
pub(crate) const TICK_OFFSET: usize = DEAD_OFFSET + 4;
/// Move journal: slot index + 1 of the record being moved onto itself, 0 = none (u32).
pub(crate) const J_SLOT_OFFSET: usize = TICK_OFFSET + 4;
/// Move journal: the record's old offset (u32).
pub(crate) const J_FROM_OFFSET: usize = J_SLOT_OFFSET + 4;
/// Move journal: the record's new offset (u32).
pub(crate) const J_TO_OFFSET: usize = J_FROM_OFFSET + 4;
/// Move journal: the record's size (u32).
pub(crate) const J_LEN_OFFSET: usize = J_TO_OFFSET + 4;
/// Move journal: words of the record, counted from its start, still only at the old
/// offset; the words from here on are already at the new offset (u32).
pub(crate) const J_PROGRESS_OFFSET: usize = J_LEN_OFFSET + 4;
/// The page's next entry version (u64, 8-aligned; see FORMAT.md "Versions").
pub(crate) const NEXT_VERSION_OFFSET: usize = 56;
/// Length of the page header.
pub(crate) const PAGE_HEADER_LEN: usize = 64;
const _: () = assert!(J_PROGRESS_OFFSET + 4 <= NEXT_VERSION_OFFSET);
const _: () =
    assert!(NEXT_VERSION_OFFSET.is_multiple_of(8) && NEXT_VERSION_OFFSET + 8 == PAGE_HEADER_LEN);

/// Page magic, "PAGE" little-endian.
pub(crate) const PAGE_MAGIC: u32 = u32::from_le_bytes(*b"PAGE");

/// A slot's packed value.
#[inline]
pub(crate) const fn slot_value(off: u32, tag: u32) -> u64 {
    (off as u64) | ((tag as u64) << 32)
}

/// `(record offset, tag)` of a slot value; offset 0 is an empty slot.
#[inline]
pub(crate) const fn slot_parts(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// The home slot of a tag: `tag * nslots / 2^32`.
#[inline]
pub(crate) fn home(tag: u32, nslots: usize) -> usize {
    ((u64::from(tag) * nslots as u64) >> 32) as usize
}

/// The move journal of a page (see `J_*_OFFSET`): a record being moved onto itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Journal {
    /// Slot index + 1 of the record, 0 = no move.
    pub(crate) slot: u32,
    /// The record's old offset.
    pub(crate) from: u32,
    /// The record's new offset.
    pub(crate) to: u32,
    /// The record's size.
    pub(crate) len: u32,
    /// Words, counted from the record's start, still only at the old offset.
    pub(crate) prog: u32,
}

/// A view of one page of the mapping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page<'a> {
    r: Region<'a>,
    geo: Geometry,
    index: u32,
}

impl<'a> Page<'a> {
    /// Page `index` of `file` (the whole mapping), or `None` if it lies outside.
    pub(crate) fn new(file: &Region<'a>, geo: Geometry, index: u32) -> Option<Page<'a>> {
        let off = usize::try_from(geo.page_offset(index)).ok()?;
        let r = file.sub(off, geo.page_size as usize)?;
        Some(Page { r, geo, index })
    }

    /// The page's bytes.
    #[inline]
    pub(crate) fn region(&self) -> &Region<'a> {
        &self.r
    }

    /// The geometry.
    #[inline]
    pub(crate) fn geo(&self) -> &Geometry {
        &self.geo
    }

    /// The page's index.
    #[inline]
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The seqlock counter.
    #[inline]
    pub(crate) fn seq(&self) -> &'a AtomicU64 {
        self.r.u64_at(SEQ_OFFSET).expect("a page holds its header")
    }

    /// The page's version counter.
    #[inline]
    pub(crate) fn next_version(&self) -> &'a AtomicU64 {
        self.r
            .u64_at(NEXT_VERSION_OFFSET)
            .expect("a page holds its header")
    }

    /// The u32 header field at `off` (one of the `*_OFFSET` constants).
    #[inline]
    fn field(&self, off: usize) -> &'a AtomicU32 {
        debug_assert!((MAGIC_OFFSET..NEXT_VERSION_OFFSET).contains(&off));
        self.r.u32_at(off).expect("a page holds its header")
    }

    // The header fields, loaded and stored relaxed: only the page's lock holder stores
    // them, inside a seqlock write section whose `write_end` publishes them; lock-free
    // readers validate what they loaded with the seqlock, and `stats` takes snapshots.

    #[inline]
    fn load(&self, off: usize) -> u32 {
        self.field(off).load(Ordering::Relaxed)
    }

    #[inline]
    fn store(&self, off: usize, v: u32) {
        self.field(off).store(v, Ordering::Relaxed);
    }

    /// Stores a size or count (at most `page_size`, a u32, on a sound page), saturating:
    /// an impossible value is caught by the header checks at the next lock instead of
    /// wrapping into a plausible one.
    #[inline]
    fn store_size(&self, off: usize, v: usize) {
        self.store(off, u32::try_from(v).unwrap_or(u32::MAX));
    }

    /// `magic` (`PAGE_MAGIC` on an initialised page).
    #[inline]
    pub(crate) fn magic(&self) -> u32 {
        self.load(MAGIC_OFFSET)
    }

    /// The index the page header claims (its own on a sound page).
    #[inline]
    pub(crate) fn stored_index(&self) -> u32 {
        self.load(INDEX_OFFSET)
    }

    /// Writes `magic` and `index` for this page.
    #[inline]
    pub(crate) fn set_identity(&self) {
        self.store(MAGIC_OFFSET, PAGE_MAGIC);
        self.store(INDEX_OFFSET, self.index);
    }

    /// `count`: records linked from the slot table.
    #[inline]
    pub(crate) fn count(&self) -> u32 {
        self.load(COUNT_OFFSET)
    }

    /// Sets `count`.
    #[inline]
    pub(crate) fn set_count(&self, v: usize) {
        self.store_size(COUNT_OFFSET, v);
    }

    /// `data_lo`: the lowest offset a record uses (`page_size` when none does).
    #[inline]
    pub(crate) fn data_lo(&self) -> u32 {
        self.load(DATA_LO_OFFSET)
    }

    /// Sets `data_lo`.
    #[inline]
    pub(crate) fn set_data_lo(&self, v: usize) {
        self.store_size(DATA_LO_OFFSET, v);
    }

    /// `dead`: bytes in `[data_lo, page_size)` no linked record holds.
    #[inline]
    pub(crate) fn dead(&self) -> u32 {
        self.load(DEAD_OFFSET)
    }

    /// Sets `dead`.
    #[inline]
    pub(crate) fn set_dead(&self, v: usize) {
        self.store_size(DEAD_OFFSET, v);
    }

    /// `tick`: the page's LRU clock.
    #[inline]
    pub(crate) fn tick(&self) -> u32 {
        self.load(TICK_OFFSET)
    }

    /// Sets `tick`.
    #[inline]
    pub(crate) fn set_tick(&self, v: u32) {
        self.store(TICK_OFFSET, v);
    }

    /// The move journal.
    #[inline]
    pub(crate) fn journal(&self) -> Journal {
        Journal {
            slot: self.load(J_SLOT_OFFSET),
            from: self.load(J_FROM_OFFSET),
            to: self.load(J_TO_OFFSET),
            len: self.load(J_LEN_OFFSET),
            prog: self.load(J_PROGRESS_OFFSET),
        }
    }

    /// Stores every field of `j` but `slot`, which arms the journal: the caller stores it
    /// after these, in crash order.
    #[inline]
    pub(crate) fn store_journal_move(&self, j: &Journal) {
        for (off, v) in [
            (J_FROM_OFFSET, j.from),
            (J_TO_OFFSET, j.to),
            (J_LEN_OFFSET, j.len),
            (J_PROGRESS_OFFSET, j.prog),
        ] {
            self.store(off, v);
        }
    }

    /// Sets the journal's `slot` (slot index + 1 arms it, 0 clears it).
    #[inline]
    pub(crate) fn set_journal_slot(&self, v: u32) {
        self.store(J_SLOT_OFFSET, v);
    }

    /// Sets the journal's progress (words still only at the old offset).
    #[inline]
    pub(crate) fn set_journal_progress(&self, words: usize) {
        self.store_size(J_PROGRESS_OFFSET, words);
    }

    /// Slot `i mod nslots`.
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> &'a AtomicU64 {
        let n = self.geo.nslots();
        let i = if i < n { i } else { i % n };
        self.r
            .u64_at(self.geo.slots_offset() + 8 * i)
            .expect("slot table lies inside the page")
    }

    /// LRU stamp `i mod nslots`.
    #[inline]
    pub(crate) fn stamp(&self, i: usize) -> &'a AtomicU32 {
        let n = self.geo.nslots();
        let i = if i < n { i } else { i % n };
        self.r
            .u32_at(self.geo.stamps_offset() + 4 * i)
            .expect("stamp array lies inside the page")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_packing_round_trips_and_home_is_in_range() {
        let v = slot_value(4096, 0xdead_beef);
        assert_eq!(slot_parts(v), (4096, 0xdead_beef));
        for tag in [0, 1, u32::MAX / 2, u32::MAX] {
            assert!(home(tag, 32) < 32);
        }
    }

    #[test]
    fn accessors_stay_inside_the_page() {
        let geo = Geometry {
            page_size: 4096,
            num_pages: 2,
            locks: crate::LockKind::Fcntl,
        };
        let mut words = vec![0u64; (geo.file_len() / 8) as usize];
        let r = Region::of_words(&mut words);
        let p = Page::new(&r, geo, 1).unwrap();
        assert!(Page::new(&r, geo, 2).is_none());
        // Index wraps instead of leaving the table.
        let _ = p.slot(usize::MAX);
        let _ = p.stamp(usize::MAX);
        let _ = p.seq();
    }

    #[test]
    fn header_fields_and_journal_round_trip_at_their_offsets() {
        let geo = Geometry {
            page_size: 4096,
            num_pages: 1,
            locks: crate::LockKind::Fcntl,
        };
        let mut words = vec![0u64; (geo.file_len() / 8) as usize];
        let r = Region::of_words(&mut words);
        let p = Page::new(&r, geo, 0).unwrap();
        p.set_identity();
        p.set_count(3);
        p.set_data_lo(4000);
        p.set_dead(usize::MAX);
        p.set_tick(9);
        let j = Journal {
            slot: 0,
            from: 1000,
            to: 1008,
            len: 64,
            prog: 8,
        };
        p.store_journal_move(&j);
        assert_eq!(p.journal(), j, "not armed by the move alone");
        p.set_journal_slot(5);
        p.set_journal_progress(2);
        let base = geo.page_offset(0) as usize;
        let field = |off: usize| r.u32_at(base + off).unwrap().load(Ordering::Relaxed);
        assert_eq!(field(MAGIC_OFFSET), PAGE_MAGIC);
        assert_eq!((p.magic(), p.stored_index()), (PAGE_MAGIC, 0));
        assert_eq!((field(COUNT_OFFSET), p.count()), (3, 3));
        assert_eq!((field(DATA_LO_OFFSET), p.data_lo()), (4000, 4000));
        assert_eq!(p.dead(), u32::MAX, "saturated");
        assert_eq!((field(TICK_OFFSET), p.tick()), (9, 9));
        assert_eq!(
            [J_SLOT_OFFSET, J_FROM_OFFSET, J_TO_OFFSET, J_LEN_OFFSET, J_PROGRESS_OFFSET].map(field),
            [5, 1000, 1008, 64, 2]
        );
    }
}
