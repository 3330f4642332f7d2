//! Regression (found by porting the Perl store's tests): a store call from inside an
//! `update` closure on the same page hung the thread for ever (the closure's thread
//! holds the page lock and waited for itself). The Perl store croaks "already locked";
//! ours returns an error naming the cause, from every handle on the file.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, SessionStoreExt, UpdateAction, WriteMode};
use support::{Fixture, key, keys_on_page};

/// Runs `f` on another thread; fails the test if it does not return within 10 s.
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the call returned instead of waiting for itself")
}

fn a_store_call_from_inside_an_update_closure_is_an_error_not_a_hang(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = std::sync::Arc::new(fx.small(2));
    let second = std::sync::Arc::new(fx.small(2));
    let k = key("outer");
    let same_page = keys_on_page(&s, s.page_of(&k), 2)
        .into_iter()
        .find(|o| *o != k)
        .unwrap();
    s.set(&same_page, b"before").unwrap();
    let got = {
        let (s, second, k, same_page) = (s.clone(), second.clone(), k.clone(), same_page.clone());
        within(move || {
            let mut inner = Vec::new();
            let outcome = s.update(&k, &mut |_| {
                inner.push(
                    s.put(&k, b"inner", Expiry::Never, WriteMode::Upsert)
                        .map(|_| ()),
                );
                inner.push(s.delete(&same_page).map(|_| ()));
                // Another handle on the same file: its own locks, the same file's page.
                inner.push(second.set(&same_page, b"x").map(|_| ()));
                // Lock-free reads need no lock: they work.
                inner.push(s.get(&same_page).map(|e| assert!(e.is_some())));
                UpdateAction::set(b"outer".to_vec(), Expiry::Never)
            });
            (outcome.map(|_| ()), inner)
        })
    };
    let (outcome, inner) = got;
    outcome.unwrap();
    for r in &inner[..3] {
        let e = r.as_ref().unwrap_err();
        assert!(
            matches!(e, Error::Backend { .. })
                && e.to_string().contains("inside an `update` closure"),
            "{e}"
        );
    }
    inner[3].as_ref().unwrap();
    assert_eq!(s.get_value(&k).unwrap().as_deref(), Some(&b"outer"[..]));
    assert_eq!(
        s.get_value(&same_page).unwrap().as_deref(),
        Some(&b"before"[..])
    );
    // The thread's page locks are all released afterwards: the page works again.
    s.set(&same_page, b"after").unwrap();
    assert!(s.delete(&k).unwrap());
}

both_kinds!(a_store_call_from_inside_an_update_closure_is_an_error_not_a_hang,);
