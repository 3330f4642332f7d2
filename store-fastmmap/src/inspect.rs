//! What an operator's tool sees of a store file: the fill of each page and a check of
//! every page and record ([`FastMmapStore::verify`]).

use crate::FastMmapStore;

/// One page's fill, a snapshot taken without its lock (approximate while writers run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageFill {
    /// The page's index.
    pub index: u32,
    /// Records linked on the page, expired ones not yet reclaimed included.
    pub entries: u32,
    /// The most records the page may link (its slot limit).
    pub max_entries: u32,
    /// Bytes its records occupy.
    pub bytes_used: u64,
    /// Bytes its records may occupy (the data area: the page less its header, slots and
    /// stamps).
    pub capacity: u64,
    /// The page's write clock: advanced by every write to the page, wrapping at 2^32
    /// (the difference of two readings, `wrapping_sub`, is the writes between them).
    pub writes: u32,
}

impl PageFill {
    /// How full the page is, from 0 to 1: the larger of its bytes in use over its
    /// capacity and its entries over its slot limit (many small sessions fill the slots
    /// first). A page near 1 evicts (or refuses) on its next write that needs room.
    pub fn ratio(&self) -> f64 {
        let part = |n: f64, of: f64| if of > 0.0 { (n / of).min(1.0) } else { 0.0 };
        part(self.bytes_used as f64, self.capacity as f64)
            .max(part(f64::from(self.entries), f64::from(self.max_entries)))
    }
}

/// File-wide counters kept in the file's header ([`FastMmapStore::file_counters`]): what
/// every process did since the file was initialised, unlike `Stats`, which counts one
/// handle's calls. They wrap at 2^64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileCounters {
    /// Live entries evicted to make room.
    pub evicted_live: u64,
    /// Expired entries reclaimed to make room.
    pub evicted_expired: u64,
    /// Pages repaired (a writer died in them, or their bytes were damaged).
    pub repairs: u64,
    /// Records repairs dropped: entries that may have been live and are gone.
    pub lost_in_repair: u64,
}

/// What [`FastMmapStore::verify`] found on one damaged page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageProblem {
    /// The page's index.
    pub page: u32,
    /// What is wrong, in words.
    pub what: String,
    /// Whether it was repaired (with `repair`); its records that failed their checks are
    /// then gone, counted in [`VerifyReport::bad_records`].
    pub repaired: bool,
}

/// What [`FastMmapStore::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Pages checked.
    pub pages: u32,
    /// Records linked from the pages' slot tables.
    pub records: u64,
    /// Records that fail their bounds, checksum or key-hash checks.
    pub bad_records: u64,
    /// Older copies of a key linked beside the newest (left by a writer killed mid-delete).
    pub duplicates: u64,
    /// Every damaged page, in page order.
    pub problems: Vec<PageProblem>,
}

impl VerifyReport {
    /// Whether every page and record checked out.
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl FastMmapStore {
    /// The fill of every page (tools: which pages are near eviction), from snapshots of
    /// their headers taken without locks.
    pub fn page_fills(&self) -> Vec<PageFill> {
        let capacity = self.geo().data_len() as u64;
        let max_entries = u32::try_from(self.geo().max_count()).unwrap_or(u32::MAX);
        (0..self.num_pages())
            .map(|i| {
                let p = self.page(i);
                let size = u64::from(self.page_size());
                let used = size
                    .saturating_sub(u64::from(p.data_lo()))
                    .saturating_sub(u64::from(p.dead()));
                PageFill {
                    index: i,
                    entries: p.count(),
                    max_entries,
                    bytes_used: used.min(capacity),
                    capacity,
                    writes: p.tick(),
                }
            })
            .collect()
    }
}
