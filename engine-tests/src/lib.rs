//! Conformance harnesses for the workspace's engines; `tests/` runs the suite against
//! each, and `engine-worker` is the worker binary of the multi-process behaviours.
//!
//! | test file | engine |
//! |---|---|
//! | `tests/memory.rs` | `store-memory` (unbounded; 16 KiB when the suite asks for a small store) |
//! | `tests/fastmmap.rs` | `store-fastmmap` with normal pages (256 KiB; 64 KiB x 2 when small) |
//! | `tests/fastmmap_small_pages.rs` | `store-fastmmap` with 4 KiB pages, so eviction and page repair run constantly |
//! | `tests/fastmmap_futex.rs`, `tests/fastmmap_futex_small_pages.rs` | the same two with the futex lock kind (Linux) |
//! | `tests/redis.rs` | `store-redis` on a private `redis-server` (one key prefix per harness), on a `ManualClock` for the expiry behaviours |
//! | `tests/redis_cluster.rs` | the same on a private Redis Cluster (three primaries, three replicas, `.ci/redis-cluster`) |
//!
//! The Redis harness starts its server with store-redis's `test-server` launcher, the one
//! store-redis's own tests use; without a `redis-server` binary its behaviours are skipped
//! with the reason printed, unless `STORE_REDIS_REQUIRE_SERVER=1` (set by CI).
//!
//! `tests/fastmmap_kill_mid_write.rs` is a regression found by the suite: it kills a
//! fastmmap writer at each of the engine's failpoints and checks no other key is lost.

#![forbid(unsafe_code)]

mod fastmmap;
mod memory;
mod redis;

pub use fastmmap::{
    FastMmap, FastMmapFutex, FastMmapFutexSmallPages, FastMmapHarness, FastMmapSmallPages,
};
pub use memory::MemoryHarness;
pub use redis::{RedisClusterHarness, RedisHarness};
