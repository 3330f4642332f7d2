//! The shared, writable mapping of the whole file (`memmap2::MmapRaw`: a raw pointer and
//! a length, never a slice, which is what memory other processes write needs).
//!
//! # Hazards (also listed on [`crate::FastMmapStore::open`])
//! Truncating the file under a mapping makes the next access raise `SIGBUS`; network
//! filesystems do not keep shared mappings coherent between hosts.

use std::fs::File;
use std::io;

use memmap2::{MmapOptions, MmapRaw};

/// A `MAP_SHARED` read-write mapping whose base is 8-aligned (checked when it is made).
/// Never dereferenced as `&[u8]`: every access goes through atomic views (see `format`),
/// because other processes write it concurrently.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
}

impl Mapping {
    /// Maps `len` bytes of `file` from offset 0, shared and writable.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        let raw = MmapOptions::new().len(len).map_raw(file)?;
        // `format::Region` relies on it (mmap returns page-aligned addresses).
        if !(raw.as_mut_ptr() as usize).is_multiple_of(8) {
            return Err(io::Error::other("mmap returned an address that is not 8-aligned"));
        }
        Ok(Mapping { raw })
    }

    /// Base address (page-aligned, so 8-aligned).
    #[inline]
    pub(crate) fn base(&self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}
