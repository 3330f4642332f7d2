//! The in-process baseline: a bare `Mutex<HashMap<String, Vec<u8>>>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use store_api::{Expiry, Key, Result};

use super::header;
use crate::registry::EngineAdapter;
use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing};

/// A `Mutex<HashMap<String, Vec<u8>>>`: what a single-process web server would do with no
/// sharing across processes, the floor any shared engine is measured against.
///
/// Each value carries its absolute expiry in an 8-byte header, checked on read, so the
/// baseline does the same work per operation as a session store and no more.
#[derive(Debug, Default)]
pub struct MutexHashMap {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl MutexHashMap {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // A panic under the lock cannot leave a half-written entry: every write is one
        // insert.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BenchStore for MutexHashMap {
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<bool> {
        let c = header::coarse();
        let map = self.lock();
        Ok(header::copy_live(
            map.get(key.as_str()).map(Vec::as_slice),
            c,
            buf,
        ))
    }

    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let c = header::coarse();
        let map = self.lock();
        Ok(header::live_value(map.get(key.as_str()).map(Vec::as_slice), c).map(<[u8]>::to_vec))
    }

    fn put(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<()> {
        let mut rec = Vec::new();
        header::encode(&mut rec, header::resolve_now(expiry), value);
        let mut map = self.lock();
        match map.get_mut(key.as_str()) {
            Some(old) => *old = rec,
            None => {
                map.insert(key.as_str().to_owned(), rec);
            }
        }
        Ok(())
    }

    fn incr(&self, key: &Key) -> Result<u64> {
        let now = header::now();
        let expires = header::resolve(Expiry::After(crate::TTL), now);
        let mut map = self.lock();
        let rec = map.entry(key.as_str().to_owned()).or_default();
        let old = if header::live(rec, now) {
            crate::engine::counter(&rec[header::LEN..])
        } else {
            0
        };
        header::encode(rec, expires, &(old + 1).to_le_bytes());
        Ok(old + 1)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let now = header::now();
        let mut map = self.lock();
        match map.get_mut(key.as_str()) {
            Some(rec) if header::live(rec, now) => {
                rec[..header::LEN].copy_from_slice(&header::resolve(expiry, now).to_le_bytes());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = header::now();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, rec| header::live(rec, now));
        Ok((before - map.len()) as u64)
    }
}

/// The registry's adapter for the `Mutex<HashMap>` baseline: unbounded, and reachable
/// from this process only.
pub(crate) struct HashMapEngine;

impl EngineAdapter for HashMapEngine {
    fn id(&self) -> EngineId {
        EngineId::HashMap
    }

    fn name(&self) -> &'static str {
        "mutex-hashmap"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["hashmap"]
    }

    fn shared_across_processes(&self) -> bool {
        false
    }

    fn create(&self, _sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
        Ok(OpenedEngine {
            store: Arc::new(MutexHashMap::default()),
            location: Location::InProcess,
            dir: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_session_store() {
        super::super::tests::smoke(&MutexHashMap::default());
    }
}
