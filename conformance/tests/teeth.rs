//! The suite has teeth: every broken engine of the README's table fails the behaviour
//! the table says catches it, and the correct engine the broken ones are made from
//! passes those same behaviours, so each catch is the planted defect and nothing else.

mod support;

use conformance::{Ctx, Harness, behaviour};
use support::scratch::*;

/// Runs `test` against `H`: `Ok(())` if it failed (the defect was caught).
fn caught<H: Harness>(test: &str) -> Result<(), String> {
    let b = behaviour::<H>(test).ok_or_else(|| format!("the suite has no behaviour `{test}`"))?;
    let ctx = Ctx::new(None);
    match std::panic::catch_unwind(|| (b.run)(&ctx)) {
        Err(_) => Ok(()),
        Ok(Ok(())) => Err(format!("`{test}` passed")),
        Ok(Err(skip)) => Err(format!("`{test}` was skipped: {skip}")),
    }
}

/// Every broken engine, by the name the README's table uses.
const BROKEN: &[&str] = &[
    "LostUpdates",
    "BoundaryLive",
    "ReplaceResurrects",
    "DropsTooLarge",
    "SilentEviction",
    "OkNoneOnFailure",
    "ReusesVersions",
    "UpdateTwice",
    "TornWrites",
    "FarFutureIsPast",
    "EveryReadAHit",
    "StaleExpiryIndex",
    "ModeBeforeSize",
    "PurgeOffByOne",
    "HandleLocalLock",
    "StaleReadCache",
    "TakeInTwoSteps",
    "ScanShowsExpired",
    "ClearKeepsExpired",
    "SilentlyNoScan",
];

fn caught_by(engine: &str, test: &str) -> Result<(), String> {
    match engine {
        "LostUpdates" => caught::<LostUpdates>(test),
        "BoundaryLive" => caught::<BoundaryLive>(test),
        "ReplaceResurrects" => caught::<ReplaceResurrects>(test),
        "DropsTooLarge" => caught::<DropsTooLarge>(test),
        "SilentEviction" => caught::<SilentEviction>(test),
        "OkNoneOnFailure" => caught::<OkNoneOnFailure>(test),
        "ReusesVersions" => caught::<ReusesVersions>(test),
        "UpdateTwice" => caught::<UpdateTwice>(test),
        "TornWrites" => caught::<TornWrites>(test),
        "FarFutureIsPast" => caught::<FarFutureIsPast>(test),
        "EveryReadAHit" => caught::<EveryReadAHit>(test),
        "StaleExpiryIndex" => caught::<StaleExpiryIndex>(test),
        "ModeBeforeSize" => caught::<ModeBeforeSize>(test),
        "PurgeOffByOne" => caught::<PurgeOffByOne>(test),
        "HandleLocalLock" => caught::<HandleLocalLock>(test),
        "StaleReadCache" => caught::<StaleReadCache>(test),
        "TakeInTwoSteps" => caught::<TakeInTwoSteps>(test),
        "ScanShowsExpired" => caught::<ScanShowsExpired>(test),
        "ClearKeepsExpired" => caught::<ClearKeepsExpired>(test),
        "SilentlyNoScan" => caught::<SilentlyNoScan>(test),
        other => Err(format!("no broken engine named `{other}`")),
    }
}

/// `(engine, test)` rows of the README's teeth table: rows of the table under the
/// `<!-- teeth -->` marker whose first cell is a code span.
fn readme_rows() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let table = readme
        .split("<!-- teeth -->")
        .nth(1)
        .expect("README.md has a `<!-- teeth -->` marker before the table");
    table
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let engine = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            let test = cells.last()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((engine.to_string(), test.to_string()))
        })
        .collect()
}

#[test]
fn every_defect_in_the_readme_table_is_caught() {
    let rows = readme_rows();
    // Quiet the expected panics of the broken engines; this is the only test in this
    // binary, so the hook affects nothing else.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (engine, test) in &rows {
        if let Err(e) = caught_by(engine, test) {
            failures.push(format!("{engine}: {e}, so the defect went unnoticed"));
        }
        if caught::<Correct>(test).is_ok() {
            failures.push(format!(
                "`{test}` fails the correct engine too, so it proves nothing about {engine}"
            ));
        }
    }
    let _ = std::panic::take_hook();
    for engine in BROKEN {
        if !rows.iter().any(|(e, _)| e == engine) {
            failures.push(format!("{engine} has no row in README.md's teeth table"));
        }
    }
    assert!(
        rows.len() >= BROKEN.len(),
        "README table has {} rows",
        rows.len()
    );
    assert!(
        failures.is_empty(),
        "the teeth table does not hold:\n{}",
        failures.join("\n")
    );
}
