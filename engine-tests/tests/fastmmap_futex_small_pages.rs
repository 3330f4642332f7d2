//! The conformance suite against `store-fastmmap` with 4 KiB pages and the futex lock
//! kind, so that eviction, page repair and dead lock holders are exercised all the time.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

conformance::suite!(
    engine_tests::FastMmapFutexSmallPages,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
