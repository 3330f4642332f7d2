//! Writes to a locked page: the fast paths of [`Locked::write`] (a same-size overwrite in
//! place, an append into the free gap), the one append-and-link every path that adds a
//! record uses, deletion and `touch`. The slow path, which makes room, is `room.rs`.

use std::sync::atomic::Ordering;

use store_api::{EvictionPolicy, Timestamp};

use super::room::{Evicted, NoRoom};
use super::{Damage, Locked, crash_order};
use crate::failpoint::Failpoint;
use crate::format::checksum::{self, Fields};
use crate::format::hash::KeyHash;
use crate::format::page::slot_value;
use crate::format::record::{self, header_words, record_size};
use crate::probe::Found;

/// One record to write for a key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteRequest<'a> {
    /// The key's bytes.
    pub(crate) key: &'a [u8],
    /// The key's hash (its page is the locked one).
    pub(crate) kh: KeyHash,
    /// The new value.
    pub(crate) value: &'a [u8],
    /// The encoded expiry (`record::encode_expiry`).
    pub(crate) expires: u64,
    /// The new version (`Locked::next_version`).
    pub(crate) version: u64,
    /// The key's record it replaces, as found under this lock.
    pub(crate) existing: Option<&'a Found>,
    /// A record of another key on this page to unlink in the same write section (the
    /// source of a same-page `rotate`): readers see the move as one step, and its room
    /// counts as free, so the move never evicts to make room for itself.
    pub(crate) moved_from: Option<&'a Found>,
}

/// A request with what every path needs computed once.
pub(super) struct Prepared<'a> {
    pub(super) req: &'a WriteRequest<'a>,
    /// Bytes the record occupies.
    pub(super) size: usize,
    fields: Fields,
    /// A long value's checksum, computed before the write section.
    precomputed: Option<u32>,
}

impl<'a> Locked<'a> {
    /// Writes `req`'s record, making room as `policy` allows (`now` reads the clock, only
    /// when a write has to choose what goes).
    #[inline]
    pub(crate) fn write(
        &mut self,
        req: &WriteRequest<'_>,
        now: &mut dyn FnMut() -> Timestamp,
        policy: EvictionPolicy,
    ) -> Result<Evicted, NoRoom> {
        debug_assert!(
            req.moved_from
                .is_none_or(|m| req.existing.is_none_or(|e| e.off != m.off)),
            "the moved record is not the key's own"
        );
        let geo = *self.page.geo();
        let fields = Fields {
            keyhash: req.kh.raw,
            version: req.version,
            lens: record::lens(req.key.len(), req.value.len()),
        };
        let rec = Prepared {
            req,
            size: record_size(req.key.len(), req.value.len()),
            fields,
            // A long value's checksum is computed beforehand; a short one's CRC while the
            // value is stored (one pass over it).
            precomputed: checksum::before_store(self.hasher, fields, req.value),
        };
        let data_lo = self.page.data_lo() as usize;
        let count = self.page.count() as usize;
        let gap = data_lo.saturating_sub(geo.data_start());
        let tick = self.page.tick().wrapping_add(1);

        // Fastest path: a replacement of the same size is written over the old record
        // (its cache lines are warm from the lookup). Readers retry while the counter is
        // odd; a writer killed mid-copy leaves a record whose checksum fails (unless its
        // bytes are still exactly the old record's, which then stands), which repair
        // drops: the key then has its old value or none, never a mixed one.
        if let Some(f) = req.existing
            && f.hdr.size() == rec.size
        {
            return self.section(|l| {
                l.fail.hit(Failpoint::PutAfterBegin);
                if !l.store_record(&rec, f.off, false) {
                    return Err(NoRoom::default());
                }
                l.page.stamp(f.slot).store(tick, Ordering::Relaxed);
                if let Some(m) = req.moved_from {
                    l.remove_in_section(m);
                }
                l.page.set_tick(tick);
                Ok(Evicted::default())
            });
        }

        // Fast path: append into the free gap and link. (Slot positions do not move
        // before `moved_from` is unlinked last, so its slot index stays valid.)
        if rec.size <= gap
            && (req.existing.is_some() || req.moved_from.is_some() || count < geo.max_count())
        {
            let slot = match req.existing {
                Some(f) => Some(f.slot),
                None => self.empty_slot(req.kh.tag),
            };
            if let Some(slot) = slot {
                let off = data_lo - rec.size;
                return self.section(|l| {
                    l.fail.hit(Failpoint::PutAfterBegin);
                    if !l.append_and_link(&rec, off, slot, tick) {
                        return Err(NoRoom::default());
                    }
                    l.page.set_data_lo(off);
                    match req.existing {
                        Some(f) => l.page.set_dead(l.page.dead() as usize + f.hdr.size()),
                        None => l.page.set_count(count + 1),
                    }
                    if let Some(m) = req.moved_from {
                        l.remove_in_section(m);
                    }
                    l.page.set_tick(tick);
                    Ok(Evicted::default())
                });
            }
        }

        self.write_making_room(&rec, tick, now, policy)
    }

    /// Writes the record at `off` and links it from `slot` (stamped `tick`) with one
    /// atomic store, after the record is whole: readers switch from the key's old record
    /// (or none) to the new one in one step. False, with nothing linked, if the record
    /// does not fit in the page. The caller is inside a write section.
    #[inline]
    pub(super) fn append_and_link(
        &mut self,
        rec: &Prepared<'_>,
        off: usize,
        slot: usize,
        tick: u32,
    ) -> bool {
        if !self.store_record(rec, off, true) {
            return false;
        }
        self.fail.hit(Failpoint::PutAfterRecord);
        self.page.stamp(slot).store(tick, Ordering::Relaxed);
        crash_order();
        self.page
            .slot(slot)
            .store(slot_value(off as u32, rec.req.kh.tag), Ordering::Relaxed);
        self.fail.hit(Failpoint::PutAfterLink);
        true
    }

    /// Stores the record at `off`, straight into the page (no intermediate buffer): the
    /// key (unless `with_key` is false: the record being overwritten already holds it, the
    /// probe compared its bytes, padding included), the value, then the header with the
    /// checksum, its checksum word last. A writer stopped before the header leaves a
    /// record no slot links yet, or the key's old header over new value bytes: a checksum
    /// that fails unless those bytes are exactly the old ones. False, before anything is
    /// written, if the record does not fit in the page (which cannot happen on a page
    /// whose header and records passed their checks: they put `off` inside the data
    /// area). Every store below then lies inside that record.
    #[inline]
    fn store_record(&self, rec: &Prepared<'_>, off: usize, with_key: bool) -> bool {
        let req = rec.req;
        let Some(r) = self.page.region().sub(off, rec.size) else {
            return false;
        };
        if with_key && !r.write_bytes(record::RECORD_HEADER_LEN, req.key) {
            return false;
        }
        let at = record::RECORD_HEADER_LEN + crate::format::align8(req.key.len());
        let fail = self.fail;
        let check = checksum::store_value(
            &r,
            at,
            req.value,
            self.hasher.check_key(),
            rec.fields,
            rec.precomputed,
            || fail.hit(Failpoint::MidValue),
        );
        self.fail.hit(Failpoint::MidRecord);
        let Some(check) = check else {
            return false;
        };
        let words = header_words(req.version, req.expires, rec.fields.lens, check);
        crash_order();
        record::store_header(&r, words, || {
            self.fail.hit(Failpoint::MidHeader);
            crash_order();
        })
    }

    /// Changes a found record's expiry in place (one atomic store: `expires` is outside
    /// the checksum).
    pub(crate) fn set_expires(&mut self, f: &Found, expires: u64) -> Result<(), Damage> {
        let w = record::expires_word(self.page.region(), f.off)
            .ok_or(Damage("record beyond the page end"))?;
        self.section(|l| {
            w.store(expires, Ordering::Relaxed);
            let tick = l.page.tick().wrapping_add(1);
            l.page.set_tick(tick);
            l.page.stamp(f.slot).store(tick, Ordering::Relaxed);
        });
        Ok(())
    }

    /// Unlinks a found record (backward-shift deletion: no tombstones).
    pub(crate) fn remove(&mut self, f: &Found) {
        let sound = self.section(|l| {
            let sound = l.remove_in_section(f);
            l.page.set_tick(l.page.tick().wrapping_add(1));
            sound
        });
        if !sound {
            self.salvage();
        }
    }

    /// Unlinks a found record and accounts for it; the caller is inside a write section.
    /// When the page becomes empty its data area is reset, but only if the slot table is
    /// really empty (a damaged `count` must not let new records overwrite linked ones):
    /// false, with the page left for the caller to repair, if it is not.
    pub(super) fn remove_in_section(&mut self, f: &Found) -> bool {
        self.unlink(f.slot);
        let count = self.page.count().saturating_sub(1);
        self.page.set_count(count as usize);
        if count == 0 {
            let n = self.page.geo().nslots();
            if (0..n).any(|i| self.page.slot(i).load(Ordering::Relaxed) != 0) {
                return false;
            }
            self.empty_data_area();
        } else {
            self.page.set_dead(self.page.dead() as usize + f.hdr.size());
        }
        true
    }

    /// Marks the data area empty (no record is linked).
    pub(super) fn empty_data_area(&self) {
        self.page.set_data_lo(self.page.geo().page_size as usize);
        self.page.set_dead(0);
    }
}
