//! Making room for a write that does not fit in the free gap: the slow path of
//! [`Locked::write`]. Victims are chosen (expired records, then the least recently used
//! live ones as the eviction policy allows), unlinked, the page compacted, and the record
//! appended with the same append-and-link as the fast path.

use std::collections::HashMap;

use store_api::{EvictionPolicy, Timestamp};

use super::write::Prepared;
use super::{Linked, Locked, crash_order};

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

/// What was decided to go, and what stays.
struct Plan {
    keep: Vec<Linked>,
    own: Vec<Linked>,
    own_existing: Option<Linked>,
    own_moved: Option<Linked>,
    victims: Vec<Linked>,
    evicted: Evicted,
}

impl Locked<'_> {
    /// The slow path of [`Self::write`], out of line so that the common ones stay small:
    /// makes room (the key's old record, then expired records, then least recently used
    /// ones), compacts, appends the record.
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
    pub(super) fn write_making_room(
        &mut self,
        rec: &Prepared<'_>,
        tick: u32,
        now: &mut dyn FnMut() -> Timestamp,
        policy: EvictionPolicy,
    ) -> Result<Evicted, NoRoom> {
        let geo = *self.page.geo();
        let plan = self.plan_room(rec, tick, now, policy)?;
        let Plan {
            keep,
            own,
            own_existing,
            own_moved,
            victims,
            evicted,
        } = plan;
        let size = rec.size;
        let total = |v: &[Linked]| v.iter().map(|r| r.size).sum::<usize>();
        // Whether the own records fit beside the new one (slots: the new record takes
        // the old one's slot, or a new one while a rotate's source is still linked).
        let linked_own = own.len() + usize::from(own_existing.is_none());
        let keep_own = total(&keep) + total(&own) + size <= geo.data_len()
            && keep.len() + linked_own <= geo.max_count();
        let linked = self.section(|l| {
            let values: Vec<u64> = victims.iter().map(|v| v.value).collect();
            l.unlink_values(&values);
            // Slot positions do not change while records move: find them once.
            let pos = l.slot_positions();
            let hi = if keep_own {
                let mut all = keep.clone();
                all.extend(own.iter().copied());
                l.compact(&all, &pos)
            } else {
                l.compact(&keep, &pos)
            };
            // Now there is room: append, then switch readers to it with one store, in
            // the same write section, so that readers never see the key's old record gone
            // and its new one not yet there.
            let slot = match own_existing {
                Some(r) => pos.get(&r.value).copied(),
                None => l.empty_slot(rec.req.kh.tag),
            };
            let off = hi.wrapping_sub(size);
            let room = size <= hi.saturating_sub(geo.data_start());
            // The compaction's last slot switch before the new record's bytes.
            crash_order();
            let linked = match slot.filter(|_| room) {
                Some(slot) => l.append_and_link(rec, off, slot, tick),
                None => false,
            };
            if linked {
                if let Some(m) = own_moved
                    && let Some(&i) = pos.get(&m.value)
                {
                    crash_order();
                    l.unlink(i);
                }
                l.page.set_count(keep.len() + 1);
                l.page.set_data_lo(off);
                // Compacted own records are left behind as dead bytes.
                l.page.set_dead(if keep_own { total(&own) } else { 0 });
            }
            l.page.set_tick(tick);
            linked
        });
        if linked {
            return Ok(evicted);
        }
        // Unreachable on a sound page: the plan guaranteed the room and a free slot. The
        // victims are gone (reported); the own records may have been written over, so
        // the page is repaired, which drops (and counts) what no longer checks out.
        self.salvage();
        Err(NoRoom { evicted })
    }

    /// Chooses what goes to make room for `rec`: nothing if the page can hold it beside
    /// every other record, else the expired records, then (under LRU) the least recently
    /// used live ones with a little slack (1/64 of the page) so that a full page is not
    /// compacted on every write. `NoRoom` (nothing changed) if that is not enough or the
    /// policy forbids evicting live entries.
    fn plan_room(
        &mut self,
        rec: &Prepared<'_>,
        tick: u32,
        now: &mut dyn FnMut() -> Timestamp,
        policy: EvictionPolicy,
    ) -> Result<Plan, NoRoom> {
        let geo = *self.page.geo();
        let recs = match self.scan() {
            Ok(r) => r,
            Err(_) => {
                self.salvage();
                self.scan().unwrap_or_default()
            }
        };
        let req = rec.req;
        // Identified by offset: a repair above may have moved slots, never records.
        let own_offs = [req.existing, req.moved_from].map(|f| f.map(|f| f.off));
        let (mut keep, own): (Vec<Linked>, Vec<Linked>) = recs
            .into_iter()
            .partition(|r| !own_offs.contains(&Some(r.off)));
        let own_existing = own.iter().find(|r| Some(r.off) == own_offs[0]).copied();
        let own_moved = own.iter().find(|r| Some(r.off) == own_offs[1]).copied();
        let (data_len, max_count, size) = (geo.data_len(), geo.max_count(), rec.size);
        let total = |v: &[Linked]| v.iter().map(|r| r.size).sum::<usize>();
        let fits = |total: usize, n: usize, slack: usize, slot_slack: usize| {
            total + size + slack <= data_len && n + slot_slack < max_count
        };
        let mut victims: Vec<Linked> = Vec::new();
        let mut evicted = Evicted::default();
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
                // Least recently used first (largest age in page ticks).
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
            evicted.expired = expired.len() as u64;
            evicted.live = out_live.len() as u64;
            victims.extend(expired);
            victims.extend(out_live);
        }
        Ok(Plan {
            keep,
            own,
            own_existing,
            own_moved,
            victims,
            evicted,
        })
    }

    /// Slot index of every linked slot value (values are unique on a sound page).
    pub(super) fn slot_positions(&self) -> HashMap<u64, usize> {
        let n = self.page.geo().nslots();
        let mut pos = HashMap::with_capacity(n);
        for i in 0..n {
            let v = self.page.slot(i).load(std::sync::atomic::Ordering::Relaxed);
            if v != 0 {
                pos.insert(v, i);
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{GEO, Heap, get, put, repairs};
    use super::*;
    use crate::format::record::record_size;

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
            assert_eq!(l.page.dead(), 0, "nothing left behind");
            assert!(l.header_damage().is_none());
            assert_eq!(repairs(l), 0);
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
            let gap = l.page.data_lo() as usize - GEO.data_start();
            let value = vec![5u8; gap + 72];
            let old = record_size(1, 1000);
            assert!(2 * old + record_size(1, value.len()) <= GEO.data_len());
            assert_eq!(put(l, b"c", &value), Evicted::default());
            assert_eq!(get(l, b"c").unwrap(), value);
            assert_eq!(get(l, b"b").unwrap(), vec![1u8; 1000]);
            assert_eq!(
                l.page.dead() as usize,
                old,
                "the old record was kept and moved"
            );
            assert!(l.header_damage().is_none());
        });
    }
}
