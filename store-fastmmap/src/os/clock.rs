//! The coarse wall clock (`CLOCK_REALTIME_COARSE`): the time of the kernel's last tick,
//! read from the vDSO in a few nanoseconds where `CLOCK_REALTIME` costs tens. It never
//! runs ahead of `CLOCK_REALTIME` and trails it by at most its resolution (one tick: 1 to
//! 10 ms), which is what makes it usable for exact decisions (see `crate::time`).
//!
//! libc, not rustix: this is the clock read of every `get`, measured as it is; rustix
//! would reach the same vDSO function by another code path, not measured here.
#![allow(unsafe_code)]

/// The coarse wall clock in milliseconds since the Unix epoch; `None` where there is none
/// (not Linux), if the call fails, or before the epoch.
#[inline]
pub fn coarse_ms() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let (secs, nanos) = coarse(libc::clock_gettime)?;
        Some(secs.saturating_mul(1_000).saturating_add(nanos / 1_000_000))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// How far the coarse clock may trail the precise one, as this engine allows for it: two
/// ticks rounded up to whole milliseconds; `None` where there is no coarse clock or its
/// tick is over 100 ms (then only the precise clock is used).
pub fn coarse_lag_ms() -> Option<u64> {
    coarse_resolution_ns()
        .filter(|&ns| ns <= 100_000_000 && coarse_ms().is_some())
        .map(|ns| (2 * ns).div_ceil(1_000_000))
}

/// The coarse clock's resolution in nanoseconds (its tick), if it has one.
pub(crate) fn coarse_resolution_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let (secs, nanos) = coarse(libc::clock_getres)?;
        secs.checked_mul(1_000_000_000)?
            .checked_add(nanos)
            .filter(|&ns| ns > 0)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// `call(CLOCK_REALTIME_COARSE, &mut ts)` (`clock_gettime` or `clock_getres`) as whole
/// seconds and nanoseconds; `None` if it fails or the answer is negative or not normalised.
#[cfg(target_os = "linux")]
#[inline]
fn coarse(
    call: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int,
) -> Option<(u64, u64)> {
    // SAFETY: `timespec` is plain old data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `call` is `clock_gettime` or `clock_getres`, which write one `timespec`
    // through the pointer; `ts` is valid, writable and outlives the call.
    let rc = unsafe { call(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    let (secs, nanos) = (
        u64::try_from(ts.tv_sec).ok()?,
        u64::try_from(ts.tv_nsec).ok()?,
    );
    (rc == 0 && nanos < 1_000_000_000).then_some((secs, nanos))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use store_api::{Clock, SystemClock};

    use super::*;

    #[test]
    fn never_runs_ahead_of_the_precise_clock_and_trails_it_by_under_a_second() {
        let res_ms = coarse_resolution_ns().expect("Linux has a coarse clock") / 1_000_000;
        assert!((1..=100).contains(&res_ms), "a tick of {res_ms} ms");
        for _ in 0..10_000 {
            let before = SystemClock.now().as_millis();
            let coarse = coarse_ms().expect("coarse clock");
            let after = SystemClock.now().as_millis();
            assert!(coarse <= after, "never ahead: {coarse} > {after}");
            // What the "live" shortcut of `crate::time` relies on; it trails by about a
            // tick, but a loaded machine may run its tick late, so no tighter bound here.
            assert!(
                before < coarse + 1_000,
                "trails by a second or more: {coarse} vs {before}"
            );
        }
    }
}
