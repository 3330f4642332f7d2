//! LMDB through heed, with `NO_SYNC | WRITE_MAP`: the nearest shared-memory peer.

use std::path::Path;
use std::sync::Arc;

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};
use store_api::{Error, Expiry, Key, Result};

use super::header;
use crate::registry::{EngineAdapter, not_attachable};
use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing};

/// An LMDB environment with one unnamed database of `key -> header + value`.
///
/// Each operation is its own transaction, as a session store would run it: a read
/// transaction per `get`, a write transaction per `put`, `incr` and `touch`. `NO_SYNC`
/// skips the fsync at commit and `WRITE_MAP` writes through the shared mapping, the
/// fastest durable-enough LMDB setup for sessions.
///
/// The environment is leaked on purpose: heed 0.23 ties a [`Database`] to a borrow of its
/// [`Env`]. One environment stays mapped per measured cell until the process exits (the
/// `get_at_1m` one is the largest).
#[derive(Debug)]
pub struct Lmdb {
    env: &'static Env,
    db: Database<'static, Str, Bytes>,
}

fn backend(context: &str) -> impl FnOnce(heed::Error) -> Error + '_ {
    move |e| Error::backend(format!("lmdb: {context}"), e)
}

impl Lmdb {
    /// Opens (creating if needed) the environment in directory `dir`, with a map large
    /// enough for `sizing`.
    ///
    /// # Errors
    /// When LMDB fails to open or create the database.
    pub fn open(dir: &Path, sizing: Sizing) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        // Four times the fastmmap reservation (address space only): LMDB's copy-on-write
        // B-tree needs slack, and the map size does not make it sparser.
        let map = usize::try_from(sizing.bytes() * 4).unwrap_or(usize::MAX);
        options
            .map_size(map.next_multiple_of(1 << 20))
            .max_readers(256);
        // SAFETY: NO_SYNC only drops durability after an OS crash, which sessions accept;
        // WRITE_MAP is sound as long as no process writes the file outside LMDB, and only
        // LMDB touches this benchmark's private directory.
        unsafe {
            options.flags(EnvFlags::NO_SYNC | EnvFlags::WRITE_MAP);
        }
        // SAFETY: the directory is private to this benchmark run; the file is never
        // truncated or modified outside LMDB, and it is on a local filesystem.
        let env = unsafe { options.open(dir) }.map_err(backend("opening the environment"))?;
        let env: &'static Env = Box::leak(Box::new(env));
        let wtxn = env.write_txn().map_err(backend("starting a transaction"))?;
        let db = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                opener
                    .create_database::<Str, Bytes>(wtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(backend("creating the database"))?
            .unwrap_commit();
        Ok(Lmdb { env, db })
    }

    fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut heed::RwTxn<'_>) -> heed::Result<T>,
    ) -> Result<T> {
        let mut wtxn = self.env.write_txn().map_err(backend(what))?;
        let out = f(&mut wtxn).map_err(backend(what))?;
        wtxn.commit().map_err(backend(what))?;
        Ok(out)
    }
}

impl BenchStore for Lmdb {
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<bool> {
        let c = header::coarse();
        let rtxn = self.env.read_txn().map_err(backend("get"))?;
        let rec = self.db.get(&rtxn, key.as_str()).map_err(backend("get"))?;
        Ok(header::copy_live(rec, c, buf))
    }

    fn put(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<()> {
        let mut rec = Vec::new();
        header::encode(&mut rec, header::resolve_now(expiry), value);
        self.write("put", |w| self.db.put(w, key.as_str(), &rec))
    }

    fn incr(&self, key: &Key) -> Result<u64> {
        let now = header::now();
        let expires = header::resolve(Expiry::After(crate::TTL), now);
        let mut rec = Vec::new();
        self.write("incr", |w| {
            let old = match self.db.get(w, key.as_str())? {
                Some(r) if header::live(r, now) => crate::engine::counter(&r[header::LEN..]),
                _ => 0,
            };
            header::encode(&mut rec, expires, &(old + 1).to_le_bytes());
            self.db.put(w, key.as_str(), &rec)?;
            Ok(old + 1)
        })
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let now = header::now();
        let mut rec = Vec::new();
        self.write("touch", |w| {
            let Some(old) = self.db.get(w, key.as_str())? else {
                return Ok(false);
            };
            if !header::live(old, now) {
                return Ok(false);
            }
            header::encode(&mut rec, header::resolve(expiry, now), &old[header::LEN..]);
            self.db.put(w, key.as_str(), &rec)?;
            Ok(true)
        })
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = header::now();
        self.write("purge", |w| {
            let mut expired = Vec::new();
            for item in self.db.iter(w)? {
                let (k, rec) = item?;
                if !header::live(rec, now) {
                    expired.push(k.to_owned());
                }
            }
            for k in &expired {
                self.db.delete(w, k)?;
            }
            Ok(expired.len() as u64)
        })
    }

    fn load(&self, keys: &[Key], value: &[u8], expiry: Expiry) -> Result<()> {
        let mut rec = Vec::new();
        header::encode(&mut rec, header::resolve(expiry, header::now()), value);
        for chunk in keys.chunks(10_000) {
            self.write("load", |w| {
                chunk
                    .iter()
                    .try_for_each(|k| self.db.put(w, k.as_str(), &rec))
            })?;
        }
        Ok(())
    }
}

/// The registry's adapter for LMDB.
pub(crate) struct LmdbEngine;

impl EngineAdapter for LmdbEngine {
    fn id(&self) -> EngineId {
        EngineId::Lmdb
    }

    fn name(&self) -> &'static str {
        "lmdb"
    }

    fn shared_across_processes(&self) -> bool {
        true
    }

    fn create(&self, sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
        let dir = tempfile::Builder::new()
            .prefix("bench-lmdb-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory for LMDB", e))?;
        let store = Lmdb::open(dir.path(), sizing)?;
        Ok(OpenedEngine {
            store: Arc::new(store),
            location: Location::Path(dir.path().to_path_buf()),
            dir: Some(dir),
        })
    }

    fn attach(&self, location: &Location, sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
        let Location::Path(dir) = location else {
            return Err(not_attachable(self.name(), location));
        };
        Ok(Arc::new(Lmdb::open(dir, sizing)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_session_store() {
        let sizing = Sizing {
            entries: 10,
            value_len: 10,
        };
        let opened = LmdbEngine.create(sizing, "").unwrap();
        super::super::tests::smoke(&*opened.store);
    }
}
