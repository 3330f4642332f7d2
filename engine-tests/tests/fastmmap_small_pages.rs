//! The conformance suite against `store-fastmmap` with 4 KiB pages, so that eviction and
//! page repair are exercised all the time.

conformance::suite!(
    engine_tests::FastMmapSmallPages,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
