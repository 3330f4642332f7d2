//! `store-memory`, the in-process reference engine.

use std::sync::Arc;

use store_api::{Result, SessionStore};
use store_memory::MemoryStore;

use crate::registry::EngineAdapter;
use crate::{EngineId, Location, OpenedEngine, Sizing, ViaApi};

/// The registry's adapter for `store-memory`: unbounded, so `create` ignores the sizing,
/// and reachable from this process only.
pub(crate) struct MemoryEngine;

impl EngineAdapter for MemoryEngine {
    fn id(&self) -> EngineId {
        EngineId::Memory
    }

    fn name(&self) -> &'static str {
        "store-memory"
    }

    fn shared_across_processes(&self) -> bool {
        MemoryStore::new().capabilities().shared_across_processes
    }

    fn create(&self, _sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
        Ok(OpenedEngine {
            store: Arc::new(ViaApi(MemoryStore::new())),
            location: Location::InProcess,
            dir: None,
        })
    }
}
