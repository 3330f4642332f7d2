//! Many threads and several store objects (standing in for hosts) on one server:
//! updates lose nothing, create-only has one winner, contention is bounded.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use store_api::{Error, Expiry, Key, SessionStore, UpdateAction, UpdateOutcome, WriteMode};

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn counter_value(e: Option<&store_api::Entry>) -> u64 {
    e.map_or(0, |e| {
        u64::from_le_bytes(e.value.as_slice().try_into().unwrap())
    })
}

#[test]
fn concurrent_updates_from_two_hosts_lose_no_increment() {
    let server = server_or_skip!();
    // Two store objects with their own pools: two hosts as far as the server can tell.
    let hosts = [
        server
            .builder("conc:")
            .max_update_attempts(1000)
            .build()
            .unwrap(),
        server
            .builder("conc:")
            .max_update_attempts(1000)
            .build()
            .unwrap(),
    ];
    let k = key("session:counter");
    const THREADS: usize = 4;
    const INCREMENTS: u64 = 100;
    let calls = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = &hosts[t % 2];
            let (k, calls) = (&k, &calls);
            s.spawn(move || {
                for _ in 0..INCREMENTS {
                    let out = store
                        .update(k, &mut |e| {
                            calls.fetch_add(1, Ordering::Relaxed);
                            UpdateAction::set(
                                (counter_value(e) + 1).to_le_bytes().to_vec(),
                                Expiry::Never,
                            )
                        })
                        .unwrap();
                    assert!(matches!(out, UpdateOutcome::Written(_)), "{out:?}");
                }
            });
        }
    });
    let total = THREADS as u64 * INCREMENTS;
    assert_eq!(counter_value(hosts[0].get(&k).unwrap().as_ref()), total);
    let calls = calls.load(Ordering::Relaxed);
    eprintln!("{total} increments took {calls} closure calls");
    assert!(u64::from(calls) >= total);
}

#[test]
fn update_gives_up_with_contention_after_max_attempts() {
    let server = server_or_skip!();
    let store = server
        .builder("cont:")
        .max_update_attempts(3)
        .build()
        .unwrap();
    let rival = server.store("cont:");
    let k = key("session:c");
    store
        .put(&k, b"0", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let mut calls = 0;
    let err = store
        .update(&k, &mut |_| {
            calls += 1;
            // Another writer gets in between every read and write.
            rival
                .put(&k, b"rival", Expiry::Never, WriteMode::Upsert)
                .unwrap();
            UpdateAction::set(b"mine".to_vec(), Expiry::Never)
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Contention { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(calls, 3, "the closure ran exactly max_attempts times");
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"rival");

    // The same interference on an absent key (create) and on a delete.
    let fresh = key("session:fresh");
    let err = store
        .update(&fresh, &mut |_| {
            let _ = rival.delete(&fresh).unwrap();
            rival
                .put(&fresh, b"r", Expiry::Never, WriteMode::Upsert)
                .unwrap();
            UpdateAction::set(b"mine".to_vec(), Expiry::Never)
        })
        .unwrap_err();
    assert!(matches!(err, Error::Contention { .. }), "{err}");
    let err = store
        .update(&k, &mut |_| {
            rival
                .put(&k, b"again", Expiry::Never, WriteMode::Upsert)
                .unwrap();
            UpdateAction::Delete
        })
        .unwrap_err();
    assert!(matches!(err, Error::Contention { .. }), "{err}");
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"again");
}

#[test]
fn update_retries_when_interfered_with_once() {
    let server = server_or_skip!();
    let store = server.store("retry:");
    let rival = server.store("retry:");
    let k = key("session:r");
    store
        .put(&k, b"a", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let mut seen = Vec::new();
    let out = store
        .update(&k, &mut |e| {
            seen.push(e.unwrap().value.clone());
            if seen.len() == 1 {
                rival
                    .put(&k, b"b", Expiry::Never, WriteMode::Upsert)
                    .unwrap();
            }
            let mut v = e.unwrap().value.clone();
            v.push(b'+');
            UpdateAction::set(v, Expiry::Never)
        })
        .unwrap();
    assert!(matches!(out, UpdateOutcome::Written(_)), "{out:?}");
    assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"b+");
}

#[test]
fn create_only_race_has_exactly_one_winner() {
    let server = server_or_skip!();
    let store = server.builder("race:").pool_size(2).build().unwrap();
    for round in 0..10 {
        let k = key(&format!("session:{round}"));
        let wins = AtomicU32::new(0);
        std::thread::scope(|s| {
            for t in 0..6u8 {
                let (store, k, wins) = (&store, &k, &wins);
                s.spawn(
                    move || match store.put(k, &[t], Expiry::Never, WriteMode::CreateOnly) {
                        Ok(_) => {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::AlreadyExists { .. }) => {}
                        Err(e) => panic!("unexpected error {e}"),
                    },
                );
            }
        });
        assert_eq!(wins.load(Ordering::Relaxed), 1, "round {round}");
    }
}
