//! Per-process statistics. Read counters are sharded by thread so that readers on
//! different cores do not fight over one cache line; nothing a read counts is written
//! to the shared file.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const SHARDS: usize = 16;

#[derive(Debug, Default)]
#[repr(align(64))]
struct ReadShard {
    /// Reads that missed (reads = hits + misses, so a read costs one atomic add).
    misses: AtomicU64,
    hits: AtomicU64,
}

/// The counters of one store in one process.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    read_shards: [ReadShard; SHARDS],
    pub(crate) purged: AtomicU64,
    pub(crate) recovered: Repairs,
}

/// What this process's page repairs did.
#[derive(Debug, Default)]
pub(crate) struct Repairs {
    /// Pages repaired (`Stats::recovered`).
    pub(crate) pages: AtomicU64,
    /// Records repairs unlinked other than older copies of a key: records (or slot
    /// values) that failed their bounds, checksum or hash checks, and records beyond
    /// the page's slot limit. Each is an entry lost.
    pub(crate) lost: AtomicU64,
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl Counters {
    /// Counts one read and whether it hit.
    #[inline]
    pub(crate) fn read(&self, hit: bool) {
        let s = &self.read_shards[shard_index()];
        // Relaxed: statistics, no ordering with anything else.
        if hit {
            s.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            s.misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds `n` to `c`.
    #[inline]
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Total reads and hits.
    pub(crate) fn reads_hits(&self) -> (u64, u64) {
        self.read_shards.iter().fold((0, 0), |(r, h), s| {
            let hits = s.hits.load(Ordering::Relaxed);
            (r + hits + s.misses.load(Ordering::Relaxed), h + hits)
        })
    }
}
