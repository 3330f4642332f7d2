//! The conformance harness: a fresh temporary directory per store.

use std::path::PathBuf;
use std::sync::Arc;

use conformance::{Corruption, Harness, Size, Spec, Unsupported};

use crate::DirStore;

/// One store: a directory, removed when the harness that made it is dropped.
#[derive(Debug)]
pub struct DirHarness {
    dir: PathBuf,
    /// `None` in a worker process (the parent owns the directory).
    _owned: Option<tempfile::TempDir>,
    spec: Spec,
}

impl Harness for DirHarness {
    type Store = DirStore;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        if spec.size == Size::Small {
            return Err(Unsupported::new(
                "dirstore is unbounded: no capacity to fill",
            ));
        }
        let tmp = tempfile::tempdir().map_err(|e| Unsupported::new(format!("no temp dir: {e}")))?;
        // The store itself is created by the first open, as the suite asks.
        Ok(DirHarness {
            dir: tmp.path().join("store"),
            _owned: Some(tmp),
            spec: spec.clone(),
        })
    }

    fn open(&self) -> store_api::Result<DirStore> {
        let mut b = DirStore::builder(&self.dir);
        if let Some(clock) = &self.spec.clock {
            b = b.clock(Arc::new(clock.clone()));
        }
        if let Some(ttl) = self.spec.default_ttl {
            b = b.default_ttl(ttl);
        }
        b.open()
    }

    fn unreachable(_spec: &Spec) -> Result<store_api::Result<DirStore>, Unsupported> {
        Ok(DirStore::builder("/dev/null/dirstore").open())
    }

    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        let io = |e: std::io::Error| Unsupported::new(format!("corrupting: {e}"));
        if how == Corruption::Incompatible {
            return std::fs::write(self.dir.join("format"), "dirstore 999\n").map_err(io);
        }
        let entries = std::fs::read_dir(self.dir.join("entries")).map_err(io)?;
        for (i, e) in entries.enumerate() {
            let path = e.map_err(io)?.path();
            let mut bytes = std::fs::read(&path).map_err(io)?;
            match how {
                // Garbage over the header or the value of every other entry.
                Corruption::Scribble if i % 2 == 0 => {
                    let at = (i * 7) % bytes.len();
                    let end = (at + 9).min(bytes.len());
                    bytes[at..end].fill(0xa5);
                }
                // Every entry cut short, inside its header for some.
                Corruption::Truncate => bytes.truncate(i % (bytes.len() / 2).max(1)),
                _ => continue,
            }
            std::fs::write(&path, bytes).map_err(io)?;
        }
        Ok(())
    }

    fn worker_args(&self) -> Option<Vec<String>> {
        Some(vec![self.dir.to_string_lossy().into_owned()])
    }

    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        match args {
            [dir] => Ok(DirHarness {
                dir: dir.into(),
                _owned: None,
                spec: Spec::new(),
            }),
            _ => Err(format!(
                "expected one argument, the directory; got {args:?}"
            )),
        }
    }
}
