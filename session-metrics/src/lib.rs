//! Publishes a session store's [`Stats`] through the [`metrics`] facade, on a timer (a
//! snapshot every few seconds, not a counter bump on every 50 ns read), for whatever
//! exporter the application installed (Prometheus, StatsD, ...).
//!
//! Names follow the Prometheus conventions, every series labelled `engine`:
//!
//! | metric | kind | labels | from |
//! |---|---|---|---|
//! | `session_store_operations_total` | counter | `op="read"`, `result="hit"` / `"miss"`; `op="write"`, `result="ok"` | `reads`, `hits`, `writes` |
//! | `session_store_evictions_total` | counter | `kind="live"` / `"expired"` | `evicted_live`, `evicted_expired` |
//! | `session_store_purged_total` | counter | | `purged` |
//! | `session_store_repairs_total` | counter | | `recovered` |
//! | `session_store_lost_in_repair_total` | counter | | `lost_in_repair` |
//! | `session_store_entries` | gauge | | `entries` (host-wide) |
//! | `session_store_bytes` | gauge | | `bytes_used` (host-wide) |
//! | `session_store_capacity_bytes` | gauge | | `capacity` (host-wide) |
//!
//! The counters are each process's own (`Stats` counts one handle's calls), so every
//! worker publishes them and the metrics backend adds them up. The gauges describe the
//! whole store (a shared file, a server): published by every worker they would be
//! counted once per worker, so with [`HostGauges::Elected`] only the one process per
//! host that holds an `flock` on a file of your choosing publishes them (when it exits,
//! another takes over at its next tick).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session_metrics::{Exporter, HostGauges};
//!
//! let store = Arc::new(store_memory::MemoryStore::new());
//! let exporter = Exporter::builder("store-memory")
//!     .interval(Duration::from_secs(5))
//!     .host_gauges(HostGauges::EveryProcess)
//!     .spawn(store)
//!     .unwrap();
//! drop(exporter); // stops the timer thread
//! ```

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use store_api::{SessionStore, Stats};

/// Which processes publish the store-wide gauges (`entries`, `bytes`, `capacity`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostGauges {
    /// Every process (one process per host, or an in-process engine).
    EveryProcess,
    /// The one process of the host that holds an exclusive `flock` on this file (created
    /// if missing, owner-only), for engines shared by the workers of a host.
    Elected(PathBuf),
    /// None (another process or tool, such as `sessionctl stats --prometheus`, does).
    Never,
}

/// Options of an [`Exporter`].
#[derive(Debug, Clone)]
pub struct ExporterBuilder {
    engine: String,
    interval: Duration,
    host_gauges: HostGauges,
}

impl ExporterBuilder {
    /// Time between snapshots (default 10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Which processes publish the gauges (default [`HostGauges::EveryProcess`]).
    pub fn host_gauges(mut self, h: HostGauges) -> Self {
        self.host_gauges = h;
        self
    }

    /// Starts a thread that publishes `store`'s stats now and every interval until the
    /// exporter is dropped. A failing `stats` call is skipped (the last values stay) and
    /// counted in `session_store_stats_errors_total`.
    ///
    /// # Errors
    /// A zero interval, or a thread that cannot be spawned.
    pub fn spawn(self, store: Arc<dyn SessionStore>) -> std::io::Result<Exporter> {
        if self.interval.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the interval of a metrics exporter must be more than zero",
            ));
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("session-metrics".into())
            .spawn(move || {
                let mut election = Election::new(self.host_gauges);
                loop {
                    let gauges = election.publishes();
                    match store.stats() {
                        Ok(s) => publish(&s, &self.engine, gauges),
                        Err(_) => metrics::counter!(
                            "session_store_stats_errors_total",
                            "engine" => self.engine.clone()
                        )
                        .increment(1),
                    }
                    match stopped.recv_timeout(self.interval) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => return,
                    }
                }
            })?;
        Ok(Exporter {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A running publisher of a store's stats; dropping it stops the thread.
#[derive(Debug)]
pub struct Exporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Options: `engine` labels every series (`"store-fastmmap"`, say).
    pub fn builder(engine: impl Into<String>) -> ExporterBuilder {
        ExporterBuilder {
            engine: engine.into(),
            interval: Duration::from_secs(10),
            host_gauges: HostGauges::EveryProcess,
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether this process publishes the gauges, and the lock that makes it so.
struct Election {
    rule: HostGauges,
    held: Option<File>,
}

impl Election {
    fn new(rule: HostGauges) -> Self {
        Election { rule, held: None }
    }

    /// Whether this process publishes the gauges now (trying to win the election).
    fn publishes(&mut self) -> bool {
        match &self.rule {
            HostGauges::EveryProcess => true,
            HostGauges::Never => false,
            HostGauges::Elected(path) => {
                if self.held.is_none() {
                    self.held = try_lock(path);
                }
                self.held.is_some()
            }
        }
    }
}

/// The file at `path`, exclusively `flock`ed, if no other process holds it.
fn try_lock(path: &std::path::Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(f)
}

/// Publishes one snapshot: the counters always, the gauges if `gauges`.
pub fn publish(s: &Stats, engine: &str, gauges: bool) {
    let e = engine.to_owned();
    let ops = |op: &'static str, result: &'static str, v: u64| {
        metrics::counter!(
            "session_store_operations_total",
            "engine" => e.clone(), "op" => op, "result" => result
        )
        .absolute(v);
    };
    ops("read", "hit", s.hits);
    ops("read", "miss", s.reads.saturating_sub(s.hits));
    ops("write", "ok", s.writes);
    for (kind, v) in [("live", s.evicted_live), ("expired", s.evicted_expired)] {
        metrics::counter!("session_store_evictions_total", "engine" => e.clone(), "kind" => kind)
            .absolute(v);
    }
    metrics::counter!("session_store_purged_total", "engine" => e.clone()).absolute(s.purged);
    metrics::counter!("session_store_repairs_total", "engine" => e.clone()).absolute(s.recovered);
    metrics::counter!("session_store_lost_in_repair_total", "engine" => e.clone())
        .absolute(s.lost_in_repair);
    if gauges {
        metrics::gauge!("session_store_entries", "engine" => e.clone()).set(s.entries as f64);
        metrics::gauge!("session_store_bytes", "engine" => e.clone()).set(s.bytes_used as f64);
        if let Some(c) = s.capacity {
            metrics::gauge!("session_store_capacity_bytes", "engine" => e.clone()).set(c as f64);
        }
    }
}
