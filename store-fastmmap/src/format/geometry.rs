//! Page geometry: where each page and each of its areas lies, and what fits.

use super::align8;
use super::header::HEADER_LEN;
use super::page::PAGE_HEADER_LEN;
use super::record::{RECORD_HEADER_LEN, VLEN_MAX};
use crate::LockKind;
use crate::os::robust::MUTEX_STRIDE;

/// Smallest page size.
pub(crate) const MIN_PAGE_SIZE: u32 = 4 << 10;
/// Largest page size (a record's value length is 24 bits).
pub(crate) const MAX_PAGE_SIZE: u32 = 16 << 20;
/// Most pages a file may have: 2^20 (4 GiB of 4 KiB pages, 16 TiB of 16 MiB ones). A
/// process keeps 64 bytes of lock and counters per page, so a header claiming more (a
/// crafted file over a sparse one of matching length) is refused before any of it is
/// allocated.
pub(crate) const MAX_PAGES: u32 = 1 << 20;
/// One slot per this many bytes of page.
pub(crate) const BYTES_PER_SLOT: u32 = 128;

/// The shape of a file: `num_pages` pages of `page_size` bytes after the header, and for
/// the futex lock kind a lock table of one [`MUTEX_STRIDE`] line per page after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) page_size: u32,
    pub(crate) num_pages: u32,
    pub(crate) locks: LockKind,
}

impl Geometry {
    /// Slots per page.
    #[inline]
    pub(crate) fn nslots(&self) -> usize {
        (self.page_size / BYTES_PER_SLOT) as usize
    }

    /// Most records a page holds (7/8 of its slots, so probe chains stay short).
    #[inline]
    pub(crate) fn max_count(&self) -> usize {
        self.nslots() * 7 / 8
    }

    /// Offset of the slot table in a page.
    #[inline]
    pub(crate) fn slots_offset(&self) -> usize {
        PAGE_HEADER_LEN
    }

    /// Offset of the LRU stamp array in a page.
    #[inline]
    pub(crate) fn stamps_offset(&self) -> usize {
        PAGE_HEADER_LEN + 8 * self.nslots()
    }

    /// Offset of the data area in a page.
    #[inline]
    pub(crate) fn data_start(&self) -> usize {
        align8(self.stamps_offset() + 4 * self.nslots())
    }

    /// Bytes of the data area.
    #[inline]
    pub(crate) fn data_len(&self) -> usize {
        self.page_size as usize - self.data_start()
    }

    /// File offset of page `i`.
    #[inline]
    pub(crate) fn page_offset(&self, i: u32) -> u64 {
        HEADER_LEN as u64 + u64::from(i) * u64::from(self.page_size)
    }

    /// File offset of the lock table (the end of the pages; the futex kind only).
    #[inline]
    pub(crate) fn lock_table_offset(&self) -> u64 {
        self.page_offset(self.num_pages)
    }

    /// File offset of page `i`'s mutex in the lock table (the futex kind only).
    #[inline]
    pub(crate) fn mutex_offset(&self, i: u32) -> u64 {
        self.lock_table_offset() + u64::from(i) * MUTEX_STRIDE as u64
    }

    /// Length of the whole file.
    pub(crate) fn file_len(&self) -> u64 {
        match self.locks {
            LockKind::Fcntl => self.lock_table_offset(),
            LockKind::Futex => self.mutex_offset(self.num_pages),
        }
    }

    /// The largest value stored with a key of `key_len` bytes:
    /// `min(2^24 - 1, data_len - 24 - align8(key_len))` rounded down to 8.
    pub(crate) fn max_value_len(&self, key_len: usize) -> usize {
        let room = self
            .data_len()
            .saturating_sub(RECORD_HEADER_LEN + align8(key_len));
        (room & !7).min(VLEN_MAX)
    }

    /// Checks a geometry read from a file or built from options.
    pub(crate) fn check(&self) -> Result<(), String> {
        let ps = self.page_size;
        if !ps.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) {
            return Err(format!(
                "page_size {ps} must be a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}"
            ));
        }
        if self.num_pages == 0 {
            return Err("num_pages must be at least 1".into());
        }
        if self.num_pages > MAX_PAGES {
            return Err(format!(
                "{} pages are more than the {MAX_PAGES} a file may have; use larger pages",
                self.num_pages
            ));
        }
        if self.file_len() > (isize::MAX as u64) / 2 {
            return Err(format!(
                "{} pages of {ps} bytes do not fit in memory",
                self.num_pages
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_do_not_overlap_and_are_aligned() {
        for shift in 12..=24 {
            let g = Geometry {
                page_size: 1 << shift,
                num_pages: 3,
                locks: crate::LockKind::Fcntl,
            };
            g.check().unwrap();
            assert_eq!(g.slots_offset() % 8, 0);
            assert_eq!(g.stamps_offset(), g.slots_offset() + 8 * g.nslots());
            assert!(g.data_start() >= g.stamps_offset() + 4 * g.nslots());
            assert_eq!(g.data_start() % 8, 0);
            assert!(g.data_len() > g.page_size as usize / 2);
            assert_eq!(g.page_offset(1) - g.page_offset(0), 1 << shift);
        }
    }

    #[test]
    fn max_value_len_is_a_function_of_page_size() {
        let g = Geometry {
            page_size: 256 << 10,
            num_pages: 1,
            locks: crate::LockKind::Fcntl,
        };
        // data area = page_size * 29/32 - 64.
        assert_eq!(g.data_len(), (256 << 10) * 29 / 32 - 64);
        assert_eq!(g.max_value_len(250), (g.data_len() - 24 - 256) & !7);
    }

    #[test]
    fn bad_geometries_are_refused() {
        for (ps, n) in [
            (3000, 1),
            (2048, 1),
            (1 << 25, 1),
            (4096, 0),
            (4096, MAX_PAGES + 1),
        ] {
            let g = Geometry {
                page_size: ps,
                num_pages: n,
                locks: crate::LockKind::Fcntl,
            };
            assert!(g.check().is_err(), "{ps} x {n}");
        }
    }
}
