//! The one workload definition every engine runs.
//!
//! A [`Workload`] says which keys and values a store holds ([`setup`](Workload::setup))
//! and what one operation is ([`op`](Workload::op)). The criterion benches, the
//! comparison runner and the worker processes all call these two functions, so a
//! workload means the same thing everywhere. Keys are 48-byte session ids
//! ([`session_keys`](crate::session_keys)) visited in a shuffled order laid out
//! contiguously ([`KeySet`]), so the store sees uniformly random keys while the harness's
//! own key fetch stays in cache; values are filled with a byte pattern; every write
//! carries a one-hour expiry ([`TTL`]).

use std::fmt;
use std::time::Duration;

use store_api::{Expiry, Result, Timestamp};

use crate::{BenchStore, KeySet, Sizing, mix64};

/// The expiry of every entry a workload writes: one hour, a typical session lifetime.
pub const TTL: Duration = Duration::from_secs(3600);

/// Keys in the working set of the per-operation workloads.
pub const HOT_KEYS: usize = 1000;

/// Share of entries written already expired in the purge workload.
const PURGE_EXPIRED_SHARE: usize = 10;

/// What a workload measures, which decides how it is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// One operation, repeated; ns per operation.
    Op,
    /// `purge_expired` over a large store; ns per call, the expired share re-added before
    /// each call (not timed).
    Purge,
    /// Worker processes running the 90/10 mix; ns per operation of the aggregate
    /// throughput (1e9 / total ops per second).
    MultiProcess,
    /// `get` hits while another process (a thread, for in-process engines) rewrites the
    /// same keys; ns per read.
    UnderWriter,
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `get` of a live key holding `value_len` bytes, among [`HOT_KEYS`] keys.
    GetHit {
        /// Value size in bytes.
        value_len: usize,
    },
    /// [`Workload::GetHit`] through `get`, which returns the value in a new `Vec` (the
    /// other reads copy into a reused buffer, `get_into`).
    GetNew {
        /// Value size in bytes.
        value_len: usize,
    },
    /// `get` of a key that was never written, in a store holding [`HOT_KEYS`] values of
    /// `value_len` bytes.
    GetMiss {
        /// Size of the stored values in bytes.
        value_len: usize,
    },
    /// Overwrite (upsert) of one of [`HOT_KEYS`] keys with `value_len` bytes.
    Put {
        /// Value size in bytes.
        value_len: usize,
    },
    /// Atomic read-modify-write of an 8-byte counter (`update`), among [`HOT_KEYS`] keys.
    UpdateCounter,
    /// `touch` (new expiry, same value) of one of [`HOT_KEYS`] live keys of 100 bytes.
    Touch,
    /// 90 % `get` hits, 10 % `put`s of 100 bytes over [`HOT_KEYS`] keys, the order mixed.
    Mix,
    /// `purge_expired` over `entries` entries, a tenth of them expired.
    PurgeExpired {
        /// Entries in the store.
        entries: usize,
    },
    /// `get` hit of 100 bytes in a store of `sessions` sessions, keys drawn uniformly.
    GetAt {
        /// Sessions stored.
        sessions: usize,
    },
    /// `workers` processes running [`Workload::Mix`] on one store.
    Throughput {
        /// Worker processes.
        workers: usize,
    },
    /// [`Workload::GetHit`] of 100 bytes while another process rewrites the same keys.
    ReadUnderWriter,
}

fn size_name(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}m", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        4096 => "4k".to_string(),
        n => n.to_string(),
    }
}

fn parse_size(s: &str) -> Option<usize> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 1000),
        b'm' => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok().map(|n| n * mult)
}

fn value_size(s: &str) -> Option<usize> {
    // Value sizes are binary: `4k` is 4096 bytes.
    if s == "4k" {
        Some(4096)
    } else {
        s.parse().ok()
    }
}

impl Workload {
    /// The workloads of a run whose largest store holds `max_sessions` sessions and whose
    /// purge workload holds `purge_entries`, with 1 to `max_workers` worker processes.
    pub fn standard(max_sessions: usize, purge_entries: usize, max_workers: usize) -> Vec<Self> {
        let mut all = vec![
            Workload::GetHit { value_len: 100 },
            Workload::GetHit { value_len: 4096 },
            Workload::GetNew { value_len: 100 },
            Workload::GetMiss { value_len: 100 },
            Workload::GetMiss { value_len: 4096 },
            Workload::Put { value_len: 100 },
            Workload::Put { value_len: 4096 },
            Workload::UpdateCounter,
            Workload::Touch,
            Workload::Mix,
            Workload::PurgeExpired {
                entries: purge_entries,
            },
        ];
        let mut n = 1000;
        while n <= max_sessions {
            all.push(Workload::GetAt { sessions: n });
            n *= 10;
        }
        all.extend((1..=max_workers).map(|workers| Workload::Throughput { workers }));
        all.push(Workload::ReadUnderWriter);
        all
    }

    /// The workload's name in tables and on the command line (`get_hit_100`,
    /// `get_at_1m`, `mp_2`, ...).
    pub fn name(&self) -> String {
        match *self {
            Workload::GetHit { value_len } => format!("get_hit_{}", size_name(value_len)),
            Workload::GetNew { value_len } => format!("get_new_{}", size_name(value_len)),
            Workload::GetMiss { value_len } => format!("get_miss_{}", size_name(value_len)),
            Workload::Put { value_len } => format!("put_{}", size_name(value_len)),
            Workload::UpdateCounter => "update_counter".to_string(),
            Workload::Touch => "touch".to_string(),
            Workload::Mix => "mix_90_10".to_string(),
            Workload::PurgeExpired { entries } => format!("purge_{}", size_name(entries)),
            Workload::GetAt { sessions } => format!("get_at_{}", size_name(sessions)),
            Workload::Throughput { workers } => format!("mp_{workers}"),
            Workload::ReadUnderWriter => "read_under_writer".to_string(),
        }
    }

    /// Parses a [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        let w = match name {
            "update_counter" => Workload::UpdateCounter,
            "touch" => Workload::Touch,
            "mix_90_10" | "mix" => Workload::Mix,
            "read_under_writer" => Workload::ReadUnderWriter,
            _ => {
                let (head, size) = name.rsplit_once('_')?;
                match head {
                    "get_hit" => Workload::GetHit {
                        value_len: value_size(size)?,
                    },
                    "get_new" => Workload::GetNew {
                        value_len: value_size(size)?,
                    },
                    "get_miss" => Workload::GetMiss {
                        value_len: value_size(size)?,
                    },
                    "put" => Workload::Put {
                        value_len: value_size(size)?,
                    },
                    "purge" => Workload::PurgeExpired {
                        entries: parse_size(size)?,
                    },
                    "get_at" => Workload::GetAt {
                        sessions: parse_size(size)?,
                    },
                    "mp" => Workload::Throughput {
                        workers: size.parse().ok().filter(|&n| n > 0)?,
                    },
                    _ => return None,
                }
            }
        };
        Some(w)
    }

    /// One line saying what is measured, for tables and BENCHMARKS.md.
    pub fn describe(&self) -> String {
        match *self {
            Workload::GetHit { value_len } => {
                format!("get, hit, {value_len} B value, {HOT_KEYS} keys")
            }
            Workload::GetNew { value_len } => {
                format!("get, hit, {value_len} B value returned in a new Vec, {HOT_KEYS} keys")
            }
            Workload::GetMiss { value_len } => {
                format!("get, miss, store of {HOT_KEYS} x {value_len} B")
            }
            Workload::Put { value_len } => {
                format!("put (upsert) {value_len} B over {HOT_KEYS} keys")
            }
            Workload::UpdateCounter => "update: atomic counter increment".to_string(),
            Workload::Touch => "touch: new expiry, same value".to_string(),
            Workload::Mix => "90 % get / 10 % put, 100 B".to_string(),
            Workload::PurgeExpired { entries } => {
                format!("purge_expired, {entries} entries, 10 % expired (ns per call)")
            }
            Workload::GetAt { sessions } => format!("get hit 100 B among {sessions} sessions"),
            Workload::Throughput { workers } => {
                format!("{workers} worker process(es), 90/10 mix (ns per aggregate op)")
            }
            Workload::ReadUnderWriter => {
                "get hit 100 B while another process rewrites the same keys".to_string()
            }
        }
    }

    /// How the workload is driven.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::PurgeExpired { .. } => WorkloadKind::Purge,
            Workload::Throughput { .. } => WorkloadKind::MultiProcess,
            Workload::ReadUnderWriter => WorkloadKind::UnderWriter,
            _ => WorkloadKind::Op,
        }
    }

    /// Value size in bytes.
    pub fn value_len(&self) -> usize {
        match *self {
            Workload::GetHit { value_len }
            | Workload::GetNew { value_len }
            | Workload::GetMiss { value_len }
            | Workload::Put { value_len } => value_len,
            Workload::UpdateCounter => 8,
            _ => 100,
        }
    }

    /// How many entries the store must hold.
    pub fn sizing(&self) -> Sizing {
        let entries = match *self {
            Workload::PurgeExpired { entries } => entries,
            Workload::GetAt { sessions } => sessions,
            _ => HOT_KEYS,
        };
        Sizing {
            entries,
            value_len: self.value_len(),
        }
    }

    /// The keys of this workload under `tag` (pass the same tag to every process).
    pub fn keys(&self, tag: &str) -> KeySet {
        let tag = format!("{tag}/{}", self.name());
        match *self {
            Workload::GetMiss { .. } => KeySet::new(&tag, HOT_KEYS, HOT_KEYS, 0),
            Workload::PurgeExpired { entries } => {
                let expired = entries / PURGE_EXPIRED_SHARE;
                KeySet::new(&tag, entries - expired, 0, expired)
            }
            Workload::GetAt { sessions } => KeySet::new(&tag, sessions, 0, 0),
            _ => KeySet::new(&tag, HOT_KEYS, 0, 0),
        }
    }

    /// The value a write of this workload stores.
    pub fn value(&self) -> Vec<u8> {
        (0..self.value_len()).map(|i| (i % 251) as u8).collect()
    }

    /// Fills a fresh store for the workload (not timed).
    ///
    /// # Errors
    /// The store's errors.
    pub fn setup(&self, store: &dyn BenchStore, keys: &KeySet) -> Result<()> {
        match self {
            Workload::UpdateCounter => {
                store.load(&keys.live, &0u64.to_le_bytes(), Expiry::After(TTL))
            }
            _ => store.load(&keys.live, &self.value(), Expiry::After(TTL)),
        }
    }

    /// Prepares one sample (not timed): the purge workload re-adds its expired share.
    ///
    /// # Errors
    /// The store's errors.
    pub fn before_sample(&self, store: &dyn BenchStore, keys: &KeySet) -> Result<()> {
        match self {
            Workload::PurgeExpired { .. } => store.load(
                &keys.expired,
                &self.value(),
                Expiry::At(Timestamp::from_millis(1)),
            ),
            _ => Ok(()),
        }
    }

    /// Runs operation number `i` (the index picks the key); returns whether the result
    /// was the expected one (a hit for reads, a live entry for touch).
    ///
    /// Multi-process workloads run [`Workload::Mix`]'s operation in each worker, and
    /// [`Workload::ReadUnderWriter`] reads like [`Workload::GetHit`].
    ///
    /// # Errors
    /// The store's errors.
    #[inline]
    pub fn op(
        &self,
        store: &dyn BenchStore,
        keys: &KeySet,
        value: &[u8],
        i: u64,
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        match self {
            Workload::GetHit { .. } | Workload::GetAt { .. } | Workload::ReadUnderWriter => {
                store.get_into(keys.visit(i), buf)
            }
            Workload::GetNew { .. } => {
                Ok(std::hint::black_box(store.get(keys.visit(i))?).is_some())
            }
            Workload::GetMiss { .. } => Ok(!store.get_into(keys.visit_absent(i), buf)?),
            Workload::Put { .. } => store
                .put(keys.visit(i), value, Expiry::After(TTL))
                .map(|()| true),
            Workload::UpdateCounter => store.incr(keys.visit(i)).map(|n| n > 0),
            Workload::Touch => store.touch(keys.visit(i), Expiry::After(TTL)),
            Workload::Mix | Workload::Throughput { .. } => {
                let key = keys.visit(i);
                if mix64(i).is_multiple_of(10) {
                    store.put(key, value, Expiry::After(TTL)).map(|()| true)
                } else {
                    store.get_into(key, buf)
                }
            }
            Workload::PurgeExpired { .. } => {
                let want = keys.expired.len() as u64;
                // Engines whose backend expires entries itself return 0 by contract.
                store.purge_expired().map(|n| n == want || n == 0)
            }
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MutexHashMap;

    #[test]
    fn names_round_trip() {
        for w in Workload::standard(1_000_000, 100_000, 2) {
            assert_eq!(Workload::from_name(&w.name()), Some(w), "{w}");
        }
        assert_eq!(
            Workload::from_name("get_hit_4k"),
            Some(Workload::GetHit { value_len: 4096 })
        );
        assert_eq!(Workload::from_name("mp_0"), None);
        assert_eq!(Workload::from_name("nope"), None);
    }

    #[test]
    fn every_op_gets_the_expected_result_on_the_baseline() {
        for w in Workload::standard(10_000, 10_000, 1) {
            let store = MutexHashMap::default();
            let keys = w.keys("test");
            w.setup(&store, &keys).unwrap();
            w.before_sample(&store, &keys).unwrap();
            let value = w.value();
            let mut buf = Vec::new();
            let n = if w.kind() == WorkloadKind::Purge {
                1
            } else {
                200
            };
            for i in 0..n {
                assert!(
                    w.op(&store, &keys, &value, i, &mut buf).unwrap(),
                    "{w} op {i}"
                );
            }
        }
    }
}
