//! The engine registry: [`EngineId`] names every engine and peer the benches know, and
//! one table of adapters, one per `peers/<x>.rs`, says how to run each.

use std::fmt;
use std::sync::Arc;

use store_api::{Error, Result};

use crate::peers;
use crate::{BenchStore, Location, OpenedEngine, Sizing};

/// Every engine and peer the benches know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineId {
    /// `store-fastmmap`: the flagship, one mmap'ed file shared by every process, with its
    /// default lock kind (fcntl).
    Fastmmap,
    /// `store-fastmmap-futex`: the flagship with the futex lock kind (Linux only).
    FastmmapFutex,
    /// `store-memory`: the in-process reference engine.
    Memory,
    /// A bare `Mutex<HashMap<String, Vec<u8>>>`: the cost of doing nothing across
    /// processes.
    HashMap,
    /// LMDB through heed, `NO_SYNC | WRITE_MAP` (feature `peers`).
    Lmdb,
    /// Redis on loopback through `store-redis` (feature `peers`).
    Redis,
    /// A local Redis Cluster (three primaries, three replicas) through `store-redis`
    /// (feature `peers`; `redis-server` and `redis-cli` installed).
    RedisCluster,
}

/// How the benches run one engine or peer: one impl per `peers/<x>.rs`, the same shape as
/// a `conformance::Harness` (what every engine must answer, and defaults for what only
/// some can do).
pub(crate) trait EngineAdapter: Sync {
    /// The engine this adapter runs.
    fn id(&self) -> EngineId;

    /// The name used on the command line and in tables.
    fn name(&self) -> &'static str;

    /// Further names the command line accepts, besides [`name`](Self::name) and the name
    /// without its `store-` prefix.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether several processes see the same entries (multi-process workloads need it).
    /// Workspace engines take it from their `Capabilities` where a store can be made
    /// without a file or a server, and otherwise check it against them in a test.
    fn shared_across_processes(&self) -> bool;

    /// `Ok` if this build can run the engine now, else why not (feature not built, no
    /// server reachable).
    fn available(&self, redis_url: &str) -> std::result::Result<(), String> {
        let _ = redis_url;
        Ok(())
    }

    /// Creates a fresh, empty store sized for `sizing`.
    fn create(&self, sizing: Sizing, redis_url: &str) -> Result<OpenedEngine>;

    /// Opens the store another process created at `location`; the default, for engines
    /// only one process can reach, refuses.
    fn attach(&self, location: &Location, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
        let _ = sizing;
        Err(not_attachable(self.name(), location))
    }
}

/// The error for a location an engine cannot be opened at from another process.
pub(crate) fn not_attachable(engine: &str, location: &Location) -> Error {
    Error::InvalidConfig {
        option: "location",
        reason: format!(
            "{engine} cannot be opened from another process at {}",
            location.to_arg()
        ),
    }
}

/// Every engine's adapter, in [`EngineId`] order, which is table order.
const ADAPTERS: [&dyn EngineAdapter; 7] = [
    &peers::FastmmapEngine::FCNTL,
    &peers::FastmmapEngine::FUTEX,
    &peers::MemoryEngine,
    &peers::HashMapEngine,
    peers::LMDB,
    peers::REDIS,
    peers::REDIS_CLUSTER,
];

impl EngineId {
    /// Every engine, in table order.
    pub const ALL: [EngineId; 7] = [
        EngineId::Fastmmap,
        EngineId::FastmmapFutex,
        EngineId::Memory,
        EngineId::HashMap,
        EngineId::Lmdb,
        EngineId::Redis,
        EngineId::RedisCluster,
    ];

    fn adapter(self) -> &'static dyn EngineAdapter {
        ADAPTERS[self as usize]
    }

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        self.adapter().name()
    }

    /// Looks an engine up by [`name`](Self::name) (or a short form: `fastmmap`,
    /// `fastmmap-futex` or `futex`, `memory`, `hashmap`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        ADAPTERS
            .into_iter()
            .find(|a| {
                a.name() == name
                    || a.name().strip_prefix("store-") == Some(name)
                    || a.aliases().contains(&name)
            })
            .map(|a| a.id())
    }

    /// Whether several processes see the same entries (multi-process workloads need it).
    pub fn shared_across_processes(self) -> bool {
        self.adapter().shared_across_processes()
    }

    /// `Ok` if this build can run the engine now, else why not (feature not built, no
    /// server reachable).
    pub fn available(self, redis_url: &str) -> std::result::Result<(), String> {
        self.adapter().available(redis_url)
    }

    /// Creates a fresh, empty store sized for `sizing`.
    ///
    /// # Errors
    /// When the engine is not available or fails to open.
    pub fn create(self, sizing: Sizing, redis_url: &str) -> Result<OpenedEngine> {
        self.adapter().create(sizing, redis_url)
    }

    /// Opens the store another process created at `location` (worker processes).
    ///
    /// # Errors
    /// When the engine is not available, the location is in-process only, or opening
    /// fails.
    pub fn attach(self, location: &Location, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
        self.adapter().attach(location, sizing)
    }
}

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_engine_id_order() {
        for (i, (e, a)) in EngineId::ALL.into_iter().zip(ADAPTERS).enumerate() {
            assert_eq!(a.id(), e, "row {i} of the table");
            assert_eq!(e as usize, i, "{e:?} is not at its own index");
        }
    }

    #[test]
    fn names_round_trip() {
        for e in EngineId::ALL {
            assert_eq!(EngineId::from_name(e.name()), Some(e));
        }
        assert_eq!(EngineId::from_name("fastmmap"), Some(EngineId::Fastmmap));
        for short in ["fastmmap-futex", "futex", " store-fastmmap-futex "] {
            assert_eq!(
                EngineId::from_name(short),
                Some(EngineId::FastmmapFutex),
                "{short:?}"
            );
        }
        assert_eq!(EngineId::from_name("hashmap"), Some(EngineId::HashMap));
        assert_eq!(EngineId::from_name("nope"), None);
    }

    #[test]
    fn names_and_sharing_are_as_the_command_line_knows_them() {
        let table: Vec<_> = EngineId::ALL
            .into_iter()
            .map(|e| (e.name(), e.shared_across_processes()))
            .collect();
        assert_eq!(
            table,
            [
                ("store-fastmmap", true),
                ("store-fastmmap-futex", true),
                ("store-memory", false),
                ("mutex-hashmap", false),
                ("lmdb", true),
                ("redis", true),
                ("redis-cluster", true),
            ]
        );
    }

    #[test]
    fn in_process_engines_cannot_be_attached() {
        let sizing = Sizing {
            entries: 1,
            value_len: 1,
        };
        for e in [EngineId::Memory, EngineId::HashMap] {
            let err = e
                .attach(&Location::InProcess, sizing)
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|m| m.contains("cannot be opened from another process")),
                "{e}: {err:?}"
            );
        }
    }
}
