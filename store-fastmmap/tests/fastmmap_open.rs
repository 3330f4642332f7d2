//! Opening: file safety, geometry checks, initialisation, reopening.

mod support;

use std::os::unix::fs::PermissionsExt;

use store_api::{Error, SessionStore, SessionStoreExt};
use store_fastmmap::FastMmapStore;
use support::{Fixture, key, page_offset, poke};

/// `page_range` names each page's bytes (what the tests' `page_offset` mirrors, so that a
/// test damaging a page hits the page the engine uses), and no page past the last.
#[test]
fn page_range_names_every_page_and_no_other() {
    let fx = Fixture::new();
    let s = fx.builder().page_size(8192).num_pages(3).open().unwrap();
    for i in 0..3 {
        let start = page_offset(8192, i);
        assert_eq!(s.page_range(i), Some(start..start + 8192), "page {i}");
    }
    assert_eq!(s.page_range(3), None);
    assert_eq!(s.page_range(u32::MAX), None);
    let len = std::fs::metadata(fx.path()).unwrap().len();
    assert_eq!(
        s.page_range(2).unwrap().end,
        len,
        "the last page ends the file"
    );
}

#[test]
fn reopen_keeps_data_and_geometry() {
    let fx = Fixture::new();
    {
        let s = fx.builder().page_size(8192).num_pages(3).open().unwrap();
        s.set(&key(1), b"kept").unwrap();
    }
    // No geometry options: the file's geometry is adopted.
    let s = fx.builder().open().unwrap();
    assert_eq!((s.page_size(), s.num_pages()), (8192, 3));
    assert_eq!(s.get_value(&key(1)).unwrap().unwrap(), b"kept");
}

/// Regression (Perl): opening with a different page count silently deleted and
/// recreated the file, so two processes could use two different files.
#[test]
fn a_different_geometry_is_refused_unless_init_file() {
    let fx = Fixture::new();
    let s = fx.builder().page_size(4096).num_pages(4).open().unwrap();
    s.set(&key(1), b"v").unwrap();
    let err = fx
        .builder()
        .page_size(4096)
        .num_pages(8)
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("init_file") && msg.contains("sessions"),
        "{msg}"
    );
    assert_eq!(
        s.get_value(&key(1)).unwrap().unwrap(),
        b"v",
        "first store unaffected"
    );
    drop(s);
    let s = fx.small_reinit(8);
    assert_eq!(s.num_pages(), 8);
    assert!(s.get(&key(1)).unwrap().is_none(), "init_file starts empty");
}

#[test]
fn init_file_clears_an_existing_file_of_the_same_geometry() {
    let fx = Fixture::new();
    let old = fx.small(2);
    old.set(&key(1), b"v").unwrap();
    let s = fx.small_reinit(2);
    assert!(s.get(&key(1)).unwrap().is_none());
    assert_eq!(s.stats().unwrap().entries, 0);
    // A process that still has the file open hashes keys as the new one does (the
    // secret is kept), so both keep seeing each other's writes.
    for i in 0..20 {
        assert_eq!(old.page_of(&key(i)), s.page_of(&key(i)));
    }
    old.set(&key(2), b"from the old handle").unwrap();
    assert_eq!(
        s.get_value(&key(2)).unwrap().unwrap(),
        b"from the old handle"
    );
}

#[test]
fn a_foreign_file_is_incompatible_and_a_damaged_header_corrupted() {
    let fx = Fixture::new();
    std::fs::write(fx.path(), vec![b'x'; 10_000]).unwrap();
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = fx.builder().open().unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("magic"), "{err}");
    std::fs::write(fx.path(), b"short").unwrap();
    assert!(matches!(
        fx.builder().open(),
        Err(Error::Incompatible { .. })
    ));
    // init_file takes it over.
    fx.small_reinit(2);

    // One flipped byte in the secret: checksum mismatch.
    poke(&fx.path(), 100, &[0xAA]);
    let err = fx.builder().open().unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("init_file"), "{err}");
}

#[test]
fn a_truncated_file_is_corrupted() {
    let fx = Fixture::new();
    drop(fx.small(4));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(fx.path())
        .unwrap();
    f.set_len(page_offset(4096, 2)).unwrap();
    let err = fx.builder().open().unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn new_files_get_the_exact_mode_and_size() {
    let fx = Fixture::new();
    let s = fx.builder().cache_size(1 << 20).open().unwrap();
    let md = std::fs::metadata(fx.path()).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o640);
    // The file is the size asked for, within one page (plus the 4 KiB header).
    let pages = md.len() - 4096;
    assert!(
        pages.abs_diff(1 << 20) <= u64::from(s.page_size()),
        "{pages}"
    );
    let fx2 = Fixture::new();
    fx2.builder()
        .mode(0o600)
        .cache_size(1 << 20)
        .open()
        .unwrap();
    assert_eq!(
        std::fs::metadata(fx2.path()).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Regression (Perl): `permissions => "0600"` became mode 1110. Modes are numbers and
/// nonsense is refused.
#[test]
fn nonsense_modes_are_refused() {
    let fx = Fixture::new();
    for m in [600, 0o1000 | 0o600, 0o200, 0o666] {
        let err = fx.builder().mode(m).open().unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { option: "mode", .. }),
            "{m:o}: {err}"
        );
    }
    assert!(!fx.path().exists(), "nothing created");
}

#[test]
fn unsafe_existing_paths_are_refused_with_the_fix() {
    let fx = Fixture::new();
    // A symlink planted at the path.
    let target = fx.dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    std::os::unix::fs::symlink(&target, fx.path()).unwrap();
    let err = fx.builder().open().unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    std::fs::remove_file(fx.path()).unwrap();
    // A directory.
    std::fs::create_dir(fx.path()).unwrap();
    assert!(fx.builder().open().is_err());
    std::fs::remove_dir(fx.path()).unwrap();
    // A group-writable file.
    drop(fx.small(1));
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o660)).unwrap();
    let err = fx.builder().open().unwrap_err();
    assert!(
        matches!(err, Error::Incompatible { .. }) && err.to_string().contains("chmod"),
        "{err}"
    );
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // A file owned by another user (only testable as root).
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let c = std::ffi::CString::new(fx.path().to_str().unwrap()).unwrap();
        // SAFETY: valid path string.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::chown(c.as_ptr(), 12345, 12345) };
        assert_eq!(rc, 0);
        let err = fx.builder().open().unwrap_err();
        assert!(err.to_string().contains("uid 12345"), "{err}");
    }
}

#[test]
fn default_path_is_in_the_temp_dir() {
    let app = format!("fastmmap_test_{}", std::process::id());
    let s = FastMmapStore::builder()
        .app_name(&app)
        .cache_size(64 << 10)
        .open()
        .unwrap();
    let want = std::env::temp_dir().join(format!("{app}_session_data"));
    assert_eq!(s.path(), want);
    drop(s);
    std::fs::remove_file(want).unwrap();
}

#[test]
fn two_stores_on_one_file_in_one_process_share_data_and_exclude_each_other() {
    let fx = Fixture::new();
    let a = std::sync::Arc::new(fx.small(2));
    let b = std::sync::Arc::new(fx.builder().open().unwrap());
    let k = key("shared-counter");
    let threads: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            let k = k.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    s.update_with(&k, |e| {
                        let n: u64 =
                            e.map_or(0, |e| String::from_utf8_lossy(&e.value).parse().unwrap());
                        store_api::UpdateAction::set(
                            (n + 1).to_string().into_bytes(),
                            store_api::Expiry::Never,
                        )
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.get_value(&k).unwrap().unwrap(), b"1200");
    drop(a);
    // Closing one store's descriptor does not drop the other's locks (OFD semantics).
    b.set(&key("after"), b"ok").unwrap();
}

/// Regression (audit #5): a file of someone else's whose first 8 bytes are zero was
/// taken for one whose initialiser died and wiped without `init_file`.
#[test]
fn a_foreign_file_starting_with_zeroes_is_refused_and_left_alone() {
    let fx = Fixture::new();
    let mut foreign = vec![0u8; 10_000];
    foreign[8..].fill(b'x');
    std::fs::write(fx.path(), &foreign).unwrap();
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    for b in [fx.builder(), fx.builder().page_size(4096).num_pages(2)] {
        let err = b.open().unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        assert!(err.to_string().contains("zero bytes"), "{err}");
    }
    assert_eq!(std::fs::read(fx.path()).unwrap(), foreign, "file untouched");
}

/// An initialiser killed right after marking the file (even before sizing it) leaves
/// `INIT_MAGIC`; the next opener initialises the file.
#[test]
fn a_file_left_by_a_dead_initialiser_is_initialised() {
    for len in [8usize, 5000, 4096 + 2 * 4096] {
        let fx = Fixture::new();
        let mut bytes = vec![0u8; len];
        bytes[..8].copy_from_slice(b"FMINIT\r\n");
        std::fs::write(fx.path(), &bytes).unwrap();
        std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = fx.small(2);
        s.set(&key(1), b"v").unwrap();
        assert_eq!(s.get_value(&key(1)).unwrap().unwrap(), b"v", "length {len}");
    }
}

/// Regression (audit #4): `init_file` with another geometry while a store had the file
/// open let that store keep writing with its old geometry and secret (or, if the file
/// shrank, die of `SIGBUS`). Its writers now get `Incompatible` before touching a page.
#[test]
fn a_store_whose_file_was_reinitialised_with_another_geometry_refuses_to_write() {
    for (before, after) in [(4, 8), (8, 2)] {
        let fx = Fixture::new();
        let old = fx.small(before);
        // A key on the last page: beyond the end of the file once it shrinks.
        let k = support::keys_on_page(&old, before - 1, 1).remove(0);
        old.set(&k, b"v").unwrap();
        let new = fx.small_reinit(after);
        let err = old.set(&k, b"stale").unwrap_err();
        assert!(
            matches!(err, Error::Incompatible { .. }) && err.to_string().contains("init_file"),
            "{before} -> {after} pages: {err}"
        );
        assert!(matches!(old.delete(&k), Err(Error::Incompatible { .. })));
        assert!(new.get(&k).unwrap().is_none());
        new.set(&k, b"new").unwrap();
        assert_eq!(new.get_value(&k).unwrap().unwrap(), b"new");
    }
}
