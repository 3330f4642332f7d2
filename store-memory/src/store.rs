//! The in-process engine.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use store_api::{
    Capabilities, Clock, Entry, EntryMeta, Error, EvictionPolicy, Evictions, Expiry, Key,
    MAX_KEY_LEN, Result, ScanEntry, ScanOptions, SessionStore, Stats, Support, Timestamp,
    UpdateAction, UpdateOutcome, Version, WriteMode, WriteOutcome, is_live, visit_part,
};

use crate::MemoryStoreBuilder;
use crate::shard::{ENTRY_OVERHEAD, Shard, cost};

/// A thread-safe in-process session store: the reference behaviour of the contract.
///
/// Entries live in a fixed number of shards, each a `HashMap` behind its own mutex.
/// Optionally bounded: a write that needs room reclaims the shard's expired entries first,
/// then evicts live ones in LRU order (reported) or fails with
/// [`Error::NoSpace`](store_api::Error::NoSpace), as the
/// [`EvictionPolicy`] says. Nothing survives the process.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    default_ttl: Option<Duration>,
    policy: EvictionPolicy,
    /// Capacity of each shard in bytes, if bounded.
    shard_capacity: Option<usize>,
    max_value_len: usize,
    /// Store-wide so that a version is never reused for any key.
    next_version: std::sync::atomic::AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An unbounded store on the system clock.
    pub fn new() -> Self {
        MemoryStoreBuilder::default()
            .build()
            .expect("default options are valid")
    }

    /// Options for a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    pub(crate) fn from_builder(b: MemoryStoreBuilder, shards: usize) -> Self {
        let bounded = b.capacity.is_some();
        MemoryStore {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(bounded)))
                .collect(),
            hasher: RandomState::new(),
            clock: b.clock,
            default_ttl: b.default_ttl,
            policy: b.policy,
            shard_capacity: b.capacity.map(|c| c / shards),
            max_value_len: b.max_value_len,
            next_version: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }

    /// The largest value accepted with a key of `key_len` bytes.
    fn max_value_for(&self, key_len: usize) -> usize {
        match self.shard_capacity {
            Some(cap) => self.max_value_len.min(cap - key_len - ENTRY_OVERHEAD),
            None => self.max_value_len,
        }
    }

    fn new_version(&self) -> Version {
        let raw = self
            .next_version
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Version::new(raw).expect("versions start at 1 and a u64 does not wrap")
    }

    /// Writes `value` into a locked shard after the mode check; makes room first.
    fn write_locked(
        &self,
        shard: &mut Shard,
        key: &Key,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<WriteOutcome> {
        let mut evicted_live = 0;
        let mut evicted_expired = 0;
        if let Some(cap) = self.shard_capacity {
            let old = shard
                .peek(key)
                .map_or(0, |e| cost(key.len(), e.value.len()));
            let needed = cost(key.len(), value.len());
            if shard.bytes - old + needed > cap {
                // Expired entries go first, always. The key's own old entry is replaced,
                // not evicted, so it is taken out of the count first.
                let own = shard.remove(key);
                let own_expired = own.as_ref().is_some_and(|e| !is_live(e.expires_at, now));
                evicted_expired = shard.remove_expired(now);
                while shard.bytes + needed > cap {
                    let victim = match self.policy {
                        EvictionPolicy::Lru => shard.lru_victim(),
                        _ => None,
                    };
                    let Some(victim) = victim else {
                        // Put the key's own entry back: a failed write changes nothing a
                        // reader can see (reclaimed expired entries were already absent).
                        if let (Some(e), false) = (own, own_expired) {
                            shard.insert(key.clone(), e);
                        }
                        shard.counters.evicted_expired += evicted_expired;
                        return Err(Error::NoSpace {
                            key: key.clone(),
                            needed,
                        });
                    };
                    shard.remove(&victim);
                    evicted_live += 1;
                }
            }
        }
        let version = self.new_version();
        shard.insert(
            key.clone(),
            Entry {
                value: value.to_vec(),
                expires_at,
                version,
            },
        );
        shard.counters.writes += 1;
        shard.counters.evicted_live += evicted_live;
        shard.counters.evicted_expired += evicted_expired;
        Ok(WriteOutcome {
            version,
            evicted: Evictions::Counted {
                live: evicted_live,
                expired: evicted_expired,
            },
        })
    }

    fn check_len(&self, key: &Key, len: usize) -> Result<()> {
        let max = self.max_value_for(key.len());
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        Ok(())
    }
}

/// Removes `key` from a locked shard; whether a live entry went (counted as a write).
fn delete_locked(shard: &mut Shard, key: &Key, now: Timestamp) -> bool {
    let removed = shard
        .remove(key)
        .is_some_and(|e| is_live(e.expires_at, now));
    if removed {
        shard.counters.writes += 1;
    }
    removed
}

impl MemoryStore {
    /// `f` of the live entry of `key`, counted as a read (and a hit). The clock is read
    /// before the shard lock is taken, so that the lock is not held across it.
    fn read_live<T>(&self, key: &Key, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        shard.counters.reads += 1;
        let found = shard.get_live(key, now).map(f);
        if found.is_some() {
            shard.counters.hits += 1;
        }
        found
    }
}

/// Locks a shard, ignoring poison: a panic while a shard is locked can only come from an
/// update closure, which runs before anything changes, so the data is consistent.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionStore for MemoryStore {
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        Ok(self.read_live(key, Entry::clone))
    }

    /// Copies the value straight into `buf` under the shard lock (no `Entry` clone).
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        Ok(self.read_live(key, |e| {
            buf.clear();
            buf.extend_from_slice(&e.value);
            e.meta()
        }))
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        self.check_len(key, value.len())?;
        let now = self.clock.now();
        let expires_at = expiry.resolve(now, self.default_ttl);
        let mut shard = self.shard(key);
        let current = shard
            .peek(key)
            .filter(|e| is_live(e.expires_at, now))
            .map(|e| e.version);
        mode.check(key, current)?;
        self.write_locked(&mut shard, key, value, expires_at, now)
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        let now = self.clock.now();
        Ok(delete_locked(&mut self.shard(key), key, now))
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if shard.peek(key).is_none_or(|e| !is_live(e.expires_at, now)) {
            return Ok(false);
        }
        shard.set_expiry(key, expiry.resolve(now, self.default_ttl));
        shard.counters.writes += 1;
        Ok(true)
    }

    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        shard.counters.reads += 1;
        let action = {
            let current = shard.get_live(key, now);
            let hit = current.is_some();
            let action = f(current);
            if hit {
                shard.counters.hits += 1;
            }
            action
        };
        match action {
            UpdateAction::Keep => Ok(UpdateOutcome::Kept),
            UpdateAction::Delete => Ok(UpdateOutcome::Deleted {
                existed: delete_locked(&mut shard, key, now),
            }),
            UpdateAction::Set { value, expiry } => {
                self.check_len(key, value.len())?;
                let expires_at = expiry.resolve(now, self.default_ttl);
                self.write_locked(&mut shard, key, &value, expires_at, now)
                    .map(UpdateOutcome::Written)
            }
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut total = 0;
        for m in self.shards.iter() {
            let mut shard = lock(m);
            let n = shard.remove_expired(now);
            shard.counters.purged += n;
            total += n;
        }
        Ok(total)
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        for m in self.shards.iter() {
            let shard = lock(m);
            let c = shard.counters;
            s.entries += shard.len() as u64;
            s.bytes_used += shard.bytes as u64;
            s.reads += c.reads;
            s.hits += c.hits;
            s.writes += c.writes;
            s.evicted_live += c.evicted_live;
            s.evicted_expired += c.evicted_expired;
            s.purged += c.purged;
        }
        s.capacity = self.shard_capacity.map(|c| (c * self.shards.len()) as u64);
        Ok(s)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::new(self.max_value_for(MAX_KEY_LEN));
        caps.bounded = self.shard_capacity.is_some();
        caps.scan = Support::Exact;
        caps.clear = Support::Exact;
        caps
    }

    /// Shard by shard: each shard's matching entries are copied out under its lock (the
    /// only time writers of that shard wait), then visited with no lock held.
    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        let mut visited = 0;
        for m in self.shards.iter() {
            let now = self.clock.now();
            let part = lock(m).live_entries(options, now);
            if visit_part(part, visit, &mut visited).is_break() {
                break;
            }
        }
        Ok(visited)
    }

    /// Shard by shard, each emptied at once under its lock: an entry written to a shard
    /// already cleared survives.
    fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        for m in self.shards.iter() {
            let now = self.clock.now();
            let mut shard = lock(m);
            let n = shard.clear(now);
            shard.counters.writes += n;
            removed += n;
        }
        Ok(removed)
    }
}
