//! The worker process of the conformance suite's multi-process behaviours, for every
//! engine shared across processes; the first argument names the harness.

use engine_tests::{
    FastMmapFutex, FastMmapFutexSmallPages, FastMmapHarness, FastMmapSmallPages,
    RedisClusterHarness, RedisHarness,
};

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("fastmmap") => conformance::worker::main::<FastMmapHarness>(),
        Some("fastmmap-small-pages") => conformance::worker::main::<FastMmapSmallPages>(),
        Some("fastmmap-futex") => conformance::worker::main::<FastMmapFutex>(),
        Some("fastmmap-futex-small-pages") => {
            conformance::worker::main::<FastMmapFutexSmallPages>()
        }
        Some("redis") => conformance::worker::main::<RedisHarness>(),
        Some("redis-cluster") => conformance::worker::main::<RedisClusterHarness>(),
        other => {
            eprintln!("engine-worker: unknown harness {other:?}");
            std::process::exit(2)
        }
    }
}
