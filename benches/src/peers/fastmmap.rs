//! `store-fastmmap`, the flagship engine (wired in once the crate builds).

use std::path::Path;
use std::sync::Arc;

use store_api::Result;

use crate::{BenchStore, OpenedEngine, Sizing};

pub(crate) fn fastmmap_available() -> std::result::Result<(), String> {
    Err("store-fastmmap does not build yet".to_string())
}

pub(crate) fn fastmmap_create(_: Sizing) -> Result<OpenedEngine> {
    Err(unavailable())
}

pub(crate) fn fastmmap_attach(_: &Path, _: Sizing) -> Result<Arc<dyn BenchStore>> {
    Err(unavailable())
}

fn unavailable() -> store_api::Error {
    store_api::Error::InvalidConfig {
        option: "engines",
        reason: "store-fastmmap does not build yet".to_string(),
    }
}
