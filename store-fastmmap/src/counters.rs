//! Per-process statistics. Nothing a read counts is written to the shared file.
//!
//! Read counters cost a read no locked instruction: each live thread of the process holds
//! one of [`THREAD_SLOTS`] slots exclusively (claimed at its first read, given back when it
//! exits), so it is the only writer of its shard in every store and counts with a plain
//! load and store. A `lock`-prefixed add would be a full barrier on x86 in the middle of
//! every `get`. Threads beyond the slots, or reading during their own exit, share one
//! extra shard and count with atomic adds. The counts are exact either way.
//!
//! A forked child inherits the slot bitmap: the slots of its parent's other threads
//! (which do not exist in the child) stay taken there, so a child of a parent with 64 or
//! more reading threads counts every read with an atomic add. Pre-forking servers fork
//! from a parent that does not read, so this was left (the atfork handler would have to
//! find the forking thread's slot, and reading a thread-local there is not
//! async-signal-safe).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::os::store_file::LockWord;

/// Threads that count without atomic read-modify-writes.
const THREAD_SLOTS: usize = 64;
/// The shard of threads without a slot.
const SHARED: usize = THREAD_SLOTS;

#[derive(Debug, Default)]
#[repr(align(64))]
struct ReadShard {
    /// Reads that missed (reads = hits + misses, so a read counts once).
    misses: AtomicU64,
    hits: AtomicU64,
}

/// The counters of one store in one process.
#[derive(Debug)]
pub(crate) struct Counters {
    /// One shard per thread slot, then the shared one.
    read_shards: Box<[ReadShard]>,
    pub(crate) purged: AtomicU64,
    pub(crate) recovered: Repairs,
    /// Page locks this process took over from a holder that died (the futex kind's
    /// `EOWNERDEAD`).
    pub(crate) owner_deaths: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            read_shards: (0..=THREAD_SLOTS).map(|_| ReadShard::default()).collect(),
            purged: AtomicU64::new(0),
            recovered: Repairs::default(),
            owner_deaths: AtomicU64::new(0),
        }
    }
}

/// A page's in-process lock and the counters its holder updates, on their own cache
/// line: the holder owns them, so counting a write costs no atomic read-modify-write.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct PaddedLock {
    /// The in-process page lock's word (`page_lock::PageLock`).
    pub(crate) lock: AtomicU32,
    pub(crate) writes: AtomicU64,
    pub(crate) evicted_live: AtomicU64,
    pub(crate) evicted_expired: AtomicU64,
}

impl LockWord for PaddedLock {
    fn lock_word(&self) -> &AtomicU32 {
        &self.lock
    }
}

impl PaddedLock {
    /// Adds to the page's counters; the caller holds the page's in-process lock.
    pub(crate) fn count(&self, writes: u64, live: u64, expired: u64) {
        for (c, n) in [
            (&self.writes, writes),
            (&self.evicted_live, live),
            (&self.evicted_expired, expired),
        ] {
            if n > 0 {
                // Relaxed load + store: only the lock holder writes these.
                c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
            }
        }
    }
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

/// Which slots are held by live threads, one bit each.
static CLAIMED: AtomicU64 = AtomicU64::new(0);
const _: () = assert!(THREAD_SLOTS == 64, "one bit of CLAIMED per slot");

/// This thread's slot, held until the thread exits.
struct Slot(Cell<Option<usize>>);

impl Slot {
    /// Claims the lowest free slot of `claimed`, if any.
    fn claim(claimed: &AtomicU64) -> Option<usize> {
        let mut cur = claimed.load(Ordering::Relaxed);
        loop {
            let i = (!cur).trailing_zeros() as usize;
            if i >= THREAD_SLOTS {
                return None;
            }
            // Acquire: the previous holder's last counts (before its release)
            // happen before this thread's first load of them.
            match claimed.compare_exchange_weak(
                cur,
                cur | 1 << i,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(i),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives slot `i` of `claimed` back.
    fn release(claimed: &AtomicU64, i: usize) {
        // Release: see `claim`.
        claimed.fetch_and(!(1 << i), Ordering::Release);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(i) = self.0.get().filter(|&i| i < THREAD_SLOTS) {
            Slot::release(&CLAIMED, i);
        }
    }
}

thread_local! {
    /// `None` until the thread's first read; then its slot, or `Some(SHARED)`.
    static SLOT: Slot = const { Slot(Cell::new(None)) };
}

/// This thread's shard index: its own slot, or [`SHARED`].
#[inline]
fn shard_index() -> usize {
    SLOT.try_with(|s| match s.0.get() {
        Some(i) => i,
        None => {
            let i = Slot::claim(&CLAIMED);
            s.0.set(Some(i.unwrap_or(SHARED)));
            i.unwrap_or(SHARED)
        }
    })
    // The thread is exiting and its slot is gone.
    .unwrap_or(SHARED)
}

impl Counters {
    /// Counts one read and whether it hit.
    #[inline]
    pub(crate) fn read(&self, hit: bool) {
        let i = shard_index();
        // In bounds: a slot index or `SHARED`, and there are `SHARED + 1` shards.
        let s = &self.read_shards[i];
        let c = if hit { &s.hits } else { &s.misses };
        if i == SHARED {
            c.fetch_add(1, Ordering::Relaxed);
        } else {
            // This thread is the shard's only writer (it holds the slot), so a load and a
            // store lose nothing. Relaxed: statistics, no ordering with anything else.
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// More threads than slots, some exiting and being replaced while others read, all
    /// counting into one store: nothing is lost.
    #[test]
    fn counts_are_exact_with_more_threads_than_slots() {
        let c = Counters::default();
        let per_thread = 2_000u64;
        std::thread::scope(|s| {
            for round in 0..3 {
                let handles: Vec<_> = (0..THREAD_SLOTS + 16)
                    .map(|t| {
                        let c = &c;
                        s.spawn(move || {
                            for i in 0..per_thread {
                                c.read(!(i + t as u64 + round).is_multiple_of(3));
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            }
        });
        let threads = 3 * (THREAD_SLOTS as u64 + 16);
        let (reads, hits) = c.reads_hits();
        assert_eq!(reads, threads * per_thread);
        let want_hits: u64 = (0..3u64)
            .flat_map(|round| {
                (0..THREAD_SLOTS as u64 + 16).map(move |t| {
                    (0..per_thread)
                        .filter(|i| !(i + t + round).is_multiple_of(3))
                        .count() as u64
                })
            })
            .sum();
        assert_eq!(hits, want_hits);
    }

    #[test]
    fn slots_are_claimed_lowest_first_and_given_back() {
        let bits = AtomicU64::new(0);
        for want in 0..THREAD_SLOTS {
            assert_eq!(Slot::claim(&bits), Some(want));
        }
        assert_eq!(Slot::claim(&bits), None, "all slots held");
        Slot::release(&bits, 17);
        assert_eq!(Slot::claim(&bits), Some(17));
        assert_eq!(Slot::claim(&bits), None);
    }
}
