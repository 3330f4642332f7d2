//! The engine: [`FastMmapStore`] and its [`SessionStore`] implementation.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use store_api::{
    Capabilities, Entry, EntryMeta, Error, EvictionPolicy, Evictions, Expiry, Key, MAX_KEY_LEN,
    Result, ScanEntry, ScanOptions, SessionStore, Stats, Support, Timestamp, UpdateAction,
    UpdateOutcome, WriteMode,
    WriteOutcome, is_live,
};

use crate::builder::FastMmapBuilder;
use crate::counters::Counters;
use crate::failpoint::Armed;
use crate::format::checksum::CRC_MAX;
use crate::format::geometry::Geometry;
use crate::format::hash::{KeyHash, KeyHasher};
use crate::format::header::{FileCounter, Header};
use crate::format::page::{Page, home};
use crate::format::record::{decode_expiry, encode_expiry, record_size, version_of};
use crate::format::region::Region;
use crate::locked::{Locked, NoRoom, WriteRequest};
use crate::os::file::{Opened, fstat};
use crate::os::mmap::Mapping;
use crate::counters::PaddedLock;
use crate::os::store_file::StoreFile;
use crate::page_lock::{Backoff, PageGuard};
use crate::probe::Found;
use crate::read::{Read, lock_free};
use crate::time::TimeSource;

/// How many times a reader retries a page whose counter is odd or changed before it
/// falls back to taking the page lock (which repairs a page whose writer died).
const READ_SPINS: u32 = 20_000;

/// A session store on one file shared by every process on a host that opens it.
///
/// The file is a header and `num_pages` pages; a key hashes (keyed with the file's random
/// secret) to one page and a slot. Reads take no lock and make no system call: each page
/// has a seqlock. Writes take the page's fcntl byte-range lock (OFD) plus an in-process
/// lock. Entries are evicted LRU within their page, expired ones first, and evictions are
/// reported. See `docs/FORMAT.md` for the format and protocol.
///
/// ```
/// # fn main() -> store_api::Result<()> {
/// use store_api::{Expiry, Key, SessionStore, WriteMode};
/// use store_fastmmap::FastMmapStore;
/// let dir = tempfile::tempdir().unwrap();
/// let store = FastMmapStore::open(dir.path().join("sessions"))?;
/// let key = Key::new("session:abc")?;
/// store.put(&key, b"user=ada", Expiry::Never, WriteMode::CreateOnly)?;
/// assert_eq!(store.get(&key)?.unwrap().value, b"user=ada");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FastMmapStore {
    pub(crate) path: PathBuf,
    pub(crate) geo: Geometry,
    hasher: KeyHasher,
    /// The file, its mapping and the page locks (a forked child gets a new open file
    /// description at the same descriptor number: see `os::fork`).
    pub(crate) os: StoreFile<PaddedLock>,
    /// The file's identity, which names the page locks this thread holds (see `Held`).
    pub(crate) file_id: (u64, u64),
    clock: TimeSource,
    default_ttl: Option<Duration>,
    policy: EvictionPolicy,
    read_lock_timeout: Duration,
    /// `None`: writes wait for page locks without a limit.
    pub(crate) write_lock_timeout: Option<Duration>,
    pub(crate) counters: Counters,
    /// The fork generation + 1 in which this process was found able to own robust
    /// locks (the futex kind; 0: not yet).
    pub(crate) futex_sound: std::sync::atomic::AtomicU64,
    fail: Armed,
    /// The header words this store's view depends on (see `Header::identity`).
    identity: [u64; 4],
}

/// What `open` assembled.
pub(crate) struct Parts {
    pub(crate) path: PathBuf,
    pub(crate) geo: Geometry,
    pub(crate) hasher: KeyHasher,
    pub(crate) opened: Opened,
    pub(crate) map: Mapping,
    pub(crate) clock: TimeSource,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) policy: EvictionPolicy,
    pub(crate) read_lock_timeout: Duration,
    pub(crate) write_lock_timeout: Option<Duration>,
    pub(crate) fail: Armed,
    pub(crate) identity: [u64; 4],
    /// The descriptor holds a shared lock on the users byte (the futex kind).
    pub(crate) users: bool,
}

impl FastMmapStore {
    /// Options for a store.
    pub fn builder() -> FastMmapBuilder {
        FastMmapBuilder::default()
    }

    /// Opens the store at `path` with default options (creating it if absent).
    ///
    /// # Hazards of a shared mapping
    /// - **Truncation raises `SIGBUS`.** If another program truncates the file while it
    ///   is mapped, the next access to the lost range kills the process with `SIGBUS`.
    ///   Only this crate should write the file; `init_file` with a different geometry
    ///   resizes it, so every other process must have closed it first.
    /// - **`init_file` under open stores.** `init_file` with the same geometry keeps the
    ///   hash secret: stores that have the file open carry on with the emptied file. With
    ///   another geometry (or after an initialiser died half way), their writes and
    ///   locked reads fail with [`Error::Incompatible`] (they compare the header's
    ///   geometry and secret under every page lock); their lock-free reads do not check,
    ///   and raise `SIGBUS` if the file shrank. Reopen the store after such an error.
    /// - **Linux only.** The locks are open-file-description locks; on other Unixes the
    ///   crate compiles with per-process classic locks, under which two stores on one
    ///   file in one process do not exclude each other. Not supported there.
    /// - **No network filesystems.** NFS and similar do not keep shared mappings or fcntl
    ///   locks coherent between hosts; use a local filesystem (`/dev/shm` or `/tmp`).
    /// - **fork:** a child forked after open may keep using the store. Before it runs any
    ///   code of its own (a fork handler), or on its first store call after a fork that
    ///   ran none (`_Fork`, a raw `clone`), the child gets its own open file description
    ///   of the file, so its locks exclude its parent's and a parent killed mid-write
    ///   leaves it no lock, and its in-process page locks start free (another thread may
    ///   have held one at the fork). A child that forked inside an `update` closure gets
    ///   an error from that update; the parent's applies. A child made without the fork
    ///   handler that never calls the store keeps its parent's description until it
    ///   exits or execs (see `docs/FORMAT.md`, "Fork").
    /// - **threads:** the store is `Send + Sync`; share one per process through an `Arc`.
    ///   Several stores on one file in one process are correct but waste descriptors. A
    ///   store call from inside an `update` closure that needs a page lock of the same
    ///   file fails with [`Error::Backend`] (it would wait for itself).
    /// - **A full filesystem** is an [`Error::Io`] at open ("the filesystem is full"),
    ///   never `SIGBUS` in a writer: the file's blocks are allocated when it is created
    ///   (and checked at every open). A container's `/dev/shm` is 64 MiB by default.
    /// - **Trust:** the storage directory (created owner-only if missing) must belong to
    ///   the current user or root and, if group or others may write it, be sticky; the
    ///   file must belong to the current user, have exactly one hard link, and be
    ///   writable by no one else and readable by no one but its owner and the owner's
    ///   own group. A predictable path in `/tmp` is refused if another user planted a
    ///   file, symlink, hard link or directory there. A new file gets the mode asked for
    ///   narrowed by the umask. Whoever can read the file can read every session and the
    ///   hash secret and block every writer with an fcntl lock: make it `0o600` wherever
    ///   other users share the group.
    ///
    /// # Errors
    /// As [`FastMmapBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<FastMmapStore> {
        FastMmapBuilder::default().storage(path).open()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.geo.page_size
    }

    /// Number of pages.
    pub fn num_pages(&self) -> u32 {
        self.geo.num_pages
    }

    /// The largest value accepted with a key of `key_len` bytes:
    /// `page_size * 29/32 - 64 - 24 - align8(key_len)`, rounded down to 8.
    pub fn max_value_len(&self, key_len: usize) -> usize {
        self.geo.max_value_len(key_len)
    }

    /// Records this process's page repairs dropped: records that failed their bounds,
    /// checksum or key-hash checks (a value torn by a writer killed while overwriting it
    /// in place, bytes damaged by a stray write to the file, garbage slot values) and
    /// records beyond a page's slot limit. Older duplicate copies of a key and records
    /// unlinked by a delete are not counted. Each counted record is an entry that may have
    /// been live and is gone; [`Stats::recovered`] counts the repairs themselves. Per
    /// process, like `Stats`.
    pub fn lost_in_repair(&self) -> u64 {
        self.counters.recovered.lost.load(Ordering::Relaxed)
    }

    /// Times this process retried releasing a page or header lock after the kernel
    /// refused (`ENOLCK` under memory pressure); a lock that cannot be released within a
    /// second aborts the process rather than hang every writer of the page.
    pub fn lock_release_retries(&self) -> u64 {
        crate::os::lock::release_retries()
    }

    /// The file's lock kind (recorded in its header).
    pub fn lock_kind(&self) -> crate::LockKind {
        self.geo.locks
    }

    /// Page locks this process took over from a holder that died holding them, after
    /// repairing the page (the futex kind; the kernel reports such a death as
    /// `EOWNERDEAD`). The fcntl kind's kernel releases a dead holder's lock without
    /// telling, so it counts 0 there (its repairs are in [`Stats::recovered`]).
    pub fn lock_owners_died(&self) -> u64 {
        self.counters.owner_deaths.load(Ordering::Relaxed)
    }

    /// The page `key` hashes to (tests and tools).
    pub fn page_of(&self, key: &Key) -> u32 {
        self.hasher.hash(key.as_bytes()).page
    }

    /// The byte range of page `i` in the file (tests and tools: a test that damages a
    /// page on purpose, a tool that inspects one), or `None` if `i` is not below
    /// [`Self::num_pages`]. The layout inside a page is in `docs/FORMAT.md`.
    pub fn page_range(&self, i: u32) -> Option<std::ops::Range<u64>> {
        (i < self.geo.num_pages).then(|| {
            let start = self.geo.page_offset(i);
            start..start + u64::from(self.geo.page_size)
        })
    }

    /// The geometry.
    #[inline(always)]
    pub(crate) fn geo(&self) -> &Geometry {
        &self.geo
    }

    /// Checks every page and every record's bounds, checksum and key hash (what a
    /// writer checks before it trusts a page), one page at a time under its lock, so it
    /// is safe while servers run. Without `repair` nothing changes, not even a page a
    /// writer died in (the next writer of that page repairs it); with it, each damaged
    /// page is repaired in place as a writer would (its records that fail their checks
    /// are dropped and counted in [`Self::lost_in_repair`]). `progress` is called with
    /// the number of pages done after each page.
    ///
    /// # Errors
    /// As a write: a page lock that cannot be taken, or a file re-initialised by another
    /// process.
    pub fn verify(
        &self,
        repair: bool,
        progress: &mut dyn FnMut(u32),
    ) -> Result<crate::VerifyReport> {
        let mut report = crate::VerifyReport {
            pages: self.geo.num_pages,
            ..Default::default()
        };
        for i in 0..self.geo.num_pages {
            let _g = self.lock_page(i, false)?;
            let mut l = self.locked_view(i)?;
            let c = l.check();
            report.records += c.records;
            report.bad_records += c.bad_records;
            report.duplicates += c.duplicates;
            if c.damaged() {
                let what = match c.page_damage {
                    Some(d) => format!(
                        "{d}; {} of {} records fail their checks, {} duplicates",
                        c.bad_records, c.records, c.duplicates
                    ),
                    None => format!(
                        "{} of {} records fail their checks, {} duplicates",
                        c.bad_records, c.records, c.duplicates
                    ),
                };
                if repair {
                    l.salvage();
                }
                report.problems.push(crate::PageProblem {
                    page: i,
                    what,
                    repaired: repair,
                });
            }
            progress(i + 1);
        }
        Ok(report)
    }

    /// The file's keyed hash (the lock-free read).
    #[inline(always)]
    pub(crate) fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The clock expiry is decided with (the lock-free read).
    #[inline(always)]
    pub(crate) fn clock(&self) -> &TimeSource {
        &self.clock
    }

    pub(crate) fn from_parts(p: Parts) -> Result<FastMmapStore> {
        let mut locks = Vec::new();
        locks
            .try_reserve_exact(p.geo.num_pages as usize)
            .map_err(|_| {
                Error::io(
                    format!(
                        "allocating the page locks of {} ({} pages)",
                        p.path.display(),
                        p.geo.num_pages
                    ),
                    std::io::Error::from(std::io::ErrorKind::OutOfMemory),
                )
            })?;
        locks.resize_with(p.geo.num_pages as usize, PaddedLock::default);
        let st = fstat(&p.path, &p.opened.file)?;
        let os = StoreFile::new(p.opened, p.map, locks.into_boxed_slice(), p.users)
            .map_err(|e| Error::io(format!("opening {}", p.path.display()), e))?;
        Ok(FastMmapStore {
            os,
            file_id: (st.st_dev, st.st_ino),
            path: p.path,
            geo: p.geo,
            hasher: p.hasher,
            clock: p.clock,
            default_ttl: p.default_ttl,
            policy: p.policy,
            read_lock_timeout: p.read_lock_timeout,
            write_lock_timeout: p.write_lock_timeout,
            counters: Counters::default(),
            futex_sound: std::sync::atomic::AtomicU64::new(0),
            fail: p.fail,
            identity: p.identity,
        })
    }

    /// Page `i` (below `num_pages`) of the mapping.
    #[inline(always)]
    pub(crate) fn page(&self, i: u32) -> Page<'_> {
        Page::new(&Region::of(self.os.map()), self.geo, i).expect("page index below num_pages")
    }

    /// The key's hash and its page, locked, checked and if need be repaired: the start
    /// of every single-key write.
    ///
    /// Before the lock's system call it starts fetching the cache lines the write reads
    /// first (the page header and the key's home slot and stamp), so that their misses
    /// overlap with the call. Prefetch hints only, no load: until the lock is held and the
    /// file header checked, the page may lie beyond the end of a file another process
    /// shrank (`init_file`), where a load raises SIGBUS.
    #[inline]
    fn locked_for(&self, key: &Key) -> Result<(KeyHash, PageGuard<'_>, Locked<'_>)> {
        let kh = self.hasher.hash(key.as_bytes());
        let page = self.page(kh.page);
        let r = page.region();
        let i = home(kh.tag, self.geo.nslots());
        r.prefetch(0);
        r.prefetch(self.geo.slots_offset() + 8 * i);
        r.prefetch(self.geo.stamps_offset() + 4 * i);
        let (g, l) = self.locked(kh.page)?;
        Ok((kh, g, l))
    }

    /// A locked, checked (and if need be repaired) page.
    #[inline(always)]
    fn locked(&self, i: u32) -> Result<(PageGuard<'_>, Locked<'_>)> {
        let g = self.lock_page(i, false)?;
        Ok((g, self.checked(i)?))
    }

    /// Page `i` as its lock holder sees it: checked against the file header, and
    /// repaired if a writer died in it or its header is impossible.
    #[inline(always)]
    fn checked(&self, i: u32) -> Result<Locked<'_>> {
        let mut l = self.locked_view(i)?;
        l.prepare();
        Ok(l)
    }

    /// Page `i` as its lock holder sees it, checked against the file header only (not
    /// repaired: `verify` looks at it as it is).
    #[inline(always)]
    pub(crate) fn locked_view(&self, i: u32) -> Result<Locked<'_>> {
        // Before touching the page: `init_file` in another process may have given the
        // file another geometry or secret (or died half way); it holds every page lock
        // while it changes the file, so under ours the header is whole or marked.
        if Header::identity(&Region::of(self.os.map())) != Some(self.identity) {
            return Err(Error::Incompatible {
                path: self.path.clone(),
                reason: "the file was re-initialised (init_file) by another process with \
                         another geometry or hash secret, or its initialiser died; close \
                         this store and open the file again"
                    .into(),
            });
        }
        Ok(Locked::new(
            self.page(i),
            &self.hasher,
            self.fail,
            &self.counters.recovered,
            Region::of(self.os.map()),
        ))
    }

    /// Finds `key` in a locked page (see [`Locked::find_verified`]; `verify` unless the
    /// record is replaced unread); a page still damaged after its repair is an error.
    #[inline]
    fn find(
        &self,
        l: &mut Locked<'_>,
        key: &Key,
        kh: KeyHash,
        verify: bool,
    ) -> Result<Option<Found>> {
        l.find_verified(key.as_bytes(), kh, verify)
            .map_err(|d| self.corrupted(kh.page, d.0))
    }

    /// Adds evictions to the file-wide counters (the slow path of a write only).
    #[cold]
    fn count_evictions(&self, live: u64, expired: u64) {
        let file = Region::of(self.os.map());
        FileCounter::EvictedLive.add(&file, live);
        FileCounter::EvictedExpired.add(&file, expired);
    }

    /// The file-wide counters: what every process that wrote the file since it was
    /// initialised evicted and repaired (tools; each process's own share is in
    /// [`SessionStore::stats`]). Processes running a build older than these counters
    /// add nothing to them.
    pub fn file_counters(&self) -> crate::FileCounters {
        let file = Region::of(self.os.map());
        // Relaxed: statistics.
        let get = |c: FileCounter| c.word(&file).map_or(0, |w| w.load(Ordering::Relaxed));
        crate::FileCounters {
            evicted_live: get(FileCounter::EvictedLive),
            evicted_expired: get(FileCounter::EvictedExpired),
            repairs: get(FileCounter::Repairs),
            lost_in_repair: get(FileCounter::LostInRepair),
        }
    }

    /// The live entry of a found record at `now`, if any.
    /// The live entry of a found record, its liveness decided mostly without a precise
    /// clock read (`now` is read only near the entry's expiry; see `time`).
    fn entry(
        &self,
        l: &Locked<'_>,
        f: &Found,
        now: &mut impl FnMut() -> Timestamp,
        page: u32,
    ) -> Result<Option<Entry>> {
        let expires_at = decode_expiry(f.hdr.expires);
        if !self.clock.is_live_with(expires_at, now) {
            return Ok(None);
        }
        Ok(Some(Entry {
            value: l.value(f).map_err(|d| self.corrupted(page, d.0))?,
            expires_at,
            version: version_of(f.hdr.version),
        }))
    }

    fn corrupted(&self, page: u32, what: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "{} page {page}: {what} (even after repair); remove the file or open it with init_file(true)",
                self.path.display()
            ),
        }
    }

    fn check_len(&self, key: &Key, len: usize) -> Result<()> {
        let max = self.geo.max_value_len(key.len());
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        Ok(())
    }

    /// Writes `value` into a locked page after the mode check; `existing` is the key's
    /// record found under this lock, `moved_from` as in [`WriteRequest`].
    #[inline]
    fn write_locked(
        &self,
        l: &mut Locked<'_>,
        (key, kh): (&Key, KeyHash),
        value: &[u8],
        expires_at: Option<Timestamp>,
        (existing, moved_from): (Option<&Found>, Option<&Found>),
        now: &mut dyn FnMut() -> Timestamp,
    ) -> Result<WriteOutcome> {
        let version = l.next_version();
        let req = WriteRequest {
            key: key.as_bytes(),
            kh,
            value,
            expires: encode_expiry(expires_at),
            version,
            existing,
            moved_from,
        };
        let ev = l.write(&req, now, self.policy).map_err(|NoRoom { evicted }| {
            // What went before the write gave up (a damaged page) is still reported.
            self.os.locks()[kh.page as usize].count(0, evicted.live, evicted.expired);
            self.count_evictions(evicted.live, evicted.expired);
            Error::NoSpace {
                key: key.clone(),
                needed: record_size(key.len(), value.len()),
            }
        })?;
        self.os.locks()[kh.page as usize].count(1, ev.live, ev.expired);
        if ev.live + ev.expired > 0 {
            self.count_evictions(ev.live, ev.expired);
        }
        Ok(WriteOutcome {
            version: version_of(version),
            evicted: Evictions::Counted {
                live: ev.live,
                expired: ev.expired,
            },
        })
    }

    /// The lock-free read: seqlock retries, then the locked fallback.
    #[inline(always)]
    fn read(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        // A forked child whose refresh failed has no file behind its mapping.
        self.os.check_read().map_err(|e| self.refresh_failed(e))?;
        match lock_free(self, key, buf, READ_SPINS) {
            Read::Hit(meta) => Ok(Some(meta)),
            Read::Miss => Ok(None),
            Read::NeedsLock => self.read_locked(key, buf),
        }
    }

    /// The read's fallback, out of line so that the lock-free path stays small: a writer
    /// died mid-write, is very slow or stopped, writers keep the page busy, or the page
    /// is damaged. Polls the page's locks (taking them repairs the page) with a growing
    /// sleep of up to 1 ms, trying a lock-free read between polls (writers queued in
    /// the kernel get the lock ahead of a poller, but a page they keep busy is still
    /// stable often enough to read), and gives up after `read_lock_timeout`.
    #[cold]
    #[inline(never)]
    fn read_locked(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        let kh = self.hasher.hash(key.as_bytes());
        let page = self.page(kh.page);
        let limit = self.read_lock_timeout;
        let deadline = std::time::Instant::now() + limit;
        // Relaxed: only compared, to tell a stopped writer from busy ones.
        let seq_at_start = page.seq().load(Ordering::Relaxed);
        let mut backoff = Backoff::new();
        let _g = loop {
            if let Some(g) = self.try_lock_page(kh.page)? {
                break g;
            }
            match lock_free(self, key, buf, 1) {
                Read::Hit(meta) => return Ok(Some(meta)),
                Read::Miss => return Ok(None),
                Read::NeedsLock => {}
            }
            if std::time::Instant::now() >= deadline {
                let busy = page.seq().load(Ordering::Relaxed) != seq_at_start;
                return Err(self.read_timed_out(kh.page, limit, busy));
            }
            backoff.wait();
        };
        let mut l = self.checked(kh.page)?;
        let Some(f) = self.find(&mut l, key, kh, true)? else {
            return Ok(None);
        };
        let expires_at = decode_expiry(f.hdr.expires);
        if !self.clock.is_live(expires_at) {
            return Ok(None);
        }
        buf.clear();
        l.value_append(&f, buf)
            .map_err(|d| self.corrupted(kh.page, d.0))?;
        l.touch_stamp(&f);
        Ok(Some(EntryMeta {
            expires_at,
            version: version_of(f.hdr.version),
        }))
    }

    /// A read that waited `limit` for page `i`: `busy` if the page changed meanwhile
    /// (writers kept it, none is stopped).
    fn read_timed_out(&self, i: u32, limit: Duration, busy: bool) -> Error {
        let context = if busy {
            format!(
                "page {i} of {}: writers kept it locked and changing for more than {limit:?}, \
                 and no lock-free read of it got through (contention on one page: spread \
                 the writes over more pages or raise read_lock_timeout); retry",
                self.path.display()
            )
        } else {
            format!(
                "page {i} of {}: a writer has held its lock for more than {limit:?} without \
                 changing it (a process stopped, stuck or starved of CPU mid-write, for \
                 example by SIGSTOP or a debugger); continue or kill that process, then retry",
                self.path.display()
            )
        };
        Error::Backend {
            context,
            source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
    }

    /// Runs `f` on every page in order, each under its lock.
    fn each_page<T>(&self, mut f: impl FnMut(&mut Locked<'_>) -> T) -> Result<Vec<T>> {
        (0..self.geo.num_pages)
            .map(|i| {
                let (_g, mut l) = self.locked(i)?;
                Ok(f(&mut l))
            })
            .collect()
    }
}

impl SessionStore for FastMmapStore {
    // Inline: a caller that keeps only the value (most do) drops the call and the copy of
    // the 56-byte result; the read itself stays out of line.
    #[inline]
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        // Allocated before the read rather than in the middle of its copy (where a call
        // to the allocator stalls the loads in flight): a short value needs no other
        // allocation, a miss pays for one it did not need.
        let mut buf = Vec::with_capacity(CRC_MAX);
        Ok(self.get_into(key, &mut buf)?.map(|m| Entry {
            value: buf,
            expires_at: m.expires_at,
            version: m.version,
        }))
    }

    // Always: with `get` inlined it has two callers, and the compiler then kept it out of
    // line, a second call on every read (the read itself stays out of line).
    #[inline(always)]
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        let r = match self.read(key, buf) {
            Ok(r) => r,
            Err(e) => {
                // Whatever a failed attempt copied was not verified: hand none of it out.
                buf.clear();
                return Err(e);
            }
        };
        self.counters.read(r.is_some());
        Ok(r)
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        self.check_len(key, value.len())?;
        let (kh, _g, mut l) = self.locked_for(key)?;
        // The precise clock is read at most once, and only if something needs it: a
        // short relative expiry, an entry within a second of its expiry under a
        // conditional write, or an eviction (see `time` for the rest).
        let mut t = None;
        let mut now = || *t.get_or_insert_with(|| self.clock.now());
        let expires_at = self.clock.resolve(expiry, self.default_ttl, &mut now);
        // An upsert replaces whatever is there; the other modes look at the live entry,
        // whose record must be intact.
        let reads = mode.reads_current();
        let found = self.find(&mut l, key, kh, reads)?;
        let current = found
            .filter(|f| {
                reads
                    && self
                        .clock
                        .is_live_with(decode_expiry(f.hdr.expires), &mut now)
            })
            .map(|f| version_of(f.hdr.version));
        mode.check(key, current)?;
        self.write_locked(
            &mut l,
            (key, kh),
            value,
            expires_at,
            (found.as_ref(), None),
            &mut now,
        )
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        let (kh, _g, mut l) = self.locked_for(key)?;
        let now = self.clock.now();
        let Some(f) = self.find(&mut l, key, kh, true)? else {
            return Ok(false);
        };
        let live = is_live(decode_expiry(f.hdr.expires), now);
        l.remove(&f);
        if live {
            self.os.locks()[kh.page as usize].count(1, 0, 0);
        }
        Ok(live)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let (kh, _g, mut l) = self.locked_for(key)?;
        // The precise clock only where it is needed, as in `put`.
        let mut t = None;
        let mut now = || *t.get_or_insert_with(|| self.clock.now());
        let Some(f) = self.find(&mut l, key, kh, true)? else {
            return Ok(false);
        };
        if !self
            .clock
            .is_live_with(decode_expiry(f.hdr.expires), &mut now)
        {
            return Ok(false);
        }
        let e = encode_expiry(self.clock.resolve(expiry, self.default_ttl, &mut now));
        l.set_expires(&f, e)
            .map_err(|d| self.corrupted(kh.page, d.0))?;
        self.os.locks()[kh.page as usize].count(1, 0, 0);
        Ok(true)
    }

    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        let (kh, g, mut l) = self.locked_for(key)?;
        // The precise clock only where it is needed, as in `put`.
        let mut t = None;
        let mut now = || *t.get_or_insert_with(|| self.clock.now());
        let found = self.find(&mut l, key, kh, true)?;
        let current = match &found {
            Some(fd) => self.entry(&l, fd, &mut now, kh.page)?,
            None => None,
        };
        self.counters.read(current.is_some());
        // The closure runs once, under the page lock, before anything changes: if it
        // panics the guards release both locks and the page is as it was.
        let action = f(current.as_ref());
        // A fork inside the closure: only the parent holds the lock.
        g.still_held()?;
        match action {
            UpdateAction::Keep => Ok(UpdateOutcome::Kept),
            UpdateAction::Delete => {
                let existed = current.is_some();
                if let Some(fd) = &found {
                    l.remove(fd);
                }
                if existed {
                    self.os.locks()[kh.page as usize].count(1, 0, 0);
                }
                Ok(UpdateOutcome::Deleted { existed })
            }
            UpdateAction::Set { value, expiry } => {
                self.check_len(key, value.len())?;
                let expires_at = self.clock.resolve(expiry, self.default_ttl, &mut now);
                self.write_locked(
                    &mut l,
                    (key, kh),
                    &value,
                    expires_at,
                    (found.as_ref(), None),
                    &mut now,
                )
                .map(UpdateOutcome::Written)
            }
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut scratch = Vec::new();
        let total: u64 = self
            .each_page(|l| l.purge(now, &mut scratch))?
            .into_iter()
            .sum();
        Counters::add(&self.counters.purged, total);
        Ok(total)
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        for i in 0..self.geo.num_pages {
            let p = self.page(i);
            // Snapshots: the counts are approximate while writers run.
            let (count, lo, dead) = (p.count(), p.data_lo(), p.dead());
            s.entries += u64::from(count);
            s.bytes_used += u64::from(self.geo.page_size.saturating_sub(lo).saturating_sub(dead));
        }
        let (reads, hits) = self.counters.reads_hits();
        let c = &self.counters;
        s.capacity = Some(u64::from(self.geo.page_size) * u64::from(self.geo.num_pages));
        s.reads = reads;
        s.hits = hits;
        for p in self.os.locks().iter() {
            s.writes += p.writes.load(Ordering::Relaxed);
            s.evicted_live += p.evicted_live.load(Ordering::Relaxed);
            s.evicted_expired += p.evicted_expired.load(Ordering::Relaxed);
        }
        s.purged = c.purged.load(Ordering::Relaxed);
        s.recovered = c.recovered.pages.load(Ordering::Relaxed);
        s.lost_in_repair = c.recovered.lost.load(Ordering::Relaxed);
        Ok(s)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::new(self.geo.max_value_len(MAX_KEY_LEN));
        caps.shared_across_processes = true;
        caps.survives_restart = true;
        caps.bounded = true;
        caps.scan = Support::Exact;
        caps.clear = Support::Exact;
        caps
    }

    /// Page by page: each page's live entries are copied out under its lock (checked
    /// like a writer's lookup, the page repaired if a record fails), then visited with no
    /// lock held.
    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        let mut visited = 0;
        for i in 0..self.geo.num_pages {
            let entries = {
                let (_g, mut l) = self.locked(i)?;
                let now = self.clock.now();
                match l.live_entries(options, now) {
                    Ok(e) => e,
                    Err(_) => {
                        l.salvage();
                        l.live_entries(options, now)
                            .map_err(|d| self.corrupted(i, d.0))?
                    }
                }
            };
            if store_api::visit_part(entries, visit, &mut visited).is_break() {
                break;
            }
        }
        Ok(visited)
    }

    /// Page by page, each emptied in one write section under its lock (readers see a
    /// page whole or empty; an entry written to a page already cleared survives).
    fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        for i in 0..self.geo.num_pages {
            let (_g, mut l) = self.locked(i)?;
            let n = l.clear(self.clock.now());
            self.os.locks()[i as usize].count(n, 0, 0);
            removed += n;
        }
        Ok(removed)
    }

    /// Atomic: both pages are locked, in ascending page order, for the whole move.
    fn rotate(&self, from: &Key, to: &Key) -> Result<bool> {
        let kf = self.hasher.hash(from.as_bytes());
        let kt = self.hasher.hash(to.as_bytes());
        if kf.page == kt.page {
            let (_g, mut l) = self.locked(kf.page)?;
            let now = self.clock.now();
            return self.rotate_locked(&mut l, None, (from, kf), (to, kt), now);
        }
        // Lock order: ascending page index, so two rotations never wait on each other.
        let (first, second) = (kf.page.min(kt.page), kf.page.max(kt.page));
        let (_g1, mut l1) = self.locked(first)?;
        let _g2 = self.lock_page(second, true)?;
        let mut l2 = self.checked(second)?;
        let now = self.clock.now();
        if kf.page == first {
            self.rotate_locked(&mut l1, Some(&mut l2), (from, kf), (to, kt), now)
        } else {
            self.rotate_locked(&mut l2, Some(&mut l1), (from, kf), (to, kt), now)
        }
    }
}

impl FastMmapStore {
    /// The move of `rotate` with both pages locked; `lt` is `None` when both keys share
    /// `lf`'s page.
    fn rotate_locked<'p>(
        &self,
        lf: &mut Locked<'p>,
        lt: Option<&mut Locked<'p>>,
        (from, kf): (&Key, KeyHash),
        (to, kt): (&Key, KeyHash),
        now: Timestamp,
    ) -> Result<bool> {
        let Some(ff) = self.find(lf, from, kf, true)? else {
            return Ok(false);
        };
        let Some(entry) = self.entry(lf, &ff, &mut || now, kf.page)? else {
            return Ok(false);
        };
        self.check_len(to, entry.value.len())?;
        let same_page = lt.is_none();
        let l = match lt {
            Some(lt) => lt,
            None => &mut *lf,
        };
        let ft = self.find(l, to, kt, true)?;
        if ft.is_some_and(|f| is_live(decode_expiry(f.hdr.expires), now)) {
            return Err(Error::AlreadyExists { key: to.clone() });
        }
        // On one page, finding `to` may have repaired the page, which moves slots: find
        // `from` again. It goes in the same write section as `to` arrives, and its room
        // counts as free: a full page neither evicts nor refuses for the move.
        let moved = if same_page {
            match self.find(l, from, kf, true)? {
                Some(ff) => Some(ff),
                None => return Ok(false),
            }
        } else {
            None
        };
        let (value, expires_at) = (&entry.value, entry.expires_at);
        self.write_locked(
            l,
            (to, kt),
            value,
            expires_at,
            (ft.as_ref(), moved.as_ref()),
            &mut || now,
        )?;
        if !same_page {
            lf.remove(&ff);
        }
        self.os.locks()[kf.page as usize].count(1, 0, 0);
        Ok(true)
    }
}
