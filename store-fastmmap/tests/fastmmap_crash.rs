//! A writer SIGKILLed mid-write at each failpoint: the kernel drops its fcntl lock, the
//! next writer (or a reader after its bounded spin) repairs that page alone, every other
//! page keeps its data, no reader hangs, and the repair is counted.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use store_api::{SessionStore, SessionStoreExt};
use store_fastmmap::{Failpoint, FastMmapStore};
use support::{Fixture, crash_worker_at, keys_on_page, run_worker};

fn setup(kind: LockKind, pages: u32) -> (Fixture, FastMmapStore, Vec<store_api::Key>) {
    let fx = Fixture::of(kind);
    let s = fx.small(pages);
    let mut keys = Vec::new();
    for p in 0..pages {
        keys.extend(keys_on_page(&s, p, 6));
    }
    for k in &keys {
        s.set(k, k.as_bytes()).unwrap();
    }
    (fx, s, keys)
}

fn assert_intact(s: &FastMmapStore, keys: &[store_api::Key]) {
    for k in keys {
        assert_eq!(
            s.get_value(k).unwrap().as_deref(),
            Some(k.as_bytes()),
            "{k}"
        );
    }
}

fn crash_during_put(kind: LockKind, fp: Failpoint) {
    let (fx, s, keys) = setup(kind, 4);
    let path = fx.path();
    let p = path.to_str().unwrap();
    crash_worker_at(fp, &["put", p, "crash", "1", "100"]);
    let t = std::time::Instant::now();
    // Every key, including those on the torn page, reads back whole.
    assert_intact(&s, &keys);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "readers did not hang"
    );
    let crash = store_api::Key::new("crash0").unwrap();
    if let Some(v) = s.get_value(&crash).unwrap() {
        assert_eq!(v.len(), 100, "the crashed write is either absent or whole");
    }
    run_worker(&["read", p, "crash", "1", "1"]);
    assert_eq!(
        s.stats().unwrap().recovered,
        1,
        "exactly the torn page was repaired"
    );
    // The page works again.
    s.set(&crash, b"after").unwrap();
    assert_eq!(s.get_value(&crash).unwrap().unwrap(), b"after");
}

fn sigkill_after_begin(kind: LockKind) {
    crash_during_put(kind, Failpoint::PutAfterBegin);
}

fn sigkill_after_record_written(kind: LockKind) {
    crash_during_put(kind, Failpoint::PutAfterRecord);
}

fn sigkill_after_slot_linked(kind: LockKind) {
    crash_during_put(kind, Failpoint::PutAfterLink);
}

/// Compaction (here without eviction: a worker overwrites two keys until the page's free
/// gap runs out) killed half way: the other records of the page keep their data.
fn sigkill_mid_compaction_loses_no_other_record(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let keep: Vec<_> = (0..5).map(|i| support::key(format!("keep{i}"))).collect();
    for k in &keep {
        s.set(k, k.as_bytes()).unwrap();
    }
    let path = fx.path();
    let p = path.to_str().unwrap();
    crash_worker_at(
        Failpoint::RebuildMidData,
        &["write", p, "w", "2", "1000", "100"],
    );
    assert_intact(&s, &keep);
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 0, "the repair dropped no record");
    // Regression (audit 2, finding 1): the key being written, whose old record the slow
    // path unlinked before compacting, was gone. Both keys of the worker hold a whole
    // value (the old or the new one).
    assert_eq!(run_worker(&["read", p, "w", "2", "2"]), "ok hits 2\n");
    run_worker(&["write", p, "w", "2", "300", "100"]);
    assert_intact(&s, &keep);
}

/// Regression (audit 2, finding 1): a `rotate` within one page that needs room unlinked
/// its source before compacting and wrote its target after, so a writer killed during
/// the compaction lost the session under both names. It must survive under one of them.
fn sigkill_mid_compaction_of_a_same_page_rotate_keeps_the_session(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let (from, to) = (support::key("from"), support::key("to"));
    let value: Vec<u8> = (0..100u32).map(|i| (i * 13 + 1) as u8).collect();
    // From the page end down: `from`, a large record to delete, then fillers until the
    // free gap is smaller than `to`'s record: the rotate has to compact.
    s.set(&from, &value).unwrap();
    let hole = support::key("hole");
    s.set(&hole, &[7u8; 400]).unwrap();
    let fillers: Vec<_> = (0..12).map(|i| support::key(format!("fill{i}"))).collect();
    for k in &fillers {
        s.set(k, &[1u8; 208]).unwrap();
    }
    let st = s.stats().unwrap();
    assert_eq!((st.entries, st.evicted_live), (14, 0));
    // A 4 KiB page has 3,648 bytes of data area.
    let gap = 3648 - st.bytes_used;
    assert!(
        gap < 24 + 16 + 104,
        "free gap {gap}: the rotate must take the slow path"
    );
    assert!(s.delete(&hole).unwrap());
    let path = fx.path();
    let p = path.to_str().unwrap();
    let (f, t) = (from.to_string(), to.to_string());
    crash_worker_at(Failpoint::RebuildMidData, &["rotate", p, &f, &t]);
    let got = [s.get_value(&from).unwrap(), s.get_value(&to).unwrap()];
    assert!(
        got.iter().any(|v| v.as_deref() == Some(&value[..])),
        "the session is gone under both names: {got:?}"
    );
    for k in &fillers {
        assert_eq!(
            s.get_value(k).unwrap().as_deref(),
            Some(&[1u8; 208][..]),
            "{k}"
        );
    }
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 0, "the repair dropped no record");
}

/// A record moved onto a range overlapping its old one, killed half way through the
/// copy: the move journal puts it back together.
fn sigkill_mid_overlapping_move_is_recovered_from_the_journal(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let small = support::key("small");
    let big = support::key("big");
    let big_value: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    s.set(&small, b"tiny").unwrap(); // top of the data area
    s.set(&big, &big_value).unwrap(); // just below it
    s.delete(&small).unwrap(); // a hole smaller than `big` above it
    let path = fx.path();
    let p = path.to_str().unwrap();
    crash_worker_at(
        Failpoint::CompactMidMove,
        &["write", p, "w", "2", "1000", "100"],
    );
    assert_eq!(
        s.get_value(&big).unwrap().unwrap(),
        big_value,
        "half-moved record restored"
    );
    assert!(
        s.get(&small).unwrap().is_none(),
        "a deleted key stays deleted"
    );
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 0, "the repair dropped no record");
    // The key being written keeps its old or new value (audit 2, finding 1).
    assert_eq!(run_worker(&["read", p, "w", "2", "2"]), "ok hits 2\n");
}

/// Regression (audit 2, finding 5): the repair that finished a half-done overlapping
/// move rewrote the record bottom-up over words the journal still counted as intact at
/// the old place, so a repair killed there left a record the next repair dropped. Two
/// chained crashes (the mover, then its repairer) must lose nothing.
fn a_repair_killed_while_finishing_a_journalled_move_is_finished_by_the_next(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let small = support::key("small");
    let big = support::key("big");
    let big_value: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    s.set(&small, b"tiny").unwrap();
    s.set(&big, &big_value).unwrap();
    s.delete(&small).unwrap();
    let path = fx.path();
    let p = path.to_str().unwrap();
    crash_worker_at(
        Failpoint::CompactMidMove,
        &["write", p, "w", "2", "1000", "100"],
    );
    // The next writer of the page repairs it, finishing the move, and is killed half way.
    crash_worker_at(Failpoint::RepairMidJournal, &["put", p, "x", "1", "16"]);
    assert_eq!(
        s.get_value(&big).unwrap().unwrap(),
        big_value,
        "the record survives two chained crashes"
    );
    assert_eq!(s.lost_in_repair(), 0, "the repairs dropped no record");
    assert_eq!(run_worker(&["read", p, "w", "2", "2"]), "ok hits 2\n");
}

/// A replacement of the same size is written over the old record; killed at `fp` (half
/// way), the key is left with no value (its bytes are a mix the checksum rejects, and
/// repair drops the record), never a mix, and the page's other keys are intact.
fn crash_mid_overwrite_in_place(kind: LockKind, fp: Failpoint) {
    let (fx, s, keys) = setup(kind, 1);
    let path = fx.path();
    let p = path.to_str().unwrap();
    // `write` salts values with the worker's pid: same size, different bytes.
    run_worker(&["write", p, "same", "1", "1", "100"]);
    crash_worker_at(fp, &["write", p, "same", "1", "1", "100"]);
    assert_intact(&s, &keys);
    let k = store_api::Key::new("same0").unwrap();
    assert!(s.get(&k).unwrap().is_none(), "the torn record is dropped");
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 1, "the dropped record is counted");
    run_worker(&["write", p, "same", "1", "1", "100"]);
    run_worker(&["read", p, "same", "1", "1"]);
}

/// Killed half way through the value: old and new bytes under the old header, which
/// the checksum rejects.
fn sigkill_mid_value_of_an_overwrite_in_place(kind: LockKind) {
    crash_mid_overwrite_in_place(kind, Failpoint::MidValue);
}

/// Killed with the new key and value over the old record, before its header.
fn sigkill_mid_overwrite_in_place(kind: LockKind) {
    crash_mid_overwrite_in_place(kind, Failpoint::MidRecord);
}

/// Killed between the header's words: the new version with the old lengths and checksum
/// fails the checksum (it covers the version), so the record is dropped like a torn value.
fn sigkill_mid_header_of_an_overwrite_in_place(kind: LockKind) {
    crash_mid_overwrite_in_place(kind, Failpoint::MidHeader);
}

fn sigkill_mid_delete_shift(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let path = fx.path();
    let p = path.to_str().unwrap();
    run_worker(&["put", p, "d", "25", "16"]);
    crash_worker_at(Failpoint::DeleteMidShift, &["delete", p, "d", "25"]);
    // Deletes go in key order: keys after the one being deleted are all still there.
    let present: Vec<bool> = (0..25)
        .map(|i| {
            s.get(&store_api::Key::new(format!("d{i}")).unwrap())
                .unwrap()
                .is_some()
        })
        .collect();
    let first = present.iter().position(|&p| p).expect("some keys survive");
    assert!(present[first..].iter().all(|&p| p), "{present:?}");
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 0, "a duplicated slot is no loss");
    run_worker(&["read", p, "d", "25", "25"]);
}

/// Regression (audit #9): a writer stopped (not killed) mid-write leaves the counter odd
/// and keeps its page lock; readers of that page used to block in `F_OFD_SETLKW` until
/// it continued. Now they give up after `read_lock_timeout` with `Backend` naming the
/// page, readers of other pages are unaffected, and the page recovers once the writer
/// is killed.
fn a_stopped_writer_makes_readers_of_its_page_fail_after_the_timeout(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx
        .builder()
        .page_size(4096)
        .num_pages(2)
        .read_lock_timeout(std::time::Duration::from_millis(200))
        .open()
        .unwrap();
    let stuck = store_api::Key::new("stuck0").unwrap();
    let page = s.page_of(&stuck);
    let same = keys_on_page(&s, page, 1).remove(0);
    let other = keys_on_page(&s, 1 - page, 1).remove(0);
    s.set(&same, b"same").unwrap();
    s.set(&other, b"other").unwrap();
    let path = fx.path();
    let worker = support::stop_worker_at(
        Failpoint::PutAfterBegin,
        &["put", path.to_str().unwrap(), "stuck", "1", "100"],
    );
    let s = std::sync::Arc::new(s);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let (s, same) = (s.clone(), same.clone());
        std::thread::spawn(move || {
            let _ = tx.send(s.get_value(&same).map_err(|e| e.to_string()));
        })
    };
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    drop(worker); // SIGKILL: unblocks the reader if it is still waiting
    reader.join().unwrap();
    let err = got
        .expect("the reader returned instead of waiting for the stopped writer")
        .unwrap_err();
    assert!(
        err.contains(&format!("page {page} of")) && err.contains("SIGSTOP"),
        "{err}"
    );
    assert_eq!(s.get_value(&other).unwrap().unwrap(), b"other");
    // Killed now: the next read repairs the page.
    assert_eq!(s.get_value(&same).unwrap().unwrap(), b"same");
    assert_eq!(s.stats().unwrap().recovered, 1);
}

both_kinds!(
    sigkill_after_begin,
    sigkill_after_record_written,
    sigkill_after_slot_linked,
    sigkill_mid_compaction_loses_no_other_record,
    sigkill_mid_compaction_of_a_same_page_rotate_keeps_the_session,
    sigkill_mid_overlapping_move_is_recovered_from_the_journal,
    a_repair_killed_while_finishing_a_journalled_move_is_finished_by_the_next,
    sigkill_mid_value_of_an_overwrite_in_place,
    sigkill_mid_overwrite_in_place,
    sigkill_mid_header_of_an_overwrite_in_place,
    sigkill_mid_delete_shift,
    a_stopped_writer_makes_readers_of_its_page_fail_after_the_timeout,
);
