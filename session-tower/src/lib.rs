//! Sessions for axum and any tower service: a
//! [tower-sessions](https://docs.rs/tower-sessions) store over every engine of this
//! workspace (`store-fastmmap`, `store-memory`, `store-redis`) and any other
//! [`store_api::SessionStore`].
//!
//! Supports **tower-sessions 0.15** (`tower-sessions-core` 0.15.x): tower-sessions
//! breaks its store trait between minor versions, so this crate pins the core and
//! follows each minor release.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_tower::TowerStore;
//! use store_fastmmap::FastMmapStore;
//! use tower_sessions::SessionManagerLayer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = FastMmapStore::builder()
//!     .storage("/var/lib/myapp/sessions")
//!     .write_lock_timeout(std::time::Duration::from_secs(2))
//!     .open()?;
//! let layer = SessionManagerLayer::new(TowerStore::new(Arc::new(store)));
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! What differs from tower-sessions' own stores (see [`TowerStore`]): `create` never
//! overwrites a live session, `save` never brings back a deleted one, foreign bytes are
//! an error naming the key, and [`TowerStore::update_data`] changes a session atomically
//! where the framework's load-then-save would lose concurrent changes.
//!
//! Records are stored as JSON (the session data is a map of `serde_json::Value`s,
//! which needs a self-describing format); the id is the key and the expiry the entry's.
//!
//! # Modules
//!
//! - `store`: [`TowerStore`], the `SessionStore` and `ExpiredDeletion` impls.
//! - `record`: a `Record` in and out of bytes.

#![forbid(unsafe_code)]

mod record;
mod store;

pub use store::{DEFAULT_CREATE_ATTEMPTS, DEFAULT_PREFIX, TowerStore};
