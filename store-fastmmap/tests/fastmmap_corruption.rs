//! Damaged pages: validated before they are trusted, repaired or re-initialised alone,
//! never a panic, a hang or a wrong value.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use store_api::{Error, Expiry, Key, SessionStore, SessionStoreExt};
use store_fastmmap::FastMmapStore;
use support::{CUTOFF_LENS, Fixture, key, keys_on_page, page_offset, poke};

const PS: u32 = 4096;
/// Offset of a page header's `data_lo` field (docs/FORMAT.md, "Page layout").
const DATA_LO: u64 = 20;

/// Puts `n` keys on each of `pages` pages; returns them per page.
fn filled(s: &store_fastmmap::FastMmapStore, pages: u32, n: usize) -> Vec<Vec<store_api::Key>> {
    (0..pages)
        .map(|p| {
            let ks = keys_on_page(s, p, n);
            for k in &ks {
                s.set(k, k.as_bytes()).unwrap();
            }
            ks
        })
        .collect()
}

fn assert_intact(s: &store_fastmmap::FastMmapStore, keys: &[store_api::Key]) {
    for k in keys {
        assert_eq!(
            s.get_value(k).unwrap().as_deref(),
            Some(k.as_bytes()),
            "{k}"
        );
    }
}

/// Regression (Cache::FastMmap issue #26): a page whose header disagrees with its slot
/// table made every later writer there crash. Here the header is validated, the page
/// repaired, its records kept.
fn a_page_header_that_disagrees_with_its_slot_table_is_repaired(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(3);
    let keys = filled(&s, 3, 10);
    // count = 0xffff (above the slot limit), data_lo past the page end.
    poke(
        &fx.path(),
        page_offset(PS, 1) + 16,
        &0xffffu32.to_le_bytes(),
    );
    poke(
        &fx.path(),
        page_offset(PS, 1) + DATA_LO,
        &(PS + 8).to_le_bytes(),
    );
    s.set(&keys[1][0], b"new").unwrap();
    assert_eq!(s.get_value(&keys[1][0]).unwrap().unwrap(), b"new");
    assert_intact(&s, &keys[1][1..]);
    assert_intact(&s, &keys[0]);
    assert_intact(&s, &keys[2]);
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.stats().unwrap().entries, 30);
}

fn a_count_too_small_for_the_slot_table_does_not_loop_or_return_wrong_values(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let keys = filled(&s, 1, 20);
    poke(&fx.path(), page_offset(PS, 0) + 16, &0u32.to_le_bytes());
    // Writes past the real capacity of the slot table must not loop or corrupt.
    for i in 0..40 {
        s.set(&key(format!("more{i}")), b"x").unwrap();
    }
    for k in keys.iter().flatten() {
        if let Some(v) = s.get_value(k).unwrap() {
            assert_eq!(v, k.as_bytes());
        }
    }
}

/// Regression (audit #8): a delete that brought a damaged (too small) `count` to 0
/// reset the data area while records were still linked; the next write then overwrote
/// them. Now the page is repaired instead, and every other record survives.
fn a_delete_that_brings_a_damaged_count_to_zero_keeps_the_other_records(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let keys = filled(&s, 1, 6).remove(0);
    poke(&fx.path(), page_offset(PS, 0) + 16, &1u32.to_le_bytes());
    assert!(s.delete(&keys[0]).unwrap());
    for i in 0..4 {
        s.set(&key(format!("new{i}")), &[i; 40]).unwrap();
    }
    assert_intact(&s, &keys[1..]);
    for i in 0..4 {
        assert_eq!(
            s.get_value(&key(format!("new{i}"))).unwrap().unwrap(),
            [i; 40]
        );
    }
    assert!(s.get(&keys[0]).unwrap().is_none());
    let st = s.stats().unwrap();
    assert_eq!((st.entries, st.recovered), (9, 1), "{st:?}");
}

fn garbage_slots_never_panic_and_get_repaired(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let keys = filled(&s, 2, 10);
    // Every slot of page 0 points far outside the page / at misaligned offsets.
    let mut junk = Vec::new();
    for i in 0..32u64 {
        junk.extend_from_slice(&(0xdead_0000_0000_0001u64.wrapping_mul(i + 1)).to_le_bytes());
    }
    poke(&fx.path(), page_offset(PS, 0) + 64, &junk);
    // Reads see a bad page: fall back to the lock, which repairs it.
    for k in &keys[0] {
        let v = s.get_value(k).unwrap();
        assert!(v.is_none() || v.as_deref() == Some(k.as_bytes()));
    }
    assert!(s.stats().unwrap().recovered >= 1);
    assert_intact(&s, &keys[1]);
    s.set(&keys[0][0], b"again").unwrap();
    assert_eq!(s.get_value(&keys[0][0]).unwrap().unwrap(), b"again");
}

/// A one-page store holding five keys (each key's value is its own bytes).
fn five_on_one_page(
    kind: LockKind,
) -> (Fixture, store_fastmmap::FastMmapStore, Vec<store_api::Key>) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let keys = filled(&s, 1, 5).remove(0);
    (fx, s, keys)
}

/// The offset in the file of the value of the record written last on page 0 (the
/// lowest record: `data_lo`).
fn last_value_offset(fx: &Fixture, key_len: usize) -> u64 {
    let b = std::fs::read(fx.path()).unwrap();
    let o = (page_offset(PS, 0) + DATA_LO) as usize;
    let data_lo = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    page_offset(PS, 0) + u64::from(data_lo) + 24 + key_len.next_multiple_of(8) as u64
}

/// A stray write into a record's value bytes, the seqlock counter untouched: an upsert
/// of that key replaces the record whatever its old bytes (in place when the size is the
/// same, appended otherwise) and nothing else is lost or repaired.
fn an_upsert_replaces_a_record_whose_value_was_damaged(kind: LockKind) {
    for new_value in [
        None,
        Some(&b"a longer value than the key itself, appended"[..]),
    ] {
        let (fx, s, keys) = five_on_one_page(kind);
        let last = keys.last().unwrap();
        poke(&fx.path(), last_value_offset(&fx, last.len()), &[0xff]);
        let value = new_value.unwrap_or(last.as_bytes());
        s.set(last, value).unwrap();
        assert_eq!(s.get_value(last).unwrap().as_deref(), Some(value));
        assert_intact(&s, &keys[..4]);
        let st = s.stats().unwrap();
        assert_eq!((st.recovered, st.lost_in_repair, st.entries), (0, 0, 5));
    }
}

/// Every key of `keys` reads back as its own value (`value_of`) or as nothing; returns how
/// many read nothing.
fn own_or_nothing(
    s: &store_fastmmap::FastMmapStore,
    keys: &[store_api::Key],
    value_of: impl Fn(&store_api::Key) -> Vec<u8>,
) -> usize {
    keys.iter()
        .filter(|k| match s.get_value(k).unwrap() {
            Some(v) => {
                assert_eq!(v, value_of(k), "{k} read a value never written for it");
                false
            }
            None => true,
        })
        .count()
}

/// The damage an upsert does not contain (FORMAT.md, "Seqlock (per page)"): a stray write
/// sets a record's value length to the size of its key's next upsert, which then writes
/// over the records above it. No read may return a value that was not written for its
/// key, through that upsert and the evictions and compactions after it.
fn an_upsert_over_a_lying_length_never_makes_a_read_return_a_wrong_value(kind: LockKind) {
    let (fx, s, keys) = five_on_one_page(kind);
    let last = keys.last().unwrap();
    let new_value = vec![b'n'; 200];
    // `lens` of the last record (value length in bits 0..24, key length above), 16 bytes
    // into the record: now it claims exactly the size of the upsert below.
    let lens = new_value.len() as u32 | ((last.len() as u32) << 24);
    poke(
        &fx.path(),
        last_value_offset(&fx, last.len()) - last.len().next_multiple_of(8) as u64 - 8,
        &lens.to_le_bytes(),
    );
    s.set(last, &new_value).unwrap();
    let value_of = |k: &store_api::Key| {
        if k == last {
            new_value.clone()
        } else {
            k.as_bytes().to_vec()
        }
    };
    let missing = own_or_nothing(&s, &keys, value_of);
    assert!(
        missing >= 1,
        "the upsert spilled over at least one neighbour"
    );
    // Many more writes: evictions, compactions and repairs of the damaged page.
    let more = keys_on_page(&s, 0, 300);
    for k in &more {
        s.set(k, k.as_bytes()).unwrap();
    }
    own_or_nothing(&s, &keys, value_of);
    let present = more.len() - own_or_nothing(&s, &more, |k| k.as_bytes().to_vec());
    assert!(
        present > 10,
        "the page still works: {present} recent keys present"
    );
}

/// Three records of `len`-byte values on one page, the lowest one's last value byte
/// flipped by a stray write (the seqlock counter untouched).
fn damaged_last_value(kind: LockKind, len: usize) -> (Fixture, FastMmapStore, Vec<(Key, Vec<u8>)>) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let entries: Vec<(Key, Vec<u8>)> = keys_on_page(&s, 0, 3)
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, (0..len).map(|j| (j * 7 + i * 13 + 1) as u8).collect()))
        .collect();
    for (k, v) in &entries {
        s.set(k, v).unwrap();
    }
    let (last, v) = entries.last().unwrap();
    let at = last_value_offset(&fx, last.len()) + len as u64 - 1;
    poke(&fx.path(), at, &[!v[len - 1]]);
    (fx, s, entries)
}

/// The two records `damaged_last_value` left alone read back whole.
fn assert_others_intact(s: &FastMmapStore, entries: &[(Key, Vec<u8>)], what: &str) {
    for (k, v) in &entries[..entries.len() - 1] {
        assert_eq!(s.get_value(k).unwrap().as_ref(), Some(v), "{what}: {k}");
    }
}

/// Whichever checksum its length gives a record, a damaged value is caught on every path
/// that checks one: a lock-free read (which then takes the lock, whose check drops the
/// record), a conditional write (which verifies the entry it looks at), and the repair of
/// a page whose writer died. Nothing else is lost.
fn a_damaged_value_is_caught_either_side_of_the_checksum_cutoff(kind: LockKind) {
    // An empty value has no byte to damage.
    for len in CUTOFF_LENS.into_iter().filter(|&n| n > 0) {
        let what = format!("{len} B, lock-free read");
        let (_fx, s, entries) = damaged_last_value(kind, len);
        let (last, _) = entries.last().unwrap();
        assert_eq!(s.get_value(last).unwrap(), None, "{what}");
        assert_eq!(s.lost_in_repair(), 1, "{what}");
        assert_others_intact(&s, &entries, &what);

        let what = format!("{len} B, conditional write");
        let (_fx, s, entries) = damaged_last_value(kind, len);
        let (last, _) = entries.last().unwrap();
        let err = s.replace(last, b"v2", Expiry::Never).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{what}: {err}");
        assert_eq!(s.lost_in_repair(), 1, "{what}");
        assert_others_intact(&s, &entries, &what);

        let what = format!("{len} B, repair after a dead writer");
        let (fx, s, entries) = damaged_last_value(kind, len);
        let (last, _) = entries.last().unwrap();
        poke(&fx.path(), page_offset(PS, 0), &1u64.to_le_bytes());
        assert_others_intact(&s, &entries, &what);
        assert_eq!(s.stats().unwrap().recovered, 1, "{what}");
        assert_eq!(s.lost_in_repair(), 1, "{what}");
        assert_eq!(s.get_value(last).unwrap(), None, "{what}");
    }
}

/// The same damage under a conditional write: the mode looks at the current entry, so
/// the record is verified first, found damaged, and dropped by a repair (counted).
fn a_conditional_write_verifies_a_damaged_record_first(kind: LockKind) {
    let (fx, s, keys) = five_on_one_page(kind);
    let last = keys.last().unwrap();
    poke(&fx.path(), last_value_offset(&fx, last.len()), &[0xff]);
    let err = s
        .replace(last, b"v2", store_api::Expiry::Never)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(s.lost_in_repair(), 1);
    s.create(last, b"v3", store_api::Expiry::Never).unwrap();
    assert_eq!(s.get_value(last).unwrap().unwrap(), b"v3");
    assert_intact(&s, &keys[..4]);
}

fn a_damaged_value_is_dropped_by_the_checksum_on_repair(kind: LockKind) {
    let (fx, s, keys) = five_on_one_page(kind);
    // The last record written sits at the lowest offset; flip a value byte in the data
    // area's first record and make the page odd (a writer died there).
    let last = keys.last().unwrap();
    poke(&fx.path(), last_value_offset(&fx, last.len()), &[0xff]);
    poke(&fx.path(), page_offset(PS, 0), &1u64.to_le_bytes());
    for k in &keys {
        if let Some(v) = s.get_value(k).unwrap() {
            assert_eq!(
                v,
                k.as_bytes(),
                "a repaired page never returns a damaged value"
            );
        }
    }
    let present = keys.iter().filter(|k| s.get(k).unwrap().is_some()).count();
    assert_eq!(present, 4, "exactly the damaged record was dropped");
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_eq!(s.lost_in_repair(), 1, "and counted as lost");
    assert_eq!(
        s.stats().unwrap().lost_in_repair,
        1,
        "and reported in Stats"
    );
}

fn an_odd_counter_left_by_a_dead_writer_does_not_hang_readers(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let keys = filled(&s, 2, 5);
    poke(&fx.path(), page_offset(PS, 1), &7u64.to_le_bytes());
    let t = std::time::Instant::now();
    assert_intact(&s, &keys[1]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(s.stats().unwrap().recovered, 1);
    assert_intact(&s, &keys[0]);
}

fn random_garbage_over_a_page_is_survived(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(3);
    let keys = filled(&s, 3, 8);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..30 {
        let mut junk = vec![0u8; 512];
        for b in junk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let at = (x % u64::from(PS - 512)) & !7;
        poke(&fx.path(), page_offset(PS, 1) + at, &junk);
        if round % 3 == 0 {
            poke(
                &fx.path(),
                page_offset(PS, 1),
                &(2 * round + 1u64).to_le_bytes(),
            );
        }
        for k in &keys[1] {
            match s.get_value(k) {
                Ok(Some(v)) => assert!(
                    v == k.as_bytes() || v == b"rewritten",
                    "wrong value for {k}"
                ),
                Ok(None) => {}
                Err(e) => assert!(matches!(e, Error::Corrupted { .. }), "{e}"),
            }
            let _ = s.set(k, b"rewritten");
        }
        assert_intact(&s, &keys[0]);
        assert_intact(&s, &keys[2]);
    }
}

fn versions_are_not_reused_after_a_page_repair(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let k = key("v");
    let mut seen = std::collections::HashSet::new();
    for round in 0..5u64 {
        for _ in 0..10 {
            assert!(seen.insert(s.set(&k, b"x").unwrap().version));
        }
        s.delete(&k).unwrap();
        // A dead writer's odd counter, and a zeroed page version counter.
        poke(
            &fx.path(),
            page_offset(PS, 0),
            &(2 * round + 1).to_le_bytes(),
        );
        poke(&fx.path(), page_offset(PS, 0) + 56, &0u64.to_le_bytes());
    }
    assert!(seen.insert(s.set(&k, b"x").unwrap().version));
    assert_eq!(s.stats().unwrap().recovered, 5);
}

both_kinds!(
    a_page_header_that_disagrees_with_its_slot_table_is_repaired,
    a_count_too_small_for_the_slot_table_does_not_loop_or_return_wrong_values,
    a_delete_that_brings_a_damaged_count_to_zero_keeps_the_other_records,
    garbage_slots_never_panic_and_get_repaired,
    an_upsert_replaces_a_record_whose_value_was_damaged,
    an_upsert_over_a_lying_length_never_makes_a_read_return_a_wrong_value,
    a_damaged_value_is_caught_either_side_of_the_checksum_cutoff,
    a_conditional_write_verifies_a_damaged_record_first,
    a_damaged_value_is_dropped_by_the_checksum_on_repair,
    an_odd_counter_left_by_a_dead_writer_does_not_hang_readers,
    random_garbage_over_a_page_is_survived,
    versions_are_not_reused_after_a_page_repair,
);
