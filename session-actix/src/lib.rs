//! Sessions for actix-web: an [actix-session](https://docs.rs/actix-session) store over
//! every engine of this workspace (`store-fastmmap`, `store-memory`, `store-redis`) and
//! any other [`store_api::SessionStore`].
//!
//! Supports **actix-session 0.11** (actix-web 4).
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_session::SessionMiddleware;
//! use actix_web::cookie::Key;
//! use session_actix::ActixStore;
//! use store_fastmmap::FastMmapStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = FastMmapStore::builder()
//!     .storage("/var/lib/myapp/sessions")
//!     .write_lock_timeout(std::time::Duration::from_secs(2))
//!     .open()?;
//! let store = ActixStore::new(Arc::new(store));
//! let secret = Key::generate(); // load it from your configuration instead
//! let middleware = SessionMiddleware::new(store, secret);
//! # let _ = middleware;
//! # Ok(())
//! # }
//! ```
//!
//! What differs from actix-session's own Redis store (see [`ActixStore`]): `save` never
//! overwrites a live session, an `update` of a session deleted meanwhile writes nothing,
//! and foreign bytes are an error naming the key.
//!
//! # Modules
//!
//! - `store`: [`ActixStore`], the `SessionStore` impl.
//! - `state`: the session state in and out of bytes (JSON).

#![forbid(unsafe_code)]

mod state;
mod store;

pub use store::{ActixStore, DEFAULT_PREFIX, DEFAULT_SAVE_ATTEMPTS};
