//! The trait an engine author implements to run the suite, and what the suite asks for.

use std::fmt;
use std::time::Duration;

use store_api::{EvictionPolicy, ManualClock, SessionStore};

/// How much room a behaviour needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Size {
    /// Room for at least 10,000 entries of 100 bytes without evicting anything; unbounded
    /// engines are always this size.
    #[default]
    Roomy,
    /// A bounded store that fills up after a few dozen to a few thousand entries of 100
    /// bytes, so that eviction (or [`Error::NoSpace`](store_api::Error::NoSpace)) is
    /// exercised. Unbounded engines answer [`Unsupported`].
    Small,
}

/// What a behaviour asks of a fresh store.
///
/// Harnesses read the fields; the suite builds the values.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Spec {
    /// The clock the store must measure expiry against. `None`: any clock (the suite
    /// then never depends on time). A harness that cannot inject a clock answers
    /// [`Unsupported`] when this is `Some`, and every expiry behaviour is skipped.
    pub clock: Option<ManualClock>,
    /// How much room the store needs.
    pub size: Size,
    /// What a bounded store does when it is full of live entries. A harness that cannot
    /// honour [`EvictionPolicy::NeverEvictLive`] answers [`Unsupported`].
    pub policy: EvictionPolicy,
    /// The time to live of [`Expiry::Default`](store_api::Expiry::Default) writes;
    /// `None`: never expire (the engine's own default must then be "never").
    pub default_ttl: Option<Duration>,
}

impl Spec {
    /// A roomy store on any clock, LRU policy, no default time to live.
    pub fn new() -> Self {
        Spec::default()
    }

    /// The same, on `clock`.
    pub fn with_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The same, on a fresh [`ManualClock`]; returns the clock too.
    pub fn with_manual_clock(self) -> (Self, ManualClock) {
        let clock = ManualClock::default();
        (self.with_clock(clock.clone()), clock)
    }

    /// The same, small and bounded.
    pub fn small(mut self) -> Self {
        self.size = Size::Small;
        self
    }

    /// The same, with `policy`.
    pub fn policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same, with a default time to live.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }
}

/// Why a harness cannot provide what a behaviour needs; the behaviour is skipped and
/// the reason printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl Unsupported {
    /// A reason to skip.
    pub fn new(reason: impl Into<String>) -> Self {
        Unsupported(reason.into())
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How [`Harness::corrupt`] damages a store's persistent data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Corruption {
    /// Overwrite parts of the data with garbage (a stray write, a bad disk).
    Scribble,
    /// Cut the data short (a full disk, a killed copy).
    Truncate,
    /// Replace the data with something made by an incompatible version or geometry.
    Incompatible,
}

/// What an engine author implements to run the suite: how to make a fresh, isolated
/// store and, optionally, how to reach it again (reopen, a worker process) and how to
/// break it.
///
/// One harness value stands for one store (one file, one server namespace...).
/// [`create`](Self::create) makes it and [`open`](Self::open) hands out handles onto it;
/// every handle sees the same entries. For engines whose capabilities say they survive a
/// restart, dropping every handle and calling `open` again is a reopen.
///
/// ```
/// use conformance::{Harness, Spec, Unsupported};
/// use store_memory::MemoryStore;
/// use std::sync::Arc;
///
/// struct Memory(Arc<MemoryStore>);
///
/// impl Harness for Memory {
///     type Store = Arc<MemoryStore>;
///     fn create(spec: &Spec) -> Result<Self, Unsupported> {
///         let mut b = MemoryStore::builder().policy(spec.policy);
///         if let Some(clock) = &spec.clock {
///             b = b.clock(Arc::new(clock.clone()));
///         }
///         if let Some(ttl) = spec.default_ttl {
///             b = b.default_ttl(ttl);
///         }
///         if spec.size == conformance::Size::Small {
///             b = b.capacity(16 << 10);
///         }
///         Ok(Memory(Arc::new(b.build().map_err(|e| Unsupported::new(e.to_string()))?)))
///     }
///     fn open(&self) -> store_api::Result<Self::Store> {
///         Ok(self.0.clone())
///     }
/// }
/// // In a test file: conformance::suite!(Memory);
/// ```
pub trait Harness: Sized + Send + Sync + 'static {
    /// The engine under test.
    type Store: SessionStore + 'static;

    /// Makes a fresh store as `spec` asks, isolated from every other store the suite
    /// makes (tests run in parallel). Engines shared across processes should not create
    /// their file here but in the first [`open`](Self::open), so that "simultaneous
    /// first open" really is one.
    ///
    /// # Errors
    /// [`Unsupported`] when the engine cannot do what `spec` asks (inject a clock, be
    /// small, never evict live entries); the behaviour is skipped with that reason.
    fn create(spec: &Spec) -> Result<Self, Unsupported>;

    /// A new handle onto this harness's store.
    ///
    /// # Errors
    /// Whatever the engine reports; the suite treats an error here as a failure unless
    /// the store was deliberately corrupted.
    fn open(&self) -> store_api::Result<Self::Store>;

    /// The result of opening a store whose backend cannot be reached (a server address
    /// nobody listens on, a file in a directory that cannot be created). The suite checks
    /// that the open fails or that every operation of the store fails, never answering
    /// `Ok(None)`.
    ///
    /// # Errors
    /// [`Unsupported`] (the default) when the harness cannot make such a store.
    fn unreachable(spec: &Spec) -> Result<store_api::Result<Self::Store>, Unsupported> {
        let _ = spec;
        Err(Unsupported::new(
            "the harness cannot make an unreachable backend (Harness::unreachable)",
        ))
    }

    /// Damages this harness's persistent data while no handle is open.
    ///
    /// # Errors
    /// [`Unsupported`] (the default) when the harness cannot.
    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        let _ = how;
        Err(Unsupported::new(
            "the harness cannot corrupt its store (Harness::corrupt)",
        ))
    }

    /// Arguments telling a worker process how to open this same store; the worker binary
    /// passes them to [`from_worker_args`](Self::from_worker_args). `None` (the default)
    /// skips the multi-process behaviours.
    fn worker_args(&self) -> Option<Vec<String>> {
        None
    }

    /// Rebuilds, inside a worker process, the harness whose
    /// [`worker_args`](Self::worker_args) were `args`. The worker does not share the
    /// parent's [`ManualClock`]; it may use the system clock, and the multi-process
    /// behaviours write only entries that never expire. The rebuilt harness must not
    /// delete the store when it is dropped: the parent owns it.
    ///
    /// # Errors
    /// A message for the worker to print when `args` make no sense.
    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        let _ = args;
        Err("this harness has no worker support (Harness::from_worker_args)".into())
    }
}
