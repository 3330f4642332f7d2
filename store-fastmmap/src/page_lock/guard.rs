//! The guard of both locks of a page.

use store_api::{Error, Result};

use super::held::Held;
use super::inproc::PageLock;
use crate::os::lock::release;
use crate::{FastMmapStore, LockKind};

/// A page's lock: for the fcntl kind both locks, released fcntl first, then in-process
/// (reverse order); for the futex kind the page's robust mutex. Small
/// (the store, the page, the generation): it travels up through every write's results.
pub(crate) struct PageGuard<'a> {
    pub(super) store: &'a FastMmapStore,
    pub(super) page: u32,
    /// Whether the lock is on this thread's stack of held locks (see [`Held`]).
    pub(super) held: bool,
    /// The fork generation the lock was taken in (see `os::fork`).
    pub(super) generation: u64,
}

impl PageGuard<'_> {
    /// Fails if the process forked since the lock was taken (a fork inside an `update`
    /// closure): the child holds no lock, so it must not write.
    pub(crate) fn still_held(&self) -> Result<()> {
        if self.store.os.epoch().current() == self.generation {
            return Ok(());
        }
        Err(Error::Backend {
            context: format!(
                "{}: the process forked inside an `update` closure; the child does not hold \
                 the page's lock (its parent does), so the update is not applied in the child",
                self.store.path.display()
            ),
            source: Box::new(std::io::Error::other("forked while holding a page lock")),
        })
    }
}

impl Drop for PageGuard<'_> {
    fn drop(&mut self) {
        let s = self.store;
        // A child (forked inside an `update` closure) holds neither of its parent's
        // locks: after the fork refresh its descriptor is a description of its own, and
        // before it (a fork that ran no handler) releasing would release the parent's;
        // its in-process lock word was reset and may be another thread's now.
        if s.os.epoch().current() == self.generation {
            match s.geo.locks {
                LockKind::Fcntl => {
                    let (start, len) = s.lock_range(self.page);
                    release(s.os.fd(), start, len);
                    PageLock::new(&s.os.locks()[self.page as usize].lock).unlock();
                }
                LockKind::Futex => s.unlock_futex(self.page),
            }
        }
        if self.held {
            Held::release(s.file_id);
        }
    }
}
