//! The record checksum (format version 2).
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
//! fields (`KeyHasher::record_check_xxh3`): one CRC chain runs at 8 bytes per 3 cycles,
//! where XXH3's vector path is several times faster on kilobytes.

use crate::format::header::SECRET_LEN;
use crate::os::crc32c::{Crc32c, WithCrc, dispatch};

/// Values up to this many bytes have a CRC-32C checksum, longer ones a keyed XXH3.
pub(crate) const CRC_MAX: usize = 128;

/// Whether a record whose value is `vlen` bytes long has a CRC-32C checksum (else a keyed
/// XXH3): the one test of the cutoff every path (read, check under the lock, write,
/// repair) makes, each computing the checksum its own way.
#[inline(always)]
pub(crate) const fn has_crc(vlen: usize) -> bool {
    vlen <= CRC_MAX
}

/// Where the checksum's key is in the secret.
const KEY_OFFSET: usize = 128;
const _: () = assert!(KEY_OFFSET + 4 <= SECRET_LEN);

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

    /// The CRC checksum of a record with fields `(keyhash, version, lens)` whose value is
    /// `whole` whole words, `word(i)` for `i` in `0..whole`, followed by `tail()`, the last
    /// partial word with its padding bytes zero, if any (see the module docs). The one definition
    /// both the writer (over a byte slice, [`Self::check`]) and the reader (over the
    /// mapping's words, `Region::read_append_crc`) use.
    #[inline(always)]
    pub(crate) fn fold<C: Crc32c>(
        self,
        crc: C,
        (keyhash, version, lens): (u64, u64, u32),
        whole: usize,
        mut word: impl FnMut(usize) -> u64,
        tail: impl FnOnce() -> Option<u64>,
    ) -> u32 {
        let mut c = crc.step(crc.step(self.0, keyhash ^ version), u64::from(lens));
        for i in 0..whole {
            c = crc.step(c, word(i));
        }
        tail().map_or(c, |t| crc.step(c, t))
    }

    /// The CRC checksum of a record with these fields and this value (of at most
    /// [`CRC_MAX`] bytes; longer values are not refused, but their records use XXH3).
    #[inline]
    pub(crate) fn check(self, keyhash: u64, version: u64, lens: u32, value: &[u8]) -> u32 {
        self.check_with(keyhash, version, lens, value, |_, _| {})
    }

    /// As [`Self::check`], handing each word of the value (the last one zero-padded) to
    /// `sink` with its byte offset as it goes: the writer stores the value and computes its
    /// checksum in one pass (`Region::write_value_crc`).
    #[inline(always)]
    pub(crate) fn check_with(
        self,
        keyhash: u64,
        version: u64,
        lens: u32,
        value: &[u8],
        sink: impl Fn(usize, u64),
    ) -> u32 {
        struct Bytes<'a, F>(CheckKey, (u64, u64, u32), &'a [u8], F);
        impl<F: Fn(usize, u64)> WithCrc for Bytes<'_, F> {
            type Out = u32;
            #[inline(always)]
            fn run<C: Crc32c>(self, crc: C) -> u32 {
                let Bytes(key, fields, value, sink) = self;
                let (words, rest) = value.as_chunks::<8>();
                // The last word, zero-padded, built without a call to `memcpy`: from the
                // value's last 8 bytes shifted down where there are 8, else byte by byte.
                let tail = || {
                    (!rest.is_empty()).then(|| {
                        let w = match value.last_chunk::<8>() {
                            Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - rest.len())),
                            None => rest
                                .iter()
                                .rev()
                                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
                        };
                        sink(8 * words.len(), w);
                        w
                    })
                };
                let word = |i: usize| {
                    let w = u64::from_le_bytes(words[i]);
                    sink(8 * i, w);
                    w
                };
                key.fold(crc, fields, words.len(), word, tail)
            }
        }
        dispatch(Bytes(self, (keyhash, version, lens), value, sink))
    }
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

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 1) as u8).collect()
    }

    #[test]
    fn check_matches_its_definition_for_every_length() {
        let k = key();
        for len in 0..=CRC_MAX {
            let v = data(len);
            assert_eq!(
                k.check(0x0123_4567_89ab_cdef, 42, 0x2400_0000 | len as u32, &v),
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
            assert_eq!(k.check(7, 9, len as u32, &data(len)), want, "{len} bytes");
        }
    }

    #[test]
    fn checks_change_with_every_input() {
        let k = key();
        let base = k.check(1, 2, 3, b"value");
        assert_ne!(base, k.check(9, 2, 3, b"value"));
        assert_ne!(base, k.check(1, 9, 3, b"value"));
        assert_ne!(base, k.check(1, 2, 9, b"value"));
        assert_ne!(base, k.check(1, 2, 3, b"valuf"));
        assert_eq!(base, k.check(1, 2, 3, b"value"));
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
        assert_ne!(a.check(1, 2, 5, b"value"), b.check(1, 2, 5, b"value"));
    }
}
