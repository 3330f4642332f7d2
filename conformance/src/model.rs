//! The reference model: what a store must answer to a sequence of operations.
//!
//! [`Model`] runs each [`Op`] against a store and checks the answer against the
//! contract: values, expiries and versions, write modes, expiry on a shared
//! [`ManualClock`], update semantics. Bounded engines may evict: the model follows the
//! evictions the engine *reports* (a write's [`Evictions`], the stats of a `rotate`) and
//! accepts that many live keys disappearing; a disappearance nobody reported is a
//! failure. Versions are opaque, so the model learns them from the engine and checks only
//! that they are returned consistently and never reused for a key.
//!
//! The model is public so that a fuzz target can drive it differentially:
//!
//! ```
//! use conformance::model::{Model, Op};
//! use store_api::{EvictionPolicy, ManualClock, SessionStore};
//! use std::sync::Arc;
//!
//! let clock = ManualClock::default();
//! let store = store_memory::MemoryStore::builder().clock(Arc::new(clock.clone())).build().unwrap();
//! let mut model = Model::new(clock, None, EvictionPolicy::Lru, &store);
//! for op in [Op::Put { key: 0, value: conformance::model::Value::Bytes(vec![1]),
//!                      expiry: conformance::model::ExpirySpec::AfterMs(10),
//!                      mode: conformance::model::ModeSpec::CreateOnly },
//!            Op::Advance(10), Op::Get(0)] {
//!     model.apply(&store, &op).unwrap();
//! }
//! model.check_all(&store).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use store_api::{
    Capabilities, Clock, Entry, Error, EvictionPolicy, Evictions, Expiry, Key, ManualClock,
    SessionStore, Timestamp, UpdateAction, UpdateAtomicity, UpdateOutcome, Version, WriteMode,
    WriteOutcome, is_live,
};

/// Number of distinct keys the operations use; the last one is the longest valid key.
pub const KEYS: u8 = 8;

/// The key an operation's key number stands for.
pub fn model_key(id: u8) -> Key {
    let id = id % KEYS;
    if id == KEYS - 1 {
        crate::check::long_key("model")
    } else {
        crate::check::key(format!("m{id}"))
    }
}

/// A value an operation writes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Value {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The largest value the engine accepts for every key, filled with this byte.
    Max(u8),
    /// Clearly too large for any key.
    TooLarge,
}

/// How much larger than [`Capabilities::max_value_len`] a [`Value::TooLarge`] is:
/// shorter keys may allow slightly larger values than the longest key does.
const TOO_LARGE_MARGIN: usize = 257;

impl Value {
    fn bytes(&self, caps: &Capabilities) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b.clone(),
            Value::Max(fill) => vec![*fill; caps.max_value_len],
            Value::TooLarge => vec![0xee; caps.max_value_len + TOO_LARGE_MARGIN],
        }
    }
}

/// An expiry relative to the model's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ExpirySpec {
    /// [`Expiry::Default`].
    Default,
    /// [`Expiry::Never`].
    Never,
    /// [`Expiry::After`] this many milliseconds.
    AfterMs(u16),
    /// [`Expiry::At`] now plus this many milliseconds (negative: in the past).
    AtOffsetMs(i32),
    /// One of [`FAR_FUTURE`]'s expiries, beyond any session's life: an engine that
    /// stores timestamps in a signed or narrower type must still take them for live.
    FarFuture(u8),
}

/// Far-future expiries the model writes: `After(Duration::MAX)`, a thousand years,
/// `At(2^53)`, `At(2^63 - 1)`, `At(2^63)` and `At(u64::MAX)`.
pub const FAR_FUTURE: [Expiry; 6] = [
    Expiry::After(Duration::MAX),
    Expiry::After(Duration::from_secs(1_000 * 365 * 86_400)),
    Expiry::At(Timestamp::from_millis(1 << 53)),
    Expiry::At(Timestamp::from_millis(i64::MAX as u64)),
    Expiry::At(Timestamp::from_millis(1 << 63)),
    Expiry::At(Timestamp::from_millis(u64::MAX)),
];

/// A century: expiries further than this from now are "far future", and an engine may
/// store them clamped (to its largest timestamp, or as "never").
pub const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Whether the engine's expiry `got` stands for the model's `want` at `now`: equal, or
/// both more than a [`CENTURY`] away (or never).
pub fn same_expiry(want: Option<Timestamp>, got: Option<Timestamp>, now: Timestamp) -> bool {
    let far = |t: Option<Timestamp>| t.is_none_or(|t| t > now.saturating_add(CENTURY));
    want == got || (far(want) && far(got))
}

impl ExpirySpec {
    fn expiry(self, now: Timestamp) -> Expiry {
        match self {
            ExpirySpec::Default => Expiry::Default,
            ExpirySpec::Never => Expiry::Never,
            ExpirySpec::AfterMs(ms) => Expiry::After(Duration::from_millis(u64::from(ms))),
            ExpirySpec::AtOffsetMs(off) => Expiry::At(Timestamp::from_millis(
                now.as_millis().saturating_add_signed(i64::from(off)),
            )),
            ExpirySpec::FarFuture(i) => FAR_FUTURE[usize::from(i) % FAR_FUTURE.len()],
        }
    }
}

/// The write mode of a put, with versions chosen from what the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ModeSpec {
    /// [`WriteMode::Upsert`].
    Upsert,
    /// [`WriteMode::CreateOnly`].
    CreateOnly,
    /// [`WriteMode::ReplaceOnly`].
    ReplaceOnly,
    /// [`WriteMode::IfVersion`] with the key's current version (a never-issued one if
    /// absent).
    IfCurrent,
    /// [`WriteMode::IfVersion`] with an older version of the key.
    IfStale,
}

/// What an update closure decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum UpdateSpec {
    /// [`UpdateAction::Keep`].
    Keep,
    /// [`UpdateAction::Delete`].
    Delete,
    /// [`UpdateAction::Set`] of this value.
    Set(Value, ExpirySpec),
    /// Append a byte to what the closure saw (creating the entry if absent).
    Append(u8),
    /// Append a byte if the closure saw an entry, else keep.
    AppendIfPresent(u8),
}

/// One operation of a model-based test.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// `get`.
    Get(u8),
    /// `get_into`.
    GetInto(u8),
    /// `put`.
    Put {
        /// Key number.
        key: u8,
        /// What to write.
        value: Value,
        /// Expiry.
        expiry: ExpirySpec,
        /// Write mode.
        mode: ModeSpec,
    },
    /// `delete`.
    Delete(u8),
    /// `touch`.
    Touch(u8, ExpirySpec),
    /// `update`.
    Update(u8, UpdateSpec),
    /// `rotate(from, to)`.
    Rotate(u8, u8),
    /// `purge_expired`.
    Purge,
    /// `stats`, checking the eviction counter.
    Stats,
    /// Advance the clock by this many milliseconds.
    Advance(u16),
    /// Drop every handle and open the store again (run by the test runner; a no-op for
    /// [`Model::apply`]).
    Reopen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelEntry {
    value: Vec<u8>,
    expires_at: Option<Timestamp>,
    version: Version,
}

/// A version no engine hands out in a test (engines count up from small numbers).
const NEVER_ISSUED: u64 = u64::MAX - 7;

/// The reference model of one store.
#[derive(Debug)]
pub struct Model {
    clock: ManualClock,
    default_ttl: Option<Duration>,
    policy: EvictionPolicy,
    caps: Capabilities,
    entries: BTreeMap<Key, ModelEntry>,
    versions: HashMap<Key, Vec<Version>>,
    /// Live evictions reported and not yet matched with a key found missing.
    unreported: u64,
    /// The engine reported `Evictions::Unknown` at least once.
    unknown: bool,
    /// Live evictions reported since the store was (re)opened.
    reported_live: u64,
    /// `Stats::evicted_live` when the store was (re)opened.
    stats_base: u64,
}

type Check = Result<(), String>;

fn kind(e: &Error) -> String {
    match e {
        Error::VersionMismatch { actual, .. } => format!("VersionMismatch(actual {actual:?})"),
        Error::AlreadyExists { .. } => "AlreadyExists".into(),
        Error::NotFound { .. } => "NotFound".into(),
        Error::TooLarge { .. } => "TooLarge".into(),
        Error::NoSpace { .. } => "NoSpace".into(),
        other => format!("{other}"),
    }
}

impl Model {
    /// A model of the empty `store`, which measures time on `clock` with `default_ttl`
    /// and `policy`.
    pub fn new(
        clock: ManualClock,
        default_ttl: Option<Duration>,
        policy: EvictionPolicy,
        store: &dyn SessionStore,
    ) -> Self {
        let stats_base = store.stats().map(|s| s.evicted_live).unwrap_or(0);
        Model {
            clock,
            default_ttl,
            policy,
            caps: store.capabilities(),
            entries: BTreeMap::new(),
            versions: HashMap::new(),
            unreported: 0,
            unknown: false,
            reported_live: 0,
            stats_base,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn live(&self, k: &Key) -> Option<&ModelEntry> {
        let now = self.now();
        self.entries.get(k).filter(|e| is_live(e.expires_at, now))
    }

    /// Accepts that live `k` was evicted, if a reported eviction is left to account
    /// for it.
    fn absorb_vanish(&mut self, k: &Key) -> bool {
        if self.live(k).is_none() || !(self.unknown || self.unreported > 0) {
            return false;
        }
        if !self.unknown {
            self.unreported -= 1;
        }
        self.entries.remove(k);
        true
    }

    fn no_space_allowed(&self) -> bool {
        self.caps.bounded && self.policy == EvictionPolicy::NeverEvictLive
    }

    fn check_read(&mut self, k: &Key, got: Option<Entry>) -> Check {
        match (self.live(k).cloned(), got) {
            (None, None) => Ok(()),
            (Some(_), None) if self.absorb_vanish(k) => Ok(()),
            (Some(m), None) => Err(format!(
                "{k} is live in the model ({} bytes, expires {:?}) but the engine says absent, and no eviction was reported",
                m.value.len(),
                m.expires_at
            )),
            (None, Some(e)) => Err(format!(
                "{k} is absent or expired in the model but the engine returned {} bytes, expires {:?}, {}",
                e.value.len(),
                e.expires_at,
                e.version
            )),
            (Some(m), Some(e)) => {
                if m.value != e.value {
                    return Err(format!(
                        "{k}: engine returned {} bytes {:?}.., model has {} bytes {:?}..",
                        e.value.len(),
                        &e.value[..e.value.len().min(16)],
                        m.value.len(),
                        &m.value[..m.value.len().min(16)]
                    ));
                }
                if !same_expiry(m.expires_at, e.expires_at, self.now()) {
                    return Err(format!(
                        "{k}: engine says it expires {:?}, model {:?}",
                        e.expires_at, m.expires_at
                    ));
                }
                if m.version != e.version {
                    return Err(format!(
                        "{k}: engine returned {}, the last write returned {}",
                        e.version, m.version
                    ));
                }
                Ok(())
            }
        }
    }

    fn fresh_version(&mut self, k: &Key, v: Version) -> Check {
        let seen = self.versions.entry(k.clone()).or_default();
        if seen.contains(&v) {
            return Err(format!(
                "{k}: version {v} was reused (seen before: {seen:?})"
            ));
        }
        seen.push(v);
        Ok(())
    }

    fn note_evictions(&mut self, e: Evictions) {
        match e {
            Evictions::Counted { live, .. } => {
                self.unreported += live;
                self.reported_live += live;
            }
            _ => self.unknown = true,
        }
    }

    fn record_write(
        &mut self,
        k: &Key,
        w: &WriteOutcome,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    ) -> Check {
        self.fresh_version(k, w.version)?;
        self.note_evictions(w.evicted);
        self.entries.insert(
            k.clone(),
            ModelEntry {
                value,
                expires_at,
                version: w.version,
            },
        );
        Ok(())
    }

    /// What a put of `len` bytes in `mode` must answer now: `Ok(())` or the error kind.
    fn predict_put(&self, k: &Key, too_large: bool, mode: WriteMode) -> Result<(), String> {
        let current = self.live(k).map(|e| e.version);
        let mode_error = match (mode, current) {
            (WriteMode::CreateOnly, Some(_)) => Some("AlreadyExists".to_string()),
            (WriteMode::ReplaceOnly, None) => Some("NotFound".to_string()),
            (WriteMode::IfVersion(v), cur) if cur != Some(v) => {
                Some(format!("VersionMismatch(actual {cur:?})"))
            }
            _ => None,
        };
        match (too_large, mode_error) {
            (true, _) => Err("TooLarge".into()),
            (false, Some(e)) => Err(e),
            (false, None) => Ok(()),
        }
    }

    fn resolve(&self, expiry: Expiry) -> Option<Timestamp> {
        expiry.resolve(self.now(), self.default_ttl)
    }

    fn mode(&self, k: &Key, m: ModeSpec) -> WriteMode {
        let never = Version::new(NEVER_ISSUED).expect("non-zero");
        match m {
            ModeSpec::Upsert => WriteMode::Upsert,
            ModeSpec::CreateOnly => WriteMode::CreateOnly,
            ModeSpec::ReplaceOnly => WriteMode::ReplaceOnly,
            ModeSpec::IfCurrent => {
                WriteMode::IfVersion(self.live(k).map(|e| e.version).unwrap_or(never))
            }
            ModeSpec::IfStale => {
                let current = self.live(k).map(|e| e.version);
                let stale = self
                    .versions
                    .get(k)
                    .and_then(|vs| vs.iter().rev().find(|v| Some(**v) != current).copied());
                WriteMode::IfVersion(stale.unwrap_or(never))
            }
        }
    }

    fn put(
        &mut self,
        store: &dyn SessionStore,
        k: &Key,
        value: &Value,
        e: ExpirySpec,
        m: ModeSpec,
    ) -> Check {
        let bytes = value.bytes(&self.caps);
        let too_large = matches!(value, Value::TooLarge);
        let mode = self.mode(k, m);
        let expiry = e.expiry(self.now());
        let expires_at = self.resolve(expiry);
        let got = store.put(k, &bytes, expiry, mode);
        let observed = match &got {
            Ok(_) => Ok(()),
            Err(e) => Err(kind(e)),
        };
        let mut expected = self.predict_put(k, too_large, mode);
        if observed != expected && self.live(k).is_some() && (self.unknown || self.unreported > 0) {
            // The key may have been evicted by an earlier (reported) eviction.
            let saved = self.entries.get(k).cloned();
            let (unreported, unknown) = (self.unreported, self.unknown);
            self.absorb_vanish(k);
            let retry = self.predict_put(k, too_large, mode);
            if retry == observed {
                expected = retry;
            } else if let Some(s) = saved {
                self.entries.insert(k.clone(), s);
                (self.unreported, self.unknown) = (unreported, unknown);
            }
        }
        if too_large {
            // TooLarge is checked before the write mode (the contract's order: the value
            // can never fit, whatever the key's state), and a too-large write never
            // succeeds.
            return match observed {
                Ok(()) => Err(format!(
                    "a value of {} bytes (max {}) was accepted",
                    bytes.len(),
                    self.caps.max_value_len
                )),
                Err(kind) if kind == "TooLarge" => Ok(()),
                Err(kind) => Err(format!(
                    "too-large value with {mode:?}: expected TooLarge (checked before the mode), got {kind}"
                )),
            };
        }
        match (&got, &expected) {
            (Err(Error::NoSpace { .. }), Ok(())) if self.no_space_allowed() => Ok(()),
            (Ok(w), Ok(())) => self.record_write(k, w, bytes, expires_at),
            _ if observed == expected => Ok(()),
            _ => Err(format!(
                "put({k}, {} bytes, {expiry:?}, {mode:?}): expected {expected:?}, engine answered {observed:?}",
                bytes.len()
            )),
        }
    }

    fn update(&mut self, store: &dyn SessionStore, k: &Key, spec: &UpdateSpec) -> Check {
        let now = self.now();
        let caps = self.caps;
        let mut calls = 0u32;
        let mut saw: Option<Option<Entry>> = None;
        let mut decided: Option<UpdateAction> = None;
        let got = store.update(k, &mut |e| {
            calls += 1;
            saw = Some(e.cloned());
            let action = match spec {
                UpdateSpec::Keep => UpdateAction::Keep,
                UpdateSpec::Delete => UpdateAction::Delete,
                UpdateSpec::Set(v, x) => UpdateAction::set(v.bytes(&caps), x.expiry(now)),
                UpdateSpec::Append(b) | UpdateSpec::AppendIfPresent(b) => match e {
                    None if matches!(spec, UpdateSpec::AppendIfPresent(_)) => UpdateAction::Keep,
                    _ => {
                        let mut v = e.map(|e| e.value.clone()).unwrap_or_default();
                        v.push(*b);
                        UpdateAction::set(v, Expiry::Never)
                    }
                },
            };
            decided = Some(action.clone());
            action
        });
        if caps.update == UpdateAtomicity::Locked && calls != 1 {
            return Err(format!(
                "update({k}) called its closure {calls} times; a Locked engine calls it exactly once"
            ));
        }
        let Some(saw) = saw else {
            return match got {
                Err(e) => Err(format!(
                    "update({k}) failed without calling the closure: {}",
                    crate::check::chain(&e)
                )),
                Ok(o) => Err(format!(
                    "update({k}) answered {o:?} without calling the closure"
                )),
            };
        };
        self.check_read(k, saw.clone())
            .map_err(|m| format!("the update closure saw the wrong entry: {m}"))?;
        let action = decided.expect("closure ran");
        match (action, got) {
            (UpdateAction::Keep, Ok(UpdateOutcome::Kept)) => Ok(()),
            (UpdateAction::Delete, Ok(UpdateOutcome::Deleted { existed })) => {
                if existed != saw.is_some() {
                    return Err(format!(
                        "update({k}) Delete reported existed={existed} but the closure saw {:?}",
                        saw.map(|e| e.version)
                    ));
                }
                self.entries.remove(k);
                Ok(())
            }
            (UpdateAction::Set { value, .. }, Err(Error::TooLarge { .. }))
                if value.len() > caps.max_value_len =>
            {
                Ok(())
            }
            (UpdateAction::Set { value, .. }, Ok(o))
                if value.len() > caps.max_value_len + TOO_LARGE_MARGIN - 1 =>
            {
                Err(format!(
                    "update({k}) stored a value of {} bytes (max {}): {o:?}",
                    value.len(),
                    caps.max_value_len
                ))
            }
            (UpdateAction::Set { .. }, Err(Error::NoSpace { .. })) if self.no_space_allowed() => {
                Ok(())
            }
            (UpdateAction::Set { value, expiry }, Ok(UpdateOutcome::Written(w))) => {
                let expires_at = expiry.resolve(now, self.default_ttl);
                self.record_write(k, &w, value, expires_at)
            }
            (action, got) => Err(format!(
                "update({k}) decided {action:?}, engine answered {got:?}"
            )),
        }
    }

    fn rotate(&mut self, store: &dyn SessionStore, from: &Key, to: &Key) -> Check {
        let before = store
            .stats()
            .map(|s| s.evicted_live)
            .map_err(|e| format!("stats: {}", crate::check::chain(&e)))?;
        let got = store.rotate(from, to);
        let after = store
            .stats()
            .map(|s| s.evicted_live)
            .map_err(|e| format!("stats: {}", crate::check::chain(&e)))?;
        // rotate does not report its write's evictions; learn them from the counter.
        let evicted = after.saturating_sub(before);
        self.unreported += evicted;
        self.reported_live += evicted;
        if from == to {
            return match (self.live(from).is_some(), got) {
                (false, Ok(false)) | (true, Err(Error::AlreadyExists { .. })) => Ok(()),
                // Evicted earlier by a reported eviction the model had not yet placed.
                (true, Ok(false)) if self.absorb_vanish(from) => Ok(()),
                (_, got) => Err(format!("rotate({from}, itself) answered {got:?}")),
            };
        }
        if let Err(Error::TooLarge { len, .. }) = &got
            && self.live(from).is_some_and(|e| e.value.len() == *len)
            && *len > self.caps.max_value_len
        {
            // Moving a value that only fits a shorter key onto a longer one.
            return Ok(());
        }
        if let Err(Error::NoSpace { .. }) = &got
            && self.no_space_allowed()
        {
            return Ok(());
        }
        loop {
            let src = self.live(from).cloned();
            let dst_live = self.live(to).is_some();
            let ok = matches!(
                (&src, dst_live, &got),
                (None, _, Ok(false))
                    | (Some(_), true, Err(Error::AlreadyExists { .. }))
                    | (Some(_), false, Ok(true))
            );
            if ok {
                if let (Some(src), Ok(true)) = (src, &got) {
                    // rotate does not say the version it wrote; read it back.
                    let moved = store
                        .get(to)
                        .map_err(|e| {
                            format!("get({to}) after rotate failed: {}", crate::check::chain(&e))
                        })?
                        .ok_or_else(|| {
                            format!("rotate({from}, {to}) answered true but {to} is absent")
                        })?;
                    if moved.value != src.value
                        || !same_expiry(src.expires_at, moved.expires_at, self.now())
                    {
                        return Err(format!(
                            "rotate({from}, {to}) did not move value and expiry: {moved:?}"
                        ));
                    }
                    self.fresh_version(to, moved.version)?;
                    self.entries.remove(from);
                    self.entries.insert(
                        to.clone(),
                        ModelEntry {
                            version: moved.version,
                            ..src
                        },
                    );
                }
                return Ok(());
            }
            // Maybe an earlier reported eviction took one of the keys.
            let vanished = match (&src, &got) {
                (Some(_), Ok(false)) => self.absorb_vanish(from),
                (Some(_), Ok(true)) if dst_live => self.absorb_vanish(to),
                _ => false,
            };
            if !vanished {
                return Err(format!(
                    "rotate({from}, {to}): source {}, target {}, engine answered {got:?}",
                    if src.is_some() { "live" } else { "absent" },
                    if dst_live { "live" } else { "absent" }
                ));
            }
        }
    }

    /// Runs `op` against `store` and checks the answer. [`Op::Reopen`] is a no-op here:
    /// the caller reopens and calls [`reopened`](Self::reopened).
    ///
    /// # Errors
    /// How the engine's answer differs from the contract.
    pub fn apply(&mut self, store: &dyn SessionStore, op: &Op) -> Result<(), String> {
        match op {
            Op::Get(k) => {
                let k = model_key(*k);
                let got = store
                    .get(&k)
                    .map_err(|e| format!("get({k}) failed: {}", crate::check::chain(&e)))?;
                self.check_read(&k, got)
            }
            Op::GetInto(k) => {
                let k = model_key(*k);
                let mut buf = vec![0xAB; 7];
                let got = store
                    .get_into(&k, &mut buf)
                    .map_err(|e| format!("get_into({k}) failed: {}", crate::check::chain(&e)))?;
                let entry = got.map(|m| Entry {
                    value: buf,
                    expires_at: m.expires_at,
                    version: m.version,
                });
                self.check_read(&k, entry)
            }
            Op::Put {
                key,
                value,
                expiry,
                mode,
            } => self.put(store, &model_key(*key), value, *expiry, *mode),
            Op::Delete(k) => {
                let k = model_key(*k);
                let got = store
                    .delete(&k)
                    .map_err(|e| format!("delete({k}) failed: {}", crate::check::chain(&e)))?;
                let expected = self.live(&k).is_some();
                if got == expected || (!got && self.absorb_vanish(&k)) {
                    self.entries.remove(&k);
                    Ok(())
                } else {
                    Err(format!("delete({k}) answered {got}, expected {expected}"))
                }
            }
            Op::Touch(k, e) => {
                let k = model_key(*k);
                let expiry = e.expiry(self.now());
                let got = store
                    .touch(&k, expiry)
                    .map_err(|e| format!("touch({k}) failed: {}", crate::check::chain(&e)))?;
                let expected = self.live(&k).is_some();
                if got && expected {
                    let at = self.resolve(expiry);
                    if let Some(m) = self.entries.get_mut(&k) {
                        m.expires_at = at;
                    }
                    Ok(())
                } else if got == expected || (!got && self.absorb_vanish(&k)) {
                    Ok(())
                } else {
                    Err(format!("touch({k}) answered {got}, expected {expected}"))
                }
            }
            Op::Update(k, spec) => self.update(store, &model_key(*k), spec),
            Op::Rotate(a, b) => self.rotate(store, &model_key(*a), &model_key(*b)),
            Op::Purge => {
                let n = store
                    .purge_expired()
                    .map_err(|e| format!("purge_expired failed: {}", crate::check::chain(&e)))?;
                let now = self.now();
                let could_be_expired = self
                    .versions
                    .keys()
                    .filter(|k| {
                        self.entries
                            .get(*k)
                            .is_none_or(|e| !is_live(e.expires_at, now))
                    })
                    .count() as u64;
                if n > could_be_expired {
                    return Err(format!(
                        "purge_expired removed {n} entries; at most {could_be_expired} keys could hold an expired entry"
                    ));
                }
                self.entries.retain(|_, e| is_live(e.expires_at, now));
                Ok(())
            }
            Op::Stats => {
                let s = store
                    .stats()
                    .map_err(|e| format!("stats failed: {}", crate::check::chain(&e)))?;
                let counted = s.evicted_live.saturating_sub(self.stats_base);
                if !self.unknown && counted != self.reported_live {
                    return Err(format!(
                        "Stats::evicted_live grew by {counted} since open, writes reported {}",
                        self.reported_live
                    ));
                }
                Ok(())
            }
            Op::Advance(ms) => {
                self.clock.advance(Duration::from_millis(u64::from(*ms)));
                Ok(())
            }
            Op::Reopen => Ok(()),
        }
    }

    /// Tells the model the store was closed and opened again as `store`.
    pub fn reopened(&mut self, store: &dyn SessionStore) {
        self.stats_base = store.stats().map(|s| s.evicted_live).unwrap_or(0);
        self.reported_live = 0;
    }

    /// Reads every key and checks it against the model.
    ///
    /// # Errors
    /// The first difference.
    pub fn check_all(&mut self, store: &dyn SessionStore) -> Result<(), String> {
        for id in 0..KEYS {
            self.apply(store, &Op::Get(id))?;
        }
        Ok(())
    }
}

/// Proptest strategies for [`Op`]s.
pub mod strategy {
    use proptest::prelude::*;

    use super::{ExpirySpec, FAR_FUTURE, KEYS, ModeSpec, Op, UpdateSpec, Value};

    fn key() -> impl Strategy<Value = u8> {
        0..KEYS
    }

    /// Values: mostly small, sometimes the maximum, rarely too large.
    pub fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            12 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Value::Bytes),
            2 => (0..3000usize).prop_map(|n| Value::Bytes(vec![0x42; n])),
            1 => any::<u8>().prop_map(Value::Max),
            1 => Just(Value::TooLarge),
        ]
    }

    /// Expiries around the interesting boundaries.
    pub fn expiry() -> impl Strategy<Value = ExpirySpec> {
        prop_oneof![
            3 => Just(ExpirySpec::Never),
            1 => Just(ExpirySpec::Default),
            4 => prop_oneof![Just(0u16), Just(1), Just(999), Just(1000), Just(1001), 0..5000u16]
                .prop_map(ExpirySpec::AfterMs),
            1 => prop_oneof![Just(-1i32), Just(0), Just(1), -5000..5000i32].prop_map(ExpirySpec::AtOffsetMs),
            1 => (0..FAR_FUTURE.len() as u8).prop_map(ExpirySpec::FarFuture),
        ]
    }

    fn mode() -> impl Strategy<Value = ModeSpec> {
        prop_oneof![
            4 => Just(ModeSpec::Upsert),
            2 => Just(ModeSpec::CreateOnly),
            2 => Just(ModeSpec::ReplaceOnly),
            2 => Just(ModeSpec::IfCurrent),
            1 => Just(ModeSpec::IfStale),
        ]
    }

    fn update() -> impl Strategy<Value = UpdateSpec> {
        prop_oneof![
            1 => Just(UpdateSpec::Keep),
            1 => Just(UpdateSpec::Delete),
            2 => (value(), expiry()).prop_map(|(v, e)| UpdateSpec::Set(v, e)),
            1 => any::<u8>().prop_map(UpdateSpec::Append),
            1 => any::<u8>().prop_map(UpdateSpec::AppendIfPresent),
        ]
    }

    /// One operation; `reopen` allows [`Op::Reopen`].
    pub fn op(reopen: bool) -> BoxedStrategy<Op> {
        let base = prop_oneof![
            4 => key().prop_map(Op::Get),
            1 => key().prop_map(Op::GetInto),
            7 => (key(), value(), expiry(), mode())
                .prop_map(|(key, value, expiry, mode)| Op::Put { key, value, expiry, mode }),
            2 => key().prop_map(Op::Delete),
            2 => (key(), expiry()).prop_map(|(k, e)| Op::Touch(k, e)),
            3 => (key(), update()).prop_map(|(k, u)| Op::Update(k, u)),
            1 => (key(), key()).prop_map(|(a, b)| Op::Rotate(a, b)),
            1 => Just(Op::Purge),
            1 => Just(Op::Stats),
            3 => prop_oneof![Just(1u16), Just(999), Just(1000), 0..3000u16].prop_map(Op::Advance),
        ];
        if reopen {
            prop_oneof![12 => base, 1 => Just(Op::Reopen)].boxed()
        } else {
            base.boxed()
        }
    }
}
