//! The harness of `store-memory`.

use std::sync::Arc;

use conformance::{Harness, Size, Spec, Unsupported};
use store_memory::MemoryStore;

/// Capacity of a small memory store: about 90 entries of 100 bytes.
const SMALL: usize = 16 << 10;

/// `store-memory` under the conformance suite. Every handle is the same `Arc`; the
/// engine neither survives restarts nor is shared across processes, so those
/// behaviours are skipped.
#[derive(Debug)]
pub struct MemoryHarness(Arc<MemoryStore>);

impl Harness for MemoryHarness {
    type Store = Arc<MemoryStore>;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        let mut b = MemoryStore::builder().policy(spec.policy);
        if let Some(clock) = &spec.clock {
            b = b.clock(Arc::new(clock.clone()));
        }
        if let Some(ttl) = spec.default_ttl {
            b = b.default_ttl(ttl);
        }
        if spec.size == Size::Small {
            b = b.capacity(SMALL);
        }
        let store = b.build().map_err(|e| Unsupported::new(e.to_string()))?;
        Ok(MemoryHarness(Arc::new(store)))
    }

    fn open(&self) -> store_api::Result<Self::Store> {
        Ok(self.0.clone())
    }
}
