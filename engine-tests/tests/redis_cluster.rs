//! The conformance suite against `store-redis` on a Redis Cluster (three primaries, three
//! replicas on loopback, started once for this test process).

conformance::suite!(
    engine_tests::RedisClusterHarness,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
