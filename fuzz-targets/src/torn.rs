//! Target `torn`: between operations, bytes of a live page are overwritten as a writer
//! killed mid-write (the page's seqlock counter is left odd) or a stray or hostile
//! process (the counter is left alone) might, with `pwrite` on the file, which every
//! `MAP_SHARED` mapping sees at once. Reads must return the right value, no value or
//! an error; never a crash, a hang, or a value (with its version) that was never
//! written for that key. Until the first damage the target also checks every read
//! exactly, like a small model.
//!
//! What the target cannot check: an entry's expiry is outside the record checksum by
//! design (a `touch` is one atomic store), so damage to it goes unnoticed; and damage may
//! bring back a value written earlier for the same key (a slot pointed at a dead record).

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use conformance::model::{KEYS, model_key};
use store_api::{
    Entry, Error, EvictionPolicy, Expiry, Key, ManualClock, SessionStore, UpdateAction,
    UpdateOutcome, Version, WriteMode,
};
use store_fastmmap::FastMmapStore;

use crate::scratch::{self, HEADER_LEN, Scratch};

/// Most operations one input runs.
const MAX_OPS: usize = 64;
/// Page size of the store under test.
const PAGE: u32 = 4096;

#[derive(Debug)]
enum Step {
    Put(u8, Vec<u8>),
    Get(u8),
    Delete(u8),
    Append(u8, u8),
    Purge,
    Reopen,
    /// Overwrite `bytes` at `offset` of page `page`; `crash` leaves the page's counter
    /// odd, as a writer killed inside its write section does.
    Damage {
        page: u32,
        offset: u32,
        bytes: Vec<u8>,
        crash: bool,
    },
}

fn step(u: &mut Unstructured<'_>, pages: u32) -> Result<Step> {
    let key = |u: &mut Unstructured<'_>| u.int_in_range(0..=KEYS - 1);
    Ok(match u.int_in_range(0u8..=11)? {
        0..=2 => {
            let k = key(u)?;
            let n = u.int_in_range(0..=160)?;
            Step::Put(k, u.bytes(n)?.to_vec())
        }
        3..=5 => Step::Get(key(u)?),
        6 => Step::Delete(key(u)?),
        7 => Step::Append(key(u)?, u.arbitrary()?),
        8 => Step::Purge,
        9 => Step::Reopen,
        _ => {
            let page = u.int_in_range(0..=pages - 1)?;
            let offset = u.int_in_range(0..=PAGE - 1)?;
            let n = u.int_in_range(1..=16usize)?.min((PAGE - offset) as usize);
            Step::Damage {
                page,
                offset,
                bytes: u.bytes(n)?.to_vec(),
                crash: u.arbitrary()?,
            }
        }
    })
}

/// What the target knows about the keys.
#[derive(Default)]
struct Book {
    /// Every (value, version) ever written per key.
    written: BTreeMap<Key, Vec<(Vec<u8>, Version)>>,
    /// The exact state, while no damage happened and nothing was evicted.
    current: BTreeMap<Key, (Vec<u8>, Version)>,
    exact: bool,
}

impl Book {
    fn wrote(&mut self, k: &Key, value: Vec<u8>, v: Version) {
        self.written
            .entry(k.clone())
            .or_default()
            .push((value.clone(), v));
        self.current.insert(k.clone(), (value, v));
    }

    /// Checks an entry a read returned.
    fn check(&self, what: &str, k: &Key, got: Option<&Entry>) {
        if self.exact {
            let want = self.current.get(k);
            assert_eq!(
                got.map(|e| (&e.value, e.version)),
                want.map(|(v, ver)| (v, *ver)),
                "{what}({k}) before any damage"
            );
            return;
        }
        if let Some(e) = got {
            let known = self
                .written
                .get(k)
                .is_some_and(|w| w.iter().any(|(v, ver)| *v == e.value && *ver == e.version));
            assert!(
                known,
                "{what}({k}) returned {} bytes {:02x?} as {}, which was never written for this \
                 key (written: {:?})",
                e.value.len(),
                &e.value[..e.value.len().min(32)],
                e.version,
                self.written.get(k)
            );
        }
    }
}

/// An error a damaged page may cause.
fn allowed(what: &str, e: &Error) {
    assert!(
        matches!(e, Error::Corrupted { .. } | Error::NoSpace { .. }),
        "{what} failed with an unexpected error: {e:?}"
    );
}

fn open(path: &std::path::Path, clock: &ManualClock) -> FastMmapStore {
    scratch::open(path, clock, None, EvictionPolicy::Lru)
        .unwrap_or_else(|e| panic!("damage inside pages made open fail: {e}"))
}

/// The target body.
pub fn torn(data: &[u8]) {
    for &kind in scratch::kinds() {
        torn_with(data, kind);
    }
}

/// The target body for one lock kind.
fn torn_with(data: &[u8], kind: store_fastmmap::LockKind) {
    let mut u = Unstructured::new(data);
    let Ok(pages) = u.int_in_range(1u32..=2) else {
        return;
    };
    let dir = Scratch::new();
    let path = dir.path();
    scratch::fresh_file(&path, PAGE, pages, kind);
    let clock = ManualClock::default();
    let mut store = open(&path, &clock);
    let mut book = Book {
        exact: true,
        ..Book::default()
    };
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(s) = step(&mut u, pages) else { break };
        match s {
            Step::Put(k, value) => {
                let k = model_key(k);
                match store.put(&k, &value, Expiry::Never, WriteMode::Upsert) {
                    Ok(w) => {
                        if w.evicted.live() != Some(0) {
                            book.exact = false;
                        }
                        book.wrote(&k, value, w.version);
                    }
                    Err(e) => allowed("put", &e),
                }
            }
            Step::Get(k) => {
                let k = model_key(k);
                match store.get(&k) {
                    Ok(got) => book.check("get", &k, got.as_ref()),
                    Err(e) => allowed("get", &e),
                }
            }
            Step::Delete(k) => {
                let k = model_key(k);
                match store.delete(&k) {
                    Ok(_) => {
                        book.current.remove(&k);
                    }
                    Err(e) => allowed("delete", &e),
                }
            }
            Step::Append(k, b) => {
                let k = model_key(k);
                let mut new = None;
                let r = store.update(&k, &mut |e| {
                    book.check("update", &k, e);
                    let mut v = e.map(|e| e.value.clone()).unwrap_or_default();
                    v.push(b);
                    new = Some(v.clone());
                    UpdateAction::set(v, Expiry::Never)
                });
                match r {
                    Ok(UpdateOutcome::Written(w)) => {
                        if w.evicted.live() != Some(0) {
                            book.exact = false;
                        }
                        book.wrote(&k, new.expect("the closure ran"), w.version);
                    }
                    Ok(o) => panic!("update decided Set, engine answered {o:?}"),
                    Err(e) => allowed("update", &e),
                }
            }
            Step::Purge => {
                if let Err(e) = store.purge_expired() {
                    allowed("purge_expired", &e);
                }
            }
            Step::Reopen => {
                drop(store);
                store = open(&path, &clock);
            }
            Step::Damage {
                page,
                offset,
                bytes,
                crash,
            } => {
                let start = HEADER_LEN + u64::from(page) * u64::from(PAGE);
                scratch::poke(&path, start + u64::from(offset), &bytes);
                if crash {
                    let seq = scratch::peek_u64(&path, start);
                    scratch::poke(&path, start, &(seq | 1).to_le_bytes());
                }
                book.exact = false;
            }
        }
    }
    for id in 0..KEYS {
        let k = model_key(id);
        match store.get(&k) {
            Ok(got) => book.check("final get", &k, got.as_ref()),
            Err(e) => allowed("final get", &e),
        }
    }
}
