//! The in-process level of the page lock: excludes the threads of one process from a page.
//!
//! fcntl OFD locks exclude open file descriptions, and all threads of a store share one,
//! so threads need their own exclusion. Lock order (see `docs/FORMAT.md`): this lock
//! first, then the page's fcntl range lock; pages in ascending index order.
//!
//! A test-and-test-and-set lock over a borrowed `AtomicU32` (0 free, 1 held), so the
//! loom tests check the same code on heap memory. Waiters spin briefly, then yield,
//! then sleep: the holder may be blocked in `fcntl` behind another process.

use crate::sync::{AtomicU32, Ordering, spin_hint, yield_now};

/// A lock over a borrowed word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLock<'a> {
    word: &'a AtomicU32,
}

/// Releases the lock when dropped (also on unwind, so a panicking update closure leaves
/// the page unlocked).
#[derive(Debug)]
pub(crate) struct PageLockGuard<'a> {
    word: &'a AtomicU32,
}

impl<'a> PageLock<'a> {
    /// A lock over `word`, which must start at 0.
    pub(crate) fn new(word: &'a AtomicU32) -> Self {
        PageLock { word }
    }

    /// Tries once.
    pub(crate) fn try_lock(&self) -> Option<PageLockGuard<'a>> {
        // Acquire on success: pairs with the Release store in the guard's drop, so the
        // previous holder's writes happen-before ours. Relaxed on failure: nothing read.
        self.word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| PageLockGuard { word: self.word })
    }

    /// Waits until the lock is ours.
    pub(crate) fn lock(&self) -> PageLockGuard<'a> {
        let mut round: u32 = 0;
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            // Wait until it looks free before trying the CAS again (relaxed: a hint).
            while self.word.load(Ordering::Relaxed) != 0 {
                round = round.saturating_add(1);
                if round < 64 {
                    spin_hint();
                } else {
                    backoff(round);
                }
            }
        }
    }
}

#[cfg(not(loom))]
fn backoff(round: u32) {
    if round < 1_000 {
        yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

#[cfg(loom)]
fn backoff(_round: u32) {
    yield_now();
}

impl PageLockGuard<'_> {
    /// Keeps the lock held past the guard: the holder releases it with
    /// [`PageLock::unlock`] (a guard that must not release in some cases).
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl PageLock<'_> {
    /// Releases a lock whose guard was kept ([`PageLockGuard::keep`]); only its holder
    /// may call this.
    pub(crate) fn unlock(&self) {
        // Release: publishes this holder's writes to the next acquirer.
        self.word.store(0, Ordering::Release);
    }
}

impl Drop for PageLockGuard<'_> {
    fn drop(&mut self) {
        // Release: publishes this holder's writes to the next acquirer.
        self.word.store(0, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_excludes_threads() {
        let word = Arc::new(AtomicU32::new(0));
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (w, c) = (word.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        let _g = PageLock::new(&w).lock();
                        // A non-atomic read-modify-write made of two atomic steps:
                        // lost updates would show if the lock did not exclude.
                        let v = c.load(Ordering::Relaxed);
                        c.store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 8_000);
    }

    #[test]
    fn guard_releases_on_unwind() {
        let word = AtomicU32::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = PageLock::new(&word).lock();
            panic!("closure panicked");
        }));
        assert!(r.is_err());
        assert!(PageLock::new(&word).try_lock().is_some());
    }
}

#[cfg(loom)]
#[allow(unsafe_code)] // loom's UnsafeCell is the race detector's probe
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Mutual exclusion checked with loom's data-race detector on an `UnsafeCell`.
    #[test]
    fn loom_page_lock_excludes() {
        loom::model(|| {
            let shared = Arc::new((AtomicU32::new(0), loom::cell::UnsafeCell::new(0u32)));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let s = shared.clone();
                    loom::thread::spawn(move || {
                        let _g = PageLock::new(&s.0).lock();
                        // SAFETY: the page lock is held, so no other thread touches the cell.
                        s.1.with_mut(|p| unsafe { *p += 1 });
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            // SAFETY: both threads joined.
            assert_eq!(shared.1.with(|p| unsafe { *p }), 2);
        });
    }
}
