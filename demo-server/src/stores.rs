//! Opening the store `--store` names.

use std::sync::Arc;
use std::time::Duration;

use store_api::SessionStore;

use crate::config::StoreSpec;

/// How long a write waits for a page lock that a stopped worker holds before the
/// request fails (store-fastmmap): a worker thread of the runtime waits meanwhile.
pub const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens the store; each worker process opens its own after the fork.
///
/// # Errors
/// The engine's error, for the log.
pub fn open(spec: &StoreSpec) -> store_api::Result<Arc<dyn SessionStore>> {
    Ok(match spec {
        StoreSpec::Memory => Arc::new(store_memory::MemoryStore::new()),
        StoreSpec::Fastmmap(path) => Arc::new(
            store_fastmmap::FastMmapStore::builder()
                .storage(path)
                .cache_size(64 << 20)
                .write_lock_timeout(WRITE_LOCK_TIMEOUT)
                .open()?,
        ),
        StoreSpec::Redis(url) => Arc::new(
            store_redis::RedisStore::builder(url.as_str())
                .prefix("demo-server:")
                .build()?,
        ),
    })
}
