//! What the store targets share: a scratch directory per input, store files with a fixed
//! hash secret (so an input replays the same way every time), header checksums, and
//! `pwrite` into a live file.
//!
//! The header offsets mirror `store-fastmmap/src/format/header.rs` (docs/FORMAT.md): if
//! the format changes, [`fresh_file`] fails loudly and the replay test says so.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_api::{EvictionPolicy, ManualClock};
use store_fastmmap::{FastMmapBuilder, FastMmapStore, LockKind};
use tempfile::TempDir;

/// Length of the file header; page `i` starts at `HEADER_LEN + i * page_size`.
pub(crate) const HEADER_LEN: u64 = 4096;
/// Offset of the header's creation time (checksummed).
const CREATED_OFFSET: usize = 32;
/// Offset of the header checksum: xxh3-64 of `[0, 256)` with this field zeroed.
const CHECKSUM_OFFSET: usize = 40;
/// Offset and length of the hash secret (checksummed).
const SECRET_OFFSET: usize = 64;
const SECRET_LEN: usize = 192;
/// End of the checksummed part; the version counter follows.
pub(crate) const STATIC_END: usize = SECRET_OFFSET + SECRET_LEN;
const NEXT_VERSION_OFFSET: usize = STATIC_END;
/// A byte the engine ignores (reserved, after the lock kind at 48): the `file` target
/// reads a flag from it.
pub(crate) const FLAG_OFFSET: usize = 60;

/// The lock kinds the store targets run every input under (the futex kind on Linux).
pub(crate) fn kinds() -> &'static [LockKind] {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        &[LockKind::Fcntl, LockKind::Futex]
    } else {
        &[LockKind::Fcntl]
    }
}

/// A scratch directory for one input: on tmpfs when there is one, so inputs stay fast.
pub(crate) struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new().prefix("fuzz-").tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("fuzz-").tempdir()
        }
        .expect("a scratch directory");
        Scratch { dir }
    }

    /// The store file's path.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().join("sessions")
    }
}

/// Rewrites the checksum of a header's first [`STATIC_END`] bytes.
pub(crate) fn fix_checksum(header: &mut [u8]) {
    if header.len() < STATIC_END {
        return;
    }
    header[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].fill(0);
    let c = twox_hash::XxHash3_64::oneshot(&header[..STATIC_END]);
    header[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 8].copy_from_slice(&c.to_le_bytes());
}

/// Creates an empty store file of `num_pages` pages of `page_size` bytes and lock kind
/// `kind` at `path`, then replaces its random hash secret, creation time and version counter with fixed
/// values, so that keys land on the same pages and slots on every run.
pub(crate) fn fresh_file(path: &Path, page_size: u32, num_pages: u32, kind: LockKind) {
    let store = FastMmapStore::builder()
        .storage(path)
        .init_file(true)
        .page_size(page_size)
        .num_pages(num_pages)
        .lock_kind(kind)
        .open()
        .unwrap_or_else(|e| panic!("creating a {num_pages} x {page_size} store: {e}"));
    drop(store);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("the new store file opens");
    let mut h = [0u8; STATIC_END + 8];
    f.read_exact_at(&mut h, 0).expect("the header reads");
    h[CREATED_OFFSET..CREATED_OFFSET + 8].copy_from_slice(&1_577_836_800_000u64.to_le_bytes());
    for (i, b) in h[SECRET_OFFSET..STATIC_END].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(167).wrapping_add(13);
    }
    h[NEXT_VERSION_OFFSET..NEXT_VERSION_OFFSET + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    fix_checksum(&mut h);
    f.write_all_at(&h, 0).expect("the header writes");
}

/// A builder for the file at `path` on `clock`, without geometry options (the file's
/// own geometry is used).
pub(crate) fn builder(path: &Path, clock: &ManualClock) -> FastMmapBuilder {
    FastMmapStore::builder()
        .storage(path)
        .clock(Arc::new(clock.clone()))
}

/// Opens the file at `path` as the targets do.
pub(crate) fn open(
    path: &Path,
    clock: &ManualClock,
    ttl: Option<std::time::Duration>,
    policy: EvictionPolicy,
) -> store_api::Result<FastMmapStore> {
    let mut b = builder(path, clock).policy(policy);
    if let Some(ttl) = ttl {
        b = b.expires(ttl);
    }
    b.open()
}

/// Writes `bytes` at `offset` of the file with `pwrite`: the mapping is `MAP_SHARED`, so
/// every open store sees the change at once, as if another process had written it.
pub(crate) fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("the store file opens for writing");
    f.write_all_at(bytes, offset).expect("pwrite into the file");
}

/// Reads 8 bytes at `offset` of the file.
pub(crate) fn peek_u64(path: &Path, offset: u64) -> u64 {
    let f = std::fs::File::open(path).expect("the store file opens");
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, offset)
        .expect("pread from the file");
    u64::from_le_bytes(b)
}
