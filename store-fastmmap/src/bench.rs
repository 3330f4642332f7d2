//! Helpers for benchmarks that compare this engine with others; not needed to use a store.
//!
//! They expose what the engine's costs are measured against, so that a comparison
//! neither flatters nor penalises it: the clock it decides expiry with, and its page
//! lock's system calls.

/// The coarse wall clock this engine decides expiry with, and how far it may trail the
/// precise one (see `docs/FORMAT.md`, "Platform assumptions"): for code that must read
/// time exactly as the engine does, such as adapters for other stores.
pub use crate::os::clock::{coarse_lag_ms, coarse_ms};
pub use crate::os::lock::fcntl_lock_unlock;
