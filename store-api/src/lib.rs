//! The session store contract.
//!
//! Web back ends keep sessions in a [`SessionStore`]: an engine that maps validated
//! [`Key`]s to opaque byte values with an absolute expiry, a [`Version`] per write,
//! atomic read-modify-write ([`SessionStore::update`]) and eviction that is reported,
//! never silent. Engines: `store-memory` (in-process, the reference behaviour) and
//! `store-fastmmap` (one mmap'ed file shared by every worker process on a host).
//! The `conformance` crate checks that an engine honours everything written here.
//!
//! The trait descends from Perl's `Catalyst::Plugin::Session::Store`; its docs map each
//! Perl method to its counterpart and pin down what the Perl contract left vague:
//! the expiry boundary ([`is_live`]), write modes ([`WriteMode`]), versions, eviction
//! reporting ([`Evictions`]) and errors ([`Error`]).
//!
//! A [`Typed`] view stores any serde type through a [`Codec`] (bincode 1.3 by default).
//!
//! ```
//! use std::time::Duration;
//! use store_api::{Error, Expiry, Key, SessionStore, WriteMode};
//!
//! fn login(store: &dyn SessionStore, id: &str) -> store_api::Result<()> {
//!     let key = Key::new(format!("session:{id}"))?;
//!     // Create-only: a colliding session id is an error, not an overwrite.
//!     store.put(&key, b"user=ada", Expiry::After(Duration::from_secs(3600)), WriteMode::CreateOnly)?;
//!     let entry = store.get(&key)?.expect("live for an hour");
//!     assert_eq!(entry.value, b"user=ada");
//!     Ok(())
//! }
//! ```
//!
//! See the workspace README for the engines table and `docs/FORMAT.md` for the shared
//! file format of `store-fastmmap`.

#![forbid(unsafe_code)]

mod codec;
mod entry;
mod error;
mod key;
mod scan;
mod stats;
mod store;
mod time;
mod typed;
mod write;

pub use codec::{Bincode, Codec};
pub use entry::{Entry, EntryMeta, Version};
pub use error::{BoxError, Error, Result};
pub use key::{Key, KeyRule, MAX_KEY_LEN};
pub use scan::{ScanEntry, ScanOptions, Support, visit_part};
pub use stats::{Blocking, Capabilities, Stats, UpdateAtomicity};
pub use store::{SessionStore, SessionStoreExt, rotate_by_copy};
pub use time::{Clock, Expiry, ManualClock, SystemClock, Timestamp, is_live};
pub use typed::{Typed, TypedUpdate};
pub use write::{EvictionPolicy, Evictions, UpdateAction, UpdateOutcome, WriteMode, WriteOutcome};
