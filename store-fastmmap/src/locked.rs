//! Page operations under the page's write lock: insert, replace, delete, touch, purge,
//! eviction, compaction and repair.
//!
//! Every change runs inside a seqlock write section and is ordered so that a writer
//! killed at any point leaves each linked record intact at its old or its new place:
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use store_api::{EvictionPolicy, Timestamp, is_live};

use crate::check::{CheckKey, has_crc};
use crate::counters::Repairs;
use crate::failpoint::{Armed, Failpoint};
use crate::format::page::{
    COUNT_OFFSET, DATA_LO_OFFSET, DEAD_OFFSET, INDEX_OFFSET, J_FROM_OFFSET, J_LEN_OFFSET,
    J_PROGRESS_OFFSET, J_SLOT_OFFSET, J_TO_OFFSET, MAGIC_OFFSET, PAGE_MAGIC, Page, TICK_OFFSET,
    home, slot_parts, slot_value,
};
use crate::format::record::{self, EXPIRES_OFFSET, decode_expiry, record_size};
use crate::hash::{KeyHash, KeyHasher};
use crate::probe::{Found, Probe, probe, record_header};
use crate::seqlock::{SeqLock, WriteTicket};

/// A damaged page (the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage(pub(crate) &'static str);

/// A write that found no room under the never-evict-live policy (nothing changed), or
/// on a damaged page (`evicted` says what went before the write gave up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NoRoom {
    pub(crate) evicted: Evicted,
}

/// What a write removed to make room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub(crate) live: u64,
    pub(crate) expired: u64,
}

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
    ticket: Option<WriteTicket>,
    /// Counts repairs and the records they drop.
    repairs: &'a Repairs,
    /// The file header's version counter, from which a page takes a fresh base.
    global_version: &'a AtomicU64,
}

/// How many slots ahead a purge pass prefetches record headers.
const PREFETCH_AHEAD: usize = 32;

/// A reader refreshes a stamp when it is older than this many writes to the page.
pub(crate) const STALE_TICKS: u32 = 16;

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
        global_version: &'a AtomicU64,
    ) -> Self {
        Locked {
            page,
            hasher,
            fail,
            ticket: None,
            repairs,
            global_version,
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
        self.global_version
            .fetch_add(1 << 32, Ordering::Relaxed)
            .max(1)
    }

    fn get(&self, off: usize) -> u32 {
        // Relaxed: we hold the write lock; only lock holders store header fields.
        self.page.field(off).load(Ordering::Relaxed)
    }

    fn set(&self, off: usize, v: u32) {
        // Relaxed: published by the seqlock's `write_end`.
        self.page.field(off).store(v, Ordering::Relaxed);
    }

    /// Stores a size or count (at most `page_size`, which is a u32, on a sound page),
    /// saturating: an impossible value is caught by `header_damage` at the next lock
    /// instead of wrapping into a plausible one.
    fn set_size(&self, off: usize, v: usize) {
        self.set(off, u32::try_from(v).unwrap_or(u32::MAX));
    }

    /// Unlinks a found record and accounts for it; the caller is inside a write section.
    fn remove_in_section(&mut self, f: &Found) {
        self.unlink(f.slot);
        let count = self.get(COUNT_OFFSET).saturating_sub(1);
        self.set(COUNT_OFFSET, count);
        let dead = self.get(DEAD_OFFSET) as usize + f.hdr.size();
        self.set_size(DEAD_OFFSET, dead);
    }

    fn begin(&mut self) {
        if self.ticket.is_none() {
            self.ticket = Some(SeqLock::new(self.page.seq()).write_begin());
        }
    }

    fn end(&mut self) {
        if let Some(t) = self.ticket.take() {
            SeqLock::new(self.page.seq()).write_end(t);
        }
    }

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
    fn header_damage(&self) -> Option<Damage> {
        let geo = self.page.geo();
        let ps = geo.page_size as usize;
        let data_lo = self.get(DATA_LO_OFFSET) as usize;
        if self.get(MAGIC_OFFSET) != PAGE_MAGIC || self.get(INDEX_OFFSET) != self.page.index() {
            return Some(Damage("page magic or index"));
        }
        if data_lo < geo.data_start() || data_lo > ps || !data_lo.is_multiple_of(8) {
            return Some(Damage("data_lo outside the data area"));
        }
        if self.get(COUNT_OFFSET) as usize > geo.max_count() {
            return Some(Damage("count above the slot limit"));
        }
        if self.get(DEAD_OFFSET) as usize > ps - data_lo {
            return Some(Damage("dead bytes above the used bytes"));
        }
        None
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

    /// Copies the value of a found record into `buf` (exactly `vlen` bytes long).
    pub(crate) fn value_into(&self, f: &Found, buf: &mut [u8]) -> bool {
        buf.len() == f.hdr.vlen
            && self
                .page
                .region()
                .read_bytes(f.off + f.hdr.value_offset(), buf)
    }

    /// The CRC checksum of a found record's value (of at most `CRC_MAX` bytes), computed
    /// in place; `None` if the value lies beyond the page end.
    pub(crate) fn value_crc(&self, f: &Found, key: CheckKey, keyhash: u64) -> Option<u32> {
        self.page.region().value_crc_in_place(
            f.off + f.hdr.value_offset(),
            f.hdr.vlen,
            key,
            (keyhash, f.hdr.version, f.hdr.lens()),
        )
    }

    /// Refreshes the LRU stamp of a found record (a locked read).
    pub(crate) fn touch_stamp(&self, f: &Found) {
        let tick = self.get(TICK_OFFSET);
        self.page.stamp(f.slot).store(tick, Ordering::Relaxed);
    }

    /// Changes a found record's expiry in place (one atomic store).
    pub(crate) fn set_expires(&mut self, f: &Found, expires: u64) -> Result<(), Damage> {
        let w = self
            .page
            .region()
            .u64_at(f.off + EXPIRES_OFFSET)
            .ok_or(Damage("record beyond the page end"))?;
        self.begin();
        w.store(expires, Ordering::Relaxed);
        let tick = self.get(TICK_OFFSET).wrapping_add(1);
        self.set(TICK_OFFSET, tick);
        self.page.stamp(f.slot).store(tick, Ordering::Relaxed);
        self.end();
        Ok(())
    }

    /// Unlinks a found record (backward-shift deletion: no tombstones).
    pub(crate) fn remove(&mut self, f: &Found) {
        self.begin();
        self.unlink(f.slot);
        let count = self.get(COUNT_OFFSET).saturating_sub(1);
        self.set(COUNT_OFFSET, count);
        if count == 0 {
            // The data area may be reset only if the slot table is really empty: a
            // damaged `count` must not let new records overwrite linked ones.
            let n = self.page.geo().nslots();
            if (0..n).any(|i| self.page.slot(i).load(Ordering::Relaxed) != 0) {
                self.end();
                self.salvage();
                return;
            }
            self.set(DATA_LO_OFFSET, self.page.geo().page_size);
            self.set(DEAD_OFFSET, 0);
        } else {
            let dead = self.get(DEAD_OFFSET) as usize + f.hdr.size();
            self.set_size(DEAD_OFFSET, dead);
        }
        self.set(TICK_OFFSET, self.get(TICK_OFFSET).wrapping_add(1));
        self.end();
    }

    /// Empties slot `hole` by shifting the rest of its cluster back (linear probing
    /// without tombstones). A crash part way leaves a duplicated slot, never a lost one.
    fn unlink(&mut self, hole: usize) {
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
    fn unlink_values(&mut self, values: &[u64]) -> HashMap<u64, usize> {
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
    fn relink_all(&mut self, start: usize) {
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

    /// Writes a record for `key`, replacing `existing`, making room as `policy` allows.
    /// `moved_from` (a record of another key on this page: the source of a same-page
    /// `rotate`) is unlinked in the same write section, and its room counts as free, so
    /// readers see the move as one step and it never evicts to make room for itself.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &mut self,
        key: &[u8],
        kh: KeyHash,
        value: &[u8],
        expires: u64,
        version: u64,
        existing: Option<&Found>,
        moved_from: Option<&Found>,
        now: &mut dyn FnMut() -> Timestamp,
        policy: EvictionPolicy,
    ) -> Result<Evicted, NoRoom> {
        debug_assert!(
            moved_from.is_none_or(|m| existing.is_none_or(|e| e.off != m.off)),
            "the moved record is not the key's own"
        );
        let geo = *self.page.geo();
        let size = record_size(key.len(), value.len());
        let data_lo = self.get(DATA_LO_OFFSET) as usize;
        let count = self.get(COUNT_OFFSET) as usize;
        let gap = data_lo.saturating_sub(geo.data_start());
        let tag = kh.tag;
        let lens = record::lens(key.len(), value.len());
        // A long value's checksum is computed beforehand; a short one's CRC while the value
        // is stored (one pass over it).
        let long_check = (!has_crc(value.len()))
            .then(|| self.hasher.record_check_xxh3(kh.raw, version, lens, value));
        let (fail, check_key) = (self.fail, self.hasher.check_key());
        // Written straight into the page (no intermediate buffer): key (unless the record
        // being overwritten already holds it: the probe compared its bytes, padding
        // included), value, then the header with the checksum. A writer stopped before the
        // header leaves a record no slot links yet, or the key's old header over new value
        // bytes: a checksum that fails unless those bytes are exactly the old ones.
        // False, before anything is written, if the record does not fit in the page (which
        // cannot happen on a page whose header and records passed their checks: they put
        // `off` inside the data area). Every write below then lies inside `r`.
        let write_record = |page: &Page<'_>, off: usize, with_key: bool| -> bool {
            let Some(r) = page.region().sub(off, size) else {
                return false;
            };
            if with_key && !r.write_bytes(record::RECORD_HEADER_LEN, key) {
                return false;
            }
            let at = record::RECORD_HEADER_LEN + crate::format::align8(key.len());
            let check = match long_check {
                Some(c) => r.write_bytes(at, value).then_some(c),
                None => r.write_value_crc(at, value, check_key, (kh.raw, version, lens), || {
                    fail.hit(Failpoint::MidValue);
                }),
            };
            fail.hit(Failpoint::MidRecord);
            let Some(check) = check else {
                return false;
            };
            const _: () = assert!(
                record::VERSION_OFFSET == 0
                    && EXPIRES_OFFSET == 8
                    && record::LENS_OFFSET == 16
                    && record::CHECK_OFFSET == 20
            );
            let lens_check = u64::from(lens) | (u64::from(check) << 32);
            // The header (with the checksum) after key and value, its checksum word last.
            crash_order();
            if !r.store_words(0, [version, expires]) {
                return false;
            }
            fail.hit(Failpoint::MidHeader);
            crash_order();
            r.store_words(record::LENS_OFFSET, [lens_check])
        };
        let tick = self.get(TICK_OFFSET).wrapping_add(1);

        // Fastest path: a replacement of the same size is written over the old record
        // (its cache lines are warm from the lookup). Readers retry while the counter is
        // odd; a writer killed mid-copy leaves a record whose checksum fails (unless its
        // bytes are still exactly the old record's, which then stands), which repair
        // drops: the key then has its old value or none, never a mixed one.
        if let Some(f) = existing
            && f.hdr.size() == size
        {
            self.begin();
            self.fail.hit(Failpoint::PutAfterBegin);
            if !write_record(&self.page, f.off, false) {
                self.end();
                return Err(NoRoom::default());
            }
            self.page.stamp(f.slot).store(tick, Ordering::Relaxed);
            if let Some(m) = moved_from {
                self.remove_in_section(m);
            }
            self.set(TICK_OFFSET, tick);
            self.end();
            return Ok(Evicted::default());
        }

        // Fast path: append into the free gap and link. (Slot positions do not move
        // before `moved_from` is unlinked last, so its slot index stays valid.)
        if size <= gap && (existing.is_some() || moved_from.is_some() || count < geo.max_count()) {
            let slot = match existing {
                Some(f) => Some(f.slot),
                None => self.empty_slot(tag),
            };
            if let Some(slot) = slot {
                let off = data_lo - size;
                self.begin();
                self.fail.hit(Failpoint::PutAfterBegin);
                if !write_record(&self.page, off, true) {
                    self.end();
                    return Err(NoRoom::default());
                }
                self.fail.hit(Failpoint::PutAfterRecord);
                self.page.stamp(slot).store(tick, Ordering::Relaxed);
                // One atomic store switches readers from the old record to the new one,
                // after the record is whole.
                crash_order();
                self.page
                    .slot(slot)
                    .store(slot_value(off as u32, tag), Ordering::Relaxed);
                self.fail.hit(Failpoint::PutAfterLink);
                self.set_size(DATA_LO_OFFSET, off);
                match existing {
                    Some(f) => {
                        let dead = self.get(DEAD_OFFSET) as usize + f.hdr.size();
                        self.set_size(DEAD_OFFSET, dead);
                    }
                    None => self.set_size(COUNT_OFFSET, count + 1),
                }
                if let Some(m) = moved_from {
                    self.remove_in_section(m);
                }
                self.set(TICK_OFFSET, tick);
                self.end();
                return Ok(Evicted::default());
            }
        }

        self.write_making_room(
            size,
            tag,
            tick,
            existing,
            moved_from,
            now,
            policy,
            &write_record,
        )
    }

    /// The slow path of [`Self::write`], out of line so that the common ones stay small:
    /// makes room (the key's old record, then expired records, then least recently used
    /// ones), compacts, appends the record of `size` bytes that `write_record` writes.
    ///
    /// The key's old record (`existing`) and a same-page rotate's source (`moved_from`),
    /// "the own records", count as free room when choosing victims, but stay linked
    /// until the new record is: when the page can hold them beside the new record they
    /// are compacted with the others, so a writer killed anywhere here loses nothing.
    /// Only when it cannot (a value close to the free room rewritten) does compaction
    /// write over them while their slots still point there; a writer killed then leaves
    /// records that fail their checks, which repair drops and counts as lost (for a
    /// rotate's source killed after its target was linked, an over-count: the session
    /// lives on under its new name).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn write_making_room(
        &mut self,
        size: usize,
        tag: u32,
        tick: u32,
        existing: Option<&Found>,
        moved_from: Option<&Found>,
        now: &mut dyn FnMut() -> Timestamp,
        policy: EvictionPolicy,
        write_record: &dyn Fn(&Page<'_>, usize, bool) -> bool,
    ) -> Result<Evicted, NoRoom> {
        let geo = *self.page.geo();
        let recs = match self.scan() {
            Ok(r) => r,
            Err(_) => {
                self.salvage();
                self.scan().unwrap_or_default()
            }
        };
        // Identified by offset: a repair above may have moved slots, never records.
        let own_offs = [existing, moved_from].map(|f| f.map(|f| f.off));
        let (mut keep, own): (Vec<Linked>, Vec<Linked>) = recs
            .into_iter()
            .partition(|r| !own_offs.contains(&Some(r.off)));
        let own_existing = own.iter().find(|r| Some(r.off) == own_offs[0]).copied();
        let own_moved = own.iter().find(|r| Some(r.off) == own_offs[1]).copied();
        let (data_len, max_count) = (geo.data_len(), geo.max_count());
        let total = |v: &[Linked]| v.iter().map(|r| r.size).sum::<usize>();
        let fits = |total: usize, n: usize, slack: usize, slot_slack: usize| {
            total + size + slack <= data_len && n + slot_slack < max_count
        };
        let mut victims: Vec<Linked> = Vec::new();
        let mut ev = Evicted::default();
        if !fits(total(&keep), keep.len(), 0, 0) {
            // The clock is read only here, when a write has to choose what goes.
            let now = now();
            let (live, expired): (Vec<Linked>, Vec<Linked>) =
                keep.into_iter().partition(|r| r.live(now));
            keep = live;
            let mut out_live: Vec<Linked> = Vec::new();
            if !fits(total(&keep), keep.len(), 0, 0) {
                if policy == EvictionPolicy::NeverEvictLive {
                    return Err(NoRoom::default());
                }
                // Least recently used first (largest age in page ticks), with a little
                // slack (1/64 of the page) so that a full page is not compacted on every
                // write.
                keep.sort_by_key(|r| std::cmp::Reverse(tick.wrapping_sub(r.stamp)));
                let (slack, slot_slack) = (data_len / 64, max_count / 64);
                let (mut t, mut n, mut drop) = (total(&keep), keep.len(), 0);
                while drop < keep.len() && !fits(t, n, slack, slot_slack) {
                    t -= keep[drop].size;
                    n -= 1;
                    drop += 1;
                }
                if !fits(t, n, 0, 0) {
                    return Err(NoRoom::default());
                }
                out_live = keep.drain(..drop).collect();
            }
            ev.expired = expired.len() as u64;
            ev.live = out_live.len() as u64;
            victims.extend(expired);
            victims.extend(out_live);
        }
        // Whether the own records fit beside the new one (slots: the new record takes
        // the old one's slot, or a new one while a rotate's source is still linked).
        let linked_own = own.len() + usize::from(own_existing.is_none());
        let keep_own =
            total(&keep) + total(&own) + size <= data_len && keep.len() + linked_own <= max_count;
        self.begin();
        let values: Vec<u64> = victims.iter().map(|v| v.value).collect();
        self.unlink_values(&values);
        // Slot positions do not change while records move: find them once.
        let pos = self.slot_positions();
        let hi = if keep_own {
            let mut all = keep.clone();
            all.extend(own.iter().copied());
            self.compact(&all, &pos)
        } else {
            self.compact(&keep, &pos)
        };
        // Now there is room: append, then switch readers to it with one store, in the same
        // write section, so that readers never see the key's old record gone and its new
        // one not yet there.
        let slot = match own_existing {
            Some(r) => pos.get(&r.value).copied(),
            None => self.empty_slot(tag),
        };
        let off = hi.wrapping_sub(size);
        let room = size <= hi.saturating_sub(geo.data_start());
        // The compaction's last slot switch before the new record's bytes.
        crash_order();
        if let Some(slot) = slot.filter(|_| room)
            && write_record(&self.page, off, true)
        {
            self.page.stamp(slot).store(tick, Ordering::Relaxed);
            crash_order();
            self.page
                .slot(slot)
                .store(slot_value(off as u32, tag), Ordering::Relaxed);
            if let Some(m) = own_moved
                && let Some(&i) = pos.get(&m.value)
            {
                crash_order();
                self.unlink(i);
            }
            let count = keep.len() + 1;
            self.set_size(COUNT_OFFSET, count);
            self.set_size(DATA_LO_OFFSET, off);
            // Compacted own records are left behind as dead bytes.
            self.set_size(DEAD_OFFSET, if keep_own { total(&own) } else { 0 });
            self.set(TICK_OFFSET, tick);
            self.end();
            return Ok(ev);
        }
        // Unreachable on a sound page: `fits` guaranteed the room and a free slot. The
        // victims are gone (reported); the own records may have been written over, so
        // the page is repaired, which drops (and counts) what no longer checks out.
        self.set(TICK_OFFSET, tick);
        self.end();
        self.salvage();
        Err(NoRoom { evicted: ev })
    }

    /// Slot index of every linked slot value (values are unique on a sound page).
    fn slot_positions(&self) -> HashMap<u64, usize> {
        let n = self.page.geo().nslots();
        let mut pos = HashMap::with_capacity(n);
        for i in 0..n {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            if v != 0 {
                pos.insert(v, i);
            }
        }
        pos
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

    /// Moves the records of `keep` (all linked, none overlapping) to the page end, in
    /// descending offset order, switching each slot (found in `pos`) right after its
    /// record is copied. Returns the new lowest used offset. The caller is inside a write
    /// section.
    fn compact(&mut self, keep: &[Linked], pos: &HashMap<u64, usize>) -> usize {
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
                if self.get(J_SLOT_OFFSET) != 0 {
                    crash_order();
                    self.set(J_SLOT_OFFSET, 0);
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
        self.set_size(J_FROM_OFFSET, from);
        self.set_size(J_TO_OFFSET, to);
        self.set_size(J_LEN_OFFSET, len);
        self.set_size(J_PROGRESS_OFFSET, words);
        // The journal is valid once `j_slot` is set, and before the first word moves.
        crash_order();
        self.set_size(J_SLOT_OFFSET, slot + 1);
        crash_order();
        self.move_down(from, to, words, Failpoint::CompactMidMove);
    }

    /// Copies words `[0, prog)` of a record from `from` to `to` (`from < to`), top-down,
    /// recording progress in the journal's `j_prog` often enough that the words not yet
    /// copied are still intact at `from`: copying word w overwrites word `w + shift` at
    /// `from`, which is at or above the recorded progress as long as it lags by at most
    /// `shift` words. So a writer killed here, and a repair killed finishing the move, are
    /// finished by the next repair from where they stopped. Returns false (nothing more
    /// copied) if a word lies outside the page.
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
                self.set_size(J_PROGRESS_OFFSET, w);
                crash_order();
            }
            if w == prog / 2 {
                self.fail.hit(fp);
            }
        }
        true
    }

    /// Finishes a journalled move a writer (or a repair) died in, if the journal is sane:
    /// words `[0, j_prog)` are still at `j_from`, the rest already at `j_to`.
    fn finish_journal(&mut self) {
        let j = self.get(J_SLOT_OFFSET);
        if j == 0 {
            return;
        }
        let geo = *self.page.geo();
        let (from, to, len, prog) = (
            self.get(J_FROM_OFFSET) as usize,
            self.get(J_TO_OFFSET) as usize,
            self.get(J_LEN_OFFSET) as usize,
            self.get(J_PROGRESS_OFFSET) as usize,
        );
        let slot = (j - 1) as usize;
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
        self.set(J_SLOT_OFFSET, 0);
    }

    /// The first empty slot on `tag`'s probe chain.
    fn empty_slot(&self, tag: u32) -> Option<usize> {
        let n = self.page.geo().nslots();
        let h = home(tag, n);
        (0..n)
            .map(|s| (h + s) % n)
            .find(|&i| self.page.slot(i).load(Ordering::Relaxed) == 0)
    }

    /// Removes every expired record; returns how many. `scratch` is reused from page to
    /// page (a purge of the whole file allocates once, not once per page).
    ///
    /// One pass over the slot table checks every linked record's header (as `scan`) and
    /// notes the slots of expired ones; then, in one write section, those slots are
    /// emptied and the probe chains they cut are closed (as `unlink_values`, but by slot
    /// index: under the lock the slots are exactly where the pass saw them).
    pub(crate) fn purge(&mut self, now: Timestamp, scratch: &mut Vec<(usize, usize)>) -> u64 {
        let n = self.page.geo().nslots();
        let mut attempt = 0;
        let (linked, start) = loop {
            scratch.clear();
            // A slot empty before any is emptied here: on a sound page every probe chain
            // lies after it in cyclic order, so one relinking pass from it suffices.
            let mut start = None;
            let mut linked = 0usize;
            let mut damaged = false;
            let region = *self.page.region();
            for i in 0..n {
                // The records lie in slot-hash order across the page: start fetching the
                // header of the record some slots ahead, so the loads below rarely wait.
                if i + PREFETCH_AHEAD < n {
                    let ahead = self.page.slot(i + PREFETCH_AHEAD).load(Ordering::Relaxed);
                    let (off, _) = slot_parts(ahead);
                    if off != 0 {
                        let off = off as usize;
                        region.prefetch(off);
                        region.prefetch(off + record::RECORD_HEADER_LEN - 1);
                    }
                }
                let v = self.page.slot(i).load(Ordering::Relaxed);
                if v == 0 && start.is_none() {
                    start = Some(i);
                }
                let (off, _) = slot_parts(v);
                if off == 0 {
                    continue;
                }
                match record_header(&self.page, off as usize) {
                    Ok(hdr) => {
                        linked += 1;
                        if !is_live(decode_expiry(hdr.expires), now) {
                            scratch.push((i, hdr.size()));
                        }
                    }
                    Err(_) => {
                        damaged = true;
                        break;
                    }
                }
            }
            if !damaged {
                break (linked, start.unwrap_or(0));
            }
            if attempt == 1 {
                // Still damaged after a repair: purge nothing here.
                scratch.clear();
                return 0;
            }
            attempt += 1;
            self.salvage();
        };
        if scratch.is_empty() {
            return 0;
        }
        self.begin();
        for &(i, _) in scratch.iter() {
            self.page.slot(i).store(0, Ordering::Relaxed);
        }
        self.relink_all(start);
        let freed: usize = scratch.iter().map(|&(_, size)| size).sum();
        let count = linked - scratch.len();
        self.set_size(COUNT_OFFSET, count);
        if count == 0 {
            self.set(DATA_LO_OFFSET, self.page.geo().page_size);
            self.set(DEAD_OFFSET, 0);
        } else {
            let dead = self.get(DEAD_OFFSET) as usize + freed;
            self.set_size(DEAD_OFFSET, dead);
        }
        self.set(TICK_OFFSET, self.get(TICK_OFFSET).wrapping_add(1));
        self.end();
        scratch.len() as u64
    }

    /// Whether the record a slot value points at checks out completely: bounds,
    /// checksum, key hash (tag and page). Returns its key and version if so.
    fn verify(&self, v: u64) -> Option<(Vec<u8>, u64)> {
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
            && self.hasher.record_check(kh.raw, h.version, h.lens(), value) == h.check;
        ok.then(|| (key.to_vec(), h.version))
    }

    /// Repairs the page in place (see the module docs). Counted in `Stats::recovered`.
    pub(crate) fn salvage(&mut self) {
        self.repairs.pages.fetch_add(1, Ordering::Relaxed);
        let geo = *self.page.geo();
        let n = geo.nslots();
        self.begin();
        self.set(MAGIC_OFFSET, PAGE_MAGIC);
        self.set(INDEX_OFFSET, self.page.index());
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
            match self.verify(v) {
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
        self.set_size(COUNT_OFFSET, recs.len());
        self.set_size(DATA_LO_OFFSET, lo);
        self.set_size(DEAD_OFFSET, (ps - lo).saturating_sub(used));
        self.set(TICK_OFFSET, self.get(TICK_OFFSET).wrapping_add(1));
        self.end();
    }

    /// Makes the page empty (initialisation, under the header lock).
    pub(crate) fn wipe(&mut self) {
        let geo = *self.page.geo();
        self.begin();
        for i in 0..geo.nslots() {
            self.page.slot(i).store(0, Ordering::Relaxed);
            self.page.stamp(i).store(0, Ordering::Relaxed);
        }
        self.set(MAGIC_OFFSET, PAGE_MAGIC);
        self.set(INDEX_OFFSET, self.page.index());
        self.set(COUNT_OFFSET, 0);
        self.set(DATA_LO_OFFSET, geo.page_size);
        self.set(DEAD_OFFSET, 0);
        self.set(TICK_OFFSET, 0);
        // The next write takes a fresh base from the file's counter: whatever lay here
        // (an old page's data, after a change of geometry) is no version source.
        self.page.next_version().store(0, Ordering::Relaxed);
        for off in [
            J_SLOT_OFFSET,
            J_FROM_OFFSET,
            J_TO_OFFSET,
            J_LEN_OFFSET,
            J_PROGRESS_OFFSET,
        ] {
            self.set(off, 0);
        }
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::geometry::Geometry;
    use crate::format::header::SECRET_LEN;
    use crate::format::region::Region;

    const GEO: Geometry = Geometry {
        page_size: 4096,
        num_pages: 1,
    };

    struct Heap {
        geo: Geometry,
        words: Vec<u64>,
        hasher: KeyHasher,
        repairs: Repairs,
        global: AtomicU64,
    }

    impl Heap {
        fn new() -> Heap {
            Heap::with_geometry(GEO)
        }

        fn with_geometry(geo: Geometry) -> Heap {
            Heap {
                geo,
                words: vec![0; (geo.file_len() / 8) as usize],
                hasher: KeyHasher::new([9; SECRET_LEN], 1),
                repairs: Repairs::default(),
                global: AtomicU64::new(1 << 40),
            }
        }

        fn with<T>(&mut self, f: impl FnOnce(&mut Locked<'_>) -> T) -> T {
            let r = Region::of_words(&mut self.words);
            let page = Page::new(&r, self.geo, 0).unwrap();
            let mut l = Locked::new(
                page,
                &self.hasher,
                Armed::default(),
                &self.repairs,
                &self.global,
            );
            f(&mut l)
        }
    }

    fn put(l: &mut Locked<'_>, key: &[u8], value: &[u8]) -> Evicted {
        let kh = l.hasher.hash(key);
        let existing = l.find(key, kh.tag).unwrap();
        let v = l.next_version();
        l.write(
            key,
            kh,
            value,
            crate::format::record::NEVER,
            v,
            existing.as_ref(),
            None,
            &mut || Timestamp::ZERO,
            EvictionPolicy::Lru,
        )
        .unwrap()
    }

    fn get(l: &Locked<'_>, key: &[u8]) -> Option<Vec<u8>> {
        let kh = l.hasher.hash(key);
        l.find(key, kh.tag).unwrap().map(|f| l.value(&f).unwrap())
    }

    fn key(i: usize) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }

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
            assert_eq!(l.get(COUNT_OFFSET) as usize, GEO.max_count() / 2);
            assert!(l.header_damage().is_none());
        });
    }

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
            assert_eq!(l.get(J_SLOT_OFFSET), 0, "journal cleared");
            assert_eq!(h_repairs(l), 0);
        });
    }

    /// A rewrite whose new record cannot sit beside its old one (together more than the
    /// data area) still succeeds: the old record's room is written over (the one case a
    /// crash can lose the key, counted by the repair); one that fits beside it once the
    /// page is compacted keeps the old record linked through the compaction, then dead.
    #[test]
    fn rewrites_too_large_to_sit_beside_their_old_record_take_its_room() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            let data_len = GEO.data_len();
            put(l, b"small", b"s");
            let big = vec![3u8; data_len / 2];
            put(l, b"big", &big);
            // Bigger than the rest of the data area beside the old record.
            let bigger = vec![4u8; data_len / 2 + 200];
            assert_eq!(put(l, b"big", &bigger), Evicted::default());
            assert_eq!(get(l, b"big").unwrap(), bigger);
            assert_eq!(get(l, b"small").unwrap(), b"s");
            assert_eq!(l.get(DEAD_OFFSET), 0, "nothing left behind");
            assert!(l.header_damage().is_none());
            assert_eq!(h_repairs(l), 0);
        });
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for k in [b"a", b"b", b"c"] {
                put(l, k, &[1u8; 1000]);
            }
            let kh = l.hasher.hash(b"a");
            let a = l.find(b"a", kh.tag).unwrap().unwrap();
            l.remove(&a);
            // More than the free gap, and room beside the old record once compacted.
            let gap = l.get(DATA_LO_OFFSET) as usize - GEO.data_start();
            let value = vec![5u8; gap + 72];
            let old = record_size(1, 1000);
            assert!(2 * old + record_size(1, value.len()) <= GEO.data_len());
            assert_eq!(put(l, b"c", &value), Evicted::default());
            assert_eq!(get(l, b"c").unwrap(), value);
            assert_eq!(get(l, b"b").unwrap(), vec![1u8; 1000]);
            assert_eq!(
                l.get(DEAD_OFFSET) as usize,
                old,
                "the old record was kept and moved"
            );
            assert!(l.header_damage().is_none());
        });
    }

    fn h_repairs(l: &Locked<'_>) -> u64 {
        l.repairs.pages.load(Ordering::Relaxed)
    }

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
            assert_eq!(l.get(COUNT_OFFSET), 19);
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
            assert_eq!(l.get(COUNT_OFFSET), 0);
            assert_eq!(
                l.repairs.lost.load(Ordering::Relaxed),
                geo.max_count() as u64
            );
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
            assert_eq!(l.repairs.lost.load(Ordering::Relaxed), 0);
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
            l.set(J_FROM_OFFSET, from as u32);
            l.set(J_TO_OFFSET, to as u32);
            l.set(J_LEN_OFFSET, bytes.len() as u32);
            let half = words / 2;
            for w in (half..words).rev() {
                l.page
                    .region()
                    .write_bytes(to + 8 * w, &bytes[8 * w..8 * w + 8]);
            }
            l.set(J_PROGRESS_OFFSET, half as u32);
            l.set(J_SLOT_OFFSET, f.slot as u32 + 1);
            // (the process dies here: the counter stays odd)
            l.ticket = None;
            assert!(l.prepare(), "odd counter: repaired");
            assert_eq!(get(l, b"big").unwrap(), big);
            assert_eq!(l.get(J_SLOT_OFFSET), 0);
        });
    }
}
