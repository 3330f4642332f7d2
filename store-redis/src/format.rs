//! How an entry is stored: one Redis string, a fixed-width text header, then the value.
//!
//! ```text
//! offset  0   3                     23  24                    44  45
//!         v1: <version, 20 digits>  :   <expires_at, 20 digits> :  <value bytes...>
//! ```
//!
//! - `version`: decimal, zero-padded, never 0.
//! - `expires_at`: milliseconds since the Unix epoch in the server's clock, zero-padded;
//!   `0` means "never" (an entry whose expiry is already past is never stored, so a real
//!   expiry of 0 cannot occur).
//! - The header is text so that the Lua scripts can read and compare it without bit
//!   operations, and fixed-width so that `touch` rewrites the expiry in place with
//!   `SETRANGE` instead of copying the value, and scripts read only the header with
//!   `GETRANGE 0 44`.
//!
//! The server's own expiry (`PXAT`) is set to `expires_at` as well, so Redis removes the
//! entry itself; the header keeps the exact value for reads. Expiries at or past 2^53 ms
//! (about the year 287,000; `FAR` in the scripts) are beyond what Lua's doubles compute
//! with exactly: they get no server-side expiry, and the header still reports them.

use store_api::{Entry, EntryMeta, Timestamp, Version};

/// Length of the header in bytes.
pub(crate) const HEADER_LEN: usize = 45;

/// Relative expiries longer than this are resolved as [`Timestamp`] `u64::MAX` (what
/// `now + d` saturates to in every other engine) so that the script's `now + d` stays
/// exact in Lua's doubles.
pub(crate) const MAX_RELATIVE_MS: u64 = 1 << 52;

/// A stored entry, decoded; the value is `raw[HEADER_LEN..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: Version,
    pub(crate) expires_at: Option<Timestamp>,
}

impl Header {
    /// Decodes the header of a stored string; `None` if it is not one of ours.
    pub(crate) fn parse(raw: &[u8]) -> Option<Header> {
        if raw.len() < HEADER_LEN || &raw[..3] != b"v1:" || raw[23] != b':' || raw[44] != b':' {
            return None;
        }
        let version = Version::new(digits(&raw[3..23])?)?;
        let expires_at = match digits(&raw[24..44])? {
            0 => None,
            ms => Some(Timestamp::from_millis(ms)),
        };
        Some(Header {
            version,
            expires_at,
        })
    }

    /// The entry's metadata.
    pub(crate) fn meta(self) -> EntryMeta {
        EntryMeta {
            expires_at: self.expires_at,
            version: self.version,
        }
    }

    /// The entry, taking the value out of `raw` (header removed).
    pub(crate) fn into_entry(self, mut raw: Vec<u8>) -> Entry {
        raw.drain(..HEADER_LEN);
        Entry {
            value: raw,
            expires_at: self.expires_at,
            version: self.version,
        }
    }
}

/// A number in the header's 20-digit form, as the scripts compare it.
pub(crate) fn pad20(n: u64) -> String {
    format!("{n:020}")
}

/// Parses exactly 20 ASCII digits.
fn digits(b: &[u8]) -> Option<u64> {
    if b.len() != 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(version: u64, expires: u64, value: &[u8]) -> Vec<u8> {
        let mut r = format!("v1:{}:{}:", pad20(version), pad20(expires)).into_bytes();
        assert_eq!(r.len(), HEADER_LEN);
        r.extend_from_slice(value);
        r
    }

    #[test]
    fn header_round_trips_including_extremes() {
        let h = Header::parse(&raw(7, 1_700_000_000_123, b"hello")).unwrap();
        assert_eq!(h.version.get(), 7);
        assert_eq!(
            h.expires_at,
            Some(Timestamp::from_millis(1_700_000_000_123))
        );
        assert_eq!(
            h.into_entry(raw(7, 1_700_000_000_123, b"hello")).value,
            b"hello"
        );
        let h = Header::parse(&raw(u64::MAX, u64::MAX, b"")).unwrap();
        assert_eq!(h.version.get(), u64::MAX);
        assert_eq!(h.expires_at, Some(Timestamp::from_millis(u64::MAX)));
        assert_eq!(Header::parse(&raw(1, 0, b"")).unwrap().expires_at, None);
    }

    #[test]
    fn foreign_or_damaged_strings_are_not_headers() {
        assert_eq!(Header::parse(b"plain value written by someone else"), None);
        assert_eq!(Header::parse(b""), None);
        assert_eq!(Header::parse(&raw(0, 5, b"x")), None, "version 0");
        let mut r = raw(1, 5, b"x");
        r[10] = b'a';
        assert_eq!(Header::parse(&r), None, "non-digit");
        let mut r = raw(1, 5, b"x");
        r[0] = b'w';
        assert_eq!(Header::parse(&r), None, "magic");
        assert_eq!(Header::parse(&raw(1, 5, b"")[..44]), None, "short");
    }
}
