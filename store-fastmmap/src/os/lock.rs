//! Byte-range write locks with `fcntl`: open-file-description locks (`F_OFD_SETLK(W)`).
//! Linux only: elsewhere the code falls back to classic POSIX record locks so that it
//! compiles, but those belong to the process (two stores on one file in one process do
//! not exclude each other, and any `close` of the file drops all the process's locks),
//! which breaks the protocol in FORMAT.md; that is not supported.
//!
//! libc, not rustix: rustix has no call for OFD byte-range locks (its `fcntl_lock` locks
//! the whole file).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

#[cfg(target_os = "linux")]
const SETLKW: libc::c_int = libc::F_OFD_SETLKW;
#[cfg(not(target_os = "linux"))]
const SETLKW: libc::c_int = libc::F_SETLKW;
#[cfg(target_os = "linux")]
const SETLK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(not(target_os = "linux"))]
const SETLK: libc::c_int = libc::F_SETLK;

fn flock(kind: libc::c_short, start: u64, len: u64) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is valid (and l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    fl.l_pid = 0;
    fl
}

fn setlk(fd: RawFd, kind: libc::c_short, start: u64, len: u64) -> io::Result<()> {
    setlk_cmd(fd, SETLKW, kind, start, len)
}

fn setlk_cmd(
    fd: RawFd,
    cmd: libc::c_int,
    kind: libc::c_short,
    start: u64,
    len: u64,
) -> io::Result<()> {
    let fl = flock(kind, start, len);
    loop {
        let rc = fcntl_flock(fd, cmd, &fl);
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `fcntl(fd, cmd, fl)` for a locking command: -1 with `errno` set on failure.
///
/// On 64-bit Linux, the system call itself rather than glibc's `fcntl`, which runs
/// `F_OFD_SETLKW` through its thread-cancellation wrapper: in a process that has ever
/// started a second thread (every threaded server) that is two more atomic
/// read-modify-writes per call, about 80 ns per lock and unlock on the machine of
/// `BENCHMARKS.md` (`--example fcntl_cost`). This engine never uses thread cancellation.
#[inline]
fn fcntl_flock(fd: RawFd, cmd: libc::c_int, fl: &libc::flock) -> libc::c_long {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        // SAFETY: `fd` is an open descriptor of the caller and `fl` a valid `flock` that
        // outlives the call; on 64-bit Linux `libc::flock` is the kernel's `struct flock`
        // (64-bit offsets), which is what `SYS_fcntl` reads for the locking commands.
        // Every argument is passed as a full register.
        unsafe {
            libc::syscall(
                libc::SYS_fcntl,
                libc::c_long::from(fd),
                libc::c_long::from(cmd),
                std::ptr::from_ref(fl),
            )
        }
    }
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    {
        // SAFETY: `fd` is an open descriptor of the caller; `fl` is a valid flock.
        libc::c_long::from(unsafe { libc::fcntl(fd, cmd, fl) })
    }
}

/// Blocks until this description holds a write lock on `[start, start + len)`.
pub(crate) fn lock_range(fd: RawFd, start: u64, len: u64) -> io::Result<()> {
    setlk(fd, libc::F_WRLCK as libc::c_short, start, len)
}

/// Takes a write lock on `[start, start + len)` if no other description holds a
/// conflicting one; `Ok(false)` if one does.
pub(crate) fn try_lock_range(fd: RawFd, start: u64, len: u64) -> io::Result<bool> {
    match setlk_cmd(fd, SETLK, libc::F_WRLCK as libc::c_short, start, len) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the lock on `[start, start + len)`, with the non-waiting command (an unlock
/// never waits).
pub(crate) fn unlock_range(fd: RawFd, start: u64, len: u64) -> io::Result<()> {
    setlk_cmd(fd, SETLK, libc::F_UNLCK as libc::c_short, start, len)
}

/// The users byte: every store of a futex-kind file holds a shared (read) lock on it for
/// as long as it is open (a forked child's description too), so an opener that gets a
/// write lock on it knows nobody else has the file open. Far beyond any file's end, so
/// that no page or header lock covers it.
pub(crate) const USERS_BYTE: u64 = 1 << 62;

/// Takes a write lock on the users byte if no other description holds a lock on it:
/// `Ok(true)` if this description is the file's only user.
pub(crate) fn try_users_alone(fd: RawFd) -> io::Result<bool> {
    try_lock_range(fd, USERS_BYTE, 1)
}

/// Holds a shared lock on the users byte (turning this description's write lock on it,
/// if any, into a shared one), waiting while an opener holds its brief write lock.
/// Async-signal-safe (a forked child's refresh calls it).
pub(crate) fn hold_users_shared(fd: RawFd) -> io::Result<()> {
    setlk(fd, libc::F_RDLCK as libc::c_short, USERS_BYTE, 1)
}

/// Lets go of this description's lock on the users byte.
pub(crate) fn release_users(fd: RawFd) {
    release(fd, USERS_BYTE, 1);
}

/// A write lock on a byte range of a file, released (as [`release`] does) when dropped.
/// It borrows the descriptor, so it can never outlive it and unlock a closed or reused
/// one. (The page guard releases by hand instead: in a child forked while it was held it
/// must not release at all.)
#[derive(Debug)]
pub(crate) struct RangeGuard<'f> {
    fd: BorrowedFd<'f>,
    start: u64,
    len: u64,
}

impl<'f> RangeGuard<'f> {
    /// Waits for a write lock on `range` of `fd`. An empty range is refused: fcntl reads
    /// an `l_len` of 0 as "to the end of the file, however long it grows", which would
    /// also cover the users byte (`USERS_BYTE`) every futex-kind store holds.
    pub(crate) fn lock(fd: BorrowedFd<'f>, range: std::ops::Range<u64>) -> io::Result<Self> {
        if range.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty byte range to lock",
            ));
        }
        let len = range.end - range.start;
        lock_range(fd.as_raw_fd(), range.start, len)?;
        Ok(RangeGuard {
            fd,
            start: range.start,
            len,
        })
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        release(self.fd.as_raw_fd(), self.start, self.len);
    }
}

/// How long [`release`] retries a transient unlock failure before it gives up.
const RELEASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Unlock attempts that failed (and were retried, or gave up), in this process.
static RELEASE_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Releases a lock this description holds on `[start, start + len)`, and never leaves it
/// held: a transient failure (`ENOLCK`: unlocking the middle of a range the kernel merged
/// with its neighbours, which threads of one description holding adjacent pages cause,
/// needs a new lock record, which can fail under memory pressure) is retried for up to a
/// second, and if the lock still cannot be released the process aborts. A lock nobody
/// releases hangs every writer of its range in every process for as long as this one
/// lives; a process that dies has all its locks released by the kernel.
#[inline]
pub(crate) fn release(fd: RawFd, start: u64, len: u64) {
    if unlock_range(fd, start, len).is_ok() {
        return;
    }
    release_slowly(fd, start, len);
}

#[cold]
#[inline(never)]
fn release_slowly(fd: RawFd, start: u64, len: u64) {
    release_with(
        || unlock_range(fd, start, len),
        RELEASE_PATIENCE,
        |e| {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "store-fastmmap: cannot release the fcntl lock on bytes {start}..{} of \
                 descriptor {fd} ({e}); aborting, so that the kernel releases it instead of \
                 every writer of the range hanging",
                start + len
            );
            std::process::abort()
        },
    );
}

/// Unlock attempts that failed, in this process.
pub(crate) fn release_retries() -> u64 {
    RELEASE_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// [`release`] with the unlock and the last resort given.
fn release_with(
    mut unlock: impl FnMut() -> io::Result<()>,
    patience: std::time::Duration,
    give_up: impl FnOnce(&io::Error),
) {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_micros(10);
    loop {
        let e = match unlock() {
            Ok(()) => return,
            Err(e) => e,
        };
        // Relaxed: a statistic.
        RELEASE_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let transient = matches!(e.raw_os_error(), Some(libc::ENOLCK | libc::ENOMEM));
        if !transient || start.elapsed() >= patience {
            give_up(&e);
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Takes an exclusive lock on `[start, start + len)` of `fd` and releases it, with the
/// same system calls, made the same way, as a store's page lock (`F_OFD_SETLKW`, then
/// `F_OFD_SETLK` to unlock, through the raw system call on 64-bit Linux): the floor a
/// store's write is measured against (the `benches` crate's fcntl pair, `--example
/// quickbench` in `benches`). Not needed to use a store.
///
/// # Errors
/// The system call's error (`EINTR` is retried).
pub fn fcntl_lock_unlock(fd: std::os::fd::BorrowedFd<'_>, start: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    lock_range(fd.as_raw_fd(), start, len)?;
    unlock_range(fd.as_raw_fd(), start, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Audit 2, finding 13: an unlock error was ignored, leaving the page locked.
    #[test]
    fn a_transient_unlock_failure_is_retried() {
        let mut fails = 3;
        let before = release_retries();
        release_with(
            || {
                if fails > 0 {
                    fails -= 1;
                    Err(io::Error::from_raw_os_error(libc::ENOLCK))
                } else {
                    Ok(())
                }
            },
            Duration::from_secs(1),
            |e| panic!("gave up: {e}"),
        );
        assert_eq!(fails, 0);
        assert!(release_retries() >= before + 3);
    }

    /// An empty range would be `l_len` 0: a lock to the end of the file and beyond,
    /// over the users byte too. It is refused; a real range locks and unlocks.
    #[test]
    fn an_empty_range_is_refused_a_real_one_locks() {
        use std::os::fd::AsFd as _;
        let f = tempfile::tempfile().unwrap();
        let err = RangeGuard::lock(f.as_fd(), 4096..4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let g = RangeGuard::lock(f.as_fd(), 0..4096).unwrap();
        drop(g);
    }

    #[test]
    fn a_lasting_unlock_failure_gives_up() {
        let mut given_up = None;
        release_with(
            || Err(io::Error::from_raw_os_error(libc::ENOLCK)),
            Duration::from_millis(20),
            |e| given_up = Some(e.raw_os_error()),
        );
        assert_eq!(given_up, Some(Some(libc::ENOLCK)));
        let mut given_up = None;
        release_with(
            || Err(io::Error::from_raw_os_error(libc::EBADF)),
            Duration::from_secs(5),
            |e| given_up = Some(e.raw_os_error()),
        );
        assert_eq!(given_up, Some(Some(libc::EBADF)), "not transient: at once");
    }
}
