//! Redis on loopback through `store-redis` (wired in once the crate builds).

use std::sync::Arc;

use store_api::Result;

use crate::{BenchStore, OpenedEngine};

pub(crate) fn redis_available(_url: &str) -> std::result::Result<(), String> {
    Err("store-redis does not build yet".to_string())
}

pub(crate) fn redis_create(_url: &str) -> Result<OpenedEngine> {
    Err(unavailable())
}

pub(crate) fn redis_attach(_url: &str) -> Result<Arc<dyn BenchStore>> {
    Err(unavailable())
}

fn unavailable() -> store_api::Error {
    store_api::Error::InvalidConfig {
        option: "engines",
        reason: "store-redis does not build yet".to_string(),
    }
}
