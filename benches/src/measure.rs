//! Timing: repeated samples, each a batch of operations, summarised as median, min, max.

use std::time::{Duration, Instant};

use store_api::Result;

/// How long a run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// CI: a few seconds in all, small stores.
    Quick,
    /// About a minute.
    Default,
    /// The long version, for BENCHMARKS.md.
    Full,
}

/// The time budget of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Which preset this is.
    pub mode: Mode,
    /// Warm-up before the samples of each cell (also calibrates the batch size).
    pub warmup: Duration,
    /// Target duration of one sample.
    pub sample_time: Duration,
    /// Samples per cell.
    pub samples: usize,
    /// Duration of one multi-process sample.
    pub mp_time: Duration,
    /// Samples of multi-process and purge cells.
    pub slow_samples: usize,
    /// Largest store of the `get_at_*` series.
    pub max_sessions: usize,
    /// Entries of the purge workload.
    pub purge_entries: usize,
}

impl Budget {
    /// The preset for `mode`.
    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Quick => Budget {
                mode,
                warmup: Duration::from_millis(2),
                sample_time: Duration::from_millis(2),
                samples: 5,
                mp_time: Duration::from_millis(50),
                slow_samples: 3,
                max_sessions: 10_000,
                purge_entries: 10_000,
            },
            Mode::Default => Budget {
                mode,
                warmup: Duration::from_millis(20),
                sample_time: Duration::from_millis(10),
                samples: 11,
                mp_time: Duration::from_millis(300),
                slow_samples: 5,
                max_sessions: 100_000,
                purge_entries: 100_000,
            },
            Mode::Full => Budget {
                mode,
                warmup: Duration::from_millis(200),
                sample_time: Duration::from_millis(50),
                samples: 21,
                mp_time: Duration::from_secs(1),
                slow_samples: 7,
                max_sessions: 1_000_000,
                purge_entries: 100_000,
            },
        }
    }
}

/// Median, min and max of a cell's samples, in nanoseconds per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Median of the samples.
    pub median_ns: f64,
    /// Fastest sample.
    pub min_ns: f64,
    /// Slowest sample.
    pub max_ns: f64,
    /// Number of samples.
    pub samples: usize,
    /// Operations per sample.
    pub ops_per_sample: u64,
    /// Operations whose result was not the expected one (a miss in a hit workload, say):
    /// non-zero means the cell measured something else than it claims.
    pub unexpected: u64,
}

impl Summary {
    /// Summarises per-sample costs (ns per op).
    ///
    /// # Panics
    /// If `ns` is empty.
    pub fn from_samples(ns: &[f64], ops_per_sample: u64, unexpected: u64) -> Self {
        assert!(!ns.is_empty(), "a summary needs at least one sample");
        let mut v = ns.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median_ns = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Summary {
            median_ns,
            min_ns: v[0],
            max_ns: v[v.len() - 1],
            samples: v.len(),
            ops_per_sample,
            unexpected,
        }
    }
}

/// Measures `op` (called with a running operation index; returns whether its result was
/// the expected one): a warm-up that also sizes the batch so one sample lasts about
/// `budget.sample_time`, then `budget.samples` timed batches.
///
/// # Errors
/// The first error `op` returns.
pub fn measure_op(budget: &Budget, mut op: impl FnMut(u64) -> Result<bool>) -> Result<Summary> {
    let (mut i, mut unexpected) = (0, 0);
    let batch = warm_up(budget, &mut op, &mut i)?;
    let samples = (0..budget.samples)
        .map(|_| sample(&mut op, batch, &mut i, &mut unexpected))
        .collect::<Result<Vec<f64>>>()?;
    Ok(Summary::from_samples(&samples, batch, unexpected))
}

/// Runs `op` for `budget.warmup` (at least 3 times) from index `*i`; returns the batch
/// size that makes one sample last about `budget.sample_time`.
fn warm_up(budget: &Budget, op: &mut impl FnMut(u64) -> Result<bool>, i: &mut u64) -> Result<u64> {
    let start = Instant::now();
    let mut n = 0u64;
    while n < 3 || start.elapsed() < budget.warmup {
        op(*i)?;
        *i += 1;
        n += 1;
    }
    let per_op = start.elapsed().as_nanos() as f64 / n as f64;
    Ok(((budget.sample_time.as_nanos() as f64 / per_op.max(1.0)) as u64).clamp(1, 1 << 30))
}

/// One timed batch of `op` from index `*i`: ns per operation; counts unexpected results.
fn sample(
    op: &mut impl FnMut(u64) -> Result<bool>,
    batch: u64,
    i: &mut u64,
    unexpected: &mut u64,
) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..batch {
        if !op(*i)? {
            *unexpected += 1;
        }
        *i += 1;
    }
    Ok(t.elapsed().as_nanos() as f64 / batch as f64)
}

/// Two operations timed in alternating samples, and the per-sample ratio `b / a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interleaved {
    /// The first operation (the baseline).
    pub a: Summary,
    /// The second operation.
    pub b: Summary,
    /// `b / a` of the two samples of each round, summarised like a cell (unitless).
    pub ratio: Summary,
}

/// Measures `a` and `b` in alternating samples (a sample of `a`, then one of `b`, round
/// after round), so both see the same phases of a noisy machine; the ratio of each round
/// compares two samples taken side by side. Each operation gets its own warm-up and batch
/// size, as in [`measure_op`].
///
/// # Errors
/// The first error either operation returns.
pub fn measure_interleaved(
    budget: &Budget,
    a: impl FnMut(u64) -> Result<bool>,
    b: impl FnMut(u64) -> Result<bool>,
) -> Result<Interleaved> {
    measure_interleaved_switching(budget, a, b, |_| Ok(()))
}

/// As [`measure_interleaved`], calling `switch(to_b)` (not timed) before each warm-up
/// and sample: `switch(true)` before `b`'s, `switch(false)` before `a`'s, to change the
/// conditions the two halves run under (start and stop a writer, for example).
///
/// # Errors
/// The first error of `a`, `b` or `switch`.
pub fn measure_interleaved_switching(
    budget: &Budget,
    mut a: impl FnMut(u64) -> Result<bool>,
    mut b: impl FnMut(u64) -> Result<bool>,
    mut switch: impl FnMut(bool) -> Result<()>,
) -> Result<Interleaved> {
    let (mut ia, mut ib, mut ua, mut ub) = (0, 0, 0, 0);
    switch(false)?;
    let batch_a = warm_up(budget, &mut a, &mut ia)?;
    switch(true)?;
    let batch_b = warm_up(budget, &mut b, &mut ib)?;
    let (mut sa, mut sb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..budget.samples {
        switch(false)?;
        let ta = sample(&mut a, batch_a, &mut ia, &mut ua)?;
        switch(true)?;
        let tb = sample(&mut b, batch_b, &mut ib, &mut ub)?;
        sa.push(ta);
        sb.push(tb);
        ratios.push(tb / ta.max(f64::MIN_POSITIVE));
    }
    Ok(Interleaved {
        a: Summary::from_samples(&sa, batch_a, ua),
        b: Summary::from_samples(&sb, batch_b, ub),
        ratio: Summary::from_samples(&ratios, 1, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_median_min_max() {
        let s = Summary::from_samples(&[5.0, 1.0, 3.0], 10, 0);
        assert_eq!((s.median_ns, s.min_ns, s.max_ns), (3.0, 1.0, 5.0));
        let s = Summary::from_samples(&[4.0, 1.0, 3.0, 2.0], 10, 0);
        assert_eq!(s.median_ns, 2.5);
    }

    #[test]
    fn measure_counts_unexpected_results() {
        let b = Budget::for_mode(Mode::Quick);
        let s = measure_op(&b, |i| Ok(i % 2 == 0)).unwrap();
        assert_eq!(s.samples, b.samples);
        assert!(s.unexpected > 0);
        assert!(s.min_ns <= s.median_ns && s.median_ns <= s.max_ns);
    }

    /// Spins for about `ns` nanoseconds.
    fn spin(ns: u128) {
        let t = Instant::now();
        while t.elapsed().as_nanos() < ns {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn interleaved_ratio_compares_the_two_operations_round_by_round() {
        let b = Budget::for_mode(Mode::Quick);
        let m = measure_interleaved(
            &b,
            |_| {
                spin(2_000);
                Ok(true)
            },
            |i| {
                spin(6_000);
                Ok(i % 2 == 0)
            },
        )
        .unwrap();
        assert_eq!((m.a.samples, m.b.samples, m.ratio.samples), (5, 5, 5));
        assert_eq!(m.a.unexpected, 0);
        assert!(m.b.unexpected > 0, "b's unexpected results are counted");
        // 6 us against 2 us: about 3, whatever the machine's speed (spinning on the clock
        // only ever overshoots a little).
        assert!(
            (2.0..4.5).contains(&m.ratio.median_ns),
            "ratio {:?}",
            m.ratio
        );
        assert!(m.ratio.min_ns <= m.ratio.median_ns && m.ratio.median_ns <= m.ratio.max_ns);
    }
}
