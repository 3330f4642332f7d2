//! Time: millisecond timestamps, expiry and the injectable clock.
//!
//! # The boundary rule
//!
//! An entry with `expires_at = Some(t)` is **live while `now < t`** and expired from
//! `now == t` on. This is the one place the rule is written; [`is_live`] implements it and
//! every engine uses it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Whether an entry expiring at `expires_at` (`None`: never) is live at `now`.
///
/// Live while `now < expires_at`; expired at and after `expires_at`.
#[inline]
pub fn is_live(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    match expires_at {
        None => true,
        Some(t) => now < t,
    }
}

/// The expiry a write asks for. Engines resolve it to an absolute
/// `Option<Timestamp>` with their own clock when the write happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The engine's default time to live (Perl's `expires`); "never" for engines
    /// without one.
    Default,
    /// Never expires.
    Never,
    /// Expires at this absolute time. A time already past is allowed and stores an
    /// entry that is expired at once.
    At(Timestamp),
    /// Expires this long after the write. `After(Duration::ZERO)` is expired at once.
    After(Duration),
}

impl Expiry {
    /// Resolves the expiry at `now`, with `default_ttl` standing in for
    /// [`Expiry::Default`] (`None`: never expire).
    pub fn resolve(self, now: Timestamp, default_ttl: Option<Duration>) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::At(t) => Some(t),
            Expiry::After(d) => Some(now.saturating_add(d)),
            Expiry::Default => default_ttl.map(|d| now.saturating_add(d)),
        }
    }
}

/// A source of the current time. Engines take one at construction so that tests
/// advance time instead of sleeping. An engine whose backend keeps time itself (a
/// server that expires entries) may use the backend's clock by default and must
/// document it; it should still accept an injected clock for tests.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use store_api::{Clock, ManualClock, Timestamp};
/// let clock = ManualClock::new(Timestamp::from_millis(1_000));
/// let other = clock.clone();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(other.now(), Timestamp::from_millis(1_005));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `t` (it may move backwards).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// Starts at 2020-01-01T00:00:00Z, so that timestamps look like real ones.
    fn default() -> Self {
        ManualClock::new(Timestamp(1_577_836_800_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_rule_live_strictly_before_expiry() {
        let t = Timestamp::from_millis(100);
        assert!(is_live(Some(t), Timestamp::from_millis(99)));
        assert!(!is_live(Some(t), Timestamp::from_millis(100)));
        assert!(!is_live(Some(t), Timestamp::from_millis(101)));
        assert!(is_live(None, Timestamp::from_millis(u64::MAX)));
    }

    #[test]
    fn expiry_resolves_against_now() {
        let now = Timestamp::from_millis(1_000);
        assert_eq!(
            Expiry::Never.resolve(now, Some(Duration::from_secs(1))),
            None
        );
        assert_eq!(Expiry::Default.resolve(now, None), None);
        assert_eq!(
            Expiry::Default.resolve(now, Some(Duration::from_secs(1))),
            Some(Timestamp::from_millis(2_000))
        );
        assert_eq!(Expiry::After(Duration::ZERO).resolve(now, None), Some(now));
        assert_eq!(
            Expiry::At(Timestamp::ZERO).resolve(now, None),
            Some(Timestamp::ZERO)
        );
        assert_eq!(
            Expiry::After(Duration::MAX).resolve(now, None),
            Some(Timestamp::from_millis(u64::MAX))
        );
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > ManualClock::default().now());
    }
}
