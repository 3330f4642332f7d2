//! Concurrency: keys do not interfere, reads are never torn, a delete racing an update
//! never ends resurrected.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};

use store_api::{Error, Expiry, Key, SessionStore, UpdateAction, WriteMode};

use crate::check::{
    delete, get, join_writers_then_readers, key, put, self_checking, torn_value_readers, value,
};
use crate::{Ctx, Harness, Outcome, Spec};

/// Threads working on their own keys (put, update, read, delete) always see exactly
/// their own writes.
pub fn no_interference_between_keys<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let rounds = 300 * ctx.scale() as usize;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let keys: Vec<Key> = (0..8).map(|i| key(format!("own:{t}:{i}"))).collect();
                for round in 0..rounds {
                    let k = &keys[round % keys.len()];
                    let v = format!("{t}/{round}");
                    put(&*store, k, v.as_bytes());
                    assert_eq!(
                        value(&*store, k),
                        Some(v.clone().into_bytes()),
                        "thread {t}, key {k}: read another thread's write, or the key vanished"
                    );
                    store
                        .update(k, &mut |e| {
                            let mut v = e
                                .unwrap_or_else(|| {
                                    panic!("thread {t}: own key {k} vanished before its update")
                                })
                                .value
                                .clone();
                            v.push(b'+');
                            UpdateAction::set(v, Expiry::Never)
                        })
                        .expect("update");
                    assert_eq!(
                        value(&*store, k),
                        Some(format!("{v}+").into_bytes()),
                        "thread {t}, key {k}: the update's result is not what was read back"
                    );
                    if round % 3 == 0 {
                        assert!(
                            delete(&*store, k),
                            "thread {t}: own key {k} vanished before its delete"
                        );
                        assert_eq!(
                            value(&*store, k),
                            None,
                            "thread {t}: key {k} outlived its delete"
                        );
                    }
                }
            })
        })
        .collect();
    for h in handles {
        crate::check::join(h, "worker thread panicked");
    }
    Ok(())
}

fn torn_reads(store: Arc<impl SessionStore + 'static>, same_length: bool, writes: u64) {
    let keys: Vec<Key> = (0..4)
        .map(|i| key(format!("torn:{same_length}:{i}")))
        .collect();
    let caps = store.capabilities();
    let bounded = caps.bounded;
    // A quarter of the maximum, so that a bounded store rarely needs to evict.
    let max = (caps.max_value_len / 4).clamp(64, 16 << 10);
    for k in &keys {
        put(&*store, k, &self_checking(0, 64));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (store, keys) = (store.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut state = t + 1;
                for i in 0..writes {
                    let seed = (t << 40) | (i + 1);
                    let len = if same_length {
                        max
                    } else {
                        crate::check::self_checking_len(&mut state, max)
                    };
                    let k = &keys[(i as usize) % keys.len()];
                    store
                        .put(
                            k,
                            &self_checking(seed, len),
                            Expiry::Never,
                            WriteMode::Upsert,
                        )
                        .unwrap_or_else(|e| panic!("write failed: {}", crate::check::chain(&e)));
                }
            })
        })
        .collect();
    // Never deleted; a bounded engine may still evict (reported).
    let readers = torn_value_readers(&store, &keys, &stop, bounded);
    join_writers_then_readers(writers, &stop, readers);
}

/// Two writers overwrite keys with self-checking values (equal and varying lengths)
/// while two readers check every value they read is whole.
pub fn no_torn_reads<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let writes = 2_000 * u64::from(ctx.scale());
    torn_reads(store.clone(), true, writes);
    torn_reads(store, false, writes);
    Ok(())
}

/// Busy-waits a little, so that successive rounds of a race start the two sides at
/// different offsets and sweep across the window of a non-atomic engine.
fn spin(steps: u32) {
    for _ in 0..steps * 64 {
        std::hint::spin_loop();
    }
}

/// A delete racing an update (that sets only what it saw live) or a replace-only write
/// never ends with the key resurrected. Two long-lived threads meet at a barrier each
/// round and start at offsets that sweep across a few microseconds.
pub fn delete_racing_update_never_resurrects<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let store = Arc::new(store);
    let rounds = 1_000 * ctx.scale();
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let updater = {
        let (store, start, done) = (store.clone(), start.clone(), done.clone());
        std::thread::spawn(move || -> Result<(), Error> {
            for round in 0..rounds {
                let k = key(format!("race:{round}"));
                start.wait();
                spin(if (round / 2) % 2 == 0 {
                    round / 4 % 32
                } else {
                    0
                });
                let result = if round % 2 == 0 {
                    match store.update(&k, &mut |e| match e {
                        Some(e) => {
                            let mut v = e.value.clone();
                            v.push(b'1');
                            UpdateAction::set(v, Expiry::Never)
                        }
                        None => UpdateAction::Keep,
                    }) {
                        Ok(_) | Err(Error::Contention { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                } else {
                    match store.put(&k, b"replaced", Expiry::Never, WriteMode::ReplaceOnly) {
                        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                };
                done.wait();
                result?;
            }
            Ok(())
        })
    };
    let mut failure = None;
    for round in 0..rounds {
        let k = key(format!("race:{round}"));
        put(&*store, &k, b"0");
        start.wait();
        spin(if (round / 2) % 2 == 1 {
            round / 4 % 32
        } else {
            0
        });
        let deleted = store.delete(&k);
        done.wait();
        let outcome = match deleted {
            Err(e) => Some(format!(
                "round {round}: delete failed: {}",
                crate::check::chain(&e)
            )),
            Ok(false) => Some(format!(
                "round {round}: delete must find the key live (updates only set what they saw)"
            )),
            Ok(true) => get(&*store, &k).map(|e| {
                format!(
                    "round {round}: an update racing a delete resurrected the key as {:?}",
                    String::from_utf8_lossy(&e.value)
                )
            }),
        };
        if outcome.is_some() && failure.is_none() {
            failure = outcome;
        }
    }
    updater
        .join()
        .expect("updater panicked")
        .unwrap_or_else(|e| panic!("update or replace failed: {}", crate::check::chain(&e)));
    if let Some(f) = failure {
        panic!("{f}");
    }
    Ok(())
}

/// The in-process counterpart of `processes::processes_increment_exactly`, for engines
/// whose handles are separate connections to one backend: threads incrementing one
/// counter through `update` on **two handles** end at exactly their total. It catches
/// an update that reads outside the backend's transaction or lock, a transaction that
/// fails when it upgrades from read to write, and a backend without a busy timeout,
/// without a worker binary. (A shared engine must still wire its worker: other
/// processes are another matter.)
pub fn two_handles_increment_exactly<H: Harness>(ctx: &Ctx) -> Outcome {
    const THREADS_PER_HANDLE: u64 = 2;
    let (h, a) = ctx.store::<H>(&Spec::new())?;
    let b = h
        .open()
        .unwrap_or_else(|e| panic!("second open failed: {}", crate::check::chain(&e)));
    let k = key("counter:two-handles");
    let m = 100 * u64::from(ctx.scale());
    let handles: Vec<_> = [Arc::new(a), Arc::new(b)]
        .into_iter()
        .flat_map(|store| (0..THREADS_PER_HANDLE).map(move |_| store.clone()))
        .enumerate()
        .map(|(t, store)| {
            let k = k.clone();
            std::thread::spawn(move || {
                for i in 0..m {
                    let mut tries = 0;
                    loop {
                        let r = store.update(&k, &mut |e| {
                            let n = e.map_or(0, |e| {
                                u64::from_le_bytes(e.value.as_slice().try_into().unwrap_or([0; 8]))
                            });
                            UpdateAction::set((n + 1).to_le_bytes().to_vec(), Expiry::Never)
                        });
                        match r {
                            Ok(_) => break,
                            Err(Error::Contention { .. }) if tries < 100 => {
                                tries += 1;
                                std::thread::yield_now();
                            }
                            Err(e) => panic!(
                                "thread {t}, increment {i}: update through two handles failed: {}",
                                crate::check::chain(&e)
                            ),
                        }
                    }
                }
                store
            })
        })
        .collect();
    let stores: Vec<_> = handles
        .into_iter()
        .map(|h| crate::check::join(h, "incrementing thread"))
        .collect();
    let total = 2 * THREADS_PER_HANDLE * m;
    for (i, s) in stores
        .iter()
        .enumerate()
        .step_by(THREADS_PER_HANDLE as usize)
    {
        let got = get(&**s, &k)
            .map(|e| u64::from_le_bytes(e.value.as_slice().try_into().unwrap_or([0; 8])));
        assert_eq!(
            got,
            Some(total),
            "{total} increments through two handles (read back through handle {}): increments were lost",
            i / THREADS_PER_HANDLE as usize
        );
    }
    Ok(())
}
