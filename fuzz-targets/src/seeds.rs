//! Seed files for the `file` target: real store files written by the engine, with the
//! fixed hash secret of [`crate::scratch::fresh_file`] so that they replay the same way.
//! `cargo run -p fuzz-targets --example write_seeds` writes them to `fuzz/corpus/file/`.

use std::time::Duration;

use conformance::model::{KEYS, model_key};
use store_api::{Expiry, ManualClock, SessionStore, SessionStoreExt};

use crate::scratch::{self, HEADER_LEN, Scratch};

/// Builds a file of `pages` 4 KiB pages, lets `fill` write to it, and returns its bytes.
fn file_with(pages: u32, fill: impl FnOnce(&dyn SessionStore, &ManualClock)) -> Vec<u8> {
    file_of(pages, store_fastmmap::LockKind::Fcntl, fill)
}

/// As [`file_with`], of lock kind `kind`.
fn file_of(
    pages: u32,
    kind: store_fastmmap::LockKind,
    fill: impl FnOnce(&dyn SessionStore, &ManualClock),
) -> Vec<u8> {
    let dir = Scratch::new();
    let path = dir.path();
    scratch::fresh_file(&path, 4096, pages, kind);
    let clock = ManualClock::default();
    let store = scratch::builder(&path, &clock)
        .open()
        .expect("a fresh file opens");
    fill(&store, &clock);
    drop(store);
    std::fs::read(&path).expect("the file reads")
}

/// The seed files, by name.
pub fn file_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = vec![
        ("empty_1page", file_with(1, |_, _| {})),
        (
            "all_keys_1page",
            file_with(1, |s, _| {
                for id in 0..KEYS {
                    let k = model_key(id);
                    s.set(&k, format!("value of {k}").as_bytes()).unwrap();
                }
            }),
        ),
        (
            "churn_2pages",
            file_with(2, |s, clock| {
                // Overwrites leave dead records, deletes empty slots, short expiries
                // expired ones; a large value forces compaction.
                for round in 0..3u8 {
                    for id in 0..KEYS {
                        let k = model_key(id);
                        let v =
                            vec![round.wrapping_mul(31).wrapping_add(id); 20 + 10 * id as usize];
                        let e = if id % 3 == 0 {
                            Expiry::After(Duration::from_millis(500))
                        } else {
                            Expiry::Never
                        };
                        s.put(&k, &v, e, store_api::WriteMode::Upsert).unwrap();
                    }
                    s.delete(&model_key(round)).unwrap();
                    clock.advance(Duration::from_millis(400));
                }
                s.set(&model_key(1), &[7; 1500]).unwrap();
            }),
        ),
    ];
    // A writer died inside its write section: the page counter is odd.
    let mut crashed = seeds[1].1.clone();
    crashed[HEADER_LEN as usize] |= 1;
    seeds.push(("crashed_writer_1page", crashed));
    // A file of the futex lock kind (its lock table after the pages).
    seeds.push((
        "futex_all_keys_2pages",
        file_of(2, store_fastmmap::LockKind::Futex, |s, _| {
            for id in 0..KEYS {
                let k = model_key(id);
                s.set(&k, format!("value of {k}").as_bytes()).unwrap();
            }
        }),
    ));
    seeds
}
