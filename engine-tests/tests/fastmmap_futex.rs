//! The conformance suite against `store-fastmmap` with normal pages and the futex lock
//! kind.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

conformance::suite!(
    engine_tests::FastMmapFutex,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
