//! Fork safety: a forked child never keeps its parent's open file description of a store
//! file, and never inherits a page lock that no thread of it will release.
//!
//! OFD locks belong to the open file description, and a child made by `fork` shares its
//! parent's: through the descriptor, and through the mapping, which holds a reference to
//! the description too. A child that kept it would not exclude its parent (their locks
//! would be one lock), and a lock its parent held when killed mid-write would stay held
//! for as long as the child lives, hanging every writer of that page. Only the forking
//! thread survives a fork, so an in-process page lock another thread held would never be
//! released in the child either.
//!
//! So every open store is registered here (descriptor, mapping, in-process lock words),
//! and in a child, before any store is used, each registered store is **refreshed**: a
//! new open file description of the same file is opened through `/proc/self/fd/N` (the
//! same inode whatever its name and the working directory; by name relative to the
//! store's directory where `/proc` is missing), mapped over the old mapping at the same
//! address (`MAP_FIXED`, one step for the other threads), and moved onto the old
//! descriptor number (`dup3`), and the store's in-process page locks are reset. The
//! refresh runs
//! - in a `pthread_atfork` child handler, for `fork()`, before the child runs any code of
//!   its own; and
//! - on the first store call after a fork that ran no handler (glibc's `_Fork`, a raw
//!   `clone`), detected without a system call by a private page marked
//!   `MADV_WIPEONFORK`, which the kernel zeroes in every child (Linux 4.14 and later;
//!   where it is refused, a `getpid` per check detects the fork instead).
//!
//! Both run in the child of a possibly multi-threaded parent, where only
//! async-signal-safe code may run: the refresh makes system calls, allocates nothing and
//! takes only a spin lock that lives in the wiped page (so no parent thread can have left
//! it held; without the wiped page, a static one whose holder's pid tells a child that the
//! holder is not its own). A process refreshes once, before any of its threads passes
//! [`Epoch::current`], so a reset never frees a lock a thread of the child holds (a page
//! lock the forking thread took before the fork is then not released by it: see
//! `store.rs`). A child that execs at once (`Command` without `posix_spawn`) pays an
//! `open`, an `mmap`, a `dup3` and a `close` per open store.
//!
//! What cannot be covered: a child made without the handler that never calls the store
//! keeps its parent's description (and with it a lock its parent died holding) until it
//! exits or execs; a store being opened or dropped by another thread at the moment of the
//! fork is not refreshed in the child (no thread of the child can use it); a fork while
//! another thread opens the process's very first store can leave the child unable to open
//! one. A refresh that fails (no descriptor left, say) marks the store broken in the
//! child, whose calls then fail (a read another thread of the child is in the middle of
//! may miss), and still lets go of the parent's description.
//!
//! libc, not rustix: `pthread_atfork` has no rustix call, and the child handler's calls
//! must be the async-signal-safe ones this file lists and tests.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Bumped by every refresh: a page lock taken in one generation is not this process's to
/// release in another.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The state that must start afresh in every child.
#[derive(Debug)]
#[repr(C)]
struct Fresh {
    /// Nonzero once this process has refreshed (or never forked).
    armed: AtomicU64,
    /// The refresh lock: 0 free, else the pid of the process whose thread holds it (a
    /// child finding its parent's pid there takes it over: see `refresh`).
    lock: AtomicI32,
}

/// Stands in for the wiped page where the kernel refuses `MADV_WIPEONFORK`.
static FALLBACK: Fresh = Fresh {
    armed: AtomicU64::new(0),
    lock: AtomicI32::new(0),
};
/// The wiped page, or [`FALLBACK`]; set once by [`install`].
static FRESH: AtomicPtr<Fresh> = AtomicPtr::new(std::ptr::null_mut());
/// Whether [`FRESH`] is a wiped page; if not, the pid tells a child.
static WIPED: AtomicU32 = AtomicU32::new(0);
/// The pid [`FALLBACK`] was armed in.
static PID: AtomicI32 = AtomicI32::new(0);
/// `pthread_atfork`'s return code, once installed.
static INSTALLED: OnceLock<libc::c_int> = OnceLock::new();

/// Entries per chunk of the registry, and chunks.
const CHUNK: usize = 256;
const CHUNKS: usize = 256;

const FREE: u32 = 0;
const BUSY: u32 = 1;
const LIVE: u32 = 2;

/// One registered store.
#[derive(Debug)]
#[repr(align(64))]
struct Entry {
    state: AtomicU32,
    /// 0, or the OS error number of a refresh that failed in this process.
    broken: AtomicI32,
    fd: AtomicI32,
    /// A descriptor a refresh opened and has not yet moved onto `fd` (or -1): a fork in
    /// that window copies it, and the child's refresh closes it.
    pending: AtomicI32,
    dirfd: AtomicI32,
    /// The file's name in `dirfd` (NUL-terminated, owned by the store).
    name: AtomicPtr<libc::c_char>,
    base: AtomicPtr<libc::c_void>,
    len: AtomicUsize,
    locks: AtomicPtr<AtomicU32>,
    stride: AtomicUsize,
    nlocks: AtomicUsize,
    /// Nonzero if the store holds a shared lock on the file's users byte (the futex
    /// kind, `lock::USERS_BYTE`), which the child's new description must take too.
    users: AtomicU32,
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            state: AtomicU32::new(FREE),
            broken: AtomicI32::new(0),
            fd: AtomicI32::new(-1),
            pending: AtomicI32::new(-1),
            dirfd: AtomicI32::new(-1),
            name: AtomicPtr::new(std::ptr::null_mut()),
            base: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
            locks: AtomicPtr::new(std::ptr::null_mut()),
            stride: AtomicUsize::new(0),
            nlocks: AtomicUsize::new(0),
            users: AtomicU32::new(0),
        }
    }
}

/// What a placeholder registration points at (never in the registry).
static NONE: Entry = Entry::new();

/// Chunks of entries, allocated on demand (never freed) so that the child handler walks
/// them without allocating.
static REGISTRY: [AtomicPtr<[Entry; CHUNK]>; CHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// What a store registers: its descriptor, directory and name, mapping and lock words.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) fd: RawFd,
    pub(super) dirfd: RawFd,
    pub(super) name: &'a CStr,
    pub(super) base: *mut u8,
    pub(super) len: usize,
    /// The first in-process lock word; the others follow every `stride` bytes.
    pub(super) locks: *const AtomicU32,
    pub(super) stride: usize,
    pub(super) nlocks: usize,
    /// Whether the store holds a shared lock on the users byte (see `Entry::users`).
    pub(super) users: bool,
}

/// A store's place in the registry; unregisters when dropped.
#[derive(Debug)]
pub(super) struct Registration {
    entry: &'static Entry,
    epoch: Epoch,
}

/// What tells this process's fork generation cheaply: the wiped page (or its stand-in)
/// and whether it is wiped, read once at registration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epoch {
    fresh: &'static Fresh,
    wiped: bool,
}

impl Epoch {
    /// The fork generation, refreshing this process's stores first if it is a child
    /// that has not yet: a page lock is released only in the generation it was taken in.
    #[inline(always)]
    pub(crate) fn current(self) -> u64 {
        if self.forked() {
            refresh(self);
        }
        // Acquire: pairs with the Release store in `refresh`.
        GENERATION.load(Ordering::Acquire)
    }

    /// Whether this process forked since its stores were last refreshed.
    #[inline(always)]
    fn forked(self) -> bool {
        if self.wiped {
            // Acquire: pairs with the Release store at the end of `refresh`, so the
            // stores are refreshed for a thread that sees it armed.
            return self.fresh.armed.load(Ordering::Acquire) == 0;
        }
        // SAFETY: getpid has no preconditions.
        PID.load(Ordering::Acquire) != unsafe { libc::getpid() }
    }
}

/// An epoch for a registration of nothing.
static NONE_FRESH: Fresh = Fresh {
    armed: AtomicU64::new(1),
    lock: AtomicI32::new(0),
};

impl Registration {
    /// Registers a store. Fails if fork detection cannot be installed (a child forked
    /// later would then share its parent's description) or the registry is full.
    ///
    /// # Safety
    /// Everything `t` points at (the descriptors, `name`, the mapping, the `nlocks` lock
    /// words `stride` bytes apart) must stay valid, and the mapping must be a shared
    /// read-write mapping of the descriptor's whole file, until the returned
    /// registration is dropped.
    pub(super) unsafe fn new(t: Target<'_>) -> std::io::Result<Registration> {
        install()?;
        // A child that ran no handler refreshes the stores it inherited before this one
        // joins them.
        check();
        for c in &REGISTRY {
            let mut chunk = c.load(Ordering::Acquire);
            if chunk.is_null() {
                let fresh = Box::into_raw(Box::new([const { Entry::new() }; CHUNK]));
                // AcqRel: publishes the new chunk, or sees the one another thread put.
                match c.compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => chunk = fresh,
                    Err(other) => {
                        // SAFETY: `fresh` came from `Box::into_raw` above and was never
                        // shared.
                        drop(unsafe { Box::from_raw(fresh) });
                        chunk = other;
                    }
                }
            }
            // SAFETY: chunks are never freed once published.
            let chunk: &'static [Entry; CHUNK] = unsafe { &*chunk };
            for e in chunk {
                // Acquire: the entry's last user is done with it (its Release below).
                if e.state
                    .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // Relaxed: published by the Release store of LIVE.
                    e.broken.store(0, Ordering::Relaxed);
                    e.pending.store(-1, Ordering::Relaxed);
                    e.fd.store(t.fd, Ordering::Relaxed);
                    e.dirfd.store(t.dirfd, Ordering::Relaxed);
                    e.name.store(t.name.as_ptr().cast_mut(), Ordering::Relaxed);
                    e.base.store(t.base.cast(), Ordering::Relaxed);
                    e.len.store(t.len, Ordering::Relaxed);
                    e.locks.store(t.locks.cast_mut(), Ordering::Relaxed);
                    e.stride.store(t.stride, Ordering::Relaxed);
                    e.nlocks.store(t.nlocks, Ordering::Relaxed);
                    e.users.store(u32::from(t.users), Ordering::Relaxed);
                    // Release: pairs with the Acquire load in `refresh`.
                    e.state.store(LIVE, Ordering::Release);
                    let epoch = epoch().expect("installed above");
                    return Ok(Registration { entry: e, epoch });
                }
            }
        }
        Err(std::io::Error::other(format!(
            "more than {} stores are open in this process",
            CHUNK * CHUNKS
        )))
    }

    /// A registration of nothing (a placeholder until [`Registration::new`] succeeds).
    pub(super) fn none() -> Registration {
        Registration {
            entry: &NONE,
            epoch: Epoch {
                fresh: &NONE_FRESH,
                wiped: true,
            },
        }
    }

    /// This process's fork epoch (see [`Epoch`]).
    #[inline]
    pub(super) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Fails if this store's refresh failed in this process (its mapping is then no
    /// longer the file's), without refreshing: for reads, which take no lock.
    #[inline]
    pub(super) fn check_broken(&self) -> std::io::Result<()> {
        // Relaxed: a refresh stores it before its process's stores are used (the
        // handler), or under the refresh lock, before `armed` is stored (release).
        match self.entry.broken.load(Ordering::Relaxed) {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    /// Refreshes the stores if this process is a child that has not yet (see the module
    /// docs), then fails if this store's refresh failed: its descriptor would still be
    /// the parent's. Returns the current [`generation`].
    #[inline(always)]
    pub(super) fn check(&self) -> std::io::Result<u64> {
        let generation = self.epoch.current();
        // Relaxed: the refresh that stores it happened before `current` returned.
        match self.entry.broken.load(Ordering::Relaxed) {
            0 => Ok(generation),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if std::ptr::eq(self.entry, &NONE) {
            return;
        }
        // A refresh in progress (a child's first store call on another thread) finishes
        // before this store's descriptor and mapping go away.
        check();
        // Release: the next registrant sees this entry's fields as done with.
        self.entry.state.store(FREE, Ordering::Release);
    }
}

/// Installs the fork handler and the wiped page (once per process).
fn install() -> std::io::Result<()> {
    let rc = *INSTALLED.get_or_init(|| {
        let fresh = wiped_page().unwrap_or_else(|| std::ptr::from_ref(&FALLBACK).cast_mut());
        // SAFETY: getpid has no preconditions.
        PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
        // SAFETY: `fresh` points at a `Fresh` that lives for the process (a page that is
        // never unmapped, or a static).
        unsafe { (*fresh).armed.store(1, Ordering::Relaxed) };
        // Release: pairs with the Acquire load in `fresh`.
        FRESH.store(fresh, Ordering::Release);
        // SAFETY: `in_child` is an `extern "C"` function that makes only
        // async-signal-safe calls (see `refresh`); the other handlers are null, which is
        // allowed.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) }
    });
    installed(rc)
}

/// A private page the kernel zeroes in every child, or `None` if it refuses.
fn wiped_page() -> Option<*mut Fresh> {
    const LEN: usize = 4096;
    // SAFETY: a fresh private anonymous mapping at an address the kernel chooses; no
    // existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: `p` is the mapping of `LEN` bytes made above.
    let ok = unsafe { libc::madvise(p, LEN, libc::MADV_WIPEONFORK) } == 0;
    #[cfg(not(target_os = "linux"))]
    let ok = false;
    if !ok {
        // SAFETY: the mapping made above, used by nobody.
        unsafe { libc::munmap(p, LEN) };
        return None;
    }
    WIPED.store(1, Ordering::Relaxed);
    // Zero-filled, which is a valid `Fresh` (both atomics 0); page-aligned.
    Some(p.cast())
}

/// `pthread_atfork` returns an error number (not -1 and `errno`).
fn installed(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::from_raw_os_error(rc);
    Err(std::io::Error::new(
        e.kind(),
        format!("installing the fork handler (pthread_atfork): {e}"),
    ))
}

extern "C" fn in_child() {
    check();
}

/// This process's epoch, once [`install`] ran.
fn epoch() -> Option<Epoch> {
    // Acquire: pairs with the Release store in `install`.
    let p = FRESH.load(Ordering::Acquire);
    (!p.is_null()).then(|| Epoch {
        // SAFETY: set once to a `Fresh` that lives for the process.
        fresh: unsafe { &*p },
        // Relaxed: stored before `FRESH` was published (release).
        wiped: WIPED.load(Ordering::Relaxed) == 1,
    })
}

/// Refreshes the stores if this process forked and has not done so yet.
#[inline]
fn check() {
    if let Some(e) = epoch() {
        e.current();
    }
}

/// Gives every registered store a descriptor and mapping of its own, and resets its
/// in-process locks (see the module docs). Async-signal-safe.
#[cold]
fn refresh(e: Epoch) {
    let f = e.fresh;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    loop {
        // Acquire: pairs with the Release store that frees the lock.
        match f
            .lock
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => break,
            // Held by a thread of another process: this is a child forked while its
            // parent refreshed (only possible without the wiped page), and that thread
            // does not exist here.
            Err(holder)
                if holder != me
                    && f.lock
                        .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok() =>
            {
                break;
            }
            // SAFETY: sched_yield has no preconditions.
            Err(_) => unsafe {
                libc::sched_yield();
            },
        }
    }
    if e.forked() {
        // Release: pairs with the Acquire load in `Epoch::current`.
        GENERATION.fetch_add(1, Ordering::Release);
        for c in &REGISTRY {
            // Acquire: pairs with the publishing compare-exchange in `Registration::new`.
            let chunk = c.load(Ordering::Acquire);
            if chunk.is_null() {
                break;
            }
            // SAFETY: chunks are never freed once published.
            for entry in unsafe { &*chunk } {
                // Acquire: pairs with the Release store of LIVE.
                if entry.state.load(Ordering::Acquire) == LIVE {
                    refresh_entry(entry);
                }
            }
        }
        if e.wiped {
            // Release: publishes the refresh to every thread that sees it armed.
            f.armed.store(1, Ordering::Release);
        } else {
            // SAFETY: getpid has no preconditions.
            PID.store(unsafe { libc::getpid() }, Ordering::Release);
        }
    }
    // Release: pairs with the Acquire above.
    f.lock.store(0, Ordering::Release);
}

/// One store's refresh; on failure records the error in the entry and lets go of the
/// parent's description anyway (see [`abandon`]).
fn refresh_entry(e: &Entry) {
    // A descriptor a refresh in the parent had opened when this process forked.
    // Relaxed: published by the Acquire load of LIVE, or stored by this thread.
    let stale = e.pending.swap(-1, Ordering::Relaxed);
    if stale >= 0 {
        // SAFETY: a descriptor only that refresh used, copied into this process.
        unsafe { libc::close(stale) };
    }
    let fd = e.fd.load(Ordering::Relaxed);
    let (base, len) = (
        e.base.load(Ordering::Relaxed),
        e.len.load(Ordering::Relaxed),
    );
    let new = match reopen(e, fd) {
        Ok(new) => new,
        Err(errno) => return abandon(e, fd, base, len, errno),
    };
    e.pending.store(new, Ordering::Relaxed);
    // The new description is a user of the file as its parent's is (the futex kind),
    // from before the old one goes (`dup3` below): there is no moment at which an opener
    // could find the file unused and reset its lock words. (A raw system call,
    // async-signal-safe.)
    if e.users.load(Ordering::Relaxed) != 0
        && let Err(x) = super::lock::hold_users_shared(new)
    {
        // SAFETY: `new` was opened above and is used by nothing else.
        unsafe { libc::close(new) };
        e.pending.store(-1, Ordering::Relaxed);
        return abandon(e, fd, base, len, x.raw_os_error().unwrap_or(libc::ENOLCK));
    }
    // SAFETY: `base`/`len` are the store's live mapping of this very file (the
    // registration's contract), replaced by a mapping of the same file at the same
    // address and length: every view into it stays valid.
    let p = unsafe {
        libc::mmap(
            base,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            new,
            0,
        )
    };
    let err = if p == base {
        // SAFETY: `new` was opened above and `fd` is the store's own; `dup3` closes the
        // old description's descriptor and puts the new one in its place.
        if unsafe { libc::dup3(new, fd, libc::O_CLOEXEC) } == fd {
            0
        } else {
            errno()
        }
    } else {
        errno()
    };
    // SAFETY: `new` was opened above; `fd` refers to its description now (or the store
    // is abandoned below), so this copy is no longer needed.
    unsafe { libc::close(new) };
    e.pending.store(-1, Ordering::Relaxed);
    if err != 0 {
        return abandon(e, fd, base, len, err);
    }
    let (locks, stride, n) = (
        e.locks.load(Ordering::Relaxed),
        e.stride.load(Ordering::Relaxed),
        e.nlocks.load(Ordering::Relaxed),
    );
    for i in 0..n {
        // SAFETY: the registration's contract: `n` lock words `stride` bytes apart,
        // reached from a pointer to the whole array.
        let word = unsafe { &*locks.cast::<u8>().add(i * stride).cast::<AtomicU32>() };
        // Relaxed: this thread is the only one in the store (see the module docs).
        word.store(0, Ordering::Relaxed);
    }
    // A grandchild whose parent's refresh failed starts sound again.
    e.broken.store(0, Ordering::Relaxed);
}

/// A store whose refresh failed: marked broken (its calls fail in this process), and
/// made to hold nothing of the parent's description, so that a lock the parent dies
/// holding is released. The mapping becomes anonymous zero pages at the same address
/// (no file behind it, so the store's views stay valid memory; reads check `broken`
/// first), and the descriptor number is pointed at the store's directory (`dup3`, which
/// needs no free descriptor), on which every lock fails.
fn abandon(e: &Entry, fd: RawFd, base: *mut libc::c_void, len: usize, errno: libc::c_int) {
    e.broken.store(errno.max(1), Ordering::Relaxed);
    // SAFETY: `base`/`len` are the store's mapping (the registration's contract), which
    // nothing reads as the file any more: the store's reads fail on `broken`.
    unsafe {
        libc::mmap(
            base,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    let dirfd = e.dirfd.load(Ordering::Relaxed);
    // SAFETY: both are the store's descriptors; `fd` stays open (now on the directory),
    // so the store closes it exactly once, as before.
    unsafe { libc::dup3(dirfd, fd, libc::O_CLOEXEC) };
}

/// A new open file description of the store's file, opened read-write.
fn reopen(e: &Entry, fd: RawFd) -> Result<RawFd, libc::c_int> {
    // "/proc/self/fd/" and up to 10 digits, NUL-terminated, without allocating.
    let mut path = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut k) = (fd.unsigned_abs(), 0);
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..k].iter().rev().enumerate() {
        path[prefix.len() + i] = *d;
    }
    // Not O_NOFOLLOW: the magic link is what leads to the open file.
    // SAFETY: `path` is NUL-terminated; open has no other preconditions.
    let new = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
    if new >= 0 {
        return Ok(new);
    }
    // No /proc: by name in the store's directory, if it is still the same file.
    let dirfd = e.dirfd.load(Ordering::Relaxed);
    let name = e.name.load(Ordering::Relaxed);
    let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is the store's NUL-terminated file name and `dirfd` its directory
    // (the registration's contract).
    let new = unsafe { libc::openat(dirfd, name, flags) };
    if new < 0 {
        return Err(errno());
    }
    if same_file(fd, new) {
        Ok(new)
    } else {
        // SAFETY: opened above, not the store's.
        unsafe { libc::close(new) };
        Err(libc::ESTALE)
    }
}

fn same_file(a: RawFd, b: RawFd) -> bool {
    // SAFETY: `stat` is plain old data; all-zero is valid; both out pointers are valid.
    unsafe {
        let (mut sa, mut sb): (libc::stat, libc::stat) = (std::mem::zeroed(), std::mem::zeroed());
        libc::fstat(a, &mut sa) == 0
            && libc::fstat(b, &mut sb) == 0
            && sa.st_dev == sb.st_dev
            && sa.st_ino == sb.st_ino
    }
}

fn errno() -> libc::c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (audit #10): a failing `pthread_atfork` was only a `debug_assert`.
    #[test]
    fn a_failed_install_is_an_error() {
        let e = installed(libc::ENOMEM).unwrap_err();
        assert!(e.to_string().contains("pthread_atfork"), "{e}");
        assert!(installed(0).is_ok());
        install().expect("installs on this host");
    }

    #[test]
    fn a_store_file_is_reopened_as_a_new_description_of_the_same_inode() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        let e = Entry::new();
        let new = reopen(&e, f.as_raw_fd()).expect("through /proc/self/fd");
        assert_ne!(new, f.as_raw_fd());
        assert!(same_file(new, f.as_raw_fd()));
        // SAFETY: opened above, owned by this test.
        unsafe { libc::close(new) };
        // Without /proc (a descriptor number /proc has no link for): by name.
        let d = std::fs::File::open(dir.path()).unwrap();
        let name = std::ffi::CString::new("f").unwrap();
        e.dirfd.store(d.as_raw_fd(), Ordering::Relaxed);
        e.name.store(name.as_ptr().cast_mut(), Ordering::Relaxed);
        assert_eq!(
            reopen(&e, 1 << 30),
            Err(libc::ESTALE),
            "not the same file as no file"
        );
    }

    #[test]
    fn this_kernel_wipes_the_page_on_fork() {
        install().unwrap();
        assert_eq!(WIPED.load(Ordering::Relaxed), 1, "MADV_WIPEONFORK refused");
        assert!(!epoch().unwrap().forked());
    }
}
