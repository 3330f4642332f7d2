//! Model-based properties: generated operation sequences (with clock advances and,
//! for persistent engines, reopens) checked step by step against [`Model`]; failures
//! shrink to a minimal sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use proptest_state_machine::strategy::Sequential;
use store_api::{EvictionPolicy, ManualClock, SessionStore};

use crate::model::{Model, Op, strategy};
use crate::{Ctx, Harness, Outcome, Spec};

/// Longest generated sequence.
const MAX_OPS: usize = 40;

/// Replays one operation sequence (a shrunk failure printed by a model property, say)
/// against a fresh store of `H` made from `base` (the property's spec; the clock is
/// replaced by a fresh manual clock): `Err` says at which step the engine and the model
/// disagreed.
///
/// # Errors
/// The first disagreement, or why the harness could not make the store.
pub fn replay<H: Harness>(base: &Spec, ops: &[Op]) -> Result<(), String> {
    run_ops::<H>(base, ops, None)
}

fn run_ops<H: Harness>(base: &Spec, ops: &[Op], seen: Option<&AtomicUsize>) -> Result<(), String> {
    let clock = ManualClock::default();
    let spec = base.clone().with_clock(clock.clone());
    let harness = H::create(&spec).map_err(|u| format!("the harness refused the spec: {u}"))?;
    let mut store = harness
        .open()
        .map_err(|e| format!("open failed: {}", crate::check::chain(&e)))?;
    let mut model = Model::new(clock, spec.default_ttl, spec.policy, &store);
    for (i, op) in ops.iter().enumerate() {
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        let result = if *op == Op::Reopen {
            drop(store);
            store = harness
                .open()
                .map_err(|e| format!("step {i}: reopen failed: {}", crate::check::chain(&e)))?;
            model.reopened(&store);
            Ok(())
        } else {
            model.apply(&store, op)
        };
        result.map_err(|m| format!("step {i} {op:?}: {m}"))?;
    }
    model
        .check_all(&store)
        .map_err(|m| format!("reading every key after the last step: {m}"))
}

fn run_model<H: Harness>(ctx: &Ctx, base: Spec) -> Outcome {
    let probe = H::create(&base.clone().with_clock(ManualClock::default()))?;
    let caps = probe
        .open()
        .unwrap_or_else(|e| panic!("opening a fresh store failed: {}", crate::check::chain(&e)))
        .capabilities();
    drop(probe);
    let reopen = caps.survives_restart;
    let sequences = Sequential::new(
        (1..=MAX_OPS).into(),
        move || Just(reopen).boxed(),
        |_: &bool, _: &Op| true,
        |reopen: &bool| strategy::op(*reopen),
        |s, _| s,
    );
    // The seed is chosen here (or taken from PROPTEST_RNG_SEED) so that a failure can
    // print it: the same seed and case count replay the same sequences.
    let defaults = Config::default();
    let seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    let mut runner = TestRunner::new(Config {
        cases: ctx.cases(),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..defaults
    });
    let result = runner.run(
        &sequences,
        |(_, ops, seen): (bool, Vec<Op>, Option<Arc<AtomicUsize>>)| {
            run_ops::<H>(&base, &ops, seen.as_deref()).map_err(TestCaseError::fail)
        },
    );
    if let Err(e) = result {
        let saved = persist_failure::<H>(seed, ctx.cases(), &e.to_string());
        panic!(
            "the engine disagrees with the reference model (minimal sequence below).\n\
             Replay: PROPTEST_RNG_SEED={seed} CONFORMANCE_CASES={cases} cargo test <this test>, \
             or pass the sequence to conformance::behaviours::model::replay::<YourHarness>(&spec, &ops).\n\
             {saved}\n{e}",
            cases = ctx.cases()
        );
    }
    Ok(())
}

/// Writes a model failure (seed, case count, minimal sequence) to
/// `$CONFORMANCE_FAILURES` (default `<temp dir>/conformance-failures`), so that it
/// outlives the terminal; returns a line saying where, or why not.
fn persist_failure<H: Harness>(seed: u64, cases: u32, failure: &str) -> String {
    let dir = std::env::var_os("CONFORMANCE_FAILURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("conformance-failures"));
    let name: String = std::any::type_name::<H>()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = dir.join(format!("{name}-{seed}.txt"));
    let text = format!(
        "harness {}\nPROPTEST_RNG_SEED={seed}\nCONFORMANCE_CASES={cases}\n{failure}\n",
        std::any::type_name::<H>()
    );
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => format!("Saved to {}.", path.display()),
        Err(e) => format!("(could not save it under {}: {e})", dir.display()),
    }
}

/// Random operation sequences on a roomy store agree with the model.
pub fn roomy_store<H: Harness>(ctx: &Ctx) -> Outcome {
    run_model::<H>(ctx, Spec::new())
}

/// The same with a default time to live.
pub fn with_default_ttl<H: Harness>(ctx: &Ctx) -> Outcome {
    run_model::<H>(
        ctx,
        Spec::new().default_ttl(std::time::Duration::from_millis(1_500)),
    )
}

/// Random operation sequences on a small LRU store agree with the model, which follows
/// the evictions the engine reports.
pub fn small_store_lru<H: Harness>(ctx: &Ctx) -> Outcome {
    run_model::<H>(ctx, Spec::new().small().policy(EvictionPolicy::Lru))
}

/// Random operation sequences on a small never-evict-live store agree with the model,
/// `NoSpace` included.
pub fn small_store_never_evict_live<H: Harness>(ctx: &Ctx) -> Outcome {
    run_model::<H>(
        ctx,
        Spec::new().small().policy(EvictionPolicy::NeverEvictLive),
    )
}
