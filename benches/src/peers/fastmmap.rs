//! `store-fastmmap`, the flagship engine, through its builder with Perl's option names:
//! one registry row per lock kind (`store-fastmmap` for fcntl, the default,
//! `store-fastmmap-futex` for futex).

use std::path::Path;
use std::sync::Arc;

use store_api::{Error, Result};
use store_fastmmap::{FastMmapStore, LockKind};

use crate::registry::{EngineAdapter, not_attachable};
use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing, TTL, ViaApi};

/// The builder every process uses: the same `cache_size` gives the same geometry, and
/// everything else is the engine's default (page size, LRU policy), as a user would
/// have it.
fn builder(path: &Path, sizing: Sizing) -> store_fastmmap::FastMmapBuilder {
    FastMmapStore::builder()
        .storage(path)
        .cache_size(sizing.bytes())
        .expires(TTL)
}

/// The registry's adapter for `store-fastmmap` with one lock kind.
pub(crate) struct FastmmapEngine {
    id: EngineId,
    name: &'static str,
    aliases: &'static [&'static str],
    kind: LockKind,
}

impl FastmmapEngine {
    /// `store-fastmmap` as a user gets it: the default, fcntl, lock kind.
    pub(crate) const FCNTL: FastmmapEngine = FastmmapEngine {
        id: EngineId::Fastmmap,
        name: "store-fastmmap",
        aliases: &[],
        kind: LockKind::Fcntl,
    };

    /// `store-fastmmap` with the futex lock kind (Linux only).
    pub(crate) const FUTEX: FastmmapEngine = FastmmapEngine {
        id: EngineId::FastmmapFutex,
        name: "store-fastmmap-futex",
        aliases: &["futex"],
        kind: LockKind::Futex,
    };
}

impl EngineAdapter for FastmmapEngine {
    fn id(&self) -> EngineId {
        self.id
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }

    /// Its `Capabilities` say so; asking them needs a file, so the test below does.
    fn shared_across_processes(&self) -> bool {
        true
    }

    fn available(&self, _redis_url: &str) -> std::result::Result<(), String> {
        if self.kind == LockKind::Futex && !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return Err("the futex lock kind needs Linux with glibc".to_string());
        }
        Ok(())
    }

    fn create(&self, sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "bench-{}-",
                self.name.trim_start_matches("store-")
            ))
            .tempdir()
            .map_err(|e| {
                Error::io(
                    format!("creating a temporary directory for {}", self.name),
                    e,
                )
            })?;
        let path = dir.path().join("sessions");
        let store = builder(&path, sizing)
            .lock_kind(self.kind)
            .init_file(true)
            .open()?;
        Ok(OpenedEngine {
            store: Arc::new(ViaApi(store)),
            location: Location::Path(path),
            dir: Some(dir),
        })
    }

    /// Worker processes open the file with the kind of their engine: a file of another
    /// kind is refused (`Incompatible`) rather than measured under the wrong name.
    fn attach(&self, location: &Location, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
        let Location::Path(path) = location else {
            return Err(not_attachable(self.name(), location));
        };
        Ok(Arc::new(ViaApi(
            builder(path, sizing)
                .lock_kind(self.kind)
                .init_file(false)
                .open()?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use store_api::SessionStore;

    use super::*;

    const SIZING: Sizing = Sizing {
        entries: 10,
        value_len: 10,
    };

    /// The adapters this build can run (the futex one only on Linux).
    fn runnable() -> Vec<&'static FastmmapEngine> {
        [&FastmmapEngine::FCNTL, &FastmmapEngine::FUTEX]
            .into_iter()
            .filter(|e| e.available("").is_ok())
            .collect()
    }

    #[test]
    fn shared_as_its_capabilities_say() {
        let dir = tempfile::tempdir().unwrap();
        let store = builder(&dir.path().join("s"), SIZING).open().unwrap();
        for e in [&FastmmapEngine::FCNTL, &FastmmapEngine::FUTEX] {
            assert_eq!(
                e.shared_across_processes(),
                store.capabilities().shared_across_processes,
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn names_say_the_lock_kind() {
        assert_eq!(FastmmapEngine::FCNTL.kind, LockKind::default());
        assert_eq!(FastmmapEngine::FCNTL.name, "store-fastmmap");
        let futex = &FastmmapEngine::FUTEX;
        assert_eq!(
            futex.name,
            format!("store-fastmmap-{}", futex.kind.name()),
            "the futex row is named after its kind"
        );
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(futex.available(""), Ok(()));
        } else {
            assert_eq!(
                futex.available(""),
                Err("the futex lock kind needs Linux with glibc".to_string())
            );
        }
    }

    #[test]
    fn each_kind_creates_its_file_and_attaches_to_it() {
        for e in runnable() {
            let opened = e.create(SIZING, "").unwrap();
            let Location::Path(path) = &opened.location else {
                panic!("{}: not a file: {:?}", e.name, opened.location);
            };
            // Opened with no kind option, the file says which kind it was created with.
            let plain = builder(path, SIZING).open().unwrap();
            assert_eq!(plain.lock_kind(), e.kind, "{}", e.name);
            let attached = e.attach(&opened.location, SIZING).unwrap();
            crate::peers::tests::smoke(&*attached);
            let mut buf = Vec::new();
            let k = store_api::Key::new("session:a").unwrap();
            assert!(
                !opened.store.get_into(&k, &mut buf).unwrap(),
                "{}: the smoke test's last write was expired and purged",
                e.name
            );
            let c = store_api::Key::new("c").unwrap();
            assert_eq!(
                opened.store.incr(&c).unwrap(),
                3,
                "{}: the creator sees the attached handle's counter",
                e.name
            );
        }
    }

    #[test]
    fn a_file_of_the_other_kind_is_refused() {
        let engines = runnable();
        let [fcntl, futex] = engines[..] else {
            return; // only one kind here: nothing to mix up
        };
        for (creator, other) in [(fcntl, futex), (futex, fcntl)] {
            let opened = creator.create(SIZING, "").unwrap();
            let err = other.attach(&opened.location, SIZING).err();
            assert!(
                matches!(err, Some(Error::Incompatible { .. })),
                "{} attached to a {} file: {err:?}",
                other.name,
                creator.name
            );
        }
    }
}
