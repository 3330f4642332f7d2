//! Helpers the behaviours share: keys, self-checking values, timeouts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use store_api::{Entry, Expiry, Key, SessionStore, WriteMode, WriteOutcome};

/// An error and its `source()` chain, one line: a backend's own message (SQLite's
/// "database is locked", an `io::Error`) is often only in the sources.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Joins a thread of a behaviour, re-raising its panic with its own message (a bare
/// `join().expect()` prints `Any { .. }` and hides what went wrong).
pub fn join<T>(h: std::thread::JoinHandle<T>, what: &str) -> T {
    match h.join() {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            panic!("{what}: {msg}")
        }
    }
}

/// A key from a string the suite knows is valid.
pub fn key(s: impl Into<String>) -> Key {
    let s = s.into();
    Key::new(s.clone()).unwrap_or_else(|e| panic!("suite bug: {s:?} is not a valid key: {e}"))
}

/// The longest valid key, distinguished by `tag`.
pub fn long_key(tag: &str) -> Key {
    let mut s = format!("long:{tag}:");
    while s.len() < store_api::MAX_KEY_LEN {
        s.push('x');
    }
    key(s)
}

/// SplitMix64: a tiny deterministic generator for test data.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Header of a self-checking value: seed (8 bytes) and length (4 bytes).
pub const SELF_CHECK_HEADER: usize = 12;

/// A length for a [`self_checking`] value drawn from `seed`: from [`SELF_CHECK_HEADER`]
/// to `max` (an engine's maximum value length) inclusive.
pub fn self_checking_len(seed: &mut u64, max: usize) -> usize {
    let span = max.saturating_sub(SELF_CHECK_HEADER) + 1;
    SELF_CHECK_HEADER + (splitmix(seed) as usize % span)
}

/// A value of `len` bytes (at least [`SELF_CHECK_HEADER`]) whose every byte follows
/// from its seed, so a reader can tell a torn or mixed value from a whole one.
pub fn self_checking(seed: u64, len: usize) -> Vec<u8> {
    let len = len.max(SELF_CHECK_HEADER);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&seed.to_le_bytes());
    v.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    let mut state = seed;
    while v.len() < len {
        let word = splitmix(&mut state).to_le_bytes();
        let take = (len - v.len()).min(8);
        v.extend_from_slice(&word[..take]);
    }
    v
}

/// Checks a value made by [`self_checking`]; returns its seed.
///
/// # Errors
/// What is wrong with the value.
pub fn verify_self_checking(v: &[u8]) -> Result<u64, String> {
    if v.len() < SELF_CHECK_HEADER {
        return Err(format!(
            "value of {} bytes is shorter than its header",
            v.len()
        ));
    }
    let seed = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(v[8..12].try_into().expect("4 bytes")) as usize;
    if len != v.len() {
        return Err(format!(
            "value says it is {len} bytes long but is {} (seed {seed:#x})",
            v.len()
        ));
    }
    let expected = self_checking(seed, len);
    if let Some(i) = (0..len).find(|&i| expected[i] != v[i]) {
        return Err(format!(
            "torn value: byte {i} of {len} is {:#04x}, the writer of seed {seed:#x} wrote {:#04x}",
            v[i], expected[i]
        ));
    }
    Ok(seed)
}

/// Runs `f` on its own thread and panics if it does not finish within `limit`: a
/// deadlocked or stalled engine fails the behaviour instead of hanging the test run.
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {limit:?}: the store stalled or deadlocked")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
    }
}

/// `get`, failing the behaviour on an error.
pub fn get(store: &dyn SessionStore, k: &Key) -> Option<Entry> {
    store
        .get(k)
        .unwrap_or_else(|e| panic!("get({k}) failed: {}", crate::check::chain(&e)))
}

/// The live value of `k`, failing the behaviour on an error.
pub fn value(store: &dyn SessionStore, k: &Key) -> Option<Vec<u8>> {
    get(store, k).map(|e| e.value)
}

/// An upsert that never expires, failing the behaviour on an error.
pub fn put(store: &dyn SessionStore, k: &Key, v: &[u8]) -> WriteOutcome {
    put_with(store, k, v, Expiry::Never, WriteMode::Upsert)
}

/// A write that must succeed.
pub fn put_with(
    store: &dyn SessionStore,
    k: &Key,
    v: &[u8],
    expiry: Expiry,
    mode: WriteMode,
) -> WriteOutcome {
    store.put(k, v, expiry, mode).unwrap_or_else(|e| {
        panic!(
            "put({k}, {} bytes, {expiry:?}, {mode:?}) failed: {}",
            crate::check::chain(&e),
            v.len()
        )
    })
}

/// `delete`, failing the behaviour on an error.
pub fn delete(store: &dyn SessionStore, k: &Key) -> bool {
    store
        .delete(k)
        .unwrap_or_else(|e| panic!("delete({k}) failed: {}", crate::check::chain(&e)))
}

/// A counter value as stored by the increment behaviours.
pub fn counter(v: Option<&[u8]>) -> u64 {
    match v {
        None => 0,
        Some(b) => u64::from_le_bytes(
            b.try_into()
                .unwrap_or_else(|_| panic!("a counter is 8 bytes, found {} bytes", b.len())),
        ),
    }
}

/// Starts two reader threads that, until `stop` is raised, read `keys` in turn with `get`
/// and `get_into` and check that every value they find is a whole [`self_checking`]
/// value: the torn-read check of the concurrency and capacity behaviours. A missing key
/// fails the reader unless `missing_ok` (a bounded engine may evict; the keys may not be
/// written yet). Join them with [`join_writers_then_readers`].
pub(crate) fn torn_value_readers<S: SessionStore + 'static>(
    store: &Arc<S>,
    keys: &[Key],
    stop: &Arc<AtomicBool>,
    missing_ok: bool,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..2usize)
        .map(|t| {
            let (store, keys, stop) = (store.clone(), keys.to_vec(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let k = &keys[i % keys.len()];
                    match get(&*store, k) {
                        Some(e) => verify_self_checking(&e.value)
                            .map(drop)
                            .unwrap_or_else(|m| panic!("get({k}): {m}")),
                        None => assert!(missing_ok, "{k} vanished from an unbounded store"),
                    };
                    match store.get_into(k, &mut buf).expect("get_into") {
                        Some(_) => verify_self_checking(&buf)
                            .map(drop)
                            .unwrap_or_else(|m| panic!("get_into({k}): {m}")),
                        None => assert!(missing_ok, "{k} vanished from an unbounded store"),
                    };
                    i += 1;
                }
            })
        })
        .collect()
}

/// Joins `writers`, then raises `stop` and joins `readers`; re-raises a panic from any of
/// them once all have ended, so a failing reader never leaves a writer running.
pub fn join_writers_then_readers(
    writers: Vec<std::thread::JoinHandle<()>>,
    stop: &std::sync::atomic::AtomicBool,
    readers: Vec<std::thread::JoinHandle<()>>,
) {
    let mut failure = None;
    for w in writers {
        if let Err(p) = w.join() {
            failure = Some(p);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        if let Err(p) = r.join() {
            failure = Some(p);
        }
    }
    if let Some(p) = failure {
        std::panic::resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_checking_values_verify_and_tearing_is_seen() {
        for len in [0, 12, 13, 100, 4099] {
            let v = self_checking(7, len);
            assert_eq!(verify_self_checking(&v), Ok(7));
        }
        let mut a = self_checking(1, 64);
        let b = self_checking(2, 64);
        a[32..].copy_from_slice(&b[32..]);
        assert!(verify_self_checking(&a).is_err());
        assert!(verify_self_checking(&self_checking(1, 64)[..40]).is_err());
    }

    #[test]
    fn long_key_is_the_longest_valid_key() {
        assert_eq!(long_key("a").len(), store_api::MAX_KEY_LEN);
    }

    #[test]
    #[should_panic(expected = "did not finish")]
    fn within_fails_a_stall() {
        within("sleeping", Duration::from_millis(10), || {
            std::thread::sleep(Duration::from_millis(500));
        });
    }
}
