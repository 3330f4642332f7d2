//! The worker process of the multi-process behaviours.
//!
//! An engine shared across processes ships a tiny binary whose `main` calls
//! [`main::<MyHarness>()`](main), and passes its path to the suite:
//! `conformance::suite!(MyHarness, worker = env!("CARGO_BIN_EXE_my-worker"));`.
//! The suite runs it as `my-worker <harness args...> -- <job...>`, where the harness
//! arguments come from [`Harness::worker_args`] and go back through
//! [`Harness::from_worker_args`]. The test process is never forked.
//!
//! Jobs (all values hex-encoded, every entry written with [`Expiry::Never`]):
//!
//! | job | does |
//! |---|---|
//! | `put KEY HEX` | upsert, print `ok` |
//! | `get KEY` | print `value HEX` or `none` |
//! | `wait-put KEY HEX` | wait for a line on stdin, then open the store and upsert |
//! | `incr KEY N` | N atomic increments of an 8-byte counter through `update` |
//! | `hammer KEY SEED [MAX]` | print `ready` after the first write, then write self-checking values (up to MAX bytes, default 16 KiB) until killed |

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use store_api::{Expiry, Key, SessionStore, UpdateAction, WriteMode};

use crate::Harness;
use crate::check::self_checking;

/// The worker binary's whole `main`: runs the job named on the command line and exits
/// with status 0 on success, 1 (after printing why) on failure.
pub fn main<H: Harness>() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run::<H>(&args) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("conformance worker {args:?}: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs one job, `args` being `<harness args...> -- <job...>`.
///
/// # Errors
/// What went wrong, for the worker to print.
pub fn run<H: Harness>(args: &[String]) -> Result<(), String> {
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("expected `<harness args> -- <job>`")?;
    let (harness_args, job) = (&args[..split], &args[split + 1..]);
    let harness = H::from_worker_args(harness_args)?;
    let arg = |i: usize| -> Result<&str, String> {
        job.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("job {job:?} is missing argument {i}"))
    };
    let key = |i: usize| -> Result<Key, String> { Key::new(arg(i)?).map_err(|e| e.to_string()) };
    let open = || {
        harness
            .open()
            .map_err(|e| format!("opening the store: {e}"))
    };
    let mut out = std::io::stdout().lock();
    match arg(0)? {
        "put" => {
            let store = open()?;
            put(&store, &key(1)?, &unhex(arg(2)?)?)?;
            writeln!(out, "ok").map_err(|e| e.to_string())?;
        }
        "wait-put" => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let store = open()?;
            put(&store, &key(1)?, &unhex(arg(2)?)?)?;
            writeln!(out, "ok").map_err(|e| e.to_string())?;
        }
        "get" => {
            let store = open()?;
            match store.get(&key(1)?).map_err(|e| e.to_string())? {
                Some(e) => writeln!(out, "value {}", hex(&e.value)),
                None => writeln!(out, "none"),
            }
            .map_err(|e| e.to_string())?;
        }
        "incr" => {
            let store = open()?;
            let k = key(1)?;
            let n: u64 = arg(2)?.parse().map_err(|e| format!("count: {e}"))?;
            for _ in 0..n {
                crate::behaviours::update::update_retrying(
                    &store,
                    &k,
                    &mut crate::behaviours::update::increment,
                );
            }
            writeln!(out, "ok").map_err(|e| e.to_string())?;
        }
        "hammer" => {
            let store = open()?;
            let k = key(1)?;
            let mut seed: u64 = arg(2)?.parse().map_err(|e| format!("seed: {e}"))?;
            let cap = match job.get(3) {
                Some(m) => m.parse().map_err(|e| format!("max length: {e}"))?,
                None => 16 << 10,
            };
            let max = store.capabilities().max_value_len.min(cap).max(1);
            for i in 0u64.. {
                seed += 1;
                let len = crate::check::self_checking_len(&mut seed.clone(), max);
                let v = self_checking(seed, len);
                if i % 2 == 0 {
                    put(&store, &k, &v)?;
                } else {
                    store
                        .update(&k, &mut |_| UpdateAction::set(v.clone(), Expiry::Never))
                        .map_err(|e| e.to_string())?;
                }
                if i == 0 {
                    writeln!(out, "ready").map_err(|e| e.to_string())?;
                    out.flush().map_err(|e| e.to_string())?;
                }
            }
        }
        other => return Err(format!("unknown job {other:?}")),
    }
    Ok(())
}

fn put(store: &dyn SessionStore, k: &Key, v: &[u8]) -> Result<(), String> {
    store
        .put(k, v, Expiry::Never, WriteMode::Upsert)
        .map(|_| ())
        .map_err(|e| format!("put({k}): {e}"))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower- or upper-case hex.
pub(crate) fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.is_ascii() || !s.len().is_multiple_of(2) {
        return Err(format!("not an even-length ASCII hex string: {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s:?}: {e}")))
        .collect()
}

/// A worker command for the store of `harness`.
pub(crate) fn command(program: &Path, harness_args: &[String], job: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(harness_args).arg("--").args(job);
    c
}

/// Runs a worker job to completion and returns its standard output; panics with its
/// standard error if it failed.
pub(crate) fn run_job(program: &Path, harness_args: &[String], job: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command(program, harness_args, job)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting worker {}: {e}", program.display()));
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        status.success(),
        "worker job {job:?} failed ({status}): {stderr}"
    );
    String::from_utf8_lossy(&stdout).into_owned()
}

/// Starts a worker job with piped stdin and stdout.
pub(crate) fn spawn_job(program: &Path, harness_args: &[String], job: &[&str]) -> Child {
    command(program, harness_args, job)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting worker {}: {e}", program.display()))
}

/// As [`run_job`], but a job still running after `limit` is killed and fails the
/// behaviour (`what` names it), so a stalled worker neither hangs the run nor keeps
/// writing to the store during later behaviours. For jobs with little output (it is
/// read once the job has exited).
pub(crate) fn run_job_within(
    program: &Path,
    harness_args: &[String],
    job: &[&str],
    limit: Duration,
    what: &str,
) -> String {
    let mut child = command(program, harness_args, job)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting worker {}: {e}", program.display()));
    let deadline = Instant::now() + limit;
    while child
        .try_wait()
        .unwrap_or_else(|e| panic!("waiting for worker ({what}): {e}"))
        .is_none()
    {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}: the store stalled or deadlocked");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    finish(child, what)
}

/// Waits for a spawned job and panics with its standard error if it failed.
pub(crate) fn finish(child: Child, what: &str) -> String {
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for worker ({what}): {e}"));
    assert!(
        out.status.success(),
        "worker ({what}) failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let v: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&v)), Ok(v));
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }
}
