//! Every engine and peer the benches run, one file each: its row of the registry (an
//! [`EngineAdapter`]: name, availability, how to create a store and reach it from another
//! process) and, for peers, the small adapter giving them the
//! [`BenchStore`](crate::BenchStore) view. Peers this build leaves out get a `NotBuilt`
//! row under the same name.
//!
//! Peers that store raw bytes (LMDB, the `Mutex<HashMap>` baseline) keep the entry's
//! absolute expiry in an 8-byte header before the value ([`header`]), checked on every
//! read like the engines do.

mod fastmmap;
mod hashmap;
#[cfg(feature = "peers")]
mod lmdb;
mod memory;
mod redis;

pub(crate) use fastmmap::FastmmapEngine;
pub(crate) use hashmap::HashMapEngine;
pub use hashmap::MutexHashMap;
#[cfg(feature = "peers")]
pub use lmdb::Lmdb;
pub(crate) use memory::MemoryEngine;
#[cfg(feature = "peers")]
pub use redis::LocalRedis;

use crate::registry::EngineAdapter;

/// The LMDB row of the registry.
#[cfg(feature = "peers")]
pub(crate) const LMDB: &dyn EngineAdapter = &lmdb::LmdbEngine;
/// The LMDB row of the registry: not in this build.
#[cfg(not(feature = "peers"))]
pub(crate) const LMDB: &dyn EngineAdapter = &not_built::NotBuilt {
    id: crate::EngineId::Lmdb,
    name: "lmdb",
};

/// The Redis row of the registry.
#[cfg(feature = "peers")]
pub(crate) const REDIS: &dyn EngineAdapter = &redis::RedisEngine;
/// The Redis row of the registry: not in this build.
#[cfg(not(feature = "peers"))]
pub(crate) const REDIS: &dyn EngineAdapter = &not_built::NotBuilt {
    id: crate::EngineId::Redis,
    name: "redis",
};

/// The Redis Cluster row of the registry.
#[cfg(feature = "peers")]
pub(crate) const REDIS_CLUSTER: &dyn EngineAdapter = &redis::RedisClusterEngine;
/// The Redis Cluster row of the registry: not in this build.
#[cfg(not(feature = "peers"))]
pub(crate) const REDIS_CLUSTER: &dyn EngineAdapter = &not_built::NotBuilt {
    id: crate::EngineId::RedisCluster,
    name: "redis-cluster",
};

/// The stand-in for a peer this build leaves out (feature `peers` off): listed under its
/// usual name, never available.
#[cfg(not(feature = "peers"))]
mod not_built {
    use std::sync::Arc;

    use store_api::Result;

    use crate::registry::EngineAdapter;
    use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing};

    /// A peer of this name that is not built (the names are those of its real adapter).
    pub(crate) struct NotBuilt {
        pub(crate) id: EngineId,
        pub(crate) name: &'static str,
    }

    impl NotBuilt {
        fn error(&self) -> store_api::Error {
            store_api::Error::InvalidConfig {
                option: "engines",
                reason: format!(
                    "{} is not in this build; rebuild with `--features peers`",
                    self.name
                ),
            }
        }
    }

    impl EngineAdapter for NotBuilt {
        fn id(&self) -> EngineId {
            self.id
        }

        fn name(&self) -> &'static str {
            self.name
        }

        /// Both left-out peers are shared across processes.
        fn shared_across_processes(&self) -> bool {
            true
        }

        fn available(&self, _redis_url: &str) -> std::result::Result<(), String> {
            Err("not built: add `--features peers`".to_string())
        }

        fn create(&self, _sizing: Sizing, _redis_url: &str) -> Result<OpenedEngine> {
            Err(self.error())
        }

        fn attach(&self, _location: &Location, _sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
            Err(self.error())
        }
    }
}

/// The 8-byte expiry header peers put before each value.
pub(crate) mod header {
    use store_api::{Clock, Expiry, SystemClock};

    /// Header length in bytes.
    pub(crate) const LEN: usize = 8;

    /// Milliseconds since the epoch now.
    pub(crate) fn now() -> u64 {
        SystemClock.now().as_millis()
    }

    // The adapters read the clock as store-fastmmap does (its `time` module): the coarse
    // wall clock decides whenever that is exact, so that no engine pays a 30-50 ns
    // precise clock read per operation that the others skip.

    /// Entries closer than this to their expiry are checked against the precise clock.
    const WINDOW_MS: u64 = 1_000;

    /// The coarse wall clock in ms (never ahead of `now`, behind it by about a tick);
    /// `now()` where there is none. store-fastmmap's own read of it.
    pub(crate) fn coarse() -> u64 {
        store_fastmmap::bench::coarse_ms().unwrap_or_else(now)
    }

    /// How far the coarse clock may trail `now`, as store-fastmmap allows for it (0 where
    /// it does not use the coarse clock); read once, as store-fastmmap does at open.
    fn lag_ms() -> u64 {
        static LAG: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *LAG.get_or_init(|| store_fastmmap::bench::coarse_lag_ms().unwrap_or(0))
    }

    /// Whether a record with header `raw` is live now, given the coarse time `c` read just
    /// before: exactly `live(raw, now())`, reading the precise clock only near the expiry.
    pub(crate) fn live_coarse(raw: &[u8], c: u64) -> bool {
        let at = expires_at(raw);
        if at == 0 || c.saturating_add(WINDOW_MS) < at {
            return true;
        }
        c < at && now() < at
    }

    /// Copies the value of `rec` into `buf` if it is live (see `live_coarse`).
    pub(crate) fn copy_live(rec: Option<&[u8]>, c: u64, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        match live_value(rec, c) {
            Some(v) => {
                buf.extend_from_slice(v);
                true
            }
            None => false,
        }
    }

    /// The value of the record `rec` if it is live (the coarse time `c` as for
    /// `copy_live`).
    pub(crate) fn live_value(rec: Option<&[u8]>, c: u64) -> Option<&[u8]> {
        rec.filter(|rec| live_coarse(rec, c))
            .map(|rec| rec.get(LEN..).unwrap_or_default())
    }

    /// `resolve` for a write happening now, as store-fastmmap's `put` resolves it: a
    /// relative expiry of a second or more from the coarse clock rounded up by two ticks.
    pub(crate) fn resolve_now(expiry: Expiry) -> u64 {
        match expiry {
            Expiry::After(d) if d.as_secs() >= 1 && lag_ms() > 0 => {
                resolve(Expiry::After(d), coarse().saturating_add(lag_ms()))
            }
            e => resolve(e, now()),
        }
    }

    /// The absolute expiry of `expiry` written now; 0 means never (a past expiry of 0 ms
    /// is stored as 1 ms, still long expired).
    pub(crate) fn resolve(expiry: Expiry, now: u64) -> u64 {
        let at = expiry.resolve(store_api::Timestamp::from_millis(now), None);
        at.map_or(0, |t| t.as_millis().max(1))
    }

    /// Whether a record with header `raw` is live at `now`.
    pub(crate) fn live(raw: &[u8], now: u64) -> bool {
        let at = expires_at(raw);
        at == 0 || now < at
    }

    /// The expiry stored in a record (0: never).
    pub(crate) fn expires_at(raw: &[u8]) -> u64 {
        raw.get(..LEN)
            .and_then(|h| h.try_into().ok())
            .map_or(1, u64::from_le_bytes)
    }

    /// Writes a record: header then value.
    pub(crate) fn encode(out: &mut Vec<u8>, expires_at: u64, value: &[u8]) {
        out.clear();
        out.reserve(LEN + value.len());
        out.extend_from_slice(&expires_at.to_le_bytes());
        out.extend_from_slice(value);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn header_round_trip_and_boundary() {
            let mut rec = Vec::new();
            encode(&mut rec, 100, b"v");
            assert_eq!(expires_at(&rec), 100);
            assert!(live(&rec, 99));
            assert!(!live(&rec, 100), "expired exactly at its expiry");
            encode(&mut rec, 0, b"v");
            assert!(live(&rec, u64::MAX), "0 means never");
            assert!(!live(b"short", 5), "a damaged record counts as expired");
        }

        #[test]
        fn the_coarse_rule_agrees_with_the_precise_clock() {
            let mut rec = Vec::new();
            for offset in [-100_000i64, -1_000, -1, 1, 1_000, 1_500, 100_000]
                .into_iter()
                .cycle()
                .take(2_000)
            {
                let c = coarse();
                let at = now().saturating_add_signed(offset);
                encode(&mut rec, at, b"v");
                let got = live_coarse(&rec, c);
                if offset < 0 {
                    assert!(!got, "expired {offset} ms ago but called live");
                } else if at > now() {
                    assert!(got, "expires in {offset} ms but called expired");
                }
            }
            let before = now();
            let at = resolve_now(Expiry::After(std::time::Duration::from_secs(60)));
            assert!(at <= now() + 60_000 + lag_ms(), "at most two ticks longer");
            assert!(at + 1_000 >= before + 60_000, "about the TTL");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use store_api::{Expiry, Key, Timestamp};

    use crate::BenchStore;

    /// The session-store semantics every peer's adapter keeps: a miss, a hit copied
    /// whole, `touch`, `incr` from zero, a past expiry expired at once, and `purge_expired`
    /// counting it.
    pub(super) fn smoke(s: &dyn BenchStore) {
        let k = Key::new("session:a").unwrap();
        let mut buf = Vec::new();
        assert!(!s.get_into(&k, &mut buf).unwrap());
        s.put(&k, b"v", Expiry::After(Duration::from_secs(60)))
            .unwrap();
        assert!(s.get_into(&k, &mut buf).unwrap());
        assert_eq!(buf, b"v");
        assert!(s.touch(&k, Expiry::Never).unwrap());
        let c = Key::new("c").unwrap();
        assert_eq!(s.incr(&c).unwrap(), 1);
        assert_eq!(s.incr(&c).unwrap(), 2);
        s.put(&k, b"v", Expiry::At(Timestamp::ZERO)).unwrap();
        assert!(
            !s.get_into(&k, &mut buf).unwrap(),
            "a past expiry is expired at once"
        );
        assert!(!s.touch(&k, Expiry::Never).unwrap());
        assert_eq!(s.purge_expired().unwrap(), 1);
    }
}
