//! The futex lock kind's own rules: the kind is recorded and enforced, the lock table's
//! place, a holder's death taken over with the page repaired, lock words a crashed
//! machine left behind reset on the next boot, and processes of another PID namespace
//! refused while the file is in use. (The suites every kind runs are the `both_kinds!`
//! tests of `fastmmap_crash.rs`, `fastmmap_fork.rs`, `fastmmap_lock_wait.rs`,
//! `fastmmap_processes.rs`, `fastmmap_threads.rs` and `fastmmap_reentry.rs`.)
#![cfg(all(target_os = "linux", target_env = "gnu"))]

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use store_api::{Error, SessionStore, SessionStoreExt};
use store_fastmmap::{Failpoint, FastMmapStore, LockKind};
use support::{Fixture, keys_on_page, poke, run_worker};

/// Where FORMAT.md puts the futex kind's header fields and lock table.
const BOOT_ID_OFFSET: u64 = 384;
const PID_NS_OFFSET: u64 = 424;
fn mutex_offset(page_size: u32, num_pages: u32, i: u32) -> u64 {
    4096 + u64::from(page_size) * u64::from(num_pages) + 64 * u64::from(i)
}

fn futex(fx: &Fixture, pages: u32) -> FastMmapStore {
    fx.builder()
        .page_size(4096)
        .num_pages(pages)
        .lock_kind(LockKind::Futex)
        .open()
        .unwrap()
}

fn read_at(path: &std::path::Path, off: u64, n: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0; n];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, off)
        .unwrap();
    b
}

#[test]
fn the_kind_is_recorded_adopted_and_a_mismatch_refused() {
    let fx = Fixture::of(LockKind::Futex);
    let s = futex(&fx, 3);
    assert_eq!(s.lock_kind(), LockKind::Futex);
    let k = support::key("a");
    s.set(&k, b"1").unwrap();
    let len = std::fs::metadata(fx.path()).unwrap().len();
    assert_eq!(
        len,
        mutex_offset(4096, 3, 3),
        "pages, then one 64-byte line per page"
    );
    // No kind asked: the file's.
    let again = FastMmapStore::open(fx.path()).unwrap();
    assert_eq!(again.lock_kind(), LockKind::Futex);
    assert_eq!(again.get_value(&k).unwrap().unwrap(), b"1");
    // Another kind asked: refused, naming both.
    match FastMmapStore::builder()
        .storage(fx.path())
        .lock_kind(LockKind::Fcntl)
        .open()
    {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(
                reason.contains("futex") && reason.contains("fcntl"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // And the other way round.
    let fx2 = Fixture::new();
    drop(fx2.small(1));
    assert!(matches!(
        FastMmapStore::builder()
            .storage(fx2.path())
            .lock_kind(LockKind::Futex)
            .open(),
        Err(Error::Incompatible { .. })
    ));
    assert_eq!(
        FastMmapStore::open(fx2.path()).unwrap().lock_kind(),
        LockKind::Fcntl
    );
}

#[test]
fn init_file_changes_the_kind_only_when_nobody_else_has_the_file_open() {
    let fx = Fixture::of(LockKind::Futex);
    let s = futex(&fx, 2);
    let to_fcntl = || {
        FastMmapStore::builder()
            .storage(fx.path())
            .page_size(4096)
            .num_pages(2)
            .lock_kind(LockKind::Fcntl)
            .init_file(true)
            .open()
    };
    match to_fcntl() {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("futex lock kind"), "{reason}")
        }
        other => panic!("a futex user has it open: {other:?}"),
    }
    s.set(&support::key("kept"), b"v").unwrap();
    drop(s);
    let f = to_fcntl().unwrap();
    assert_eq!(f.lock_kind(), LockKind::Fcntl);
    assert_eq!(
        std::fs::metadata(fx.path()).unwrap().len(),
        4096 + 2 * 4096,
        "no lock table"
    );
    assert!(f.get(&support::key("kept")).unwrap().is_none());
}

/// SIGKILLed holding the lock: the kernel marks the mutex's owner dead, the next writer
/// takes it over (`EOWNERDEAD`), repairs the page, and marks it consistent; the page
/// works for everyone afterwards.
#[test]
fn a_holder_killed_mid_write_is_taken_over_and_its_page_repaired() {
    let fx = Fixture::of(LockKind::Futex);
    let s = futex(&fx, 2);
    let path = fx.path();
    let p = path.to_str().unwrap();
    let crash = store_api::Key::new("crash0").unwrap();
    let others = keys_on_page(&s, s.page_of(&crash), 4);
    for k in &others {
        s.set(k, k.as_bytes()).unwrap();
    }
    support::crash_worker_at(Failpoint::PutAfterRecord, &["put", p, "crash", "1", "100"]);
    let t = Instant::now();
    s.set(&crash, b"after").unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(s.lock_owners_died(), 1, "taken over from a dead owner");
    assert_eq!(s.stats().unwrap().recovered, 1, "and its page repaired");
    for k in &others {
        assert_eq!(s.get_value(k).unwrap().as_deref(), Some(k.as_bytes()));
    }
    // Consistent again: other processes lock it normally.
    run_worker(&["put", p, "crash", "1", "50"]);
    run_worker(&["read", p, "crash", "1", "1"]);
    assert_eq!(s.lock_owners_died(), 1);
}

/// A machine that dies with a page locked runs no exit: no kernel marks that lock's
/// owner dead, and its lock word names a thread of the old boot forever. Simulated here
/// by a lock word naming a thread that does not exist, and a page left mid-write (odd
/// seqlock). While any process has the file open nothing is reset (a live process could
/// hold that lock): a writer waits its timeout out, and an opener of another boot (a
/// machine sharing the file) is refused. The first opener after everyone closed it
/// resets the lock table, records its boot, and the writer repairs the page.
#[test]
fn lock_words_left_by_a_crashed_boot_are_reset_by_the_next_first_opener() {
    let fx = Fixture::of(LockKind::Futex);
    let path = fx.path();
    let (page_size, pages) = (4096, 2);
    let k = support::key("k");
    let first = futex(&fx, pages);
    first.set(&k, b"v").unwrap();
    let page = first.page_of(&k);
    // A thread id no process has (above the kernel's pid_max limit of 2^22).
    poke(
        &path,
        mutex_offset(page_size, pages, page),
        &((1u32 << 29) + 12345).to_le_bytes(),
    );
    // The page's seqlock counter, odd: a writer died mid-write.
    let seq = support::page_offset(page_size, page);
    let c = u64::from_le_bytes(read_at(&path, seq, 8).try_into().unwrap()) | 1;
    poke(&path, seq, &c.to_le_bytes());
    let timed = || {
        fx.builder()
            .write_lock_timeout(Duration::from_millis(300))
            .read_lock_timeout(Duration::from_millis(300))
            .open()
    };
    let second = timed().unwrap();
    let err = second.set(&k, b"w").unwrap_err().to_string();
    assert!(err.contains(&format!("page {page} of")), "{err}");
    let ours = read_at(&path, BOOT_ID_OFFSET, 36);
    poke(
        &path,
        BOOT_ID_OFFSET,
        b"00000000-0000-4000-8000-000000000000",
    );
    match timed() {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("another machine"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    drop((first, second));
    let s = timed().unwrap();
    assert_eq!(
        read_at(&path, BOOT_ID_OFFSET, 36),
        ours,
        "this boot's id recorded"
    );
    let t = Instant::now();
    s.set(&k, b"w").unwrap();
    assert!(t.elapsed() < Duration::from_millis(250));
    assert_eq!(s.get_value(&k).unwrap().unwrap(), b"w");
    assert_eq!(
        s.stats().unwrap().recovered,
        1,
        "the torn page was repaired"
    );
}

/// Thread ids mean something only within one PID namespace. A process of another one
/// is refused while the file is open in the first (here the namespace recorded in the
/// header is made a foreign one); once nobody has the file open, the next opener's
/// namespace is recorded instead.
#[test]
fn another_pid_namespace_is_refused_while_the_file_is_in_use() {
    let fx = Fixture::of(LockKind::Futex);
    let path = fx.path();
    let s = futex(&fx, 1);
    let ours = read_at(&path, PID_NS_OFFSET, 16);
    assert_ne!(ours, vec![0; 16], "the namespace is recorded");
    poke(&path, PID_NS_OFFSET, &[0xee; 16]);
    match FastMmapStore::open(&path) {
        Err(Error::Incompatible { reason, .. }) => assert!(
            reason.contains("PID namespace") && reason.contains("LockKind::Fcntl"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    drop(s);
    let s = FastMmapStore::open(&path).unwrap();
    assert_eq!(read_at(&path, PID_NS_OFFSET, 16), ours, "re-recorded");
    s.set(&support::key("x"), b"y").unwrap();
}

/// A child forked from a process with the file open is a user of the file too, even
/// after its parent exits: its fork refresh takes the users lock for its own open file
/// description.
#[test]
fn a_forked_child_keeps_the_file_in_use_after_its_parent_exits() {
    let fx = Fixture::of(LockKind::Futex);
    let path = fx.path();
    drop(futex(&fx, 1));
    let p = path.to_str().unwrap();
    // The parent writes and exits; its child sleeps 3 s holding the store (its output
    // not captured: the child would hold the pipes open until it exits).
    let status = support::worker()
        .args(["fork-hold", p, "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    poke(&path, PID_NS_OFFSET, &[0xee; 16]);
    assert!(
        matches!(FastMmapStore::open(&path), Err(Error::Incompatible { .. })),
        "the sleeping child still uses the file"
    );
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if FastMmapStore::open(&path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the file stayed in use after the child exited");
}

/// Real PID namespaces (root only: `unshare --pid --fork`): a worker in a new namespace
/// is refused while this process has the file open, with the fcntl kind named as the
/// fix; the fcntl kind itself works across them.
#[test]
fn a_process_in_a_new_pid_namespace_is_refused() {
    let can = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if support::skip_without_root(can, "unshare --pid needs CAP_SYS_ADMIN and util-linux") {
        return;
    }
    let in_new_ns = |args: &[&str]| {
        std::process::Command::new("unshare")
            .args(["--pid", "--fork", env!("CARGO_BIN_EXE_fastmmap-worker")])
            .args(args)
            .output()
            .unwrap()
    };
    let fx = Fixture::of(LockKind::Futex);
    let path = fx.path();
    let s = futex(&fx, 1);
    let out = in_new_ns(&["put-page", path.to_str().unwrap(), "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(
        err.contains("PID namespace") && err.contains("LockKind::Fcntl"),
        "{err}"
    );
    s.set(&support::key("still"), b"fine").unwrap();
    // The fcntl kind across namespaces.
    let fx2 = Fixture::new();
    let s2 = fx2.small(1);
    let out = in_new_ns(&["put-page", fx2.path().to_str().unwrap(), "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s2.stats().unwrap().entries, 1);
}

/// An `init_file` with other stores open holds every page's lock; the kernel releases at
/// most 2048 robust locks of a thread that dies, so a file of more than 1024 pages is
/// initialised only when nobody else has it open.
#[test]
fn a_large_file_in_use_is_not_initialised_under_its_users() {
    let fx = Fixture::of(LockKind::Futex);
    let open = |init| {
        fx.builder()
            .page_size(4096)
            .num_pages(1025)
            .init_file(init)
            .open()
    };
    let s = open(false).unwrap();
    match open(true) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(
                reason.contains("2048") && reason.contains("1025 pages"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    s.set(&support::key("still"), b"here").unwrap();
    drop(s);
    open(true).unwrap();
}

/// An initialiser that died after marking the file (`FMINIT`) while others had it open:
/// the next opener asking for the file's geometry initialises it under every page lock,
/// and the stores that had it open are told to reopen.
#[test]
fn a_file_whose_initialiser_died_in_use_is_initialised_by_the_next_opener() {
    let fx = Fixture::of(LockKind::Futex);
    let path = fx.path();
    let a = futex(&fx, 2);
    a.set(&support::key("old"), b"v").unwrap();
    poke(&path, 0, b"FMINIT\r\n");
    let b = futex(&fx, 2);
    b.set(&support::key("new"), b"w").unwrap();
    assert_eq!(b.get_value(&support::key("new")).unwrap().unwrap(), b"w");
    assert!(
        b.get(&support::key("old")).unwrap().is_none(),
        "initialised"
    );
    match a.set(&support::key("x"), b"y") {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("open the file again")),
        other => panic!("{other:?}"),
    }
    // Another geometry still may not move the table under `b`.
    assert!(matches!(
        fx.builder()
            .page_size(4096)
            .num_pages(3)
            .init_file(true)
            .open(),
        Err(Error::Incompatible { .. })
    ));
}
