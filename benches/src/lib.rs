//! One session workload, run against every engine of the workspace and against the peers a
//! user would pick instead, side by side.
//!
//! The workloads ([`Workload`]) are written once, against [`BenchStore`]: a narrow view of
//! [`store_api::SessionStore`] that every engine gets through [`ViaApi`] and every peer
//! (LMDB, an in-process `Mutex<HashMap>`) implements in a small adapter. The criterion
//! benches (`benches/ops.rs`) and the comparison runner (`src/bin/compare.rs`, run with
//! `cargo run --release -p benches --bin compare`) drive the same definitions, so a number
//! in one is the number in the other. Multi-process workloads start worker processes
//! ([`worker`]): the `bench-worker` binary for the criterion benches, the runner's own
//! binary re-executed as `compare __worker` for the runner (so `cargo run --bin compare`
//! builds everything it needs); never `fork`.
//!
//! Peers other than the in-process baseline sit behind the `peers` cargo feature so the
//! normal test build stays light. Results and how they were made: `BENCHMARKS.md` at the
//! workspace root.

mod baseline;
mod engine;
mod keys;
mod measure;
mod multiproc;
mod peers;
mod perl;
mod registry;
mod report;
mod runner;
mod workload;

pub mod worker;

pub use baseline::FcntlPair;
pub use engine::{BenchStore, Location, OpenedEngine, Sizing, ViaApi};
pub use keys::{KeySet, mix64, permutation, session_keys};
pub use measure::{
    Budget, Interleaved, Mode, Summary, measure_interleaved, measure_interleaved_switching,
    measure_op,
};
pub use multiproc::{
    BackgroundWriter, WriterTarget, read_under_writer, read_with_and_without_writer, throughput,
};
pub use peers::MutexHashMap;
#[cfg(feature = "peers")]
pub use peers::{Lmdb, LocalRedis};
pub use perl::{PerlDriver, PerlResult};
pub use registry::EngineId;
pub use report::{Baseline, Cell, Goal, Pairing, Report, Row, SideBySide, Skip};
pub use runner::{Runner, RunnerOptions};
pub use workload::{HOT_KEYS, TTL, Workload, WorkloadKind};
