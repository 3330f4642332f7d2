//! Capacity: too-large writes, reclaiming expired entries first, reported evictions,
//! the never-evict-live policy, whole values under eviction pressure.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use store_api::{
    Error, EvictionPolicy, Evictions, Expiry, Key, SessionStore, UpdateAction, Version, WriteMode,
    WriteOutcome,
};

use crate::check::{
    get, join_writers_then_readers, key, long_key, put, self_checking, torn_value_readers,
    verify_self_checking,
};
use crate::{Ctx, Harness, Outcome, Spec, Unsupported};

/// Most entries a small store is filled with before the suite gives up waiting for it to
/// be full.
const FILL_LIMIT: usize = 20_000;

const ENTRY: usize = 100;

fn counted(w: &WriteOutcome) -> (u64, u64) {
    match w.evicted {
        Evictions::Counted { live, expired } => (live, expired),
        Evictions::Unknown => panic!(
            "a bounded engine reported Evictions::Unknown; the suite needs counted evictions"
        ),
        _ => panic!("unknown Evictions variant {:?}", w.evicted),
    }
}

/// A value larger than the maximum, written with the longest key (through put, every
/// mode, and update), is `TooLarge { len, max }`, and changes and evicts nothing.
pub fn too_large_changes_nothing<H: Harness>(ctx: &Ctx) -> Outcome {
    let spec = Spec::new().small();
    let (_h, store) = match ctx.store::<H>(&spec) {
        Ok(s) => s,
        Err(_) => ctx.store::<H>(&Spec::new())?,
    };
    let max = store.capabilities().max_value_len;
    let big = long_key("too-large");
    let others: Vec<Key> = (0..5)
        .map(|i| key(format!("too-large:other:{i}")))
        .collect();
    for k in &others {
        put(&store, k, b"small");
    }
    put(&store, &big, b"existing");
    let snapshot = |store: &H::Store| -> Vec<_> {
        others.iter().chain([&big]).map(|k| get(store, k)).collect()
    };
    let before = snapshot(&store);
    let stats_before = store.stats().expect("stats");
    let value = vec![0x5a; max + 1];
    for mode in [
        WriteMode::Upsert,
        WriteMode::ReplaceOnly,
        WriteMode::CreateOnly,
    ] {
        let k = if mode == WriteMode::CreateOnly {
            long_key("too-large-new")
        } else {
            big.clone()
        };
        match store.put(&k, &value, Expiry::Never, mode) {
            Err(Error::TooLarge { len, max: m }) => {
                assert_eq!(len, max + 1, "TooLarge must carry the rejected length");
                assert!(m < len, "TooLarge max {m} must be below the length {len}");
            }
            other => panic!(
                "{} bytes with a {}-byte key ({mode:?}): expected TooLarge, got {other:?}",
                max + 1,
                k.len()
            ),
        }
        assert_eq!(
            get(&store, &long_key("too-large-new")),
            None,
            "{mode:?}: a rejected value was stored"
        );
    }
    let out = store.update(&big, &mut |_| {
        UpdateAction::set(value.clone(), Expiry::Never)
    });
    assert!(
        matches!(out, Err(Error::TooLarge { .. })),
        "update with a too-large value: {out:?}"
    );
    assert_eq!(
        snapshot(&store),
        before,
        "a too-large write changed or evicted entries"
    );
    let stats_after = store.stats().expect("stats");
    assert_eq!(
        (stats_after.evicted_live, stats_after.evicted_expired),
        (stats_before.evicted_live, stats_before.evicted_expired),
        "a too-large write evicted entries"
    );
    Ok(())
}

/// Writes entries until one reports a live eviction; returns how many were written.
fn fill_until_eviction(store: &dyn SessionStore, prefix: &str) -> usize {
    for i in 0..FILL_LIMIT {
        let w = put(
            store,
            &key(format!("{prefix}:{i}")),
            &self_checking(i as u64, ENTRY),
        );
        if counted(&w).0 > 0 {
            return i;
        }
    }
    panic!("{FILL_LIMIT} entries of {ENTRY} bytes fit in a store the harness called small")
}

/// With live entries written first and expiring ones after (so LRU order alone would
/// evict the live ones), the first write that needs room reclaims expired entries and
/// evicts no live one.
pub fn expired_entries_are_reclaimed_first<H: Harness>(ctx: &Ctx) -> Outcome {
    let probe = Spec::new().small();
    let (_h, store) = ctx.store::<H>(&probe)?;
    let capacity = fill_until_eviction(&store, "probe");
    drop((_h, store));
    let (spec, clock) = Spec::new().small().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let live: Vec<Key> = (0..capacity / 2)
        .map(|i| key(format!("live:{i}")))
        .collect();
    let mut evicted_during_fill = 0;
    for (i, k) in live.iter().enumerate() {
        evicted_during_fill += counted(&put(&store, k, &self_checking(i as u64, ENTRY))).0;
    }
    for i in 0..capacity - capacity / 2 {
        let w = store
            .put(
                &key(format!("expiring:{i}")),
                &self_checking(i as u64, ENTRY),
                Expiry::After(Duration::from_secs(1)),
                WriteMode::Upsert,
            )
            .expect("put");
        let (l, _) = counted(&w);
        evicted_during_fill += l;
        if l > 0 {
            break;
        }
    }
    clock.advance(Duration::from_secs(1));
    // Write until some write needs room; that write (and every one before it) must
    // reclaim expired entries rather than evict live ones. Engines that evict per
    // region (pages) reclaim the expired entries of the region that filled first.
    let mut reclaimed = false;
    for i in 0..capacity * 2 {
        let w = put(
            &store,
            &key(format!("new:{i}")),
            &self_checking(i as u64, ENTRY),
        );
        let (l, e) = counted(&w);
        assert_eq!(
            l, 0,
            "write {i} evicted {l} live entries while expired entries were there to reclaim"
        );
        if e > 0 {
            reclaimed = true;
            break;
        }
    }
    assert!(
        reclaimed,
        "writing {} entries into a full store reclaimed no expired entry",
        capacity * 2
    );
    let missing = live.iter().filter(|k| get(&store, k).is_none()).count() as u64;
    assert!(
        missing <= evicted_during_fill,
        "{missing} live entries vanished, {evicted_during_fill} evictions were reported"
    );
    Ok(())
}

/// Every live entry that disappears was reported by the write that evicted it, the
/// written entry itself stays, and `Stats::evicted_live` counts the same.
pub fn live_evictions_are_reported<H: Harness>(ctx: &Ctx) -> Outcome {
    let spec = Spec::new().small().policy(EvictionPolicy::Lru);
    let (_h, store) = ctx.store::<H>(&spec)?;
    let before = store.stats().expect("stats").evicted_live;
    let mut written = Vec::new();
    let mut reported = 0;
    let mut i = 0;
    while reported < 20 && i < FILL_LIMIT {
        let k = key(format!("evict:{i}"));
        let w = put(&store, &k, &self_checking(i as u64, ENTRY + i % 50));
        reported += counted(&w).0;
        assert!(get(&store, &k).is_some(), "a write evicted its own entry");
        written.push(k);
        i += 1;
    }
    let missing = written.iter().filter(|k| get(&store, k).is_none()).count() as u64;
    assert_eq!(
        missing, reported,
        "{missing} entries vanished but writes reported {reported} live evictions"
    );
    assert!(
        reported > 0,
        "{i} writes into a small LRU store evicted nothing"
    );
    let stats = store.stats().expect("stats").evicted_live - before;
    assert_eq!(
        stats, reported,
        "Stats::evicted_live counts {stats}, writes reported {reported}"
    );
    Ok(())
}

/// Under `NeverEvictLive`, a full store answers `NoSpace`, reports no live eviction, and
/// keeps every entry it accepted.
pub fn never_evict_live_gives_no_space<H: Harness>(ctx: &Ctx) -> Outcome {
    let spec = Spec::new().small().policy(EvictionPolicy::NeverEvictLive);
    let (_h, store) = ctx.store::<H>(&spec)?;
    let mut accepted = Vec::new();
    for i in 0..FILL_LIMIT {
        let k = key(format!("full:{i}"));
        match store.put(
            &k,
            &self_checking(i as u64, ENTRY),
            Expiry::Never,
            WriteMode::Upsert,
        ) {
            Ok(w) => {
                assert_eq!(counted(&w).0, 0, "NeverEvictLive evicted a live entry");
                accepted.push(k);
            }
            Err(Error::NoSpace { .. }) => {
                assert_eq!(get(&store, &k), None, "a NoSpace write stored its value");
                assert!(
                    !accepted.is_empty(),
                    "the first write into an empty store got NoSpace"
                );
                for (j, a) in accepted.iter().enumerate() {
                    let e = get(&store, a).unwrap_or_else(|| {
                        panic!("accepted entry {a} vanished under NeverEvictLive")
                    });
                    assert_eq!(verify_self_checking(&e.value), Ok(j as u64));
                }
                assert_eq!(store.stats().expect("stats").evicted_live, 0);
                return Ok(());
            }
            Err(e) => panic!(
                "a full NeverEvictLive store must answer NoSpace, got {}",
                crate::check::chain(&e)
            ),
        }
    }
    panic!("{FILL_LIMIT} entries fit in a store the harness called small")
}

/// Writers of self-checking values of many sizes into a small store under eviction
/// pressure, with readers alongside: every value read is whole.
pub fn values_are_never_torn_under_eviction<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = match ctx.store::<H>(&Spec::new().small()) {
        Ok(s) => s,
        Err(Unsupported(_)) => ctx.store::<H>(&Spec::new())?,
    };
    let max = store.capabilities().max_value_len.min(8 << 10);
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let keys: Vec<Key> = (0..64).map(|i| key(format!("pressure:{i}"))).collect();
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (store, keys) = (store.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut seed = t << 32;
                for round in 0..1_500u64 {
                    seed += 1;
                    let len = crate::check::self_checking_len(&mut seed.clone(), max);
                    let k = &keys[((round * 7 + t * 13) % keys.len() as u64) as usize];
                    match store.put(
                        k,
                        &self_checking(seed, len),
                        Expiry::Never,
                        WriteMode::Upsert,
                    ) {
                        Ok(_) | Err(Error::NoSpace { .. }) => {}
                        Err(e) => {
                            panic!("write of {len} bytes failed: {}", crate::check::chain(&e))
                        }
                    }
                }
            })
        })
        .collect();
    // Evicted, or not written yet: a missing key is no failure here.
    let readers = torn_value_readers(&store, &keys, &stop, true);
    join_writers_then_readers(writers, &stop, readers);
    Ok(())
}

/// `TooLarge` is checked before the write mode: a too-large replace-only write of a
/// missing key, a too-large create-only write of a live key and a too-large
/// compare-and-set with a stale version all answer `TooLarge` (the caller learns the
/// value can never fit), not `NotFound`, `AlreadyExists` or `VersionMismatch`.
pub fn too_large_is_checked_before_the_mode<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let max = store.capabilities().max_value_len;
    let value = vec![0xa5; max + 1];
    let live = long_key("too-large-mode:live");
    let missing = long_key("too-large-mode:missing");
    let w = put(&store, &live, b"small");
    let stale = Version::new(w.version.get().wrapping_add(1_000_003)).unwrap_or(w.version);
    for (what, k, mode) in [
        (
            "replace-only of a missing key",
            &missing,
            WriteMode::ReplaceOnly,
        ),
        ("create-only of a live key", &live, WriteMode::CreateOnly),
        (
            "compare-and-set with a stale version",
            &live,
            WriteMode::IfVersion(stale),
        ),
        (
            "compare-and-set of a missing key",
            &missing,
            WriteMode::IfVersion(w.version),
        ),
    ] {
        match store.put(k, &value, Expiry::Never, mode) {
            Err(Error::TooLarge { len, .. }) => assert_eq!(len, max + 1, "{what}"),
            other => panic!(
                "{what} with a value of {} bytes (max {max}): expected TooLarge, checked \
                 before the mode, got {other:?}",
                max + 1
            ),
        }
    }
    assert_eq!(
        value_of(&store, &live),
        Some(b"small".to_vec()),
        "the live key changed"
    );
    assert_eq!(get(&store, &missing), None, "the missing key appeared");
    Ok(())
}

fn value_of(store: &dyn SessionStore, k: &Key) -> Option<Vec<u8>> {
    get(store, k).map(|e| e.value)
}
