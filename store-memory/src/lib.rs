//! An in-process session store: the reference behaviour of the
//! [`store_api::SessionStore`] contract.
//!
//! [`MemoryStore`] is thread-safe (sharded mutexes), optionally bounded with an
//! [`EvictionPolicy`](store_api::EvictionPolicy), and keeps nothing across restarts or
//! processes. It is written to be obviously right: model-based tests of other engines
//! compare against the same rules it implements.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use store_api::{Expiry, Key, ManualClock, SessionStore, WriteMode};
//! use store_memory::MemoryStore;
//!
//! let clock = ManualClock::default();
//! let store = MemoryStore::builder().clock(Arc::new(clock.clone())).build()?;
//! let key = Key::new("session:1")?;
//! store.put(&key, b"hello", Expiry::After(Duration::from_secs(60)), WriteMode::Upsert)?;
//! assert_eq!(store.get(&key)?.unwrap().value, b"hello");
//! clock.advance(Duration::from_secs(60));
//! assert!(store.get(&key)?.is_none(), "expired exactly at its expiry time");
//! # Ok::<(), store_api::Error>(())
//! ```

#![forbid(unsafe_code)]

mod builder;
mod shard;
mod store;

pub use builder::{DEFAULT_MAX_VALUE_LEN, MemoryStoreBuilder};
pub use store::MemoryStore;
