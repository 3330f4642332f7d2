//! Opening the store a STORE argument names, without ever creating or initialising it.

use std::time::Duration;

use store_api::SessionStore;
use store_fastmmap::FastMmapStore;
use store_redis::RedisStore;

use crate::Failure;

/// An opened store.
#[derive(Debug)]
pub(crate) enum Target {
    /// A store-fastmmap file.
    FastMmap(FastMmapStore),
    /// A store-redis prefix on a server.
    Redis(RedisStore),
}

impl Target {
    /// Opens `store`: a `redis://` (`rediss://`, `redis+unix://`) URL, else a file path.
    pub(crate) fn open(store: &str, redis_prefix: Option<&str>) -> Result<Target, Failure> {
        let is_redis = [
            "redis://",
            "rediss://",
            "redis+unix://",
            "valkey://",
            "valkeys://",
        ]
        .iter()
        .any(|s| store.starts_with(s));
        if is_redis {
            let mut b = RedisStore::builder(store).connect_timeout(Duration::from_secs(3));
            if let Some(p) = redis_prefix {
                b = b.prefix(p);
            }
            return Ok(Target::Redis(b.build()?));
        }
        if redis_prefix.is_some() {
            return Err(Failure::new(format!(
                "--redis-prefix applies to redis:// stores, and {store:?} is a file path"
            )));
        }
        let s = FastMmapStore::builder()
            .storage(store)
            .existing_only(true)
            // A stopped server holding a page lock must not hang the tool.
            .write_lock_timeout(Duration::from_secs(5))
            .open()?;
        Ok(Target::FastMmap(s))
    }

    /// The store, through the contract.
    pub(crate) fn store(&self) -> &dyn SessionStore {
        match self {
            Target::FastMmap(s) => s,
            Target::Redis(s) => s,
        }
    }

    /// The engine's name, as metrics label it.
    pub(crate) fn engine(&self) -> &'static str {
        match self {
            Target::FastMmap(_) => "store-fastmmap",
            Target::Redis(_) => "store-redis",
        }
    }
}
