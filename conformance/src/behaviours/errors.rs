//! Errors: thread-safe error types, an unreachable backend is an error, never `None`.

use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, UpdateAction, WriteMode};

use crate::check::key;
use crate::{Ctx, Harness, Outcome, Spec};

fn assert_send_sync_static<T: Send + Sync + 'static>() {}

/// The contract's error type and the engine's store type are `Send + Sync + 'static`,
/// errors name their cause (`source`) and render a message.
pub fn errors_are_send_sync_static<H: Harness>(ctx: &Ctx) -> Outcome {
    assert_send_sync_static::<Error>();
    assert_send_sync_static::<H::Store>();
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(Error::backend(
        "probing",
        std::io::Error::other("inner cause"),
    ));
    assert!(
        boxed.source().is_some(),
        "Error::Backend must expose its source"
    );
    assert!(!boxed.to_string().is_empty());
    let (_h, store) = ctx.store::<H>(&Spec::new())?;
    let err = store
        .put(
            &key("err-probe-7f3c"),
            b"x",
            Expiry::Never,
            WriteMode::ReplaceOnly,
        )
        .expect_err("replace-only of an absent key");
    let err: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(err);
    assert!(
        err.to_string().contains("err-probe-7f3c"),
        "the message names the key: {err}"
    );
    Ok(())
}

/// A store whose backend cannot be reached fails to open, or fails every operation:
/// never `Ok(None)` or `Ok(false)` as if the data were simply missing.
pub fn unreachable_backend_is_an_error<H: Harness>(_ctx: &Ctx) -> Outcome {
    let (spec, _clock) = Spec::new().with_manual_clock();
    let store = match H::unreachable(&spec) {
        Err(_) => H::unreachable(&Spec::new())?,
        Ok(r) => r,
    };
    let store = match store {
        Err(_) => return Ok(()),
        Ok(store) => store,
    };
    let k = key("unreachable");
    let mut failures = Vec::new();
    let mut check = |what: &str, ok: bool| {
        if ok {
            failures.push(what.to_string());
        }
    };
    check("get answered Ok", store.get(&k).is_ok());
    check(
        "get_into answered Ok",
        store.get_into(&k, &mut Vec::new()).is_ok(),
    );
    check("delete answered Ok", store.delete(&k).is_ok());
    check(
        "touch answered Ok",
        store
            .touch(&k, Expiry::After(Duration::from_secs(1)))
            .is_ok(),
    );
    check(
        "put answered Ok",
        store
            .put(&k, b"v", Expiry::Never, WriteMode::Upsert)
            .is_ok(),
    );
    check(
        "update answered Ok",
        store.update(&k, &mut |_| UpdateAction::Keep).is_ok(),
    );
    assert!(
        failures.is_empty(),
        "an unreachable backend must give errors, never answers as if the data were missing: {}",
        failures.join("; ")
    );
    Ok(())
}
