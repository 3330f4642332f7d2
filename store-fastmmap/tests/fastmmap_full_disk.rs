//! A full filesystem is an error at open, not `SIGBUS` in a writer (audit 2, finding 3).
//!
//! The file used to be sparse: on a tmpfs smaller than the cache (a container's 64 MiB
//! `/dev/shm`) the first store into a block the filesystem could not provide killed the
//! writer with `SIGBUS`, and every writer after it. The tests mount a 2 MiB tmpfs, which
//! needs root (CI runs as root); elsewhere they are skipped with a printed reason.

mod support;

use std::os::unix::process::ExitStatusExt;

use support::worker;

/// A tmpfs of `size` mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if support::skip_without_root(ok, "cannot mount a tmpfs here (needs root)") {
            return None;
        }
        Some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

fn run(args: &[&str]) -> std::process::Output {
    worker().args(args).output().unwrap()
}

#[test]
fn a_cache_larger_than_the_filesystem_is_refused_at_open() {
    let Some(fs) = Tmpfs::mount("2m") else { return };
    let path = fs.dir.path().join("sessions");
    let p = path.to_str().unwrap();
    // 8 MiB of pages on a 2 MiB filesystem.
    let opened = run(&["open", p, "65536", "128", "k"]);
    let stderr = String::from_utf8_lossy(&opened.stderr).into_owned();
    assert_eq!(opened.status.signal(), None, "the opener died: {stderr}");
    let wrote = run(&["put", p, "k", "20000", "100"]);
    assert_eq!(
        wrote.status.signal(),
        None,
        "a writer died of a signal (SIGBUS is 7): {}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    assert!(!opened.status.success(), "the open should fail");
    assert!(
        stderr.contains("filesystem is full") && stderr.contains(p) && stderr.contains("bytes"),
        "the error names the file, its size and the cause: {stderr}"
    );
}

#[test]
fn a_cache_that_fits_is_written_full_without_a_signal() {
    let Some(fs) = Tmpfs::mount("2m") else { return };
    let path = fs.dir.path().join("sessions");
    let p = path.to_str().unwrap();
    // 1 MiB of pages, then another file takes the rest of the filesystem.
    let opened = run(&["open", p, "65536", "16", "k"]);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let filler = fs.dir.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let wrote = run(&["put", p, "k", "12000", "100"]);
    assert!(
        wrote.status.success(),
        "{:?}: {}",
        wrote.status,
        String::from_utf8_lossy(&wrote.stderr)
    );
}
