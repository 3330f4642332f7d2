//! Reads take no lock and make no system call: a worker doing 20,000 reads makes exactly
//! as many system calls (counted by `strace -c`) as one doing 10. Skipped, with a
//! message, when `strace` is not installed or not permitted.

mod common;

use common::{Fixture, run_worker, worker};

/// Total system calls of a `read` worker doing `iters` reads, or `None` without strace.
fn syscalls(path: &str, iters: u64, out: &std::path::Path) -> Option<u64> {
    let status = std::process::Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(out)
        .arg(worker().get_program())
        .args(["read", path, "k", "10", &iters.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(out).ok()?;
    let total = text
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    // "100.00    0.000000   0   74   2 total": the calls column is the 4th.
    total.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn reads_make_no_system_calls() {
    let fx = Fixture::new();
    drop(fx.small(4));
    let path = fx.path();
    let p = path.to_str().unwrap();
    run_worker(&["put", p, "k", "10", "100"]);
    let few = syscalls(p, 10, &fx.dir.path().join("few.txt"));
    let many = syscalls(p, 20_000, &fx.dir.path().join("many.txt"));
    match (few, many) {
        (Some(few), Some(many)) => {
            assert_eq!(
                many,
                few,
                "20,000 reads made {} more system calls than 10",
                many - few
            )
        }
        _ => eprintln!("skipped: strace is not available or not permitted here"),
    }
}
