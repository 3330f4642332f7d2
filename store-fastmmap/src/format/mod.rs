//! The file format (documented in `docs/FORMAT.md`): the file header, the page layout,
//! the record layout, and the bounds-checked atomic views through which every byte of the
//! mapping is read and written.

pub(crate) mod geometry;
pub(crate) mod header;
pub(crate) mod page;
pub(crate) mod record;
pub(crate) mod region;

/// Rounds `n` up to a multiple of 8.
#[inline]
pub(crate) const fn align8(n: usize) -> usize {
    (n + 7) & !7
}
