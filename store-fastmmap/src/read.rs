//! The lock-free read: a key's page read inside its seqlock window, with no lock and no
//! system call. A copy is handed out only once the seqlock validated it and its checksum
//! matched; anything else (a page that kept changing, a torn or damaged record) is left
//! to the locked read in `store.rs`, which repairs the page.

use std::sync::atomic::Ordering;

use store_api::{EntryMeta, Key};

use crate::FastMmapStore;
use crate::format::checksum::{self, Copied, Fields};
use crate::format::record::{decode_expiry, version_of};
use crate::probe::{Probe, probe};
use crate::seqlock::SeqLock;

/// A reader refreshes a stamp when it is older than this many writes to the page.
pub(crate) const STALE_TICKS: u32 = 16;

/// What lock-free attempts at a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A live entry, its value in the buffer.
    Hit(EntryMeta),
    /// No live entry.
    Miss,
    /// No consistent answer: only a read under the page lock can give one.
    NeedsLock,
}

/// Up to `spins` lock-free attempts at reading `key` from its page into `buf`. Out of
/// line, one copy for both callers: the hot path is this call, its hash and its loop (an
/// extra call level, or this inlined into `get_into`, made a read of 100 bytes 5 to 15 ns
/// slower on the host of BENCHMARKS.md, `-p benches --example quickbench`).
#[inline(never)]
pub(crate) fn lock_free(store: &FastMmapStore, key: &Key, buf: &mut Vec<u8>, spins: u32) -> Read {
    let hasher = store.hasher();
    let kh = hasher.hash(key.as_bytes());
    let page = store.page(kh.page);
    // Start fetching the lines the read needs besides the page header, before the first
    // of them is loaded: the key's home slot and its LRU stamp, which the read loads
    // last (to decide whether to refresh it), so that its miss (a TLB miss too, in a
    // large page: the stamps are a 4 KiB page of their own) overlaps the others instead
    // of coming after them. Hints only: nothing is read.
    let home = crate::format::page::home(kh.tag, store.geo().nslots());
    let r = page.region();
    r.prefetch(store.geo().slots_offset() + 8 * home);
    r.prefetch(store.geo().stamps_offset() + 4 * home);
    let sl = SeqLock::new(page.seq());
    for _ in 0..spins {
        let Some(stamp) = sl.read_begin() else {
            std::hint::spin_loop();
            continue;
        };
        buf.clear();
        let mut p = probe(&page, key.as_bytes(), kh.tag);
        // A short value is copied out and its checksum computed in one pass; a long one
        // is hashed once validated.
        let mut copied = Copied::Later;
        if let Probe::Found(f) = p {
            let off = f.off + f.hdr.value_offset();
            let fields = Fields::of(kh.raw, &f.hdr);
            match checksum::copy_out(
                page.region(),
                off,
                f.hdr.vlen,
                buf,
                hasher.check_key(),
                fields,
            ) {
                Some(c) => copied = c,
                None => p = Probe::Bad("value beyond the page end"),
            }
        }
        if !sl.read_validate(stamp) {
            std::hint::spin_loop();
            continue;
        }
        match p {
            Probe::Missing => return Read::Miss,
            Probe::Bad(_) => break,
            Probe::Found(f) => {
                let expires_at = decode_expiry(f.hdr.expires);
                // Exact, and mostly without a precise clock read (see `time`). First: an
                // expired entry is absent whatever its bytes, so its checksum is not
                // compared (`expires` is outside it anyway) and a long value is not
                // hashed; a short one's CRC was computed during the copy.
                if !store.clock().is_live(expires_at) {
                    return Read::Miss;
                }
                if copied.finish(hasher, Fields::of(kh.raw, &f.hdr), buf) != f.hdr.check {
                    // Damaged by a stray write: the locked path drops the record.
                    break;
                }
                // Refresh the LRU stamp only when stale, so readers of a hot page do not
                // write its cache lines on every read. A hint: it may land on a slot a
                // writer has since reused, which costs only LRU precision.
                let tick = page.tick();
                let st = page.stamp(f.slot);
                if tick.wrapping_sub(st.load(Ordering::Relaxed)) > STALE_TICKS {
                    st.store(tick, Ordering::Relaxed);
                }
                return Read::Hit(EntryMeta {
                    expires_at,
                    version: version_of(f.hdr.version),
                });
            }
        }
    }
    Read::NeedsLock
}
