//! The worker process of the multi-process workloads (binary `bench-worker`, also reached
//! as `compare __worker`).
//!
//! Protocol, one line each on stdin/stdout: the worker opens the store another process
//! created, builds the workload's keys, prints `ready`, waits for `go`, runs the
//! operations (for `--millis` milliseconds, or until its stdin closes when `--millis 0`),
//! then prints `ops=N ns=T unexpected=U` and exits.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{EngineId, Location, Sizing, Workload};

/// What a worker runs: `workload`'s own operation, or rewrites of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOp {
    /// The workload's operation ([`Workload::op`]).
    Workload,
    /// `put` of 100-byte values to the workload's keys (the concurrent writer).
    Write,
}

/// Everything a worker needs, as command-line arguments.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// Engine to open.
    pub engine: EngineId,
    /// Where the store lives.
    pub location: Location,
    /// The workload whose keys and operation to use.
    pub workload: Workload,
    /// Key tag, the same as the parent's.
    pub tag: String,
    /// Store sizing, the same as the parent's (engines check their geometry).
    pub sizing: Sizing,
    /// Distinguishes the workers' access orders.
    pub seed: u64,
    /// How long to run; zero: until stdin closes.
    pub millis: u64,
    /// What to run.
    pub op: WorkerOp,
}

impl WorkerArgs {
    /// The arguments, for [`std::process::Command::args`].
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--engine".into(),
            self.engine.name().into(),
            "--location".into(),
            self.location.to_arg(),
            "--workload".into(),
            self.workload.name(),
            "--tag".into(),
            self.tag.clone(),
            "--entries".into(),
            self.sizing.entries.to_string(),
            "--value-len".into(),
            self.sizing.value_len.to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--millis".into(),
            self.millis.to_string(),
            "--op".into(),
            match self.op {
                WorkerOp::Workload => "workload".into(),
                WorkerOp::Write => "write".into(),
            },
        ]
    }

    /// Parses [`to_args`](Self::to_args)' output.
    ///
    /// # Errors
    /// A message naming the bad or missing argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let get = |name: &str| -> Result<&str, String> {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .map(String::as_str)
                .ok_or_else(|| format!("missing {name}"))
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?.parse().map_err(|e| format!("{name}: {e}"))
        };
        Ok(WorkerArgs {
            engine: EngineId::from_name(get("--engine")?).ok_or("unknown --engine")?,
            location: Location::from_arg(get("--location")?).ok_or("bad --location")?,
            workload: Workload::from_name(get("--workload")?).ok_or("unknown --workload")?,
            tag: get("--tag")?.to_string(),
            sizing: Sizing {
                entries: num("--entries")? as usize,
                value_len: num("--value-len")? as usize,
            },
            seed: num("--seed")?,
            millis: num("--millis")?,
            op: match get("--op")? {
                "workload" => WorkerOp::Workload,
                "write" => WorkerOp::Write,
                other => return Err(format!("unknown --op {other}")),
            },
        })
    }
}

/// The worker's entry point: parses `args` (without the program name), runs, and
/// returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    match WorkerArgs::parse(args).and_then(|a| run(&a).map_err(|e| e.to_string())) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench-worker: {e}");
            2
        }
    }
}

fn run(a: &WorkerArgs) -> store_api::Result<()> {
    let store = a.engine.attach(&a.location, a.sizing)?;
    let keys = a.workload.keys(&a.tag);
    let (workload, value) = match a.op {
        WorkerOp::Workload => (a.workload, a.workload.value()),
        WorkerOp::Write => {
            let put = Workload::Put { value_len: 100 };
            (put, put.value())
        }
    };
    let io = |e| store_api::Error::io("worker stdio", e);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(io)?;
    out.flush().map_err(io)?;
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).map_err(io)?;
    drop(stdin);
    if line.trim() != "go" {
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    if a.millis == 0 {
        let (stop, pause) = (Arc::clone(&stop), Arc::clone(&pause));
        // The parent sends `pause` and `go` lines, and closes our stdin to stop us.
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                match line.trim() {
                    "pause" => pause.store(true, Ordering::Relaxed),
                    "go" => pause.store(false, Ordering::Relaxed),
                    _ => {}
                }
                line.clear();
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let deadline = Duration::from_millis(a.millis);
    let mut buf = Vec::new();
    let mut i = a.seed << 40;
    let (mut ops, mut unexpected) = (0u64, 0u64);
    let (start, mut paused) = (Instant::now(), Duration::ZERO);
    let mut say = |word: &str| -> store_api::Result<()> {
        writeln!(out, "{word}").map_err(io)?;
        out.flush().map_err(io)
    };
    // An open-ended writer says when it is writing (after its first puts, and again after
    // each pause) and when it has paused, so that the parent times reads beside it only
    // while it writes (see `BackgroundWriter`).
    let mut announce = a.millis == 0;
    loop {
        for _ in 0..64 {
            if !workload.op(&*store, &keys, &value, i, &mut buf)? {
                unexpected += 1;
            }
            i += 1;
        }
        ops += 64;
        if announce {
            say("writing")?;
            announce = false;
        }
        if a.millis == 0 && pause.load(Ordering::Relaxed) {
            let t = Instant::now();
            say("paused")?;
            // Asleep, not polling hard: the quiet samples are timed meanwhile, and the
            // parent waits for `writing` after a resume anyway.
            while pause.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            paused += t.elapsed();
            announce = true;
        }
        let done = if a.millis == 0 {
            stop.load(Ordering::Relaxed)
        } else {
            start.elapsed() >= deadline
        };
        if done {
            break;
        }
    }
    // The time spent writing: pauses left out.
    let ns = start.elapsed().saturating_sub(paused).as_nanos();
    say(&format!("ops={ops} ns={ns} unexpected={unexpected}"))
}

/// How to start a worker: a program and the arguments that come before the worker's own.
#[derive(Debug, Clone)]
pub struct WorkerCmd {
    /// The program (`bench-worker`, or `compare` itself).
    pub program: PathBuf,
    /// Arguments before the worker's (`__worker` for `compare`).
    pub prefix: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = WorkerArgs {
            engine: EngineId::Lmdb,
            location: Location::Path("/tmp/x".into()),
            workload: Workload::Throughput { workers: 2 },
            tag: "t1".into(),
            sizing: Sizing {
                entries: 1000,
                value_len: 100,
            },
            seed: 3,
            millis: 0,
            op: WorkerOp::Write,
        };
        let b = WorkerArgs::parse(&a.to_args()).unwrap();
        assert_eq!(b.to_args(), a.to_args());
    }
}
