//! The store's hold on its file: the descriptor, the checked directory and the file's
//! name in it, the shared mapping and the in-process page lock words, registered with
//! the fork refresh (`fork.rs`) for exactly as long as they all live.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char};
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
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
///
/// The lock array and the name are held through raw pointers (from `Box::into_raw` and
/// `CString::into_raw`, freed in `Drop`) rather than as a `Box` and a `CString`: the
/// registry keeps pointers into them, which moving a `Box` (the store into an `Arc`,
/// say) would invalidate under Rust's aliasing rules.
#[derive(Debug)]
pub(crate) struct StoreFile<L> {
    /// Dropped first, by hand: unregistered before anything it points at goes.
    reg: ManuallyDrop<Registration>,
    file: File,
    _dir: OwnedFd,
    name: NonNull<c_char>,
    locks: NonNull<[L]>,
    map: Mapping,
}

// SAFETY: the raw pointers are owned allocations (the lock array, the name) that this
// value alone frees; the lock elements are shared across threads as `&L`, which needs
// `L: Sync`, and the value may drop them on any thread, which needs `L: Send`.
unsafe impl<L: Send + Sync> Send for StoreFile<L> {}
// SAFETY: as above; `&StoreFile` hands out only `&L` and `&Mapping` (itself `Sync`).
unsafe impl<L: Send + Sync> Sync for StoreFile<L> {}

impl<L: LockWord> StoreFile<L> {
    /// Takes the opened file, its mapping and one lock element per page (at least one),
    /// and registers them. Fails if fork detection cannot be installed.
    /// `users`: the descriptor holds a shared lock on the users byte (`lock::USERS_BYTE`),
    /// which a forked child's refresh takes again for its own description.
    pub(crate) fn new(
        opened: Opened,
        map: Mapping,
        locks: Box<[L]>,
        users: bool,
    ) -> io::Result<Self> {
        let Opened {
            file, dir, name, ..
        } = opened;
        if locks.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a file of no pages",
            ));
        }
        let n = locks.len();
        // SAFETY: `Box::into_raw` never returns null.
        let locks = unsafe { NonNull::new_unchecked(Box::into_raw(locks)) };
        // SAFETY: as above.
        let name = unsafe { NonNull::new_unchecked(CString::into_raw(name)) };
        let base = locks.as_ptr().cast::<L>();
        // SAFETY: `base` points at `n >= 1` initialised elements owned by this value.
        let first = unsafe { &*base };
        // SAFETY: the lock word lies inside its element, so both pointers are in one
        // allocation.
        let offset = unsafe {
            std::ptr::from_ref(first.lock_word())
                .cast::<u8>()
                .offset_from(base.cast::<u8>())
        } as usize;
        let target = Target {
            fd: file.as_raw_fd(),
            dirfd: dir.as_raw_fd(),
            // SAFETY: from `CString::into_raw`: NUL-terminated, owned by this value.
            name: unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) },
            base: map.base(),
            len: map.len(),
            // SAFETY: `offset` lies inside the first element; derived from the pointer
            // to the whole array, so valid for every element's word.
            locks: unsafe { base.cast::<u8>().add(offset) }.cast::<AtomicU32>(),
            stride: std::mem::size_of::<L>(),
            nlocks: n,
            users,
        };
        let mut f = StoreFile {
            // Filled in below; a registration that fails frees the rest through `Drop`.
            reg: ManuallyDrop::new(Registration::none()),
            file,
            _dir: dir,
            name,
            locks,
            map,
        };
        // SAFETY: the descriptors, the name's bytes, the mapping (of the whole file, from
        // `Mapping::map`) and the lock array are owned by `f`, which drops the
        // registration before any of them (see `Drop`), and none of them moves when `f`
        // does (descriptor numbers, raw heap allocations, the kernel's mapping). Every
        // element's lock word lies at the same offset, `stride` apart, and `locks` was
        // derived from the array's own pointer.
        f.reg = ManuallyDrop::new(unsafe { Registration::new(target) }?);
        Ok(f)
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
        // SAFETY: from `Box::into_raw`, freed only in `Drop`; shared, never `&mut`.
        unsafe { self.locks.as_ref() }
    }

    /// Fails if this process is a forked child whose refresh of this store failed (see
    /// `fork`): its descriptor would still be its parent's. Returns the fork generation
    /// (see `fork::Epoch`).
    #[inline]
    pub(crate) fn check(&self) -> io::Result<u64> {
        self.reg.check()
    }

    /// This process's fork epoch, which tells the generation a page lock was taken in.
    #[inline]
    pub(crate) fn epoch(&self) -> super::fork::Epoch {
        self.reg.epoch()
    }

    /// As [`Self::check`], for a read that takes no lock: only whether a refresh failed
    /// (then the mapping is no longer the file's).
    #[inline]
    pub(crate) fn check_read(&self) -> io::Result<()> {
        self.reg.check_broken()
    }
}

impl<L> Drop for StoreFile<L> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, before what it points at.
        unsafe { ManuallyDrop::drop(&mut self.reg) };
        // SAFETY: both from `into_raw` in `new`, freed only here; the registry no longer
        // points at them.
        unsafe {
            drop(Box::from_raw(self.locks.as_ptr()));
            drop(CString::from_raw(self.name.as_ptr()));
        }
    }
}
