//! Options for a [`FastMmapStore`] (the `setup_session` counterpart), with Perl's names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use store_api::{Clock, Error, EvictionPolicy, Result};

use crate::FastMmapStore;
use crate::LockKind;
use crate::format::geometry::{Geometry, MAX_PAGE_SIZE, MIN_PAGE_SIZE};
use crate::time::TimeSource;

/// Default `cache_size`: 5 MiB, about Perl's 5.8 MB.
pub const DEFAULT_CACHE_SIZE: u64 = 5 << 20;
/// Default page size for caches up to 32 MiB (larger caches get larger pages so that
/// there are at most 64 pages). Large pages even out how many keys land on each page,
/// which is what lets a file fill to 80 % before a live entry is lost.
pub const DEFAULT_PAGE_SIZE: u32 = 512 << 10;
/// Default [`FastMmapBuilder::read_lock_timeout`]: 5 seconds.
pub const DEFAULT_READ_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default file mode: owner read-write, group read (Perl's 0640), narrowed by the
/// process's umask.
pub const DEFAULT_MODE: u32 = 0o640;

/// Builds a [`FastMmapStore`].
///
/// ```
/// # fn main() -> store_api::Result<()> {
/// use std::time::Duration;
/// use store_fastmmap::FastMmapStore;
/// let dir = tempfile::tempdir().unwrap();
/// let store = FastMmapStore::builder()
///     .storage(dir.path().join("sessions"))
///     .cache_size(1 << 20)
///     .expires(Duration::from_secs(3600))
///     .open()?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FastMmapBuilder {
    pub(crate) storage: Option<PathBuf>,
    pub(crate) app_name: String,
    pub(crate) init_file: bool,
    pub(crate) cache_size: Option<u64>,
    pub(crate) page_size: Option<u32>,
    pub(crate) num_pages: Option<u32>,
    pub(crate) expires: Option<Duration>,
    pub(crate) policy: EvictionPolicy,
    pub(crate) clock: TimeSource,
    pub(crate) mode: u32,
    pub(crate) read_lock_timeout: Duration,
    pub(crate) write_lock_timeout: Option<Duration>,
    pub(crate) existing_only: bool,
    pub(crate) lock_kind: Option<LockKind>,
}

impl Default for FastMmapBuilder {
    fn default() -> Self {
        FastMmapBuilder {
            storage: None,
            app_name: "fastmmap".into(),
            init_file: false,
            cache_size: None,
            page_size: None,
            num_pages: None,
            expires: None,
            policy: EvictionPolicy::Lru,
            clock: TimeSource::system(),
            mode: DEFAULT_MODE,
            read_lock_timeout: DEFAULT_READ_LOCK_TIMEOUT,
            write_lock_timeout: None,
            existing_only: false,
            lock_kind: None,
        }
    }
}

impl FastMmapBuilder {
    /// The file (Perl's `storage`). Default: the temp dir plus `<app_name>_session_data`.
    pub fn storage(mut self, path: impl AsRef<Path>) -> Self {
        self.storage = Some(path.as_ref().to_owned());
        self
    }

    /// The application name used in the default path.
    pub fn app_name(mut self, name: &str) -> Self {
        self.app_name = name.to_owned();
        self
    }

    /// Clear the file at open (Perl's `init_file`); also the way to change an existing
    /// file's geometry. Other processes using the file must reopen it.
    pub fn init_file(mut self, yes: bool) -> Self {
        self.init_file = yes;
        self
    }

    /// Total size of the pages in bytes (Perl's `cache_size`, default 5 MiB). The file
    /// is this size rounded to whole pages, plus a 4 KiB header.
    pub fn cache_size(mut self, bytes: u64) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Page size: a power of two from 4 KiB to 16 MiB (default 512 KiB; larger for
    /// caches above 32 MiB). The largest value is about `page_size * 29/32 - 88 - key`.
    pub fn page_size(mut self, bytes: u32) -> Self {
        self.page_size = Some(bytes);
        self
    }

    /// Number of pages (default `cache_size / page_size`).
    pub fn num_pages(mut self, n: u32) -> Self {
        self.num_pages = Some(n);
        self
    }

    /// Default time to live for writes with [`Expiry::Default`](store_api::Expiry)
    /// (default: never expire). Perl's name, kept for its users; the same as
    /// [`Self::default_ttl`].
    pub fn expires(mut self, ttl: Duration) -> Self {
        self.expires = Some(ttl);
        self
    }

    /// The name the other engines' builders use for [`Self::expires`].
    pub fn default_ttl(self, ttl: Duration) -> Self {
        self.expires(ttl)
    }

    /// What to do when a page is full of live entries (default LRU eviction).
    pub fn policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock; tests use `ManualClock`, which is read as it is.
    ///
    /// The default is the system wall clock, read cheaply: whether an entry is live is
    /// decided exactly, from the kernel's coarse clock (`CLOCK_REALTIME_COARSE`, a few
    /// nanoseconds) unless the entry is within a second of its expiry, when the precise
    /// clock decides. A relative expiry of one second or more is resolved from the coarse
    /// clock rounded up by two of its ticks by `put`, so the entry lives at least as long
    /// as asked and at most two ticks (8 ms with Linux's usual 250 Hz) longer; shorter
    /// ones, `After(ZERO)` and the other writes use the precise clock. Both shortcuts
    /// assume the kernel's tick is not stalled (see "Platform assumptions" in
    /// `docs/FORMAT.md`: a VM paused for over a second could see an entry live for that
    /// long past its expiry).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = TimeSource::Custom(clock);
        self
    }

    /// File mode for a new file, as a number (default `0o640`), narrowed by the umask
    /// (never widened: with umask 077 the file is 0600). Must include owner read-write,
    /// must not let group or others write and must give others nothing: anyone who can
    /// read the file reads every session and the hash secret, and can block every
    /// writer with an fcntl lock. Make it `0o600` where other users share the group.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How long a read waits for a page's locks when it falls back to reading under
    /// them (default 5 s). A read takes no lock while the page is stable; it falls back
    /// when the page's seqlock stays odd for 20,000 tries, which happens when the page's
    /// writer died (the lock is then free and the read repairs the page) or is stopped
    /// or stuck while holding the lock (`SIGSTOP`, a debugger, a hung disk). In the
    /// latter case the read fails with [`Error::Backend`] naming the page after this
    /// long, instead of blocking until the writer continues. Writes wait for page locks
    /// without a limit.
    pub fn read_lock_timeout(mut self, timeout: Duration) -> Self {
        self.read_lock_timeout = timeout;
        self
    }

    /// How long a write (and `purge_expired`, `stats`, `rotate`) waits for a page's
    /// locks before failing with [`Error::Backend`] naming the page (an
    /// [`std::io::ErrorKind::TimedOut`] source); nothing is written. By default writes
    /// wait without a limit, as the Perl original does. A lock is held for
    /// microseconds, and a writer that dies releases it at once; only a process stopped
    /// or stuck while holding it (`SIGSTOP`, a debugger, a hung disk) makes writers
    /// wait longer. Set this before calling the store from an async runtime, where a
    /// waiting write holds a worker thread.
    ///
    /// With a limit, a busy page's lock is polled (first spinning, then sleeping up to
    /// 1 ms between tries) instead of queueing in the kernel, so writers of one hot page
    /// are served in no particular order. A zero limit is refused by `open`.
    pub fn write_lock_timeout(mut self, timeout: Duration) -> Self {
        self.write_lock_timeout = Some(timeout);
        self
    }

    /// Open only a file that exists and is an initialised store (default false): never
    /// create the file or its directory, never initialise or re-initialise it, whatever
    /// it holds. For tools that look at the file of running servers (`sessionctl`): a
    /// missing file, an empty one or one an initialiser left half-written is an error,
    /// not a new store. Cannot be combined with `init_file`.
    pub fn existing_only(mut self, yes: bool) -> Self {
        self.existing_only = yes;
        self
    }

    /// The lock kind of a file this opens creates or initialises (default
    /// [`LockKind::Fcntl`]); see [`LockKind`]. An existing file keeps its own kind: given,
    /// it must match (else [`Error::Incompatible`]); not given, the file's kind is used.
    /// [`LockKind::Futex`] needs Linux with glibc (elsewhere `open` refuses it).
    pub fn lock_kind(mut self, kind: LockKind) -> Self {
        self.lock_kind = Some(kind);
        self
    }

    /// Opens (creating or initialising) the store. See [`FastMmapStore::open`] for the
    /// hazards of a shared mapping.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad options, [`Error::Incompatible`] for a file of
    /// another format, geometry, owner or mode, [`Error::Corrupted`] for a damaged
    /// header, [`Error::Io`] for OS failures.
    pub fn open(self) -> Result<FastMmapStore> {
        crate::open::open(self)
    }

    /// The path the store will use.
    pub(crate) fn path(&self) -> PathBuf {
        self.storage
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("{}_session_data", self.app_name)))
    }

    /// Whether any geometry option was given.
    pub(crate) fn geometry_given(&self) -> bool {
        self.cache_size.is_some() || self.page_size.is_some() || self.num_pages.is_some()
    }

    /// The geometry the options ask for.
    pub(crate) fn geometry(&self) -> Result<Geometry> {
        let bad = |option, reason: String| Error::InvalidConfig { option, reason };
        if let Some(ps) = self.page_size
            && (!ps.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps))
        {
            return Err(bad(
                "page_size",
                format!("{ps} is not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}"),
            ));
        }
        if self.cache_size == Some(0) {
            return Err(bad("cache_size", "must be more than 0".into()));
        }
        if self.num_pages == Some(0) {
            return Err(bad("num_pages", "must be at least 1".into()));
        }
        let cache = self
            .cache_size
            .unwrap_or_else(|| match (self.page_size, self.num_pages) {
                (Some(ps), Some(n)) => u64::from(ps) * u64::from(n),
                _ => DEFAULT_CACHE_SIZE,
            });
        let page_size = self.page_size.unwrap_or_else(|| default_page_size(cache));
        let num_pages = match self.num_pages {
            Some(n) => n,
            None => {
                let n = (cache + u64::from(page_size) / 2) / u64::from(page_size);
                u32::try_from(n.max(1))
                    .map_err(|_| bad("cache_size", format!("{cache} bytes make too many pages")))?
            }
        };
        let g = Geometry {
            page_size,
            num_pages,
            locks: self.lock_kind.unwrap_or_default(),
        };
        if let (Some(c), Some(_), Some(_)) = (self.cache_size, self.page_size, self.num_pages) {
            let got = u64::from(page_size) * u64::from(num_pages);
            if got.abs_diff(c) >= u64::from(page_size) {
                return Err(bad(
                    "cache_size",
                    format!(
                        "{c} disagrees with num_pages {num_pages} x page_size {page_size}; give two of the three"
                    ),
                ));
            }
        }
        g.check().map_err(|r| bad("cache_size", r))?;
        Ok(g)
    }

    /// Checks the lock timeouts: a zero limit would fail every contended call.
    pub(crate) fn check_timeouts(&self) -> Result<()> {
        let zero = [
            ("read_lock_timeout", Some(self.read_lock_timeout)),
            ("write_lock_timeout", self.write_lock_timeout),
        ]
        .into_iter()
        .find(|(_, t)| *t == Some(Duration::ZERO));
        match zero {
            Some((option, _)) => Err(Error::InvalidConfig {
                option,
                reason: "a zero timeout fails every call that meets a busy page; use a \
                         positive duration (a few seconds)"
                    .into(),
            }),
            None => Ok(()),
        }
    }

    /// Checks the file mode.
    pub(crate) fn checked_mode(&self) -> Result<u32> {
        let m = self.mode;
        let reason = if m & !0o777 != 0 {
            Some(format!(
                "{m:#o} has bits outside 0o777 (a string like \"0600\" must be parsed as octal)"
            ))
        } else if m & 0o600 != 0o600 {
            Some(format!("{m:#o} must let the owner read and write (0o600)"))
        } else if m & 0o022 != 0 {
            Some(format!(
                "{m:#o} lets group or others write the file, which would let other users plant sessions; use 0o640 or 0o600"
            ))
        } else if m & 0o007 != 0 {
            Some(format!(
                "{m:#o} lets every local user open the file and read every session; use 0o640 or 0o600"
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidConfig {
                option: "mode",
                reason,
            }),
            None => Ok(m),
        }
    }
}

/// 512 KiB up to a 32 MiB cache; beyond, the power of two giving at most 64 pages.
fn default_page_size(cache: u64) -> u32 {
    let per = cache.div_ceil(64).next_power_of_two();
    let ps = per.clamp(u64::from(DEFAULT_PAGE_SIZE), u64::from(MAX_PAGE_SIZE)) as u32;
    // A small cache gets one page of (at most) its own size.
    let fit = if cache >= u64::from(MIN_PAGE_SIZE) {
        1u64 << (63 - cache.leading_zeros())
    } else {
        u64::from(MIN_PAGE_SIZE)
    };
    ps.min(fit.max(u64::from(MIN_PAGE_SIZE)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_is_ten_pages_of_512k() {
        let g = FastMmapBuilder::default().geometry().unwrap();
        assert_eq!((g.page_size, g.num_pages), (512 << 10, 10));
        assert_eq!(g.file_len(), 4096 + (5 << 20));
    }

    #[test]
    fn file_is_the_size_asked_for_within_one_page() {
        for cache in [100_000u64, 1 << 20, 5_000_000, 50_000_000, 1 << 30] {
            let g = FastMmapBuilder::default()
                .cache_size(cache)
                .geometry()
                .unwrap();
            let pages = u64::from(g.page_size) * u64::from(g.num_pages);
            assert!(
                pages.abs_diff(cache) <= u64::from(g.page_size),
                "{cache}: {pages} in pages of {}",
                g.page_size
            );
            assert!(g.num_pages <= 64 || g.page_size == MAX_PAGE_SIZE);
        }
    }

    #[test]
    fn nonsense_options_are_refused() {
        let b = FastMmapBuilder::default;
        assert!(matches!(
            b().page_size(3000).geometry(),
            Err(Error::InvalidConfig {
                option: "page_size",
                ..
            })
        ));
        assert!(b().num_pages(0).geometry().is_err());
        for (b, name) in [
            (b().write_lock_timeout(Duration::ZERO), "write_lock_timeout"),
            (b().read_lock_timeout(Duration::ZERO), "read_lock_timeout"),
        ] {
            assert!(matches!(
                b.check_timeouts(),
                Err(Error::InvalidConfig { option, .. }) if option == name
            ));
        }
        assert!(
            b().write_lock_timeout(Duration::from_millis(1))
                .check_timeouts()
                .is_ok()
        );
        assert!(b().cache_size(0).geometry().is_err());
        assert!(
            b().cache_size(1 << 20)
                .page_size(4096)
                .num_pages(3)
                .geometry()
                .is_err()
        );
        // Perl parsed the string "0600" as decimal 600 = 0o1130.
        for m in [600, 0o1130, 0o400, 0o666, 0o660, 0o10600, 0o644, 0o604] {
            let e = b().mode(m).checked_mode().unwrap_err();
            assert!(
                matches!(e, Error::InvalidConfig { option: "mode", .. }),
                "{m:o}: {e}"
            );
        }
        assert_eq!(b().mode(0o600).checked_mode().unwrap(), 0o600);
        assert_eq!(b().checked_mode().unwrap(), 0o640);
    }

    #[test]
    fn default_path_is_temp_dir_plus_app_name() {
        let p = FastMmapBuilder::default().app_name("MyApp").path();
        assert_eq!(p, std::env::temp_dir().join("MyApp_session_data"));
    }
}
