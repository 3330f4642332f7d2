//! Atomic update: no lost increments, invocation counts, panics, bounded retries.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use store_api::{
    Error, Expiry, SessionStore, UpdateAction, UpdateAtomicity, UpdateOutcome, WriteMode,
};

use crate::check::{counter, get, key, put, within};
use crate::{Ctx, Harness, Outcome, Spec};

const THREADS: u64 = 4;
const INCREMENTS: u64 = 250;

/// An update closure adding one to an 8-byte counter.
pub(crate) fn increment(e: Option<&store_api::Entry>) -> UpdateAction {
    let n = counter(e.map(|e| e.value.as_slice()));
    UpdateAction::set((n + 1).to_le_bytes().to_vec(), Expiry::Never)
}

/// Runs `update` until it is not a `Contention` error.
pub(crate) fn update_retrying(
    store: &dyn SessionStore,
    k: &store_api::Key,
    f: &mut dyn FnMut(Option<&store_api::Entry>) -> UpdateAction,
) -> UpdateOutcome {
    loop {
        match store.update(k, f) {
            Ok(out) => return out,
            Err(Error::Contention { .. }) => std::thread::yield_now(),
            Err(e) => panic!("update({k}) failed: {}", crate::check::chain(&e)),
        }
    }
}

/// T threads x M increments through `update` end at exactly T x M.
pub fn concurrent_increments_through_update<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let k = key("counter:update");
    let m = INCREMENTS * u64::from(ctx.scale());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, k) = (store.clone(), k.clone());
            std::thread::spawn(move || {
                for _ in 0..m {
                    update_retrying(&*store, &k, &mut increment);
                }
            })
        })
        .collect();
    for h in handles {
        crate::check::join(h, "incrementing thread panicked");
    }
    let total = counter(get(&*store, &k).map(|e| e.value).as_deref());
    assert_eq!(
        total,
        THREADS * m,
        "{THREADS} threads x {m} updates: increments were lost"
    );
    Ok(())
}

/// T threads x M increments through a get + compare-and-set retry loop end at exactly
/// T x M.
pub fn concurrent_increments_through_compare_and_set<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let k = key("counter:cas");
    put(&*store, &k, &0u64.to_le_bytes());
    let m = INCREMENTS * u64::from(ctx.scale());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, k) = (store.clone(), k.clone());
            std::thread::spawn(move || {
                for _ in 0..m {
                    loop {
                        let e = get(&*store, &k).expect("the counter exists");
                        let next = (counter(Some(&e.value)) + 1).to_le_bytes();
                        match store.put(&k, &next, Expiry::Never, WriteMode::IfVersion(e.version)) {
                            Ok(_) => break,
                            Err(Error::VersionMismatch { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("compare-and-set failed: {}", crate::check::chain(&e)),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        crate::check::join(h, "incrementing thread panicked");
    }
    let total = counter(get(&*store, &k).map(|e| e.value).as_deref());
    assert_eq!(
        total,
        THREADS * m,
        "{THREADS} threads x {m} CAS increments: increments were lost"
    );
    Ok(())
}

/// A locked engine calls the closure exactly once per update, alone and under
/// contention; an optimistic one at most `max_attempts` times.
pub fn invocation_count_honours_capability<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let atomicity = store.capabilities().update;
    let max = match atomicity {
        UpdateAtomicity::Locked => 1,
        UpdateAtomicity::Optimistic { max_attempts } => max_attempts,
        _ => {
            return Err(crate::Unsupported::new(format!(
                "unknown update atomicity {atomicity:?}"
            )));
        }
    };
    let k = key("invocations");
    // Alone: once, for every kind of action, present or absent.
    for (what, action) in [
        (
            "Set on absent",
            UpdateAction::set(b"v".to_vec(), Expiry::Never),
        ),
        (
            "Set on present",
            UpdateAction::set(b"w".to_vec(), Expiry::Never),
        ),
        ("Keep", UpdateAction::Keep),
        ("Delete", UpdateAction::Delete),
    ] {
        let mut calls = 0;
        store
            .update(&k, &mut |_| {
                calls += 1;
                action.clone()
            })
            .unwrap_or_else(|e| panic!("{what}: {}", crate::check::chain(&e)));
        assert_eq!(
            calls, 1,
            "{what}: an uncontended update must call its closure exactly once ({atomicity:?})"
        );
    }
    // Under contention.
    let store = Arc::new(store);
    let worst = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, k, worst) = (store.clone(), k.clone(), worst.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let mut calls = 0;
                    let out = store.update(&k, &mut |e| {
                        calls += 1;
                        increment(e)
                    });
                    match out {
                        Ok(_) | Err(Error::Contention { .. }) => {}
                        Err(e) => panic!("update failed: {}", crate::check::chain(&e)),
                    }
                    worst.fetch_max(calls, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        crate::check::join(h, "updating thread panicked");
    }
    let worst = worst.load(Ordering::Relaxed);
    assert!(
        worst <= max,
        "a closure ran {worst} times in one update; {atomicity:?} allows {max}"
    );
    Ok(())
}

/// A panic in the closure propagates, leaves the key unchanged, and the store (that key
/// included) stays usable from every thread.
pub fn panic_in_closure_leaves_key_unchanged<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let k = key("panicky");
    put(&*store, &k, b"before");
    let before = get(&*store, &k).expect("live");
    let s = store.clone();
    let k2 = k.clone();
    eprintln!(
        "conformance: update::panic_in_closure_leaves_key_unchanged: the next panic printed \
         (\"closure panics on purpose\") is deliberate"
    );
    let caught = within(
        "an update whose closure panics",
        Duration::from_secs(10),
        move || {
            catch_unwind(AssertUnwindSafe(|| {
                let _ = s.update(&k2, &mut |_| panic!("closure panics on purpose"));
            }))
            .is_err()
        },
    );
    assert!(caught, "the closure's panic must propagate to the caller");
    assert_eq!(
        get(&*store, &k),
        Some(before),
        "the key changed although the closure panicked"
    );
    let s = store.clone();
    let k2 = k.clone();
    within(
        "using the store after a panicking update",
        Duration::from_secs(10),
        move || {
            let out = s
                .update(&k2, &mut |_| {
                    UpdateAction::set(b"after".to_vec(), Expiry::Never)
                })
                .expect("update after a panic");
            assert!(matches!(out, UpdateOutcome::Written(_)), "{out:?}");
            put(&*s, &key("panicky:other"), b"x");
            assert_eq!(get(&*s, &k2).map(|e| e.value), Some(b"after".to_vec()));
            let s2 = s.clone();
            std::thread::spawn(move || put(&*s2, &k2, b"from another thread"))
                .join()
                .expect("another thread can write the key");
        },
    );
    Ok(())
}

/// An optimistic engine gives up with `Contention` after at most `max_attempts` calls
/// when every attempt is interfered with, and leaves the interferer's write in place.
pub fn optimistic_retries_are_bounded<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let UpdateAtomicity::Optimistic { max_attempts } = store.capabilities().update else {
        return Err(crate::Unsupported::new(
            "the engine runs update closures under a lock",
        ));
    };
    let store = Arc::new(store);
    let k = key("optimistic");
    put(&*store, &k, b"0");
    // The closure asks another thread to write the key and waits for it, so that every
    // attempt is stale by the time it commits.
    let (ask, asked) = mpsc::channel::<()>();
    let (done, wait_done) = mpsc::channel::<()>();
    let interferer = {
        let (store, k) = (store.clone(), k.clone());
        std::thread::spawn(move || {
            let n = AtomicU64::new(0);
            while asked.recv().is_ok() {
                let i = n.fetch_add(1, Ordering::Relaxed);
                put(&*store, &k, format!("interfered {i}").as_bytes());
                let _ = done.send(());
            }
        })
    };
    let mut calls = 0u32;
    let s = store.clone();
    let result = s.update(&k, &mut |_| {
        calls += 1;
        ask.send(()).expect("interferer alive");
        wait_done
            .recv_timeout(Duration::from_secs(10))
            .expect("interferer wrote");
        UpdateAction::set(b"mine".to_vec(), Expiry::Never)
    });
    drop(ask);
    crate::check::join(interferer, "interferer panicked");
    match result {
        Err(Error::Contention { attempts, .. }) => {
            assert!(
                attempts <= max_attempts,
                "reported {attempts} attempts, more than {max_attempts}"
            );
        }
        other => panic!("every attempt was interfered with; expected Contention, got {other:?}"),
    }
    assert!(
        calls <= max_attempts,
        "closure ran {calls} times, more than max_attempts {max_attempts}"
    );
    let v = get(&*store, &k).expect("live").value;
    assert!(
        v.starts_with(b"interfered"),
        "the failed update wrote anyway: {v:?}"
    );
    Ok(())
}
