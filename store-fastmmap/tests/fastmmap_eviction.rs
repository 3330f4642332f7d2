//! Eviction, expiry reclaim, `NoSpace` and `TooLarge` within a bounded page.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::time::Duration;

use store_api::{
    Error, EvictionPolicy, Evictions, Expiry, SessionStore, SessionStoreExt, WriteMode,
};
use support::{Fixture, key, keys_on_page};

/// One 4 KiB page: a 3,648-byte data area; 11-byte keys and 100-byte values take 144
/// bytes each, so 25 fit.
fn one_page(fx: &Fixture, policy: EvictionPolicy) -> store_fastmmap::FastMmapStore {
    fx.builder()
        .page_size(4096)
        .num_pages(1)
        .policy(policy)
        .open()
        .unwrap()
}

fn k(i: usize) -> store_api::Key {
    store_api::Key::new(format!("key:{i:07}")).unwrap()
}

fn lru_evicts_the_least_recently_used_and_reports_it(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::Lru);
    for i in 0..25 {
        let out = s
            .put(&k(i), &[1; 100], Expiry::Never, WriteMode::Upsert)
            .unwrap();
        assert_eq!(out.evicted, Evictions::NONE, "item {i} fits");
    }
    // Reading k0 refreshes its stamp (it is more than 16 writes old).
    assert!(s.get(&k(0)).unwrap().is_some());
    let out = s
        .put(&k(25), &[2; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    // One entry must go; a little slack (1/64 of the page) may take one or two more so
    // that a full page is not rebuilt on every write.
    let live = out.evicted.live().unwrap();
    assert!((1..=2).contains(&live), "{:?}", out.evicted);
    assert_eq!(out.evicted.expired(), Some(0));
    assert!(s.get(&k(0)).unwrap().is_some(), "recently read: kept");
    assert!(
        s.get(&k(1)).unwrap().is_none(),
        "least recently used: evicted"
    );
    for i in (live as usize + 1)..=25 {
        assert!(
            s.get(&k(i)).unwrap().is_some(),
            "item {i} younger than the victims"
        );
    }
    let st = s.stats().unwrap();
    assert_eq!((st.evicted_live, st.evicted_expired), (live, 0));
    assert_eq!(st.entries, 26 - live);
}

fn expired_entries_are_reclaimed_before_live_ones(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::Lru);
    for i in 0..25 {
        let e = if i % 5 == 0 {
            Expiry::After(Duration::from_secs(1))
        } else {
            Expiry::Never
        };
        s.put(&k(i), &[1; 100], e, WriteMode::Upsert).unwrap();
    }
    fx.clock.advance(Duration::from_secs(1));
    let out = s
        .put(&k(100), &[2; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(
        out.evicted,
        Evictions::Counted {
            live: 0,
            expired: 5
        }
    );
    for i in (0..25).filter(|i| i % 5 != 0) {
        assert!(s.get(&k(i)).unwrap().is_some(), "live item {i} kept");
    }
    assert_eq!(s.stats().unwrap().evicted_expired, 5);
}

fn never_evict_live_fails_with_no_space_and_changes_nothing(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::NeverEvictLive);
    for i in 0..25 {
        s.put(&k(i), &[1; 100], Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
    let err = s
        .put(&k(99), &[2; 100], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    // Growing an existing entry that no longer fits also fails and keeps the old value.
    let err = s
        .put(&k(3), &[3; 400], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert_eq!(s.get_value(&k(3)).unwrap().unwrap(), vec![1; 100]);
    for i in 0..25 {
        assert!(s.get(&k(i)).unwrap().is_some());
    }
    assert_eq!(s.stats().unwrap().evicted_live, 0);
    // Overwriting in place at the same size still works (compaction, no eviction).
    for round in 0..100u8 {
        s.put(&k(7), &[round; 100], Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
}

/// Regression (Perl 1.57): an oversized write deleted the key's old value and evicted
/// other items of the page. Here it is `TooLarge`, states the maximum, changes nothing.
fn too_large_write_changes_nothing_and_states_the_maximum(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::Lru);
    for i in 0..25 {
        s.put(&k(i), &[1; 100], Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
    let max = s.max_value_len(k(0).len());
    assert_eq!(max, (4096 * 29 / 32 - 64 - 24 - 16) & !7);
    let err = s
        .put(&k(0), &vec![9; max + 1], Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    match &err {
        Error::TooLarge { len, max: m } => assert_eq!((*len, *m), (max + 1, max)),
        other => panic!("expected TooLarge, got {other}"),
    }
    assert!(err.to_string().contains(&max.to_string()), "{err}");
    assert_eq!(
        s.get_value(&k(0)).unwrap().unwrap(),
        vec![1; 100],
        "old value kept"
    );
    for i in 0..25 {
        assert!(s.get(&k(i)).unwrap().is_some(), "item {i} not evicted");
    }
    let st = s.stats().unwrap();
    assert_eq!((st.evicted_live, st.writes), (0, 25));
    // Exactly the maximum fits (evicting everything else, reported).
    let out = s
        .put(&k(0), &vec![9; max], Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(out.evicted.live(), Some(24));
}

fn overwrites_compact_instead_of_evicting(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::Lru);
    for i in 0..20 {
        s.put(&k(i), &[1; 100], Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
    for round in 0..2_000usize {
        let out = s
            .put(
                &k(round % 20),
                &[round as u8; 100],
                Expiry::Never,
                WriteMode::Upsert,
            )
            .unwrap();
        assert_eq!(out.evicted, Evictions::NONE);
    }
    for i in 0..20 {
        assert!(s.get(&k(i)).unwrap().is_some());
    }
    assert_eq!(s.stats().unwrap().entries, 20);
}

fn deletes_free_room_and_slots_are_reused(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = one_page(&fx, EvictionPolicy::NeverEvictLive);
    for round in 0..50 {
        for i in 0..25 {
            s.put(
                &k(round * 100 + i),
                &[1; 100],
                Expiry::Never,
                WriteMode::Upsert,
            )
            .unwrap();
        }
        for i in 0..25 {
            assert!(s.delete(&k(round * 100 + i)).unwrap());
        }
    }
    assert_eq!(s.stats().unwrap().entries, 0);
}

fn eviction_stays_within_the_page(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(4);
    let others: Vec<_> = (1..4).flat_map(|p| keys_on_page(&s, p, 5)).collect();
    for o in &others {
        s.set(o, b"other page").unwrap();
    }
    for kk in keys_on_page(&s, 0, 200) {
        s.set(&kk, &[0; 100]).unwrap();
    }
    for o in &others {
        assert!(
            s.get(o).unwrap().is_some(),
            "{o} on another page was not evicted"
        );
    }
    let _ = key(0);
}

/// Regression (audit #11): a same-page `rotate` wrote `to` before removing `from`, so on
/// a full page it evicted live entries (or failed with `NoSpace`) to make room for a
/// record that only moves.
fn a_same_page_rotate_on_a_full_page_evicts_nothing(kind: LockKind) {
    for policy in [EvictionPolicy::Lru, EvictionPolicy::NeverEvictLive] {
        let fx = Fixture::of(kind);
        let s = one_page(&fx, policy);
        // 2,000 bytes plus 10 x 144: the page cannot hold a second copy of the big value.
        let big = vec![7u8; 2000];
        s.set(&key("from"), &big).unwrap();
        for i in 0..10 {
            s.set(&k(i), &[i as u8; 100]).unwrap();
        }
        assert!(s.rotate(&key("from"), &key("to")).unwrap(), "{policy:?}");
        assert_eq!(s.get_value(&key("to")).unwrap().unwrap(), big, "{policy:?}");
        assert!(s.get(&key("from")).unwrap().is_none(), "{policy:?}");
        for i in 0..10 {
            assert_eq!(
                s.get_value(&k(i)).unwrap().unwrap(),
                [i as u8; 100],
                "{policy:?}: key {i} kept"
            );
        }
        let st = s.stats().unwrap();
        assert_eq!((st.evicted_live, st.entries), (0, 11), "{policy:?}: {st:?}");
    }
}

both_kinds!(
    lru_evicts_the_least_recently_used_and_reports_it,
    expired_entries_are_reclaimed_before_live_ones,
    never_evict_live_fails_with_no_space_and_changes_nothing,
    too_large_write_changes_nothing_and_states_the_maximum,
    overwrites_compact_instead_of_evicting,
    deletes_free_room_and_slots_are_reused,
    eviction_stays_within_the_page,
    a_same_page_rotate_on_a_full_page_evicts_nothing,
);
