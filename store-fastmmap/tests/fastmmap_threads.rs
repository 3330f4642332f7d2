//! Many threads of one process on one store (the Perl original is not thread-safe).

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use store_api::{Expiry, Key, SessionStore, SessionStoreExt, UpdateAction, WriteMode};
use support::{Fixture, keys_on_page};

fn threads_updating_one_key_lose_nothing(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = Arc::new(fx.small(2));
    let k = Key::new("counter").unwrap();
    let ts: Vec<_> = (0..8)
        .map(|_| {
            let (s, k) = (s.clone(), k.clone());
            std::thread::spawn(move || {
                for _ in 0..400 {
                    s.update_with(&k, |e| {
                        let n: u64 =
                            e.map_or(0, |e| String::from_utf8_lossy(&e.value).parse().unwrap());
                        UpdateAction::set((n + 1).to_string().into_bytes(), Expiry::Never)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"3200");
}

/// A value whose every byte is derived from its first 8: a torn read shows.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut v = seed.to_le_bytes().to_vec();
    v.extend((0..len).map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i) as u8));
    v
}

fn check(v: &[u8]) {
    let seed = u64::from_le_bytes(v[..8].try_into().unwrap());
    assert_eq!(v, value(seed, v.len() - 8), "torn value");
}

fn writers_and_lock_free_readers_on_one_page(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = Arc::new(
        fx.builder()
            .page_size(16 << 10)
            .num_pages(2)
            .open()
            .unwrap(),
    );
    let keys = Arc::new(keys_on_page(&s, 0, 16));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (s, keys) = (s.clone(), keys.clone());
            std::thread::spawn(move || {
                for i in 0..3_000u64 {
                    let k = &keys[(i % 16) as usize];
                    let seed = (w << 32) | i;
                    let len = 50 + (i % 400) as usize;
                    s.put(k, &value(seed, len), Expiry::Never, WriteMode::Upsert)
                        .unwrap();
                    if i % 97 == 0 {
                        s.delete(&keys[((i + 5) % 16) as usize]).unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (s, keys, stop) = (s.clone(), keys.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut hits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for k in keys.iter() {
                        if s.get_into(k, &mut buf).unwrap().is_some() {
                            check(&buf);
                            hits += 1;
                        }
                    }
                }
                hits
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(s.stats().unwrap().recovered, 0);
}

fn rotations_across_pages_do_not_deadlock(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = Arc::new(fx.small(4));
    let ts: Vec<_> = (0..4u32)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut cur = Key::new(format!("rot:{t}:0")).unwrap();
                s.set(&cur, b"v").unwrap();
                for i in 1..300 {
                    let next = Key::new(format!("rot:{t}:{i}")).unwrap();
                    assert!(s.rotate(&cur, &next).unwrap());
                    cur = next;
                }
                cur
            })
        })
        .collect();
    for t in ts {
        let last = t.join().unwrap();
        assert_eq!(s.get_value(&last).unwrap().unwrap(), b"v");
    }
}

both_kinds!(
    threads_updating_one_key_lose_nothing,
    writers_and_lock_free_readers_on_one_page,
    rotations_across_pages_do_not_deadlock,
);
