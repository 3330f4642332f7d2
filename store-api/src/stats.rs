//! Counters and capabilities every engine reports.

/// Counters an engine keeps.
///
/// The counters (`reads`, `hits`, `writes`, evictions, `purged`, `recovered`,
/// `lost_in_repair`) are **per handle**: they count what was done through this store
/// object since it was opened (clones of an `Arc` are one object). Two handles on one
/// shared store, in one process or several, count separately; add them up for a
/// process-wide or host-wide figure. `entries`, `capacity` and `bytes_used` are the
/// current state of the whole store (for a shared server, the server's figures). An
/// engine that deviates from this documents it.
///
/// The struct is `#[non_exhaustive]`; an engine outside this crate builds one from the
/// default: `let mut s = Stats::default(); s.reads = 3;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Entries stored now, including expired ones not yet reclaimed.
    pub entries: u64,
    /// Capacity in bytes, for bounded engines.
    pub capacity: Option<u64>,
    /// Bytes in use by entries (keys, values and per-entry overhead).
    pub bytes_used: u64,
    /// Reads (`get` and the read half of `update`).
    pub reads: u64,
    /// Reads that found a live entry.
    pub hits: u64,
    /// Successful writes (puts, sets and deletes through update, touches, deletes).
    pub writes: u64,
    /// Live entries evicted to make room.
    pub evicted_live: u64,
    /// Expired entries reclaimed to make room.
    pub evicted_expired: u64,
    /// Expired entries removed by `purge_expired`.
    pub purged: u64,
    /// Damaged regions (for example pages of a shared file) found and repaired.
    pub recovered: u64,
    /// Entries that may have been live and were dropped while repairing damaged data
    /// (a writer killed mid-write, a stray write into a shared file). Reported so that
    /// nothing disappears silently.
    pub lost_in_repair: u64,
}

/// How an engine runs an [`update`](crate::SessionStore::update) closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpdateAtomicity {
    /// Under a lock: the closure runs exactly once per call.
    Locked,
    /// Optimistically: the closure may run again when another writer interfered, up to
    /// `max_attempts` times, then the update fails with
    /// [`Error::Contention`](crate::Error::Contention).
    Optimistic {
        /// Most times the closure runs in one call.
        max_attempts: u32,
    },
}

/// What an engine can do; conformance tests and callers read this instead of
/// guessing from the engine's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// Several processes on one host see the same entries.
    pub shared_across_processes: bool,
    /// Several hosts see the same entries.
    pub shared_across_hosts: bool,
    /// Entries survive the store object being dropped and reopened (an application
    /// restart). Whether they survive a restart of an external server depends on that
    /// server's own persistence.
    pub survives_restart: bool,
    /// The engine has a fixed capacity and evicts (or refuses) when full.
    pub bounded: bool,
    /// Longest key accepted, in bytes (at least [`MAX_KEY_LEN`](crate::MAX_KEY_LEN)).
    pub max_key_len: usize,
    /// Largest value accepted, in bytes, for the longest key. Shorter keys may allow
    /// larger values, by at most the bytes the key is shorter than `max_key_len`; a
    /// larger value is [`Error::TooLarge`](crate::Error::TooLarge).
    pub max_value_len: usize,
    /// The backend removes expired entries by itself (a server's own expiry), so
    /// [`purge_expired`](crate::SessionStore::purge_expired) returns 0.
    pub expires_itself: bool,
    /// How `update` runs its closure.
    pub update: UpdateAtomicity,
    /// How long a call may hold the calling thread: whether async callers may call
    /// the engine inline or must move the call off their runtime's worker threads.
    pub blocking: Blocking,
    /// Whether [`scan`](crate::SessionStore::scan) lists the live entries.
    pub scan: crate::Support,
    /// Whether [`clear`](crate::SessionStore::clear) removes every entry, and how.
    pub clear: crate::Support,
}

impl Capabilities {
    /// An in-process, unbounded, non-persistent engine with locked updates; engines
    /// start from this and change what differs.
    pub fn new(max_value_len: usize) -> Self {
        Capabilities {
            shared_across_processes: false,
            shared_across_hosts: false,
            survives_restart: false,
            bounded: false,
            max_key_len: crate::MAX_KEY_LEN,
            max_value_len,
            expires_itself: false,
            update: UpdateAtomicity::Locked,
            blocking: Blocking::Brief,
            scan: crate::Support::No,
            clear: crate::Support::No,
        }
    }
}

/// How long an engine's calls may hold the calling thread, for async callers (a web
/// framework's runtime) deciding whether to call it inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blocking {
    /// Calls finish in microseconds and wait on no I/O (an in-process map, a shared
    /// mapping of a local file): call them inline from async code, where a hop to a
    /// blocking pool would cost more than the call. A call may still wait for a lock
    /// another thread or process holds; an engine of this kind bounds that wait or
    /// documents how to.
    Brief,
    /// Calls wait on the network or a device (a server, a disk): run them off the
    /// runtime's worker threads (`tokio::task::spawn_blocking`), or a stalled backend
    /// stalls every request the worker serves.
    Io,
}
