//! What tools see of a file: page fills, the file-wide counters, `verify`, and opening
//! existing files only.

mod support;

use store_api::{Error, Expiry, SessionStore, SessionStoreExt, WriteMode};
use store_fastmmap::FastMmapStore;
use support::{Fixture, key, keys_on_page, poke};

/// A page full of tiny sessions is full by its slots long before its bytes: its fill
/// says so (a fill of bytes alone showed such a page three quarters full while it
/// evicted on every write).
#[test]
fn a_page_out_of_slots_is_full() {
    let fx = Fixture::new();
    let s = fx.small(2);
    let mut evicted = 0;
    for k in keys_on_page(&s, 0, 200) {
        evicted += match s.set(&k, b"x").unwrap().evicted {
            store_api::Evictions::Counted { live, .. } => live,
            _ => 0,
        };
    }
    assert!(evicted > 0, "the page had to evict");
    let fills = s.page_fills();
    let p = fills[0];
    assert!(
        p.bytes_used * 2 < p.capacity,
        "bytes are not what fills it: {p:?}"
    );
    assert!(p.ratio() > 0.95, "a page that evicts shows as full: {p:?}");
    assert_eq!(fills[1].ratio(), 0.0, "an empty page");
}

/// The counters in the file add up what every handle did, survive reopening, and start
/// from zero when the file is initialised again.
#[test]
fn file_counters_add_up_every_handle_and_reset_at_init() {
    let fx = Fixture::new();
    let a = fx.small(1);
    let b = fx.small(1);
    for (i, k) in keys_on_page(&a, 0, 120).into_iter().enumerate() {
        let s = if i % 2 == 0 { &a } else { &b };
        s.put(&k, &[7; 60], Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
    let per_handle = a.stats().unwrap().evicted_live + b.stats().unwrap().evicted_live;
    assert!(per_handle > 0);
    let c = a.file_counters();
    assert_eq!(c.evicted_live, per_handle, "both handles' evictions");
    assert_eq!(b.file_counters(), c, "one file, one count");
    drop((a, b));
    assert_eq!(fx.small(1).file_counters(), c, "kept in the file");
    assert_eq!(fx.small_reinit(1).file_counters().evicted_live, 0);
}

/// `verify` changes nothing (not even a damaged page), reports it, and repairs it on
/// request, counting the repair in the file.
#[test]
fn verify_reports_damage_and_repairs_only_on_request() {
    let fx = Fixture::new();
    let s = fx.small(2);
    let keys = keys_on_page(&s, 1, 5);
    for k in &keys {
        s.set(k, b"a value long enough to damage").unwrap();
    }
    let clean = s.verify(false, &mut |_| {}).unwrap();
    assert!(clean.clean(), "{clean:?}");
    assert_eq!((clean.pages, clean.records), (2, 5));
    // The last word of page 1 is the value of the record written first.
    let end = s.page_range(1).unwrap().end;
    poke(&fx.path(), end - 8, &[0xAB; 8]);
    let before = std::fs::read(fx.path()).unwrap();
    let mut progress = Vec::new();
    let r = s.verify(false, &mut |done| progress.push(done)).unwrap();
    assert_eq!(progress, [1, 2]);
    assert_eq!((r.bad_records, r.problems.len()), (1, 1), "{r:?}");
    assert_eq!(r.problems[0].page, 1);
    assert!(!r.problems[0].repaired);
    assert_eq!(
        std::fs::read(fx.path()).unwrap(),
        before,
        "verify changed the file"
    );
    let r = s.verify(true, &mut |_| {}).unwrap();
    assert!(r.problems[0].repaired);
    assert!(s.verify(false, &mut |_| {}).unwrap().clean(), "repaired");
    let c = s.file_counters();
    assert_eq!((c.repairs, c.lost_in_repair), (1, 1));
    assert_eq!(s.get(&keys[0]).unwrap(), None, "the damaged record is gone");
    assert!(s.get(&keys[4]).unwrap().is_some(), "the others stay");
}

/// `existing_only` never creates a file or a directory and never initialises one.
#[test]
fn existing_only_opens_nothing_new() {
    let fx = Fixture::new();
    let open = |p: &std::path::Path| {
        FastMmapStore::builder()
            .storage(p)
            .existing_only(true)
            .open()
    };
    let missing = fx.dir.path().join("missing");
    assert!(matches!(open(&missing), Err(Error::Io { .. })));
    assert!(!missing.exists());
    let nodir = fx.dir.path().join("no").join("file");
    assert!(open(&nodir).is_err());
    assert!(!nodir.parent().unwrap().exists());
    let empty = fx.dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert!(matches!(open(&empty), Err(Error::Incompatible { .. })));
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
    let e = FastMmapStore::builder()
        .storage(&empty)
        .existing_only(true)
        .init_file(true)
        .open()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                option: "existing_only",
                ..
            }
        ),
        "{e}"
    );
    // An initialised file opens, with its data.
    fx.small(2).set(&key("k"), b"v").unwrap();
    assert_eq!(
        open(&fx.path())
            .unwrap()
            .get_value(&key("k"))
            .unwrap()
            .unwrap(),
        b"v"
    );
}
