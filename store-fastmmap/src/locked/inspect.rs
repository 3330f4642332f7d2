//! Looking at a whole locked page for an operator: its live entries (a scan), a check of
//! every record that changes nothing (`verify`), and emptying it (`clear`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use store_api::{Key, ScanEntry, ScanOptions, Timestamp, is_live};

use super::{Damage, Locked};
use crate::format::page::slot_parts;
use crate::format::record::{self, decode_expiry, version_of};
use crate::probe::record_header;
use crate::seqlock::SeqLock;

/// What a check of one page found (nothing changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PageCheck {
    /// Records linked from the slot table.
    pub(crate) records: u64,
    /// Linked records that fail their bounds, checksum, key or key-hash checks.
    pub(crate) bad_records: u64,
    /// Older copies of a key linked beside its newest one.
    pub(crate) duplicates: u64,
    /// The first thing wrong with the page itself (header, an odd seqlock counter left by
    /// a writer that died, an unfinished journalled move), if any.
    pub(crate) page_damage: Option<&'static str>,
}

impl PageCheck {
    /// Whether anything is wrong.
    pub(crate) fn damaged(&self) -> bool {
        self.bad_records > 0 || self.duplicates > 0 || self.page_damage.is_some()
    }
}

impl Locked<'_> {
    /// As `checked_record`, with a key that is a valid [`Key`] (the engine writes no
    /// other).
    fn checked_entry(&self, v: u64) -> Option<(Key, record::RecordHeader, Vec<u8>)> {
        let (key, h, value) = self.checked_record(v)?;
        let key = Key::new(String::from_utf8(key).ok()?).ok()?;
        Some((key, h, value))
    }

    /// The live entries at `now` that `opts` selects; damage if a linked record does not
    /// check out (the caller repairs the page and asks again).
    pub(crate) fn live_entries(
        &self,
        opts: &ScanOptions,
        now: Timestamp,
    ) -> Result<Vec<ScanEntry>, Damage> {
        let mut out = Vec::new();
        for i in 0..self.page.geo().nslots() {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            let (key, h, value) = self
                .checked_entry(v)
                .ok_or(Damage("a record fails its checks"))?;
            let expires_at = decode_expiry(h.expires);
            if !is_live(expires_at, now) || !opts.matches(&key) {
                continue;
            }
            let len = value.len();
            let value = opts.values.then_some(value);
            out.push(ScanEntry::new(
                key,
                expires_at,
                version_of(h.version),
                len,
                value,
            ));
        }
        Ok(out)
    }

    /// Checks the page and every linked record, changing nothing (not even a page a
    /// writer died in: that is reported, and repaired by the next writer).
    pub(crate) fn check(&self) -> PageCheck {
        let mut c = PageCheck {
            page_damage: if SeqLock::new(self.page.seq()).is_odd() {
                Some("a writer died mid-write (odd seqlock counter)")
            } else if self.page.journal().slot != 0 {
                Some("an unfinished journalled move")
            } else {
                self.header_damage().map(|d| d.0)
            },
            ..PageCheck::default()
        };
        let mut keys = HashSet::new();
        for i in 0..self.page.geo().nslots() {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            c.records += 1;
            match self.checked_entry(v) {
                None => c.bad_records += 1,
                Some((key, _, _)) => {
                    if !keys.insert(key) {
                        c.duplicates += 1;
                    }
                }
            }
        }
        if c.page_damage.is_none() && c.records != u64::from(self.page.count()) {
            c.page_damage = Some("the header's count differs from the linked records");
        }
        c
    }

    /// Empties the page in one write section; returns how many entries were live at
    /// `now`.
    pub(crate) fn clear(&mut self, now: Timestamp) -> u64 {
        let mut live = 0;
        for i in 0..self.page.geo().nslots() {
            let v = self.page.slot(i).load(Ordering::Relaxed);
            let (off, _) = slot_parts(v);
            if off != 0
                && let Ok(h) = record_header(&self.page, off as usize)
                && is_live(decode_expiry(h.expires), now)
            {
                live += 1;
            }
        }
        self.wipe();
        live
    }
}

#[cfg(test)]
mod tests {
    use store_api::{ScanOptions, Timestamp};

    use super::super::fixture::{Heap, key, put};

    #[test]
    fn a_sound_page_checks_out_and_lists_its_entries() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            for i in 0..10 {
                put(l, &key(i), &[i as u8; 30]);
            }
            let c = l.check();
            assert!(!c.damaged(), "{c:?}");
            assert_eq!(c.records, 10);
            let all = l.live_entries(&ScanOptions::new(), Timestamp::ZERO).unwrap();
            assert_eq!(all.len(), 10);
            assert!(all.iter().all(|e| e.value.is_none() && e.value_len == 30));
            let some = l
                .live_entries(&ScanOptions::new().prefix("k1").with_values(), Timestamp::ZERO)
                .unwrap();
            assert_eq!(some.len(), 1, "only k1 starts with k1 among k0..k9");
            assert_eq!(some[0].value.as_deref(), Some(&[1u8; 30][..]));
            assert_eq!(l.clear(Timestamp::ZERO), 10);
            assert!(l.live_entries(&ScanOptions::new(), Timestamp::ZERO).unwrap().is_empty());
            assert!(!l.check().damaged());
        });
    }

    #[test]
    fn a_damaged_record_is_reported_and_nothing_changes() {
        let mut h = Heap::new();
        h.with(|l| {
            l.wipe();
            put(l, &key(1), b"value one");
            put(l, &key(2), b"value two");
            let kh = l.hasher.hash(&key(1));
            let f = l.find(&key(1), kh.tag).unwrap().unwrap();
            // Flip a byte of the value: its checksum fails.
            let at = f.off + f.hdr.value_offset();
            let w = l.page.region().u64_at(at).unwrap();
            let before = w.load(std::sync::atomic::Ordering::Relaxed);
            w.store(before ^ 0xff, std::sync::atomic::Ordering::Relaxed);
            let c = l.check();
            assert_eq!((c.records, c.bad_records), (2, 1), "{c:?}");
            assert!(c.damaged());
            assert_eq!(w.load(std::sync::atomic::Ordering::Relaxed), before ^ 0xff, "unchanged");
            assert!(l.live_entries(&ScanOptions::new(), Timestamp::ZERO).is_err());
        });
    }
}
