//! What a read returns: the value, its expiry and its version.

use std::fmt;
use std::num::NonZeroU64;

use crate::Timestamp;

/// The version of an entry. Every successful write gives the entry a new version;
/// a version is never reused for a key, not even after delete and re-create.
/// Versions are opaque: compare them for equality only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(NonZeroU64);

impl Version {
    /// Wraps a raw version number; `None` for zero, which is never a version.
    pub const fn new(raw: u64) -> Option<Self> {
        match NonZeroU64::new(raw) {
            Some(v) => Some(Version(v)),
            None => None,
        }
    }

    /// The raw number, for engines that store it.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Everything about an entry but its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryMeta {
    /// When the entry expires; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// The entry's current version.
    pub version: Version,
}

/// A live entry as read from a store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The value, byte for byte as written.
    pub value: Vec<u8>,
    /// When the entry expires; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// The entry's current version.
    pub version: Version,
}

impl Entry {
    /// The entry's expiry and version.
    pub fn meta(&self) -> EntryMeta {
        EntryMeta {
            expires_at: self.expires_at,
            version: self.version,
        }
    }
}
