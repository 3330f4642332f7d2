//! A session store on one memory-mapped file shared by every worker process on a host:
//! the Rust counterpart of Perl's `Catalyst::Plugin::Session::Store::FastMmap`, with
//! lock-free reads, per-page write locks (fcntl byte-range locks, or robust futexes:
//! [`LockKind`]), keyed hashing, crash repair and reported evictions.
//!
//! - the read: `read.rs` (lock-free); its locked fallback and every write's entry: `store.rs`
//! - the seqlock: `seqlock.rs` (one comment per atomic naming its pairing; loom-checked)
//! - the page lock, both kinds: `page_lock/` (the in-process lock, acquisition, the
//!   guard, re-entry, the futex kind) over `os/lock.rs` (fcntl OFD locks) and
//!   `os/robust.rs` (robust process-shared mutexes, boot id, PID namespace)
//! - the lock kinds: `lock_kind.rs` ([`LockKind`], recorded in the header)
//! - the format: `format/` (header, page, record, hash, checksum; `docs/FORMAT.md`)
//! - the writes and the repair: `locked/` (one file per mechanism; `locked/repair.rs`)
//!
//! The file is a 4 KiB header and equal pages; a key hashes (xxh3 keyed with the file's
//! random secret) to a page and a slot. `get` takes no lock and makes no system call: it
//! copies the entry out through atomic loads inside the page's seqlock window. Writes
//! hold the page's lock: by default its open-file-description fcntl lock plus an
//! in-process lock; with [`LockKind::Futex`] its robust process-shared mutex, which costs
//! no system call uncontended. Either way the store is safe across processes *and*
//! threads. Entries are evicted LRU within their page,
//! expired ones first, and every eviction is reported. A writer killed mid-write leaves
//! an odd seqlock counter; the next writer validates and repairs that page alone.
//! Expiry is decided exactly with the system clock, mostly from the kernel's coarse clock
//! (see [`FastMmapBuilder::clock`]).
//!
//! ```
//! # fn main() -> store_api::Result<()> {
//! use std::time::Duration;
//! use store_api::{Expiry, Key, SessionStore, SessionStoreExt, WriteMode};
//! use store_fastmmap::FastMmapStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = FastMmapStore::builder()
//!     .storage(dir.path().join("myapp_session_data"))
//!     .cache_size(5 << 20)
//!     .expires(Duration::from_secs(3600))
//!     .open()?;
//! let key = Key::new("session:0123abcd")?;
//! store.create(&key, b"user=ada", Expiry::Default)?;
//! assert_eq!(store.get_value(&key)?.as_deref(), Some(&b"user=ada"[..]));
//! # Ok(()) }
//! ```
//!
//! The engines table is in the workspace README.

#![deny(unsafe_code)]

/// Items built only without `--cfg loom`: under loom only the concurrency protocols
/// (`seqlock`, `page_lock`, `sync`) are built, over loom's atomics; the engine itself needs
/// the real mapping.
macro_rules! cfg_not_loom {
    ($($item:item)*) => {
        $(
            #[cfg(not(loom))]
            $item
        )*
    };
}

mod page_lock;
mod seqlock;
mod sync;

cfg_not_loom! {
    #[doc(hidden)]
    pub mod bench;
    mod builder;
    mod counters;
    mod failpoint;
    mod format;
    mod inspect;
    mod lock_kind;
    mod locked;
    mod open;
    mod os;
    mod probe;
    mod read;
    mod store;
    mod time;

    pub use builder::{
        DEFAULT_CACHE_SIZE, DEFAULT_MODE, DEFAULT_PAGE_SIZE, DEFAULT_READ_LOCK_TIMEOUT,
        FastMmapBuilder,
    };
    pub use lock_kind::LockKind;
    pub use inspect::{FileCounters, PageFill, PageProblem, VerifyReport};
    pub use store::FastMmapStore;
}

#[cfg(all(not(loom), feature = "failpoints"))]
pub use failpoint::Failpoint;
