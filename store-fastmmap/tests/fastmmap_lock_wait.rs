//! `write_lock_timeout`: a write that meets a page lock held too long (a process stopped
//! mid-write, an `update` closure that does not return) fails with `Backend` naming the
//! page and a `TimedOut` source, writes nothing, and leaves other pages and the page
//! itself usable once the holder lets go.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use store_api::{Error, Expiry, SessionStore, SessionStoreExt, UpdateAction, WriteMode};
use store_fastmmap::Failpoint;
use support::{Fixture, keys_on_page};

fn timed_out(e: &Error, page: u32) -> bool {
    match e {
        Error::Backend { context, source } => {
            context.contains(&format!("page {page} of"))
                && context.contains("write_lock_timeout")
                && source
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        }
        _ => false,
    }
}

/// Another process stopped mid-write holds the page: a bounded write gives up after
/// its limit, writes nothing, and writes to another page go through meanwhile. Once the
/// process is killed, the next write repairs the page and succeeds.
fn a_write_gives_up_on_a_page_held_by_a_stopped_process(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx
        .builder()
        .page_size(4096)
        .num_pages(2)
        .write_lock_timeout(Duration::from_millis(200))
        .open()
        .unwrap();
    let stuck = store_api::Key::new("stuck0").unwrap();
    let page = s.page_of(&stuck);
    let same = keys_on_page(&s, page, 1).remove(0);
    let other = keys_on_page(&s, 1 - page, 1).remove(0);
    s.set(&same, b"before").unwrap();
    let path = fx.path();
    let worker = support::stop_worker_at(
        Failpoint::PutAfterBegin,
        &["put", path.to_str().unwrap(), "stuck", "1", "100"],
    );
    let start = Instant::now();
    let err = s
        .put(&same, b"after", Expiry::Never, WriteMode::Upsert)
        .unwrap_err();
    let waited = start.elapsed();
    assert!(timed_out(&err, page), "{err}");
    assert!(
        (Duration::from_millis(200)..Duration::from_secs(5)).contains(&waited),
        "gave up after {waited:?}"
    );
    for op in [
        s.delete(&same).map(drop),
        s.touch(&same, Expiry::Never).map(drop),
        s.update(&same, &mut |_| UpdateAction::Delete).map(drop),
    ] {
        assert!(timed_out(&op.unwrap_err(), page));
    }
    assert!(timed_out(&s.purge_expired().unwrap_err(), page));
    s.set(&other, b"other page").unwrap();
    drop(worker); // SIGKILL: its lock goes with it
    assert_eq!(s.get_value(&same).unwrap().unwrap(), b"before");
    s.set(&same, b"after").unwrap();
    assert_eq!(s.get_value(&same).unwrap().unwrap(), b"after");
    assert_eq!(s.get_value(&other).unwrap().unwrap(), b"other page");
}

/// A thread of this process inside an `update` closure holds the page: a bounded
/// writer on another thread (the in-process lock) gives up too, and succeeds after the
/// closure returns. Without a limit the writer waits for it.
fn a_write_gives_up_on_a_page_held_by_another_thread(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = std::sync::Arc::new(
        fx.builder()
            .page_size(4096)
            .num_pages(1)
            .write_lock_timeout(Duration::from_millis(100))
            .open()
            .unwrap(),
    );
    let unbounded = fx.builder().open().unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder = {
        let s = s.clone();
        std::thread::spawn(move || {
            s.update(&support::key("holder"), &mut |_| {
                held_tx.send(()).unwrap();
                let _ = go_rx.recv_timeout(Duration::from_secs(30));
                UpdateAction::set(b"held".to_vec(), Expiry::Never)
            })
            .unwrap();
        })
    };
    held_rx.recv().unwrap();
    let k = support::key("waiter");
    let err = s.set(&k, b"v").unwrap_err();
    assert!(timed_out(&err, 0), "{err}");
    // The other store (another open file description) waits without a limit and gets
    // through once the holder lets go.
    let waiter =
        std::thread::spawn(move || unbounded.set(&support::key("patient"), b"p").map(drop));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "an unbounded writer waits for the lock"
    );
    go_tx.send(()).unwrap();
    holder.join().unwrap();
    waiter.join().unwrap().unwrap();
    s.set(&k, b"v").unwrap();
    assert_eq!(
        s.get_value(&support::key("holder")).unwrap().unwrap(),
        b"held"
    );
    assert_eq!(
        s.get_value(&support::key("patient")).unwrap().unwrap(),
        b"p"
    );
}

fn a_zero_write_lock_timeout_is_refused(kind: LockKind) {
    let fx = Fixture::of(kind);
    let err = fx
        .builder()
        .write_lock_timeout(Duration::ZERO)
        .open()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                option: "write_lock_timeout",
                ..
            }
        ),
        "{err}"
    );
}

both_kinds!(
    a_write_gives_up_on_a_page_held_by_a_stopped_process,
    a_write_gives_up_on_a_page_held_by_another_thread,
    a_zero_write_lock_timeout_is_refused,
);
