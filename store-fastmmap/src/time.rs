//! Where a store's time comes from, and the two places it can avoid a precise clock read.
//!
//! A precise read of the wall clock costs about 30-50 ns on the machine of
//! `BENCHMARKS.md`: half of a lock-free `get` of an entry that can expire. The coarse
//! clock ([`crate::os::clock`]) costs about 5 ns, never runs ahead of the precise one and
//! trails it by at most one tick. With the default (system) clock:
//!
//! - **Liveness stays exact.** An entry expiring at `t` is decided from the coarse time
//!   `c` alone when `c >= t` (expired: the precise time is at least `c`) or when
//!   `c + READ_WINDOW_MS < t` (live: the precise time is below `c` plus one tick, and the
//!   window is hundreds of ticks). Only entries within a second of their expiry pay for a
//!   precise read.
//! - **A relative expiry of at least [`COARSE_MIN_TTL`] is resolved from the coarse time
//!   rounded up by two ticks** (`lag_ms`), so the entry lives at least as long as asked
//!   and at most two ticks longer. Shorter ones (`After(ZERO)` is expired at once) use the
//!   precise clock.
//!
//! An injected clock (a `ManualClock` in tests) is always read as it is.
//!
//! Assumptions (also in `docs/FORMAT.md`, "Platform assumptions"): the coarse clock is
//! never ahead of the precise one (the kernel derives both from one snapshot, so the
//! "expired" shortcut is always exact); it trails by less than a second (the "live"
//! shortcut: false only if the whole machine stalls that long, a paused VM); and by at
//! most two ticks for the rounding of TTLs to keep "at least the TTL".

use std::sync::Arc;
use std::time::Duration;

use store_api::{Clock, Expiry, SystemClock, Timestamp, is_live};

use crate::os::clock::{coarse_lag_ms, coarse_ms};

/// Entries closer than this to their expiry are checked against the precise clock.
const READ_WINDOW_MS: u64 = 1_000;

/// Relative expiries at least this long may be resolved from the coarse clock.
pub(crate) const COARSE_MIN_TTL: Duration = Duration::from_secs(1);

/// The store's clock.
#[derive(Debug, Clone)]
pub(crate) enum TimeSource {
    /// The system wall clock; `lag_ms` bounds how far the coarse clock may trail it
    /// (`None`: no usable coarse clock, every read is precise).
    System {
        /// Two ticks of the coarse clock, rounded up to whole milliseconds.
        lag_ms: Option<u64>,
    },
    /// A clock given to the builder.
    Custom(Arc<dyn Clock>),
}

impl TimeSource {
    /// The system clock, with this machine's coarse-clock tick.
    pub(crate) fn system() -> TimeSource {
        TimeSource::System {
            lag_ms: coarse_lag_ms(),
        }
    }

    /// Now, precisely.
    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        match self {
            TimeSource::System { .. } => SystemClock.now(),
            TimeSource::Custom(c) => c.now(),
        }
    }

    /// Whether an entry expiring at `expires_at` is live now: exactly
    /// `is_live(expires_at, self.now())`, mostly without a precise clock read.
    #[inline]
    pub(crate) fn is_live(&self, expires_at: Option<Timestamp>) -> bool {
        self.is_live_with(expires_at, &mut || self.now())
    }

    /// As [`Self::is_live`], reading the precise time (if it is needed) from `precise`,
    /// so that a caller that may need it again reads the clock once.
    #[inline]
    pub(crate) fn is_live_with(
        &self,
        expires_at: Option<Timestamp>,
        precise: &mut impl FnMut() -> Timestamp,
    ) -> bool {
        let Some(t) = expires_at else {
            return true;
        };
        if let TimeSource::System { lag_ms: Some(_) } = self
            && let Some(c) = coarse_ms()
        {
            if c >= t.as_millis() {
                return false;
            }
            if c.saturating_add(READ_WINDOW_MS) < t.as_millis() {
                return true;
            }
        }
        is_live(Some(t), precise())
    }

    /// `expiry` resolved for a write happening now (see the module docs for the coarse
    /// clock's part); `precise` is read at most once, only if needed.
    #[inline]
    pub(crate) fn resolve(
        &self,
        expiry: Expiry,
        default_ttl: Option<Duration>,
        precise: &mut impl FnMut() -> Timestamp,
    ) -> Option<Timestamp> {
        // Only the base time is chosen here; `Expiry::resolve` applies the rules.
        let base = match (expiry, default_ttl) {
            (Expiry::After(ttl), _) | (Expiry::Default, Some(ttl)) => {
                if ttl >= COARSE_MIN_TTL
                    && let TimeSource::System { lag_ms: Some(lag) } = self
                    && let Some(c) = coarse_ms()
                {
                    Timestamp::from_millis(c.saturating_add(*lag))
                } else {
                    precise()
                }
            }
            // Never, At and a Default without a TTL do not read the time.
            _ => Timestamp::from_millis(0),
        };
        expiry.resolve(base, default_ttl)
    }
}

#[cfg(test)]
mod tests {
    use store_api::ManualClock;

    use super::*;

    fn system() -> TimeSource {
        let t = TimeSource::system();
        #[cfg(target_os = "linux")]
        assert!(
            matches!(
                t,
                TimeSource::System {
                    lag_ms: Some(1..=200)
                }
            ),
            "{t:?}"
        );
        t
    }

    #[test]
    fn liveness_matches_the_precise_clock_on_both_sides_of_now() {
        let t = system();
        let offsets = [
            -100_000i64,
            -1_500,
            -1_000,
            -10,
            -1,
            1,
            10,
            1_000,
            1_500,
            100_000,
        ];
        // Repeated: a coarse-only answer would be wrong for the offsets within a tick of
        // now on most iterations.
        for offset in offsets.into_iter().cycle().take(offsets.len() * 300) {
            let now = SystemClock.now().as_millis();
            let at = Timestamp::from_millis(now.saturating_add_signed(offset));
            let got = t.is_live(Some(at));
            let after = SystemClock.now().as_millis();
            if offset < 0 {
                assert!(!got, "expired {offset} ms ago but called live");
            } else if at.as_millis() > after {
                assert!(got, "expires in {offset} ms but called expired");
            }
        }
        assert!(t.is_live(None));
    }

    #[test]
    fn a_coarse_expiry_is_never_shorter_and_at_most_two_ticks_longer() {
        let t = system();
        let lag = match t {
            TimeSource::System { lag_ms } => lag_ms.unwrap_or(0),
            TimeSource::Custom(_) => unreachable!(),
        };
        let mut checked = 0;
        for ttl in [COARSE_MIN_TTL, Duration::from_secs(3_600)]
            .into_iter()
            .cycle()
            .take(2_000)
        {
            let before = SystemClock.now();
            // The lower bound holds while the tick is at most `lag` late; a loaded test
            // machine may run it later, and such rounds only check the upper bound.
            let tick_on_time = coarse_ms().is_some_and(|c| before.as_millis() <= c + lag);
            let at = t
                .resolve(Expiry::After(ttl), None, &mut || SystemClock.now())
                .expect("an expiry");
            let after = SystemClock.now();
            if tick_on_time {
                checked += 1;
                assert!(
                    at >= before.saturating_add(ttl),
                    "{at:?} shorter than asked"
                );
            }
            assert!(
                at <= after.saturating_add(ttl + Duration::from_millis(lag)),
                "{at:?} longer than two ticks past asked"
            );
        }
        assert!(
            checked > 1_000,
            "the tick was late in most rounds: {checked}"
        );
    }

    #[test]
    fn short_and_absolute_expiries_are_exact() {
        let t = system();
        let mut reads = 0;
        let fixed = Timestamp::from_millis(5_000);
        let mut precise = || {
            reads += 1;
            fixed
        };
        assert_eq!(
            t.resolve(Expiry::After(Duration::ZERO), None, &mut precise),
            Some(fixed)
        );
        assert_eq!(
            t.resolve(
                Expiry::After(Duration::from_millis(999)),
                None,
                &mut precise
            ),
            Some(Timestamp::from_millis(5_999))
        );
        assert_eq!(
            t.resolve(
                Expiry::Default,
                Some(Duration::from_millis(10)),
                &mut precise
            ),
            Some(Timestamp::from_millis(5_010))
        );
        assert_eq!(
            t.resolve(Expiry::At(fixed), None, &mut precise),
            Some(fixed)
        );
        assert_eq!(t.resolve(Expiry::Never, None, &mut precise), None);
        assert_eq!(t.resolve(Expiry::Default, None, &mut precise), None);
        assert_eq!(reads, 3);
    }

    #[test]
    fn an_injected_clock_is_always_read_as_it_is() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
        let t = TimeSource::Custom(Arc::new(clock.clone()));
        assert_eq!(
            t.resolve(Expiry::After(Duration::from_secs(3_600)), None, &mut || t
                .now()),
            Some(Timestamp::from_millis(4_600_000))
        );
        assert!(t.is_live(Some(Timestamp::from_millis(1_000_001))));
        assert!(!t.is_live(Some(Timestamp::from_millis(1_000_000))));
        clock.advance(Duration::from_millis(1));
        assert!(!t.is_live(Some(Timestamp::from_millis(1_000_001))));
    }
}
