//! The record checksum (format version 2): its definition and every way the engine
//! computes it. FORMAT.md's "Record layout" has its one counterpart here.
//!
//! For values of up to [`CRC_MAX`] bytes (session values mostly are): CRC-32C, so that a
//! reader computes it while it copies the value out of the mapping, one instruction per
//! word, instead of hashing the copy afterwards. With `crc(c, w)` one CRC-32C step over
//! the 8 bytes of `w` ([`crate::os::crc32c`]) and `A` the little-endian u32 at byte 128
//! of the file's secret:
//!
//! ```text
//! c = crc(A, keyhash ^ version)
//! c = crc(c, lens)
//! for each value word w (the last one's padding bytes taken as zero): c = crc(c, w)
//! check = c
//! ```
//!
//! That is the CRC-32C (without inversions, initial value `A`) of the message
//! `keyhash ^ version, lens, value`, so the stored fields it covers have the CRC's
//! guarantees: every error of up to five bits across version, lengths and value
//! (CRC-32C's Hamming distance is 6 up to 5,243 bits; the message is at most 1,152) and
//! every burst of up to 32 bits is detected, other errors with odds of about 2^-32 of
//! being missed. A damaged value length that changes how many words a reader copies
//! changes the message's length as well as its `lens` word: caught with those odds. The
//! key's keyed hash shares a word with the version: it is not stored but computed from
//! the key a reader asked for (and whose bytes it compared), so it binds the record to its
//! key without a step of its own. Padding bytes are not covered (readers mask them): a
//! stray write there changes nothing a reader returns.
//!
//! Longer values keep format 1's checksum, a keyed XXH3 of the value mixed with the same
//! fields ([`xxh3_check`]): one CRC chain runs at 8 bytes per 3 cycles,
//! where XXH3's vector path is several times faster on kilobytes.

//! Each path computes it its own way, each a named function here, all behind the one
//! cutoff [`has_crc`]:
//! - a lock-free read copies the value out and computes the CRC in the same pass
//!   ([`copy_out`]), or hashes a long value's copy once the seqlock validated it
//!   ([`Copied::finish`]);
//! - a writer under the lock checks the record it depends on in place ([`verify_in_place`]);
//! - a writer stores a short value and computes its CRC in the same pass
//!   ([`store_value`]), a long one's checksum beforehand ([`before_store`]);
//! - repair checks the raw bytes of a record ([`of_value`]).
//!
//! The loops over the mapping's words are [`Region`]'s (bounds-checked word folds that
//! know nothing of checksums); this module runs them inside [`dispatch`], so that the CRC
//! instruction is inlined into them.

use super::hash::KeyHasher;
use super::header::SECRET_LEN;
use super::record::RecordHeader;
use super::region::{CopyOut, Region};
use crate::os::crc32c::{Crc32c, WithCrc, dispatch};

/// Values up to this many bytes have a CRC-32C checksum, longer ones a keyed XXH3.
pub(crate) const CRC_MAX: usize = 128;

/// Whether a record whose value is `vlen` bytes long has a CRC-32C checksum (else a keyed
/// XXH3): the one test of the cutoff every path (read, check under the lock, write,
/// repair) makes.
#[inline(always)]
pub(crate) const fn has_crc(vlen: usize) -> bool {
    vlen <= CRC_MAX
}

/// Where the checksum's key is in the secret.
const KEY_OFFSET: usize = 128;
const _: () = assert!(KEY_OFFSET + 4 <= SECRET_LEN);

/// The record fields a checksum covers besides the value: the key's keyed hash (not
/// stored: computed from the key), the version and the `lens` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// The key's whole 64-bit keyed hash.
    pub(crate) keyhash: u64,
    /// The record's version.
    pub(crate) version: u64,
    /// The record's `lens` word.
    pub(crate) lens: u32,
}

impl Fields {
    /// The fields of a record with header `hdr` of a key with keyed hash `keyhash`.
    #[inline(always)]
    pub(crate) fn of(keyhash: u64, hdr: &RecordHeader) -> Fields {
        Fields {
            keyhash,
            version: hdr.version,
            lens: hdr.lens(),
        }
    }
}

/// The CRC checksum's key of one file, from its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckKey(u32);

impl CheckKey {
    /// The key in `secret`.
    pub(crate) fn new(secret: &[u8; SECRET_LEN]) -> Self {
        let mut w = [0u8; 4];
        w.copy_from_slice(&secret[KEY_OFFSET..KEY_OFFSET + 4]);
        CheckKey(u32::from_le_bytes(w))
    }

    /// The CRC after the record's fields, before its value's words (see the module docs).
    #[inline(always)]
    fn start<C: Crc32c>(self, crc: C, f: Fields) -> u32 {
        crc.step(crc.step(self.0, f.keyhash ^ f.version), u64::from(f.lens))
    }

    /// The CRC checksum of a record with these fields and this value (of at most
    /// [`CRC_MAX`] bytes; longer values are not refused, but their records use XXH3).
    #[inline]
    pub(crate) fn check(self, f: Fields, value: &[u8]) -> u32 {
        struct Bytes<'a>(CheckKey, Fields, &'a [u8]);
        impl WithCrc for Bytes<'_> {
            type Out = u32;
            #[inline(always)]
            fn run<C: Crc32c>(self, crc: C) -> u32 {
                let Bytes(key, f, value) = self;
                super::fold_words(value, key.start(crc, f), |c, _, w| crc.step(c, w))
            }
        }
        dispatch(Bytes(self, f, value))
    }
}

/// Format 1's checksum, kept for values longer than [`CRC_MAX`]: XXH3 of the value keyed
/// with the file's secret, mixed with the key's keyed hash, the version and the lengths,
/// then folded to 32 bits.
#[inline]
pub(crate) fn xxh3_check(hasher: &KeyHasher, f: Fields, value: &[u8]) -> u32 {
    let v = hasher.keyed(value);
    let mut x =
        v ^ f.keyhash ^ f.version.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(f.lens) << 17);
    // murmur3's fmix64, so that every input bit reaches the low 32.
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32
}

/// The checksum of a record with these fields and value bytes: CRC-32C for values of up
/// to [`CRC_MAX`] bytes, keyed XXH3 for longer ones (repair, tests).
#[inline]
pub(crate) fn of_value(hasher: &KeyHasher, f: Fields, value: &[u8]) -> u32 {
    if has_crc(value.len()) {
        hasher.check_key().check(f, value)
    } else {
        xxh3_check(hasher, f, value)
    }
}

/// What a lock-free copy of a value knows of its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// A short value's CRC, computed during the copy.
    Crc(u32),
    /// A long value: hashed from the copy once it is validated.
    Later,
}

impl Copied {
    /// The checksum of the copied value `buf`.
    #[inline]
    pub(crate) fn finish(self, hasher: &KeyHasher, f: Fields, buf: &[u8]) -> u32 {
        match self {
            Copied::Crc(c) => c,
            Copied::Later => xxh3_check(hasher, f, buf),
        }
    }
}

/// Appends the `n`-byte value at `off` to `buf`, computing a short value's CRC in the same
/// pass (one CRC step per word copied, the last word's padding bytes taken as zero,
/// whatever is stored there). `None` (buf unchanged) if out of bounds.
#[inline(always)]
pub(crate) fn copy_out(
    r: &Region<'_>,
    off: usize,
    n: usize,
    buf: &mut Vec<u8>,
    key: CheckKey,
    f: Fields,
) -> Option<Copied> {
    let copy = r.copy_out(off, n, buf)?;
    if !has_crc(n) {
        copy.fold((), |(), _| ());
        return Some(Copied::Later);
    }
    struct Run<'r, 'b> {
        copy: CopyOut<'r, 'b>,
        key: CheckKey,
        f: Fields,
    }
    impl WithCrc for Run<'_, '_> {
        type Out = u32;
        #[inline(always)]
        fn run<C: Crc32c>(self, crc: C) -> u32 {
            let Run { copy, key, f } = self;
            copy.fold(key.start(crc, f), |c, w| crc.step(c, w))
        }
    }
    Some(Copied::Crc(dispatch(Run { copy, key, f })))
}

/// Whether the `n`-byte value at `off` has checksum `stored`, computed in place (no copy
/// of a short value; a long one is copied to the stack or, beyond 512 bytes, the heap).
/// False if out of bounds.
pub(crate) fn verify_in_place(
    r: &Region<'_>,
    off: usize,
    n: usize,
    hasher: &KeyHasher,
    f: Fields,
    stored: u32,
) -> bool {
    if has_crc(n) {
        return crc_in_place(r, off, n, hasher.check_key(), f) == Some(stored);
    }
    let check = |v: &[u8]| xxh3_check(hasher, f, v) == stored;
    // No allocation on the write path for values up to 512 bytes.
    if n <= 512 {
        let mut small = [0u8; 512];
        let buf = &mut small[..n];
        r.read_bytes(off, buf) && check(buf)
    } else {
        let mut v = Vec::new();
        r.read_append(off, n, &mut v) && check(&v)
    }
}

/// The CRC of the `n`-byte value at `off` (at most [`CRC_MAX`] bytes), without copying it.
fn crc_in_place(r: &Region<'_>, off: usize, n: usize, key: CheckKey, f: Fields) -> Option<u32> {
    struct Run<'r> {
        r: Region<'r>,
        off: usize,
        n: usize,
        key: CheckKey,
        f: Fields,
    }
    impl WithCrc for Run<'_> {
        type Out = Option<u32>;
        #[inline(always)]
        fn run<C: Crc32c>(self, crc: C) -> Option<u32> {
            let Run { r, off, n, key, f } = self;
            r.fold(off, n, key.start(crc, f), |c, w| crc.step(c, w))
        }
    }
    dispatch(Run { r: *r, off, n, key, f })
}

/// A long value's checksum, computed before it is stored (`None` for a short value, whose
/// CRC [`store_value`] computes while storing it).
#[inline]
pub(crate) fn before_store(hasher: &KeyHasher, f: Fields, value: &[u8]) -> Option<u32> {
    (!has_crc(value.len())).then(|| xxh3_check(hasher, f, value))
}

/// Stores `value` at `off`, zero-padded to a multiple of 8, and returns the record's
/// checksum: `precomputed` (from [`before_store`]) for a long value, else its CRC,
/// computed in the same pass. `None` (nothing written) if out of bounds. In builds with
/// failpoints, `midway` is called once, when the first `words / 2` words (rounded down,
/// at least one) of a short value of one word or more are stored; in others it is never
/// called and its test is compiled out.
#[inline(always)]
pub(crate) fn store_value(
    r: &Region<'_>,
    off: usize,
    value: &[u8],
    key: CheckKey,
    f: Fields,
    precomputed: Option<u32>,
    midway: impl Fn(),
) -> Option<u32> {
    if let Some(c) = precomputed {
        return r.write_bytes(off, value).then_some(c);
    }
    struct Run<'r, 'v, M> {
        r: Region<'r>,
        off: usize,
        value: &'v [u8],
        key: CheckKey,
        f: Fields,
        midway: M,
    }
    impl<M: Fn()> WithCrc for Run<'_, '_, M> {
        type Out = Option<u32>;
        #[inline(always)]
        fn run<C: Crc32c>(self, crc: C) -> Option<u32> {
            let Run {
                r,
                off,
                value,
                key,
                f,
                midway,
            } = self;
            let mid = (value.len().div_ceil(8) / 2).max(1) * 8;
            r.store_fold(off, value, key.start(crc, f), |c, o, w| {
                if cfg!(any(test, feature = "failpoints")) && o + 8 == mid {
                    midway();
                }
                crc.step(c, w)
            })
        }
    }
    dispatch(Run {
        r: *r,
        off,
        value,
        key,
        f,
        midway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::crc32c::Table;

    fn key() -> CheckKey {
        let mut secret = [0u8; SECRET_LEN];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        CheckKey::new(&secret)
    }

    /// The module docs' definition, byte by byte with the table: the CRC-32C (no
    /// inversions, initial value `A`) of `keyhash ^ version`, `lens` and the zero-padded
    /// value.
    fn spec(k: CheckKey, keyhash: u64, version: u64, lens: u32, value: &[u8]) -> u32 {
        let mut msg = Vec::new();
        msg.extend_from_slice(&(keyhash ^ version).to_le_bytes());
        msg.extend_from_slice(&u64::from(lens).to_le_bytes());
        msg.extend_from_slice(value);
        msg.resize(msg.len().div_ceil(8) * 8, 0);
        msg.iter().fold(k.0, |c, &b| Table::byte(c, b))
    }

    fn fields(keyhash: u64, version: u64, lens: u32) -> Fields {
        Fields {
            keyhash,
            version,
            lens,
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 1) as u8).collect()
    }

    #[test]
    fn check_matches_its_definition_for_every_length() {
        let k = key();
        for len in 0..=CRC_MAX {
            let v = data(len);
            assert_eq!(
                k.check(fields(0x0123_4567_89ab_cdef, 42, 0x2400_0000 | len as u32), &v),
                spec(k, 0x0123_4567_89ab_cdef, 42, 0x2400_0000 | len as u32, &v),
                "{len} bytes"
            );
        }
    }

    /// The checksum is part of the file format: pinned values.
    #[test]
    fn check_matches_the_format_s_reference_values() {
        let k = key();
        for (len, want) in [
            (0, 0x75bb_22c3_u32),
            (3, 0x9c7b_29b1),
            (100, 0xb6d3_eb34),
            (128, 0x42a9_295e),
        ] {
            assert_eq!(k.check(fields(7, 9, len as u32), &data(len)), want, "{len} bytes");
        }
    }

    #[test]
    fn checks_change_with_every_input() {
        let k = key();
        let base = k.check(fields(1, 2, 3), b"value");
        assert_ne!(base, k.check(fields(9, 2, 3), b"value"));
        assert_ne!(base, k.check(fields(1, 9, 3), b"value"));
        assert_ne!(base, k.check(fields(1, 2, 9), b"value"));
        assert_ne!(base, k.check(fields(1, 2, 3), b"valuf"));
        assert_eq!(base, k.check(fields(1, 2, 3), b"value"));
    }

    /// The checksum is affine in the bits of the version, `lens` and the value (a CRC
    /// without inversion), so an error pattern `e` in them changes it by `L(e)`, the same
    /// whatever the stored values, key or secret. An error of up to three bits goes
    /// unseen only if the `L` of one, two or three single-bit errors XOR to zero; this
    /// checks every such combination over the version (64 bits), `lens` (32) and the
    /// value, for values of 24, 100 (the benchmarks' size) and 128 bytes. So every such
    /// error is detected, not just likely to be. Two of them are the kind a formula
    /// putting two fields in one CRC word would miss: the same bit flipped in the version
    /// and in `lens`.
    #[test]
    fn every_error_of_up_to_three_bits_is_detected() {
        for len in [24, 100, CRC_MAX] {
            let k = key();
            let (kh, version, lens) = (5u64, 6u64, 0x3000_0000 | len as u32);
            let value = data(len);
            let good = spec(k, kh, version, lens, &value);
            let bits = 64 + 32 + 8 * len;
            let flipped = |i: usize| {
                let (mut v, mut l, mut val) = (version, lens, value.clone());
                match i {
                    0..64 => v ^= 1 << i,
                    64..96 => l ^= 1 << (i - 64),
                    _ => val[(i - 96) / 8] ^= 1 << ((i - 96) % 8),
                }
                spec(k, kh, v, l, &val) ^ good
            };
            let l: Vec<u32> = (0..bits).map(flipped).collect();
            let singles: std::collections::HashSet<u32> = l.iter().copied().collect();
            assert!(!singles.contains(&0), "a one-bit error is missed");
            assert_eq!(singles.len(), l.len(), "two one-bit errors cancel");
            for i in 0..l.len() {
                for j in i + 1..l.len() {
                    assert!(
                        !singles.contains(&(l[i] ^ l[j])),
                        "bits {i} and {j} cancel a third ({len} bytes)"
                    );
                }
            }
        }
    }

    #[test]
    fn different_secrets_give_different_checks() {
        let a = key();
        let b = CheckKey::new(&[3; SECRET_LEN]);
        assert_ne!(a.check(fields(1, 2, 5), b"value"), b.check(fields(1, 2, 5), b"value"));
    }

    #[test]
    fn long_values_have_an_xxh3_check_that_changes_with_every_input() {
        let h = KeyHasher::new([5; SECRET_LEN], 4);
        let v = vec![1u8; CRC_MAX + 1];
        let mut w = v.clone();
        w[CRC_MAX] = 2;
        let base = of_value(&h, fields(1, 2, 3), &v);
        assert_eq!(base, xxh3_check(&h, fields(1, 2, 3), &v));
        assert_ne!(base, of_value(&h, fields(9, 2, 3), &v));
        assert_ne!(base, of_value(&h, fields(1, 9, 3), &v));
        assert_ne!(base, of_value(&h, fields(1, 2, 9), &v));
        assert_ne!(base, of_value(&h, fields(1, 2, 3), &w));
        assert_eq!(
            of_value(&h, fields(1, 2, 3), &v[..CRC_MAX]),
            h.check_key().check(fields(1, 2, 3), &v[..CRC_MAX])
        );
    }

    /// Every strategy of the module computes the same checksum as [`of_value`], at the
    /// lengths around the cutoff: the copy of a read, the in-place check, the store.
    #[test]
    fn every_strategy_agrees_with_the_definition() {
        let h = KeyHasher::new([0x5A; SECRET_LEN], 4);
        for n in [0, 1, 7, 8, 100, 127, CRC_MAX, CRC_MAX + 1, 600, 1000] {
            let value = data(n);
            let f = fields(0x1234, 77, crate::format::record::lens(9, n));
            let want = of_value(&h, f, &value);
            let mut words = vec![0xDEAD_BEEF_F00D_CAFE_u64; 2 + n.div_ceil(8)];
            let r = Region::of_words(&mut words);
            let pre = before_store(&h, f, &value);
            assert_eq!(pre.is_some(), !has_crc(n), "{n} bytes");
            assert_eq!(
                store_value(&r, 8, &value, h.check_key(), f, pre, || {}),
                Some(want),
                "{n} bytes: store"
            );
            assert!(verify_in_place(&r, 8, n, &h, f, want), "{n} bytes: in place");
            assert!(!verify_in_place(&r, 8, n, &h, f, want ^ 1), "{n} bytes");
            let mut buf = vec![9];
            let copied = copy_out(&r, 8, n, &mut buf, h.check_key(), f).unwrap();
            assert_eq!(&buf[1..], &value[..], "{n} bytes: copy");
            assert_eq!(copied.finish(&h, f, &buf[1..]), want, "{n} bytes: copy");
            assert!(copy_out(&r, 16 + 8 * n, n.max(1), &mut buf, h.check_key(), f).is_none());
        }
    }

    /// `midway` runs once for every short value of a word or more, after exactly the first
    /// `words / 2` words (at least one) are stored and before the next; never for an
    /// empty value or a long one. The value and checksum are the same as without it.
    #[test]
    fn midway_runs_once_after_the_first_half_of_the_words() {
        let key = CheckKey::new(&[7u8; SECRET_LEN]);
        for n in 0..=CRC_MAX {
            let value: Vec<u8> = (0..n).map(|i| (i * 13 + 1) as u8).collect();
            let mut words = vec![0u64; 1 + n.div_ceil(8)];
            let r = Region::of_words(&mut words);
            let seen = std::cell::RefCell::new(Vec::new());
            let f = fields(3, 4, crate::format::record::lens(5, n));
            let check = store_value(&r, 8, &value, key, f, None, || {
                // The words stored so far, read back.
                let stored: Vec<u64> = (0..n.div_ceil(8))
                    .map(|i| {
                        r.u64_at(8 + 8 * i)
                            .unwrap()
                            .load(std::sync::atomic::Ordering::Relaxed)
                    })
                    .collect();
                seen.borrow_mut().push(stored);
            });
            assert_eq!(check, Some(key.check(f, &value)), "{n} bytes");
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
}
