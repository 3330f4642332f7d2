//! The operator's calls: `take` (atomic get-and-delete), `scan` (the live entries) and
//! `clear` (remove everything). An engine that does not scan or clear must say so in its
//! capabilities and fail those calls with `Error::Unsupported`, never answer `Ok` with
//! nothing done.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use store_api::{Error, Expiry, Key, ScanEntry, ScanOptions, SessionStore, Support, WriteMode};

use crate::check::{chain, get, key, put, put_with};
use crate::{Ctx, Harness, Outcome, Spec, Unsupported};

/// Every entry a scan with `opts` visits, by key; panics on a key visited twice.
fn scan_all(store: &dyn SessionStore, opts: &ScanOptions) -> BTreeMap<String, ScanEntry> {
    let mut seen = BTreeMap::new();
    let n = store
        .scan(opts, &mut |e| {
            let k = e.key.as_str().to_owned();
            if let Some(first) = seen.insert(k.clone(), e) {
                panic!("scan visited {k:?} twice (first as {first:?})");
            }
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("scan failed: {}", chain(&e)));
    assert_eq!(
        n,
        seen.len() as u64,
        "scan's count is not the number of entries it visited"
    );
    seen
}

/// Skips unless the engine scans; checks that one that does not says so with
/// `Unsupported` rather than an empty answer.
fn scanning(store: &dyn SessionStore) -> Result<(), Unsupported> {
    if store.capabilities().scan != Support::No {
        return Ok(());
    }
    match store.scan(&ScanOptions::new(), &mut |_| ControlFlow::Continue(())) {
        Err(Error::Unsupported { .. }) => Err(Unsupported::new(
            "the engine does not scan (capabilities().scan is No, and scan says Unsupported)",
        )),
        other => panic!(
            "capabilities().scan is No, so scan must fail with Error::Unsupported, got {other:?}"
        ),
    }
}

/// `take` hands out the live entry once: the value, expiry and version `get` saw, then
/// `None`; the key is gone for every read; an absent or expired key is `None` and
/// changes nothing.
pub fn take_returns_the_entry_once<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let k = key("take:once");
    put_with(
        &store,
        &k,
        b"flash message",
        Expiry::After(Duration::from_secs(60)),
        WriteMode::Upsert,
    );
    let before = get(&store, &k).expect("written");
    let taken = store
        .take(&k)
        .unwrap_or_else(|e| panic!("take failed: {}", chain(&e)));
    assert_eq!(taken.as_ref(), Some(&before), "take returns the live entry");
    assert_eq!(get(&store, &k), None, "a taken key is gone");
    assert_eq!(store.take(&k).ok().flatten(), None, "taken twice");
    assert_eq!(store.take(&key("take:absent")).ok().flatten(), None);
    let e = key("take:expired");
    put_with(
        &store,
        &e,
        b"old",
        Expiry::After(Duration::from_secs(1)),
        WriteMode::Upsert,
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.take(&e).ok().flatten(), None, "an expired key");
    // The key can be written again, with a new version.
    let again = put(&store, &k, b"next");
    assert_ne!(again.version, before.version, "versions are never reused");
    Ok(())
}

/// Of several threads taking one key at once, exactly one gets the entry (one-time
/// tokens must not be redeemed twice).
pub fn concurrent_takes_one_wins<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let threads = 4;
    for round in 0..(30 * ctx.scale()) {
        let k = key(format!("take:race:{round}"));
        put(&*store, &k, format!("token {round}").as_bytes());
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, barrier, k) = (store.clone(), barrier.clone(), k.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.take(&k)
                })
            })
            .collect();
        let mut winners = 0;
        for h in handles {
            match crate::check::join(h, "taking thread panicked") {
                Ok(Some(e)) => {
                    assert_eq!(e.value, format!("token {round}").as_bytes());
                    winners += 1;
                }
                Ok(None) => {}
                // An optimistic engine may give up under contention; that is no winner.
                Err(Error::Contention { .. }) => {}
                Err(e) => panic!("take failed: {}", chain(&e)),
            }
        }
        assert_eq!(winners, 1, "round {round}: {winners} takers got the entry");
    }
    Ok(())
}

/// A scan visits every live entry once, with the expiry, version and value length `get`
/// reports (and the value when asked), and nothing expired or deleted; a prefix selects
/// exactly the keys that start with it; a break stops the scan.
pub fn scan_visits_exactly_the_live_entries<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    scanning(&store)?;
    let mut want: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..40 {
        let (k, v) = (format!("scan:a:{i}"), format!("value {i}").into_bytes());
        put(&store, &key(k.clone()), &v);
        want.insert(k, v);
    }
    for i in 0..15 {
        let (k, v) = (format!("scan:b:{i}"), vec![i as u8; i * 10]);
        put_with(
            &store,
            &key(k.clone()),
            &v,
            Expiry::After(Duration::from_secs(3600)),
            WriteMode::Upsert,
        );
        want.insert(k, v);
    }
    put_with(
        &store,
        &key("scan:a:expired"),
        b"gone",
        Expiry::After(Duration::from_secs(1)),
        WriteMode::Upsert,
    );
    put(&store, &key("scan:a:deleted"), b"gone");
    assert!(crate::check::delete(&store, &key("scan:a:deleted")));
    clock.advance(Duration::from_secs(1));

    let all = scan_all(&store, &ScanOptions::new());
    let mut keys: Vec<&String> = all.keys().collect();
    keys.sort();
    let mut expected: Vec<&String> = want.keys().collect();
    expected.sort();
    assert_eq!(keys, expected, "the scan's keys are not the live ones");
    for (k, e) in &all {
        let g = get(&store, &key(k.clone())).expect("live");
        assert_eq!(
            (e.expires_at, e.version, e.value_len),
            (g.expires_at, g.version, g.value.len()),
            "{k}: the scan's metadata is not get's"
        );
        assert_eq!(e.value, None, "{k}: a value without asking for values");
    }
    let with = scan_all(&store, &ScanOptions::new().prefix("scan:b:").with_values());
    assert_eq!(with.len(), 15, "the prefix scan:b: selects 15 keys");
    for (k, e) in &with {
        assert_eq!(e.value.as_ref(), Some(&want[k]), "{k}: the scanned value");
    }
    assert!(scan_all(&store, &ScanOptions::new().prefix("scan:c")).is_empty());
    let mut visits = 0;
    let n = store
        .scan(&ScanOptions::new(), &mut |_| {
            visits += 1;
            ControlFlow::Break(())
        })
        .unwrap_or_else(|e| panic!("scan failed: {}", chain(&e)));
    assert_eq!(
        (n, visits),
        (1, 1),
        "a break stops the scan after one entry"
    );
    Ok(())
}

/// Entries that are live for the whole scan are each visited exactly once while other
/// threads write, rewrite and delete other keys (writers are not held off for the whole
/// scan, and the scan is not thrown off by them); the visit may call the store.
pub fn scan_under_writes_sees_every_stable_entry_once<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    scanning(&store)?;
    let store = Arc::new(store);
    let stable: Vec<Key> = (0..200).map(|i| key(format!("stable:{i}"))).collect();
    for k in &stable {
        put(&*store, k, b"stable value");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = key(format!("churn:{}", i % 300));
                if i.is_multiple_of(3) {
                    let _ = store.delete(&k);
                } else {
                    let _ = store.put(&k, &i.to_le_bytes(), Expiry::Never, WriteMode::Upsert);
                }
                i += 1;
            }
        })
    };
    for round in 0..(5 * ctx.scale()) {
        let mut seen: HashMap<String, u32> = HashMap::new();
        store
            .scan(&ScanOptions::new(), &mut |e| {
                // The visit may use the store.
                let _ = store.get(&e.key);
                *seen.entry(e.key.as_str().to_owned()).or_default() += 1;
                ControlFlow::Continue(())
            })
            .unwrap_or_else(|e| panic!("scan failed: {}", chain(&e)));
        for k in &stable {
            assert_eq!(
                seen.get(k.as_str()).copied(),
                Some(1),
                "round {round}: {k} was live for the whole scan"
            );
        }
        if let Some((k, n)) = seen.iter().find(|(_, n)| **n > 1) {
            panic!("round {round}: {k} visited {n} times");
        }
    }
    stop.store(true, Ordering::Relaxed);
    crate::check::join(writer, "writer thread panicked");
    Ok(())
}

/// `clear` removes every entry, live and expired, returns how many live ones it removed,
/// and leaves a store that works (new writes, never a reused version). An engine that
/// cannot clear says so in its capabilities and fails with `Unsupported`.
pub fn clear_removes_every_entry<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    if store.capabilities().clear == Support::No {
        return match store.clear() {
            Err(Error::Unsupported { .. }) => Err(Unsupported::new(
                "the engine does not clear (capabilities().clear is No, and clear says \
                 Unsupported)",
            )),
            other => panic!(
                "capabilities().clear is No, so clear must fail with Error::Unsupported, got \
                 {other:?}"
            ),
        };
    }
    let keys: Vec<Key> = (0..30).map(|i| key(format!("clear:{i}"))).collect();
    let mut versions = Vec::new();
    for k in &keys {
        versions.push(put(&store, k, b"logged in").version);
    }
    for i in 0..5 {
        put_with(
            &store,
            &key(format!("clear:old:{i}")),
            b"expired",
            Expiry::After(Duration::from_secs(1)),
            WriteMode::Upsert,
        );
    }
    clock.advance(Duration::from_secs(1));
    let removed = store
        .clear()
        .unwrap_or_else(|e| panic!("clear failed: {}", chain(&e)));
    assert_eq!(removed, 30, "clear counts the live entries it removed");
    for k in &keys {
        assert_eq!(get(&store, k), None, "{k} survived clear");
    }
    if store.capabilities().scan != Support::No {
        assert!(
            scan_all(&store, &ScanOptions::new()).is_empty(),
            "a scan after clear finds entries"
        );
    }
    // Expired entries went too: nothing is left for a purge.
    assert_eq!(
        store.purge_expired().unwrap_or(0),
        0,
        "clear left expired entries behind"
    );
    for (k, old) in keys.iter().zip(&versions) {
        let new = put(&store, k, b"again").version;
        assert_ne!(new, *old, "{k}: a version was reused after clear");
    }
    assert_eq!(store.clear().ok(), Some(30));
    assert_eq!(store.clear().ok(), Some(0), "clearing an empty store");
    Ok(())
}
