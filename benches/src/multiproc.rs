//! Workloads with more than one process: throughput of N workers, and reads while
//! another process writes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use store_api::{Error, Result};

use crate::worker::{WorkerArgs, WorkerCmd, WorkerOp};
use crate::{
    Budget, EngineId, Interleaved, KeySet, Location, OpenedEngine, Summary, Workload,
    measure_interleaved_switching, measure_op,
};

/// A started worker that said `ready`.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// What a worker reported.
struct Report {
    ops: u64,
    ns: u64,
    unexpected: u64,
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(format!("bench worker: {context}"), e)
}

impl Worker {
    fn start(cmd: &WorkerCmd, args: &WorkerArgs) -> Result<Self> {
        let mut child = Command::new(&cmd.program)
            .args(&cmd.prefix)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(io("spawning (is the worker binary built?)"))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(io("waiting for ready"))?;
        if line.trim() != "ready" {
            let _ = child.wait();
            return Err(Error::backend(
                "bench worker",
                format!("did not start (said {line:?}); see its stderr above"),
            ));
        }
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }

    fn go(&mut self) -> Result<()> {
        self.send("go")
    }

    fn send(&mut self, word: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin open until finish");
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(io("sending a command"))
    }

    /// Waits until an open-ended worker (`millis` 0) says `word`: `writing` once it has
    /// written its first puts (after `go`), `paused` once it has stopped writing (after
    /// `pause`).
    fn wait_for(&mut self, word: &str) -> Result<()> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(io("waiting for the writer"))?;
        if line.trim() == word {
            Ok(())
        } else {
            Err(Error::backend(
                "bench worker",
                format!("said {line:?}, not {word:?}; see its stderr above"),
            ))
        }
    }

    /// Closes stdin (stops an open-ended worker) and reads its report.
    fn finish(mut self) -> Result<Report> {
        drop(self.stdin.take());
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(io("reading the report"))?;
        let status = self.child.wait().map_err(io("waiting for exit"))?;
        let field = |name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        };
        match (
            status.success(),
            field("ops"),
            field("ns"),
            field("unexpected"),
        ) {
            (true, Some(ops), Some(ns), Some(unexpected)) => Ok(Report {
                ops,
                ns,
                unexpected,
            }),
            _ => Err(Error::backend(
                "bench worker",
                format!("failed ({status}), reported {line:?}"),
            )),
        }
    }
}

/// Throughput of `workers` worker processes running the 90/10 mix on one store for
/// `budget.mp_time` each sample; the cost per operation is 1e9 / (total ops per second).
///
/// The store must already hold the workload's keys ([`Workload::setup`]).
///
/// # Errors
/// When a worker fails to start or reports an error.
pub fn throughput(
    engine: EngineId,
    opened: &OpenedEngine,
    workload: &Workload,
    tag: &str,
    budget: &Budget,
    cmd: &WorkerCmd,
) -> Result<Summary> {
    let Workload::Throughput { workers } = *workload else {
        return Err(Error::InvalidConfig {
            option: "workload",
            reason: format!("{workload} is not a throughput workload"),
        });
    };
    let mut samples = Vec::new();
    let mut unexpected = 0;
    let mut total_ops = 0;
    for sample in 0..budget.slow_samples {
        let started = (0..workers)
            .map(|w| {
                Worker::start(
                    cmd,
                    &WorkerArgs {
                        engine,
                        location: opened.location.clone(),
                        workload: *workload,
                        tag: tag.to_string(),
                        sizing: workload.sizing(),
                        seed: (sample * workers + w + 1) as u64,
                        millis: budget.mp_time.as_millis() as u64,
                        op: WorkerOp::Workload,
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut running = started;
        for w in &mut running {
            w.go()?;
        }
        let mut per_sec = 0.0;
        for w in running {
            let r = w.finish()?;
            per_sec += r.ops as f64 * 1e9 / r.ns.max(1) as f64;
            unexpected += r.unexpected;
            total_ops += r.ops;
        }
        samples.push(1e9 / per_sec);
    }
    let per_sample = total_ops / budget.slow_samples.max(1) as u64;
    Ok(Summary::from_samples(&samples, per_sample, unexpected))
}

/// A writer rewriting a workload's keys with 100-byte values as fast as it can, until
/// stopped: a worker process for engines shared across processes, a thread for
/// in-process ones.
pub struct BackgroundWriter {
    inner: WriterInner,
}

enum WriterInner {
    Thread {
        state: Arc<ThreadState>,
        handle: std::thread::JoinHandle<Result<(u64, std::time::Duration)>>,
    },
    Process(Worker),
}

/// What a writer thread and its owner share.
#[derive(Default)]
struct ThreadState {
    /// Set by the owner: end the thread.
    stop: AtomicBool,
    /// Set by the owner: stop writing until cleared.
    pause: AtomicBool,
    /// Set by the thread while it is not writing because of `pause`.
    paused: AtomicBool,
    /// Puts written so far.
    written: AtomicU64,
}

impl std::fmt::Debug for BackgroundWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            WriterInner::Thread { .. } => "BackgroundWriter(thread)",
            WriterInner::Process(_) => "BackgroundWriter(process)",
        })
    }
}

/// A store that readers time while writers rewrite its keys: the engine, the opened store,
/// the keys of [`Workload::ReadUnderWriter`] under `tag` (every process derives the same
/// keys from it) and how to start a worker process.
#[derive(Clone, Copy)]
pub struct WriterTarget<'a> {
    /// The engine.
    pub engine: EngineId,
    /// The store, set up with the keys.
    pub opened: &'a OpenedEngine,
    /// The keys readers and writers visit.
    pub keys: &'a KeySet,
    /// The tag the keys were made under.
    pub tag: &'a str,
    /// How to start a worker process.
    pub cmd: &'a WorkerCmd,
}

impl BackgroundWriter {
    /// Starts rewriting the keys of `target`; returns once the writer has written its
    /// first puts.
    ///
    /// # Errors
    /// When the worker process fails to start.
    pub fn start(target: &WriterTarget<'_>) -> Result<Self> {
        let WriterTarget {
            engine,
            opened,
            keys,
            tag,
            cmd,
        } = *target;
        if opened.location == Location::InProcess {
            let state = Arc::new(ThreadState::default());
            let (shared, store, keys) =
                (Arc::clone(&state), Arc::clone(&opened.store), keys.clone());
            let handle = std::thread::spawn(move || {
                let put = Workload::Put { value_len: 100 };
                let value = put.value();
                let mut buf = Vec::new();
                let (mut i, start) = (1u64 << 40, std::time::Instant::now());
                let mut paused = std::time::Duration::ZERO;
                while !shared.stop.load(Ordering::Relaxed) {
                    if shared.pause.load(Ordering::Acquire) {
                        let t = std::time::Instant::now();
                        shared.paused.store(true, Ordering::Release);
                        // Asleep, not spinning: the quiet samples are timed meanwhile
                        // on this machine's other core.
                        while shared.pause.load(Ordering::Acquire)
                            && !shared.stop.load(Ordering::Relaxed)
                        {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        shared.paused.store(false, Ordering::Release);
                        paused += t.elapsed();
                        continue;
                    }
                    put.op(&*store, &keys, &value, i, &mut buf)?;
                    i += 1;
                    shared.written.fetch_add(1, Ordering::Release);
                }
                Ok((i - (1 << 40), start.elapsed().saturating_sub(paused)))
            });
            let mut writer = BackgroundWriter {
                inner: WriterInner::Thread { state, handle },
            };
            writer.wait_written();
            return Ok(writer);
        }
        let mut worker = Worker::start(
            cmd,
            &WorkerArgs {
                engine,
                location: opened.location.clone(),
                workload: READS,
                tag: tag.to_string(),
                sizing: READS.sizing(),
                seed: 99,
                millis: 0,
                op: WorkerOp::Write,
            },
        )?;
        worker.go()?;
        worker.wait_for("writing")?;
        Ok(BackgroundWriter {
            inner: WriterInner::Process(worker),
        })
    }

    /// Returns once a thread writer has written a put from now on (or has ended: `stop`
    /// then reports why).
    fn wait_written(&mut self) {
        if let WriterInner::Thread { state, handle } = &self.inner {
            let before = state.written.load(Ordering::Acquire);
            while state.written.load(Ordering::Acquire) == before && !handle.is_finished() {
                std::thread::yield_now();
            }
        }
    }

    /// Stops writing until [`resume`](Self::resume); returns once the writer has stopped.
    ///
    /// # Errors
    /// The worker process's.
    pub fn pause(&mut self) -> Result<()> {
        match &mut self.inner {
            WriterInner::Thread { state, handle } => {
                state.pause.store(true, Ordering::Release);
                while !state.paused.load(Ordering::Acquire) && !handle.is_finished() {
                    std::thread::yield_now();
                }
                Ok(())
            }
            WriterInner::Process(worker) => {
                worker.send("pause")?;
                worker.wait_for("paused")
            }
        }
    }

    /// Writes again after [`pause`](Self::pause); returns once the writer has written.
    ///
    /// # Errors
    /// The worker process's.
    pub fn resume(&mut self) -> Result<()> {
        match &mut self.inner {
            WriterInner::Thread { state, .. } => {
                state.pause.store(false, Ordering::Release);
                self.wait_written();
                Ok(())
            }
            WriterInner::Process(worker) => {
                worker.go()?;
                worker.wait_for("writing")
            }
        }
    }

    /// Stops the writer; returns its puts per second over the time it was writing.
    ///
    /// # Errors
    /// The writer's error.
    pub fn stop(self) -> Result<f64> {
        match self.inner {
            WriterInner::Thread { state, handle } => {
                state.stop.store(true, Ordering::Relaxed);
                let (ops, took) = handle.join().expect("writer thread panicked")?;
                Ok(ops as f64 / took.as_secs_f64())
            }
            WriterInner::Process(worker) => {
                let r = worker.finish()?;
                Ok(r.ops as f64 * 1e9 / r.ns.max(1) as f64)
            }
        }
    }
}

/// `get` hits on the workload's keys while a [`BackgroundWriter`] rewrites the same keys.
/// Returns the read summary and the writer's puts per second (proof that it ran).
///
/// # Errors
/// The store's errors, or the writer's.
pub fn read_under_writer(target: &WriterTarget<'_>, budget: &Budget) -> Result<(Summary, f64)> {
    let writer = BackgroundWriter::start(target)?;
    let summary = measure_op(budget, reader(target.opened, target.keys));
    let rate = writer.stop()?;
    Ok((summary?, rate))
}

/// The workload of the reads beside a writer.
const READS: Workload = Workload::ReadUnderWriter;

/// `get` hits on `keys` in `opened`, one per call, into a buffer of its own.
fn reader<'a>(opened: &'a OpenedEngine, keys: &'a KeySet) -> impl FnMut(u64) -> Result<bool> + 'a {
    let (value, mut buf) = (READS.value(), Vec::new());
    move |i| READS.op(&*opened.store, keys, &value, i, &mut buf)
}

/// `get` hits on the workload's keys without a writer (half a) and while a
/// [`BackgroundWriter`] rewrites the same keys (half b), in alternating samples: one writer
/// is resumed (and has written) before each sample of b and paused (and has stopped) before
/// each sample of a, so both halves see the same phase of a noisy host and the writer runs
/// as it would throughout. Returns the two halves, the per-round ratio of reads under the
/// writer to reads alone, and the writer's puts per second while it wrote.
///
/// # Errors
/// The store's errors, or a writer's.
pub fn read_with_and_without_writer(
    target: &WriterTarget<'_>,
    budget: &Budget,
) -> Result<(Interleaved, f64)> {
    let mut writer: Option<BackgroundWriter> = None;
    let measured = measure_interleaved_switching(
        budget,
        reader(target.opened, target.keys),
        reader(target.opened, target.keys),
        |to_writer| match (to_writer, &mut writer) {
            (true, None) => {
                writer = Some(BackgroundWriter::start(target)?);
                Ok(())
            }
            (true, Some(w)) => w.resume(),
            (false, Some(w)) => w.pause(),
            (false, None) => Ok(()),
        },
    );
    // Stopped whatever happened; the measurement's error first.
    let rate = writer.map(BackgroundWriter::stop);
    let measured = measured?;
    let rate = rate.transpose()?.unwrap_or_default();
    Ok((measured, rate))
}
