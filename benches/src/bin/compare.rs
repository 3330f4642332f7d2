//! The comparison runner: every engine of the workspace and the peers a user would pick
//! instead, on one workload definition, side by side.
//!
//! ```text
//! cargo run --release -p benches --bin compare                    # about a minute
//! cargo run --release -p benches --features peers --bin compare   # with LMDB, Redis, Perl
//! cargo run --release -p benches --bin compare -- --quick         # CI: a few seconds
//! cargo run --release -p benches --bin compare -- --full          # for BENCHMARKS.md
//! ```
//!
//! Prints a table (workload x engine, median ns per operation, ratio to store-fastmmap)
//! and the goals, and writes `results.{json,csv,md}` and `chart.svg` to `target/compare/`
//! (or `--out DIR`).

use std::path::PathBuf;
use std::process::ExitCode;

use benches::worker::WorkerCmd;
use benches::{Budget, EngineId, Mode, Runner, RunnerOptions, Workload};

const USAGE: &str = "\
usage: compare [--quick | --full] [--engines a,b] [--workloads x,y] [--workers N]
               [--out DIR] [--redis URL] [--no-perl] [--list]

  --quick        tiny budget for CI (a few seconds)
  --full         the long version (1e6 sessions, longer samples), for BENCHMARKS.md
  --engines      store-fastmmap,store-fastmmap-futex,store-memory,mutex-hashmap,lmdb,
                 redis,redis-cluster (default: all built; redis-cluster starts a local
                 cluster of six redis-server processes)
  --workloads    names from --list (default: all)
  --workers N    largest worker-process count of the mp_* workloads (default 2)
  --out DIR      where results go (default target/compare)
  --redis URL    Redis server (default $BENCH_REDIS_URL, else a private redis-server
                 started on a free loopback port when one is installed)
  --no-perl      leave out the Perl original
  --list         list engines and workloads and exit";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__worker") {
        let code = benches::worker::main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut mode = Mode::Default;
    let mut engines: Option<Vec<EngineId>> = None;
    let mut workload_names: Option<Vec<String>> = None;
    let mut workers = 2;
    let mut out = PathBuf::from("target/compare");
    let mut redis = std::env::var("BENCH_REDIS_URL").ok();
    let mut perl = true;
    let mut list = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => mode = Mode::Quick,
            "--full" => mode = Mode::Full,
            "--engines" => {
                engines = Some(
                    value()?
                        .split(',')
                        .map(|n| EngineId::from_name(n).ok_or(format!("unknown engine {n:?}")))
                        .collect::<Result<_, _>>()?,
                );
            }
            "--workloads" => {
                workload_names = Some(value()?.split(',').map(|s| s.trim().to_string()).collect());
            }
            "--workers" => {
                workers = value()?
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--workers needs a positive number")?;
            }
            "--out" => out = PathBuf::from(value()?),
            "--redis" => redis = Some(value()?),
            "--no-perl" => perl = false,
            "--list" => list = true,
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    // Without a server named, start a private one on loopback (and stop it at the end).
    #[cfg(feature = "peers")]
    let local = match &redis {
        None => benches::LocalRedis::start(),
        Some(_) => None,
    };
    #[cfg(feature = "peers")]
    if let Some(l) = &local {
        redis = Some(l.url());
    }
    let redis = redis.unwrap_or_else(|| "redis://127.0.0.1:6379/".to_string());
    let budget = Budget::for_mode(mode);
    let standard = Workload::standard(budget.max_sessions, budget.purge_entries, workers);
    if list {
        println!("engines:");
        for e in EngineId::ALL {
            let status = e
                .available(&redis)
                .err()
                .unwrap_or_else(|| "available".into());
            println!("  {:21} {status}", e.name());
        }
        println!("workloads ({mode:?} mode):");
        for w in &standard {
            println!("  {:18} {}", w.name(), w.describe());
        }
        return Ok(());
    }
    let workloads = match workload_names {
        None => standard,
        Some(names) => names
            .iter()
            .map(|n| Workload::from_name(n).ok_or(format!("unknown workload {n:?} (see --list)")))
            .collect::<Result<_, _>>()?,
    };
    let worker = WorkerCmd {
        program: std::env::current_exe().map_err(|e| format!("finding my own binary: {e}"))?,
        prefix: vec!["__worker".into()],
    };
    let runner = Runner::new(RunnerOptions {
        budget,
        engines: engines.unwrap_or_else(|| EngineId::ALL.to_vec()),
        workloads,
        redis_url: redis,
        worker,
        perl,
        command: format!(
            "cargo run --release -p benches{} --bin compare{}{}",
            if cfg!(feature = "peers") {
                " --features peers"
            } else {
                ""
            },
            if args.len() > 1 { " -- " } else { "" },
            args[1..].join(" ")
        ),
    });
    let report = runner.run();
    println!("{}", report.table());
    println!("{}", report.goals_text());
    let written = report.write_all(&out)?;
    println!("machine: {}", report.machine);
    for l in &report.load {
        println!("load {l}");
    }
    println!("took {:.1} s; wrote:", report.seconds);
    for p in written {
        println!("  {}", p.display());
    }
    Ok(())
}
