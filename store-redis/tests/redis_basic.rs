//! The contract's basic operations against a real server: round trips, write modes,
//! versions, touch, update, rotate, prefixes, capabilities and stats.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use store_api::{
    Error, Evictions, Expiry, Key, SessionStore, SessionStoreExt, UpdateAction, UpdateAtomicity,
    UpdateOutcome, WriteMode,
};

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

const HOUR: Expiry = Expiry::After(Duration::from_secs(3600));

#[test]
fn values_round_trip_byte_for_byte() {
    let server = server_or_skip!();
    let store = server.store("rt:");
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    for (k, v) in [
        ("empty", &b""[..]),
        ("text", &b"user=ada"[..]),
        ("binary", &all_bytes[..]),
        ("colons", &b"v1:00000000000000000001:0:"[..]),
    ] {
        let k = key(k);
        let out = store.put(&k, v, Expiry::Never, WriteMode::Upsert).unwrap();
        assert_eq!(out.evicted, Evictions::Unknown);
        let e = store.get(&k).unwrap().expect("just written");
        assert_eq!(e.value, v, "{k}");
        assert_eq!(e.version, out.version);
        assert_eq!(e.expires_at, None);
        let mut buf = b"stale".to_vec();
        let meta = store.get_into(&k, &mut buf).unwrap().unwrap();
        assert_eq!(buf, v);
        assert_eq!(meta, e.meta());
    }
    let unicode = key("sitzung:grüße{tag}");
    store.set(&unicode, b"x").unwrap();
    assert_eq!(store.get_value(&unicode).unwrap().unwrap(), b"x");
    assert_eq!(store.get(&key("absent")).unwrap(), None);
}

#[test]
fn write_modes_are_decided_on_the_server() {
    let server = server_or_skip!();
    let store = server.store("modes:");
    let k = key("session:1");

    let err = store.replace(&k, b"x", HOUR).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(store.get(&k).unwrap(), None, "replace-only must not create");

    let v1 = store.create(&k, b"a", HOUR).unwrap().version;
    let err = store.create(&k, b"b", HOUR).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(
        store.get_value(&k).unwrap().unwrap(),
        b"a",
        "collision kept the old value"
    );

    let v2 = store.replace(&k, b"c", HOUR).unwrap().version;
    assert_ne!(v1, v2);

    let err = store.compare_and_set(&k, v1, b"d", HOUR).unwrap_err();
    match err {
        Error::VersionMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, v1);
            assert_eq!(actual, Some(v2));
        }
        other => panic!("expected VersionMismatch, got {other}"),
    }
    let v3 = store.compare_and_set(&k, v2, b"e", HOUR).unwrap().version;
    assert_eq!(store.get(&k).unwrap().unwrap().version, v3);

    assert!(store.delete(&k).unwrap());
    assert!(!store.delete(&k).unwrap(), "second delete finds nothing");
    let err = store.compare_and_set(&k, v3, b"f", HOUR).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { actual: None, .. }),
        "{err}"
    );
}

#[test]
fn versions_are_never_reused_even_after_delete() {
    let server = server_or_skip!();
    let store = server.store("ver:");
    let k = key("session:v");
    let mut seen = HashSet::new();
    for i in 0..50u32 {
        let v = store
            .put(&k, &i.to_le_bytes(), HOUR, WriteMode::Upsert)
            .unwrap()
            .version;
        assert!(seen.insert(v), "version {v} reused at write {i}");
        if i % 3 == 0 {
            assert!(store.delete(&k).unwrap());
        }
    }
    // A second store object (another host) draws from the same server-side counter.
    let other = server.store("ver:");
    let v = other
        .put(&k, b"x", HOUR, WriteMode::Upsert)
        .unwrap()
        .version;
    assert!(seen.insert(v), "version {v} reused by a second store");
}

#[test]
fn version_counter_lost_to_eviction_restarts_above_old_versions() {
    // Under allkeys-lru Redis may evict the counter itself; it must restart above every
    // version it issued, or a compare-and-set could accept a stale version.
    let server = server_or_skip!();
    let store = server.store("evict:");
    let k = key("session:e");
    let old = store
        .put(&k, b"a", HOUR, WriteMode::Upsert)
        .unwrap()
        .version;
    let con = &mut redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let counters: Vec<String> = redis::cmd("KEYS").arg("evict:v*").query(con).unwrap();
    assert_eq!(counters.len(), 1, "{counters:?}");
    let _: () = redis::cmd("DEL").arg(&counters[0]).query(con).unwrap();
    let new = store
        .put(&k, b"b", HOUR, WriteMode::Upsert)
        .unwrap()
        .version;
    assert!(new > old, "{new} after {old}");
}

#[test]
fn touch_changes_only_the_expiry() {
    let server = server_or_skip!();
    let store = server.store("touch:");
    let k = key("session:t");
    let v = store
        .put(&k, b"val", HOUR, WriteMode::Upsert)
        .unwrap()
        .version;
    let now = store.server_time().unwrap();
    let later = now.saturating_add(Duration::from_secs(7200));
    assert!(store.touch(&k, Expiry::At(later)).unwrap());
    let e = store.get(&k).unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.version, e.expires_at),
        (&b"val"[..], v, Some(later))
    );
    let ttl: i64 = redis::cmd("PEXPIRETIME")
        .arg("touch:s:session:t")
        .query(
            &mut redis::Client::open(server.url())
                .unwrap()
                .get_connection()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        ttl,
        later.as_millis() as i64,
        "server-side expiry follows touch"
    );

    assert!(store.touch(&k, Expiry::Never).unwrap());
    assert_eq!(store.get(&k).unwrap().unwrap().expires_at, None);
    assert!(
        !store.touch(&key("session:none"), HOUR).unwrap(),
        "touch never creates"
    );
    assert_eq!(store.get(&key("session:none")).unwrap(), None);

    assert!(store.touch(&k, Expiry::After(Duration::ZERO)).unwrap());
    assert_eq!(
        store.get(&k).unwrap(),
        None,
        "touched into the past: expired at once"
    );
}

#[test]
fn far_future_expiries_are_kept_exactly() {
    let server = server_or_skip!();
    let store = server.store("far:");
    let k = key("session:far");
    let max = store_api::Timestamp::from_millis(u64::MAX);
    store
        .put(&k, b"x", Expiry::After(Duration::MAX), WriteMode::Upsert)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().expires_at, Some(max));
    store
        .put(&k, b"x", Expiry::At(max), WriteMode::Upsert)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().expires_at, Some(max));
    let year_3000 = store_api::Timestamp::from_millis(32_503_680_000_000);
    store
        .put(&k, b"x", Expiry::At(year_3000), WriteMode::Upsert)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().expires_at, Some(year_3000));
}

#[test]
fn default_ttl_applies_to_default_expiry() {
    let server = server_or_skip!();
    let store = server
        .builder("ttl:")
        .default_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let k = key("session:d");
    let before = store.server_time().unwrap();
    store.set(&k, b"x").unwrap();
    let after = store.server_time().unwrap();
    let at = store
        .get(&k)
        .unwrap()
        .unwrap()
        .expires_at
        .expect("default ttl");
    let minute = Duration::from_secs(60);
    assert!(
        before.saturating_add(minute) <= at && at <= after.saturating_add(minute),
        "{before} + 60s <= {at} <= {after} + 60s"
    );
    let plain = server.store("ttl:");
    plain.set(&k, b"y").unwrap();
    assert_eq!(plain.get(&k).unwrap().unwrap().expires_at, None);
}

#[test]
fn too_large_values_change_nothing() {
    let server = server_or_skip!();
    let store = server.builder("big:").max_value_len(1000).build().unwrap();
    assert_eq!(store.capabilities().max_value_len, 1000);
    let k = key("session:big");
    store.put(&k, &[1; 1000], HOUR, WriteMode::Upsert).unwrap();
    let err = store
        .put(&k, &[2; 1001], HOUR, WriteMode::Upsert)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    let err = store
        .update(&k, &mut |_| UpdateAction::set(vec![3; 1001], HOUR))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(store.get_value(&k).unwrap().unwrap(), vec![1; 1000]);
}

#[test]
fn update_keeps_sets_and_deletes() {
    let server = server_or_skip!();
    let store = server.store("upd:");
    let k = key("session:u");

    let mut saw = Vec::new();
    let out = store
        .update(&k, &mut |e| {
            saw.push(e.cloned());
            UpdateAction::Keep
        })
        .unwrap();
    assert_eq!(out, UpdateOutcome::Kept);
    assert_eq!(saw, vec![None]);
    assert_eq!(
        store.get(&k).unwrap(),
        None,
        "Keep on absent creates nothing"
    );

    let out = store
        .update_with(&k, |_| UpdateAction::set(b"1".to_vec(), HOUR))
        .unwrap();
    let UpdateOutcome::Written(w) = out else {
        panic!("expected Written, got {out:?}")
    };
    let e = store.get(&k).unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"1"[..], w.version));

    let out = store
        .update_with(&k, |e| {
            let n: u8 = e.unwrap().value[0];
            UpdateAction::set(vec![n + 1], HOUR)
        })
        .unwrap();
    assert!(matches!(out, UpdateOutcome::Written(_)), "{out:?}");
    assert_eq!(store.get_value(&k).unwrap().unwrap(), b"2");

    assert_eq!(
        store.update_with(&k, |_| UpdateAction::Keep).unwrap(),
        UpdateOutcome::Kept
    );
    assert_eq!(
        store.get(&k).unwrap().unwrap().value,
        b"2",
        "Keep changed nothing"
    );

    let out = store.update_with(&k, |_| UpdateAction::Delete).unwrap();
    assert_eq!(out, UpdateOutcome::Deleted { existed: true });
    let out = store.update_with(&k, |_| UpdateAction::Delete).unwrap();
    assert_eq!(out, UpdateOutcome::Deleted { existed: false });
    assert_eq!(store.get(&k).unwrap(), None);
}

#[test]
fn update_closure_panic_leaves_the_key_and_store_usable() {
    let server = server_or_skip!();
    let store = server.store("panic:");
    let k = key("session:p");
    store.put(&k, b"before", HOUR, WriteMode::Upsert).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.update_with(&k, |_| panic!("closure panics"))
    }));
    assert!(r.is_err());
    assert_eq!(store.get_value(&k).unwrap().unwrap(), b"before");
    store.put(&k, b"after", HOUR, WriteMode::Upsert).unwrap();
}

#[test]
fn rotate_moves_the_entry_with_its_expiry() {
    let server = server_or_skip!();
    let store = server.store("rot:");
    let (from, to) = (key("session:old"), key("session:new"));
    store.put(&from, b"data", HOUR, WriteMode::Upsert).unwrap();
    let at = store.get(&from).unwrap().unwrap().expires_at;
    assert!(store.rotate(&from, &to).unwrap());
    assert_eq!(store.get(&from).unwrap(), None);
    let e = store.get(&to).unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.expires_at), (&b"data"[..], at));
    assert!(!store.rotate(&from, &to).unwrap(), "absent source");
    store.put(&from, b"x", HOUR, WriteMode::Upsert).unwrap();
    let err = store.rotate(&from, &to).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
}

#[test]
fn prefixes_keep_stores_apart() {
    let server = server_or_skip!();
    let (a, b) = (server.store("app-a:"), server.store("{app-b}:"));
    let k = key("session:same");
    a.put(&k, b"a", HOUR, WriteMode::Upsert).unwrap();
    assert_eq!(b.get(&k).unwrap(), None);
    b.put(&k, b"b", HOUR, WriteMode::CreateOnly).unwrap();
    assert_eq!(a.get_value(&k).unwrap().unwrap(), b"a");
    assert_eq!(b.get_value(&k).unwrap().unwrap(), b"b");
    assert_eq!(a.prefix(), "app-a:");
}

#[test]
fn a_prefix_holding_another_layout_is_refused() {
    let server = server_or_skip!();
    drop(server.store("layout:"));
    let con = &mut redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("layout:format")
        .arg("store-redis 2")
        .query(con)
        .unwrap();
    let err = server.builder("layout:").build().unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(
        err.to_string().contains("layout:"),
        "names the prefix: {err}"
    );
    server.store("other-layout:");
}

#[test]
fn foreign_data_under_the_prefix_is_corrupted_not_a_value() {
    let server = server_or_skip!();
    let store = server.store("foreign:");
    let con = &mut redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("foreign:s:k")
        .arg("hello")
        .query(con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("foreign:s:empty")
        .arg("")
        .query(con)
        .unwrap();
    let k = key("k");
    for (what, err) in [
        ("get", store.get(&k).unwrap_err()),
        (
            "put",
            store.put(&k, b"x", HOUR, WriteMode::Upsert).unwrap_err(),
        ),
        (
            "create",
            store.create(&key("empty"), b"x", HOUR).unwrap_err(),
        ),
        ("touch", store.touch(&k, HOUR).unwrap_err()),
    ] {
        assert!(matches!(err, Error::Corrupted { .. }), "{what}: {err}");
        assert!(err.to_string().contains("foreign:s:"), "{what}: {err}");
    }
    assert!(store.delete(&k).unwrap(), "delete clears foreign data");
    store.put(&k, b"x", HOUR, WriteMode::CreateOnly).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("foreign:s:list")
        .arg("x")
        .query(con)
        .unwrap();
    let err = store.get(&key("list")).unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "WRONGTYPE: {err}");
}

#[test]
fn capabilities_and_stats_describe_a_shared_server() {
    let server = server_or_skip!();
    let store = server
        .builder("caps:")
        .max_update_attempts(5)
        .build()
        .unwrap();
    let caps = store.capabilities();
    assert!(caps.shared_across_hosts && caps.shared_across_processes);
    assert!(!caps.bounded);
    assert_eq!(caps.update, UpdateAtomicity::Optimistic { max_attempts: 5 });
    assert_eq!(caps.max_key_len, store_api::MAX_KEY_LEN);
    assert!(
        caps.expires_itself,
        "the server's clock expires entries: purge returns 0"
    );

    let k = key("session:s");
    store.put(&k, b"x", HOUR, WriteMode::Upsert).unwrap();
    store.get(&k).unwrap();
    store.get(&key("session:missing")).unwrap();
    assert!(store.delete(&k).unwrap());
    assert!(!store.delete(&k).unwrap());
    let s = store.stats().unwrap();
    assert_eq!((s.reads, s.hits, s.writes), (2, 1, 2));
    // The server holds the format marker and the version counter: two keys in db 0.
    assert_eq!(s.entries, 2, "{s:?}");
    assert!(s.bytes_used > 0);
    assert_eq!(s.capacity, None, "no maxmemory on the test server");
    assert_eq!(store.purge_expired().unwrap(), 0);
}
