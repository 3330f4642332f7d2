//! One shard: a map plus, for bounded stores, an LRU index and an expiry index.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use store_api::{Entry, Key, ScanEntry, ScanOptions, Timestamp, is_live};

/// Bytes charged per entry on top of its key and value, so that a bounded store's
/// capacity stays an honest bound on memory (map slot, indexes, allocation headers).
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// What an entry costs against a bounded store's capacity.
pub(crate) fn cost(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + ENTRY_OVERHEAD
}

#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) entry: Entry,
    /// LRU stamp; meaningful only when the shard keeps indexes.
    last_used: u64,
}

/// Counters kept under the shard's lock, summed by `stats`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) reads: u64,
    pub(crate) hits: u64,
    pub(crate) writes: u64,
    pub(crate) evicted_live: u64,
    pub(crate) evicted_expired: u64,
    pub(crate) purged: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    map: HashMap<Key, Item>,
    /// Whether the LRU and expiry indexes are kept (bounded stores only).
    indexed: bool,
    /// `last_used` stamp -> key, oldest first.
    lru: BTreeMap<u64, Key>,
    /// (expiry ms, key), soonest first.
    expiries: BTreeSet<(u64, Key)>,
    tick: u64,
    pub(crate) bytes: usize,
    pub(crate) counters: Counters,
}

impl Shard {
    pub(crate) fn new(indexed: bool) -> Self {
        Shard {
            indexed,
            ..Shard::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The live entry of `key` at `now`, refreshing its LRU stamp.
    pub(crate) fn get_live(&mut self, key: &Key, now: Timestamp) -> Option<&Entry> {
        let tick = self.next_tick();
        let item = self.map.get_mut(key)?;
        if !is_live(item.entry.expires_at, now) {
            return None;
        }
        if self.indexed {
            // The index's own copy of the key moves to the new stamp: no allocation.
            let k = self
                .lru
                .remove(&item.last_used)
                .unwrap_or_else(|| key.clone());
            self.lru.insert(tick, k);
            item.last_used = tick;
        }
        Some(&item.entry)
    }

    /// The entry of `key` whether live or not, without touching LRU order.
    pub(crate) fn peek(&self, key: &Key) -> Option<&Entry> {
        self.map.get(key).map(|i| &i.entry)
    }

    pub(crate) fn insert(&mut self, key: Key, entry: Entry) {
        self.remove(&key);
        let tick = self.next_tick();
        self.bytes += cost(key.len(), entry.value.len());
        if self.indexed {
            self.lru.insert(tick, key.clone());
            if let Some(t) = entry.expires_at {
                self.expiries.insert((t.as_millis(), key.clone()));
            }
        }
        self.map.insert(
            key,
            Item {
                entry,
                last_used: tick,
            },
        );
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Entry> {
        let item = self.map.remove(key)?;
        self.bytes -= cost(key.len(), item.entry.value.len());
        if self.indexed {
            self.lru.remove(&item.last_used);
            if let Some(t) = item.entry.expires_at {
                self.expiries.remove(&(t.as_millis(), key.clone()));
            }
        }
        Some(item.entry)
    }

    pub(crate) fn set_expiry(&mut self, key: &Key, expires_at: Option<Timestamp>) {
        let Some(item) = self.map.get_mut(key) else {
            return;
        };
        if self.indexed {
            if let Some(t) = item.entry.expires_at {
                self.expiries.remove(&(t.as_millis(), key.clone()));
            }
            if let Some(t) = expires_at {
                self.expiries.insert((t.as_millis(), key.clone()));
            }
        }
        item.entry.expires_at = expires_at;
    }

    /// The live entries a scan with `opts` visits, copied out.
    pub(crate) fn live_entries(&self, opts: &ScanOptions, now: Timestamp) -> Vec<ScanEntry> {
        self.map
            .iter()
            .filter(|(k, i)| is_live(i.entry.expires_at, now) && opts.matches(k))
            .map(|(k, i)| {
                let e = &i.entry;
                let value = opts.values.then(|| e.value.clone());
                ScanEntry::new(k.clone(), e.expires_at, e.version, e.value.len(), value)
            })
            .collect()
    }

    /// Removes every entry; returns how many were live at `now`.
    pub(crate) fn clear(&mut self, now: Timestamp) -> u64 {
        let live = self
            .map
            .values()
            .filter(|i| is_live(i.entry.expires_at, now))
            .count();
        self.map.clear();
        self.lru.clear();
        self.expiries.clear();
        self.bytes = 0;
        live as u64
    }

    /// Removes every expired entry; returns how many.
    pub(crate) fn remove_expired(&mut self, now: Timestamp) -> u64 {
        let expired: Vec<Key> = if self.indexed {
            self.expiries
                .iter()
                .take_while(|(t, _)| !is_live(Some(Timestamp::from_millis(*t)), now))
                .map(|(_, k)| k.clone())
                .collect()
        } else {
            self.map
                .iter()
                .filter(|(_, i)| !is_live(i.entry.expires_at, now))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in &expired {
            self.remove(k);
        }
        expired.len() as u64
    }

    /// The least recently used key (the writer has taken its own key out already).
    pub(crate) fn lru_victim(&self) -> Option<Key> {
        self.lru.values().next().cloned()
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}
