//! `store-fastmmap`, the flagship engine, through its builder with Perl's option names.

use std::path::Path;
use std::sync::Arc;

use store_api::{Error, Result};
use store_fastmmap::FastMmapStore;

use crate::{BenchStore, Location, OpenedEngine, Sizing, TTL, ViaApi};

/// The builder every process uses: the same `cache_size` gives the same geometry, and
/// everything else is the engine's default (page size, LRU policy), as a user would
/// have it.
fn builder(path: &Path, sizing: Sizing) -> store_fastmmap::FastMmapBuilder {
    FastMmapStore::builder()
        .storage(path)
        .cache_size(sizing.bytes())
        .expires(TTL)
}

pub(crate) fn fastmmap_available() -> std::result::Result<(), String> {
    Ok(())
}

pub(crate) fn fastmmap_create(sizing: Sizing) -> Result<OpenedEngine> {
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

pub(crate) fn fastmmap_attach(path: &Path, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
    Ok(Arc::new(ViaApi(
        builder(path, sizing).init_file(false).open()?,
    )))
}
