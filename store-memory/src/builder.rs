//! Options for a [`MemoryStore`].

use std::sync::Arc;
use std::time::Duration;

use store_api::{Clock, Error, EvictionPolicy, MAX_KEY_LEN, Result, SystemClock};

use crate::MemoryStore;
use crate::shard::cost;

/// Largest value an unbounded store accepts unless told otherwise (4 MiB: sessions are
/// small; a larger value is almost always a bug).
pub const DEFAULT_MAX_VALUE_LEN: usize = 4 << 20;

/// Builds a [`MemoryStore`] (the `setup_session` counterpart).
///
/// ```
/// use store_api::EvictionPolicy;
/// use store_memory::MemoryStore;
/// let store = MemoryStore::builder()
///     .capacity(1 << 20)
///     .policy(EvictionPolicy::NeverEvictLive)
///     .build()
///     .unwrap();
/// # let _ = store;
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    pub(crate) capacity: Option<usize>,
    pub(crate) policy: EvictionPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) max_value_len: usize,
    pub(crate) shards: Option<usize>,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        MemoryStoreBuilder {
            capacity: None,
            policy: EvictionPolicy::Lru,
            clock: Arc::new(SystemClock),
            default_ttl: None,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            shards: None,
        }
    }
}

impl MemoryStoreBuilder {
    /// Bounds the store to `bytes` (keys + values + 64 bytes per entry). Unbounded by
    /// default.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// What to do when a bounded store is full of live entries (default LRU).
    pub fn policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock expiry is measured against (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Time to live for writes with [`Expiry::Default`](store_api::Expiry::Default)
    /// (default: never expire).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Largest value accepted (default [`DEFAULT_MAX_VALUE_LEN`]).
    pub fn max_value_len(mut self, len: usize) -> Self {
        self.max_value_len = len;
        self
    }

    /// Number of independently locked shards. Default 16 when unbounded and 1 when
    /// bounded, so that LRU order is exact across the whole store; with more shards a
    /// bounded store splits its capacity evenly and keeps LRU order per shard.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero shards, or a capacity per shard too small to hold
    /// one entry with a maximum-length key.
    pub fn build(self) -> Result<MemoryStore> {
        let shards = self
            .shards
            .unwrap_or(if self.capacity.is_some() { 1 } else { 16 });
        if shards == 0 || shards > 4096 {
            return Err(Error::InvalidConfig {
                option: "shards",
                reason: format!("must be between 1 and 4096, got {shards}"),
            });
        }
        if let Some(cap) = self.capacity {
            let min = cost(MAX_KEY_LEN, 0) * shards;
            if cap < min {
                return Err(Error::InvalidConfig {
                    option: "capacity",
                    reason: format!(
                        "{cap} bytes cannot hold even one entry per shard; use at least {min}"
                    ),
                });
            }
        }
        Ok(MemoryStore::from_builder(self, shards))
    }
}
