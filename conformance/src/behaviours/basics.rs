//! Basics: absent keys, byte-exact round trips, key independence and validation,
//! idempotent delete, several handles.

use store_api::{Error, Expiry, Key, KeyRule, SessionStore, WriteMode};

use crate::check::{delete, get, key, long_key, put, value};
use crate::{Ctx, Harness, Outcome, Spec};

/// A key never written reads as `None`, through `get` and `get_into`.
pub fn missing_key_is_none<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let k = key("never-written");
    assert_eq!(
        get(&store, &k),
        None,
        "a key never written must read as None"
    );
    let mut buf = b"stale".to_vec();
    let meta = store.get_into(&k, &mut buf).expect("get_into");
    assert_eq!(meta, None, "get_into of a missing key must be None");
    assert!(
        !store.touch(&k, Expiry::Never).expect("touch"),
        "touch of a missing key reports false"
    );
    assert!(!delete(&store, &k), "deleting a missing key reports false");
    Ok(())
}

/// Values come back byte for byte: empty, every byte value, non-UTF-8, the maximum size
/// (with the longest key), through `get` and `get_into`, with the version the write
/// returned.
pub fn round_trips_are_byte_exact<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let max = store.capabilities().max_value_len;
    let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let cases: Vec<(&str, Key, Vec<u8>)> = vec![
        ("empty", key("rt:empty"), Vec::new()),
        ("one NUL byte", key("rt:nul"), vec![0]),
        ("every byte value", key("rt:binary"), all_bytes),
        (
            "invalid UTF-8",
            key("rt:not-utf8"),
            vec![0xff, 0xfe, 0xc3, 0x28, 0x80],
        ),
        (
            "UTF-8 text",
            key("rt:utf8"),
            "grüße, 世界 🎉".as_bytes().to_vec(),
        ),
        (
            "maximum size with the longest key",
            long_key("rt-max"),
            crate::check::self_checking(42, max),
        ),
    ];
    for (what, k, v) in &cases {
        let written = put(&store, k, v);
        let e = get(&store, k).unwrap_or_else(|| panic!("{what}: value just written is absent"));
        assert!(
            e.value == *v,
            "{what}: read back {} bytes differing from the {} written",
            e.value.len(),
            v.len()
        );
        assert_eq!(
            e.version, written.version,
            "{what}: get must return the version put returned"
        );
        assert_eq!(e.expires_at, None, "{what}: written with Expiry::Never");
        let mut buf = vec![0xAA; 3];
        let meta = store
            .get_into(k, &mut buf)
            .expect("get_into")
            .unwrap_or_else(|| panic!("{what}: get_into found nothing"));
        assert!(
            buf == *v,
            "{what}: get_into read back {} bytes differing from the {} written",
            buf.len(),
            v.len()
        );
        assert_eq!(meta.version, written.version, "{what}: get_into version");
    }
    Ok(())
}

/// Similar keys (prefixes, case, trailing space, non-ASCII) are independent entries, and
/// a write or delete of one changes no other.
pub fn keys_are_independent<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let names = [
        "a",
        "A",
        "a ",
        "ab",
        "session:a",
        "session:á",
        "session:a\u{301}",
    ];
    let keys: Vec<Key> = names.iter().map(|n| key(*n)).collect();
    for (i, k) in keys.iter().enumerate() {
        put(&store, k, format!("value {i}").as_bytes());
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            value(&store, k),
            Some(format!("value {i}").into_bytes()),
            "key {k:?}"
        );
    }
    assert!(delete(&store, &keys[0]));
    put(&store, &keys[1], b"changed");
    assert_eq!(value(&store, &keys[0]), None, "deleted key {:?}", keys[0]);
    assert_eq!(value(&store, &keys[1]), Some(b"changed".to_vec()));
    for (i, k) in keys.iter().enumerate().skip(2) {
        assert_eq!(
            value(&store, k),
            Some(format!("value {i}").into_bytes()),
            "key {k:?} changed by a write to another key"
        );
    }
    Ok(())
}

/// Invalid keys are rejected before they reach an engine, naming the rule; keys at the
/// limits are accepted by the engine.
pub fn invalid_keys_are_rejected<H: Harness>(ctx: &Ctx) -> Outcome {
    let cases: [(&[u8], KeyRule); 5] = [
        (b"", KeyRule::Empty),
        (
            &[b'k'; store_api::MAX_KEY_LEN + 1],
            KeyRule::TooLong { len: 251, max: 250 },
        ),
        (b"nul\0key", KeyRule::ControlByte { index: 3 }),
        (b"new\nline", KeyRule::ControlByte { index: 3 }),
        (b"\xff\xfe", KeyRule::NotUtf8),
    ];
    for (raw, want) in cases {
        match Key::from_bytes(raw) {
            Err(Error::InvalidKey { rule, .. }) => assert_eq!(rule, want, "key {raw:?}"),
            other => panic!("key {raw:?} must be rejected with {want:?}, got {other:?}"),
        }
    }
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    assert!(store.capabilities().max_key_len >= store_api::MAX_KEY_LEN);
    for k in [long_key("limit"), key("x"), key("sitzung:grüße~!@#$%^&*()")] {
        put(&store, &k, b"v");
        assert_eq!(value(&store, &k), Some(b"v".to_vec()), "valid key {k:?}");
    }
    Ok(())
}

/// Delete reports `true` once, then `false`; deleting again is not an error.
pub fn delete_is_idempotent<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let k = key("del");
    put(&store, &k, b"v");
    assert!(
        delete(&store, &k),
        "first delete of a live key reports true"
    );
    assert!(!delete(&store, &k), "second delete reports false");
    assert!(!delete(&store, &k), "third delete reports false");
    assert_eq!(get(&store, &k), None);
    Ok(())
}

/// Two handles onto one store see each other's writes and deletes at once.
pub fn two_handles_see_each_others_writes<H: Harness>(ctx: &Ctx) -> Outcome {
    let (h, a) = ctx.store::<H>(&Spec::new())?;
    let b = h
        .open()
        .unwrap_or_else(|e| panic!("second open failed: {}", crate::check::chain(&e)));
    let k = key("shared");
    let w = put(&a, &k, b"from a");
    assert_eq!(
        value(&a, &k),
        Some(b"from a".to_vec()),
        "a reads its own write"
    );
    let e = get(&b, &k).expect("handle b must see a's write");
    assert_eq!((e.value.as_slice(), e.version), (&b"from a"[..], w.version));
    b.put(&k, b"from b", Expiry::Never, WriteMode::ReplaceOnly)
        .expect("replace through b");
    // a read the key before b changed it: a per-handle read cache would answer stale.
    assert_eq!(
        value(&a, &k),
        Some(b"from b".to_vec()),
        "handle a must see b's write to a key a had read before"
    );
    assert!(delete(&a, &k));
    assert_eq!(
        value(&b, &k),
        None,
        "handle b must see a's delete of a key b had read"
    );
    put(&b, &k, b"again from b");
    assert_eq!(
        value(&a, &k),
        Some(b"again from b".to_vec()),
        "handle a must see b's re-creation of a key a saw deleted"
    );
    Ok(())
}

/// `stats` counts this handle's reads, hits and writes: three reads (two hits, one
/// miss) add 3 reads and 2 hits; two puts, a touch and a delete of live entries add 4
/// writes. (Counters are per handle: see [`Stats`](store_api::Stats).)
pub fn stats_count_reads_hits_and_writes<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let (a, b) = (key("stats:a"), key("stats:b"));
    let before = store.stats().expect("stats");
    put(&store, &a, b"1");
    put(&store, &b, b"2");
    assert!(
        store.touch(&a, Expiry::Never).expect("touch"),
        "touch of a live key"
    );
    assert!(delete(&store, &b), "delete of a live key");
    let writes = store.stats().expect("stats");
    assert_eq!(
        writes.writes - before.writes,
        4,
        "two puts, a touch and a delete must count 4 writes (before {before:?}, after {writes:?})"
    );
    assert_eq!(writes.reads, before.reads, "writes must not count as reads");
    assert!(get(&store, &a).is_some());
    assert!(get(&store, &a).is_some());
    assert!(get(&store, &b).is_none());
    let reads = store.stats().expect("stats");
    assert_eq!(
        reads.reads - writes.reads,
        3,
        "three gets must count 3 reads (before {writes:?}, after {reads:?})"
    );
    assert_eq!(
        reads.hits - writes.hits,
        2,
        "two gets of a live key and one of a deleted key must count 2 hits (before {writes:?}, after {reads:?})"
    );
    assert_eq!(
        reads.writes, writes.writes,
        "reads must not count as writes"
    );
    Ok(())
}
