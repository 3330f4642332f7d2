//! The futex kind's page lock: the page's robust mutex in the lock table, which excludes
//! threads and processes alike (no in-process lock), and the repair of a page whose
//! holder died (`EOWNERDEAD`) before its lock is marked consistent.

use std::time::Duration;

use store_api::{Error, Result};

use crate::FastMmapStore;
use crate::format::region::Region;
use crate::os::robust::{self, Mutex, Taken};

/// How long to wait for a page's robust mutex.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    /// As long as it takes.
    Forever,
    /// At most this long (`write_lock_timeout`).
    Within(Duration),
    /// Not at all (the read's fallback polls).
    Never,
}

impl FastMmapStore {
    /// Page `i`'s mutex in the lock table.
    #[inline]
    pub(super) fn mutex(&self, i: u32) -> Result<Mutex> {
        Region::of(self.os.map())
            .mutex_at(self.geo.mutex_offset(i) as usize)
            .ok_or_else(|| Error::Corrupted {
                what: format!(
                    "{}: page {i}'s lock lies outside the mapping",
                    self.path.display()
                ),
            })
    }

    /// Takes page `i`'s robust mutex; `Ok(false)` if it is busy (only for
    /// [`Wait::Within`] and [`Wait::Never`]). A mutex whose holder died is taken over:
    /// the page is repaired, then the mutex marked consistent.
    ///
    /// `generation`: this process's fork generation. The first lock of each generation
    /// checks that the process can own robust locks at all (see
    /// [`robust::thread_ids_sound`]).
    #[inline]
    pub(super) fn lock_futex(&self, i: u32, wait: Wait, generation: u64) -> Result<bool> {
        // Relaxed: a cache of a check any thread may repeat.
        if self.futex_sound.load(std::sync::atomic::Ordering::Relaxed) != generation + 1 {
            self.check_futex_sound(generation)?;
        }
        let m = self.mutex(i)?;
        let taken = match wait {
            Wait::Forever => robust::lock(m),
            Wait::Within(limit) => robust::lock_within(m, limit),
            Wait::Never => robust::try_lock(m),
        }
        .map_err(|e| self.futex_error(i, e))?;
        match taken {
            Taken::Clean => Ok(true),
            Taken::Busy => Ok(false),
            Taken::OwnerDied => self.take_over(i, m).map(|()| true),
        }
    }

    #[cold]
    #[inline(never)]
    fn check_futex_sound(&self, generation: u64) -> Result<()> {
        robust::thread_ids_sound().map_err(|e| {
            Error::io(
                format!("taking a page lock of {}: {e}", self.path.display()),
                e,
            )
        })?;
        // Relaxed: see `lock_futex`.
        self.futex_sound
            .store(generation + 1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The previous holder of page `i`'s mutex died holding it: whatever it was doing to
    /// the page is repaired (a writer that died mid-write left the seqlock odd, which the
    /// repair looks for, as after an fcntl holder's death), then the mutex is marked
    /// consistent. If that fails the mutex is released unrepaired, which makes it
    /// unrecoverable: every later lock of the page then fails with an error naming
    /// `init_file`, rather than writers trusting a page nobody checked.
    #[cold]
    #[inline(never)]
    fn take_over(&self, i: u32, m: Mutex) -> Result<()> {
        // A file re-initialised under this store is not repaired here; the caller's check
        // of the header under the lock reports it.
        if let Ok(mut l) = self.locked_view(i) {
            l.prepare();
        }
        // Relaxed: a statistic.
        self.counters
            .owner_deaths
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        robust::make_consistent(m).map_err(|e| {
            let _ = robust::unlock(m);
            self.futex_error(i, e)
        })
    }

    /// Releases page `i`'s mutex (the calling thread holds it). A mutex that says the
    /// thread does not hold it (its word overwritten) has nothing to release: that is
    /// reported on stderr, since every writer of the page may now be at risk.
    #[inline]
    pub(super) fn unlock_futex(&self, i: u32) {
        let Ok(m) = self.mutex(i) else { return };
        if let Err(e) = robust::unlock(m) {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "store-fastmmap: {}: releasing page {i}'s robust lock failed ({e}); its lock \
                 word was overwritten",
                self.path.display()
            );
        }
    }

    #[cold]
    fn futex_error(&self, i: u32, e: std::io::Error) -> Error {
        let hint = if e.raw_os_error().is_none() && e.kind() == std::io::ErrorKind::Other {
            "; open the file with init_file(true) to start it anew"
        } else {
            ""
        };
        Error::io(
            format!("locking page {i} of {}: {e}{hint}", self.path.display()),
            e,
        )
    }
}
