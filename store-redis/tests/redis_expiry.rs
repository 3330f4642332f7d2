//! Expiry in the server's clock, including the exact boundary `live while now < t`.
//!
//! Redis has no fake clock, so these tests run in real server time. Each observation is
//! bracketed by two readings of the server's `TIME` (`t0` before, `t1` after): a live
//! answer proves `t0 < t` and an absent one proves `t1 >= t`, whatever the scheduling.
//! The polling loops are tight (a few hundred microseconds per step), so observations
//! land on the boundary millisecond itself; Redis keeps a key until `now > t`, one
//! millisecond longer than the contract, and the store must hide it at `now == t`.

mod support;

use std::time::{Duration, Instant};

use store_api::{
    Error, Expiry, Key, SessionStore, SessionStoreExt, Timestamp, UpdateAction, WriteMode,
};
use store_redis::RedisStore;

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// Polls `probe` (true: the entry is live) until it reports expired, checking every
/// answer against the bracketing server times. Returns how many probes saw `t0 == t`.
fn watch_boundary(store: &RedisStore, t: Timestamp, mut probe: impl FnMut() -> bool) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut at_boundary = 0;
    loop {
        assert!(Instant::now() < deadline, "entry never expired");
        let t0 = store.server_time().unwrap();
        let live = probe();
        let t1 = store.server_time().unwrap();
        if live {
            assert!(t0 < t, "live at server time >= {t0}, expiry {t}");
        } else {
            assert!(t1 >= t, "expired at server time <= {t1}, expiry {t}");
            if t0 == t {
                at_boundary += 1;
            }
            return at_boundary;
        }
        if t0 == t {
            at_boundary += 1;
        }
    }
}

#[test]
fn get_hides_an_entry_from_its_expiry_millisecond_on() {
    let server = server_or_skip!();
    let store = server.store("exp:");
    let mut boundary_hits = 0;
    for round in 0..3 {
        let k = key(&format!("session:{round}"));
        let t = store
            .server_time()
            .unwrap()
            .saturating_add(Duration::from_millis(80));
        store
            .put(&k, b"x", Expiry::At(t), WriteMode::Upsert)
            .unwrap();
        if let Some(e) = store.get(&k).unwrap() {
            assert_eq!(e.expires_at, Some(t));
        }
        boundary_hits += watch_boundary(&store, t, || store.get(&k).unwrap().is_some());
    }
    eprintln!("probes on the boundary millisecond: {boundary_hits}");
}

#[test]
fn write_scripts_apply_the_same_boundary() {
    // touch with the entry's own expiry changes nothing but answers "live?" inside a
    // write script, which must agree with the rule too.
    let server = server_or_skip!();
    let store = server.store("expw:");
    let k = key("session:w");
    let mut v = None;
    // Several rounds, so that some probe lands on the boundary millisecond.
    for _ in 0..6 {
        let t = store
            .server_time()
            .unwrap()
            .saturating_add(Duration::from_millis(60));
        v = Some(
            store
                .put(&k, b"x", Expiry::At(t), WriteMode::Upsert)
                .unwrap()
                .version,
        );
        watch_boundary(&store, t, || store.touch(&k, Expiry::At(t)).unwrap());
    }
    let v = v.unwrap();
    // Expired: create-only succeeds over it, replace-only and CAS fail.
    let err = store
        .compare_and_set(&k, v, b"y", Expiry::Never)
        .unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { actual: None, .. }),
        "{err}"
    );
    let err = store
        .put(&k, b"y", Expiry::Never, WriteMode::ReplaceOnly)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    store
        .put(&k, b"z", Expiry::Never, WriteMode::CreateOnly)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"z");
}

#[test]
fn expired_entries_are_absent_for_every_operation() {
    let server = server_or_skip!();
    let store = server.store("expall:");
    for (name, expiry) in [
        ("after-zero", Expiry::After(Duration::ZERO)),
        ("at-epoch", Expiry::At(Timestamp::ZERO)),
        ("at-past", Expiry::At(Timestamp::from_millis(1_000_000))),
    ] {
        let k = key(name);
        // Writing an expiry already past succeeds and stores an entry expired at once.
        store.put(&k, b"x", expiry, WriteMode::Upsert).unwrap();
        assert_eq!(store.get(&k).unwrap(), None, "{name}");
        assert!(!store.touch(&k, Expiry::Never).unwrap(), "{name}");
        assert!(!store.delete(&k).unwrap(), "{name}");
        let mut saw_some = false;
        store
            .update(&k, &mut |e| {
                saw_some |= e.is_some();
                UpdateAction::Keep
            })
            .unwrap();
        assert!(!saw_some, "{name}: update saw an expired entry");
        store
            .put(&k, b"y", Expiry::Never, WriteMode::CreateOnly)
            .unwrap();
    }
}

#[test]
fn relative_expiry_is_resolved_in_server_time() {
    let server = server_or_skip!();
    let store = server.store("rel:");
    let k = key("session:r");
    let before = store.server_time().unwrap();
    store
        .put(
            &k,
            b"x",
            Expiry::After(Duration::from_millis(1500)),
            WriteMode::Upsert,
        )
        .unwrap();
    let after = store.server_time().unwrap();
    let at = store.get(&k).unwrap().unwrap().expires_at.unwrap();
    let d = Duration::from_millis(1500);
    assert!(before.saturating_add(d) <= at && at <= after.saturating_add(d));
}

#[test]
fn the_server_removes_expired_entries_itself() {
    let server = server_or_skip!();
    let store = server.store("srv:");
    let k = key("session:gone");
    store
        .put(
            &k,
            b"x",
            Expiry::After(Duration::from_millis(20)),
            WriteMode::Upsert,
        )
        .unwrap();
    let con = &mut redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // EXISTS does not run our scripts: only Redis's own expiry removes the key.
        let n: i64 = redis::cmd("EXISTS")
            .arg("srv:s:session:gone")
            .query(con)
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis kept the key past its PXAT"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(store.purge_expired().unwrap(), 0, "nothing left to purge");
}
