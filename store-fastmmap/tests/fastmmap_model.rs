//! Random operation sequences against a plain `HashMap` model of the contract (a store
//! roomy enough that nothing is evicted), with an injected clock: every answer, value,
//! expiry and version relation must match.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use store_api::{
    Clock as _, Error, Expiry, Key, SessionStore, Timestamp, UpdateAction, UpdateOutcome, Version,
    WriteMode,
};

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>, Option<u16>, u8),
    Get(u8),
    Delete(u8),
    Touch(u8, Option<u16>),
    UpdateIncr(u8),
    UpdateDelete(u8),
    Rotate(u8, u8),
    Advance(u16),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..12;
    let ttl = proptest::option::of(1u16..2_000);
    prop_oneof![
        4 => (k.clone(), proptest::collection::vec(any::<u8>(), 0..300), ttl.clone(), 0u8..4)
            .prop_map(|(k, v, t, m)| Op::Put(k, v, t, m)),
        3 => k.clone().prop_map(Op::Get),
        1 => k.clone().prop_map(Op::Delete),
        1 => (k.clone(), ttl).prop_map(|(k, t)| Op::Touch(k, t)),
        1 => k.clone().prop_map(Op::UpdateIncr),
        1 => k.clone().prop_map(Op::UpdateDelete),
        1 => (k.clone(), k).prop_map(|(a, b)| Op::Rotate(a, b)),
        1 => (0u16..1_500).prop_map(Op::Advance),
        1 => Just(Op::Purge),
    ]
}

#[derive(Debug, Clone)]
struct M {
    value: Vec<u8>,
    expires: Option<Timestamp>,
    version: Version,
}

fn key(k: u8) -> Key {
    Key::new(format!("model:{k}")).unwrap()
}

fn expiry(t: Option<u16>) -> Expiry {
    t.map_or(Expiry::Never, |ms| {
        Expiry::After(Duration::from_millis(u64::from(ms)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_the_model(
        ops in proptest::collection::vec(op(), 1..80),
        futex in proptest::bool::ANY,
    ) {
        // Both lock kinds (the futex one on Linux with glibc).
        let kind = if futex && cfg!(all(target_os = "linux", target_env = "gnu")) {
            store_fastmmap::LockKind::Futex
        } else {
            store_fastmmap::LockKind::Fcntl
        };
        let fx = support::Fixture::of(kind);
        let s = fx.builder().page_size(64 << 10).num_pages(2).open().unwrap();
        let clock = fx.clock.clone();
        let mut m: HashMap<u8, M> = HashMap::new();
        let live = |m: &HashMap<u8, M>, k: u8, now: Timestamp| {
            m.get(&k).filter(|e| store_api::is_live(e.expires, now)).cloned()
        };
        for op in ops {
            let now = clock.now();
            match op {
                Op::Put(k, v, t, mode) => {
                    let cur = live(&m, k, now);
                    let mode = match mode {
                        0 => WriteMode::Upsert,
                        1 => WriteMode::CreateOnly,
                        2 => WriteMode::ReplaceOnly,
                        _ => WriteMode::IfVersion(
                            cur.as_ref().map_or(Version::new(1).unwrap(), |e| e.version),
                        ),
                    };
                    let r = s.put(&key(k), &v, expiry(t), mode);
                    let allowed = match mode {
                        WriteMode::Upsert => true,
                        WriteMode::CreateOnly => cur.is_none(),
                        WriteMode::ReplaceOnly => cur.is_some(),
                        WriteMode::IfVersion(_) => cur.is_some(),
                    };
                    if allowed {
                        let out = r.unwrap();
                        if let Some(c) = &cur {
                            prop_assert_ne!(out.version, c.version);
                        }
                        m.insert(k, M { value: v, expires: expiry(t).resolve(now, None), version: out.version });
                    } else {
                        let e = r.unwrap_err();
                        let kind_ok = matches!(
                            e,
                            Error::AlreadyExists { .. } | Error::NotFound { .. } | Error::VersionMismatch { .. }
                        );
                        prop_assert!(kind_ok, "{e}");
                    }
                }
                Op::Get(k) => {
                    let got = s.get(&key(k)).unwrap();
                    let want = live(&m, k, now);
                    prop_assert_eq!(got.as_ref().map(|e| &e.value), want.as_ref().map(|e| &e.value));
                    prop_assert_eq!(got.as_ref().map(|e| e.expires_at), want.as_ref().map(|e| e.expires));
                    prop_assert_eq!(got.map(|e| e.version), want.map(|e| e.version));
                }
                Op::Delete(k) => {
                    let want = live(&m, k, now).is_some();
                    prop_assert_eq!(s.delete(&key(k)).unwrap(), want);
                    m.remove(&k);
                }
                Op::Touch(k, t) => {
                    let want = live(&m, k, now).is_some();
                    prop_assert_eq!(s.touch(&key(k), expiry(t)).unwrap(), want);
                    if want {
                        m.get_mut(&k).unwrap().expires = expiry(t).resolve(now, None);
                    }
                }
                Op::UpdateIncr(k) => {
                    let out = s
                        .update(&key(k), &mut |e| {
                            let mut v = e.map_or(vec![], |e| e.value.clone());
                            v.push(1);
                            UpdateAction::set(v, Expiry::Never)
                        })
                        .unwrap();
                    let UpdateOutcome::Written(w) = out else { panic!("{out:?}") };
                    let mut v = live(&m, k, now).map_or(vec![], |e| e.value);
                    v.push(1);
                    m.insert(k, M { value: v, expires: None, version: w.version });
                }
                Op::UpdateDelete(k) => {
                    let want = live(&m, k, now).is_some();
                    let out = s.update(&key(k), &mut |_| UpdateAction::Delete).unwrap();
                    prop_assert_eq!(out, UpdateOutcome::Deleted { existed: want });
                    m.remove(&k);
                }
                Op::Rotate(a, b) => {
                    let r = s.rotate(&key(a), &key(b));
                    match (live(&m, a, now), live(&m, b, now)) {
                        (None, _) => prop_assert!(!r.unwrap()),
                        (Some(_), _) if a == b => {
                            let refused = matches!(r, Err(Error::AlreadyExists { .. }));
                            prop_assert!(refused, "{:?}", r);
                        }
                        (Some(_), Some(_)) => {
                            let refused = matches!(r, Err(Error::AlreadyExists { .. }));
                            prop_assert!(refused, "{:?}", r);
                        }
                        (Some(e), None) => {
                            prop_assert!(r.unwrap());
                            let moved = s.get(&key(b)).unwrap().unwrap();
                            prop_assert_eq!(&moved.value, &e.value);
                            prop_assert_eq!(moved.expires_at, e.expires);
                            m.remove(&a);
                            m.insert(b, M { value: e.value, expires: e.expires, version: moved.version });
                        }
                    }
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
                Op::Purge => {
                    let want = m.values().filter(|e| !store_api::is_live(e.expires, now)).count() as u64;
                    prop_assert_eq!(s.purge_expired().unwrap(), want);
                    m.retain(|_, e| store_api::is_live(e.expires, now));
                }
            }
        }
        prop_assert_eq!(s.stats().unwrap().evicted_live, 0);
        prop_assert_eq!(s.stats().unwrap().recovered, 0);
    }
}
