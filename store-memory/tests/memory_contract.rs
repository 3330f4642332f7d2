//! Every rule of the store-api contract, checked against the reference engine with a
//! manual clock. Each test is named after the rule it checks.

use std::sync::Arc;
use std::time::Duration;

use store_api::{
    Clock, Error, EvictionPolicy, Evictions, Expiry, Key, ManualClock, SessionStore,
    SessionStoreExt, Timestamp, UpdateAction, UpdateAtomicity, UpdateOutcome, WriteMode,
};
use store_memory::MemoryStore;

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn store() -> (MemoryStore, ManualClock) {
    let clock = ManualClock::default();
    let s = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    (s, clock)
}

fn bounded(capacity: usize, policy: EvictionPolicy) -> (MemoryStore, ManualClock) {
    let clock = ManualClock::default();
    let s = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .capacity(capacity)
        .policy(policy)
        .build()
        .unwrap();
    (s, clock)
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn missing_key_is_none_not_error() {
    let (s, _) = store();
    assert_eq!(s.get(&key("nope")).unwrap(), None);
    assert!(!s.delete(&key("nope")).unwrap());
    assert!(!s.touch(&key("nope"), Expiry::Never).unwrap());
}

#[test]
fn values_round_trip_byte_exact_including_empty_and_binary() {
    let (s, _) = store();
    let cases: [&[u8]; 4] = [b"", b"\0\xff\xfe binary", "grüße".as_bytes(), &[0x80; 1000]];
    for (i, v) in cases.iter().enumerate() {
        let k = key(&format!("k{i}"));
        s.put(&k, v, Expiry::Never, WriteMode::Upsert).unwrap();
        assert_eq!(s.get(&k).unwrap().unwrap().value, *v);
    }
}

#[test]
fn too_large_value_changes_nothing_and_evicts_nothing() {
    let (s, _) = bounded(4096, EvictionPolicy::Lru);
    let k = key("session:a");
    s.put(&k, b"old", Expiry::Never, WriteMode::Upsert).unwrap();
    s.put(&key("other"), b"x", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let err = s
        .put(&k, &vec![0; 5000], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    let Error::TooLarge { len, max } = err else {
        panic!("expected TooLarge, got {err}")
    };
    assert_eq!(len, 5000);
    assert_eq!(max, 4096 - 64 - k.len(), "max is stated for this key");
    assert_eq!(s.get(&k).unwrap().unwrap().value, b"old");
    assert!(s.exists(&key("other")).unwrap());
    assert_eq!(s.stats().unwrap().evicted_live, 0);
    // The boundary itself is accepted.
    s.put(&k, &vec![0; max], Expiry::Never, WriteMode::Upsert)
        .unwrap();
}

#[test]
fn unbounded_store_enforces_max_value_len() {
    let s = MemoryStore::builder().max_value_len(10).build().unwrap();
    let err = s.set(&key("k"), &[0; 11]).unwrap_err();
    assert!(matches!(err, Error::TooLarge { len: 11, max: 10 }), "{err}");
    assert_eq!(s.capabilities().max_value_len, 10);
}

#[test]
fn expiry_boundary_live_while_now_before_expires_at() {
    let (s, clock) = store();
    let k = key("k");
    let at = clock.now().saturating_add(SEC);
    s.put(&k, b"v", Expiry::At(at), WriteMode::Upsert).unwrap();
    clock.set(Timestamp::from_millis(at.as_millis() - 1));
    assert!(s.get(&k).unwrap().is_some(), "live 1 ms before");
    clock.set(at);
    assert!(
        s.get(&k).unwrap().is_none(),
        "expired exactly at expires_at"
    );
}

#[test]
fn expiry_after_is_relative_to_the_engine_clock_with_ms_resolution() {
    let (s, clock) = store();
    let k = key("k");
    s.put(
        &k,
        b"v",
        Expiry::After(Duration::from_millis(5)),
        WriteMode::Upsert,
    )
    .unwrap();
    let e = s.get(&k).unwrap().unwrap();
    assert_eq!(
        e.expires_at,
        Some(clock.now().saturating_add(Duration::from_millis(5)))
    );
    clock.advance(Duration::from_millis(4));
    assert!(s.exists(&k).unwrap());
    clock.advance(Duration::from_millis(1));
    assert!(!s.exists(&k).unwrap());
}

#[test]
fn no_expiry_never_expires() {
    let (s, clock) = store();
    s.put(&key("k"), b"v", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    clock.advance(Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(s.get(&key("k")).unwrap().unwrap().expires_at, None);
}

#[test]
fn default_expiry_uses_the_configured_ttl() {
    let clock = ManualClock::default();
    let s = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .default_ttl(SEC)
        .build()
        .unwrap();
    s.set(&key("k"), b"v").unwrap();
    clock.advance(SEC);
    assert!(s.get(&key("k")).unwrap().is_none());
}

#[test]
fn past_expiry_is_allowed_and_yields_an_expired_entry() {
    let (s, clock) = store();
    let k = key("k");
    let past = clock.now().saturating_sub(SEC);
    s.put(&k, b"v", Expiry::At(past), WriteMode::Upsert)
        .unwrap();
    assert!(s.get(&k).unwrap().is_none());
    s.put(&k, b"v", Expiry::After(Duration::ZERO), WriteMode::Upsert)
        .unwrap();
    assert!(
        s.get(&k).unwrap().is_none(),
        "an expiry of zero is expired at once"
    );
}

#[test]
fn expired_entry_is_absent_for_every_operation() {
    let (s, clock) = store();
    let k = key("k");
    let v = s
        .put(&k, b"old", Expiry::After(SEC), WriteMode::Upsert)
        .unwrap()
        .version;
    clock.advance(SEC);
    assert!(s.get(&k).unwrap().is_none());
    assert!(
        !s.touch(&k, Expiry::Never).unwrap(),
        "touch does not revive"
    );
    assert!(matches!(
        s.put(&k, b"x", Expiry::Never, WriteMode::ReplaceOnly),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.put(&k, b"x", Expiry::Never, WriteMode::IfVersion(v)),
        Err(Error::VersionMismatch { actual: None, .. })
    ));
    let mut seen = Some(None);
    s.update(&k, &mut |e| {
        seen = Some(e.map(|e| e.value.clone()));
        UpdateAction::Keep
    })
    .unwrap();
    assert_eq!(seen, Some(None), "update sees None");
    assert!(
        !s.delete(&k).unwrap(),
        "delete reports nothing live removed"
    );
    let v = s.put(&k, b"new", Expiry::Never, WriteMode::Upsert).unwrap();
    s.delete(&k).unwrap();
    clock.advance(SEC);
    s.put(&k, b"x", Expiry::After(SEC), WriteMode::Upsert)
        .unwrap();
    clock.advance(SEC);
    s.create(&k, b"fresh", Expiry::Never)
        .expect("create over an expired key succeeds");
    assert_ne!(s.get(&k).unwrap().unwrap().version, v.version);
}

#[test]
fn upsert_creates_and_overwrites() {
    let (s, _) = store();
    let k = key("k");
    s.set(&k, b"1").unwrap();
    s.set(&k, b"2").unwrap();
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"2");
}

#[test]
fn create_only_fails_on_live_key_and_changes_nothing() {
    let (s, _) = store();
    let k = key("k");
    let v1 = s.create(&k, b"first", Expiry::Never).unwrap().version;
    let err = s.create(&k, b"second", Expiry::Never).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let e = s.get(&k).unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"first"[..], v1));
}

#[test]
fn replace_only_fails_on_absent_key_and_never_resurrects() {
    let (s, _) = store();
    let k = key("k");
    assert!(matches!(
        s.replace(&k, b"x", Expiry::Never),
        Err(Error::NotFound { .. })
    ));
    s.set(&k, b"v").unwrap();
    s.replace(&k, b"w", Expiry::Never).unwrap();
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"w");
    s.delete(&k).unwrap();
    assert!(matches!(
        s.replace(&k, b"late", Expiry::Never),
        Err(Error::NotFound { .. })
    ));
    assert!(
        s.get(&k).unwrap().is_none(),
        "a request finishing after logout must not resurrect"
    );
}

#[test]
fn compare_and_set_succeeds_on_current_version_and_fails_on_stale() {
    let (s, _) = store();
    let k = key("k");
    let v1 = s.set(&k, b"1").unwrap().version;
    let v2 = s
        .compare_and_set(&k, v1, b"2", Expiry::Never)
        .unwrap()
        .version;
    let err = s.compare_and_set(&k, v1, b"3", Expiry::Never).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { expected, actual: Some(a), .. } if expected == v1 && a == v2),
        "{err}"
    );
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"2");
}

#[test]
fn every_write_gives_a_new_version_never_reused_after_delete() {
    let (s, _) = store();
    let k = key("k");
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        let v = s.set(&k, &[i]).unwrap().version;
        assert!(seen.insert(v), "version {v} reused");
        if i % 3 == 0 {
            s.delete(&k).unwrap();
        }
        if let UpdateOutcome::Written(w) = s
            .update(&k, &mut |_| UpdateAction::set(vec![i], Expiry::Never))
            .unwrap()
        {
            assert!(seen.insert(w.version), "version {} reused", w.version);
        } else {
            panic!("update with Set must write");
        }
    }
}

#[test]
fn touch_changes_only_expiry_never_value_or_version_never_creates() {
    let (s, clock) = store();
    let k = key("k");
    let w = s
        .put(&k, b"v", Expiry::After(SEC), WriteMode::Upsert)
        .unwrap();
    assert!(s.touch(&k, Expiry::After(10 * SEC)).unwrap());
    clock.advance(5 * SEC);
    let e = s.get(&k).unwrap().expect("extended");
    assert_eq!((e.value.as_slice(), e.version), (&b"v"[..], w.version));
    assert!(
        s.touch(&k, Expiry::After(SEC)).unwrap(),
        "shortening is allowed"
    );
    clock.advance(SEC);
    assert!(s.get(&k).unwrap().is_none(), "shortened expiry applies");
    assert!(!s.touch(&key("absent"), Expiry::Never).unwrap());
    assert!(
        s.get(&key("absent")).unwrap().is_none(),
        "touch never creates"
    );
}

#[test]
fn update_keep_set_delete() {
    let (s, clock) = store();
    let k = key("k");
    let out = s.update(&k, &mut |e| {
        assert!(e.is_none());
        UpdateAction::set(b"1".to_vec(), Expiry::After(SEC))
    });
    assert!(matches!(out, Ok(UpdateOutcome::Written(_))), "{out:?}");
    let before = s.get(&k).unwrap().unwrap();
    assert!(matches!(
        s.update(&k, &mut |_| UpdateAction::Keep),
        Ok(UpdateOutcome::Kept)
    ));
    assert_eq!(
        s.get(&k).unwrap().unwrap(),
        before,
        "keep preserves value, version, expiry"
    );
    clock.advance(SEC / 2);
    assert!(matches!(
        s.update(&k, &mut |_| UpdateAction::Delete),
        Ok(UpdateOutcome::Deleted { existed: true })
    ));
    assert!(matches!(
        s.update(&k, &mut |_| UpdateAction::Delete),
        Ok(UpdateOutcome::Deleted { existed: false })
    ));
}

#[test]
fn update_runs_closure_exactly_once_for_locked_engine() {
    let (s, _) = store();
    assert_eq!(s.capabilities().update, UpdateAtomicity::Locked);
    let mut calls = 0;
    s.update(&key("k"), &mut |_| {
        calls += 1;
        UpdateAction::set(b"x".to_vec(), Expiry::Never)
    })
    .unwrap();
    assert_eq!(calls, 1);
}

/// Runs `incr` `per` times on each of `threads` threads against one counter key (starting
/// from no entry) and returns the final count.
fn count_in_threads(threads: u64, per: u64, incr: fn(&MemoryStore, &Key)) -> u64 {
    let (s, _) = store();
    let s = Arc::new(s);
    let k = key("counter");
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (s, k) = (s.clone(), k.clone());
            std::thread::spawn(move || {
                for _ in 0..per {
                    incr(&s, &k);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let v = s.get(&k).unwrap().unwrap().value;
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

#[test]
fn update_is_atomic_across_threads() {
    let n = count_in_threads(8, 500, |s, k| {
        s.update(k, &mut |e| {
            let n = e.map_or(0, |e| u64::from_le_bytes(e.value[..8].try_into().unwrap()));
            UpdateAction::set((n + 1).to_le_bytes().to_vec(), Expiry::Never)
        })
        .unwrap();
    });
    assert_eq!(n, 8 * 500);
}

#[test]
fn compare_and_set_retry_loop_is_atomic_across_threads() {
    let n = count_in_threads(4, 300, |s, k| {
        loop {
            let (n, version) = match s.get(k).unwrap() {
                Some(e) => (
                    u64::from_le_bytes(e.value[..8].try_into().unwrap()),
                    Some(e.version),
                ),
                None => (0, None),
            };
            let bytes = (n + 1).to_le_bytes();
            let r = match version {
                Some(v) => s.compare_and_set(k, v, &bytes, Expiry::Never),
                None => s.create(k, &bytes, Expiry::Never),
            };
            match r {
                Ok(_) => break,
                Err(Error::VersionMismatch { .. } | Error::AlreadyExists { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(n, 4 * 300);
}

#[test]
fn update_panic_leaves_key_unchanged_and_store_usable() {
    let (s, _) = store();
    let k = key("k");
    s.set(&k, b"before").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.update(&k, &mut |_| panic!("closure failed"))
    }));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"before");
    s.set(&k, b"after").unwrap();
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"after");
}

#[test]
fn expired_entries_are_reclaimed_before_live_ones() {
    // Room for 4 entries of this size.
    let entry = 64 + 2 + 100;
    let (s, clock) = bounded(4 * entry + 10, EvictionPolicy::Lru);
    for i in 0..2 {
        s.put(
            &key(&format!("e{i}")),
            &[0; 100],
            Expiry::After(SEC),
            WriteMode::Upsert,
        )
        .unwrap();
    }
    for i in 0..2 {
        s.put(
            &key(&format!("l{i}")),
            &[0; 100],
            Expiry::Never,
            WriteMode::Upsert,
        )
        .unwrap();
    }
    clock.advance(SEC);
    let w = s
        .put(&key("n0"), &[0; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(
        w.evicted,
        Evictions::Counted {
            live: 0,
            expired: 2
        }
    );
    assert!(s.exists(&key("l0")).unwrap() && s.exists(&key("l1")).unwrap());
    let st = s.stats().unwrap();
    assert_eq!((st.evicted_expired, st.evicted_live), (2, 0));
}

#[test]
fn live_evictions_are_reported_in_lru_order_and_counted() {
    let entry = 64 + 2 + 100;
    let (s, _) = bounded(3 * entry, EvictionPolicy::Lru);
    for i in 0..3 {
        let w = s.put(
            &key(&format!("k{i}")),
            &[0; 100],
            Expiry::Never,
            WriteMode::Upsert,
        );
        assert_eq!(w.unwrap().evicted, Evictions::NONE);
    }
    s.get(&key("k0")).unwrap(); // k1 is now least recently used
    let w = s
        .put(&key("k3"), &[0; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(
        w.evicted,
        Evictions::Counted {
            live: 1,
            expired: 0
        }
    );
    assert!(!s.exists(&key("k1")).unwrap(), "k1 was the LRU victim");
    assert!(s.exists(&key("k0")).unwrap());
    assert_eq!(s.stats().unwrap().evicted_live, 1);
}

#[test]
fn never_evict_live_policy_fails_with_no_space_and_changes_nothing() {
    let entry = 64 + 2 + 100;
    let (s, _) = bounded(2 * entry, EvictionPolicy::NeverEvictLive);
    s.put(&key("k0"), &[0; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    s.put(&key("k1"), &[1; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let err = s
        .put(&key("k2"), &[2; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    // Growing an existing entry that does not fit fails too and keeps the old value.
    let err = s
        .put(&key("k1"), &[9; 150], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert_eq!(s.get_value(&key("k1")).unwrap().unwrap(), vec![1; 100]);
    assert!(s.exists(&key("k0")).unwrap() && !s.exists(&key("k2")).unwrap());
    assert_eq!(s.stats().unwrap().evicted_live, 0);
}

#[test]
fn purge_expired_removes_and_counts() {
    let (s, clock) = store();
    for i in 0..10 {
        let exp = if i < 7 {
            Expiry::After(SEC)
        } else {
            Expiry::Never
        };
        s.put(&key(&format!("k{i}")), b"v", exp, WriteMode::Upsert)
            .unwrap();
    }
    assert_eq!(s.purge_expired().unwrap(), 0);
    clock.advance(SEC);
    assert_eq!(s.purge_expired().unwrap(), 7);
    let st = s.stats().unwrap();
    assert_eq!((st.entries, st.purged), (3, 7));
}

#[test]
fn stats_count_reads_hits_writes_and_bytes() {
    let (s, _) = bounded(1 << 20, EvictionPolicy::Lru);
    s.set(&key("a"), b"12345").unwrap();
    s.get(&key("a")).unwrap();
    s.get(&key("b")).unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.reads, st.hits, st.writes, st.entries), (2, 1, 1, 1));
    assert_eq!(st.bytes_used, 64 + 1 + 5);
    assert_eq!(st.capacity, Some(1 << 20));
}

#[test]
fn capabilities_describe_the_engine() {
    let (s, _) = store();
    let c = s.capabilities();
    assert!(!c.shared_across_processes && !c.survives_restart && !c.bounded);
    assert_eq!(c.max_key_len, store_api::MAX_KEY_LEN);
    let (b, _) = bounded(10_000, EvictionPolicy::Lru);
    assert!(b.capabilities().bounded);
    assert_eq!(b.capabilities().max_value_len, 10_000 - 64 - 250);
}

#[test]
fn invalid_configuration_is_an_error() {
    let err = MemoryStore::builder().capacity(10).build().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                option: "capacity",
                ..
            }
        ),
        "{err}"
    );
    let err = MemoryStore::builder().shards(0).build().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                option: "shards",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rotate_moves_the_data_and_keeps_expiry() {
    let (s, clock) = store();
    let (old, new) = (key("session:old"), key("session:new"));
    s.put(&old, b"data", Expiry::After(SEC), WriteMode::Upsert)
        .unwrap();
    let exp = s.get(&old).unwrap().unwrap().expires_at;
    assert!(s.rotate(&old, &new).unwrap());
    assert!(s.get(&old).unwrap().is_none());
    let e = s.get(&new).unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.expires_at), (&b"data"[..], exp));
    assert!(!s.rotate(&old, &key("x")).unwrap(), "absent source");
    s.set(&old, b"again").unwrap();
    assert!(matches!(
        s.rotate(&old, &new),
        Err(Error::AlreadyExists { .. })
    ));
    clock.advance(SEC);
    assert!(s.get(&new).unwrap().is_none());
}

#[test]
fn get_into_fills_a_caller_buffer() {
    let (s, _) = store();
    let w = s.set(&key("k"), b"value").unwrap();
    let mut buf = b"stale".to_vec();
    let meta = s.get_into(&key("k"), &mut buf).unwrap().unwrap();
    assert_eq!((buf.as_slice(), meta.version), (&b"value"[..], w.version));
    assert!(s.get_into(&key("x"), &mut buf).unwrap().is_none());
}

#[test]
fn store_works_as_arc_dyn_session_store() {
    let s: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let clone = s.clone();
    std::thread::spawn(move || clone.set(&key("k"), b"v").unwrap())
        .join()
        .unwrap();
    assert_eq!(
        s.get_value(&key("k")).unwrap().unwrap(),
        b"v",
        "two handles see each other"
    );
}
