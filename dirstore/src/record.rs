//! One entry's file: a 48-byte header, the key, the value.
//!
//! | bytes | field |
//! |---|---|
//! | 0-7 | magic `DIRSTOR1` |
//! | 8-15 | version (little-endian u64, never 0) |
//! | 16-23 | expiry in ms since the epoch, `u64::MAX` for never |
//! | 24-31 | key length |
//! | 32-39 | value length |
//! | 40-47 | FNV-1a 64 of bytes 8-39, the key and the value |

use store_api::{Entry, Timestamp, Version};

const MAGIC: &[u8; 8] = b"DIRSTOR1";
const HEADER: usize = 48;
const NEVER: u64 = u64::MAX;

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) version: Version,
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    fnv_more(0xcbf2_9ce4_8422_2325, bytes)
}

fn fnv_more(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Record {
    /// The file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + self.key.len() + self.value.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.version.get().to_le_bytes());
        let at = self
            .expires_at
            .map_or(NEVER, |t| t.as_millis().min(NEVER - 1));
        b.extend_from_slice(&at.to_le_bytes());
        b.extend_from_slice(&(self.key.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.value.len() as u64).to_le_bytes());
        let sum = fnv_more(fnv_more(fnv(&b[8..40]), &self.key), &self.value);
        b.extend_from_slice(&sum.to_le_bytes());
        b.extend_from_slice(&self.key);
        b.extend_from_slice(&self.value);
        b
    }

    /// Parses a file; what is wrong with it otherwise.
    pub(crate) fn decode(b: &[u8]) -> Result<Record, String> {
        if b.len() < HEADER {
            return Err(format!("{} bytes, shorter than the header", b.len()));
        }
        if &b[..8] != MAGIC {
            return Err("not a dirstore entry (bad magic)".into());
        }
        let klen = usize::try_from(u64_at(b, 24)).map_err(|_| "key length overflows")?;
        let vlen = usize::try_from(u64_at(b, 32)).map_err(|_| "value length overflows")?;
        if HEADER.checked_add(klen).and_then(|n| n.checked_add(vlen)) != Some(b.len()) {
            return Err(format!(
                "lengths {klen} + {vlen} do not match the file's {} bytes",
                b.len()
            ));
        }
        let (key, value) = b[HEADER..].split_at(klen);
        if fnv_more(fnv_more(fnv(&b[8..40]), key), value) != u64_at(b, 40) {
            return Err("checksum mismatch".into());
        }
        let version = Version::new(u64_at(b, 8)).ok_or("version 0")?;
        let at = u64_at(b, 16);
        Ok(Record {
            key: key.to_vec(),
            value: value.to_vec(),
            expires_at: (at != NEVER).then(|| Timestamp::from_millis(at)),
            version,
        })
    }

    /// The entry a read returns.
    pub(crate) fn into_entry(self) -> Entry {
        Entry {
            value: self.value,
            expires_at: self.expires_at,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_noticed() {
        let r = Record {
            key: b"k".to_vec(),
            value: b"value".to_vec(),
            expires_at: Some(Timestamp::from_millis(42)),
            version: Version::new(7).unwrap(),
        };
        let b = r.encode();
        assert_eq!(Record::decode(&b).unwrap(), r);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x40;
            assert!(
                Record::decode(&d).is_err(),
                "a flipped byte {i} went unnoticed"
            );
        }
        for n in 0..b.len() {
            assert!(Record::decode(&b[..n]).is_err(), "cut to {n}");
        }
    }
}
