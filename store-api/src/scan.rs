//! Looking inside a store: which live entries it holds ([`SessionStore::scan`]), and how
//! far an engine supports the operator's calls ([`Support`]).
//!
//! [`SessionStore::scan`]: crate::SessionStore::scan

use std::ops::ControlFlow;

use crate::{Key, Timestamp, Version};

/// One live entry as [`SessionStore::scan`](crate::SessionStore::scan) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanEntry {
    /// The entry's key.
    pub key: Key,
    /// When it expires; `None`: never.
    pub expires_at: Option<Timestamp>,
    /// Its current version.
    pub version: Version,
    /// The value's length in bytes.
    pub value_len: usize,
    /// The value, if the scan asked for values ([`ScanOptions::with_values`]).
    pub value: Option<Vec<u8>>,
}

impl ScanEntry {
    /// An entry as a scan reports it (engines outside this crate build them with this).
    pub fn new(
        key: Key,
        expires_at: Option<Timestamp>,
        version: Version,
        value_len: usize,
        value: Option<Vec<u8>>,
    ) -> Self {
        ScanEntry {
            key,
            expires_at,
            version,
            value_len,
            value,
        }
    }
}

/// What a scan visits: every live entry, or those whose key starts with a prefix; with
/// or without their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Only keys that start with these bytes (`None`: every key).
    pub prefix: Option<String>,
    /// Whether to copy each value out (else only its length).
    pub values: bool,
}

impl ScanOptions {
    /// Every live entry, without values.
    pub fn new() -> Self {
        ScanOptions::default()
    }

    /// Only keys that start with `prefix` ("list the sessions of user X" when the
    /// application puts the user in the key).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Copy each value out too.
    pub fn with_values(mut self) -> Self {
        self.values = true;
        self
    }

    /// Whether `key` is one this scan visits.
    pub fn matches(&self, key: &Key) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|p| key.as_str().starts_with(p))
    }
}

/// Hands one part of a scan (a page, a shard, a batch of keys) to `visit`, an entry at a
/// time, adding to `visited`; `Break` once `visit` stopped the scan. For engines that
/// scan in parts: each part read under its lock, then visited with no lock held.
pub fn visit_part(
    part: impl IntoIterator<Item = ScanEntry>,
    visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    visited: &mut u64,
) -> ControlFlow<()> {
    for e in part {
        *visited += 1;
        visit(e)?;
    }
    ControlFlow::Continue(())
}

/// How far an engine supports an operator's call ([`Capabilities::scan`],
/// [`Capabilities::clear`]).
///
/// [`Capabilities::scan`]: crate::Capabilities::scan
/// [`Capabilities::clear`]: crate::Capabilities::clear
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Support {
    /// Not at all: the call fails with [`Error::Unsupported`](crate::Error::Unsupported).
    No,
    /// With the guarantee the method documents.
    Exact,
    /// Available with a weaker guarantee than the method documents, which the engine's
    /// documentation states (for example a `clear` that is not atomic per partition).
    Approximate,
}
