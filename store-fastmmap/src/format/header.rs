//! The file header: the first 4 KiB of the file.
//!
//! ```text
//!  +-----------------------------------------------------------------+
//!  |                        magic "FMSESS\r\n"                       |   0
//!  +--------------------------------+--------------------------------+
//!  |         format_version         |           header_len           |   8
//!  +--------------------------------+--------------------------------+
//!  |           page_size            |           num_pages            |  16
//!  +--------------------------------+--------------------------------+
//!  |         slots_per_page         |       record_header_len        |  24
//!  +--------------------------------+--------------------------------+
//!  |                           created_ms                            |  32
//!  +-----------------------------------------------------------------+
//!  |                            checksum                             |  40
//!  +-----------------------------------------------------------------+
//!  |            lock_kind           |      reserved, zero (12 bytes)  |  48
//!  +-----------------------------------------------------------------+
//!  |                 hash secret (192 bytes, 24 rows)                |  64
//!  +-----------------------------------------------------------------+
//!  |    next_version (its cache line, 256..320, holds nothing else)  | 256
//!  +-----------------------------------------------------------------+
//!  |                   reserved, zero (up to 320)                    | 264
//!  +-----------------------------------------------------------------+
//!  |        file-wide counters (4 rows, see `FileCounter`)           | 320
//!  +-----------------------------------------------------------------+
//!  |                      reserved, zero (up to 384)                 | 352
//!  +-----------------------------------------------------------------+
//!  |  futex kind: boot id (36 ASCII bytes + 4 zero), PID namespace   | 384
//!  |  (device u64, inode u64), all zero until first opened           |
//!  +-----------------------------------------------------------------+
//!  |                   reserved, zero (up to 4096)                   | 440
//!  +-----------------------------------------------------------------+
//! ```
//! All integers little-endian. The initialiser, holding the fcntl lock on the header
//! range `[0, 4096)`, first writes [`INIT_MAGIC`] (before it sizes the file), and the
//! real magic last (release); a file still starting with `INIT_MAGIC` had an initialiser
//! die. `checksum` is xxh3-64 of bytes `[0, 256)` with the checksum field zeroed.

use super::geometry::{BYTES_PER_SLOT, Geometry};
use super::record::RECORD_HEADER_LEN;
use super::region::Region;
use std::sync::atomic::Ordering;

/// Length of the header; pages start here.
pub(crate) const HEADER_LEN: usize = 4096;
/// File magic.
pub(crate) const MAGIC: [u8; 8] = *b"FMSESS\r\n";
/// Magic of a file being initialised (written before the file is sized).
pub(crate) const INIT_MAGIC: [u8; 8] = *b"FMINIT\r\n";
/// The format version this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 2;

pub(crate) const MAGIC_OFFSET: usize = 0;
pub(crate) const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
pub(crate) const HEADER_LEN_OFFSET: usize = VERSION_OFFSET + 4;
pub(crate) const PAGE_SIZE_OFFSET: usize = HEADER_LEN_OFFSET + 4;
pub(crate) const NUM_PAGES_OFFSET: usize = PAGE_SIZE_OFFSET + 4;
pub(crate) const SLOTS_OFFSET: usize = NUM_PAGES_OFFSET + 4;
pub(crate) const RECORD_HEADER_OFFSET: usize = SLOTS_OFFSET + 4;
pub(crate) const CREATED_OFFSET: usize = RECORD_HEADER_OFFSET + 4;
pub(crate) const CHECKSUM_OFFSET: usize = CREATED_OFFSET + 8;
/// The lock kind (u32, `LockKind::to_header`; 0, fcntl, in files from before it).
pub(crate) const LOCK_KIND_OFFSET: usize = CHECKSUM_OFFSET + 8;
pub(crate) const SECRET_OFFSET: usize = 64;
/// Bytes of the hash secret.
pub(crate) const SECRET_LEN: usize = 192;
/// End of the checksummed static part.
pub(crate) const STATIC_END: usize = SECRET_OFFSET + SECRET_LEN;
pub(crate) const NEXT_VERSION_OFFSET: usize = STATIC_END;

/// Where the file-wide counters start: a cache line of their own after `next_version`'s,
/// in what files before them had zero (so an older file starts counting from zero).
pub(crate) const COUNTERS_OFFSET: usize = 320;
const _: () = assert!(COUNTERS_OFFSET >= NEXT_VERSION_OFFSET + 64 && COUNTERS_OFFSET + 32 <= HEADER_LEN);

/// The futex kind's record of who may trust the lock words: the boot id the lock table
/// was last reset in (36 bytes, padded to 40), then the PID namespace of the processes
/// using the file (device, inode). Written under the header lock only.
pub(crate) const BOOT_ID_OFFSET: usize = 384;
/// Bytes of the boot id field (the 36-byte UUID and 4 zero bytes).
pub(crate) const BOOT_ID_LEN: usize = 40;
/// The PID namespace field (two u64).
pub(crate) const PID_NS_OFFSET: usize = BOOT_ID_OFFSET + BOOT_ID_LEN;
const _: () = assert!(BOOT_ID_OFFSET >= COUNTERS_OFFSET + 32 && PID_NS_OFFSET + 16 <= HEADER_LEN);

/// A file-wide counter in the header, added to by every process (relaxed `fetch_add`s,
/// on the rare paths only: evictions and repairs), zeroed at initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileCounter {
    /// Live entries evicted to make room (offset 320).
    EvictedLive = 0,
    /// Expired entries reclaimed to make room (offset 328).
    EvictedExpired = 1,
    /// Pages repaired (offset 336).
    Repairs = 2,
    /// Records repairs dropped (offset 344).
    LostInRepair = 3,
}

impl FileCounter {
    /// Every counter, in layout order.
    pub(crate) const ALL: [FileCounter; 4] = [
        FileCounter::EvictedLive,
        FileCounter::EvictedExpired,
        FileCounter::Repairs,
        FileCounter::LostInRepair,
    ];

    /// The counter's word in a region over the whole file.
    #[inline]
    pub(crate) fn word<'a>(
        self,
        file: &super::region::Region<'a>,
    ) -> Option<&'a std::sync::atomic::AtomicU64> {
        file.u64_at(COUNTERS_OFFSET + 8 * self as usize)
    }

    /// Adds `n` (wrapping) to the counter of `file`.
    #[inline]
    pub(crate) fn add(self, file: &super::region::Region<'_>, n: u64) {
        if n > 0
            && let Some(w) = self.word(file)
        {
            // Relaxed: a statistic; only the atomicity of the addition matters.
            w.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The file's version counter (`next_version`) in a region over the whole file, if the
/// file holds its header.
#[inline]
pub(crate) fn version_counter<'a>(
    file: &super::region::Region<'a>,
) -> Option<&'a std::sync::atomic::AtomicU64> {
    file.u64_at(NEXT_VERSION_OFFSET)
}
const _: () = assert!(CHECKSUM_OFFSET + 8 <= SECRET_OFFSET);
const _: () =
    assert!(PAGE_SIZE_OFFSET.is_multiple_of(8) && NUM_PAGES_OFFSET == PAGE_SIZE_OFFSET + 4);

/// The static header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) format_version: u32,
    pub(crate) header_len: u32,
    pub(crate) geometry: Geometry,
    pub(crate) slots_per_page: u32,
    pub(crate) record_header_len: u32,
    pub(crate) created_ms: u64,
    pub(crate) secret: [u8; SECRET_LEN],
    /// The lock kind's header value as stored (`geometry.locks` is its kind, or fcntl
    /// for a value this code does not know, which `check` refuses).
    pub(crate) lock_kind: u32,
}

/// What reading a header found.
#[derive(Debug)]
pub(crate) enum HeaderState {
    /// All-zero magic: a file this code did not start to initialise.
    Uninitialised,
    /// [`INIT_MAGIC`]: an initialiser started and has not finished (or died).
    Initialising,
    /// Another magic: not our file.
    ForeignMagic([u8; 8]),
    /// Our magic, the checksum does not match.
    BadChecksum,
    /// A header, not yet checked against the code's format version and geometry rules.
    Present(Box<Header>),
}

fn u32_of(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_of(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn checksum(bytes: &[u8; STATIC_END]) -> u64 {
    let mut b = *bytes;
    b[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].fill(0);
    twox_hash::XxHash3_64::oneshot(&b)
}

impl Header {
    /// A new header for `geometry`.
    pub(crate) fn new(geometry: Geometry, created_ms: u64, secret: [u8; SECRET_LEN]) -> Self {
        Header {
            format_version: FORMAT_VERSION,
            header_len: HEADER_LEN as u32,
            geometry,
            slots_per_page: geometry.page_size / BYTES_PER_SLOT,
            record_header_len: RECORD_HEADER_LEN as u32,
            created_ms,
            secret,
            lock_kind: geometry.locks.to_header(),
        }
    }

    fn encode(&self) -> [u8; STATIC_END] {
        let mut b = [0u8; STATIC_END];
        b[MAGIC_OFFSET..MAGIC_OFFSET + 8].copy_from_slice(&MAGIC);
        let put32 = |b: &mut [u8; STATIC_END], off: usize, v: u32| {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes())
        };
        put32(&mut b, VERSION_OFFSET, self.format_version);
        put32(&mut b, HEADER_LEN_OFFSET, self.header_len);
        put32(&mut b, PAGE_SIZE_OFFSET, self.geometry.page_size);
        put32(&mut b, NUM_PAGES_OFFSET, self.geometry.num_pages);
        put32(&mut b, SLOTS_OFFSET, self.slots_per_page);
        put32(&mut b, RECORD_HEADER_OFFSET, self.record_header_len);
        put32(&mut b, LOCK_KIND_OFFSET, self.lock_kind);
        b[CREATED_OFFSET..CREATED_OFFSET + 8].copy_from_slice(&self.created_ms.to_le_bytes());
        b[SECRET_OFFSET..STATIC_END].copy_from_slice(&self.secret);
        let c = checksum(&b);
        b[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Writes the header into `region` (the whole mapping), magic last, and sets the
    /// version counter to at least `first_version`. Caller holds the header lock.
    pub(crate) fn write(&self, region: &Region<'_>, first_version: u64) -> bool {
        let b = self.encode();
        let Some(magic) = region.u64_at(MAGIC_OFFSET) else {
            return false;
        };
        // Relaxed: the Release store of the magic below publishes everything.
        magic.store(u64::from_le_bytes(INIT_MAGIC), Ordering::Relaxed);
        if !region.write_bytes(8, &b[8..]) {
            return false;
        }
        let Some(next) = region.u64_at(NEXT_VERSION_OFFSET) else {
            return false;
        };
        next.fetch_max(first_version.max(1), Ordering::Relaxed);
        // Release: pairs with the Acquire load in `read`.
        magic.store(u64::from_le_bytes(MAGIC), Ordering::Release);
        true
    }

    /// Reads the header from `region` (the whole mapping).
    pub(crate) fn read(region: &Region<'_>) -> HeaderState {
        let Some(magic) = region.u64_at(MAGIC_OFFSET) else {
            return HeaderState::Uninitialised;
        };
        // Acquire: pairs with the Release store in `write`.
        let m = magic.load(Ordering::Acquire).to_le_bytes();
        if m == [0; 8] {
            return HeaderState::Uninitialised;
        }
        if m == INIT_MAGIC {
            return HeaderState::Initialising;
        }
        if m != MAGIC {
            return HeaderState::ForeignMagic(m);
        }
        let mut b = [0u8; STATIC_END];
        if !region.read_bytes(0, &mut b) {
            return HeaderState::Uninitialised;
        }
        if u64_of(&b, CHECKSUM_OFFSET) != checksum(&b) {
            return HeaderState::BadChecksum;
        }
        let mut secret = [0u8; SECRET_LEN];
        secret.copy_from_slice(&b[SECRET_OFFSET..STATIC_END]);
        HeaderState::Present(Box::new(Header {
            format_version: u32_of(&b, VERSION_OFFSET),
            header_len: u32_of(&b, HEADER_LEN_OFFSET),
            geometry: Geometry {
                page_size: u32_of(&b, PAGE_SIZE_OFFSET),
                num_pages: u32_of(&b, NUM_PAGES_OFFSET),
                locks: crate::LockKind::from_header(u32_of(&b, LOCK_KIND_OFFSET))
                    .unwrap_or_default(),
            },
            slots_per_page: u32_of(&b, SLOTS_OFFSET),
            record_header_len: u32_of(&b, RECORD_HEADER_OFFSET),
            created_ms: u64_of(&b, CREATED_OFFSET),
            secret,
            lock_kind: u32_of(&b, LOCK_KIND_OFFSET),
        }))
    }

    /// Loads the words a store's view of the file depends on: the magic, the geometry
    /// (`page_size`, `num_pages`), the lock kind and the first 8 bytes of the hash
    /// secret. A store
    /// compares them under every page lock with what it opened, so that a file
    /// re-initialised under it with another geometry or secret is noticed before the
    /// page is touched. `None` if the region is too short.
    pub(crate) fn identity(region: &Region<'_>) -> Option<[u64; 4]> {
        // Relaxed: the header changes only under the header lock plus the lock on the
        // whole page range, which the caller's page lock excludes.
        let w = |off| region.u64_at(off).map(|w| w.load(Ordering::Relaxed));
        Some([
            w(MAGIC_OFFSET)?,
            w(PAGE_SIZE_OFFSET)?,
            w(LOCK_KIND_OFFSET)?,
            w(SECRET_OFFSET)?,
        ])
    }

    /// Checks the fields against what this code supports; the reason if not.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format version {} (this code reads version {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if crate::LockKind::from_header(self.lock_kind).is_none() {
            return Err(format!(
                "lock kind {} (this code knows 0, fcntl, and 1, futex)",
                self.lock_kind
            ));
        }
        self.geometry.check()?;
        if self.header_len as usize != HEADER_LEN
            || self.slots_per_page != self.geometry.page_size / BYTES_PER_SLOT
            || self.record_header_len as usize != RECORD_HEADER_LEN
        {
            return Err(format!(
                "header length {}, {} slots per page or record header {} do not match this \
                 format version",
                self.header_len, self.slots_per_page, self.record_header_len
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::new(
            Geometry {
                page_size: 4096,
                num_pages: 2,
                locks: crate::LockKind::Fcntl,
            },
            42,
            [7; SECRET_LEN],
        )
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let mut words = vec![0u64; HEADER_LEN / 8];
        let r = Region::of_words(&mut words);
        assert!(matches!(Header::read(&r), HeaderState::Uninitialised));
        let h = sample();
        assert!(h.write(&r, 1000));
        match Header::read(&r) {
            HeaderState::Present(got) => assert_eq!(*got, h),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.u64_at(NEXT_VERSION_OFFSET)
                .unwrap()
                .load(Ordering::Relaxed),
            1000
        );
        // Flip one secret byte: checksum mismatch.
        let w = r.u64_at(SECRET_OFFSET).unwrap();
        w.fetch_xor(1, Ordering::Relaxed);
        assert!(matches!(Header::read(&r), HeaderState::BadChecksum));
        r.u64_at(0)
            .unwrap()
            .store(u64::from_le_bytes(*b"SQLite f"), Ordering::Relaxed);
        assert!(matches!(Header::read(&r), HeaderState::ForeignMagic(_)));
    }

    /// The header checksum is XXH3-64 with the default secret: pinned to the values of
    /// the implementation the first files were written with (`xxhash-rust` 0.8).
    #[test]
    fn the_checksum_hash_matches_the_format_s_reference_values() {
        let data = |len: usize| (0..len).map(|i| (i * 7 + 1) as u8).collect::<Vec<u8>>();
        assert_eq!(
            twox_hash::XxHash3_64::oneshot(&data(0)),
            0x2d06_8005_38d3_94c2
        );
        assert_eq!(
            twox_hash::XxHash3_64::oneshot(&data(STATIC_END)),
            0xc034_02b5_dce3_dbfa
        );
    }

    #[test]
    fn unsupported_versions_are_refused() {
        let mut h = sample();
        // Format 1 (an XXH3 checksum on every record) is refused, not misread.
        for v in [1, 3] {
            h.format_version = v;
            assert!(
                h.check()
                    .unwrap_err()
                    .contains(&format!("format version {v}"))
            );
        }
    }
}
