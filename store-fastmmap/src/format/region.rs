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

use crate::check::CheckKey;
use crate::os::crc32c::{Crc32c, WithCrc, dispatch};

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
    /// A region over the whole mapping.
    pub(crate) fn of(map: &'a crate::os::mmap::Mapping) -> Region<'a> {
        // The SAFETY arguments of every accessor below rely on this.
        assert!(
            (map.base() as usize).is_multiple_of(8),
            "the mapping base {:p} is 8-aligned (mmap returns page-aligned addresses)",
            map.base()
        );
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
        if !self.span_ok(off, n) {
            return false;
        }
        let dst = spare_words(buf, n);
        for o in (0..n).step_by(8) {
            let w = self.load_unchecked(off + o).to_le_bytes();
            // SAFETY: `o + 8 <= align8(n)`, and `spare_words` reserved `align8(n)` bytes
            // of spare capacity at `dst`; `dst` does not alias the mapping (it is our own
            // heap buffer), and the bytes come from an atomic load, not a reference into
            // shared memory.
            unsafe { std::ptr::copy_nonoverlapping(w.as_ptr(), dst.add(o), 8) };
        }
        // SAFETY: the first `n` spare bytes were initialised by the loop above.
        unsafe { buf.set_len(buf.len() + n) };
        true
    }

    /// As [`Self::read_append`], the `n` bytes being a record's value of at most
    /// `CRC_MAX` bytes: also computes the record's CRC checksum over the words copied
    /// (the last one's padding bytes taken as zero, whatever is stored there) in the same
    /// pass, one CRC step per word (see [`crate::check`]). `None` (buf unchanged) if out of
    /// bounds.
    #[inline]
    pub(crate) fn read_append_crc(
        &self,
        off: usize,
        n: usize,
        buf: &mut Vec<u8>,
        key: CheckKey,
        fields: (u64, u64, u32),
    ) -> Option<u32> {
        if !self.span_ok(off, n) {
            return None;
        }
        let dst = spare_words(buf, n);
        // `move`: the pointer itself, so the stores cannot make the compiler reload it.
        let check = self.value_crc(off, n, key, fields, move |o, w| {
            // SAFETY: `o + 8 <= align8(n)`, and `spare_words` reserved `align8(n)` bytes
            // of spare capacity at `dst` (our own heap buffer, which does not alias the
            // mapping); the word comes from an atomic load.
            unsafe { std::ptr::copy_nonoverlapping(w.to_le_bytes().as_ptr(), dst.add(o), 8) };
        });
        // SAFETY: the first `align8(n) >= n` spare bytes were initialised by the copy.
        unsafe { buf.set_len(buf.len() + n) };
        Some(check)
    }

    /// The CRC checksum of the `n`-byte record value at `off` (at most `CRC_MAX` bytes),
    /// without copying it out; `None` if out of bounds.
    pub(crate) fn value_crc_in_place(
        &self,
        off: usize,
        n: usize,
        key: CheckKey,
        fields: (u64, u64, u32),
    ) -> Option<u32> {
        self.span_ok(off, n)
            .then(|| self.value_crc(off, n, key, fields, |_, _| {}))
    }

    /// The CRC checksum of the `n`-byte record value at `off`, handing each stored word
    /// (padding included) to `sink` with its offset from `off` as it goes. The caller has
    /// checked the span (`span_ok(off, n)`): the loads do not.
    #[inline(always)]
    fn value_crc(
        &self,
        off: usize,
        n: usize,
        key: CheckKey,
        fields: (u64, u64, u32),
        sink: impl Fn(usize, u64),
    ) -> u32 {
        /// The loop, compiled with the fastest CRC step the CPU has.
        struct Run<'a, F> {
            // A copy, so that stores the sink makes cannot make the compiler reload the
            // region's base on every word.
            r: Region<'a>,
            off: usize,
            n: usize,
            key: CheckKey,
            fields: (u64, u64, u32),
            sink: F,
        }
        impl<F: Fn(usize, u64)> WithCrc for Run<'_, F> {
            type Out = u32;
            #[inline(always)]
            fn run<C: Crc32c>(self, crc: C) -> u32 {
                let Run {
                    r,
                    off,
                    n,
                    key,
                    fields,
                    sink,
                } = self;
                let whole = n & !7;
                let word = |i: usize| {
                    let w = r.load_unchecked(off + 8 * i);
                    sink(8 * i, w);
                    w
                };
                // The last word's padding bytes are not part of the checksum.
                let tail = || {
                    (whole < n).then(|| {
                        let w = r.load_unchecked(off + whole);
                        sink(whole, w);
                        w & ((1u64 << (8 * (n - whole))) - 1)
                    })
                };
                key.fold(crc, fields, whole / 8, word, tail)
            }
        }
        debug_assert!(self.span_ok(off, n), "the caller checks the span");
        dispatch(Run {
            r: *self,
            off,
            n,
            key,
            fields,
            sink,
        })
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
        if !self.span_ok(off, src.len()) {
            return false;
        }
        let mut chunks = src.chunks_exact(8);
        let mut o = off;
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.store_unchecked(o, u64::from_le_bytes(w));
            o += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.store_unchecked(o, u64::from_le_bytes(w));
        }
        true
    }

    /// Stores the value `src` at `off` as [`Self::write_bytes`] does and returns its CRC
    /// record checksum (`fields` as for [`CheckKey::check`]), computed in the same pass;
    /// `None` (nothing written) if out of bounds. In builds with failpoints, `midway` is
    /// called once, when the first `words / 2` words (rounded down, at least one) of a
    /// value of one word or more are stored; in others it is never called and its test is
    /// compiled out.
    #[inline]
    pub(crate) fn write_value_crc(
        &self,
        off: usize,
        src: &[u8],
        key: CheckKey,
        (keyhash, version, lens): (u64, u64, u32),
        midway: impl Fn(),
    ) -> Option<u32> {
        if !self.span_ok(off, src.len()) {
            return None;
        }
        let r = *self;
        let mid = (src.len().div_ceil(8) / 2).max(1) * 8;
        Some(key.check_with(keyhash, version, lens, src, move |o, w| {
            r.store_unchecked(off + o, w);
            if cfg!(any(test, feature = "failpoints")) && o + 8 == mid {
                midway();
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `midway` runs once for every value of a word or more, after exactly the first
    /// `words / 2` words (at least one) are stored and before the next; never for an
    /// empty value. The value and checksum are the same as without it.
    #[test]
    fn midway_runs_once_after_the_first_half_of_the_words() {
        let secret = [7u8; crate::format::header::SECRET_LEN];
        let key = CheckKey::new(&secret);
        for n in 0..=crate::check::CRC_MAX {
            let value: Vec<u8> = (0..n).map(|i| (i * 13 + 1) as u8).collect();
            let mut words = vec![0u64; 1 + n.div_ceil(8)];
            let r = Region::of_words(&mut words);
            let seen = std::cell::RefCell::new(Vec::new());
            let fields = (3, 4, crate::format::record::lens(5, n));
            let check = r.write_value_crc(8, &value, key, fields, || {
                // The words stored so far, read back.
                let stored: Vec<u64> = (0..n.div_ceil(8))
                    .map(|i| r.u64_at(8 + 8 * i).unwrap().load(Ordering::Relaxed))
                    .collect();
                seen.borrow_mut().push(stored);
            });
            assert_eq!(check, Some(key.check(3, 4, fields.2, &value)), "{n} bytes");
            let seen = seen.into_inner();
            let total = n.div_ceil(8);
            if total == 0 {
                assert!(seen.is_empty(), "an empty value has no midway");
                continue;
            }
            assert_eq!(seen.len(), 1, "{n} bytes: called once");
            let half = (total / 2).max(1);
            let stored = &seen[0];
            assert!(
                stored[..half].iter().all(|&w| w != 0),
                "{n} bytes: first half"
            );
            assert!(
                stored[half..].iter().all(|&w| w == 0),
                "{n} bytes: not the rest"
            );
        }
    }

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

    /// The reader's checksum (computed while copying, from the stored words) equals the
    /// writer's (computed over the value) for every length up to `CRC_MAX`, whatever the
    /// padding bytes hold, and the copy is the value.
    #[test]
    fn the_checksum_of_a_copy_is_the_checksum_of_the_value() {
        let key = CheckKey::new(&[0x5A; crate::format::header::SECRET_LEN]);
        for n in 0..=crate::check::CRC_MAX {
            let value: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
            // Garbage everywhere, then the value: its padding keeps the garbage.
            let mut words = vec![0xDEAD_BEEF_F00D_CAFE_u64; 2 + n.div_ceil(8)];
            let r = Region::of_words(&mut words);
            for (i, c) in value.chunks(8).enumerate() {
                let mut w = 0xA5A5_A5A5_A5A5_A5A5_u64.to_le_bytes();
                w[..c.len()].copy_from_slice(c);
                r.u64_at(8 + 8 * i)
                    .unwrap()
                    .store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
            let fields = (0x1234, 77, crate::format::record::lens(9, n));
            let mut out = vec![1, 2, 3];
            let got = r.read_append_crc(8, n, &mut out, key, fields);
            assert_eq!(
                got,
                Some(key.check(fields.0, fields.1, fields.2, &value)),
                "{n} bytes"
            );
            assert_eq!(&out[3..], &value[..], "{n} bytes");
        }
    }
}
