//! The floor for a write: a bare fcntl OFD lock and unlock of one byte range.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `fcntl(fd, cmd, fl)` made as store-fastmmap makes its locking calls: the raw system
/// call on 64-bit Linux, bypassing glibc's thread-cancellation wrapper (about 80 ns per
/// pair in a process that has started a thread; `--example fcntl_cost` in store-fastmmap),
/// so that the pair is the cheapest way to make the same two calls.
fn raw_fcntl(fd: std::os::fd::RawFd, cmd: libc::c_int, fl: &libc::flock) -> libc::c_long {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        // SAFETY: the descriptor is open for the caller, and `fl` is a valid, initialised
        // `flock` that outlives the call; on 64-bit Linux `libc::flock` is the kernel's
        // `struct flock`.
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
        // SAFETY: as above.
        libc::c_long::from(unsafe { libc::fcntl(fd, cmd, fl) })
    }
}

/// An open temporary file on which [`lock_unlock`](Self::lock_unlock) takes and drops an
/// exclusive open-file-description (OFD) record lock: the two syscalls any writer sharing
/// a file across processes with fcntl locks pays, and nothing else.
#[derive(Debug)]
pub struct FcntlPair {
    file: File,
    _dir: tempfile::TempDir,
}

impl FcntlPair {
    /// Creates the temporary file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-fcntl-").tempdir()?;
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("lock"))?;
        file.set_len(1 << 16)?;
        Ok(FcntlPair { file, _dir: dir })
    }

    /// Takes an exclusive OFD lock on the 1-byte range at `offset` (waiting if needed) and
    /// releases it.
    ///
    /// # Errors
    /// When either fcntl call fails.
    pub fn lock_unlock(&self, offset: i64) -> io::Result<()> {
        self.fcntl(libc::F_OFD_SETLKW, libc::F_WRLCK, offset)?;
        self.fcntl(libc::F_OFD_SETLK, libc::F_UNLCK, offset)
    }

    /// Operation `i` of a measurement: a lock+unlock pair on one of 64 ranges in turn.
    ///
    /// # Errors
    /// When either fcntl call fails.
    pub fn op(&self, i: u64) -> store_api::Result<bool> {
        self.lock_unlock((i % 64) as i64)
            .map(|()| true)
            .map_err(|e| store_api::Error::io("fcntl", e))
    }

    fn fcntl(&self, cmd: libc::c_int, kind: libc::c_int, offset: i64) -> io::Result<()> {
        // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value and
        // `l_pid` must be 0 for OFD locks.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset;
        fl.l_len = 1;
        loop {
            let rc = raw_fcntl(self.file.as_raw_fd(), cmd, &fl);
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_unlock_pairs_work_repeatedly() {
        let p = FcntlPair::new().unwrap();
        for i in 0..100 {
            p.lock_unlock(i % 7).unwrap();
        }
    }
}
