//! The conformance suite against `store-redis` on a real `redis-server`.
//!
//! The expiry and model behaviours run on a `ManualClock` through
//! `RedisStoreBuilder::clock`; server-clock expiry is covered by store-redis's own
//! `redis_expiry.rs`. Skipped, with the reason printed: the bounded-store behaviours (the
//! engine is unbounded; Redis's `maxmemory` policy decides), and everything when no
//! `redis-server` is installed (a failure instead when `STORE_REDIS_REQUIRE_SERVER=1`).

conformance::suite!(
    engine_tests::RedisHarness,
    worker = env!("CARGO_BIN_EXE_engine-worker")
);
