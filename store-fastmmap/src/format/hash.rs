//! Keyed hashing of session keys to a page and a slot tag.
//!
//! xxh3-64 with the file's 192-byte random secret (from the OS RNG at creation), so an
//! attacker who picks session ids cannot aim them at one page without the secret. The
//! page is `hash * num_pages / 2^64` (high bits); the tag is the low 32 bits, and the
//! home slot is `tag * nslots / 2^32`.

use super::checksum::CheckKey;
use super::header::SECRET_LEN;
use super::xxh3::hash as xxh3_with_secret;

/// Where a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHash {
    /// Page index.
    pub(crate) page: u32,
    /// Slot tag (low 32 bits of the hash).
    pub(crate) tag: u32,
    /// The whole 64-bit keyed hash (an input of record checksums).
    pub(crate) raw: u64,
}

/// The keyed hash of one file.
#[derive(Clone)]
pub(crate) struct KeyHasher {
    secret: Box<[u8; SECRET_LEN]>,
    num_pages: u32,
    check: CheckKey,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyHasher")
            .field("num_pages", &self.num_pages)
            .finish_non_exhaustive()
    }
}

impl KeyHasher {
    pub(crate) fn new(secret: [u8; SECRET_LEN], num_pages: u32) -> Self {
        KeyHasher {
            check: CheckKey::new(&secret),
            secret: Box::new(secret),
            num_pages,
        }
    }

    /// A fresh secret from the OS RNG.
    pub(crate) fn random_secret() -> std::io::Result<[u8; SECRET_LEN]> {
        let mut s = [0u8; SECRET_LEN];
        getrandom::fill(&mut s).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(s)
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        let h = xxh3_with_secret(&self.secret, key);
        KeyHash {
            page: ((u128::from(h) * u128::from(self.num_pages)) >> 64) as u32,
            tag: h as u32,
            raw: h,
        }
    }

    /// The key of this file's CRC record checksums.
    #[inline]
    pub(crate) fn check_key(&self) -> CheckKey {
        self.check
    }

    /// XXH3 of `bytes` keyed with the file's secret (an input of the long values'
    /// record checksum, `checksum::xxh3_check`).
    #[inline]
    pub(crate) fn keyed(&self, bytes: &[u8]) -> u64 {
        xxh3_with_secret(&self.secret, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_secrets_spread_keys_differently() {
        let a = KeyHasher::new([1; SECRET_LEN], 64);
        let b = KeyHasher::new([2; SECRET_LEN], 64);
        let keys: Vec<String> = (0..64).map(|i| format!("session:{i:032x}")).collect();
        let same = keys
            .iter()
            .filter(|k| a.hash(k.as_bytes()).page == b.hash(k.as_bytes()).page)
            .count();
        assert!(
            same < 16,
            "{same} of 64 keys on the same page under two secrets"
        );
        assert!(keys.iter().all(|k| a.hash(k.as_bytes()).page < 64));
    }

    /// The hashes are part of the file format (slot tags, pages and record checksums of
    /// existing files): pinned to the values of the XXH3 implementation the first files
    /// were written with (`xxhash-rust` 0.8), across its short, medium and long paths.
    #[test]
    fn xxh3_matches_the_format_s_reference_values() {
        let mut secret = [0u8; SECRET_LEN];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let data = |len: usize| (0..len).map(|i| (i * 7 + 1) as u8).collect::<Vec<u8>>();
        for (len, want) in [
            (0, 0x8ac6_5a04_8c18_8fe5_u64),
            (3, 0x3a04_3ca6_19aa_14b7),
            (48, 0xfd04_0082_8498_7bca),
            (100, 0x6f41_2886_d4d5_c143),
            (200, 0x78b6_9bf2_478b_8c0c),
            (4096, 0x23d1_84b5_cda3_21e7),
        ] {
            assert_eq!(xxh3_with_secret(&secret, &data(len)), want, "{len} bytes");
        }
    }

    /// Every length from 0 to 5,000 bytes (every path of XXH3, and every tail length of
    /// its long path), with this crate's keyed secret and with the default secret of the
    /// header checksum, against the reference implementation.
    #[test]
    fn xxh3_agrees_with_the_reference_implementation() {
        let mut secret = [0u8; SECRET_LEN];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(101).wrapping_add(7);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let data: Vec<u8> = (0..5_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in 0..=data.len() {
            let d = &data[..len];
            assert_eq!(
                xxh3_with_secret(&secret, d),
                xxhash_rust::xxh3::xxh3_64_with_secret(d, &secret),
                "{len} bytes, keyed"
            );
            assert_eq!(
                twox_hash::XxHash3_64::oneshot(d),
                xxhash_rust::xxh3::xxh3_64(d),
                "{len} bytes, default secret"
            );
        }
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(
            KeyHasher::random_secret().unwrap(),
            KeyHasher::random_secret().unwrap()
        );
    }
}
