//! A page under its write lock: every change to a page, each mechanism in its own file.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Locked`], its seqlock write sections, versions, the verified lookup, values |
//! | `write.rs` | writes: [`WriteRequest`], the fast paths, the one append-and-link, delete, touch |
//! | `room.rs` | making room: victims (expired, then least recently used), [`NoRoom`], [`Evicted`] |
//! | `compact.rs` | compaction, the move journal, finishing a journalled move |
//! | `slots.rs` | the slot table: backward-shift unlinking, bulk unlinking, relinking |
//! | `repair.rs` | the header checks, record verification, salvage, wipe |
//! | `purge.rs` | removing every expired record of a page |
//! | `inspect.rs` | an operator's view: a page's live entries, a check that changes nothing, clear |
//!
//! A write goes one way: the store locks the page, [`Locked::find_verified`] looks the key
//! up (repairing the page once if it contradicts itself), [`Locked::write`] writes.
//!
//! Every change runs inside a seqlock write section ([`Locked::section`]) and is ordered
//! so that a writer killed at any point leaves each linked record intact at its old or its
//! new place:
//! - a new record is written into free space before one atomic store links it;
//! - deletion of one record shifts slots backwards, so a crash leaves at worst a
//!   duplicated slot; removing many (eviction, purge, repair) empties their slots and then
//!   moves records back to close the chains, so a crash leaves records linked but maybe
//!   unreachable, which repair re-links;
//! - compaction moves records towards the page end in descending offset order and
//!   switches each slot right after its record is copied; a record whose new range
//!   overlaps its old one is copied top-down with its progress in the page's move
//!   journal, so a half-moved record can be put back together.
//!
//! [`Locked::salvage`] repairs a page in place (nothing is moved): it finishes a
//! journalled move, unlinks every record whose bounds, checksum, key hash or page do not
//! check out and every older duplicate of a key, re-links records their probe chain
//! cannot reach, and recomputes the page header. Other records keep their data.

mod compact;
mod inspect;
mod purge;
mod repair;
mod room;
mod slots;
mod write;

use std::sync::atomic::Ordering;

use store_api::{Timestamp, is_live};

pub(crate) use room::NoRoom;
#[cfg(test)]
use room::Evicted;
pub(crate) use write::WriteRequest;

use crate::counters::Repairs;
use crate::failpoint::Armed;
use crate::format::checksum::{self, Fields};
use crate::format::hash::{KeyHash, KeyHasher};
use crate::format::header::version_counter;
use crate::format::region::Region;
use crate::format::page::{Page, slot_parts};
use crate::format::record::decode_expiry;
use crate::probe::{Found, Probe, probe, record_header};
use crate::seqlock::{SeqLock, WriteTicket};

/// A damaged page (the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage(pub(crate) &'static str);

/// A linked record as a scan of the slot table saw it.
#[derive(Debug, Clone, Copy)]
struct Linked {
    /// The slot's packed value (offset and tag).
    value: u64,
    off: usize,
    size: usize,
    stamp: u32,
    expires: u64,
}

impl Linked {
    fn live(&self, now: Timestamp) -> bool {
        is_live(decode_expiry(self.expires), now)
    }
}

/// A page whose write lock the caller holds.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    page: Page<'a>,
    hasher: &'a KeyHasher,
    fail: Armed,
    /// The open write section, if any (see [`Self::section`]).
    ticket: Option<WriteTicket>,
    /// Counts repairs and the records they drop.
    repairs: &'a Repairs,
    /// The whole file: its header's version counter, from which a page takes a fresh
    /// base, and its file-wide counters.
    file: Region<'a>,
}

/// Keeps every store before it ahead of every store after it in the compiled code: what
/// a writer killed at any instruction leaves behind is the program order of its stores
/// (a killed process's completed stores reach the shared mapping), and the crash-safety
/// arguments of this module depend on that order between relaxed stores to different
/// words (a record before the slot that links it, a journal before the copy it guards,
/// a copy before its slot switch), which the memory model would otherwise let the
/// compiler change. No instruction is emitted.
#[inline(always)]
fn crash_order() {
    std::sync::atomic::compiler_fence(Ordering::Release);
}

impl<'a> Locked<'a> {
    pub(crate) fn new(
        page: Page<'a>,
        hasher: &'a KeyHasher,
        fail: Armed,
        repairs: &'a Repairs,
        file: Region<'a>,
    ) -> Self {
        Locked {
            page,
            hasher,
            fail,
            ticket: None,
            repairs,
            file,
        }
    }

    /// A version for a write to this page: the page's own counter, so that writers of
    /// different pages do not share a cache line. Versions only need to be unique per
    /// key, and a key always lives on the same page.
    pub(crate) fn next_version(&mut self) -> u64 {
        let c = self.page.next_version();
        // Relaxed: only the lock holder touches the counter.
        let mut v = c.load(Ordering::Relaxed);
        if v == 0 {
            v = self.fresh_version_base();
        }
        c.store(v.wrapping_add(1), Ordering::Relaxed);
        v
    }

    /// A base above every version a page was seeded with before: 2^32 versions taken
    /// from the file header's counter.
    fn fresh_version_base(&self) -> u64 {
        // Relaxed: uniqueness needs only the atomicity of the read-modify-write.
        version_counter(&self.file)
            .expect("a locked page's file holds its header (checked under the lock)")
            .fetch_add(1 << 32, Ordering::Relaxed)
            .max(1)
    }

    /// Runs `f` inside one seqlock write section: readers retry while it runs and see
    /// all of its changes or none. There is no drop guard on purpose: a panic (or a kill)
    /// in the middle must leave the counter odd, so that the next lock holder repairs the
    /// page, and unwinding skips the `end` below. Sections do not nest.
    #[inline(always)]
    fn section<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        debug_assert!(self.ticket.is_none(), "write sections do not nest");
        self.begin();
        let r = f(self);
        self.end();
        r
    }

    #[inline(always)]
    fn begin(&mut self) {
        if self.ticket.is_none() {
            self.ticket = Some(SeqLock::new(self.page.seq()).write_begin());
        }
    }

    #[inline(always)]
    fn end(&mut self) {
        if let Some(t) = self.ticket.take() {
            SeqLock::new(self.page.seq()).write_end(t);
        }
    }

    /// Looks `key` up; damage if the page contradicts itself.
    #[inline]
    pub(crate) fn find(&self, key: &[u8], tag: u32) -> Result<Option<Found>, Damage> {
        match probe(&self.page, key, tag) {
            Probe::Found(f) => Ok(Some(f)),
            Probe::Missing => Ok(None),
            Probe::Bad(e) => Err(Damage(e)),
        }
    }

    /// Looks `key` up, repairing the page once if it contradicts itself; with `verify`, a
    /// found record whose checksum fails (bytes damaged by a stray write to the file)
    /// counts as damage too, so a damaged value is never handed out or kept. Without it
    /// (an upsert, which overwrites or unlinks the record whatever its value bytes say)
    /// the record's header is still bounds-checked by the probe; see "Seqlock (per page)"
    /// in `docs/FORMAT.md` for what a stray write to its length field can then do.
    /// `Err` if the page is still damaged after the repair.
    #[inline]
    pub(crate) fn find_verified(
        &mut self,
        key: &[u8],
        kh: KeyHash,
        verify: bool,
    ) -> Result<Option<Found>, Damage> {
        match self.find(key, kh.tag) {
            Ok(f) if !verify || f.is_none_or(|f| self.intact(kh, &f)) => Ok(f),
            _ => {
                self.salvage();
                self.find(key, kh.tag)
            }
        }
    }

    /// Whether a found record's checksum matches its (compared) key and its value.
    fn intact(&self, kh: KeyHash, f: &Found) -> bool {
        checksum::verify_in_place(
            self.page.region(),
            f.off + f.hdr.value_offset(),
            f.hdr.vlen,
            self.hasher,
            Fields::of(kh.raw, &f.hdr),
            f.hdr.check,
        )
    }

    /// The value of a found record.
    pub(crate) fn value(&self, f: &Found) -> Result<Vec<u8>, Damage> {
        let mut v = Vec::new();
        self.value_append(f, &mut v).map(|()| v)
    }

    /// Appends the value of a found record to `buf` (unchanged on damage).
    pub(crate) fn value_append(&self, f: &Found, buf: &mut Vec<u8>) -> Result<(), Damage> {
        // `read_append` reserves the whole words it copies.
        if self
            .page
            .region()
            .read_append(f.off + f.hdr.value_offset(), f.hdr.vlen, buf)
        {
            Ok(())
        } else {
            Err(Damage("value beyond the page end"))
        }
    }

    /// Refreshes the LRU stamp of a found record (a locked read).
    pub(crate) fn touch_stamp(&self, f: &Found) {
        let tick = self.page.tick();
        self.page.stamp(f.slot).store(tick, Ordering::Relaxed);
    }

    /// Every linked record, with its bounds checked; damage if a slot points nowhere.
    fn scan(&self) -> Result<Vec<Linked>, Damage> {
        let n = self.page.geo().nslots();
        let mut out = Vec::new();
        for i in 0..n {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            let (off, _) = slot_parts(v);
            if off == 0 {
                continue;
            }
            let hdr = record_header(&self.page, off as usize).map_err(Damage)?;
            out.push(Linked {
                value: v,
                off: off as usize,
                size: hdr.size(),
                stamp: self.page.stamp(i).load(Ordering::Relaxed),
                expires: hdr.expires,
            });
        }
        Ok(out)
    }
}

/// Heap-backed pages for the unit tests of every file of this module.
#[cfg(test)]
pub(super) mod fixture {
    use std::sync::atomic::Ordering;

    use store_api::{EvictionPolicy, Timestamp};

    use super::{Evicted, Locked, WriteRequest};
    use crate::counters::Repairs;
    use crate::failpoint::Armed;
    use crate::format::geometry::Geometry;
    use crate::format::hash::KeyHasher;
    use crate::format::header::SECRET_LEN;
    use crate::format::page::Page;
    use crate::format::region::Region;

    /// One 4 KiB page.
    pub(crate) const GEO: Geometry = Geometry {
        page_size: 4096,
        num_pages: 1,
        locks: crate::LockKind::Fcntl,
    };

    /// A file of one page on the heap.
    pub(crate) struct Heap {
        geo: Geometry,
        words: Vec<u64>,
        hasher: KeyHasher,
        repairs: Repairs,
    }

    impl Heap {
        pub(crate) fn new() -> Heap {
            Heap::with_geometry(GEO)
        }

        pub(crate) fn with_geometry(geo: Geometry) -> Heap {
            Heap {
                geo,
                words: vec![0; (geo.file_len() / 8) as usize],
                hasher: KeyHasher::new([9; SECRET_LEN], 1),
                repairs: Repairs::default(),
            }
        }

        /// Runs `f` on the page, locked (the caller is the only user of the heap).
        pub(crate) fn with<T>(&mut self, f: impl FnOnce(&mut Locked<'_>) -> T) -> T {
            let r = Region::of_words(&mut self.words);
            crate::format::header::version_counter(&r)
                .unwrap()
                .fetch_max(1 << 40, Ordering::Relaxed);
            let page = Page::new(&r, self.geo, 0).unwrap();
            let mut l = Locked::new(page, &self.hasher, Armed::default(), &self.repairs, r);
            f(&mut l)
        }
    }

    /// Upserts `key` (never expiring, LRU eviction).
    pub(crate) fn put(l: &mut Locked<'_>, key: &[u8], value: &[u8]) -> Evicted {
        let kh = l.hasher.hash(key);
        let existing = l.find(key, kh.tag).unwrap();
        let version = l.next_version();
        let req = WriteRequest {
            key,
            kh,
            value,
            expires: crate::format::record::NEVER,
            version,
            existing: existing.as_ref(),
            moved_from: None,
        };
        l.write(&req, &mut || Timestamp::ZERO, EvictionPolicy::Lru)
            .unwrap()
    }

    /// The value of `key`, if linked.
    pub(crate) fn get(l: &Locked<'_>, key: &[u8]) -> Option<Vec<u8>> {
        let kh = l.hasher.hash(key);
        l.find(key, kh.tag).unwrap().map(|f| l.value(&f).unwrap())
    }

    /// Key number `i`.
    pub(crate) fn key(i: usize) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }

    /// Pages repaired so far.
    pub(crate) fn repairs(l: &Locked<'_>) -> u64 {
        l.repairs.pages.load(Ordering::Relaxed)
    }

    /// Records dropped by repairs so far.
    pub(crate) fn lost(l: &Locked<'_>) -> u64 {
        l.repairs.lost.load(Ordering::Relaxed)
    }
}
