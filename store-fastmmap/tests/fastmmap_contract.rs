//! The store-api contract on the fastmmap engine: the same behaviour as store-memory.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::time::Duration;

use store_api::{
    Error, Evictions, Expiry, SessionStore, SessionStoreExt, Timestamp, UpdateAction,
    UpdateOutcome, WriteMode,
};
use support::{Fixture, key};

fn round_trip_non_ascii_and_empty_values(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(4);
    let k = key("a");
    let v = "grüße, 世界".as_bytes();
    let out = s.put(&k, v, Expiry::Never, WriteMode::Upsert).unwrap();
    assert_eq!(out.evicted, Evictions::NONE);
    let e = s.get(&k).unwrap().unwrap();
    assert_eq!(e.value, v);
    assert_eq!(e.version, out.version);
    assert_eq!(e.expires_at, None);
    s.put(&k, b"", Expiry::Never, WriteMode::Upsert).unwrap();
    assert_eq!(s.get_value(&k).unwrap(), Some(vec![]));
    let mut buf = vec![1, 2, 3];
    let m = s.get_into(&k, &mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_ne!(m.version, out.version);
}

fn missing_key_is_none_and_delete_reports_liveness(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    assert!(s.get(&key("x")).unwrap().is_none());
    assert!(!s.delete(&key("x")).unwrap());
    s.set(&key("x"), b"1").unwrap();
    assert!(s.delete(&key("x")).unwrap());
    assert!(!s.delete(&key("x")).unwrap());
    assert!(s.get(&key("x")).unwrap().is_none());
}

fn write_modes_follow_the_contract(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let k = key("m");
    assert!(matches!(
        s.replace(&k, b"v", Expiry::Never),
        Err(Error::NotFound { .. })
    ));
    let v1 = s.create(&k, b"v1", Expiry::Never).unwrap().version;
    assert!(matches!(
        s.create(&k, b"v", Expiry::Never),
        Err(Error::AlreadyExists { .. })
    ));
    let v2 = s.replace(&k, b"v2", Expiry::Never).unwrap().version;
    assert!(matches!(
        s.compare_and_set(&k, v1, b"x", Expiry::Never),
        Err(Error::VersionMismatch { actual: Some(a), .. }) if a == v2
    ));
    let v3 = s
        .compare_and_set(&k, v2, b"v3", Expiry::Never)
        .unwrap()
        .version;
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"v3");
    assert!(v1 != v2 && v2 != v3 && v1 != v3);
}

fn versions_are_never_reused_after_delete_recreate_and_reinit(kind: LockKind) {
    let fx = Fixture::of(kind);
    let mut seen = std::collections::HashSet::new();
    {
        let s = fx.small(2);
        let k = key("v");
        for _ in 0..50 {
            assert!(seen.insert(s.set(&k, b"a").unwrap().version));
            s.delete(&k).unwrap();
        }
    }
    // Re-initialising the file (and so every page) does not restart versions.
    let s = fx.small_reinit(2);
    for _ in 0..50 {
        assert!(seen.insert(s.set(&key("v"), b"a").unwrap().version));
    }
}

/// `default_ttl`, the other builders' name, sets the same default as Perl's `expires`.
fn default_ttl_is_the_same_option_as_expires(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx
        .builder()
        .page_size(4096)
        .num_pages(2)
        .default_ttl(Duration::from_secs(7))
        .open()
        .unwrap();
    let now = fx.clock.now();
    s.set(&key("ttl"), b"v").unwrap();
    assert_eq!(
        s.get(&key("ttl")).unwrap().unwrap().expires_at,
        Some(now.saturating_add(Duration::from_secs(7)))
    );
}

fn expiry_boundary_default_ttl_and_touch(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx
        .builder()
        .page_size(4096)
        .num_pages(2)
        .expires(Duration::from_secs(10))
        .open()
        .unwrap();
    let k = key("e");
    let now = fx.clock.now();
    s.set(&k, b"v").unwrap();
    assert_eq!(
        s.get(&k).unwrap().unwrap().expires_at,
        Some(now.saturating_add(Duration::from_secs(10)))
    );
    fx.clock.advance(Duration::from_millis(9_999));
    assert!(s.get(&k).unwrap().is_some(), "live until now < expires_at");
    assert!(s.touch(&k, Expiry::After(Duration::from_secs(5))).unwrap());
    let v = s.get(&k).unwrap().unwrap().version;
    fx.clock.advance(Duration::from_millis(5_000));
    assert!(s.get(&k).unwrap().is_none(), "expired at now == expires_at");
    assert!(!s.touch(&k, Expiry::Never).unwrap());
    assert!(!s.delete(&k).unwrap());
    // Create-only succeeds over an expired entry; the version is new.
    let out = s.create(&k, b"w", Expiry::Never).unwrap();
    assert_ne!(out.version, v);
    // An expiry in the past stores an entry that is expired at once.
    s.put(
        &key("past"),
        b"p",
        Expiry::At(Timestamp::from_millis(1)),
        WriteMode::Upsert,
    )
    .unwrap();
    assert!(s.get(&key("past")).unwrap().is_none());
    s.put(
        &key("zero"),
        b"p",
        Expiry::After(Duration::ZERO),
        WriteMode::Upsert,
    )
    .unwrap();
    assert!(s.get(&key("zero")).unwrap().is_none());
}

use store_api::Clock as _;

fn touch_keeps_value_and_version(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let k = key("t");
    let v = s.set(&k, b"val").unwrap().version;
    assert!(
        s.touch(&k, Expiry::At(Timestamp::from_millis(u64::MAX / 2)))
            .unwrap()
    );
    let e = s.get(&k).unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"val"[..], v));
    assert_eq!(e.expires_at, Some(Timestamp::from_millis(u64::MAX / 2)));
    assert!(!s.touch(&key("absent"), Expiry::Never).unwrap());
}

fn update_sets_keeps_deletes_and_sees_expired_as_none(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let k = key("u");
    let out = s
        .update_with(&k, |e| {
            assert!(e.is_none());
            UpdateAction::set(b"1".to_vec(), Expiry::After(Duration::from_secs(1)))
        })
        .unwrap();
    assert!(matches!(out, UpdateOutcome::Written(_)));
    assert_eq!(
        s.update_with(&k, |_| UpdateAction::Keep).unwrap(),
        UpdateOutcome::Kept
    );
    let mut calls = 0;
    s.update_with(&k, |e| {
        calls += 1;
        let n: u32 = std::str::from_utf8(&e.unwrap().value)
            .unwrap()
            .parse()
            .unwrap();
        UpdateAction::set((n + 1).to_string().into_bytes(), Expiry::Never)
    })
    .unwrap();
    assert_eq!(calls, 1, "the closure runs exactly once");
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"2");
    assert_eq!(
        s.update_with(&k, |_| UpdateAction::Delete).unwrap(),
        UpdateOutcome::Deleted { existed: true }
    );
    assert_eq!(
        s.update_with(&k, |_| UpdateAction::Delete).unwrap(),
        UpdateOutcome::Deleted { existed: false }
    );
    s.put(
        &k,
        b"x",
        Expiry::After(Duration::from_millis(1)),
        WriteMode::Upsert,
    )
    .unwrap();
    fx.clock.advance(Duration::from_millis(1));
    s.update_with(&k, |e| {
        assert!(e.is_none(), "an expired entry is absent for update");
        UpdateAction::Keep
    })
    .unwrap();
}

fn update_closure_panic_leaves_page_intact_and_unlocked(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    s.set(&key("p"), b"before").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.update_with(&key("p"), |_| panic!("closure failed"))
            .unwrap();
    }));
    assert!(r.is_err());
    assert_eq!(s.get_value(&key("p")).unwrap().unwrap(), b"before");
    // The page lock was released: a write to the same page goes through.
    s.set(&key("q"), b"after").unwrap();
    assert_eq!(s.stats().unwrap().recovered, 0, "nothing to repair");
}

fn update_set_too_large_changes_nothing(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    s.set(&key("big"), b"old").unwrap();
    let max = s.max_value_len(key("big").len());
    let err = s
        .update_with(&key("big"), |_| {
            UpdateAction::set(vec![0; max + 1], Expiry::Never)
        })
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(s.get_value(&key("big")).unwrap().unwrap(), b"old");
}

fn rotate_moves_atomically_and_refuses_a_live_target(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(8);
    let (a, b, c) = (key("a"), key("b"), key("c"));
    s.put(
        &a,
        b"A",
        Expiry::At(Timestamp::from_millis(u64::MAX / 4)),
        WriteMode::Upsert,
    )
    .unwrap();
    assert!(s.rotate(&a, &b).unwrap());
    assert!(s.get(&a).unwrap().is_none());
    let e = s.get(&b).unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.expires_at),
        (&b"A"[..], Some(Timestamp::from_millis(u64::MAX / 4)))
    );
    assert!(!s.rotate(&a, &c).unwrap());
    s.set(&c, b"C").unwrap();
    assert!(matches!(s.rotate(&b, &c), Err(Error::AlreadyExists { .. })));
    assert_eq!(
        s.get_value(&b).unwrap().unwrap(),
        b"A",
        "a failed rotate changes nothing"
    );
    // Many rotations across and within pages.
    let mut cur = b;
    for i in 0..200 {
        let next = key(format!("r{i}"));
        assert!(s.rotate(&cur, &next).unwrap());
        cur = next;
    }
    assert_eq!(s.get_value(&cur).unwrap().unwrap(), b"A");
}

fn purge_expired_counts_and_stats_add_up(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(4);
    for i in 0..20 {
        let e = if i % 2 == 0 {
            Expiry::After(Duration::from_secs(1))
        } else {
            Expiry::Never
        };
        s.put(&key(i), b"v", e, WriteMode::Upsert).unwrap();
    }
    fx.clock.advance(Duration::from_secs(1));
    assert_eq!(s.purge_expired().unwrap(), 10);
    assert_eq!(s.purge_expired().unwrap(), 0);
    for i in 0..20 {
        assert_eq!(s.get(&key(i)).unwrap().is_some(), i % 2 == 1);
    }
    let st = s.stats().unwrap();
    assert_eq!(st.entries, 10);
    assert_eq!(st.purged, 10);
    assert_eq!(st.writes, 20);
    assert_eq!(st.reads, 20);
    assert_eq!(st.hits, 10);
    assert_eq!(st.capacity, Some(4 * 4096));
    assert!(st.bytes_used > 0);
}

fn capabilities_describe_a_shared_bounded_persistent_engine(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx
        .builder()
        .page_size(64 << 10)
        .num_pages(2)
        .open()
        .unwrap();
    let c = s.capabilities();
    assert!(c.shared_across_processes && c.survives_restart && c.bounded);
    assert!(!c.shared_across_hosts);
    assert!(c.max_key_len >= 250);
    assert_eq!(c.max_value_len, s.max_value_len(250));
    // Max value: page_size * 29/32 - 64 - 24 - align8(key) rounded down to 8.
    assert_eq!(
        s.max_value_len(250),
        ((64 << 10) * 29 / 32 - 64 - 24 - 256) & !7
    );
    let k = store_api::Key::new("k".repeat(250)).unwrap();
    s.put(
        &k,
        &vec![7; c.max_value_len],
        Expiry::Never,
        WriteMode::Upsert,
    )
    .unwrap();
    assert_eq!(s.get_value(&k).unwrap().unwrap().len(), c.max_value_len);
}

fn store_is_send_sync_and_object_safe(kind: LockKind) {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<store_fastmmap::FastMmapStore>();
    let fx = Fixture::of(kind);
    let s: Box<dyn SessionStore> = Box::new(fx.small(1));
    s.set(&key("dyn"), b"1").unwrap();
}

both_kinds!(
    round_trip_non_ascii_and_empty_values,
    missing_key_is_none_and_delete_reports_liveness,
    write_modes_follow_the_contract,
    versions_are_never_reused_after_delete_recreate_and_reinit,
    default_ttl_is_the_same_option_as_expires,
    expiry_boundary_default_ttl_and_touch,
    touch_keeps_value_and_version,
    update_sets_keeps_deletes_and_sees_expired_as_none,
    update_closure_panic_leaves_page_intact_and_unlocked,
    update_set_too_large_changes_nothing,
    rotate_moves_atomically_and_refuses_a_live_target,
    purge_expired_counts_and_stats_add_up,
    capabilities_describe_a_shared_bounded_persistent_engine,
    store_is_send_sync_and_object_safe,
);
