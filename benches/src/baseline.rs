//! The floor for a write: a bare fcntl OFD lock and unlock of one byte range.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

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
    /// releases it, with the system calls store-fastmmap's page locks make
    /// ([`store_fastmmap::bench::fcntl_lock_unlock`]: the raw system call on 64-bit
    /// Linux, which spares a threaded process glibc's cancellation wrapper).
    ///
    /// # Errors
    /// When either fcntl call fails.
    pub fn lock_unlock(&self, offset: u64) -> io::Result<()> {
        store_fastmmap::bench::fcntl_lock_unlock(self.file.as_fd(), offset, 1)
    }

    /// Operation `i` of a measurement: a lock+unlock pair on one of 64 ranges in turn.
    ///
    /// # Errors
    /// When either fcntl call fails.
    pub fn op(&self, i: u64) -> store_api::Result<bool> {
        self.lock_unlock(i % 64)
            .map(|()| true)
            .map_err(|e| store_api::Error::io("fcntl", e))
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
