//! The page lock: what keeps writers of one page apart, in one place, for both lock kinds
//! ([`crate::LockKind`], recorded in the file header).
//!
//! The **fcntl** kind has two levels:
//! - **Threads** of a process: `PageLock` (`inproc.rs`), a test-and-test-and-set lock
//!   over a word of the in-process lock array, built under loom too.
//! - **Processes**: the page's fcntl open-file-description byte-range lock
//!   (`os/lock.rs`: the system calls, and why they bypass glibc's wrapper).
//! - **Taking them** (`acquire.rs`): the in-process lock first, then the fcntl lock; pages
//!   of a `rotate` in ascending index order. Without a limit, within
//!   `write_lock_timeout`, or once (the read's fallback); every wait uses [`Backoff`].
//! - **Releasing them** (`guard.rs`): [`PageGuard`] releases fcntl first, then
//!   in-process, and neither in a child forked while the lock was held.
//! - **Re-entry** (`held.rs`): a thread that holds a page lock of a file and calls the
//!   store for the same file gets an error instead of waiting for itself.
//!
//! The **futex** kind (`futex.rs`) has one: the page's robust process-shared mutex in the
//! lock table (`os/robust.rs`), taken the same three ways, whose holder's death the
//! kernel reports (`EOWNERDEAD`): the page is repaired before the mutex is marked
//! consistent. Re-entry and the fork rules are the same for both.
//!
//! The ordering across processes: for fcntl the kernel's (an fcntl lock granted after
//! another process released it orders that process's stores before ours); for futex
//! the mutex word's release store and acquire compare-and-swap, on memory both
//! processes map (`docs/FORMAT.md`, "Platform assumptions"); within a process, the
//! in-process lock's acquire and release.

mod inproc;

// The seqlock's loom tests take it directly; the engine through `acquire` and `guard`.
#[cfg(loom)]
pub(crate) use inproc::PageLock;

#[cfg(not(loom))]
mod acquire;
#[cfg(not(loom))]
mod futex;
#[cfg(not(loom))]
mod guard;
#[cfg(not(loom))]
mod held;

#[cfg(not(loom))]
pub(crate) use guard::PageGuard;

/// How every wait for a page's locks backs off: spinning a little (the holder is
/// usually a few hundred nanoseconds from releasing), then sleeps growing by a
/// microsecond a round up to 1 ms (the holder may be blocked behind another process, or
/// stopped).
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    round: u32,
}

#[cfg(not(loom))]
impl Backoff {
    /// Rounds spent spinning before the first sleep.
    const SPINS: u32 = 64;

    /// A wait that has not waited yet.
    pub(crate) fn new() -> Self {
        Backoff::default()
    }

    /// Waits once, longer each time.
    pub(crate) fn wait(&mut self) {
        self.round = self.round.saturating_add(1);
        if self.round < Self::SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(u64::from(
                self.round.min(1_000),
            )));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_spins_then_sleeps_at_most_a_millisecond() {
        let mut b = Backoff::new();
        let t = std::time::Instant::now();
        for _ in 0..Backoff::SPINS - 1 {
            b.wait();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_millis(20),
            "spins do not sleep"
        );
        b.round = 5_000;
        let t = std::time::Instant::now();
        b.wait();
        let took = t.elapsed();
        assert!(took >= std::time::Duration::from_millis(1), "{took:?}");
        assert!(took < std::time::Duration::from_millis(200), "{took:?}");
    }
}
