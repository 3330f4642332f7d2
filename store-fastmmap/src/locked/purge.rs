//! Purging a locked page: every expired record removed in one write section.

use std::sync::atomic::Ordering;

use store_api::{Timestamp, is_live};

use super::Locked;
use crate::format::page::slot_parts;
use crate::format::record::{self, decode_expiry};
use crate::probe::record_header;

/// How many slots ahead a purge pass prefetches record headers.
const PREFETCH_AHEAD: usize = 32;

impl Locked<'_> {
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
        self.section(|l| {
            for &(i, _) in scratch.iter() {
                l.page.slot(i).store(0, Ordering::Relaxed);
            }
            l.relink_all(start);
            let freed: usize = scratch.iter().map(|&(_, size)| size).sum();
            let count = linked - scratch.len();
            l.page.set_count(count);
            if count == 0 {
                l.empty_data_area();
            } else {
                l.page.set_dead(l.page.dead() as usize + freed);
            }
            l.page.set_tick(l.page.tick().wrapping_add(1));
        });
        scratch.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use store_api::{EvictionPolicy, Timestamp};

    use super::super::WriteRequest;
    use super::super::fixture::{Heap, get, key, put};
    use crate::format::record::encode_expiry;

    /// Expired records go, the rest stay reachable, and the header adds up; a page whose
    /// records all expired is reset.
    #[test]
    fn purge_removes_exactly_the_expired_records() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for i in 0..20 {
                let k = key(i);
                let kh = l.hasher.hash(&k);
                let version = l.next_version();
                // Even keys expire at 1 s, odd ones at 100 s.
                let at = Timestamp::from_millis(if i % 2 == 0 { 1_000 } else { 100_000 });
                let req = WriteRequest {
                    key: &k,
                    kh,
                    value: b"v",
                    expires: encode_expiry(Some(at)),
                    version,
                    existing: None,
                    moved_from: None,
                };
                l.write(&req, &mut || Timestamp::ZERO, EvictionPolicy::Lru)
                    .unwrap();
            }
            let mut scratch = Vec::new();
            assert_eq!(l.purge(Timestamp::from_millis(1_000), &mut scratch), 10);
            for i in 0..20 {
                assert_eq!(get(l, &key(i)).is_some(), i % 2 == 1, "key {i}");
            }
            assert_eq!(l.page.count(), 10);
            assert!(l.header_damage().is_none());
            assert_eq!(l.purge(Timestamp::from_millis(1_000), &mut scratch), 0);
            assert_eq!(l.purge(Timestamp::from_millis(100_000), &mut scratch), 10);
            assert_eq!(l.page.count(), 0);
            assert_eq!(l.page.data_lo(), l.page.geo().page_size, "reset");
            assert_eq!(l.page.dead(), 0);
            put(l, b"after", b"x");
            assert_eq!(get(l, b"after").as_deref(), Some(&b"x"[..]));
        });
    }
}
