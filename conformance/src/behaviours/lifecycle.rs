//! The session lifecycle: the Perl store's reusable test, generalised.

use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, Typed, WriteMode};

use crate::check::{delete, get, key, put, put_with};
use crate::{Ctx, Harness, Outcome, Spec};

/// Create a session holding non-ASCII data (raw and through the typed layer), read it
/// back under the same id, delete it, and it is gone.
pub fn session_round_trip_non_ascii<H: Harness>(ctx: &Ctx) -> Outcome {
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let id = key("session:7f3c9a1b2e4d6f80");
    let data = "user=Jürgen Groß; greeting=こんにちは; emoji=🎉; rtl=שלום".as_bytes();
    put_with(
        &store,
        &id,
        data,
        Expiry::After(Duration::from_secs(3600)),
        WriteMode::CreateOnly,
    );
    assert_eq!(
        get(&store, &id).map(|e| e.value).as_deref(),
        Some(data),
        "read back under the same id"
    );
    assert!(delete(&store, &id), "delete the session");
    assert_eq!(get(&store, &id), None, "a deleted session is gone");

    let typed = Typed::new(&store);
    let session: std::collections::BTreeMap<String, String> = [
        ("name".to_string(), "Zoë Ångström".to_string()),
        ("city".to_string(), "Zürich".to_string()),
    ]
    .into();
    typed.put(&id, &session, Expiry::Never).expect("typed put");
    let (back, _) = typed
        .get::<std::collections::BTreeMap<String, String>>(&id)
        .expect("typed get")
        .expect("typed session present");
    assert_eq!(back, session);
    assert!(delete(&store, &id));
    assert_eq!(
        typed
            .get::<std::collections::BTreeMap<String, String>>(&id)
            .expect("typed get"),
        None
    );
    Ok(())
}

/// A session stored with an expiry of zero is expired at once.
pub fn zero_expiry_is_expired_at_once<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, _clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let id = key("session:zero");
    put_with(
        &store,
        &id,
        b"data",
        Expiry::After(Duration::ZERO),
        WriteMode::Upsert,
    );
    assert_eq!(
        get(&store, &id),
        None,
        "expiry zero must be expired at once"
    );
    Ok(())
}

/// Rotating the session id moves value and expiry to the new id; the old id is gone;
/// rotating onto a live id fails and changes nothing; rotating an absent id is `false`.
pub fn id_rotation_moves_the_data<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, _clock) = Spec::new().with_manual_clock();
    let (_h, store) = ctx.store::<H>(&spec)?;
    let old = key("session:old");
    let new = key("session:new");
    put_with(
        &store,
        &old,
        "données".as_bytes(),
        Expiry::After(Duration::from_secs(600)),
        WriteMode::Upsert,
    );
    let before = get(&store, &old).expect("live");
    assert!(
        store.rotate(&old, &new).expect("rotate"),
        "rotate of a live session"
    );
    assert_eq!(get(&store, &old), None, "the old id must be gone");
    let moved = get(&store, &new).expect("the new id must hold the data");
    assert_eq!(
        (moved.value, moved.expires_at),
        (before.value, before.expires_at),
        "rotation must keep value and expiry"
    );

    let taken = key("session:taken");
    put(&store, &taken, b"someone else");
    let err = store
        .rotate(&new, &taken)
        .expect_err("rotating onto a live id");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(
        get(&store, &taken).map(|e| e.value),
        Some(b"someone else".to_vec()),
        "a failed rotation overwrote the target"
    );
    assert!(
        get(&store, &new).is_some(),
        "a failed rotation lost the source"
    );
    assert!(
        !store
            .rotate(&key("session:absent"), &key("session:x"))
            .expect("rotate"),
        "rotating an absent id"
    );
    assert_eq!(get(&store, &key("session:x")), None);
    Ok(())
}
