//! The conformance suite against `store-memory`.

conformance::suite!(engine_tests::MemoryHarness);
