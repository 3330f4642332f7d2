//! The comparison run: every selected engine on every selected workload, with a
//! progress line, into a [`Report`].

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::measure::{Interleaved, measure_interleaved};
use crate::multiproc::WriterTarget;
use crate::report::{Baseline, Cell, Pairing, Report, Row, SideBySide, Skip};
use crate::worker::WorkerCmd;
use crate::{
    Budget, EngineId, FcntlPair, KeySet, OpenedEngine, PerlDriver, Summary, Workload, WorkloadKind,
    measure_op,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Time budget.
    pub budget: Budget,
    /// Engines, in column order.
    pub engines: Vec<EngineId>,
    /// Workloads, in row order.
    pub workloads: Vec<Workload>,
    /// Where the Redis server is.
    pub redis_url: String,
    /// How to start a worker process.
    pub worker: WorkerCmd,
    /// Also run the Perl original (when installed).
    pub perl: bool,
    /// The command line, for the report.
    pub command: String,
}

/// Runs a comparison.
#[derive(Debug)]
pub struct Runner {
    opts: RunnerOptions,
    progress_tty: bool,
    started: Instant,
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "nproc {cpus}, {model}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The load average and how many compilers are running: a reader must know whether the
/// machine was busy.
fn load() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    let rustc = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "rustc")
                })
                .count()
        })
        .unwrap_or(0);
    format!("loadavg {avg}, {rustc} rustc processes running")
}

impl Runner {
    /// A runner for `opts`.
    pub fn new(opts: RunnerOptions) -> Self {
        Runner {
            opts,
            progress_tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    fn progress(&self, done: usize, total: usize, what: &str) {
        let secs = self.started.elapsed().as_secs();
        let mut err = std::io::stderr().lock();
        if self.progress_tty {
            let _ = write!(err, "\r\x1b[K[{done:>3}/{total}] {secs:>4}s  {what}");
        } else {
            let _ = writeln!(err, "[{done:>3}/{total}] {secs:>4}s  {what}");
        }
        let _ = err.flush();
    }

    /// Runs everything and returns the report.
    pub fn run(&self) -> Report {
        let o = &self.opts;
        let mut report = Report {
            machine: machine(),
            mode: format!("{:?}", o.budget.mode).to_lowercase(),
            command: o.command.clone(),
            load: vec![format!("at start: {}", load())],
            workloads: o
                .workloads
                .iter()
                .map(|w| (w.name(), w.describe()))
                .collect(),
            ..Report::default()
        };
        let mut engines = Vec::new();
        for &e in &o.engines {
            match e.available(&o.redis_url) {
                Ok(()) => engines.push(e),
                Err(why) => report.skipped_engines.push((e.name().to_string(), why)),
            }
        }
        report.engines = engines.iter().map(|e| e.name().to_string()).collect();
        let perl = if o.perl {
            match PerlDriver::find() {
                Ok(p) => Some(p),
                Err(why) => {
                    report
                        .skipped_engines
                        .push(("perl Cache::FastMmap".into(), why));
                    None
                }
            }
        } else {
            None
        };
        // The pairings (the ratio goals', and reads with and without a writer), each with
        // its two halves measured side by side when the run has both.
        let pairings: Vec<Pairing> = Pairing::ALL
            .into_iter()
            .filter(|p| {
                engines.contains(&p.engine())
                    && o.workloads.contains(&p.workload())
                    && match p.baseline() {
                        Baseline::Engine(e) => engines.contains(&e),
                        Baseline::FcntlPair | Baseline::NoWriter => true,
                    }
            })
            .collect();
        let total =
            engines.len() * o.workloads.len() + 1 + usize::from(perl.is_some()) + pairings.len();
        let mut done = 0;
        let tag = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        self.progress(done, total, "fcntl lock+unlock pair");
        report.fcntl_pair = FcntlPair::new()
            .ok()
            .and_then(|p| measure_op(&o.budget, |i| p.op(i)).ok());
        done += 1;
        for w in &o.workloads {
            self.progress(done, total, &format!("building keys for {w}"));
            let keys = w.keys(&tag);
            for &e in &engines {
                self.progress(done, total, &format!("{w} on {e}"));
                let cell = self.cell(e, w, &keys, &tag);
                report.rows.push(Row {
                    engine: e.name().to_string(),
                    workload: w.name(),
                    cell,
                });
                done += 1;
            }
        }
        for pairing in pairings {
            self.progress(done, total, &format!("{pairing:?}, alternating samples"));
            let (result, note) = match self.side_by_side(pairing, &tag) {
                Ok((m, note)) => (Ok(m), note),
                Err(e) => (Err(e.to_string()), None),
            };
            report.side_by_side.push(SideBySide {
                pairing,
                result,
                note,
            });
            done += 1;
        }
        if let Some(p) = perl {
            self.progress(done, total, "the Perl original");
            let name = format!("perl Cache::FastMmap {}", p.version);
            let perl_workloads: Vec<Workload> = o
                .workloads
                .iter()
                .copied()
                .filter(|w| {
                    w.kind() != WorkloadKind::MultiProcess && *w != Workload::ReadUnderWriter
                })
                .collect();
            match p.run(&perl_workloads, &o.budget) {
                Ok(results) => {
                    for r in results {
                        report.perl.push(Row {
                            engine: name.clone(),
                            workload: r.workload.name(),
                            cell: match r.outcome {
                                Ok(summary) => Cell::Measured {
                                    summary,
                                    note: None,
                                },
                                Err(why) => Cell::Skipped(Skip::Other(why)),
                            },
                        });
                    }
                }
                Err(why) => report.skipped_engines.push((name, why)),
            }
        }
        if self.progress_tty {
            eprintln!();
        }
        report.load.push(format!("at end: {}", load()));
        report.seconds = self.started.elapsed().as_secs_f64();
        report
    }

    /// A ratio goal's two halves in alternating samples: measured minutes apart on a VM,
    /// the two halves of a ratio can see different phases of the host.
    /// Returns the measurement and a note on it.
    fn side_by_side(
        &self,
        pairing: Pairing,
        tag: &str,
    ) -> store_api::Result<(Interleaved, Option<String>)> {
        let w = pairing.workload();
        let keys = w.keys(tag);
        let value = w.value();
        let engine = pairing.engine();
        let opened = self.open(engine, &w, &keys)?;
        let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
        let mut b = |i| w.op(&*opened.store, &keys, &value, i, &mut buf_b);
        let budget = &self.opts.budget;
        match pairing.baseline() {
            Baseline::NoWriter => crate::read_with_and_without_writer(
                &WriterTarget {
                    engine,
                    opened: &opened,
                    keys: &keys,
                    tag,
                    cmd: &self.opts.worker,
                },
                budget,
            )
            .map(|(measured, rate)| {
                let note = format!("the writer process ran {rate:.0} puts/s while writing");
                (measured, Some(note))
            }),
            Baseline::Engine(peer) => {
                let peer = self.open(peer, &w, &keys)?;
                measure_interleaved(
                    budget,
                    |i| w.op(&*peer.store, &keys, &value, i, &mut buf_a),
                    &mut b,
                )
                .map(|m| (m, None))
            }
            Baseline::FcntlPair => {
                let pair =
                    FcntlPair::new().map_err(|e| store_api::Error::io("fcntl pair file", e))?;
                measure_interleaved(budget, |i| pair.op(i), &mut b).map(|m| (m, None))
            }
        }
    }

    /// `engine` opened with `w`'s sizing and loaded with `w`'s data.
    fn open(
        &self,
        engine: EngineId,
        w: &Workload,
        keys: &KeySet,
    ) -> store_api::Result<OpenedEngine> {
        let opened = engine.create(w.sizing(), &self.opts.redis_url)?;
        w.setup(&*opened.store, keys)?;
        Ok(opened)
    }

    fn cell(&self, engine: EngineId, w: &Workload, keys: &KeySet, tag: &str) -> Cell {
        if w.kind() == WorkloadKind::MultiProcess && !engine.shared_across_processes() {
            return Cell::Skipped(Skip::InProcess);
        }
        match self.measure(engine, w, keys, tag) {
            Ok(cell) => cell,
            Err(e) => Cell::Skipped(Skip::Other(format!("failed: {e}"))),
        }
    }

    fn measure(
        &self,
        engine: EngineId,
        w: &Workload,
        keys: &KeySet,
        tag: &str,
    ) -> store_api::Result<Cell> {
        let o = &self.opts;
        let opened = self.open(engine, w, keys)?;
        let store = &*opened.store;
        let value = w.value();
        let mut buf = Vec::new();
        let measured = |summary: Summary, note: Option<String>| Cell::Measured { summary, note };
        Ok(match w.kind() {
            WorkloadKind::Op => measured(
                measure_op(&o.budget, |i| w.op(store, keys, &value, i, &mut buf))?,
                None,
            ),
            WorkloadKind::Purge => {
                let mut samples = Vec::new();
                let mut removed = Vec::new();
                for _ in 0..o.budget.slow_samples {
                    w.before_sample(store, keys)?;
                    let t = Instant::now();
                    let n = store.purge_expired()?;
                    samples.push(t.elapsed().as_nanos() as f64);
                    removed.push(n);
                }
                let want = keys.expired.len() as u64;
                if want > 0 && removed.iter().all(|&n| n == 0) {
                    return Ok(Cell::Skipped(Skip::Other(format!(
                        "purge_expired is a no-op returning 0 here (the backend expires entries itself); a call took {:.0} ns",
                        Summary::from_samples(&samples, 1, 0).median_ns
                    ))));
                }
                let unexpected = removed.iter().filter(|&&n| n != want && n != 0).count() as u64;
                let note = removed
                    .iter()
                    .any(|&n| n != want)
                    .then(|| format!("removed {removed:?} per call, expected {want}"));
                measured(Summary::from_samples(&samples, 1, unexpected), note)
            }
            WorkloadKind::MultiProcess => measured(
                crate::throughput(engine, &opened, w, tag, &o.budget, &o.worker)?,
                None,
            ),
            WorkloadKind::UnderWriter => {
                let target = WriterTarget {
                    engine,
                    opened: &opened,
                    keys,
                    tag,
                    cmd: &o.worker,
                };
                let (summary, writes) = crate::read_under_writer(&target, &o.budget)?;
                let who = if engine.shared_across_processes() {
                    "another process"
                } else {
                    "a thread (in-process engine)"
                };
                measured(
                    summary,
                    Some(format!("writer ({who}) ran {writes:.0} puts/s")),
                )
            }
        })
    }
}
