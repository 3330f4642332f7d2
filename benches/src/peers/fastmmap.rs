//! `store-fastmmap`, the flagship engine, through its builder with Perl's option names.

use std::path::Path;
use std::sync::Arc;

use store_api::{Error, Result};
use store_fastmmap::FastMmapStore;

use crate::registry::{EngineAdapter, not_attachable};
use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing, TTL, ViaApi};

/// The builder every process uses: the same `cache_size` gives the same geometry, and
/// everything else is the engine's default (page size, LRU policy), as a user would
/// have it.
fn builder(path: &Path, sizing: Sizing) -> store_fastmmap::FastMmapBuilder {
    FastMmapStore::builder()
        .storage(path)
        .cache_size(sizing.bytes())
        .expires(TTL)
}

/// The registry's adapter for `store-fastmmap`.
pub(crate) struct FastmmapEngine;

impl EngineAdapter for FastmmapEngine {
    fn id(&self) -> EngineId {
        EngineId::Fastmmap
    }

    fn name(&self) -> &'static str {
        "store-fastmmap"
    }

    /// Its `Capabilities` say so; asking them needs a file, so the test below does.
    fn shared_across_processes(&self) -> bool {
        true
    }

    fn create(&self, sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
        let dir = tempfile::Builder::new()
            .prefix("bench-fastmmap-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory for store-fastmmap", e))?;
        let path = dir.path().join("sessions");
        let store = builder(&path, sizing).init_file(true).open()?;
        Ok(OpenedEngine {
            store: Arc::new(ViaApi(store)),
            location: Location::Path(path),
            dir: Some(dir),
        })
    }

    fn attach(&self, location: &Location, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
        let Location::Path(path) = location else {
            return Err(not_attachable(self.name(), location));
        };
        Ok(Arc::new(ViaApi(
            builder(path, sizing).init_file(false).open()?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use store_api::SessionStore;

    use super::*;

    #[test]
    fn shared_as_its_capabilities_say() {
        let dir = tempfile::tempdir().unwrap();
        let sizing = Sizing {
            entries: 10,
            value_len: 10,
        };
        let store = builder(&dir.path().join("s"), sizing).open().unwrap();
        assert_eq!(
            FastmmapEngine.shared_across_processes(),
            store.capabilities().shared_across_processes
        );
    }
}
