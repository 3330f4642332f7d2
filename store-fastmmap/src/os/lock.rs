//! Byte-range write locks with `fcntl`: open-file-description locks (`F_OFD_SETLK(W)`).
//! Linux only: elsewhere the code falls back to classic POSIX record locks so that it
//! compiles, but those belong to the process (two stores on one file in one process do
//! not exclude each other, and any `close` of the file drops all the process's locks),
//! which breaks the protocol in FORMAT.md; that is not supported.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

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

/// Takes an exclusive lock on `[start, start + len)` of `fd` and releases it, with the
/// same system calls, made the same way, as a store's page lock (`F_OFD_SETLKW`, then
/// `F_OFD_SETLK` to unlock, through the raw system call on 64-bit Linux): the floor a
/// store's write is measured against (the `benches` crate's fcntl pair, `--example
/// quickbench`). Not needed to use a store.
///
/// # Errors
/// The system call's error (`EINTR` is retried).
pub fn fcntl_lock_unlock(fd: std::os::fd::BorrowedFd<'_>, start: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    lock_range(fd.as_raw_fd(), start, len)?;
    unlock_range(fd.as_raw_fd(), start, len)
}
