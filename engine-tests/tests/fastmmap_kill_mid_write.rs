//! A `store-fastmmap` writer killed at each of the engine's failpoints (a write stopped
//! half-way, page lock held) must not lose any other key of its page: the next writer
//! repairs the page and every other entry is still there, whole.
//!
//! Regression: the conformance behaviour `processes::killed_writer_stalls_nobody` found
//! (about once in 50 random kills) that a page repaired after its writer was killed had
//! lost other keys. Deterministically: a writer stopped at `rebuild-mid-data` had
//! written half of the compacted data area over the old records while the slot table
//! still pointed at the old positions, and the repair dropped the overwritten records
//! without a report (9 of 24 layouts here lost keys before store-fastmmap's move
//! journal). Layouts in which the hammering never reaches a failpoint are skipped.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use conformance::check::{get, key, put, self_checking, verify_self_checking};
use conformance::{Harness, Spec};
use engine_tests::{FastMmapFutexSmallPages, FastMmapSmallPages};
use store_api::SessionStore;
use store_fastmmap::Failpoint;

/// Kills a hammering worker at `fp` in page layout `variant`; `Ok(false)` if the worker
/// never reached `fp` (not every layout makes every step happen).
fn kill_at<H: Harness<Store = store_fastmmap::FastMmapStore>>(
    fp: Failpoint,
    variant: usize,
) -> Result<bool, String> {
    // Four 4 KiB pages; values small enough that no page ever needs to evict.
    let h = H::create(&Spec::new().small()).map_err(|u| u.to_string())?;
    let store = h.open().map_err(|e| e.to_string())?;
    // Some variants put a large victim value first, so that later compactions move
    // the other entries.
    if variant % 2 == 1 {
        put(
            &store,
            &key("victim"),
            &self_checking(99, 200 + variant * 40),
        );
    }
    let keep: Vec<_> = (0..4 + variant % 13)
        .map(|i| key(format!("keep:{i}")))
        .collect();
    for (i, k) in keep.iter().enumerate() {
        put(
            &store,
            k,
            &self_checking(i as u64, 40 + (i * 37 + variant * 11) % 200),
        );
    }
    let mut args = h.worker_args().expect("fastmmap has worker args");
    let seed = (variant as u64 + 1).to_string();
    let max_len = (100 + variant * 23 % 400).to_string();
    args.extend(["--", "hammer", "victim", &seed, &max_len].map(String::from));
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine-worker"))
        .args(&args)
        .env("FASTMMAP_FAILPOINT", fp.name())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    child.kill().map_err(|e| e.to_string())?;
    let _ = child.wait();
    if !line.starts_with("FAILPOINT") {
        return Ok(false);
    }
    // The next writer of the page repairs it.
    put(&store, &key("victim"), b"after");
    let mut lost = Vec::new();
    for (i, k) in keep.iter().enumerate() {
        match get(&store, k) {
            None => lost.push(k.to_string()),
            Some(e) => {
                let seed = verify_self_checking(&e.value).map_err(|m| format!("{k}: {m}"))?;
                if seed != i as u64 {
                    return Err(format!("{k} holds the value of seed {seed}"));
                }
            }
        }
    }
    if lost.is_empty() {
        Ok(true)
    } else {
        Err(format!(
            "{}: lost {lost:?} (stats {:?})",
            fp.name(),
            store.stats()
        ))
    }
}

/// Page layouts tried per failpoint.
const VARIANTS: usize = 24;

#[test]
fn no_other_key_is_lost_when_a_writer_is_killed_at_any_failpoint() {
    killed_at_every_failpoint::<FastMmapSmallPages>();
}

/// The same with the futex lock kind: the kernel marks the dead writer's robust lock,
/// and the next writer takes it over and repairs the page.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn futex_no_other_key_is_lost_when_a_writer_is_killed_at_any_failpoint() {
    killed_at_every_failpoint::<FastMmapFutexSmallPages>();
}

fn killed_at_every_failpoint<H: Harness<Store = store_fastmmap::FastMmapStore>>() {
    // The hammer job only writes, so it never reaches `DeleteMidShift`.
    let mut failures = Vec::new();
    let mut kills = 0;
    for fp in Failpoint::ALL
        .into_iter()
        .filter(|fp| *fp != Failpoint::DeleteMidShift)
    {
        let mut reached = 0;
        for v in 0..VARIANTS {
            match kill_at::<H>(fp, v) {
                Ok(killed) => reached += usize::from(killed),
                Err(e) => failures.push(format!("variant {v}: {e}")),
            }
            if v == 3 && reached == 0 {
                // This hammering never gets to that step; do not wait for it 20 more times.
                break;
            }
        }
        kills += reached;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        kills >= VARIANTS,
        "only {kills} workers reached a failpoint"
    );
}
