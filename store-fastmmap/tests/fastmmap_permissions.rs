//! Who can read the file (audit 2, finding 4): the umask is honoured, files others can
//! read and directories others can write are refused, a setgid directory's group gets
//! no access, and a missing storage directory is created owner-only.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use store_api::{Error, SessionStoreExt};
use store_fastmmap::FastMmapStore;
use support::{Fixture, key, worker};

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(p: &std::path::Path, uid: u32, gid: u32) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid path string.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown {}", p.display());
}

/// Regression: the file was `fchmod`ed to the mode asked for, so an administrator's
/// umask 077 still gave a group-readable 0640 file.
#[test]
fn the_umask_narrows_the_mode_of_a_new_file() {
    let fx = Fixture::new();
    let path = fx.path();
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(worker().get_program())
        .args(["open", path.to_str().unwrap(), "4096", "1", "k"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode & 0o077, 0, "mode {mode:o} under umask 077");
}

/// Regression: a file others could read (every session and the hash secret) was
/// accepted as long as they could not write it.
#[test]
fn an_existing_file_others_can_read_is_refused() {
    let fx = Fixture::new();
    let s = fx.small(1);
    s.set(&key(1), b"secret").unwrap();
    drop(s);
    for mode in [0o644, 0o604] {
        std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let err = fx.builder().open().unwrap_err();
        assert!(
            matches!(err, Error::Incompatible { .. }) && err.to_string().contains("chmod o-rwx"),
            "{mode:o}: {err}"
        );
    }
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let s = fx.builder().open().unwrap();
    assert_eq!(
        s.get_value(&key(1)).unwrap().as_deref(),
        Some(&b"secret"[..])
    );
}

/// Regression: the directory was not checked, so a directory another user could write
/// (and so rename or replace the file in) was accepted.
#[test]
fn a_directory_others_can_write_is_refused_unless_sticky() {
    let fx = Fixture::new();
    let dir = fx.dir.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.join("sessions");
    let err = FastMmapStore::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::Incompatible { .. }) && err.to_string().contains("chmod go-w"),
        "{err}"
    );
    assert!(!path.exists(), "nothing created");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    FastMmapStore::open(&path).unwrap();
}

/// Regression: a setgid directory of another group gave the new file that group, whose
/// members could then read every session. Needs root (CI runs as root).
#[test]
fn a_setgid_directory_gives_the_file_no_foreign_group() {
    if support::skip_without_root(is_root(), "needs root to make a directory of another group") {
        return;
    }
    let fx = Fixture::new();
    let dir = fx.dir.path().join("setgid");
    std::fs::create_dir(&dir).unwrap();
    chown(&dir, 0, 54321);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let path = dir.join("sessions");
    match FastMmapStore::open(&path) {
        Ok(_) => {
            let gid = std::fs::metadata(&path).unwrap().gid();
            // SAFETY: getegid has no preconditions.
            #[allow(unsafe_code)]
            let mine = unsafe { libc::getegid() };
            assert_eq!(gid, mine, "the file has the process's own group");
        }
        Err(e) => assert!(matches!(e, Error::Incompatible { .. }), "{e}"),
    }
    // An existing file readable by a group the process is not in is refused.
    chown(&path, 0, 54321);
    let err = FastMmapStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("group 54321"), "{err}");
}

/// Regression (from the Catalyst store's tests): a missing storage directory was an I/O
/// error; the Catalyst store creates it. Created owner-only.
#[test]
fn a_missing_storage_directory_is_created_owner_only() {
    let fx = Fixture::new();
    let path = fx.dir.path().join("var/app/sessions");
    let s = FastMmapStore::builder()
        .storage(&path)
        .cache_size(64 << 10)
        .open()
        .unwrap();
    s.set(&key(1), b"v").unwrap();
    for d in ["var", "var/app"] {
        let mode = std::fs::metadata(fx.dir.path().join(d))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{d}: {:o}", mode & 0o7777);
    }
}

/// A umask that takes the owner's own bits (0277) still leaves the owner able to open the
/// file read-write again (every later open, and a forked child's, needs it).
#[test]
fn a_umask_taking_the_owners_bits_leaves_a_file_the_owner_can_reopen() {
    let fx = Fixture::new();
    let path = fx.path();
    let p = path.to_str().unwrap();
    let run = |umask: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
            .arg(worker().get_program())
            .args(["open", p, "4096", "1", "k"])
            .output()
            .unwrap()
    };
    let out = run("0277");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let again = run("0022");
    assert!(
        !again.status.success(),
        "create-only of the same key fails, after opening: {}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A storage directory that is a symbolic link another user planted is refused (one of
/// this user's or root's, such as `/var/run`, is followed). Needs root to plant it.
#[test]
fn a_storage_directory_symlinked_by_another_user_is_refused() {
    if support::skip_without_root(is_root(), "needs root to plant a link as another user") {
        return;
    }
    let fx = Fixture::new();
    let real = fx.dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = fx.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // Ours: followed.
    FastMmapStore::open(link.join("sessions")).unwrap();
    let c = std::ffi::CString::new(link.to_str().unwrap()).unwrap();
    // SAFETY: a valid path string.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::lchown(c.as_ptr(), 12345, 12345) };
    assert_eq!(rc, 0);
    let err = FastMmapStore::open(link.join("sessions")).unwrap_err();
    assert!(
        matches!(err, Error::Incompatible { .. }) && err.to_string().contains("uid 12345"),
        "{err}"
    );
}
