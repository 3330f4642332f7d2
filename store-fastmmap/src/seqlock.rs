//! The per-page sequence lock: how readers copy a page without locking it.
//!
//! Every page starts with a 64-bit counter. It is even while the page is stable and odd
//! while a writer (who also holds the page's write lock, see [`crate::page_lock`] and
//! the fcntl range lock) changes it.
//!
//! **Writer** (holding the page's write lock, so there is one writer at a time):
//! 1. [`SeqLock::write_begin`]: make the counter odd, then a release fence so that no
//!    later data store can become visible before the odd counter.
//! 2. store the data with relaxed atomic stores;
//! 3. [`SeqLock::write_end`]: store the next even value with release ordering, so that
//!    every data store happens-before a reader that sees it.
//!
//! **Reader** (no lock, no write):
//! 1. [`SeqLock::read_begin`]: load the counter with acquire ordering (pairs with the
//!    writer's release in `write_end`); odd means a write is in progress: retry;
//! 2. copy the data out with relaxed atomic loads, never through `&[u8]` (a racing
//!    non-atomic read is undefined behaviour even if the result is discarded), and
//!    bounds-check everything copied: it may be torn;
//! 3. [`SeqLock::read_validate`]: an acquire fence (pairs with the writer's release
//!    fence in `write_begin`: if any load in step 2 saw a store of the next write, the
//!    re-load sees at least the odd counter), then reload the counter; the copy is
//!    consistent if and only if it is unchanged.
//!
//! A writer that dies mid-write leaves the counter odd. Readers give up after a bounded
//! spin and take the write lock instead; the next writer sees the odd counter and repairs
//! the page (see `crate::locked`). This is crossbeam's `seq_lock.rs` protocol over a
//! *borrowed* counter, so production uses a counter inside the shared mapping and the loom
//! tests one on the heap.

use crate::sync::{AtomicU64, Ordering, fence};

/// The orderings of the protocol, kept in one place so that a loom test can weaken one
/// and show that the model checker catches it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Orderings {
    /// Reader's first load of the counter.
    pub(crate) read_begin: Ordering,
    /// Reader's fence before re-loading the counter (`None`: no fence, tests only).
    pub(crate) read_fence: Option<Ordering>,
    /// Writer's fence after making the counter odd (`None`: no fence, tests only).
    pub(crate) write_fence: Option<Ordering>,
    /// Writer's store of the even counter that ends the write.
    pub(crate) write_end: Ordering,
}

impl Orderings {
    /// The correct protocol.
    pub(crate) const STRICT: Orderings = Orderings {
        read_begin: Ordering::Acquire,
        read_fence: Some(Ordering::Acquire),
        write_fence: Some(Ordering::Release),
        write_end: Ordering::Release,
    };
}

/// A sequence lock over a borrowed counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqLock<'a> {
    seq: &'a AtomicU64,
    ord: Orderings,
}

/// What a writer found when it began: an odd counter means the previous writer died
/// mid-write (or panicked) and the page must be validated.
///
/// A ticket, not a guard that ends the write when dropped, on purpose: a writer that
/// panics mid-write must leave the counter odd, exactly as one that is killed does, so
/// that the next lock holder repairs the page instead of readers trusting half a write.
/// `Locked::section` pairs `write_begin` with `write_end` around a closure; unwinding
/// skips the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteTicket {
    /// The odd value stored by `write_begin`.
    odd: u64,
    /// The counter was already odd when this write began.
    pub(crate) was_torn: bool,
}

impl<'a> SeqLock<'a> {
    /// A seqlock over `seq` with the correct orderings.
    #[inline]
    pub(crate) fn new(seq: &'a AtomicU64) -> Self {
        SeqLock {
            seq,
            ord: Orderings::STRICT,
        }
    }

    /// A seqlock with chosen orderings (loom tests only).
    #[cfg(loom)]
    pub(crate) fn with_orderings(seq: &'a AtomicU64, ord: Orderings) -> Self {
        SeqLock { seq, ord }
    }

    /// Starts a read: `Some(stamp)` if no write is in progress.
    #[inline]
    pub(crate) fn read_begin(&self) -> Option<u64> {
        // Acquire: pairs with the Release store in `write_end`, so the data stores of
        // the write that produced this even value are visible to the loads that follow.
        let s = self.seq.load(self.ord.read_begin);
        (s & 1 == 0).then_some(s)
    }

    /// Ends a read: whether everything loaded since `read_begin(stamp)` is consistent.
    #[inline]
    pub(crate) fn read_validate(&self, stamp: u64) -> bool {
        // Acquire fence: pairs with the Release fence in `write_begin`. If a relaxed data
        // load above saw a store made after some `write_begin`, the reload below sees that
        // write's odd counter (or later), so the read is rejected.
        if let Some(o) = self.ord.read_fence {
            fence(o);
        }
        // Relaxed: ordered after the data loads by the fence above.
        self.seq.load(Ordering::Relaxed) == stamp
    }

    /// Starts a write. The caller must hold the page's write lock.
    #[inline]
    pub(crate) fn write_begin(&self) -> WriteTicket {
        // Relaxed: only writers store the counter and the caller holds the write lock,
        // whose acquisition ordered us after the previous writer.
        let s = self.seq.load(Ordering::Relaxed);
        let was_torn = s & 1 == 1;
        let odd = if was_torn {
            s.wrapping_add(2)
        } else {
            s.wrapping_add(1)
        };
        // Relaxed store, then the Release fence below keeps every later data store from
        // becoming visible before this odd value.
        self.seq.store(odd, Ordering::Relaxed);
        if let Some(o) = self.ord.write_fence {
            fence(o);
        }
        WriteTicket { odd, was_torn }
    }

    /// Ends a write begun with `ticket`.
    #[inline]
    pub(crate) fn write_end(&self, ticket: WriteTicket) {
        // Release: pairs with the Acquire load in `read_begin`; publishes the data stores.
        self.seq
            .store(ticket.odd.wrapping_add(1), self.ord.write_end);
    }

    #[cfg_attr(loom, allow(dead_code))]
    /// Whether the counter is odd now (a write in progress or a dead writer).
    #[inline]
    pub(crate) fn is_odd(&self) -> bool {
        // Relaxed: a hint only; callers holding the write lock are already ordered.
        self.seq.load(Ordering::Relaxed) & 1 == 1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counter_is_even_between_writes_and_odd_during() {
        let c = AtomicU64::new(0);
        let s = SeqLock::new(&c);
        let r = s.read_begin().unwrap();
        let t = s.write_begin();
        assert!(!t.was_torn);
        assert!(s.read_begin().is_none());
        assert!(!s.read_validate(r), "a read overlapping a write must fail");
        s.write_end(t);
        let r2 = s.read_begin().unwrap();
        assert!(s.read_validate(r2));
        assert_eq!(r2, 2);
    }

    #[test]
    fn a_dead_writer_leaves_the_counter_odd_and_the_next_writer_sees_it() {
        let c = AtomicU64::new(0);
        let s = SeqLock::new(&c);
        let _dead = s.write_begin(); // never ended
        assert!(s.is_odd());
        let t = s.write_begin();
        assert!(t.was_torn);
        s.write_end(t);
        assert!(!s.is_odd());
        assert!(s.read_begin().is_some());
    }
}

#[cfg(loom)]
mod loom_tests {
    //! Model checks: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2
    //! CARGO_TARGET_DIR=target/loom cargo test -p store-fastmmap --release --lib loom`.
    use super::*;
    use crate::sync::AtomicU32;
    use loom::sync::Arc;

    /// Two data words a writer keeps equal; a validated read must never see them differ.
    fn writer_vs_reader(ord: Orderings) {
        loom::model(move || {
            let cell = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
            let w = cell.clone();
            let writer = loom::thread::spawn(move || {
                let s = SeqLock::with_orderings(&w.0, ord);
                for v in 1..=2u64 {
                    let t = s.write_begin();
                    w.1.store(v, Ordering::Relaxed);
                    w.2.store(v, Ordering::Relaxed);
                    s.write_end(t);
                }
            });
            let s = SeqLock::with_orderings(&cell.0, ord);
            for _ in 0..2 {
                if let Some(stamp) = s.read_begin() {
                    let a = cell.1.load(Ordering::Relaxed);
                    let b = cell.2.load(Ordering::Relaxed);
                    if s.read_validate(stamp) {
                        assert_eq!(a, b, "a validated read saw a torn pair");
                    }
                }
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn loom_seqlock_writer_vs_reader() {
        writer_vs_reader(Orderings::STRICT);
    }

    /// The checks have teeth: without the reader's acquire fence a validated read can
    /// see a torn pair, and loom finds the interleaving.
    #[test]
    #[should_panic(expected = "torn pair")]
    fn loom_seqlock_weakened_read_fence_is_caught() {
        writer_vs_reader(Orderings {
            read_fence: None,
            ..Orderings::STRICT
        });
    }

    /// Without the writer's release fence, data stores may become visible before the
    /// odd counter.
    #[test]
    #[should_panic(expected = "torn pair")]
    fn loom_seqlock_weakened_write_fence_is_caught() {
        writer_vs_reader(Orderings {
            write_fence: None,
            ..Orderings::STRICT
        });
    }

    /// A relaxed first load lets the data loads see values older than the write that
    /// produced the even counter.
    #[test]
    #[should_panic(expected = "torn pair")]
    fn loom_seqlock_weakened_write_end_is_caught() {
        writer_vs_reader(Orderings {
            write_end: Ordering::Relaxed,
            ..Orderings::STRICT
        });
    }

    /// Two writers serialised by the page lock: the counter ends even and the data
    /// matches the last write, and a torn writer is detected by the next.
    #[test]
    fn loom_seqlock_writer_vs_writer_under_page_lock() {
        use crate::page_lock::PageLock;
        loom::model(|| {
            let cell = Arc::new((
                AtomicU32::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ));
            let handles: Vec<_> = (1..=2u64)
                .map(|v| {
                    let c = cell.clone();
                    loom::thread::spawn(move || {
                        let lock = PageLock::new(&c.0);
                        let _g = lock.lock();
                        let s = SeqLock::new(&c.1);
                        let t = s.write_begin();
                        assert!(!t.was_torn, "a writer saw another writer mid-write");
                        c.2.store(v, Ordering::Relaxed);
                        c.3.store(v, Ordering::Relaxed);
                        s.write_end(t);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            let s = SeqLock::new(&cell.1);
            let stamp = s.read_begin().expect("even after both writes");
            assert_eq!(stamp, 4);
            assert_eq!(
                cell.2.load(Ordering::Relaxed),
                cell.3.load(Ordering::Relaxed)
            );
        });
    }
}
