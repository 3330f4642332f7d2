//! What a run found: the model the renderers and the goals read.
//!
//! A [`Report`] holds one [`Row`] per engine and workload, each with a [`Cell`]: measured,
//! or [`Skip`]ped and why; plus the ratio goals measured side by side ([`SideBySide`], one
//! per [`Pairing`] against its [`Baseline`]). Each way of showing it has a file of its own:
//!
//! | file | what |
//! |---|---|
//! | `table.rs` | [`Report::table`], the terminal table |
//! | `markdown.rs` | [`Report::markdown`], the tables for `BENCHMARKS.md` |
//! | `export.rs` | [`Report::json`], [`Report::csv`] and [`Report::write_all`] |
//! | `goals.rs` | the acceptance goals evaluated on the run ([`Goal`], [`Report::goals_text`]) |
//! | `chart.rs` | the SVG bar chart `write_all` draws |

mod chart;
mod export;
mod goals;
mod markdown;
mod table;

pub use goals::Goal;

use std::fmt;

use crate::measure::Interleaved;
use crate::{EngineId, Summary, Workload};

/// One measurement, or why there is none.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Measured.
    Measured {
        /// The samples' summary.
        summary: Summary,
        /// Something a reader needs to know (the writer's rate, a purge count, ...).
        note: Option<String>,
    },
    /// Not measured, and why.
    Skipped(Skip),
}

impl Cell {
    /// The summary, if measured.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            Cell::Measured { summary, .. } => Some(summary),
            Cell::Skipped(_) => None,
        }
    }
}

/// Why a cell was not measured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// A multi-process workload on an engine only one process can reach.
    InProcess,
    /// Anything else (the engine failed, the Perl driver gave up, ...), in words.
    Other(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::InProcess => {
                f.write_str("in-process engines cannot be shared by worker processes")
            }
            Skip::Other(why) => f.write_str(why),
        }
    }
}

/// One engine on one workload.
#[derive(Debug, Clone)]
pub struct Row {
    /// Engine name (or `perl Cache::FastMmap x.y`, or `fcntl OFD lock+unlock`).
    pub engine: String,
    /// Workload name.
    pub workload: String,
    /// The result.
    pub cell: Cell,
}

/// Everything a run found, with what is needed to reproduce it.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `nproc` and CPU model.
    pub machine: String,
    /// Quick, default or full.
    pub mode: String,
    /// The command line that made it.
    pub command: String,
    /// Load average and concurrent compiler processes at start and end.
    pub load: Vec<String>,
    /// Engine columns, in order.
    pub engines: Vec<String>,
    /// Workload rows, in order, with a description.
    pub workloads: Vec<(String, String)>,
    /// The engines' results.
    pub rows: Vec<Row>,
    /// The Perl original's results (engine column: its name and version).
    pub perl: Vec<Row>,
    /// The bare fcntl lock+unlock pair.
    pub fcntl_pair: Option<Summary>,
    /// The ratio goals measured with both halves side by side (alternating samples).
    pub side_by_side: Vec<SideBySide>,
    /// Engines left out, and why.
    pub skipped_engines: Vec<(String, String)>,
    /// Wall time of the run in seconds.
    pub seconds: f64,
}

/// Which ratio a [`SideBySide`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// store-fastmmap's `get_hit_100` (b) against the `Mutex<HashMap>`'s (a).
    GetVsMap,
    /// store-fastmmap's `get_new_100` (b) against the `Mutex<HashMap>`'s (a).
    GetNewVsMap,
    /// store-fastmmap's `put_100` (b) against the bare fcntl pair (a).
    PutVsPair,
    /// store-fastmmap's reads while another process rewrites the same keys (b) against
    /// the same reads of the same store with no writer (a).
    ReadsUnderWriter,
    /// store-fastmmap-futex's `put_100` (b) against the `Mutex<HashMap>`'s (a).
    FutexPutVsMap,
    /// store-fastmmap-futex's `get_hit_100` (b) against the `Mutex<HashMap>`'s (a).
    FutexGetVsMap,
}

/// What half a of a [`Pairing`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The same workload on another engine.
    Engine(EngineId),
    /// The bare fcntl lock+unlock pair.
    FcntlPair,
    /// The same reads on the same store, with no writer.
    NoWriter,
}

impl Pairing {
    /// Every pairing, in the order a run measures them.
    pub const ALL: [Pairing; 6] = [
        Pairing::GetVsMap,
        Pairing::GetNewVsMap,
        Pairing::PutVsPair,
        Pairing::ReadsUnderWriter,
        Pairing::FutexPutVsMap,
        Pairing::FutexGetVsMap,
    ];

    /// The engine that runs half b.
    pub fn engine(self) -> EngineId {
        match self {
            Pairing::GetVsMap
            | Pairing::GetNewVsMap
            | Pairing::PutVsPair
            | Pairing::ReadsUnderWriter => EngineId::Fastmmap,
            Pairing::FutexPutVsMap | Pairing::FutexGetVsMap => EngineId::FastmmapFutex,
        }
    }

    /// The workload [`engine`](Self::engine) runs in half b.
    pub fn workload(self) -> Workload {
        match self {
            Pairing::GetVsMap | Pairing::FutexGetVsMap => Workload::GetHit { value_len: 100 },
            Pairing::GetNewVsMap => Workload::GetNew { value_len: 100 },
            Pairing::PutVsPair | Pairing::FutexPutVsMap => Workload::Put { value_len: 100 },
            Pairing::ReadsUnderWriter => Workload::ReadUnderWriter,
        }
    }

    /// What runs in half a.
    pub fn baseline(self) -> Baseline {
        match self {
            Pairing::GetVsMap
            | Pairing::GetNewVsMap
            | Pairing::FutexPutVsMap
            | Pairing::FutexGetVsMap => Baseline::Engine(EngineId::HashMap),
            Pairing::PutVsPair => Baseline::FcntlPair,
            Pairing::ReadsUnderWriter => Baseline::NoWriter,
        }
    }

    /// Names of the two halves (a, b) and the JSON key.
    fn names(self) -> (String, String, &'static str) {
        let w = self.workload().name();
        let f = self.engine().name();
        let a = match self.baseline() {
            Baseline::Engine(p) => format!("{} {w}", p.name()),
            Baseline::FcntlPair => "fcntl pair".to_string(),
            Baseline::NoWriter => format!("{f} reads with no writer"),
        };
        let key = match self {
            Pairing::GetVsMap => "get_vs_map",
            Pairing::GetNewVsMap => "get_new_vs_map",
            Pairing::PutVsPair => "put_vs_pair",
            Pairing::ReadsUnderWriter => "reads_under_writer",
            Pairing::FutexPutVsMap => "futex_put_vs_map",
            Pairing::FutexGetVsMap => "futex_get_vs_map",
        };
        (a, format!("{f} {w}"), key)
    }
}

/// A ratio goal's two halves measured in alternating samples (`Err`: the measurement
/// failed).
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySide {
    /// What is compared.
    pub pairing: Pairing,
    /// The measurement.
    pub result: Result<Interleaved, String>,
    /// What else the measurement showed (the writers' rate, for reads under a writer).
    pub note: Option<String>,
}

impl SideBySide {
    /// The measurement, in words.
    fn line(&self) -> String {
        let (a, b, _) = self.pairing.names();
        match &self.result {
            Ok(s) => {
                format!(
                    "Side by side (alternating samples): {b} {:.0} ns, {a} {:.0} ns, ratio {:.2} \
                 (median of {} rounds, range {:.2} - {:.2})",
                    s.b.median_ns,
                    s.a.median_ns,
                    s.ratio.median_ns,
                    s.ratio.samples,
                    s.ratio.min_ns,
                    s.ratio.max_ns
                ) + &self
                    .note
                    .as_ref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            }
            Err(e) => format!("Side by side {b} / {a}: failed: {e}"),
        }
    }
}

/// A duration in ns, ms or us, for people.
fn ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1} us", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

impl Report {
    /// The engine ratios are taken against: `store-fastmmap` when it was measured,
    /// else `store-memory`.
    pub fn reference(&self) -> &str {
        let measured = |e: &str| {
            self.rows
                .iter()
                .any(|r| r.engine == e && r.cell.summary().is_some())
        };
        if measured("store-fastmmap") {
            "store-fastmmap"
        } else {
            "store-memory"
        }
    }

    /// The median of `engine` on `workload`, if measured.
    pub fn median(&self, engine: &str, workload: &str) -> Option<f64> {
        self.rows
            .iter()
            .chain(&self.perl)
            .find(|r| r.engine == engine && r.workload == workload)
            .and_then(|r| r.cell.summary())
            .map(|s| s.median_ns)
    }

    fn cell(&self, engine: &str, workload: &str) -> Option<&Cell> {
        self.rows
            .iter()
            .find(|r| r.engine == engine && r.workload == workload)
            .map(|r| &r.cell)
    }

    fn ratio(&self, engine: &str, workload: &str) -> Option<f64> {
        Some(self.median(engine, workload)? / self.median(self.reference(), workload)?)
    }

    fn ratio_to_ref(&self, s: &Summary, workload: &str) -> Option<f64> {
        Some(s.median_ns / self.median(self.reference(), workload)?)
    }

    /// Notes attached to cells, unexpected results and skip reasons, one per line.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.rows {
            match &r.cell {
                Cell::Measured { summary, note } => {
                    if summary.unexpected > 0 {
                        notes.push(format!(
                            "{} {}: {} of {} operations did not return the expected result (marked !)",
                            r.engine,
                            r.workload,
                            summary.unexpected,
                            summary.ops_per_sample * summary.samples as u64
                        ));
                    }
                    if let Some(n) = note {
                        notes.push(format!("{} {}: {n}", r.engine, r.workload));
                    }
                }
                Cell::Skipped(why @ Skip::InProcess) => {
                    let n = format!("n/a for mp_*: {why}");
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                }
                Cell::Skipped(why) => {
                    if !self.skipped_engines.iter().any(|(e, _)| *e == r.engine) {
                        notes.push(format!("{} {}: n/a, {why}", r.engine, r.workload));
                    }
                }
            }
        }
        notes
    }

    /// The engines' rows, then the Perl original's.
    fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().chain(&self.perl)
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The fixtures every renderer's tests use, and the model's own tests.

    use super::*;

    fn measured(median: f64) -> Cell {
        Cell::Measured {
            summary: Summary::from_samples(&[median * 0.9, median, median * 1.2], 100, 0),
            note: None,
        }
    }

    /// A run of both fastmmap kinds, the map and LMDB, whose goals come out mixed: see
    /// `goals.rs`'s tests for which are met. Its last row is a skipped cell.
    pub(super) fn sample() -> Report {
        let mut r = Report {
            mode: "quick".into(),
            engines: vec![
                "store-fastmmap".into(),
                "store-fastmmap-futex".into(),
                "mutex-hashmap".into(),
                "lmdb".into(),
            ],
            workloads: [
                "get_hit_100",
                "get_hit_4k",
                "get_new_100",
                "put_100",
                "update_counter",
                "touch",
                "mix_90_10",
                "get_at_1k",
                "get_at_1m",
                "mp_1",
                "mp_2",
            ]
            .iter()
            .map(|w| (w.to_string(), "d".to_string()))
            .collect(),
            fcntl_pair: Some(Summary::from_samples(&[1000.0], 1, 0)),
            ..Report::default()
        };
        for (e, w, v) in [
            ("store-fastmmap", "get_hit_100", 100.0),
            ("store-fastmmap-futex", "get_hit_100", 110.0),
            ("mutex-hashmap", "get_hit_100", 120.0),
            ("lmdb", "get_hit_100", 400.0),
            ("store-fastmmap", "get_hit_4k", 500.0),
            ("store-fastmmap-futex", "get_hit_4k", 520.0),
            ("mutex-hashmap", "get_hit_4k", 450.0),
            ("lmdb", "get_hit_4k", 1000.0),
            ("store-fastmmap", "get_new_100", 130.0),
            ("mutex-hashmap", "get_new_100", 125.0),
            ("store-fastmmap", "put_100", 1150.0),
            ("store-fastmmap-futex", "put_100", 300.0),
            ("mutex-hashmap", "put_100", 140.0),
            ("store-fastmmap", "update_counter", 1300.0),
            ("store-fastmmap-futex", "update_counter", 280.0),
            ("lmdb", "update_counter", 1400.0),
            ("store-fastmmap", "touch", 900.0),
            ("store-fastmmap-futex", "touch", 250.0),
            ("lmdb", "touch", 1500.0),
            ("store-fastmmap-futex", "mix_90_10", 150.0),
            ("lmdb", "mix_90_10", 400.0),
            ("store-fastmmap", "get_at_1k", 100.0),
            ("store-fastmmap", "get_at_1m", 400.0),
            ("store-fastmmap-futex", "get_at_1m", 380.0),
            ("mutex-hashmap", "get_at_1m", 390.0),
            ("store-fastmmap-futex", "mp_1", 200.0),
            ("store-fastmmap-futex", "mp_2", 120.0),
        ] {
            set(&mut r, e, w, v);
        }
        r.rows.push(Row {
            engine: "lmdb".into(),
            workload: "put_100".into(),
            cell: Cell::Skipped(Skip::Other("failed: x".into())),
        });
        r
    }

    /// Sets the cell of `engine` on `workload` to one measured at `median` (samples 0.9x,
    /// 1x and 1.2x it), in place if the report has the cell, else as a new last row.
    pub(super) fn set(r: &mut Report, engine: &str, workload: &str, median: f64) {
        let cell = measured(median);
        match r
            .rows
            .iter_mut()
            .find(|row| row.engine == engine && row.workload == workload)
        {
            Some(row) => row.cell = cell,
            None => r.rows.push(Row {
                engine: engine.into(),
                workload: workload.into(),
                cell,
            }),
        }
    }

    /// A side-by-side measurement with samples `[a, b, ratio]`.
    pub(super) fn side(
        pairing: Pairing,
        [a, b, ratio]: [&[f64]; 3],
        note: Option<&str>,
    ) -> SideBySide {
        let summary = |v: &[f64]| Summary::from_samples(v, 1, 0);
        SideBySide {
            pairing,
            result: Ok(Interleaved {
                a: summary(a),
                b: summary(b),
                ratio: summary(ratio),
            }),
            note: note.map(str::to_string),
        }
    }

    #[test]
    fn pairings_name_their_halves_and_keys() {
        let table: Vec<_> = Pairing::ALL
            .into_iter()
            .map(|p| {
                let (a, b, key) = p.names();
                (key, b, a)
            })
            .collect();
        let row = |key, b: &str, a: &str| (key, b.to_string(), a.to_string());
        assert_eq!(
            table,
            [
                row(
                    "get_vs_map",
                    "store-fastmmap get_hit_100",
                    "mutex-hashmap get_hit_100"
                ),
                row(
                    "get_new_vs_map",
                    "store-fastmmap get_new_100",
                    "mutex-hashmap get_new_100"
                ),
                row("put_vs_pair", "store-fastmmap put_100", "fcntl pair"),
                row(
                    "reads_under_writer",
                    "store-fastmmap read_under_writer",
                    "store-fastmmap reads with no writer"
                ),
                row(
                    "futex_put_vs_map",
                    "store-fastmmap-futex put_100",
                    "mutex-hashmap put_100"
                ),
                row(
                    "futex_get_vs_map",
                    "store-fastmmap-futex get_hit_100",
                    "mutex-hashmap get_hit_100"
                ),
            ]
        );
    }

    #[test]
    fn ratios_are_against_fastmmap_else_memory() {
        let r = sample();
        assert_eq!(r.reference(), "store-fastmmap");
        assert_eq!(r.ratio("lmdb", "get_hit_100"), Some(4.0));
        let mut no_fmm = sample();
        no_fmm.rows.retain(|row| row.engine != "store-fastmmap");
        assert_eq!(no_fmm.reference(), "store-memory");
    }

    #[test]
    fn skip_reasons_read_as_before() {
        assert_eq!(
            Skip::InProcess.to_string(),
            "in-process engines cannot be shared by worker processes"
        );
        assert_eq!(Skip::Other("failed: x".into()).to_string(), "failed: x");
        let mut r = sample();
        for engine in ["store-memory", "mutex-hashmap"] {
            r.rows.push(Row {
                engine: engine.into(),
                workload: "mp_2".into(),
                cell: Cell::Skipped(Skip::InProcess),
            });
        }
        let notes = r.notes();
        assert!(
            notes.contains(&"lmdb put_100: n/a, failed: x".to_string()),
            "{notes:?}"
        );
        let in_process: Vec<_> = notes
            .iter()
            .filter(|n| n.starts_with("n/a for mp_*"))
            .collect();
        assert_eq!(
            in_process,
            ["n/a for mp_*: in-process engines cannot be shared by worker processes"],
            "one note for every in-process cell"
        );
        r.skipped_engines.push(("lmdb".into(), "not built".into()));
        assert!(
            !r.notes().iter().any(|n| n.starts_with("lmdb")),
            "a skipped engine has no cell notes"
        );
    }
}
