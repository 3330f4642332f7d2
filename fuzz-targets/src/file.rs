//! Target `file`: arbitrary and mutated bytes as the cache file. Opening either fails
//! with one of the documented error categories and a message, or succeeds; then every
//! operation on every key returns (no panic, no hang, no access outside the mapping)
//! with a value or one of the errors the contract allows, a value just written reads
//! back, and the file opens again.
//!
//! The seed corpus holds real files written by the engine (`examples/write_seeds.rs`).
//! The header checksum stops most mutations of the header at open; when the reserved
//! header byte 60 has its low bit set the target recomputes the checksum, so the
//! fuzzer also reaches the validation of every header field (the lock kind at 48
//! among them). Files of both lock kinds are among the seeds.

use store_api::{
    Error, Expiry, Key, ManualClock, SessionStore, UpdateAction, UpdateOutcome, WriteMode,
};

use crate::scratch::{self, FLAG_OFFSET, STATIC_END, Scratch};

/// The keys the seeds were written with, and one that is in none of them.
fn keys() -> Vec<Key> {
    let mut v: Vec<Key> = (0..conformance::model::KEYS)
        .map(conformance::model::model_key)
        .collect();
    v.push(Key::new("file:absent").expect("valid key"));
    v
}

/// Whether an error is one a damaged file may legitimately cause at open; its message
/// must say something.
fn check_open_error(e: &Error) {
    assert!(!e.to_string().is_empty(), "an empty error message: {e:?}");
    assert!(
        matches!(
            e,
            Error::Incompatible { .. } | Error::Corrupted { .. } | Error::InvalidConfig { .. }
        ),
        "open failed with an unexpected category: {e:?}"
    );
}

/// Whether an error is one an operation on a damaged file may return.
fn check_op_error(what: &str, e: &Error) {
    assert!(
        matches!(
            e,
            Error::Corrupted { .. }
                | Error::NoSpace { .. }
                | Error::TooLarge { .. }
                | Error::AlreadyExists { .. }
                | Error::NotFound { .. }
                | Error::VersionMismatch { .. }
        ),
        "{what} failed with an unexpected error: {e:?}"
    );
}

fn ok_or_allowed<T>(what: &str, r: store_api::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_op_error(what, &e);
            None
        }
    }
}

/// Runs every operation on every key.
fn exercise(s: &dyn SessionStore, keys: &[Key]) {
    for k in keys {
        let got = ok_or_allowed("get", s.get(k));
        let mut buf = vec![1, 2, 3];
        let meta = ok_or_allowed("get_into", s.get_into(k, &mut buf));
        if let (Some(Some(e)), Some(Some(m))) = (&got, meta) {
            assert_eq!(
                (&e.value, e.version),
                (&buf, m.version),
                "get and get_into disagree on {k}"
            );
        }
    }
    s.stats().expect("stats reads counters only");
    ok_or_allowed("purge_expired", s.purge_expired());
    for (i, k) in keys.iter().enumerate() {
        let value = format!("fuzz value {i}").into_bytes();
        let mode = [
            WriteMode::Upsert,
            WriteMode::CreateOnly,
            WriteMode::ReplaceOnly,
        ][i % 3];
        if let Some(w) = ok_or_allowed("put", s.put(k, &value, Expiry::Never, mode)) {
            match s.get(k) {
                Ok(Some(e)) => assert!(
                    e.value == value && e.version == w.version,
                    "{k}: wrote {value:?} as {}, read back {:?} as {}",
                    w.version,
                    e.value,
                    e.version
                ),
                other => panic!("{k}: wrote {value:?}, read back {other:?}"),
            }
        }
        ok_or_allowed(
            "touch",
            s.touch(k, Expiry::After(std::time::Duration::ZERO)),
        );
        let r = s.update(k, &mut |e| match e {
            Some(e) => {
                let mut v = e.value.clone();
                v.push(b'!');
                UpdateAction::set(v, Expiry::Never)
            }
            None => UpdateAction::set(b"created".to_vec(), Expiry::Never),
        });
        if let Some(UpdateOutcome::Written(w)) = ok_or_allowed("update", r) {
            let back = s.get(k);
            assert!(
                matches!(&back, Ok(Some(e)) if e.version == w.version),
                "{k}: update wrote {}, read back {back:?}",
                w.version
            );
        }
        let next = &keys[(i + 1) % keys.len()];
        ok_or_allowed("rotate", s.rotate(k, next));
        if i % 2 == 0 {
            ok_or_allowed("delete", s.delete(k));
        }
    }
    ok_or_allowed("purge_expired", s.purge_expired());
}

/// The target body.
pub fn file(data: &[u8]) {
    let mut bytes = data.to_vec();
    if bytes.len() >= STATIC_END && bytes[FLAG_OFFSET] & 1 == 1 {
        scratch::fix_checksum(&mut bytes);
    }
    let dir = Scratch::new();
    let path = dir.path();
    std::fs::write(&path, &bytes).expect("writing the input file");
    let clock = ManualClock::default();
    let mut b = scratch::builder(&path, &clock);
    if bytes.len() < 8 || bytes[..8] == [0; 8] {
        // A file with no magic is (re)initialised with the options' geometry, not the
        // default 5 MiB one: keep it small and fast.
        b = b.page_size(4096).num_pages(1);
    }
    let store = match b.open() {
        Ok(s) => s,
        Err(e) => return check_open_error(&e),
    };
    let keys = keys();
    exercise(&store, &keys);
    drop(store);
    let again = scratch::builder(&path, &clock)
        .open()
        .unwrap_or_else(|e| panic!("a file the engine opened and wrote does not open again: {e}"));
    for k in &keys {
        ok_or_allowed("get after reopen", again.get(k));
    }
}
