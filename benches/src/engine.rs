//! The bench view of a store, the adapter from `store-api`, and what an opened store
//! comes with (its sizing, where it lives).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use store_api::{Expiry, Key, Result, SessionStore, UpdateAction, WriteMode};

/// The operations the workloads use: a narrow view of [`SessionStore`].
///
/// Engines of the workspace get it through [`ViaApi`], so their numbers are the cost of the
/// contract as a user calls it. Peers (LMDB, the `Mutex<HashMap>` baseline) implement it
/// directly in small adapters that keep the same semantics: an absolute expiry checked on
/// every read, an atomic read-modify-write for `incr`.
pub trait BenchStore: Send + Sync {
    /// Copies the live value of `key` into `buf`; whether a live entry was found.
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<bool>;

    /// The live value of `key` in a new `Vec` (`SessionStore::get`); the default copies
    /// through [`get_into`](Self::get_into) into a fresh buffer.
    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.get_into(key, &mut buf)?.then_some(buf))
    }

    /// Writes `value` under `key` whether or not it exists (Perl's `store_session_data`).
    fn put(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<()>;

    /// Atomically adds one to the little-endian `u64` counter stored under `key` (0 if
    /// absent) and returns the new count.
    fn incr(&self, key: &Key) -> Result<u64>;

    /// Moves the expiry of a live entry; whether one was found.
    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool>;

    /// Removes every expired entry; how many were removed.
    fn purge_expired(&self) -> Result<u64>;

    /// Bulk load for workload setup (not timed); the default is a loop of [`put`](Self::put).
    fn load(&self, keys: &[Key], value: &[u8], expiry: Expiry) -> Result<()> {
        keys.iter().try_for_each(|k| self.put(k, value, expiry))
    }
}

/// Drives any [`SessionStore`] through its public contract.
#[derive(Debug)]
pub struct ViaApi<S>(pub S);

/// Decodes a counter value; anything that is not 8 bytes counts as zero.
pub(crate) fn counter(value: &[u8]) -> u64 {
    value.try_into().map(u64::from_le_bytes).unwrap_or_default()
}

impl<S: SessionStore> BenchStore for ViaApi<S> {
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<bool> {
        Ok(self.0.get_into(key, buf)?.is_some())
    }

    fn get(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key)?.map(|e| e.value))
    }

    fn put(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<()> {
        self.0.put(key, value, expiry, WriteMode::Upsert).map(drop)
    }

    fn incr(&self, key: &Key) -> Result<u64> {
        let mut next = 0;
        self.0.update(key, &mut |entry| {
            next = entry.map_or(0, |e| counter(&e.value)) + 1;
            UpdateAction::set(next.to_le_bytes().to_vec(), Expiry::After(crate::TTL))
        })?;
        Ok(next)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        self.0.touch(key, expiry)
    }

    fn purge_expired(&self) -> Result<u64> {
        self.0.purge_expired()
    }
}

/// How big a store a workload needs, so bounded engines are sized to hold it all (a
/// workload that evicts would measure eviction, not reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Entries the workload stores.
    pub entries: usize,
    /// Bytes per value.
    pub value_len: usize,
}

impl Sizing {
    /// Bytes to reserve: twice the raw data (keys of 48 bytes plus 64 bytes of per-entry
    /// overhead), at least 32 MiB: the headroom a user would give, enough that no
    /// workload comes near eviction (a miss in a hit workload would be flagged), and no
    /// more, since a sparser file costs the engine cache and TLB misses.
    pub fn bytes(self) -> u64 {
        let raw = self.entries as u64 * (self.value_len as u64 + 48 + 64);
        (raw * 2).max(32 << 20)
    }
}

/// Where a store lives, so a worker process can open the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Only this process can reach it (`store-memory`, the `Mutex<HashMap>` baseline).
    InProcess,
    /// A file or directory on this host.
    Path(PathBuf),
    /// A Redis server.
    Redis(String),
}

impl Location {
    /// The location as one command-line argument.
    pub fn to_arg(&self) -> String {
        match self {
            Location::InProcess => "in-process".to_string(),
            Location::Path(p) => format!("path:{}", p.display()),
            Location::Redis(url) => format!("redis:{url}"),
        }
    }

    /// Parses [`to_arg`](Self::to_arg)'s output.
    pub fn from_arg(arg: &str) -> Option<Self> {
        if arg == "in-process" {
            Some(Location::InProcess)
        } else if let Some(p) = arg.strip_prefix("path:") {
            Some(Location::Path(PathBuf::from(p)))
        } else {
            arg.strip_prefix("redis:")
                .map(|u| Location::Redis(u.to_string()))
        }
    }
}

/// A freshly created store and what keeps it alive.
pub struct OpenedEngine {
    /// The store.
    pub store: Arc<dyn BenchStore>,
    /// Where it lives.
    pub location: Location,
    /// The temporary directory holding its files, removed on drop.
    pub dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for OpenedEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedEngine")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip() {
        for l in [
            Location::InProcess,
            Location::Path("/tmp/x y".into()),
            Location::Redis("redis://127.0.0.1:6379/".into()),
        ] {
            assert_eq!(Location::from_arg(&l.to_arg()), Some(l));
        }
    }

    #[test]
    fn counter_decodes_le_u64() {
        assert_eq!(counter(&7u64.to_le_bytes()), 7);
        assert_eq!(counter(b"junk"), 0);
    }
}
