//! Model-based properties: generated operation sequences (with clock advances and,
//! for persistent engines, reopens) checked step by step against [`Model`]; failures
//! shrink to a minimal sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use proptest_state_machine::strategy::Sequential;
use store_api::{EvictionPolicy, ManualClock, SessionStore};

use crate::model::{Model, Op, strategy};
use crate::{Ctx, Harness, Outcome, Spec};

/// Longest generated sequence.
const MAX_OPS: usize = 40;

fn run_ops<H: Harness>(base: &Spec, ops: &[Op], seen: Option<&AtomicUsize>) -> Result<(), String> {
    let clock = ManualClock::default();
    let spec = base.clone().with_clock(clock.clone());
    let harness = H::create(&spec).map_err(|u| format!("the harness refused the spec: {u}"))?;
    let mut store = harness.open().map_err(|e| format!("open failed: {e}"))?;
    let mut model = Model::new(clock, spec.default_ttl, spec.policy, &store);
    for (i, op) in ops.iter().enumerate() {
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        let result = if *op == Op::Reopen {
            drop(store);
            store = harness
                .open()
                .map_err(|e| format!("step {i}: reopen failed: {e}"))?;
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
        .unwrap_or_else(|e| panic!("opening a fresh store failed: {e}"))
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
    let mut runner = TestRunner::new(Config {
        cases: ctx.cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(
        &sequences,
        |(_, ops, seen): (bool, Vec<Op>, Option<Arc<AtomicUsize>>)| {
            run_ops::<H>(&base, &ops, seen.as_deref()).map_err(TestCaseError::fail)
        },
    );
    if let Err(e) = result {
        panic!("the engine disagrees with the reference model (minimal sequence below):\n{e}");
    }
    Ok(())
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
