//! A session store on Redis or Valkey: the [`store_api::SessionStore`] contract for
//! deployments whose sessions must be shared by several hosts.
//!
//! [`RedisStore`] keeps each entry in one Redis string under a configurable prefix, lets
//! the server expire it (`PXAT`, millisecond precision), and makes every write atomic on
//! the server with a Lua script: create-only, replace-only and compare-and-set are
//! decided there, versions come from a server-side counter and are never reused, and
//! [`update`](store_api::SessionStore::update) is optimistic with a bounded number of
//! attempts. Connections are synchronous and pooled; a server restart gives errors, never
//! `Ok(None)`, and the store reconnects by itself. Moving from another engine is a
//! one-line change: everything downstream sees a `dyn SessionStore`.
//!
//! The engine's clock is the server's (see [`RedisStore`]'s `# Time`), which is what
//! makes expiry consistent across hosts.
//!
//! ```no_run
//! use std::time::Duration;
//! use store_api::{Expiry, Key, SessionStore, WriteMode};
//! use store_redis::RedisStore;
//!
//! let store = RedisStore::builder("redis://127.0.0.1:6379/0").prefix("myapp:").build()?;
//! let key = Key::new("session:5f0c")?;
//! store.put(&key, b"user=ada", Expiry::After(Duration::from_secs(3600)), WriteMode::CreateOnly)?;
//! assert_eq!(store.get(&key)?.unwrap().value, b"user=ada");
//! # Ok::<(), store_api::Error>(())
//! ```
//!
//! See the crate README for the key layout, the cluster notes and the test setup.

#![forbid(unsafe_code)]

mod builder;
mod format;
mod info;
mod keys;
mod pool;
mod scripts;
mod store;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use builder::{DEFAULT_MAX_VALUE_LEN, DEFAULT_PREFIX, RedisStoreBuilder};
pub use info::ServerCounters;
pub use store::RedisStore;
