//! The conformance suite against `store-fastmmap` with normal pages.

conformance::suite!(
    engine_tests::FastMmapHarness,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
