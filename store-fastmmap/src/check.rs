//! The record checksum (format version 2).
//!
//! For values of up to [`CRC_MAX`] bytes (session values mostly are): CRC-32C, so that a
//! reader computes it while it copies the value out of the mapping, one instruction per
//! word, instead of hashing the copy afterwards. With `crc(c, w)` one CRC-32C step over
//! the 8 bytes of `w` ([`crate::os::crc32c`]) and `A` the low 32 bits of the
//! little-endian u64 at byte 128 of the file's secret:
//!
//! ```text
//! c = crc(A ^ lens, keyhash ^ version)
//! for each value word w (the value zero-padded to 8 bytes): c = crc(c, w)
//! check = c
//! ```
//!
//! That is the CRC-32C (without inversions, initial value `A ^ lens`) of the message
//! `keyhash ^ version, value`, so the value has the CRC's guarantees: every error of up
//! to five bits (CRC-32C's Hamming distance is 6 up to 5,243 bits) and every burst of up
//! to 32 bits is detected, other errors with odds of 2^-32 of being missed. A changed
//! `lens` changes the initial value, which always changes the result for the same words;
//! the key (through its keyed hash) and the version share one word, so the record is
//! bound to both with one step (the header fields are on the read's critical path:
//! loaded just before the value, they would otherwise add a step per field).
//!
//! Longer values keep format 1's checksum, a keyed XXH3 of the value mixed with the same
//! fields (`KeyHasher::record_check_xxh3`): one CRC chain runs at 8 bytes per 3 cycles,
//! where XXH3's vector path is several times faster on kilobytes.

use crate::format::header::SECRET_LEN;
use crate::os::crc32c::{Crc32c, WithCrc, dispatch};

/// Values up to this many bytes have a CRC-32C checksum, longer ones a keyed XXH3.
pub(crate) const CRC_MAX: usize = 128;

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

    /// The CRC of a record's fields, before its value: see the module docs.
    #[inline(always)]
    pub(crate) fn start<C: Crc32c>(self, crc: C, keyhash: u64, version: u64, lens: u32) -> u32 {
        crc.step(self.0 ^ lens, keyhash ^ version)
    }

    /// The CRC checksum of a record with these fields and this value (of at most
    /// [`CRC_MAX`] bytes; longer values are not refused, but their records use XXH3).
    #[inline]
    pub(crate) fn check(self, keyhash: u64, version: u64, lens: u32, value: &[u8]) -> u32 {
        struct Bytes<'a>(CheckKey, u64, u64, u32, &'a [u8]);
        impl WithCrc for Bytes<'_> {
            type Out = u32;
            #[inline(always)]
            fn run<C: Crc32c>(self, crc: C) -> u32 {
                let Bytes(key, keyhash, version, lens, value) = self;
                let words = value.chunks_exact(8);
                let rest = words.remainder();
                let c = words.fold(key.start(crc, keyhash, version, lens), |c, w| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(w);
                    crc.step(c, u64::from_le_bytes(b))
                });
                if rest.is_empty() {
                    return c;
                }
                // The last word, zero-padded, built without a call to `memcpy`.
                let w = rest
                    .iter()
                    .rev()
                    .fold(0u64, |w, &b| (w << 8) | u64::from(b));
                crc.step(c, w)
            }
        }
        dispatch(Bytes(self, keyhash, version, lens, value))
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
    /// inversions, initial value `A ^ lens`) of `keyhash ^ version` and the zero-padded
    /// value.
    fn spec(k: CheckKey, keyhash: u64, version: u64, lens: u32, value: &[u8]) -> u32 {
        let mut msg = Vec::new();
        msg.extend_from_slice(&(keyhash ^ version).to_le_bytes());
        msg.extend_from_slice(value);
        msg.resize(msg.len().div_ceil(8) * 8, 0);
        msg.iter().fold(k.0 ^ lens, |c, &b| Table::byte(c, b))
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
            (0, 0xffb7_2113_u32),
            (3, 0x871d_26f6),
            (100, 0x4467_574f),
            (128, 0x74d2_0204),
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

    /// The checksum is affine in the message's bits (a CRC without inversion), so an
    /// error pattern `e` changes it by `L(e)`, the same whatever the value, key, version
    /// or secret. An error of up to three bits goes unseen only if some `L` of one, two or
    /// three single-bit errors XOR to zero; this checks every such combination for
    /// values of 24, 100 (the benchmarks' size) and 128 bytes, padding included. So
    /// every error of up to three bits in such a value is detected, not just likely to be.
    #[test]
    fn every_error_of_up_to_three_bits_is_detected() {
        for len in [24, 100, CRC_MAX] {
            let k = key();
            let v = data(len);
            let mut padded = v.clone();
            padded.resize(len.div_ceil(8) * 8, 0);
            let good = spec(k, 5, 6, len as u32, &padded[..len]);
            let l: Vec<u32> = (0..padded.len() * 8)
                .map(|i| {
                    let mut w = padded.clone();
                    w[i / 8] ^= 1 << (i % 8);
                    // The padding is checked as stored (readers copy whole words).
                    spec(k, 5, 6, len as u32, &w) ^ good
                })
                .collect();
            let singles: std::collections::HashSet<u32> = l.iter().copied().collect();
            assert!(!singles.contains(&0), "a one-bit error is missed");
            assert_eq!(singles.len(), l.len(), "two one-bit errors cancel");
            for i in 0..l.len() {
                for j in i + 1..l.len() {
                    let x = l[i] ^ l[j];
                    assert!(
                        !singles.contains(&x),
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
