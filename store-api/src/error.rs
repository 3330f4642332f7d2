//! The one error type of the contract.

use std::path::PathBuf;

use crate::{Key, KeyRule, Version};

/// A boxed error from a backend, codec or the OS.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the contract.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session store.
///
/// A missing key is never an error (reads return `Ok(None)`), and a backend failure is
/// never `Ok(None)`. Variants are categories to `match` on; the `Display` text says
/// what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key broke a rule of [`Key`].
    #[error("invalid key {key:?}: {rule}")]
    InvalidKey {
        /// The rejected key, lossily decoded and cut to 64 characters for display.
        key: String,
        /// The rule it broke.
        rule: KeyRule,
    },

    /// The value is larger than the engine accepts for this key. Nothing changed and
    /// nothing was evicted.
    #[error(
        "value of {len} bytes is larger than the {max} bytes this store accepts for this key; nothing was written"
    )]
    TooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The largest value accepted for this key.
        max: usize,
    },

    /// A create-only write found a live entry (a session-id collision).
    #[error(
        "key {key} already exists; a create-only write does not overwrite it (pick a new session id)"
    )]
    AlreadyExists {
        /// The key.
        key: Key,
    },

    /// A replace-only write or touch-style operation found no live entry.
    #[error("key {key} does not exist or has expired; a replace-only write does not create it")]
    NotFound {
        /// The key.
        key: Key,
    },

    /// A compare-and-set write found another version (or none).
    #[error("key {key} is at {}, not {expected}; re-read it and retry", actual.map_or_else(|| "no version (absent)".to_string(), |v| v.to_string()))]
    VersionMismatch {
        /// The key.
        key: Key,
        /// The version the write expected.
        expected: Version,
        /// The live entry's version, `None` if absent or expired.
        actual: Option<Version>,
    },

    /// The store is full of live entries and its policy forbids evicting them.
    #[error(
        "no space for key {key} ({needed} bytes) without evicting live entries; raise the store's capacity or allow LRU eviction"
    )]
    NoSpace {
        /// The key being written.
        key: Key,
        /// Bytes the entry needs.
        needed: usize,
    },

    /// An optimistic update lost the race this many times and gave up.
    #[error(
        "update of key {key} gave up after {attempts} attempts lost to concurrent writers; retry later"
    )]
    Contention {
        /// The key.
        key: Key,
        /// Attempts made.
        attempts: u32,
    },

    /// A stored value did not decode as the requested type.
    #[error("value of key {key} does not decode as the requested type")]
    Decode {
        /// The key.
        key: Key,
        /// The codec's error.
        #[source]
        source: BoxError,
    },

    /// A value did not encode.
    #[error("value for key {key} could not be encoded")]
    Encode {
        /// The key.
        key: Key,
        /// The codec's error.
        #[source]
        source: BoxError,
    },

    /// Stored data is damaged beyond what the engine could repair.
    #[error("store data is corrupted: {what}")]
    Corrupted {
        /// What was found damaged, and where.
        what: String,
    },

    /// An existing file or server was made by an incompatible version or geometry.
    #[error("{}: incompatible store: {reason}", path.display())]
    Incompatible {
        /// The file (or address) concerned.
        path: PathBuf,
        /// What differs and how to fix it.
        reason: String,
    },

    /// An option was out of range or contradicted another.
    #[error("invalid configuration `{option}`: {reason}")]
    InvalidConfig {
        /// The option's name.
        option: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// An operating-system call failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The engine does not offer this operation (its [`Capabilities`](crate::Capabilities)
    /// say so); nothing changed.
    #[error("{engine} does not support {operation}")]
    Unsupported {
        /// The operation (`"scan"`, `"clear"`).
        operation: &'static str,
        /// The engine, as its capabilities' callers would name it.
        engine: String,
    },

    /// The backend (a server, say) failed or could not be reached.
    #[error("backend failure: {context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    pub(crate) fn invalid_key(raw: &[u8], rule: KeyRule) -> Self {
        let key: String = String::from_utf8_lossy(raw).chars().take(64).collect();
        Error::InvalidKey { key, rule }
    }

    /// An [`Error::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Backend`] with context.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn errors_are_send_sync_static() {
        assert_send_sync_static::<Error>();
    }

    #[test]
    fn version_mismatch_message_names_both_versions() {
        let key = Key::new("k").unwrap();
        let e = Error::VersionMismatch {
            key,
            expected: Version::new(3).unwrap(),
            actual: None,
        };
        let s = e.to_string();
        assert!(s.contains("v3") && s.contains("absent"), "{s}");
    }

    #[test]
    fn io_error_exposes_source() {
        use std::error::Error as _;
        let e = Error::io("opening /x", std::io::Error::other("boom"));
        assert!(e.source().is_some());
    }
}
