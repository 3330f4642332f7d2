//! The record layout: one entry in a page's data area.
//!
//! ```text
//!  +-----------------------------------------------------------------+
//!  |                             version                             |   0
//!  +-----------------------------------------------------------------+
//!  |                             expires                             |   8
//!  +--------------------------------+--------------------------------+
//!  |              lens              |             check              |  16
//!  +--------------------------------+--------------------------------+
//!  |           key, zero-padded to a whole row (align8(klen))        |  24
//!  +-----------------------------------------------------------------+
//!  |          value, zero-padded to a whole row (align8(vlen))       |  24 + align8(klen)
//!  +-----------------------------------------------------------------+
//! ```
//! - `version` u64: the entry's version (never 0).
//! - `expires` u64: expiry in Unix milliseconds; `u64::MAX` means never (an explicit
//!   expiry at `u64::MAX` ms is stored as `u64::MAX - 1`).
//! - `lens` u32: value length in bits 0..24, key length (1..=255) in bits 24..32.
//! - `check` u32: the record checksum (CRC-32C for values of up to 128 bytes, keyed XXH3
//!   beyond, see `super::checksum`) over the key's hash,
//!   version, lengths and value; `expires` is excluded so that `touch` is one atomic
//!   store. Verified by lock-free readers over what they copied (after the seqlock
//!   validated the copy), by writers that depend on the record they find for their key
//!   (every write but an upsert, which replaces it unread), and for every record on
//!   repair (see FORMAT.md "Record layout" and "Seqlock (per page)").

use store_api::{Timestamp, Version};

use std::sync::atomic::AtomicU64;

use super::align8;
use super::region::Region;

/// Bytes before the key.
pub(crate) const RECORD_HEADER_LEN: usize = 24;
/// Largest value length the `lens` field holds.
pub(crate) const VLEN_MAX: usize = (1 << 24) - 1;
/// Largest key length the `lens` field holds.
pub(crate) const KLEN_MAX: usize = 255;
/// Offset of `version`.
pub(crate) const VERSION_OFFSET: usize = 0;
/// Offset of `expires`.
pub(crate) const EXPIRES_OFFSET: usize = VERSION_OFFSET + 8;
/// Offset of `lens`.
pub(crate) const LENS_OFFSET: usize = EXPIRES_OFFSET + 8;
/// Offset of `check`.
pub(crate) const CHECK_OFFSET: usize = LENS_OFFSET + 4;
const _: () = assert!(CHECK_OFFSET + 4 == RECORD_HEADER_LEN);

/// `expires` value meaning "never".
pub(crate) const NEVER: u64 = u64::MAX;

/// Bytes a record of these lengths occupies.
#[inline]
pub(crate) const fn record_size(klen: usize, vlen: usize) -> usize {
    RECORD_HEADER_LEN + align8(klen) + align8(vlen)
}

/// Encodes an expiry.
#[inline]
pub(crate) fn encode_expiry(e: Option<Timestamp>) -> u64 {
    match e {
        None => NEVER,
        Some(t) => t.as_millis().min(NEVER - 1),
    }
}

/// Decodes an expiry.
#[inline]
pub(crate) fn decode_expiry(raw: u64) -> Option<Timestamp> {
    (raw != NEVER).then(|| Timestamp::from_millis(raw))
}

/// The API's version of a record's `version` field.
#[inline]
pub(crate) fn version_of(raw: u64) -> Version {
    // Records with version 0 are rejected by the probe's checks.
    Version::new(raw).unwrap_or(Version::new(1).expect("1 is not 0"))
}

/// The `lens` word of a record.
#[inline]
pub(crate) const fn lens(klen: usize, vlen: usize) -> u32 {
    (vlen as u32) | ((klen as u32) << 24)
}

/// The three header words of a record, in layout order: `version`, `expires`, then `lens`
/// and `check` packed in one word (the mirror of [`RecordHeader::from_words`]).
#[inline]
pub(crate) const fn header_words(version: u64, expires: u64, lens: u32, check: u32) -> [u64; 3] {
    const _: () = assert!(
        VERSION_OFFSET == 0 && EXPIRES_OFFSET == 8 && LENS_OFFSET == 16 && CHECK_OFFSET == 20
    );
    [version, expires, (lens as u64) | ((check as u64) << 32)]
}

/// Stores the header words of a record whose key and value are in place, at the start of
/// `r` (the record), in two steps: `version` and `expires`, then (after `between`, which
/// orders the stores for a killed writer and holds a failpoint) the word with `lens` and
/// the checksum, which makes the record whole. False (nothing stored) if `r` is too small.
#[inline(always)]
pub(crate) fn store_header(r: &Region<'_>, words: [u64; 3], between: impl FnOnce()) -> bool {
    if r.len() < RECORD_HEADER_LEN {
        return false;
    }
    let [version, expires, lens_check] = words;
    r.store_words(VERSION_OFFSET, [version, expires]) && {
        between();
        r.store_words(LENS_OFFSET, [lens_check])
    }
}

/// The `expires` word of the record at `off` of `r`, if in bounds (`touch` changes it
/// with one store: it is outside the checksum).
#[inline]
pub(crate) fn expires_word<'a>(r: &Region<'a>, off: usize) -> Option<&'a AtomicU64> {
    r.u64_at(off.checked_add(EXPIRES_OFFSET)?)
}

/// The fixed fields of a record as read from a page (maybe torn: check before use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) version: u64,
    pub(crate) expires: u64,
    pub(crate) klen: usize,
    pub(crate) vlen: usize,
    pub(crate) check: u32,
}

impl RecordHeader {
    /// Loads the three header words of the record at `off` of `r` (relaxed loads: a
    /// reader validates with the seqlock, a writer holds the lock), unchecked beyond their
    /// bounds; `None` if they lie outside `r`.
    #[inline(always)]
    pub(crate) fn load(r: &Region<'_>, off: usize) -> Option<RecordHeader> {
        const _: () = assert!(VERSION_OFFSET == 0 && LENS_OFFSET + 8 == RECORD_HEADER_LEN);
        let [version, expires, lens_check] = r.load_words::<3>(off)?;
        Some(RecordHeader::from_words(version, expires, lens_check))
    }

    /// Splits the three header words (the mirror of [`header_words`]).
    #[inline]
    pub(crate) fn from_words(version: u64, expires: u64, lens_check: u64) -> Self {
        let lens = lens_check as u32;
        RecordHeader {
            version,
            expires,
            vlen: (lens & 0x00ff_ffff) as usize,
            klen: (lens >> 24) as usize,
            check: (lens_check >> 32) as u32,
        }
    }

    /// Bytes the record occupies.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        record_size(self.klen, self.vlen)
    }

    /// The `lens` word.
    #[inline]
    pub(crate) fn lens(&self) -> u32 {
        lens(self.klen, self.vlen)
    }

    /// Offset of the value inside the record.
    #[inline]
    pub(crate) fn value_offset(&self) -> usize {
        RECORD_HEADER_LEN + align8(self.klen)
    }
}

#[cfg(test)]
/// Builds the bytes of a record with checksum `check` (see [`super::checksum::of_value`]).
pub(crate) fn encode(version: u64, expires: u64, key: &[u8], value: &[u8], check: u32) -> Vec<u8> {
    debug_assert!((1..=KLEN_MAX).contains(&key.len()) && value.len() <= VLEN_MAX);
    let size = record_size(key.len(), value.len());
    let mut b = vec![0u8; size];
    b[VERSION_OFFSET..VERSION_OFFSET + 8].copy_from_slice(&version.to_le_bytes());
    b[EXPIRES_OFFSET..EXPIRES_OFFSET + 8].copy_from_slice(&expires.to_le_bytes());
    b[LENS_OFFSET..LENS_OFFSET + 4].copy_from_slice(&lens(key.len(), value.len()).to_le_bytes());
    b[CHECK_OFFSET..CHECK_OFFSET + 4].copy_from_slice(&check.to_le_bytes());
    b[RECORD_HEADER_LEN..RECORD_HEADER_LEN + key.len()].copy_from_slice(key);
    let voff = RECORD_HEADER_LEN + align8(key.len());
    b[voff..voff + value.len()].copy_from_slice(value);
    b
}

/// Splits complete record bytes into header, key and value; `None` if they do not add up.
pub(crate) fn parse(bytes: &[u8]) -> Option<(RecordHeader, &[u8], &[u8])> {
    let word = |o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?))
    };
    let hdr = RecordHeader::from_words(word(0)?, word(8)?, word(16)?);
    if hdr.size() != bytes.len() || hdr.klen == 0 {
        return None;
    }
    let key = &bytes[RECORD_HEADER_LEN..RECORD_HEADER_LEN + hdr.klen];
    let voff = hdr.value_offset();
    Some((hdr, key, &bytes[voff..voff + hdr.vlen]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_parse_round_trip() {
        let b = encode(7, 1234, b"session:abc", b"value bytes", 0xfeed);
        assert_eq!(b.len(), record_size(11, 11));
        assert_eq!(b.len() % 8, 0);
        let (h, k, v) = parse(&b).unwrap();
        assert_eq!(
            (h.version, h.expires, h.klen, h.vlen, h.check),
            (7, 1234, 11, 11, 0xfeed)
        );
        assert_eq!((k, v), (&b"session:abc"[..], &b"value bytes"[..]));
        assert!(parse(&b[..b.len() - 8]).is_none());
        let w = header_words(7, 1234, lens(11, 11), 0xfeed);
        assert_eq!(RecordHeader::from_words(w[0], w[1], w[2]), h);
        let stored: Vec<u64> = b[..RECORD_HEADER_LEN]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(stored, w, "the words are the layout's");
    }

    #[test]
    fn expiry_encoding_round_trips() {
        assert_eq!(decode_expiry(encode_expiry(None)), None);
        let t = Timestamp::from_millis(5);
        assert_eq!(decode_expiry(encode_expiry(Some(t))), Some(t));
        assert!(decode_expiry(encode_expiry(Some(Timestamp::from_millis(u64::MAX)))).is_some());
    }
}
