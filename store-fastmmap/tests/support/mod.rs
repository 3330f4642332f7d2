//! Shared helpers for the integration tests (included with `mod support;`; a folder, so
//! that it is not a test target of its own).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_api::{Key, ManualClock};
use store_fastmmap::{FastMmapBuilder, FastMmapStore, LockKind};

/// Runs each named test function (taking a [`LockKind`]) once per lock kind, as the
/// tests `fcntl::NAME` and `futex::NAME` (the latter on Linux with glibc).
#[macro_export]
macro_rules! both_kinds {
    ($($name:ident),* $(,)?) => {
        mod fcntl {
            $(#[test] fn $name() { super::$name(store_fastmmap::LockKind::Fcntl) })*
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        mod futex {
            $(#[test] fn $name() { super::$name(store_fastmmap::LockKind::Futex) })*
        }
    };
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    /// The lock kind of the files its builder creates.
    pub kind: LockKind,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::of(LockKind::Fcntl)
    }

    /// A fixture whose files are created with lock kind `kind`.
    pub fn of(kind: LockKind) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::default(),
            kind,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("sessions")
    }

    pub fn builder(&self) -> FastMmapBuilder {
        FastMmapStore::builder()
            .storage(self.path())
            .clock(Arc::new(self.clock.clone()))
            .lock_kind(self.kind)
    }

    /// A small store: `pages` pages of 4 KiB.
    pub fn small(&self, pages: u32) -> FastMmapStore {
        self.builder()
            .page_size(4096)
            .num_pages(pages)
            .open()
            .unwrap()
    }

    /// As [`Fixture::small`], re-initialising the file (`init_file`).
    pub fn small_reinit(&self, pages: u32) -> FastMmapStore {
        self.builder()
            .page_size(4096)
            .num_pages(pages)
            .init_file(true)
            .open()
            .unwrap()
    }
}

pub fn key(s: impl std::fmt::Display) -> Key {
    Key::new(format!("session:{s}")).unwrap()
}

/// Value lengths either side of the record checksum's cutoff (CRC-32C up to 128 bytes,
/// keyed XXH3 above: docs/FORMAT.md, "Record layout"), with an empty, a one-byte, a
/// one-word, a short and a long value. Three records of each fit a 4 KiB page.
pub const CUTOFF_LENS: [usize; 8] = [0, 1, 8, 100, 127, 128, 129, 1000];

/// Keys that all hash to page `page` of `store`.
pub fn keys_on_page(store: &FastMmapStore, page: u32, n: usize) -> Vec<Key> {
    (0..)
        .map(key)
        .filter(|k| store.page_of(k) == page)
        .take(n)
        .collect()
}

/// Writes `bytes` at `offset` of the file with `pwrite` (seen through every mapping).
pub fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// File offset of page `i` for a page size, for files no store has open; where one is,
/// `FastMmapStore::page_range` is the engine's own answer (`fastmmap_open.rs` checks that
/// the two agree).
pub fn page_offset(page_size: u32, i: u32) -> u64 {
    4096 + u64::from(i) * u64::from(page_size)
}

/// The worker binary.
pub fn worker() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_fastmmap-worker"))
}

/// Runs the worker to completion; panics with its stderr unless it printed `ok`.
pub fn run_worker(args: &[&str]) -> String {
    let out = worker().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with("ok"),
        "worker {args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Spawns the worker with `FASTMMAP_FAILPOINT=fp`, waits until it stops there (page
/// locked, mid-write), then SIGKILLs it.
pub fn crash_worker_at(fp: store_fastmmap::Failpoint, args: &[&str]) {
    drop(stop_worker_at(fp, args));
}

/// A worker stopped at a failpoint, alive and holding its page lock (like a writer
/// stopped by `SIGSTOP`), or any worker a test must not leave running if it panics;
/// SIGKILLed when dropped.
pub struct Stopped(pub std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

/// Spawns the worker with `FASTMMAP_FAILPOINT=fp`; the receiver gets the failpoint line
/// when it stops there, and is dropped unanswered if it exits first.
fn spawn_armed(
    fp: store_fastmmap::Failpoint,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = worker()
        .args(args)
        .env("FASTMMAP_FAILPOINT", fp.name())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("FAILPOINT") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    (child, rx)
}

/// Spawns the worker with `FASTMMAP_FAILPOINT=fp` and waits until it stops there.
pub fn stop_worker_at(fp: store_fastmmap::Failpoint, args: &[&str]) -> Stopped {
    let (child, rx) = spawn_armed(fp, args);
    let got = rx.recv_timeout(std::time::Duration::from_secs(60));
    let stopped = Stopped(child);
    let line =
        got.unwrap_or_else(|_| panic!("worker {args:?} never reached failpoint {}", fp.name()));
    assert_eq!(line, format!("FAILPOINT {}", fp.name()));
    stopped
}

/// Spawns the worker with `FASTMMAP_FAILPOINT=fp`; if it stops there, SIGKILLs it and
/// returns true; if it exits first (it never reached `fp`), returns false.
pub fn stop_worker_at_or_exit(fp: store_fastmmap::Failpoint, args: &[&str]) -> bool {
    let (child, rx) = spawn_armed(fp, args);
    let reached = rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok();
    drop(Stopped(child));
    reached
}

/// Spawns `n` workers that upsert one key of `path` in a loop until killed.
pub fn hot_writers(path: &str, n: usize) -> Vec<Stopped> {
    (0..n)
        .map(|_| {
            Stopped(
                worker()
                    .args(["write", path, "hot", "1", "1000000000", "100"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect()
}

/// Skips a test that needs root (printing why), unless `FASTMMAP_REQUIRE_ROOT` is set (CI,
/// which runs as root, sets it): then a missing capability fails the test.
pub fn skip_without_root(capable: bool, why: &str) -> bool {
    if capable {
        return false;
    }
    assert!(
        std::env::var_os("FASTMMAP_REQUIRE_ROOT").is_none(),
        "FASTMMAP_REQUIRE_ROOT is set but this test cannot run: {why}"
    );
    eprintln!("skipped: {why}");
    true
}
