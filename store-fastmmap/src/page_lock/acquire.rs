//! Taking both locks of a page: the in-process lock, then the fcntl range lock, waiting
//! without a limit, within `write_lock_timeout`, or not at all.

use std::time::Duration;

use store_api::{Error, Result};

use super::Backoff;
use super::futex::Wait;
use super::guard::PageGuard;
use super::held::Held;
use super::inproc::PageLock;
use crate::os::lock::{lock_range, try_lock_range};
use crate::{FastMmapStore, LockKind};

impl FastMmapStore {
    /// Takes page `i`'s in-process lock, then its fcntl lock, waiting as long as it takes.
    /// `nested`: the second page of a `rotate` (see [`Held::take`]).
    #[inline(always)]
    pub(crate) fn lock_page(&self, i: u32, nested: bool) -> Result<PageGuard<'_>> {
        let (held, generation) = self.enter(i, nested)?;
        // From here the guard releases what is taken (the in-process lock is kept past
        // its own guard and released by the page guard).
        let taken = match (self.geo.locks, self.write_lock_timeout) {
            (LockKind::Futex, limit) => {
                let wait = limit.map_or(Wait::Forever, Wait::Within);
                match self.lock_futex(i, wait, generation) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(self.write_timed_out(i, limit.unwrap_or_default())),
                    Err(e) => Err(e),
                }
            }
            (LockKind::Fcntl, None) => {
                let inproc = PageLock::new(&self.os.locks()[i as usize].lock).lock();
                let (start, len) = self.lock_range(i);
                match lock_range(self.os.fd(), start, len) {
                    Ok(()) => {
                        inproc.keep();
                        Ok(())
                    }
                    Err(e) => {
                        drop(inproc);
                        Err(self.lock_error(i, e))
                    }
                }
            }
            (LockKind::Fcntl, Some(limit)) => self.lock_page_within(i, limit),
        };
        if let Err(e) = taken {
            if held {
                Held::release(self.file_id);
            }
            return Err(e);
        }
        Ok(PageGuard {
            store: self,
            page: i,
            held,
            generation,
        })
    }

    /// Both locks of page `i`, polled for at most `limit` (`write_lock_timeout`): the
    /// first try is the uncontended path's one system call; then spinning, then sleeps
    /// of up to 1 ms ([`Backoff`]). On success the in-process lock is kept for the page guard.
    #[inline(never)]
    fn lock_page_within(&self, i: u32, limit: Duration) -> Result<()> {
        let (start, len) = self.lock_range(i);
        let lock = PageLock::new(&self.os.locks()[i as usize].lock);
        let mut deadline = None;
        let mut backoff = Backoff::new();
        loop {
            if let Some(inproc) = lock.try_lock() {
                match try_lock_range(self.os.fd(), start, len) {
                    Ok(true) => {
                        inproc.keep();
                        return Ok(());
                    }
                    Ok(false) => drop(inproc),
                    Err(e) => {
                        drop(inproc);
                        return Err(self.lock_error(i, e));
                    }
                }
            }
            let now = std::time::Instant::now();
            let end = *deadline.get_or_insert(now + limit);
            if now >= end {
                return Err(self.write_timed_out(i, limit));
            }
            backoff.wait();
        }
    }

    /// A write that waited `limit` for page `i`'s locks.
    #[cold]
    fn write_timed_out(&self, i: u32, limit: Duration) -> Error {
        Error::Backend {
            context: format!(
                "page {i} of {}: its lock was held by another thread or process for more than \
                 {limit:?} (write_lock_timeout), nothing was written; a process stopped or \
                 stuck mid-write (SIGSTOP, a debugger, a hung disk) or an `update` closure \
                 that does not return holds it; retry, or continue or kill that process",
                self.path.display()
            ),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
    }

    /// As [`Self::lock_page`] without waiting: `None` if another thread or process holds
    /// the page.
    pub(crate) fn try_lock_page(&self, i: u32) -> Result<Option<PageGuard<'_>>> {
        let (held, generation) = self.enter(i, false)?;
        let unheld = || {
            if held {
                Held::release(self.file_id);
            }
        };
        if self.geo.locks == LockKind::Futex {
            return match self.lock_futex(i, Wait::Never, generation) {
                Ok(true) => Ok(Some(PageGuard {
                    store: self,
                    page: i,
                    held,
                    generation,
                })),
                Ok(false) => {
                    unheld();
                    Ok(None)
                }
                Err(e) => {
                    unheld();
                    Err(e)
                }
            };
        }
        let Some(inproc) = PageLock::new(&self.os.locks()[i as usize].lock).try_lock() else {
            unheld();
            return Ok(None);
        };
        let (start, len) = self.lock_range(i);
        match try_lock_range(self.os.fd(), start, len) {
            Ok(true) => {}
            Ok(false) => {
                drop(inproc);
                unheld();
                return Ok(None);
            }
            Err(e) => {
                drop(inproc);
                unheld();
                return Err(self.lock_error(i, e));
            }
        }
        inproc.keep();
        Ok(Some(PageGuard {
            store: self,
            page: i,
            held,
            generation,
        }))
    }

    /// The checks before any page lock: a forked child's stores are refreshed (and fail
    /// if that failed), and a thread inside an `update` closure may not lock a page of
    /// this file again (it would wait for itself). Returns the fork generation too.
    #[inline(always)]
    fn enter(&self, i: u32, nested: bool) -> Result<(bool, u64)> {
        let generation = self.os.check().map_err(|e| self.refresh_failed(e))?;
        let held = Held::take(self.file_id, nested).map_err(|()| Error::Backend {
            context: format!(
                "page {i} of {}: store called from inside an `update` closure, whose thread \
                 holds a page lock of this file; it would wait for itself (the closure must \
                 not call back into the store)",
                self.path.display()
            ),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::WouldBlock)),
        })?;
        Ok((held, generation))
    }

    /// This process is a forked child whose refresh of the store failed.
    #[cold]
    pub(crate) fn refresh_failed(&self, e: std::io::Error) -> Error {
        Error::io(
            format!(
                "{}: this process was forked and could not open the file anew for its own \
                 locks; open the store again in the child",
                self.path.display()
            ),
            e,
        )
    }

    /// The byte range page `i`'s fcntl lock covers: the page.
    pub(super) fn lock_range(&self, i: u32) -> (u64, u64) {
        (self.geo.page_offset(i), u64::from(self.geo.page_size))
    }

    fn lock_error(&self, i: u32, e: std::io::Error) -> Error {
        Error::io(format!("locking page {i} of {}", self.path.display()), e)
    }
}
