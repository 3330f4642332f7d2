//! Target `ops`: a differential fuzzer. Sequences of every store operation (all write
//! modes, update, touch, delete, rotate, purge, stats, clock advance, reopen) run on
//! store-fastmmap with 4 KiB pages, so that compaction and eviction happen within a few
//! writes, and every answer is checked against the reference model
//! [`conformance::model::Model`], which follows the evictions the engine reports.

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use conformance::model::{ExpirySpec, KEYS, ModeSpec, Model, Op, UpdateSpec, Value};
use store_api::{EvictionPolicy, ManualClock};

use crate::scratch::{self, Scratch};

/// Most operations one input runs.
const MAX_OPS: usize = 96;

fn key(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=KEYS - 1)
}

/// Mostly small values, some large enough to fill a 4 KiB page in a few writes, the
/// largest accepted, and too large.
fn value(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=15)? {
        0..=9 => {
            let n = u.int_in_range(0..=40)?;
            Value::Bytes(u.bytes(n)?.to_vec())
        }
        10..=12 => {
            let n = u.int_in_range(200..=1500)?;
            Value::Bytes(vec![u.arbitrary()?; n])
        }
        13 | 14 => Value::Max(u.arbitrary()?),
        _ => Value::TooLarge,
    })
}

fn expiry(u: &mut Unstructured<'_>) -> Result<ExpirySpec> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 | 1 => ExpirySpec::Never,
        2 => ExpirySpec::Default,
        3 | 4 => ExpirySpec::AfterMs(u.int_in_range(0..=3000)?),
        _ => ExpirySpec::AtOffsetMs(u.int_in_range(-3000..=3000)?),
    })
}

fn mode(u: &mut Unstructured<'_>) -> Result<ModeSpec> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => ModeSpec::Upsert,
        1 => ModeSpec::CreateOnly,
        2 => ModeSpec::ReplaceOnly,
        3 => ModeSpec::IfCurrent,
        _ => ModeSpec::IfStale,
    })
}

fn update(u: &mut Unstructured<'_>) -> Result<UpdateSpec> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => UpdateSpec::Keep,
        1 => UpdateSpec::Delete,
        2 => UpdateSpec::Set(value(u)?, expiry(u)?),
        3 => UpdateSpec::Append(u.arbitrary()?),
        _ => UpdateSpec::AppendIfPresent(u.arbitrary()?),
    })
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=19)? {
        0..=2 => Op::Get(key(u)?),
        3 => Op::GetInto(key(u)?),
        4..=8 => Op::Put {
            key: key(u)?,
            value: value(u)?,
            expiry: expiry(u)?,
            mode: mode(u)?,
        },
        9 => Op::Delete(key(u)?),
        10 => Op::Touch(key(u)?, expiry(u)?),
        11 | 12 => Op::Update(key(u)?, update(u)?),
        13 => Op::Rotate(key(u)?, key(u)?),
        14 => Op::Purge,
        15 => Op::Stats,
        16 | 17 => Op::Advance(u.int_in_range(0..=2000)?),
        _ => Op::Reopen,
    })
}

/// The target body.
pub fn ops(data: &[u8]) {
    for &kind in scratch::kinds() {
        ops_with(data, kind);
    }
}

/// The target body for one lock kind.
fn ops_with(data: &[u8], kind: store_fastmmap::LockKind) {
    let mut u = Unstructured::new(data);
    let (Ok(pages), Ok(ttl), Ok(never_evict)) = (
        u.int_in_range(1u32..=2),
        u.arbitrary::<Option<u16>>(),
        u.ratio(1u8, 4),
    ) else {
        return;
    };
    let ttl = ttl.map(|ms| Duration::from_millis(u64::from(ms % 4000)));
    let policy = if never_evict {
        EvictionPolicy::NeverEvictLive
    } else {
        EvictionPolicy::Lru
    };
    let dir = Scratch::new();
    let path = dir.path();
    scratch::fresh_file(&path, 4096, pages, kind);
    let clock = ManualClock::default();
    let open = || {
        scratch::open(&path, &clock, ttl, policy)
            .unwrap_or_else(|e| panic!("opening a healthy store file failed: {e}"))
    };
    let mut store = open();
    let mut model = Model::new(clock.clone(), ttl, policy, &store);
    let mut done = Vec::new();
    while done.len() < MAX_OPS && !u.is_empty() {
        let Ok(op) = op(&mut u) else { break };
        if op == Op::Reopen {
            drop(store);
            store = open();
            model.reopened(&store);
        } else if let Err(e) = model.apply(&store, &op) {
            panic!("{e}\n  at {op:?}\n  after {done:?}");
        }
        done.push(op);
    }
    if let Err(e) = model.check_all(&store) {
        panic!("{e}\n  in the final check after {done:?}");
    }
}
