//! The harnesses of `store-fastmmap`: normal pages, and 4 KiB pages so that eviction
//! and page repair are exercised all the time; each with the fcntl lock kind and with
//! the futex one.

use std::fs::OpenOptions;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use conformance::{Corruption, Harness, Size, Spec, Unsupported};
use store_api::{EvictionPolicy, ManualClock};
use store_fastmmap::{FastMmapBuilder, FastMmapStore, LockKind};
use tempfile::TempDir;

/// Offset of the first page: the file starts with a 4 KiB header.
const HEADER: u64 = 4096;

/// `store-fastmmap` under the conformance suite; `SMALL_PAGES` picks 4 KiB pages,
/// `FUTEX` the futex lock kind (else fcntl).
///
/// Each harness owns a temporary directory with one store file, created by the first
/// `open` (so that simultaneous first opens from worker processes really race). A
/// harness rebuilt in a worker does not own the directory.
#[derive(Debug)]
pub struct FastMmap<const SMALL_PAGES: bool, const FUTEX: bool = false> {
    _dir: Option<TempDir>,
    path: PathBuf,
    page_size: u32,
    num_pages: u32,
    policy: EvictionPolicy,
    clock: Option<ManualClock>,
    ttl: Option<std::time::Duration>,
}

/// Normal pages: 256 KiB x 20 (64 KiB x 2 when the suite asks for a small store).
pub type FastMmapHarness = FastMmap<false>;
/// 4 KiB pages: 1024 of them (4 when the suite asks for a small store).
pub type FastMmapSmallPages = FastMmap<true>;
/// As [`FastMmapHarness`], with the futex lock kind.
pub type FastMmapFutex = FastMmap<false, true>;
/// As [`FastMmapSmallPages`], with the futex lock kind.
pub type FastMmapFutexSmallPages = FastMmap<true, true>;

impl<const SMALL_PAGES: bool, const FUTEX: bool> FastMmap<SMALL_PAGES, FUTEX> {
    const NAME: &'static str = match (SMALL_PAGES, FUTEX) {
        (true, false) => "fastmmap-small-pages",
        (false, false) => "fastmmap",
        (true, true) => "fastmmap-futex-small-pages",
        (false, true) => "fastmmap-futex",
    };

    /// The lock kind of the files this harness creates.
    pub const KIND: LockKind = if FUTEX {
        LockKind::Futex
    } else {
        LockKind::Fcntl
    };

    fn geometry(size: Size) -> (u32, u32) {
        match (SMALL_PAGES, size) {
            (false, Size::Small) => (64 << 10, 2),
            (false, _) => (256 << 10, 20),
            (true, Size::Small) => (4 << 10, 4),
            (true, _) => (4 << 10, 1024),
        }
    }

    fn builder(&self) -> FastMmapBuilder {
        let mut b = FastMmapStore::builder()
            .storage(&self.path)
            .init_file(false)
            .page_size(self.page_size)
            .num_pages(self.num_pages)
            .lock_kind(Self::KIND)
            .policy(self.policy);
        if let Some(clock) = &self.clock {
            b = b.clock(Arc::new(clock.clone()));
        }
        if let Some(ttl) = self.ttl {
            b = b.expires(ttl);
        }
        b
    }

    fn with_path(spec: &Spec, dir: Option<TempDir>, path: PathBuf) -> Self {
        let (page_size, num_pages) = Self::geometry(spec.size);
        FastMmap {
            _dir: dir,
            path,
            page_size,
            num_pages,
            policy: spec.policy,
            clock: spec.clock.clone(),
            ttl: spec.default_ttl,
        }
    }
}

fn io(e: std::io::Error) -> Unsupported {
    Unsupported::new(format!("harness I/O failed: {e}"))
}

impl<const SMALL_PAGES: bool, const FUTEX: bool> Harness for FastMmap<SMALL_PAGES, FUTEX> {
    type Store = FastMmapStore;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("sessions");
        Ok(Self::with_path(spec, Some(dir), path))
    }

    fn open(&self) -> store_api::Result<Self::Store> {
        self.builder().open()
    }

    fn unreachable(spec: &Spec) -> Result<store_api::Result<Self::Store>, Unsupported> {
        // Under a file, not a directory: the storage directory can neither be opened nor
        // created (a missing one would be created, owner-only).
        let h = Self::with_path(spec, None, PathBuf::from("/dev/null/conformance/sessions"));
        Ok(h.open())
    }

    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        match how {
            Corruption::Scribble => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(io)?;
                let page = u64::from(self.page_size);
                let mut state = 0x5eed_u64;
                for p in (0..u64::from(self.num_pages)).step_by(3) {
                    let garbage: Vec<u8> = (0..page / 2)
                        .map(|_| {
                            state = state
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            (state >> 56) as u8
                        })
                        .collect();
                    f.seek(SeekFrom::Start(HEADER + p * page + page / 4))
                        .map_err(io)?;
                    f.write_all(&garbage).map_err(io)?;
                }
                f.sync_all().map_err(io)
            }
            Corruption::Truncate => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(io)?;
                let len = f.metadata().map_err(io)?.len();
                f.set_len(len / 2).map_err(io)
            }
            Corruption::Incompatible => {
                // A file made with another geometry, where this store's file was.
                std::fs::remove_file(&self.path).map_err(io)?;
                FastMmapStore::builder()
                    .storage(&self.path)
                    .init_file(true)
                    .page_size(self.page_size)
                    .num_pages(self.num_pages * 2)
                    .lock_kind(Self::KIND)
                    .open()
                    .map(drop)
                    .map_err(|e| Unsupported::new(format!("making an incompatible file: {e}")))
            }
            _ => Err(Unsupported::new(format!("{how:?} is not implemented"))),
        }
    }

    fn worker_args(&self) -> Option<Vec<String>> {
        Some(vec![
            Self::NAME.to_string(),
            self.path.display().to_string(),
            self.page_size.to_string(),
            self.num_pages.to_string(),
            match self.policy {
                EvictionPolicy::NeverEvictLive => "never-evict-live".into(),
                _ => "lru".into(),
            },
        ])
    }

    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        let [name, path, page_size, num_pages, policy] = args else {
            return Err(format!(
                "expected NAME PATH PAGE_SIZE NUM_PAGES POLICY, got {args:?}"
            ));
        };
        if name != Self::NAME {
            return Err(format!("arguments for {name}, not {}", Self::NAME));
        }
        Ok(FastMmap {
            _dir: None,
            path: PathBuf::from(path),
            page_size: page_size.parse().map_err(|e| format!("page size: {e}"))?,
            num_pages: num_pages.parse().map_err(|e| format!("page count: {e}"))?,
            policy: match policy.as_str() {
                "never-evict-live" => EvictionPolicy::NeverEvictLive,
                _ => EvictionPolicy::Lru,
            },
            clock: None,
            ttl: None,
        })
    }
}
