//! Page operations under the page's write lock: insert, replace, delete, touch, purge,
//! eviction, compaction and repair.
//!
//! Every change runs inside one seqlock write section (`begin` .. `end`) and is ordered
//! so that a writer killed at any point leaves either the old state, the new state, or
//! an odd counter that the next writer repairs with [`Locked::salvage`]: it keeps every
//! record whose bounds, checksum, key hash and page agree, and rebuilds the page from
//! them.

use std::sync::atomic::Ordering;

use store_api::{EvictionPolicy, Timestamp, is_live};

use crate::failpoint::{Armed, Failpoint};
use crate::format::page::{
    COUNT_OFFSET, DATA_LO_OFFSET, DEAD_OFFSET, INDEX_OFFSET, MAGIC_OFFSET, PAGE_MAGIC, Page,
    TICK_OFFSET, home, slot_parts, slot_value,
};
use crate::format::record::{self, EXPIRES_OFFSET, RECORD_HEADER_LEN, decode_expiry, record_size};
use crate::hash::{KeyHash, KeyHasher};
use crate::probe::{Found, Probe, probe, record_header};
use crate::seqlock::{SeqLock, WriteTicket};

/// A damaged page (the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage(pub(crate) &'static str);

/// A write that found no room under the never-evict-live policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRoom;

/// What a write removed to make room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub(crate) live: u64,
    pub(crate) expired: u64,
}

/// A record copied out of the page, for a rebuild: its bytes live in [`Recs::buf`].
#[derive(Debug, Clone, Copy)]
struct Rec {
    tag: u32,
    stamp: u32,
    start: usize,
    len: usize,
}

/// Records copied out of a page into one buffer (one allocation, not one per record).
#[derive(Debug, Default)]
struct Recs {
    buf: Vec<u8>,
    list: Vec<Rec>,
}

impl Recs {
    fn bytes(&self, r: &Rec) -> &[u8] {
        &self.buf[r.start..r.start + r.len]
    }

    fn word(&self, r: &Rec, off: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.bytes(r)[off..off + 8]);
        u64::from_le_bytes(w)
    }

    fn live(&self, r: &Rec, now: Timestamp) -> bool {
        is_live(decode_expiry(self.word(r, EXPIRES_OFFSET)), now)
    }

    fn key(&self, r: &Rec) -> &[u8] {
        let b = self.bytes(r);
        let klen = b[record::LENS_OFFSET + 3] as usize;
        &b[RECORD_HEADER_LEN..RECORD_HEADER_LEN + klen]
    }

    fn version(&self, r: &Rec) -> u64 {
        self.word(r, 0)
    }

    fn push(&mut self, tag: u32, stamp: u32, bytes: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        self.list.push(Rec {
            tag,
            stamp,
            start,
            len: bytes.len(),
        });
    }

    fn total(&self) -> usize {
        self.list.iter().map(|r| r.len).sum()
    }
}

/// A page whose write lock the caller holds.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    page: Page<'a>,
    hasher: &'a KeyHasher,
    fail: Armed,
    ticket: Option<WriteTicket>,
}

/// A reader refreshes a stamp when it is older than this many writes to the page.
pub(crate) const STALE_TICKS: u32 = 16;

impl<'a> Locked<'a> {
    pub(crate) fn new(page: Page<'a>, hasher: &'a KeyHasher, fail: Armed) -> Self {
        Locked {
            page,
            hasher,
            fail,
            ticket: None,
        }
    }

    fn get(&self, off: usize) -> u32 {
        // Relaxed: we hold the write lock; only lock holders store header fields.
        self.page.field(off).load(Ordering::Relaxed)
    }

    fn set(&self, off: usize, v: u32) {
        // Relaxed: published by the seqlock's `write_end`.
        self.page.field(off).store(v, Ordering::Relaxed);
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
    pub(crate) fn find(&self, key: &[u8], tag: u32) -> Result<Option<Found>, Damage> {
        match probe(&self.page, key, tag) {
            Probe::Found(f) => Ok(Some(f)),
            Probe::Missing => Ok(None),
            Probe::Bad(e) => Err(Damage(e)),
        }
    }

    /// The value of a found record.
    pub(crate) fn value(&self, f: &Found) -> Result<Vec<u8>, Damage> {
        let mut v = Vec::with_capacity(f.hdr.vlen);
        if self
            .page
            .region()
            .read_append(f.off + f.hdr.value_offset(), f.hdr.vlen, &mut v)
        {
            Ok(v)
        } else {
            Err(Damage("value beyond the page end"))
        }
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
        let n = self.page.geo().nslots();
        self.begin();
        let mut hole = f.slot;
        let mut j = hole;
        let mut moved = false;
        for _ in 0..n {
            j = (j + 1) % n;
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
        let count = self.get(COUNT_OFFSET).saturating_sub(1);
        self.set(COUNT_OFFSET, count);
        if count == 0 {
            self.set(DATA_LO_OFFSET, self.page.geo().page_size);
            self.set(DEAD_OFFSET, 0);
        } else {
            let dead = self.get(DEAD_OFFSET) as usize + f.hdr.size();
            self.set(DEAD_OFFSET, dead as u32);
        }
        self.set(TICK_OFFSET, self.get(TICK_OFFSET).wrapping_add(1));
        self.end();
    }

    /// Writes a record for `key`, replacing `existing`, making room as `policy` allows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &mut self,
        key: &[u8],
        kh: KeyHash,
        value: &[u8],
        expires: u64,
        version: u64,
        existing: Option<&Found>,
        now: Timestamp,
        policy: EvictionPolicy,
    ) -> Result<Evicted, NoRoom> {
        let geo = *self.page.geo();
        let size = record_size(key.len(), value.len());
        let data_lo = self.get(DATA_LO_OFFSET) as usize;
        let count = self.get(COUNT_OFFSET) as usize;
        let gap = data_lo.saturating_sub(geo.data_start());
        let tag = kh.tag;
        let check =
            self.hasher
                .record_check(kh.raw, version, record::lens(key.len(), value.len()), value);
        let bytes = record::encode(version, expires, key, value, check);
        let tick = self.get(TICK_OFFSET).wrapping_add(1);

        // Fast path: append into the free gap and link.
        if size <= gap && (existing.is_some() || count < geo.max_count()) {
            let slot = match existing {
                Some(f) => Some(f.slot),
                None => self.empty_slot(tag),
            };
            if let Some(slot) = slot {
                let off = data_lo - size;
                self.begin();
                self.fail.hit(Failpoint::PutAfterBegin);
                self.page.region().write_bytes(off, &bytes);
                self.fail.hit(Failpoint::PutAfterRecord);
                self.page.stamp(slot).store(tick, Ordering::Relaxed);
                // One atomic store switches readers from the old record to the new one.
                self.page
                    .slot(slot)
                    .store(slot_value(off as u32, tag), Ordering::Relaxed);
                self.fail.hit(Failpoint::PutAfterLink);
                self.set(DATA_LO_OFFSET, off as u32);
                match existing {
                    Some(f) => {
                        let dead = self.get(DEAD_OFFSET) as usize + f.hdr.size();
                        self.set(DEAD_OFFSET, dead as u32);
                    }
                    None => self.set(COUNT_OFFSET, count as u32 + 1),
                }
                self.set(TICK_OFFSET, tick);
                self.end();
                return Ok(Evicted::default());
            }
        }

        // Slow path: compact, and evict if compaction is not enough.
        let mut recs = self.collect(false);
        let list = std::mem::take(&mut recs.list);
        recs.list = list.into_iter().filter(|r| recs.key(r) != key).collect();
        let (data_len, max_count) = (geo.data_len(), geo.max_count());
        let fits = |total: usize, n: usize, slack: usize, slot_slack: usize| {
            total + size + slack <= data_len && n + slot_slack < max_count
        };
        let mut ev = Evicted::default();
        if !fits(recs.total(), recs.list.len(), 0, 0) {
            let before = recs.list.len();
            let list = std::mem::take(&mut recs.list);
            recs.list = list.into_iter().filter(|r| recs.live(r, now)).collect();
            ev.expired = (before - recs.list.len()) as u64;
            if !fits(recs.total(), recs.list.len(), 0, 0) {
                if policy == EvictionPolicy::NeverEvictLive {
                    return Err(NoRoom);
                }
                // Evict least recently used first (largest age in page ticks), with a
                // little slack (1/64 of the page) so that a full page is not rebuilt on
                // every write.
                recs.list
                    .sort_by_key(|r| std::cmp::Reverse(tick.wrapping_sub(r.stamp)));
                let (slack, slot_slack) = (data_len / 64, max_count / 64);
                let mut total = recs.total();
                let mut n = recs.list.len();
                let mut drop = 0;
                while drop < recs.list.len() && !fits(total, n, slack, slot_slack) {
                    total -= recs.list[drop].len;
                    n -= 1;
                    drop += 1;
                }
                if !fits(total, n, 0, 0) {
                    return Err(NoRoom);
                }
                ev.live = drop as u64;
                recs.list.drain(..drop);
            }
        }
        recs.push(tag, tick, &bytes);
        self.rebuild(&recs, tick);
        Ok(ev)
    }

    /// The first empty slot on `tag`'s probe chain.
    fn empty_slot(&self, tag: u32) -> Option<usize> {
        let n = self.page.geo().nslots();
        let h = home(tag, n);
        (0..n)
            .map(|s| (h + s) % n)
            .find(|&i| self.page.slot(i).load(Ordering::Relaxed) == 0)
    }

    /// Removes every expired record; returns how many.
    pub(crate) fn purge(&mut self, now: Timestamp) -> u64 {
        let mut recs = self.collect(false);
        let before = recs.list.len();
        let list = std::mem::take(&mut recs.list);
        recs.list = list.into_iter().filter(|r| recs.live(r, now)).collect();
        let n = (before - recs.list.len()) as u64;
        if n > 0 {
            let tick = self.get(TICK_OFFSET).wrapping_add(1);
            self.rebuild(&recs, tick);
        }
        n
    }

    /// Copies out every linked record that passes the bounds checks (and, when `strict`,
    /// its checksum, key hash and page, keeping the newest version of each key).
    fn collect(&self, strict: bool) -> Recs {
        let n = self.page.geo().nslots();
        let mut out = Recs {
            buf: Vec::with_capacity(self.page.geo().page_size as usize / 2),
            list: Vec::new(),
        };
        for i in 0..n {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            let (off, tag) = slot_parts(v);
            if off == 0 {
                continue;
            }
            let Ok(hdr) = record_header(&self.page, off as usize) else {
                continue;
            };
            let start = out.buf.len();
            if !self
                .page
                .region()
                .read_append(off as usize, hdr.size(), &mut out.buf)
            {
                continue;
            }
            let rec = Rec {
                tag,
                stamp: self.page.stamp(i).load(Ordering::Relaxed),
                start,
                len: hdr.size(),
            };
            if strict {
                let key = out.key(&rec);
                let kh = self.hasher.hash(key);
                let ok = record::parse(out.bytes(&rec)).is_some_and(|(h, _, value)| {
                    self.hasher.record_check(kh.raw, h.version, h.lens(), value) == h.check
                }) && kh.tag == tag
                    && kh.page == self.page.index();
                if !ok {
                    out.buf.truncate(start);
                    continue;
                }
                if let Some(j) = out.list.iter().position(|r| out.key(r) == key) {
                    if out.version(&rec) > out.version(&out.list[j]) {
                        out.list[j] = rec;
                    }
                    continue;
                }
            }
            out.list.push(rec);
        }
        // A page holds at most max_count records; keep the newest writes if a damaged
        // table linked more.
        let max = self.page.geo().max_count();
        if out.list.len() > max {
            let mut list = std::mem::take(&mut out.list);
            list.sort_by_key(|r| std::cmp::Reverse(out.version(r)));
            list.truncate(max);
            out.list = list;
        }
        out
    }

    /// Repairs the page: keeps the records that check out, rebuilds everything else.
    pub(crate) fn salvage(&mut self) {
        let recs = self.collect(true);
        let tick = self.get(TICK_OFFSET).wrapping_add(1);
        self.rebuild(&recs, tick);
    }

    /// Rewrites the page from `recs`: header, slot table, stamps and a compact data area.
    fn rebuild(&mut self, recs: &Recs, tick: u32) {
        let geo = *self.page.geo();
        let n = geo.nslots();
        let ps = geo.page_size as usize;
        let ds = geo.data_start();
        let mut slots = vec![0u64; n];
        let mut stamps = vec![0u32; n];
        let mut data = vec![0u8; geo.data_len()];
        let mut lo = ps;
        let mut count = 0u32;
        for r in &recs.list {
            let len = r.len;
            if lo - ds < len {
                continue;
            }
            let h = home(r.tag, n);
            let Some(i) = (0..n).map(|s| (h + s) % n).find(|&i| slots[i] == 0) else {
                continue;
            };
            lo -= len;
            data[lo - ds..lo - ds + len].copy_from_slice(recs.bytes(r));
            slots[i] = slot_value(lo as u32, r.tag);
            stamps[i] = r.stamp;
            count += 1;
        }
        self.begin();
        let region = *self.page.region();
        let mid = lo + (((ps - lo) / 2) & !7);
        region.write_bytes(lo, &data[lo - ds..mid - ds]);
        self.fail.hit(Failpoint::RebuildMidData);
        region.write_bytes(mid, &data[mid - ds..]);
        for (i, (&s, &st)) in slots.iter().zip(&stamps).enumerate() {
            self.page.slot(i).store(s, Ordering::Relaxed);
            self.page.stamp(i).store(st, Ordering::Relaxed);
        }
        self.set(MAGIC_OFFSET, PAGE_MAGIC);
        self.set(INDEX_OFFSET, self.page.index());
        self.set(COUNT_OFFSET, count);
        self.set(DATA_LO_OFFSET, lo as u32);
        self.set(DEAD_OFFSET, 0);
        self.set(TICK_OFFSET, tick);
        self.end();
    }

    /// Makes the page empty (initialisation).
    pub(crate) fn wipe(&mut self) {
        self.rebuild(&Recs::default(), 0);
    }
}
