//! Expiry on a manual clock: the boundary, never, the past, absence for every
//! operation, touch, purge, and `Keep` in update.

use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, Timestamp, UpdateAction, UpdateOutcome, WriteMode};

use crate::check::{delete, get, key, put, put_with, value};
use crate::{Ctx, Harness, Outcome, Spec};

/// An entry is live one millisecond before its expiry and absent at exactly its expiry
/// (`now == expires_at` is expired), for `After` and `At` alike.
pub fn exact_boundary<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let t0 = clock.now_ms();
    let after = key("boundary:after");
    let at = key("boundary:at");
    put_with(
        &store,
        &after,
        b"v",
        Expiry::After(Duration::from_millis(1_000)),
        WriteMode::Upsert,
    );
    put_with(
        &store,
        &at,
        b"v",
        Expiry::At(Timestamp::from_millis(t0 + 1_000)),
        WriteMode::Upsert,
    );
    let e = get(&store, &after).expect("live right after the write");
    assert_eq!(
        e.expires_at,
        Some(Timestamp::from_millis(t0 + 1_000)),
        "After(1s) resolves against the clock"
    );
    clock.advance(Duration::from_millis(999));
    assert!(get(&store, &after).is_some(), "live at expires_at - 1ms");
    assert!(get(&store, &at).is_some(), "live at expires_at - 1ms");
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        get(&store, &after),
        None,
        "an entry is expired when now == expires_at"
    );
    assert_eq!(
        get(&store, &at),
        None,
        "an entry is expired when now == expires_at"
    );
    Ok(())
}

/// `Expiry::Never` entries outlive any clock jump; `Expiry::Default` with no default
/// time to live never expires either.
pub fn no_expiry<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let never = key("never");
    let default = key("default");
    put(&store, &never, b"v");
    put_with(&store, &default, b"v", Expiry::Default, WriteMode::Upsert);
    clock.advance(Duration::from_secs(100 * 365 * 86_400));
    assert_eq!(
        get(&store, &never).map(|e| e.expires_at),
        Some(None),
        "Never must not expire"
    );
    assert_eq!(
        get(&store, &default).map(|e| e.expires_at),
        Some(None),
        "Default without a default TTL must not expire"
    );
    Ok(())
}

/// `Expiry::Default` uses the store's default time to live.
pub fn default_ttl_applies<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new()
        .default_ttl(Duration::from_secs(60))
        .with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("ttl");
    put_with(&store, &k, b"v", Expiry::Default, WriteMode::Upsert);
    let e = get(&store, &k).expect("live");
    assert_eq!(
        e.expires_at,
        Some(Timestamp::from_millis(clock.now_ms() + 60_000)),
        "a write with Expiry::Default must expire after the store's default TTL (60 s here)"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(get(&store, &k), None, "expired after the default TTL");
    Ok(())
}

/// A write with an expiry already past (or `After(0)`) succeeds and stores an entry that
/// is expired at once.
pub fn past_expiry<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let cases = [
        (
            "At(now - 1s)",
            Expiry::At(Timestamp::from_millis(clock.now_ms() - 1_000)),
        ),
        (
            "At(now)",
            Expiry::At(Timestamp::from_millis(clock.now_ms())),
        ),
        ("At(epoch)", Expiry::At(Timestamp::ZERO)),
        ("After(0)", Expiry::After(Duration::ZERO)),
    ];
    for (i, (what, expiry)) in cases.into_iter().enumerate() {
        let k = key(format!("past:{i}"));
        store
            .put(&k, b"v", expiry, WriteMode::Upsert)
            .unwrap_or_else(|e| {
                panic!(
                    "writing with {what} must succeed: {}",
                    crate::check::chain(&e)
                )
            });
        assert_eq!(
            get(&store, &k),
            None,
            "{what}: the entry must be expired at once"
        );
        // And over a live entry.
        put(&store, &k, b"live");
        store
            .put(&k, b"v", expiry, WriteMode::ReplaceOnly)
            .expect("replace");
        assert_eq!(
            get(&store, &k),
            None,
            "{what}: overwriting with a past expiry must expire the entry"
        );
    }
    Ok(())
}

/// An expired entry is absent for every operation: get, get_into, create-only,
/// replace-only, compare-and-set, touch, delete, update, rotate.
pub fn expired_is_absent_everywhere<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("expired");
    let ttl = Expiry::After(Duration::from_secs(1));
    let setup = |store: &H::Store| put_with(store, &k, b"old", ttl, WriteMode::Upsert).version;
    let expire = || clock.advance(Duration::from_secs(1));

    let v = setup(&store);
    expire();
    assert_eq!(get(&store, &k), None, "get");
    let mut buf = Vec::new();
    assert_eq!(
        store.get_into(&k, &mut buf).expect("get_into"),
        None,
        "get_into"
    );
    let err = store
        .put(&k, b"x", Expiry::Never, WriteMode::ReplaceOnly)
        .expect_err("replace-only over expired");
    assert!(matches!(err, Error::NotFound { .. }), "replace-only: {err}");
    let err = store
        .put(&k, b"x", Expiry::Never, WriteMode::IfVersion(v))
        .expect_err("CAS over expired");
    assert!(
        matches!(err, Error::VersionMismatch { actual: None, .. }),
        "compare-and-set: {err}"
    );
    assert!(
        !store.touch(&k, Expiry::Never).expect("touch"),
        "touch of an expired key reports false"
    );
    assert_eq!(
        get(&store, &k),
        None,
        "touch must not revive an expired key"
    );
    assert!(
        !delete(&store, &k),
        "delete of an expired key reports false"
    );

    setup(&store);
    expire();
    let mut saw = None;
    let out = store
        .update(&k, &mut |e| {
            saw = Some(e.map(|e| e.value.clone()));
            UpdateAction::Keep
        })
        .expect("update");
    assert_eq!(saw, Some(None), "update must see None for an expired key");
    assert_eq!(out, UpdateOutcome::Kept);
    let out = store
        .update(&k, &mut |_| UpdateAction::Delete)
        .expect("update delete");
    assert_eq!(
        out,
        UpdateOutcome::Deleted { existed: false },
        "deleting an expired key through update"
    );

    setup(&store);
    expire();
    let to = key("expired:rotated");
    assert!(
        !store.rotate(&k, &to).expect("rotate"),
        "rotate of an expired key reports false"
    );
    assert_eq!(get(&store, &to), None);

    setup(&store);
    expire();
    put_with(&store, &k, b"new", Expiry::Never, WriteMode::CreateOnly);
    assert_eq!(value(&store, &k), Some(b"new".to_vec()));
    Ok(())
}

/// Touch extends and shortens a live entry's expiry, never changes its value or version,
/// never creates, and cannot revive an expired entry.
pub fn touch_extends_and_shortens<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("touch");
    let v = put_with(
        &store,
        &k,
        b"v",
        Expiry::After(Duration::from_secs(10)),
        WriteMode::Upsert,
    )
    .version;
    clock.advance(Duration::from_secs(9));
    assert!(
        store
            .touch(&k, Expiry::After(Duration::from_secs(10)))
            .expect("touch")
    );
    clock.advance(Duration::from_secs(5));
    let e = get(&store, &k).expect("touch must extend the expiry");
    assert_eq!(
        (e.value.as_slice(), e.version),
        (&b"v"[..], v),
        "touch changed value or version"
    );
    assert_eq!(
        e.expires_at,
        Some(Timestamp::from_millis(clock.now_ms() + 5_000))
    );
    assert!(
        store
            .touch(&k, Expiry::After(Duration::from_secs(1)))
            .expect("touch")
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(get(&store, &k), None, "touch must shorten the expiry");
    assert!(
        !store.touch(&k, Expiry::Never).expect("touch"),
        "touch of an expired key"
    );
    assert_eq!(get(&store, &k), None, "touch revived an expired key");
    let absent = key("touch:absent");
    assert!(
        !store.touch(&absent, Expiry::Never).expect("touch"),
        "touch of an absent key"
    );
    assert_eq!(get(&store, &absent), None, "touch created a key");
    let n = key("touch:never");
    put_with(
        &store,
        &n,
        b"v",
        Expiry::After(Duration::from_secs(1)),
        WriteMode::Upsert,
    );
    assert!(store.touch(&n, Expiry::Never).expect("touch"));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        get(&store, &n).map(|e| e.expires_at),
        Some(None),
        "touch to Never"
    );
    Ok(())
}

/// `purge_expired` removes exactly the expired entries and returns how many; live ones
/// stay; a second purge finds nothing; the purge counter follows.
pub fn purge_counts<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    for i in 0..3 {
        put_with(
            &store,
            &key(format!("purge:exp:{i}")),
            b"v",
            Expiry::After(Duration::from_secs(1)),
            WriteMode::Upsert,
        );
    }
    for i in 0..2 {
        put_with(
            &store,
            &key(format!("purge:live:{i}")),
            b"v",
            Expiry::After(Duration::from_secs(100)),
            WriteMode::Upsert,
        );
    }
    put(&store, &key("purge:never"), b"v");
    let before = store.stats().expect("stats").purged;
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.purge_expired().expect("purge"),
        3,
        "three entries had expired"
    );
    assert_eq!(
        store.purge_expired().expect("purge"),
        0,
        "nothing left to purge"
    );
    assert_eq!(
        store.stats().expect("stats").purged - before,
        3,
        "Stats::purged"
    );
    for i in 0..2 {
        assert!(
            get(&store, &key(format!("purge:live:{i}"))).is_some(),
            "purge removed a live entry"
        );
    }
    assert!(
        get(&store, &key("purge:never")).is_some(),
        "purge removed a live entry"
    );
    Ok(())
}

/// `UpdateAction::Keep` leaves value, expiry and version exactly as they were.
pub fn keep_in_update_preserves_expiry<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("keep");
    put_with(
        &store,
        &k,
        b"v",
        Expiry::After(Duration::from_secs(10)),
        WriteMode::Upsert,
    );
    let before = get(&store, &k).expect("live");
    clock.advance(Duration::from_secs(5));
    let out = store
        .update(&k, &mut |_| UpdateAction::Keep)
        .expect("update");
    assert_eq!(out, UpdateOutcome::Kept);
    assert_eq!(get(&store, &k), Some(before), "Keep changed the entry");
    clock.advance(Duration::from_secs(5));
    assert_eq!(get(&store, &k), None, "Keep must not extend the expiry");
    Ok(())
}

trait NowMs {
    fn now_ms(&self) -> u64;
}

impl NowMs for store_api::ManualClock {
    fn now_ms(&self) -> u64 {
        store_api::Clock::now(self).as_millis()
    }
}

/// Expiries far in the future (`After(Duration::MAX)`, a thousand years, `At(2^53)`,
/// `At(2^63 - 1)`, `At(2^63)`, `At(u64::MAX)`) are live: an engine that casts timestamps to
/// a signed or narrower type must not take them for the past. Purge keeps them, and they
/// are still live, and still block a create-only write, a century later.
pub fn far_future_expiries_stay_live<H: Harness>(ctx: &Ctx) -> Outcome {
    use crate::model::{CENTURY, FAR_FUTURE};
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let keys: Vec<_> = (0..FAR_FUTURE.len())
        .map(|i| key(format!("far:{i}")))
        .collect();
    for (expiry, k) in FAR_FUTURE.iter().zip(&keys) {
        store
            .put(k, b"far", *expiry, WriteMode::Upsert)
            .unwrap_or_else(|e| {
                panic!(
                    "writing with {expiry:?} must succeed: {}",
                    crate::check::chain(&e)
                )
            });
        let e = get(&store, k)
            .unwrap_or_else(|| panic!("{expiry:?}: the entry must be live right after the write"));
        let horizon = Timestamp::from_millis(clock.now_ms()).saturating_add(CENTURY);
        assert!(
            e.expires_at.is_none_or(|t| t > horizon),
            "{expiry:?}: stored as expiring at {:?}, within a century",
            e.expires_at
        );
    }
    let purged = store.purge_expired().expect("purge_expired");
    assert_eq!(
        purged, 0,
        "purge_expired removed far-future entries: it took them for expired"
    );
    clock.advance(CENTURY);
    for (expiry, k) in FAR_FUTURE.iter().zip(&keys) {
        assert!(
            get(&store, k).is_some(),
            "{expiry:?}: expired within a century"
        );
        assert!(
            matches!(
                store.put(k, b"other", Expiry::Never, WriteMode::CreateOnly),
                Err(Error::AlreadyExists { .. })
            ),
            "{expiry:?}: a create-only write went through over the live entry"
        );
    }
    assert_eq!(
        store.purge_expired().expect("purge_expired"),
        0,
        "purge a century later"
    );
    Ok(())
}

/// `purge_expired` keeps an entry until its expiry: one millisecond before, it stays
/// (and stays readable); at the expiry, purge removes it and counts it.
pub fn purge_keeps_entries_until_their_expiry<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("purge:boundary");
    put_with(
        &store,
        &k,
        b"v",
        Expiry::After(Duration::from_millis(1_000)),
        WriteMode::Upsert,
    );
    clock.advance(Duration::from_millis(999));
    let purged = store.purge_expired().expect("purge_expired");
    assert_eq!(purged, 0, "purge at expires_at - 1 ms removed a live entry");
    assert!(
        get(&store, &k).is_some(),
        "the entry is live at expires_at - 1 ms"
    );
    clock.advance(Duration::from_millis(1));
    let purged = store.purge_expired().expect("purge_expired");
    if !store.capabilities().expires_itself {
        assert_eq!(
            purged, 1,
            "purge at expires_at must remove the expired entry"
        );
    }
    assert_eq!(get(&store, &k), None, "expired at expires_at");
    Ok(())
}
