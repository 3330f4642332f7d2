//! The typed (serde) layer over the reference engine.

use serde::{Deserialize, Serialize};
use store_api::{Error, Expiry, Key, SessionStoreExt, Typed, TypedUpdate, UpdateOutcome};
use store_memory::MemoryStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    visits: u32,
    roles: Vec<String>,
}

#[test]
fn typed_round_trip() {
    let store = MemoryStore::new();
    let typed = Typed::new(&store);
    let k = Key::new("session:1").unwrap();
    let s = Session {
        user: "ädä".into(),
        visits: 3,
        roles: vec!["admin".into()],
    };
    let w = typed.put(&k, &s, Expiry::Never).unwrap();
    assert_eq!(typed.get::<Session>(&k).unwrap(), Some((s, w.version)));
    assert_eq!(
        typed.get::<Session>(&Key::new("none").unwrap()).unwrap(),
        None
    );
}

#[test]
fn typed_value_that_does_not_decode_is_an_error_naming_the_key() {
    let store = MemoryStore::new();
    let k = Key::new("session:garbage").unwrap();
    store.set(&k, &[0xff; 3]).unwrap();
    let err = Typed::new(&store).get::<Session>(&k).unwrap_err();
    assert!(
        matches!(&err, Error::Decode { key, .. } if key == &k),
        "{err}"
    );
    assert!(err.to_string().contains("session:garbage"), "{err}");
}

#[test]
fn typed_update_increments_and_refuses_to_overwrite_undecodable_values() {
    let store = MemoryStore::new();
    let typed = Typed::new(&store);
    let k = Key::new("counter").unwrap();
    for _ in 0..3 {
        typed
            .update::<u64, _>(&k, |n| TypedUpdate::Set(n.unwrap_or(0) + 1, Expiry::Never))
            .unwrap();
    }
    assert_eq!(typed.get::<u64>(&k).unwrap().unwrap().0, 3);
    store.set(&k, b"not a u64!").unwrap();
    let mut called = false;
    let err = typed
        .update::<u64, _>(&k, |_| {
            called = true;
            TypedUpdate::Delete
        })
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(!called, "the closure never sees undecodable data");
    assert_eq!(store.get_value(&k).unwrap().unwrap(), b"not a u64!");
    let out = typed.update::<u64, _>(&Key::new("gone").unwrap(), |_| TypedUpdate::Delete);
    assert!(
        matches!(out, Ok(UpdateOutcome::Deleted { existed: false })),
        "{out:?}"
    );
}
