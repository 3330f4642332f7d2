//! Processes: worker processes (never forks) share the store; counters stay exact;
//! simultaneous first open; a killed writer; reopen; corrupt and incompatible files.

use std::io::{BufRead as _, BufReader, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use store_api::{Error, Expiry, SessionStore, WriteMode};

use crate::check::{counter, get, key, put, put_with, self_checking, verify_self_checking, within};
use crate::worker::{finish, hex, run_job, run_job_within, spawn_job, unhex};
use crate::{Corruption, Ctx, Harness, Outcome, Spec, Unsupported};

/// A harness, its store and what a worker needs to open the same store.
struct Shared<H: Harness> {
    harness: H,
    program: PathBuf,
    args: Vec<String>,
}

fn shared<H: Harness>(
    ctx: &Ctx,
    open_first: bool,
) -> Result<(Shared<H>, Option<H::Store>), Unsupported> {
    let program = ctx
        .worker()
        .ok_or_else(|| Unsupported::new("no worker binary was given to suite!(.., worker = ..)"))?
        .to_path_buf();
    let harness = H::create(&Spec::new())?;
    let args = harness.worker_args().ok_or_else(|| {
        Unsupported::new("the harness gives no worker arguments (Harness::worker_args)")
    })?;
    let store = if open_first {
        let store = harness.open().unwrap_or_else(|e| {
            panic!("opening a fresh store failed: {}", crate::check::chain(&e))
        });
        if !store.capabilities().shared_across_processes {
            return Err(Unsupported::new(
                "the engine is not shared across processes",
            ));
        }
        Some(store)
    } else {
        None
    };
    Ok((
        Shared {
            harness,
            program,
            args,
        },
        store,
    ))
}

fn parse_get(out: &str) -> Option<Vec<u8>> {
    let line = out.lines().next().unwrap_or_default();
    if line == "none" {
        return None;
    }
    let h = line
        .strip_prefix("value ")
        .unwrap_or_else(|| panic!("unexpected worker output {out:?}"));
    Some(unhex(h).expect("worker prints hex"))
}

/// A child sees the parent's writes and the parent (through a handle opened before)
/// sees the child's.
pub fn children_see_parent_writes<H: Harness>(ctx: &Ctx) -> Outcome {
    let (s, store) = shared::<H>(ctx, true)?;
    let store = store.expect("opened");
    let from_parent = key("from:parent");
    let from_child = key("from:child");
    put(&store, &from_parent, "parent wrote ☀".as_bytes());
    let out = run_job(&s.program, &s.args, &["get", from_parent.as_str()]);
    assert_eq!(
        parse_get(&out).as_deref(),
        Some("parent wrote ☀".as_bytes()),
        "the child must see the parent's write"
    );
    run_job(
        &s.program,
        &s.args,
        &["put", from_child.as_str(), &hex(b"child wrote")],
    );
    assert_eq!(
        get(&store, &from_child).map(|e| e.value),
        Some(b"child wrote".to_vec()),
        "the parent must see the child's write"
    );
    assert!(crate::check::delete(&store, &from_child));
    let out = run_job(&s.program, &s.args, &["get", from_child.as_str()]);
    assert_eq!(
        parse_get(&out),
        None,
        "the child must see the parent's delete"
    );
    drop(s.harness);
    Ok(())
}

/// P worker processes x M atomic increments (plus the parent's own) end at exactly the
/// total.
pub fn processes_increment_exactly<H: Harness>(ctx: &Ctx) -> Outcome {
    let (s, store) = shared::<H>(ctx, true)?;
    let store = store.expect("opened");
    let k = key("counter:processes");
    let (procs, m) = (3u64, 200 * u64::from(ctx.scale()));
    let children: Vec<_> = (0..procs)
        .map(|_| spawn_job(&s.program, &s.args, &["incr", k.as_str(), &m.to_string()]))
        .collect();
    for _ in 0..m {
        crate::behaviours::update::update_retrying(
            &store,
            &k,
            &mut crate::behaviours::update::increment,
        );
    }
    for c in children {
        finish(c, "incr");
    }
    let total = counter(get(&store, &k).map(|e| e.value).as_deref());
    assert_eq!(
        total,
        (procs + 1) * m,
        "{procs} processes + the parent x {m} increments"
    );
    Ok(())
}

/// Several processes opening a store that does not exist yet, at the same moment, all
/// end up on one store: every write survives.
pub fn simultaneous_first_open_initialises_once<H: Harness>(ctx: &Ctx) -> Outcome {
    let (s, _) = shared::<H>(ctx, false)?;
    let n = 4;
    let mut children: Vec<_> = (0..n)
        .map(|i| {
            spawn_job(
                &s.program,
                &s.args,
                &[
                    "wait-put",
                    &format!("first:{i}"),
                    &hex(format!("child {i}").as_bytes()),
                ],
            )
        })
        .collect();
    for c in &mut children {
        writeln!(c.stdin.as_mut().expect("piped"), "go").expect("release the worker");
    }
    for c in children {
        finish(c, "wait-put");
    }
    let store = s
        .harness
        .open()
        .unwrap_or_else(|e| panic!("opening after the workers: {}", crate::check::chain(&e)));
    if !store.capabilities().shared_across_processes {
        return Err(Unsupported::new(
            "the engine is not shared across processes",
        ));
    }
    for i in 0..n {
        assert_eq!(
            get(&store, &key(format!("first:{i}"))).map(|e| e.value),
            Some(format!("child {i}").into_bytes()),
            "a write of process {i} was lost: the store was initialised more than once"
        );
    }
    Ok(())
}

/// A worker killed with SIGKILL in the middle of writing stalls no other process or
/// thread, and loses no other key; its own key holds a whole value or none.
pub fn killed_writer_stalls_nobody<H: Harness>(ctx: &Ctx) -> Outcome {
    let (s, store) = shared::<H>(ctx, true)?;
    let store = std::sync::Arc::new(store.expect("opened"));
    let keep: Vec<_> = (0..64).map(|i| key(format!("keep:{i}"))).collect();
    for (i, k) in keep.iter().enumerate() {
        put(&*store, k, &self_checking(i as u64, 100 + i * 3));
    }
    let victim = key("victim");
    // Values small enough that no page or region ever needs to evict one of the kept
    // entries to make room for the victim's: every disappearance is a loss.
    let hammer_max = (store.capabilities().max_value_len / 4).clamp(64, 16 << 10);
    let rounds = 3 * u64::from(ctx.scale());
    for round in 0..rounds {
        let mut child = spawn_job(
            &s.program,
            &s.args,
            &[
                "hammer",
                victim.as_str(),
                &(round << 32).to_string(),
                &hammer_max.to_string(),
            ],
        );
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("read the worker's ready line");
        assert_eq!(line.trim(), "ready", "the hammer worker did not start");
        std::thread::sleep(Duration::from_millis(5 + 7 * (round % 8)));
        child.kill().expect("SIGKILL the worker");
        let _ = child.wait();
        let (store2, keep2, victim2) = (store.clone(), keep.clone(), victim.clone());
        within(
            "reading and writing after a writer was killed",
            Duration::from_secs(10),
            move || {
                for (i, k) in keep2.iter().enumerate() {
                    let e = get(&*store2, k).unwrap_or_else(|| {
                        panic!("{k} was lost when a writer of another key was killed")
                    });
                    assert_eq!(verify_self_checking(&e.value), Ok(i as u64), "{k} damaged");
                }
                if let Some(e) = get(&*store2, &victim2) {
                    verify_self_checking(&e.value)
                        .unwrap_or_else(|m| panic!("the killed writer's key: {m}"));
                }
                put_with(
                    &*store2,
                    &victim2,
                    b"after",
                    Expiry::Never,
                    WriteMode::Upsert,
                );
                crate::behaviours::update::update_retrying(
                    &*store2,
                    &key("after-kill"),
                    &mut crate::behaviours::update::increment,
                );
            },
        );
        // Bounded: a worker stalled on a lock its killed predecessor left fails the
        // behaviour (and is killed) instead of hanging the test run.
        run_job_within(
            &s.program,
            &s.args,
            &["incr", "after-kill", "20"],
            Duration::from_secs(10),
            "a new worker after a writer was killed",
        );
    }
    assert_eq!(
        counter(get(&*store, &key("after-kill")).map(|e| e.value).as_deref()),
        rounds * 21
    );
    Ok(())
}

/// Entries survive closing and reopening the store, with their values, versions and
/// expiries; later writes get versions never used before.
pub fn data_survives_reopen<H: Harness>(ctx: &Ctx) -> Outcome {
    let (spec, _clock) = Spec::new().with_manual_clock();
    let (h, store) = match ctx.store::<H>(&spec) {
        Ok(s) => s,
        Err(_) => ctx.store::<H>(&Spec::new())?,
    };
    if !store.capabilities().survives_restart {
        return Err(Unsupported::new("the engine does not survive a restart"));
    }
    let mut written = Vec::new();
    for i in 0..50u64 {
        let k = key(format!("durable:{i}"));
        let expiry = if i % 2 == 0 {
            Expiry::Never
        } else {
            Expiry::After(Duration::from_secs(86_400 * 365))
        };
        put_with(
            &store,
            &k,
            &self_checking(i, 10 + i as usize * 13),
            expiry,
            WriteMode::Upsert,
        );
        written.push((k.clone(), get(&store, &k).expect("live")));
    }
    drop(store);
    let store = h
        .open()
        .unwrap_or_else(|e| panic!("reopening: {}", crate::check::chain(&e)));
    for (k, before) in &written {
        assert_eq!(
            get(&store, k).as_ref(),
            Some(before),
            "{k} did not survive the reopen intact"
        );
    }
    for (k, before) in &written {
        let v = put(&store, k, b"new").version;
        assert_ne!(v, before.version, "a version was reused after reopen");
    }
    Ok(())
}

/// A store whose data was scribbled over, truncated or made by an incompatible version
/// gives errors (or repairs itself), never a panic or crash; an incompatible file is
/// refused at open.
pub fn corrupt_or_incompatible_file_is_an_error<H: Harness>(ctx: &Ctx) -> Outcome {
    let mut tried = 0;
    for how in [
        Corruption::Scribble,
        Corruption::Truncate,
        Corruption::Incompatible,
    ] {
        let (h, store) = ctx.store::<H>(&Spec::new())?;
        for i in 0..200u64 {
            put(
                &store,
                &key(format!("c:{i}")),
                &self_checking(i, 100 + i as usize),
            );
        }
        drop(store);
        if h.corrupt(how).is_err() {
            continue;
        }
        tried += 1;
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            let store = match h.open() {
                Err(e) => {
                    if how == Corruption::Incompatible
                        && !matches!(e, Error::Incompatible { .. } | Error::Corrupted { .. })
                    {
                        return Err(format!(
                            "an incompatible store must be refused as Incompatible or Corrupted, got {}",
                            crate::check::chain(&e)
                        ));
                    }
                    return Ok(());
                }
                Ok(store) => store,
            };
            if how == Corruption::Incompatible {
                return Err("an incompatible store was opened as if it were fine".into());
            }
            for i in 0..200u64 {
                let _ = store.get(&key(format!("c:{i}")));
            }
            let fresh = key("after-corruption");
            let v = self_checking(99, 300);
            if store
                .put(&fresh, &v, Expiry::Never, WriteMode::Upsert)
                .is_ok()
            {
                match store.get(&fresh) {
                    Ok(Some(e)) if e.value != v => {
                        return Err("a value written after the corruption read back damaged".into());
                    }
                    Ok(None) => return Err("a value written after the corruption vanished".into()),
                    _ => {}
                }
            }
            let _ = store.purge_expired();
            let _ = store.stats();
            Ok(())
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(m)) => panic!("{how:?}: {m}"),
            Err(p) => {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{how:?}: the engine panicked on damaged data instead of returning an error: {m}"
                )
            }
        }
    }
    if tried == 0 {
        return Err(Unsupported::new(
            "the harness cannot corrupt its store (Harness::corrupt)",
        ));
    }
    Ok(())
}
