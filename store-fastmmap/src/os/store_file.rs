//! The store's hold on its file: the descriptor, the checked directory and the file's
//! name in it, the shared mapping and the in-process page lock words, registered with
//! the fork refresh (`fork.rs`) for exactly as long as they all live.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;

use super::file::Opened;
use super::fork::{Registration, Target};
use super::mmap::Mapping;

/// An element of the in-process lock array: it holds the page's lock word (and whatever
/// else the store keeps per page).
pub(crate) trait LockWord {
    /// The page's in-process lock word (0 free).
    fn lock_word(&self) -> &AtomicU32;
}

/// A store's file, mapping and lock words.
#[derive(Debug)]
pub(crate) struct StoreFile<L> {
    /// First, so dropped first: unregistered before anything it points at goes.
    reg: Registration,
    file: File,
    _dir: OwnedFd,
    _name: CString,
    locks: Box<[L]>,
    map: Mapping,
}

impl<L: LockWord> StoreFile<L> {
    /// Takes the opened file, its mapping and one lock element per page (at least one),
    /// and registers them. Fails if fork detection cannot be installed.
    pub(crate) fn new(opened: Opened, map: Mapping, locks: Box<[L]>) -> io::Result<Self> {
        let Opened {
            file, dir, name, ..
        } = opened;
        let first = locks
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file of no pages"))?;
        let target = Target {
            fd: file.as_raw_fd(),
            dirfd: dir.as_raw_fd(),
            name: &name,
            base: map.base(),
            len: map.len(),
            locks: std::ptr::from_ref(first.lock_word()),
            stride: std::mem::size_of::<L>(),
            nlocks: locks.len(),
        };
        // SAFETY: the descriptors, the name's bytes, the mapping (of the whole file, from
        // `Mapping::map`) and the lock array are owned by the value built below, which
        // drops the registration (its first field) before any of them, and none of them
        // moves when the value does (descriptor numbers, heap allocations, the kernel's
        // mapping). Every element's lock word lies at the same offset, `stride` apart.
        let reg = unsafe { Registration::new(target) }?;
        Ok(StoreFile {
            reg,
            file,
            _dir: dir,
            _name: name,
            locks,
            map,
        })
    }

    /// The descriptor to lock with (after a fork, the child's own description).
    #[inline]
    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The mapping of the whole file.
    #[inline]
    pub(crate) fn map(&self) -> &Mapping {
        &self.map
    }

    /// One lock element per page.
    #[inline]
    pub(crate) fn locks(&self) -> &[L] {
        &self.locks
    }

    /// Fails if this process is a forked child whose refresh of this store failed (see
    /// `fork`): its descriptor would still be its parent's.
    #[inline]
    pub(crate) fn check(&self) -> io::Result<()> {
        self.reg.check()
    }
}
