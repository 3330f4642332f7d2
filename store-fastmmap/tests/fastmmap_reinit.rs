//! `init_file` while other stores have the file open (audit 2, findings 6, 7 and 8).

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::time::Duration;

use store_api::{Error, SessionStore, SessionStoreExt};
use support::{Fixture, keys_on_page, run_worker, worker};

/// Regression (finding 6): a page's version counter survived `init_file`, so after a
/// change to smaller pages a new page's counter was whatever old record bytes lay at its
/// offset, and versions could repeat.
fn versions_never_repeat_after_a_reinit_with_another_geometry(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.builder().page_size(8192).num_pages(2).open().unwrap();
    let mut max = 0;
    for i in 0..300 {
        let w = s.set(&support::key(i), &[1u8; 100]).unwrap();
        max = max.max(w.version.get());
    }
    drop(s);
    // Same length (4096 + 2 * 8192 = 4096 + 4 * 4096): the old bytes stay in place.
    let s = fx
        .builder()
        .page_size(4096)
        .num_pages(4)
        .init_file(true)
        .open()
        .unwrap();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 60_000;
    for page in 0..4 {
        let k = keys_on_page(&s, page, 1).remove(0);
        let v = s.set(&k, b"new").unwrap().version.get();
        assert!(
            v > max,
            "page {page}: version {v} not above the old maximum {max}"
        );
        assert!(
            v >= created << 20,
            "page {page}: version {v} below the file's base"
        );
    }
}

/// Regression (finding 7): after `init_file` with another geometry at the same length,
/// a store still open with the old geometry kept returning values from before the
/// re-initialisation from its lock-free reads (old pages lay untouched in the new pages'
/// data areas). They now miss or fail, never return old values.
fn stale_readers_after_a_reinit_with_another_geometry_get_no_old_value(kind: LockKind) {
    let fx = Fixture::of(kind);
    let a = fx.small(4);
    let mut keys = Vec::new();
    for page in 0..4 {
        keys.extend(keys_on_page(&a, page, 5));
    }
    for k in &keys {
        a.set(k, k.as_bytes()).unwrap();
    }
    let path = fx.path();
    if kind == LockKind::Futex {
        // The futex kind refuses to move a lock table other stores wait on.
        let out = worker()
            .args(["reinit", path.to_str().unwrap(), "8192", "2", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("futex lock kind"),
            "{err}"
        );
        for k in &keys {
            assert_eq!(a.get_value(k).unwrap().as_deref(), Some(k.as_bytes()));
        }
        return;
    }
    run_worker(&["reinit", path.to_str().unwrap(), "8192", "2", "1"]);
    for k in &keys {
        match a.get(k) {
            Ok(None) | Err(_) => {}
            Ok(Some(e)) => panic!("{k}: value from before the re-initialisation: {e:?}"),
        }
    }
}

/// Regression (finding 8): `init_file` with the same geometry marked the file as being
/// initialised before it took the lock on every page, so a writer of another process
/// that got its page lock in between failed with `Incompatible`, although open stores
/// carry on through a same-geometry re-initialisation.
fn writers_carry_on_through_reinits_with_the_same_geometry(kind: LockKind) {
    let fx = Fixture::of(kind);
    drop(fx.small(4));
    let path = fx.path();
    let p = path.to_str().unwrap();
    // Killed when dropped, so a failing assertion below leaves no writer running.
    let mut writer = support::Stopped(
        worker()
            .args(["write", p, "w", "40", "100000000", "20"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..50 {
        let s = fx.small_reinit(4);
        drop(s);
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = writer.0.try_wait().unwrap();
    let _ = writer.0.kill();
    let mut err = String::new();
    if let Some(mut e) = writer.0.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.is_none(), "the writer stopped: {err}");
    let s = fx.small(4);
    assert!(s.stats().unwrap().entries <= 40);
}

/// Regression (finding 12): a header claiming 2^24 pages over a sparse file of matching
/// length made `open` allocate 1 GiB of per-page state (and with more pages, abort).
fn a_header_claiming_too_many_pages_is_refused(kind: LockKind) {
    let fx = Fixture::of(kind);
    drop(fx.small(1));
    let path = fx.path();
    let mut header = std::fs::read(&path).unwrap()[..256].to_vec();
    let pages: u32 = 1 << 24;
    header[20..24].copy_from_slice(&pages.to_le_bytes());
    header[40..48].fill(0);
    let sum = xxhash_rust::xxh3::xxh3_64(&header);
    header[40..48].copy_from_slice(&sum.to_le_bytes());
    support::poke(&path, 0, &header);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(4096 + u64::from(pages) * 4096).unwrap();
    drop(f);
    let err = store_fastmmap::FastMmapStore::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::Incompatible { .. } | Error::Corrupted { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pages"), "{err}");
}

both_kinds!(
    versions_never_repeat_after_a_reinit_with_another_geometry,
    stale_readers_after_a_reinit_with_another_geometry_get_no_old_value,
    writers_carry_on_through_reinits_with_the_same_geometry,
    a_header_claiming_too_many_pages_is_refused,
);
