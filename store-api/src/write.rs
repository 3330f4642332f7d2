//! Write modes, the atomic-update protocol, what a write reports and what a write may
//! evict.

use crate::{Expiry, Version};

/// What a bounded engine does when a write needs room and no expired entry is left to
/// reclaim. Expired entries are always reclaimed first, under either policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EvictionPolicy {
    /// Evict live entries, least recently used first, and report them.
    #[default]
    Lru,
    /// Never evict a live entry: the write fails with
    /// [`Error::NoSpace`](crate::Error::NoSpace) instead.
    NeverEvictLive,
}

/// How a write treats an existing entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WriteMode {
    /// Write whether or not the key exists (Perl's `store_session_data`).
    #[default]
    Upsert,
    /// Write only if the key is absent or expired; otherwise
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists). The guard against
    /// session-id collisions.
    CreateOnly,
    /// Write only if the key is live; otherwise [`Error::NotFound`](crate::Error::NotFound).
    /// A request finishing after logout must not resurrect the session.
    ReplaceOnly,
    /// Write only if the live entry has exactly this version; otherwise
    /// [`Error::VersionMismatch`](crate::Error::VersionMismatch).
    IfVersion(Version),
}

impl WriteMode {
    /// Whether a write in this mode depends on the key's current entry (every mode but
    /// [`WriteMode::Upsert`], which replaces whatever is there unread). An engine that can
    /// skip reading or verifying the current entry asks this rather than matching on
    /// `Upsert`, so that a mode added later takes the safe path.
    #[inline]
    pub const fn reads_current(self) -> bool {
        !matches!(self, WriteMode::Upsert)
    }

    /// Whether this mode admits a write over a key whose live entry has version
    /// `current` (`None`: absent or expired). The one place the write-mode rules are
    /// written; engines call it under their lock.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists),
    /// [`Error::NotFound`](crate::Error::NotFound) or
    /// [`Error::VersionMismatch`](crate::Error::VersionMismatch) naming `key`.
    #[inline]
    pub fn check(self, key: &crate::Key, current: Option<Version>) -> crate::Result<()> {
        use crate::Error;
        match (self, current) {
            (WriteMode::CreateOnly, Some(_)) => Err(Error::AlreadyExists { key: key.clone() }),
            (WriteMode::ReplaceOnly, None) => Err(Error::NotFound { key: key.clone() }),
            (WriteMode::IfVersion(expected), actual) if actual != Some(expected) => {
                Err(Error::VersionMismatch {
                    key: key.clone(),
                    expected,
                    actual,
                })
            }
            _ => Ok(()),
        }
    }
}

/// How many entries a write removed to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Evictions {
    /// The engine counted what it removed.
    Counted {
        /// Live entries evicted (data a user may still have wanted).
        live: u64,
        /// Expired entries reclaimed.
        expired: u64,
    },
    /// The engine cannot know (an external server's own eviction policy, say).
    Unknown,
}

impl Evictions {
    /// Nothing was evicted.
    pub const NONE: Evictions = Evictions::Counted {
        live: 0,
        expired: 0,
    };

    /// Live entries evicted, if known.
    pub fn live(self) -> Option<u64> {
        match self {
            Evictions::Counted { live, .. } => Some(live),
            Evictions::Unknown => None,
        }
    }

    /// Expired entries reclaimed, if known.
    pub fn expired(self) -> Option<u64> {
        match self {
            Evictions::Counted { expired, .. } => Some(expired),
            Evictions::Unknown => None,
        }
    }
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteOutcome {
    /// The entry's new version.
    pub version: Version,
    /// Entries (other keys) removed to make room for this write.
    pub evicted: Evictions,
}

/// What an [`update`](crate::SessionStore::update) closure decides.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpdateAction {
    /// Leave the entry as it is: value, expiry and version unchanged.
    Keep,
    /// Write this value with this expiry (creating the entry if it was absent).
    Set {
        /// The new value.
        value: Vec<u8>,
        /// The new expiry.
        expiry: Expiry,
    },
    /// Delete the entry (a no-op if it was absent).
    Delete,
}

impl UpdateAction {
    /// Shorthand for [`UpdateAction::Set`].
    pub fn set(value: impl Into<Vec<u8>>, expiry: Expiry) -> Self {
        UpdateAction::Set {
            value: value.into(),
            expiry,
        }
    }
}

/// What an update ended up doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateOutcome {
    /// The closure returned [`UpdateAction::Keep`]; nothing changed.
    Kept,
    /// The closure returned [`UpdateAction::Set`] and the write happened.
    Written(WriteOutcome),
    /// The closure returned [`UpdateAction::Delete`]; `existed` says whether a live
    /// entry was removed.
    Deleted {
        /// Whether a live entry was removed.
        existed: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upsert_writes_without_reading_the_current_entry() {
        assert!(!WriteMode::Upsert.reads_current());
        assert!(WriteMode::CreateOnly.reads_current());
        assert!(WriteMode::ReplaceOnly.reads_current());
        assert!(WriteMode::IfVersion(Version::new(1).unwrap()).reads_current());
    }
    use crate::{Error, Key};

    #[test]
    fn write_mode_rules() {
        let k = Key::new("k").unwrap();
        let v1 = Version::new(1).unwrap();
        let v2 = Version::new(2).unwrap();
        assert!(WriteMode::Upsert.check(&k, None).is_ok());
        assert!(WriteMode::Upsert.check(&k, Some(v1)).is_ok());
        assert!(WriteMode::CreateOnly.check(&k, None).is_ok());
        assert!(matches!(
            WriteMode::CreateOnly.check(&k, Some(v1)),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(WriteMode::ReplaceOnly.check(&k, Some(v1)).is_ok());
        assert!(matches!(
            WriteMode::ReplaceOnly.check(&k, None),
            Err(Error::NotFound { .. })
        ));
        assert!(WriteMode::IfVersion(v1).check(&k, Some(v1)).is_ok());
        assert!(matches!(
            WriteMode::IfVersion(v1).check(&k, Some(v2)),
            Err(Error::VersionMismatch { actual: Some(a), .. }) if a == v2
        ));
        assert!(matches!(
            WriteMode::IfVersion(v1).check(&k, None),
            Err(Error::VersionMismatch { actual: None, .. })
        ));
    }
}
