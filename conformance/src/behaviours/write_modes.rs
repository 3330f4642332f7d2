//! Write modes: create-only, replace-only, compare-and-set, version freshness.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, Version, WriteMode};

use crate::check::{delete, get, key, put, put_with, value};
use crate::{Ctx, Harness, Outcome, Spec};

/// Create-only on a live key fails with `AlreadyExists` and changes nothing: value,
/// version and expiry stay.
pub fn create_only_on_live_key_fails<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let k = key("create");
    let first = put_with(&store, &k, b"first", Expiry::Never, WriteMode::CreateOnly);
    let before = get(&store, &k).expect("created");
    let err = store
        .put(
            &k,
            b"second",
            Expiry::After(Duration::from_secs(1)),
            WriteMode::CreateOnly,
        )
        .expect_err("create-only over a live key must fail");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let after = get(&store, &k).expect("still there");
    assert_eq!(after, before, "a failed create-only changed the entry");
    assert_eq!(after.version, first.version);
    Ok(())
}

/// Create-only over an expired key succeeds (expired is absent).
pub fn create_only_over_expired_key_succeeds<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("create-expired");
    let old = put_with(
        &store,
        &k,
        b"old",
        Expiry::After(Duration::from_secs(10)),
        WriteMode::Upsert,
    );
    clock.advance(Duration::from_secs(10));
    let new = store
        .put(&k, b"new", Expiry::Never, WriteMode::CreateOnly)
        .unwrap_or_else(|e| {
            panic!(
                "create-only over an expired key must succeed: {}",
                crate::check::chain(&e)
            )
        });
    assert_ne!(
        new.version, old.version,
        "a new write must get a new version"
    );
    let e = get(&store, &k).expect("created");
    assert_eq!((e.value.as_slice(), e.expires_at), (&b"new"[..], None));
    Ok(())
}

/// Replace-only fails with `NotFound` after a delete and after expiry, and never brings
/// the key back.
pub fn replace_only_never_resurrects<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let never = key("replace:never-written");
    let err = store
        .put(&never, b"x", Expiry::Never, WriteMode::ReplaceOnly)
        .expect_err("replace-only of a key never written must fail");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(value(&store, &never), None);

    let deleted = key("replace:deleted");
    put(&store, &deleted, b"v1");
    put_with(
        &store,
        &deleted,
        b"v2",
        Expiry::Never,
        WriteMode::ReplaceOnly,
    );
    assert_eq!(value(&store, &deleted), Some(b"v2".to_vec()));
    assert!(delete(&store, &deleted));
    let err = store
        .put(
            &deleted,
            b"late request",
            Expiry::Never,
            WriteMode::ReplaceOnly,
        )
        .expect_err("replace-only after delete must fail");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(
        value(&store, &deleted),
        None,
        "replace-only resurrected a deleted key"
    );

    let expired = key("replace:expired");
    put_with(
        &store,
        &expired,
        b"v1",
        Expiry::After(Duration::from_millis(500)),
        WriteMode::Upsert,
    );
    clock.advance(Duration::from_millis(500));
    let err = store
        .put(
            &expired,
            b"late request",
            Expiry::Never,
            WriteMode::ReplaceOnly,
        )
        .expect_err("replace-only after expiry must fail");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(
        value(&store, &expired),
        None,
        "replace-only resurrected an expired key"
    );
    Ok(())
}

/// Compare-and-set with a stale version fails with `VersionMismatch` naming the live
/// version, and changes nothing; with the current version it succeeds.
pub fn stale_compare_and_set_fails<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let k = key("cas");
    let v1 = put(&store, &k, b"one").version;
    let v2 = put_with(&store, &k, b"two", Expiry::Never, WriteMode::IfVersion(v1)).version;
    assert_ne!(v1, v2);
    let err = store
        .put(&k, b"stale", Expiry::Never, WriteMode::IfVersion(v1))
        .expect_err("compare-and-set with a stale version must fail");
    match err {
        Error::VersionMismatch {
            expected, actual, ..
        } => {
            assert_eq!(
                (expected, actual),
                (v1, Some(v2)),
                "mismatch must name both versions"
            );
        }
        other => panic!("expected VersionMismatch, got {other}"),
    }
    let e = get(&store, &k).expect("still there");
    assert_eq!(
        (e.value.as_slice(), e.version),
        (&b"two"[..], v2),
        "failed CAS changed the entry"
    );
    assert!(delete(&store, &k));
    let err = store
        .put(&k, b"gone", Expiry::Never, WriteMode::IfVersion(v2))
        .expect_err("compare-and-set on a deleted key must fail");
    assert!(
        matches!(err, Error::VersionMismatch { actual: None, .. }),
        "expected VersionMismatch with no actual version, got {err}"
    );
    assert_eq!(value(&store, &k), None, "failed CAS created the key");
    Ok(())
}

/// Every write gives a version never seen before for that key, also after delete and
/// re-create, through put and update; touch keeps the version.
pub fn versions_are_never_reused<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let k = key("versions");
    let other = key("versions:other");
    let mut seen: HashSet<Version> = HashSet::new();
    let mut fresh = |v: Version, how: &str| {
        assert!(seen.insert(v), "version {v} reused by {how}");
    };
    for round in 0..20 {
        fresh(put(&store, &k, b"a").version, "put");
        fresh(put(&store, &k, b"b").version, "a second put");
        put(&store, &other, b"noise");
        match store.update(&k, &mut |_| {
            store_api::UpdateAction::set(b"c".to_vec(), Expiry::Never)
        }) {
            Ok(store_api::UpdateOutcome::Written(w)) => fresh(w.version, "update"),
            other => panic!("update Set must write, got {other:?}"),
        }
        let before = get(&store, &k).expect("live").version;
        assert!(store.touch(&k, Expiry::Never).expect("touch"));
        assert_eq!(
            get(&store, &k).expect("live").version,
            before,
            "touch changed the version"
        );
        assert!(delete(&store, &k), "round {round}");
        fresh(
            put_with(&store, &k, b"again", Expiry::Never, WriteMode::CreateOnly).version,
            "create after delete",
        );
        assert!(delete(&store, &k));
    }
    Ok(())
}

/// Many threads create-only the same key at once: exactly one wins, the rest get
/// `AlreadyExists`, and the winner's value is stored.
pub fn concurrent_creates_one_wins<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let threads = 4;
    for round in 0..(50 * ctx.scale()) {
        let k = key(format!("race:{round}"));
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, barrier, k) = (store.clone(), barrier.clone(), k.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .put(
                            &k,
                            format!("thread {t}").as_bytes(),
                            Expiry::Never,
                            WriteMode::CreateOnly,
                        )
                        .map(|_| t)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for h in handles {
            match crate::check::join(h, "creator thread panicked") {
                Ok(t) => winners.push(t),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => panic!(
                    "a losing create must be AlreadyExists, got {}",
                    crate::check::chain(&e)
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} creates succeeded, exactly one must",
            winners.len()
        );
        assert_eq!(
            value(&*store, &k),
            Some(format!("thread {}", winners[0]).into_bytes())
        );
    }
    Ok(())
}

/// A touched session keeps blocking create-only writes for its new life: put with a
/// 10 s TTL, touch it to 60 s, and 30 s later a create-only write of the key must fail
/// with `AlreadyExists` (an engine whose create-only check reads an expiry recorded at
/// put time would overwrite the live session).
pub fn create_only_after_touch_fails<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("touched");
    put_with(
        &store,
        &k,
        b"mine",
        Expiry::After(Duration::from_secs(10)),
        WriteMode::Upsert,
    );
    assert!(
        store
            .touch(&k, Expiry::After(Duration::from_secs(60)))
            .expect("touch"),
        "touch of a live entry must report it"
    );
    clock.advance(Duration::from_secs(30));
    match store.put(&k, b"theirs", Expiry::Never, WriteMode::CreateOnly) {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!(
            "create-only over an entry touched to 60 s, 30 s later (past its first 10 s): \
             expected AlreadyExists, got {other:?}"
        ),
    }
    assert_eq!(
        value(&store, &k),
        Some(b"mine".to_vec()),
        "the touched entry was overwritten"
    );
    // And replace-only / compare-and-set see it as live too.
    let v = get(&store, &k).expect("live").version;
    store
        .put(
            &k,
            b"again",
            Expiry::After(Duration::from_secs(60)),
            WriteMode::IfVersion(v),
        )
        .expect("compare-and-set on the touched entry's version");
    Ok(())
}
