//! The futex lock kind's system side: glibc's (or musl's) robust, process-shared
//! pthread mutex in the file's lock table, and the facts about this process that decide
//! whether such a lock can be trusted (the boot id, the PID namespace).
//!
//! A robust mutex costs no system call while uncontended (a compare-and-swap of its
//! word, which holds the owner's thread id) and a futex wait when contended. The C
//! library links every robust mutex a thread holds into that thread's robust list,
//! which it registered with the kernel (`set_robust_list`); when the thread dies, for
//! whatever reason, the kernel marks each such word `FUTEX_OWNER_DIED` and wakes a
//! waiter, whose lock then returns `EOWNERDEAD`: the kernel, not a timeout, decides that
//! the owner is gone.
//!
//! What the kernel cannot decide, and this module lets the caller check:
//! - a machine that died with the lock held ran no exit: the word keeps a dead thread's
//!   id forever. The file records the boot id ([`boot_id`]); a new one resets the table.
//! - thread ids are per PID namespace: a thread of another namespace with the same id as
//!   the owner would believe it owns the lock. The file records the PID namespace
//!   ([`pid_namespace`]); another one is refused while the file is in use.
//!
//! **Trust.** The mutexes are in memory other processes write, and this module never makes
//! a reference to them: it hands raw pointers to the C library, whose mutex code is
//! written for shared memory. But glibc keeps more than the lock word there: each held
//! robust mutex carries the links of its owner's robust list (pointers into the owner's
//! memory), which `pthread_mutex_unlock` follows and writes through, and a `__kind` word it
//! obeys. Bytes of a held mutex overwritten by another process (a stray write, a hostile
//! one) can therefore make the owner's unlock write to an address those bytes name, abort
//! in a glibc assertion, or lose wake-ups: the futex kind trusts every process that can
//! write the file, as LMDB's lock file does. `open` lets only the file's owner write it
//! (group or other write permission is refused, see `os/file.rs`), and the first opener
//! re-initialises every mutex, so this is about the owner's own processes. A corrupted
//! lock word that is not held makes a lock fail or wait (`write_lock_timeout`). The fcntl
//! kind keeps no such state in the file.
//!
//! Supported with glibc only (`target_env = "gnu"`): [`thread_ids_sound`] reads glibc's
//! lock word layout, and musl registers a thread's robust list lazily; elsewhere `open`
//! refuses the kind.
//!
//! libc, not rustix: rustix has no pthread calls.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// Whether this build can use the futex kind: Linux with glibc.
pub(crate) const SUPPORTED: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Bytes of the lock table each page's mutex occupies: a cache line, so that two pages'
/// mutexes never share one.
pub(crate) const MUTEX_STRIDE: usize = 64;

#[cfg(target_os = "linux")]
const _: () = assert!(
    std::mem::size_of::<libc::pthread_mutex_t>() <= MUTEX_STRIDE
        && MUTEX_STRIDE.is_multiple_of(std::mem::align_of::<libc::pthread_mutex_t>())
);

/// How taking a robust mutex went (an `Ok` of [`lock`], [`try_lock`], [`lock_until`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Held; its previous owner released it.
    Clean,
    /// Held, but its previous owner died holding it (`EOWNERDEAD`): what it guards may be
    /// half-written. Repair it, then call [`make_consistent`] before [`unlock`].
    OwnerDied,
    /// Not taken: another thread holds it ([`try_lock`]), or the time ran out
    /// ([`lock_until`]).
    Busy,
}

/// A mutex of the lock table: a raw pointer into the mapping, aligned and inside it
/// (checked by the caller that made it, `format::Region::mutex_at`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mutex(*mut u8);

impl Mutex {
    /// The mutex at `p`.
    ///
    /// # Safety
    /// `p` is aligned for `pthread_mutex_t`, and `MUTEX_STRIDE` bytes from it lie inside a
    /// shared mapping that outlives every use of the returned value.
    pub(crate) unsafe fn at(p: *mut u8) -> Mutex {
        Mutex(p)
    }

    #[cfg(target_os = "linux")]
    fn raw(self) -> *mut libc::pthread_mutex_t {
        self.0.cast()
    }
}

#[cfg(target_os = "linux")]
fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(rc).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(rc)),
        ))
    }
}

/// Writes a new, unlocked robust process-shared error-checking mutex at `m`. Only for a
/// table nobody else uses (a new file, or one whose every user is gone).
#[cfg(target_os = "linux")]
pub(crate) fn init(m: Mutex) -> io::Result<()> {
    // SAFETY: `attr` is plain data initialised by `pthread_mutexattr_init` before use
    // and destroyed after; `m` is valid for a `pthread_mutex_t` (see `Mutex::at`), and
    // the caller's contract is that no other thread or process uses it meanwhile.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        check(libc::pthread_mutexattr_init(&mut attr), "pthread_mutexattr_init")?;
        let r = (|| {
            check(
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                "pthread_mutexattr_setpshared",
            )?;
            check(
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                "pthread_mutexattr_setrobust",
            )?;
            // Error-checking: a thread that would relock a mutex it holds (which only a
            // thread id of another PID namespace can make it believe) gets EDEADLK
            // instead of hanging.
            check(
                libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK),
                "pthread_mutexattr_settype",
            )?;
            std::ptr::write_bytes(m.0, 0, MUTEX_STRIDE);
            check(libc::pthread_mutex_init(m.raw(), &attr), "pthread_mutex_init")
        })();
        libc::pthread_mutexattr_destroy(&mut attr);
        r
    }
}

#[cfg(target_os = "linux")]
fn taken(rc: libc::c_int, what: &str) -> io::Result<Taken> {
    match rc {
        0 => Ok(Taken::Clean),
        libc::EOWNERDEAD => Ok(Taken::OwnerDied),
        libc::EBUSY | libc::ETIMEDOUT => Ok(Taken::Busy),
        libc::ENOTRECOVERABLE => Err(io::Error::other(format!(
            "{what}: the page's robust lock is unrecoverable (a process that took it over \
             from a dead owner released it without repairing the page)"
        ))),
        libc::EDEADLK => Err(io::Error::new(
            io::ErrorKind::Deadlock,
            format!(
                "{what}: the page's robust lock names this thread as its owner: this thread \
                 would wait for a lock it holds (an init_file or a store call from inside an \
                 update closure, deeper than the store tracks), or a process of another PID \
                 namespace holds it under the same thread id"
            ),
        )),
        e => Err(io::Error::new(
            io::Error::from_raw_os_error(e).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(e)),
        )),
    }
}

/// Takes `m`, waiting as long as it takes (a futex wait while another thread holds it).
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn lock(m: Mutex) -> io::Result<Taken> {
    // SAFETY: `m` points at a process-shared mutex in a live shared mapping (`Mutex::at`);
    // the C library's mutex code is written for memory other processes write.
    let rc = unsafe { libc::pthread_mutex_lock(m.raw()) };
    taken(rc, "pthread_mutex_lock")
}

/// Takes `m` if no other thread holds it ([`Taken::Busy`] if one does).
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn try_lock(m: Mutex) -> io::Result<Taken> {
    // SAFETY: as in `lock`.
    let rc = unsafe { libc::pthread_mutex_trylock(m.raw()) };
    taken(rc, "pthread_mutex_trylock")
}

/// Takes `m`, waiting at most `limit` ([`Taken::Busy`] when it runs out): the first try
/// costs no system call; then a futex wait with a deadline.
#[cfg(target_os = "linux")]
pub(crate) fn lock_within(m: Mutex, limit: Duration) -> io::Result<Taken> {
    let first = try_lock(m)?;
    if first != Taken::Busy {
        return Ok(first);
    }
    // `pthread_mutex_timedlock` takes a CLOCK_REALTIME deadline (a clock step moves it).
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let total = u64::try_from(now.tv_nsec).unwrap_or(0) + u64::from(limit.subsec_nanos());
    let secs = limit
        .as_secs()
        .saturating_add(total / 1_000_000_000)
        .min(i64::MAX as u64 / 2);
    let deadline = libc::timespec {
        tv_sec: now.tv_sec.saturating_add(secs as libc::time_t),
        tv_nsec: (total % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: as in `lock`; `deadline` outlives the call.
        let rc = unsafe { libc::pthread_mutex_timedlock(m.raw(), &deadline) };
        if rc != libc::EINTR {
            return taken(rc, "pthread_mutex_timedlock");
        }
    }
}

/// Marks `m`, taken with [`Taken::OwnerDied`], consistent again (what it guards is
/// repaired).
#[cfg(target_os = "linux")]
pub(crate) fn make_consistent(m: Mutex) -> io::Result<()> {
    // SAFETY: as in `lock`; the calling thread holds `m`.
    check(
        unsafe { libc::pthread_mutex_consistent(m.raw()) },
        "pthread_mutex_consistent",
    )
}

/// Releases `m`, which the calling thread holds. Fails only if it does not (`EPERM`),
/// which the caller treats as a broken lock.
#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn unlock(m: Mutex) -> io::Result<()> {
    // SAFETY: as in `lock`.
    check(unsafe { libc::pthread_mutex_unlock(m.raw()) }, "pthread_mutex_unlock")
}

/// Checks that the calling thread's C library can own robust mutexes: the kernel knows
/// its robust list (else a death while holding one would go unnoticed), and the thread
/// id it writes into a mutex it takes is the kernel's id of this thread. Both fail in a
/// process made by a raw `clone` system call (no C library fork bookkeeping ran): the
/// kernel gave it no robust list, and its C library still believes it is its parent's
/// thread, so it would take its parent's locks for its own. Once per process (and per
/// fork) is enough: threads the C library creates are set up right.
#[cfg(target_os = "linux")]
pub(crate) fn thread_ids_sound() -> io::Result<()> {
    let mut head: *mut libc::c_void = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: get_robust_list writes the calling thread's head pointer and its length
    // into the two locals (pid 0: the calling thread).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0 as libc::c_long,
            std::ptr::from_mut(&mut head),
            std::ptr::from_mut(&mut len),
        )
    };
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this process cannot own robust locks: {why} (a process made by a raw \
                 clone system call, without its C library's fork; use fork(), or the fcntl \
                 lock kind)"
            ),
        ))
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if head.is_null() {
        return refuse("the kernel knows no robust list of this thread");
    }
    #[repr(align(64))]
    struct Private([u8; MUTEX_STRIDE]);
    let mut private = Private([0; MUTEX_STRIDE]);
    // SAFETY: a local, aligned, `MUTEX_STRIDE` bytes, used only by this thread here.
    let m = unsafe { Mutex::at(private.0.as_mut_ptr()) };
    init(m)?;
    let t = lock(m)?;
    // SAFETY: the mutex's first word is its lock word (glibc's `__lock`, musl's
    // `_m_lock`), which for a robust mutex holds the owner's thread id in its low 30
    // bits; only this thread touches this private mutex.
    let word = unsafe { std::ptr::read_volatile(private.0.as_ptr().cast::<u32>()) };
    unlock(m)?;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    if t != Taken::Clean || word & 0x3fff_ffff != tid {
        return refuse(&format!(
            "its C library names this thread {} but the kernel {tid}",
            word & 0x3fff_ffff
        ));
    }
    Ok(())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, a UUID the kernel draws at boot),
/// as its 36 ASCII bytes.
pub(crate) fn boot_id() -> io::Result<[u8; 36]> {
    let s = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|e| {
        io::Error::new(e.kind(), format!("reading /proc/sys/kernel/random/boot_id: {e}"))
    })?;
    let s = s.trim_end();
    let mut id = [0u8; 36];
    if s.len() != 36 || !s.is_ascii() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/sys/kernel/random/boot_id holds {s:?}, not a UUID"),
        ));
    }
    id.copy_from_slice(s.as_bytes());
    Ok(id)
}

/// This process's PID namespace: the device and inode of `/proc/self/ns/pid` (what
/// `readlink` shows as `pid:[inode]`), never (0, 0).
pub(crate) fn pid_namespace() -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata("/proc/self/ns/pid").map_err(|e| {
        io::Error::new(e.kind(), format!("reading /proc/self/ns/pid: {e}"))
    })?;
    Ok((m.dev().max(1), m.ino()))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A mutex in a private heap buffer standing in for the table.
    #[repr(align(64))]
    struct Slot([u8; MUTEX_STRIDE]);

    #[test]
    fn a_robust_mutex_locks_unlocks_and_reports_busy() {
        let mut s = Box::new(Slot([0; MUTEX_STRIDE]));
        // SAFETY: aligned, `MUTEX_STRIDE` bytes, outlives the test's uses.
        let m = unsafe { Mutex::at(s.0.as_mut_ptr()) };
        init(m).unwrap();
        assert_eq!(lock(m).unwrap(), Taken::Clean);
        assert_eq!(
            lock(m).unwrap_err().kind(),
            io::ErrorKind::Deadlock,
            "error-checking"
        );
        let busy = std::thread::scope(|t| {
            let m2 = m.0 as usize;
            t.spawn(move || {
                // SAFETY: as above.
                let m = unsafe { Mutex::at(m2 as *mut u8) };
                (
                    try_lock(m).unwrap(),
                    lock_within(m, Duration::from_millis(30)).unwrap(),
                )
            })
            .join()
            .unwrap()
        });
        assert_eq!(busy, (Taken::Busy, Taken::Busy));
        unlock(m).unwrap();
        assert_eq!(try_lock(m).unwrap(), Taken::Clean);
        unlock(m).unwrap();
    }

    #[test]
    fn a_thread_that_dies_holding_it_hands_over_owner_died() {
        let mut s = Box::new(Slot([0; MUTEX_STRIDE]));
        // SAFETY: as above.
        let m = unsafe { Mutex::at(s.0.as_mut_ptr()) };
        init(m).unwrap();
        let p = m.0 as usize;
        std::thread::spawn(move || {
            // SAFETY: as above.
            let m = unsafe { Mutex::at(p as *mut u8) };
            assert_eq!(lock(m).unwrap(), Taken::Clean);
            // Exits holding it.
        })
        .join()
        .unwrap();
        assert_eq!(lock(m).unwrap(), Taken::OwnerDied);
        make_consistent(m).unwrap();
        unlock(m).unwrap();
        assert_eq!(lock(m).unwrap(), Taken::Clean);
        unlock(m).unwrap();
    }

    #[test]
    fn this_process_can_own_robust_locks() {
        thread_ids_sound().unwrap();
        std::thread::spawn(|| thread_ids_sound().unwrap()).join().unwrap();
    }

    #[test]
    fn boot_id_and_namespace_are_read() {
        let id = boot_id().unwrap();
        assert_eq!(id[8], b'-');
        assert_eq!(boot_id().unwrap(), id);
        let ns = pid_namespace().unwrap();
        assert_ne!(ns.1, 0);
    }
}

/// Elsewhere than Linux the futex kind is refused when a store is opened, so none of
/// these is reached; they exist so that the dispatch compiles.
#[cfg(not(target_os = "linux"))]
mod elsewhere {
    use super::{Mutex, Taken};
    use std::io;
    use std::time::Duration;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the futex lock kind is Linux only",
        )
    }
    pub(crate) fn init(_: Mutex) -> io::Result<()> {
        Err(unsupported())
    }
    pub(crate) fn lock(_: Mutex) -> io::Result<Taken> {
        Err(unsupported())
    }
    pub(crate) fn try_lock(_: Mutex) -> io::Result<Taken> {
        Err(unsupported())
    }
    pub(crate) fn lock_within(_: Mutex, _: Duration) -> io::Result<Taken> {
        Err(unsupported())
    }
    pub(crate) fn make_consistent(_: Mutex) -> io::Result<()> {
        Err(unsupported())
    }
    pub(crate) fn unlock(_: Mutex) -> io::Result<()> {
        Err(unsupported())
    }
    pub(crate) fn thread_ids_sound() -> io::Result<()> {
        Err(unsupported())
    }
}
#[cfg(not(target_os = "linux"))]
pub(crate) use elsewhere::*;
