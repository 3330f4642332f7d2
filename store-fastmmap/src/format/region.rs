//! Bounds-checked atomic views into the shared mapping.
//!
//! Other processes write the mapping while we read it, so no `&[u8]` or `&T` of a plain
//! type may ever point into it (a racing non-atomic access is undefined behaviour, even
//! through `read_volatile`). A [`Region`] hands out `&AtomicU64`/`&AtomicU32` created with
//! `from_ptr` on aligned, in-bounds addresses, and copies bytes in and out one aligned
//! 64-bit word at a time with relaxed atomic loads and stores. Each word is accessed
//! with one width only: 8-byte words for the seqlock counter, slot table, file header and
//! record area; 4-byte words for page-header fields and LRU stamps (see FORMAT.md).
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};


/// Makes room for `align8(n)` more bytes in `buf` (the last word may carry up to 7
/// padding bytes, written to spare capacity and then cut off by `set_len`) and returns
/// where they go.
#[inline]
fn spare_words(buf: &mut Vec<u8>, n: usize) -> *mut u8 {
    buf.reserve(super::align8(n));
    buf.spare_capacity_mut().as_mut_ptr().cast::<u8>()
}

/// A window `[base, base + len)` of the mapping; `base` is 8-aligned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region<'a> {
    base: *mut u8,
    len: usize,
    _map: PhantomData<&'a crate::os::mmap::Mapping>,
}

impl<'a> Region<'a> {
    /// A region over the whole mapping. Always inlined and free of checks: it is on every
    /// read's path. The SAFETY arguments of every accessor below rely on the base being
    /// 8-aligned, which `Mapping::map` checked when it made the mapping.
    #[inline(always)]
    pub(crate) fn of(map: &'a crate::os::mmap::Mapping) -> Region<'a> {
        debug_assert!((map.base() as usize).is_multiple_of(8));
        Region {
            base: map.base(),
            len: map.len(),
            _map: PhantomData,
        }
    }

    /// A region over a heap buffer (tests).
    #[cfg(test)]
    pub(crate) fn of_words(words: &'a mut [u64]) -> Region<'a> {
        Region {
            base: words.as_mut_ptr().cast(),
            len: words.len() * 8,
            _map: PhantomData,
        }
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The sub-region `[off, off + len)`, if in bounds and 8-aligned.
    pub(crate) fn sub(&self, off: usize, len: usize) -> Option<Region<'a>> {
        if !off.is_multiple_of(8) || off.checked_add(len)? > self.len {
            return None;
        }
        Some(Region {
            // SAFETY: `off + len <= self.len`, so the result stays inside the mapping.
            base: unsafe { self.base.add(off) },
            len,
            _map: PhantomData,
        })
    }

    /// The 8-byte atomic word at `off`, if aligned and in bounds.
    #[inline]
    pub(crate) fn u64_at(&self, off: usize) -> Option<&'a AtomicU64> {
        if !off.is_multiple_of(8) || off.checked_add(8)? > self.len {
            return None;
        }
        // SAFETY: in bounds and 8-aligned (checked above, base is 8-aligned); the memory
        // lives as long as the mapping ('a); every access to it is atomic (module docs).
        Some(unsafe { AtomicU64::from_ptr(self.base.add(off).cast()) })
    }

    /// The `N` consecutive 8-byte words at `off`, loaded with relaxed atomic loads, if
    /// aligned and in bounds (one bounds check for all of them).
    #[inline]
    pub(crate) fn load_words<const N: usize>(&self, off: usize) -> Option<[u64; N]> {
        if !self.span_ok(off, 8 * N) {
            return None;
        }
        Some(std::array::from_fn(|i| self.load_unchecked(off + 8 * i)))
    }

    /// The 4-byte atomic word at `off`, if aligned and in bounds.
    #[inline]
    pub(crate) fn u32_at(&self, off: usize) -> Option<&'a AtomicU32> {
        if !off.is_multiple_of(4) || off.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: in bounds and 4-aligned (checked above); lives as long as 'a; only
        // accessed atomically.
        Some(unsafe { AtomicU32::from_ptr(self.base.add(off).cast()) })
    }

    /// The lock-table mutex at `off` (the futex kind), if its `MUTEX_STRIDE` bytes are in
    /// bounds and aligned for a `pthread_mutex_t`.
    pub(crate) fn mutex_at(&self, off: usize) -> Option<crate::os::robust::Mutex> {
        use crate::os::robust::MUTEX_STRIDE;
        if off.checked_add(MUTEX_STRIDE)? > self.len
            || !(self.base as usize)
                .wrapping_add(off)
                .is_multiple_of(MUTEX_STRIDE)
        {
            return None;
        }
        // SAFETY: in bounds and `MUTEX_STRIDE`-aligned (checked above; the stride is a
        // multiple of the mutex's alignment); the memory lives as long as the mapping
        // ('a), for which the `Mutex` is used only while the store (and so the mapping)
        // lives. No reference to it is made: the C library accesses it.
        Some(unsafe { crate::os::robust::Mutex::at(self.base.add(off)) })
    }

    /// Checks that `[off, off + align8(n))` is in bounds and `off` aligned.
    #[inline]
    fn span_ok(&self, off: usize, n: usize) -> bool {
        off.is_multiple_of(8)
            && off
                .checked_add(super::align8(n))
                .is_some_and(|end| end <= self.len)
    }

    /// Loads the aligned word at `off`; the caller has checked the span.
    #[inline]
    fn load_unchecked(&self, off: usize) -> u64 {
        // SAFETY: callers only pass offsets inside a span checked by `span_ok` (aligned,
        // in bounds); the word is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.base.add(off).cast()) }.load(Ordering::Relaxed)
    }

    /// Asks the CPU to start fetching the cache line holding byte `off` (a hint: nothing
    /// is read, so it is no access to shared memory; an offset out of bounds is ignored).
    #[inline]
    pub(crate) fn prefetch(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        if off < self.len {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = self.base.wrapping_add(off);
            // SAFETY: a prefetch never faults and does not access memory in the
            // language's sense; `p` lies inside the mapping anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().cast_const()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }

    /// Copies `dst.len()` bytes from `off` with relaxed atomic loads. False if out of bounds.
    pub(crate) fn read_bytes(&self, off: usize, dst: &mut [u8]) -> bool {
        if !self.span_ok(off, dst.len()) {
            return false;
        }
        let mut chunks = dst.chunks_exact_mut(8);
        let mut o = off;
        for c in &mut chunks {
            c.copy_from_slice(&self.load_unchecked(o).to_le_bytes());
            o += 8;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.load_unchecked(o).to_le_bytes();
            rest.copy_from_slice(&w[..rest.len()]);
        }
        true
    }

    /// Appends `n` bytes from `off` to `buf`, without zero-filling first. False (buf
    /// unchanged) if out of bounds.
    pub(crate) fn read_append(&self, off: usize, n: usize, buf: &mut Vec<u8>) -> bool {
        match self.copy_out(off, n, buf) {
            Some(c) => {
                c.fold((), |(), _| ());
                true
            }
            None => false,
        }
    }

    /// A copy of the `n` bytes at `off` to the end of `buf`, bounds-checked and with room
    /// reserved, ready to run with [`CopyOut::fold`]; `None` (buf unchanged) if out of
    /// bounds. Split in two so that a caller can check and allocate before the loop and
    /// compile only the loop with a CPU feature (the read's CRC).
    #[inline]
    pub(crate) fn copy_out<'b>(
        &self,
        off: usize,
        n: usize,
        buf: &'b mut Vec<u8>,
    ) -> Option<CopyOut<'a, 'b>> {
        if !self.span_ok(off, n) {
            return None;
        }
        let dst = spare_words(buf, n);
        Some(CopyOut {
            r: *self,
            off,
            n,
            buf,
            dst,
        })
    }

    /// Folds `f` over the words of the `n` bytes at `off` in place, as
    /// [`CopyOut::fold`] without the copy. `None` if out of bounds.
    #[inline(always)]
    pub(crate) fn fold<T>(
        &self,
        off: usize,
        n: usize,
        init: T,
        mut f: impl FnMut(T, u64) -> T,
    ) -> Option<T> {
        if !self.span_ok(off, n) {
            return None;
        }
        let whole = n & !7;
        let mut acc = init;
        for i in 0..whole / 8 {
            acc = f(acc, self.load_unchecked(off + 8 * i));
        }
        if whole < n {
            let w = self.load_unchecked(off + whole);
            acc = f(acc, w & ((1u64 << (8 * (n - whole))) - 1));
        }
        Some(acc)
    }

    /// Whether the `bytes.len()` bytes at `off` equal `bytes` (which the writer stored
    /// zero-padded to 8). `None` if out of bounds.
    pub(crate) fn eq_bytes(&self, off: usize, bytes: &[u8]) -> Option<bool> {
        if !self.span_ok(off, bytes.len()) {
            return None;
        }
        let mut chunks = bytes.chunks_exact(8);
        let mut o = off;
        for c in &mut chunks {
            if self.load_unchecked(o).to_le_bytes() != c {
                return Some(false);
            }
            o += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            if self.load_unchecked(o) != u64::from_le_bytes(w) {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Stores `src` at `off`, zero-padded to a multiple of 8, with relaxed atomic stores.
    /// False (nothing written) if out of bounds.
    pub(crate) fn write_bytes(&self, off: usize, src: &[u8]) -> bool {
        self.store_fold(off, src, (), |(), _, _| ()).is_some()
    }

    /// As [`Self::write_bytes`], folding `f` over the words as they are stored:
    /// `f(acc, offset from off, word)`, after that word is stored. `None` (nothing
    /// written) if out of bounds. Always inlined, so that a caller's fold (a CRC step per
    /// word) is compiled into the store loop.
    #[inline(always)]
    pub(crate) fn store_fold<T>(
        &self,
        off: usize,
        src: &[u8],
        init: T,
        mut f: impl FnMut(T, usize, u64) -> T,
    ) -> Option<T> {
        if !self.span_ok(off, src.len()) {
            return None;
        }
        // A copy, so that the stores cannot make the compiler reload the base.
        let r = *self;
        Some(super::fold_words(src, init, |acc, o, w| {
            r.store_unchecked(off + o, w);
            f(acc, o, w)
        }))
    }

    /// Stores `N` words at `off`; false (nothing written) if out of bounds.
    #[inline]
    pub(crate) fn store_words<const N: usize>(&self, off: usize, words: [u64; N]) -> bool {
        if !self.span_ok(off, 8 * N) {
            return false;
        }
        for (i, w) in words.into_iter().enumerate() {
            self.store_unchecked(off + 8 * i, w);
        }
        true
    }

    #[inline]
    fn store_unchecked(&self, off: usize, v: u64) {
        // SAFETY: as in `load_unchecked`: inside a span checked by `span_ok`.
        unsafe { AtomicU64::from_ptr(self.base.add(off).cast()) }.store(v, Ordering::Relaxed)
    }
}

/// A bounds-checked copy out of the mapping into a buffer's reserved spare capacity (see
/// [`Region::copy_out`]).
pub(crate) struct CopyOut<'a, 'b> {
    r: Region<'a>,
    off: usize,
    n: usize,
    buf: &'b mut Vec<u8>,
    /// `buf`'s spare capacity, `align8(n)` bytes of it reserved.
    dst: *mut u8,
}

impl CopyOut<'_, '_> {
    /// Copies the bytes, folding `f` over the words copied, the last one's padding bytes
    /// taken as zero (whatever is stored there): `f(init, w0)`, then the next word with
    /// that result, and so on. Always inlined, so that a caller's fold (a CRC step per
    /// word) is compiled into the copy loop.
    #[inline(always)]
    pub(crate) fn fold<T>(self, init: T, mut f: impl FnMut(T, u64) -> T) -> T {
        let CopyOut {
            r,
            off,
            n,
            buf,
            dst,
        } = self;
        let whole = n & !7;
        let mut acc = init;
        for i in 0..whole / 8 {
            let o = 8 * i;
            let w = r.load_unchecked(off + o);
            // SAFETY: `o + 8 <= align8(n)`, and `Region::copy_out` reserved `align8(n)`
            // bytes of spare capacity at `dst` (our own heap buffer, which does not alias
            // the mapping, and which nothing else touched since: `buf` is borrowed here);
            // the word comes from an atomic load inside the span it checked.
            unsafe { std::ptr::copy_nonoverlapping(w.to_le_bytes().as_ptr(), dst.add(o), 8) };
            acc = f(acc, w);
        }
        if whole < n {
            let w = r.load_unchecked(off + whole);
            // SAFETY: as above, `whole + 8 == align8(n)`.
            unsafe { std::ptr::copy_nonoverlapping(w.to_le_bytes().as_ptr(), dst.add(whole), 8) };
            acc = f(acc, w & ((1u64 << (8 * (n - whole))) - 1));
        }
        // SAFETY: the first `align8(n) >= n` spare bytes were initialised by the copies.
        unsafe { buf.set_len(buf.len() + n) };
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_and_misaligned_accesses_are_refused() {
        let mut words = vec![0u64; 4];
        let r = Region::of_words(&mut words);
        assert!(r.u64_at(24).is_some());
        assert!(r.u64_at(32).is_none());
        assert!(r.u64_at(4).is_none());
        assert!(r.u64_at(usize::MAX - 3).is_none());
        assert!(r.u32_at(28).is_some());
        assert!(r.u32_at(30).is_none());
        let mut b = [0u8; 9];
        assert!(!r.read_bytes(24, &mut b), "9 bytes need 16 from 24");
        assert!(r.read_bytes(16, &mut b));
        assert!(!r.write_bytes(usize::MAX - 7, b"x"));
        assert!(r.sub(8, 32).is_none());
    }

    #[test]
    fn bytes_round_trip_with_padding() {
        let mut words = vec![u64::MAX; 4];
        let r = Region::of_words(&mut words);
        assert!(r.write_bytes(8, b"hello world"));
        let mut out = Vec::new();
        assert!(r.read_append(8, 11, &mut out));
        assert_eq!(out, b"hello world");
        assert_eq!(r.eq_bytes(8, b"hello world"), Some(true));
        assert_eq!(r.eq_bytes(8, b"hello worle"), Some(false));
        // The padding was zeroed.
        let mut pad = [0u8; 16];
        assert!(r.read_bytes(8, &mut pad));
        assert_eq!(&pad[11..], &[0; 5]);
    }

    /// The folds see the stored words, the last one's padding masked, and the copy is the
    /// value, whatever the padding bytes hold.
    #[test]
    fn folds_see_every_word_with_the_padding_masked() {
        for n in 0..=40usize {
            let value: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
            let mut words = vec![0xDEAD_BEEF_F00D_CAFE_u64; 2 + n.div_ceil(8)];
            let r = Region::of_words(&mut words);
            let stored = r.store_fold(8, &value, Vec::new(), |mut v, o, w| {
                v.push((o, w));
                v
            });
            let stored = stored.unwrap();
            assert_eq!(stored.len(), n.div_ceil(8), "{n} bytes");
            // Garbage in the padding: the folds must not see it.
            if !n.is_multiple_of(8) {
                let last = r.u64_at(8 + 8 * (n / 8)).unwrap();
                last.store(last.load(Ordering::Relaxed) | (u64::MAX << (8 * (n % 8))), Ordering::Relaxed);
            }
            let want: Vec<u64> = stored.iter().map(|&(_, w)| w).collect();
            let push = |mut v: Vec<u64>, w| {
                v.push(w);
                v
            };
            assert_eq!(r.fold(8, n, Vec::new(), push).unwrap(), want, "{n} bytes");
            let mut out = vec![1, 2, 3];
            let copy = r.copy_out(8, n, &mut out).unwrap();
            assert_eq!(copy.fold(Vec::new(), push), want);
            assert_eq!(&out[3..], &value[..], "{n} bytes");
            assert!(r.fold(16 + 8 * n, n.max(1), (), |(), _| ()).is_none());
        }
    }
}
