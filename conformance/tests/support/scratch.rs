//! An engine written from scratch against the contract, outside the workspace's engine
//! crates, with a switch that plants exactly one defect. `Defect::None` is a correct
//! engine that runs the whole suite; every other value is one broken engine of the
//! README's table.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use conformance::{Harness, Size, Spec, Unsupported};
use store_api::{
    Capabilities, Clock, Entry, Error, EvictionPolicy, Evictions, Expiry, Key, MAX_KEY_LEN, Result,
    ScanEntry, ScanOptions, SessionStore, Stats, Support, SystemClock, Timestamp, UpdateAction,
    UpdateOutcome, Version, WriteMode, WriteOutcome,
};

/// The one defect a scratch engine carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    None,
    /// `update` reads under the lock, releases it, and writes later.
    LostUpdates,
    /// `now == expires_at` counts as live.
    BoundaryLive,
    /// Replace-only accepts an expired entry as present, bringing it back.
    ReplaceResurrects,
    /// A too-large value is answered `Ok` and silently not stored.
    DropsTooLarge,
    /// Evictions happen but are reported (and counted) as none.
    SilentEviction,
    /// When the backend fails, `get` answers `Ok(None)` and `delete` `Ok(false)`.
    OkNoneOnFailure,
    /// Versions count per key from 1 and restart after delete.
    ReusesVersions,
    /// `update` calls the closure twice (claiming `Locked`).
    UpdateTwice,
    /// Overwrites of an equal-length value are copied in place without the lock.
    TornWrites,
    /// Expiries are compared as `i64` after a plain cast: `At(2^63)` and beyond are past.
    FarFutureIsPast,
    /// Every read counts as a hit.
    EveryReadAHit,
    /// Create-only checks an expiry recorded at put time, which `touch` does not update.
    StaleExpiryIndex,
    /// The write mode is checked before the value's size.
    ModeBeforeSize,
    /// `purge_expired` removes entries one millisecond before their expiry.
    PurgeOffByOne,
    /// `update` is atomic within a handle only (a per-handle lock around a read and a
    /// later write of the shared data), like a read outside the backend's transaction.
    HandleLocalLock,
    /// Each handle caches what it read and answers from the cache, missing other
    /// handles' writes.
    StaleReadCache,
    /// `take` is a `get` and then a `delete`, two steps under two locks.
    TakeInTwoSteps,
    /// `scan` visits expired entries not yet purged.
    ScanShowsExpired,
    /// `clear` removes the live entries and leaves the expired ones behind.
    ClearKeepsExpired,
    /// The capabilities say the engine does not scan, and `scan` answers `Ok(0)`.
    SilentlyNoScan,
}

impl Defect {
    pub const fn from_id(id: u8) -> Defect {
        match id {
            1 => Defect::LostUpdates,
            2 => Defect::BoundaryLive,
            3 => Defect::ReplaceResurrects,
            4 => Defect::DropsTooLarge,
            5 => Defect::SilentEviction,
            6 => Defect::OkNoneOnFailure,
            7 => Defect::ReusesVersions,
            8 => Defect::UpdateTwice,
            9 => Defect::TornWrites,
            10 => Defect::FarFutureIsPast,
            11 => Defect::EveryReadAHit,
            12 => Defect::StaleExpiryIndex,
            13 => Defect::ModeBeforeSize,
            14 => Defect::PurgeOffByOne,
            15 => Defect::HandleLocalLock,
            16 => Defect::StaleReadCache,
            17 => Defect::TakeInTwoSteps,
            18 => Defect::ScanShowsExpired,
            19 => Defect::ClearKeepsExpired,
            20 => Defect::SilentlyNoScan,
            _ => Defect::None,
        }
    }
}

const OVERHEAD: usize = 32;
const SMALL: usize = 16 << 10;
const MAX_VALUE: usize = 1 << 20;

#[derive(Debug)]
struct Slot {
    value: Arc<[AtomicU8]>,
    expires_at: Option<Timestamp>,
    version: Version,
    last_used: u64,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Key, Slot>,
    bytes: usize,
    tick: u64,
    per_key: HashMap<Key, u64>,
    /// The expiry each key was put with (`StaleExpiryIndex` reads it).
    put_expiry: HashMap<Key, Option<Timestamp>>,
    stats: Stats,
}

/// The scratch engine: one mutex over a map, optional byte capacity with LRU.
#[derive(Debug)]
pub struct ScratchStore {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    defect: Defect,
    failing: bool,
    capacity: Option<usize>,
    policy: EvictionPolicy,
    default_ttl: Option<Duration>,
    next_version: AtomicU64,
}

fn copy(v: &[AtomicU8]) -> Vec<u8> {
    v.iter().map(|b| b.load(Ordering::Relaxed)).collect()
}

fn cost(k: &Key, len: usize) -> usize {
    k.len() + len + OVERHEAD
}

impl ScratchStore {
    pub fn new(defect: Defect, spec: &Spec, failing: bool) -> Self {
        ScratchStore {
            state: Mutex::new(State::default()),
            clock: match &spec.clock {
                Some(c) => Arc::new(c.clone()),
                None => Arc::new(SystemClock),
            },
            defect,
            failing,
            capacity: (spec.size == Size::Small).then_some(SMALL),
            policy: spec.policy,
            default_ttl: spec.default_ttl,
            next_version: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self, expires_at: Option<Timestamp>, now: Timestamp) -> bool {
        match (self.defect, expires_at) {
            (_, None) => true,
            (Defect::BoundaryLive, Some(t)) => now <= t,
            (Defect::FarFutureIsPast, Some(t)) => (now.as_millis() as i64) < (t.as_millis() as i64),
            (_, Some(t)) => now < t,
        }
    }

    fn outage(&self) -> Error {
        Error::backend(
            "scratch backend",
            std::io::Error::other("the scratch backend is unreachable"),
        )
    }

    fn max_for(&self, key_len: usize) -> usize {
        match self.capacity {
            Some(cap) => MAX_VALUE.min(cap - key_len - OVERHEAD),
            None => MAX_VALUE,
        }
    }

    fn version(&self, st: &mut State, k: &Key) -> Version {
        let raw = if self.defect == Defect::ReusesVersions {
            let n = st.per_key.entry(k.clone()).or_insert(0);
            *n += 1;
            *n
        } else {
            self.next_version.fetch_add(1, Ordering::Relaxed)
        };
        Version::new(raw).expect("versions start at 1")
    }

    fn entry(&self, st: &mut State, k: &Key, now: Timestamp) -> Option<Entry> {
        st.tick += 1;
        let tick = st.tick;
        let slot = st.map.get_mut(k)?;
        if !self.live(slot.expires_at, now) {
            return None;
        }
        slot.last_used = tick;
        Some(Entry {
            value: copy(&slot.value),
            expires_at: slot.expires_at,
            version: slot.version,
        })
    }

    fn remove(&self, st: &mut State, k: &Key) -> Option<Slot> {
        let slot = st.map.remove(k)?;
        st.bytes -= cost(k, slot.value.len());
        if self.defect == Defect::ReusesVersions {
            st.per_key.remove(k);
        }
        Some(slot)
    }

    /// Writes under the lock, making room first.
    fn write(
        &self,
        st: &mut State,
        k: &Key,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<WriteOutcome> {
        let (mut live, mut expired) = (0, 0);
        if let Some(cap) = self.capacity {
            let old = st.map.get(k).map_or(0, |s| cost(k, s.value.len()));
            let needed = cost(k, value.len());
            if st.bytes - old + needed > cap {
                let own = st.map.remove(k);
                if let Some(s) = &own {
                    st.bytes -= cost(k, s.value.len());
                }
                let dead: Vec<Key> = st
                    .map
                    .iter()
                    .filter(|(_, s)| !self.live(s.expires_at, now))
                    .map(|(k, _)| k.clone())
                    .collect();
                for d in &dead {
                    self.remove(st, d);
                }
                expired = dead.len() as u64;
                st.stats.evicted_expired += expired;
                while st.bytes + needed > cap {
                    let victim = (self.policy == EvictionPolicy::Lru)
                        .then(|| {
                            st.map
                                .iter()
                                .min_by_key(|(_, s)| s.last_used)
                                .map(|(k, _)| k.clone())
                        })
                        .flatten();
                    let Some(victim) = victim else {
                        if let Some(s) = own.filter(|s| self.live(s.expires_at, now)) {
                            st.bytes += cost(k, s.value.len());
                            st.map.insert(k.clone(), s);
                        }
                        return Err(Error::NoSpace {
                            key: k.clone(),
                            needed,
                        });
                    };
                    self.remove(st, &victim);
                    live += 1;
                }
            }
        }
        if self.defect == Defect::SilentEviction {
            live = 0;
        }
        st.stats.evicted_live += live;
        let version = self.version(st, k);
        st.tick += 1;
        let slot = Slot {
            value: value.iter().map(|&b| AtomicU8::new(b)).collect(),
            expires_at,
            version,
            last_used: st.tick,
        };
        if let Some(old) = st.map.insert(k.clone(), slot) {
            st.bytes -= cost(k, old.value.len());
        }
        st.put_expiry.insert(k.clone(), expires_at);
        st.bytes += cost(k, value.len());
        st.stats.writes += 1;
        Ok(WriteOutcome {
            version,
            evicted: Evictions::Counted { live, expired },
        })
    }

    fn check_len(&self, k: &Key, len: usize) -> Result<()> {
        let max = self.max_for(k.len());
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        Ok(())
    }
}

impl SessionStore for ScratchStore {
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        if self.failing {
            return match self.defect {
                Defect::OkNoneOnFailure => Ok(None),
                _ => Err(self.outage()),
            };
        }
        let now = self.clock.now();
        let mut st = self.lock();
        st.stats.reads += 1;
        let e = self.entry(&mut st, key, now);
        st.stats.hits += u64::from(e.is_some() || self.defect == Defect::EveryReadAHit);
        Ok(e)
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        if self.failing {
            return Err(self.outage());
        }
        if self.defect != Defect::ModeBeforeSize
            && let Err(e) = self.check_len(key, value.len())
        {
            if self.defect == Defect::DropsTooLarge {
                let mut st = self.lock();
                let version = self.version(&mut st, key);
                return Ok(WriteOutcome {
                    version,
                    evicted: Evictions::NONE,
                });
            }
            return Err(e);
        }
        let now = self.clock.now();
        let expires_at = expiry.resolve(now, self.default_ttl);
        let mut st = self.lock();
        let current = st
            .map
            .get(key)
            .filter(|s| self.live(s.expires_at, now))
            .map(|s| s.version);
        let present = match (self.defect, mode) {
            (Defect::ReplaceResurrects, WriteMode::ReplaceOnly) => st.map.contains_key(key),
            _ => current.is_some(),
        };
        let blocks_create = match self.defect {
            Defect::StaleExpiryIndex => st
                .put_expiry
                .get(key)
                .is_some_and(|&at| st.map.contains_key(key) && self.live(at, now)),
            _ => current.is_some(),
        };
        match mode {
            WriteMode::CreateOnly if blocks_create => {
                return Err(Error::AlreadyExists { key: key.clone() });
            }
            WriteMode::ReplaceOnly if !present => {
                return Err(Error::NotFound { key: key.clone() });
            }
            WriteMode::IfVersion(v) if current != Some(v) => {
                return Err(Error::VersionMismatch {
                    key: key.clone(),
                    expected: v,
                    actual: current,
                });
            }
            _ => {}
        }
        if self.defect == Defect::ModeBeforeSize {
            self.check_len(key, value.len())?;
        }
        if self.defect == Defect::TornWrites
            && let Some(slot) = st.map.get_mut(key).filter(|s| s.value.len() == value.len())
        {
            let version =
                Version::new(self.next_version.fetch_add(1, Ordering::Relaxed)).expect("non-zero");
            slot.version = version;
            slot.expires_at = expires_at;
            let target = slot.value.clone();
            drop(st);
            for (i, (dst, src)) in target.iter().zip(value).enumerate() {
                dst.store(*src, Ordering::Relaxed);
                if i == value.len() / 2 {
                    std::thread::yield_now();
                }
            }
            return Ok(WriteOutcome {
                version,
                evicted: Evictions::NONE,
            });
        }
        self.write(&mut st, key, value, expires_at, now)
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        if self.failing {
            return match self.defect {
                Defect::OkNoneOnFailure => Ok(false),
                _ => Err(self.outage()),
            };
        }
        let now = self.clock.now();
        let mut st = self.lock();
        let removed = self
            .remove(&mut st, key)
            .is_some_and(|s| self.live(s.expires_at, now));
        st.stats.writes += u64::from(removed);
        Ok(removed)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        if self.failing {
            return Err(self.outage());
        }
        let now = self.clock.now();
        let mut st = self.lock();
        match st.map.get_mut(key) {
            Some(s) if self.live(s.expires_at, now) => {
                s.expires_at = expiry.resolve(now, self.default_ttl);
                st.stats.writes += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        if self.failing {
            return Err(self.outage());
        }
        let now = self.clock.now();
        let mut st = self.lock();
        st.stats.reads += 1;
        let current = self.entry(&mut st, key, now);
        let action = match self.defect {
            Defect::LostUpdates => {
                drop(st);
                let action = f(current.as_ref());
                for _ in 0..3 {
                    std::thread::yield_now();
                }
                st = self.lock();
                action
            }
            Defect::UpdateTwice => {
                let _ = f(current.as_ref());
                f(current.as_ref())
            }
            _ => f(current.as_ref()),
        };
        match action {
            UpdateAction::Keep => Ok(UpdateOutcome::Kept),
            UpdateAction::Delete => {
                let existed = self
                    .remove(&mut st, key)
                    .is_some_and(|s| self.live(s.expires_at, now));
                Ok(UpdateOutcome::Deleted { existed })
            }
            UpdateAction::Set { value, expiry } => {
                self.check_len(key, value.len())?;
                let expires_at = expiry.resolve(now, self.default_ttl);
                self.write(&mut st, key, &value, expires_at, now)
                    .map(UpdateOutcome::Written)
            }
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        if self.failing {
            return Err(self.outage());
        }
        let mut now = self.clock.now();
        if self.defect == Defect::PurgeOffByOne {
            now = now.saturating_add(Duration::from_millis(1));
        }
        let mut st = self.lock();
        let dead: Vec<Key> = st
            .map
            .iter()
            .filter(|(_, s)| !self.live(s.expires_at, now))
            .map(|(k, _)| k.clone())
            .collect();
        for d in &dead {
            self.remove(&mut st, d);
        }
        st.stats.purged += dead.len() as u64;
        Ok(dead.len() as u64)
    }

    fn stats(&self) -> Result<Stats> {
        if self.failing {
            return Err(self.outage());
        }
        let st = self.lock();
        let mut s = st.stats;
        s.entries = st.map.len() as u64;
        s.bytes_used = st.bytes as u64;
        s.capacity = self.capacity.map(|c| c as u64);
        Ok(s)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::new(self.max_for(MAX_KEY_LEN));
        caps.bounded = self.capacity.is_some();
        if self.defect != Defect::SilentlyNoScan {
            caps.scan = Support::Exact;
        }
        caps.clear = Support::Exact;
        caps
    }

    fn take(&self, key: &Key) -> Result<Option<Entry>> {
        if self.defect != Defect::TakeInTwoSteps {
            // The contract's default, built on `update`.
            let mut taken = None;
            self.update(key, &mut |e| {
                taken = e.cloned();
                match e {
                    Some(_) => UpdateAction::Delete,
                    None => UpdateAction::Keep,
                }
            })?;
            return Ok(taken);
        }
        let e = self.get(key)?;
        std::thread::yield_now();
        if e.is_some() {
            self.delete(key)?;
        }
        Ok(e)
    }

    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        if self.failing {
            return Err(self.outage());
        }
        if self.defect == Defect::SilentlyNoScan {
            return Ok(0);
        }
        let now = self.clock.now();
        let entries: Vec<ScanEntry> = {
            let st = self.lock();
            st.map
                .iter()
                .filter(|(k, s)| {
                    (self.defect == Defect::ScanShowsExpired || self.live(s.expires_at, now))
                        && options.matches(k)
                })
                .map(|(k, s)| {
                    let value = copy(&s.value);
                    let len = value.len();
                    let value = options.values.then_some(value);
                    ScanEntry::new(k.clone(), s.expires_at, s.version, len, value)
                })
                .collect()
        };
        let mut n = 0;
        let _ = store_api::visit_part(entries, visit, &mut n);
        Ok(n)
    }

    fn clear(&self) -> Result<u64> {
        if self.failing {
            return Err(self.outage());
        }
        let now = self.clock.now();
        let mut st = self.lock();
        let keys: Vec<(Key, bool)> = st
            .map
            .iter()
            .map(|(k, s)| (k.clone(), self.live(s.expires_at, now)))
            .collect();
        let mut live = 0;
        for (k, is_live) in keys {
            if is_live {
                live += 1;
            } else if self.defect == Defect::ClearKeepsExpired {
                continue;
            }
            self.remove(&mut st, &k);
        }
        st.stats.writes += live;
        Ok(live)
    }
}

/// A handle onto a scratch engine, as `Harness::open` hands them out: the handles of
/// one engine share its data; each has its own lock and read cache, which only the
/// defects that misuse them touch.
#[derive(Debug)]
pub struct Handle {
    engine: Arc<ScratchStore>,
    local: Mutex<()>,
    cache: Mutex<HashMap<Key, Option<Entry>>>,
}

impl Handle {
    fn new(engine: Arc<ScratchStore>) -> Self {
        Handle {
            engine,
            local: Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<Key, Option<Entry>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This handle's own write of `k`: its cache forgets the key.
    fn forget(&self, k: &Key) {
        self.cache().remove(k);
    }
}

impl SessionStore for Handle {
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        if self.engine.defect != Defect::StaleReadCache {
            return self.engine.get(key);
        }
        if let Some(e) = self.cache().get(key) {
            return Ok(e.clone());
        }
        let e = self.engine.get(key)?;
        self.cache().insert(key.clone(), e.clone());
        Ok(e)
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        self.forget(key);
        self.engine.put(key, value, expiry, mode)
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        self.forget(key);
        self.engine.delete(key)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        self.forget(key);
        self.engine.touch(key, expiry)
    }

    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        self.forget(key);
        if self.engine.defect != Defect::HandleLocalLock {
            return self.engine.update(key, f);
        }
        let _local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.engine.get(key)?;
        std::thread::yield_now();
        match f(current.as_ref()) {
            UpdateAction::Keep => Ok(UpdateOutcome::Kept),
            UpdateAction::Delete => Ok(UpdateOutcome::Deleted {
                existed: self.engine.delete(key)?,
            }),
            UpdateAction::Set { value, expiry } => self
                .engine
                .put(key, &value, expiry, WriteMode::Upsert)
                .map(UpdateOutcome::Written),
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        self.cache().clear();
        self.engine.purge_expired()
    }

    fn stats(&self) -> Result<Stats> {
        self.engine.stats()
    }

    fn capabilities(&self) -> Capabilities {
        self.engine.capabilities()
    }

    fn rotate(&self, from: &Key, to: &Key) -> Result<bool> {
        self.forget(from);
        self.forget(to);
        self.engine.rotate(from, to)
    }

    fn take(&self, key: &Key) -> Result<Option<Entry>> {
        self.forget(key);
        self.engine.take(key)
    }

    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        self.engine.scan(options, visit)
    }

    fn clear(&self) -> Result<u64> {
        self.cache().clear();
        self.engine.clear()
    }
}

/// The harness of a scratch engine carrying defect number `D` (0: none).
#[derive(Debug)]
pub struct Scratch<const D: u8>(Arc<ScratchStore>);

impl<const D: u8> Harness for Scratch<D> {
    type Store = Handle;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        Ok(Scratch(Arc::new(ScratchStore::new(
            Defect::from_id(D),
            spec,
            false,
        ))))
    }

    fn open(&self) -> Result<Self::Store> {
        Ok(Handle::new(self.0.clone()))
    }

    fn unreachable(spec: &Spec) -> Result<Result<Self::Store>, Unsupported> {
        Ok(Ok(Handle::new(Arc::new(ScratchStore::new(
            Defect::from_id(D),
            spec,
            true,
        )))))
    }
}

/// The correct scratch engine.
pub type Correct = Scratch<0>;
pub type LostUpdates = Scratch<1>;
pub type BoundaryLive = Scratch<2>;
pub type ReplaceResurrects = Scratch<3>;
pub type DropsTooLarge = Scratch<4>;
pub type SilentEviction = Scratch<5>;
pub type OkNoneOnFailure = Scratch<6>;
pub type ReusesVersions = Scratch<7>;
pub type UpdateTwice = Scratch<8>;
pub type TornWrites = Scratch<9>;
pub type FarFutureIsPast = Scratch<10>;
pub type EveryReadAHit = Scratch<11>;
pub type StaleExpiryIndex = Scratch<12>;
pub type ModeBeforeSize = Scratch<13>;
pub type PurgeOffByOne = Scratch<14>;
pub type HandleLocalLock = Scratch<15>;
pub type StaleReadCache = Scratch<16>;
pub type TakeInTwoSteps = Scratch<17>;
pub type ScanShowsExpired = Scratch<18>;
pub type ClearKeepsExpired = Scratch<19>;
pub type SilentlyNoScan = Scratch<20>;
