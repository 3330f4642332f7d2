//! What a run found: the table, JSON, CSV, markdown, the SVG chart and the goals.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

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
    Skipped(String),
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

const PUT_GOAL: &str = "put within 1.3x of a bare fcntl lock+unlock pair";
const RW_GOAL: &str = "reads under a concurrent writer within 2x of uncontended reads";
const GET_GOAL: &str = "store-fastmmap get_into (100 B hit, a reused buffer) no slower than the \
                        in-process Mutex<HashMap> copying into one (ratio <= 1.0)";
const GET_NEW_GOAL: &str = "store-fastmmap get (100 B hit, a new Vec) no slower than the \
                            in-process Mutex<HashMap>'s get + clone (ratio <= 1.0)";

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
    /// The workload store-fastmmap runs in half b.
    pub fn workload(self) -> Workload {
        match self {
            Pairing::GetVsMap => Workload::GetHit { value_len: 100 },
            Pairing::GetNewVsMap => Workload::GetNew { value_len: 100 },
            Pairing::PutVsPair => Workload::Put { value_len: 100 },
            Pairing::ReadsUnderWriter => Workload::ReadUnderWriter,
        }
    }

    /// What runs in half a.
    pub fn baseline(self) -> Baseline {
        match self {
            Pairing::GetVsMap | Pairing::GetNewVsMap => Baseline::Engine(EngineId::HashMap),
            Pairing::PutVsPair => Baseline::FcntlPair,
            Pairing::ReadsUnderWriter => Baseline::NoWriter,
        }
    }

    /// Names of the two halves (a, b) and the JSON key.
    fn names(self) -> (String, String, &'static str) {
        let w = self.workload().name();
        let f = EngineId::Fastmmap.name();
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

    fn json(&self) -> serde_json::Value {
        match &self.result {
            Ok(s) => json!({
                "a_median_ns": s.a.median_ns,
                "b_median_ns": s.b.median_ns,
                "ratio_median": s.ratio.median_ns,
                "ratio_min": s.ratio.min_ns,
                "ratio_max": s.ratio.max_ns,
                "samples": s.ratio.samples,
                "note": self.note,
            }),
            Err(e) => json!({"failed": e}),
        }
    }
}

/// Where a goal stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// The goal as the issue states it.
    pub text: &'static str,
    /// `Some(true)` met, `Some(false)` not met, `None` not measurable in this run.
    pub met: Option<bool>,
    /// The numbers behind the verdict.
    pub detail: String,
}

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

    /// The terminal table: workloads down, engines across, median and ratio to the
    /// reference engine.
    pub fn table(&self) -> String {
        let reference = self.reference();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "median per operation (ratio to {reference}; >1 is slower), {} mode",
            self.mode
        );
        let wl = self
            .workloads
            .iter()
            .map(|(w, _)| w.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let cw = 20;
        let _ = write!(out, "{:wl$}", "workload");
        for e in &self.engines {
            let _ = write!(out, " | {e:>cw$}");
        }
        out.push('\n');
        let _ = writeln!(out, "{}", "-".repeat(wl + self.engines.len() * (cw + 3)));
        for (w, _) in &self.workloads {
            let _ = write!(out, "{w:wl$}");
            for e in &self.engines {
                let text = match self.cell(e, w) {
                    Some(Cell::Measured { summary, .. }) => {
                        let flag = if summary.unexpected > 0 { "!" } else { "" };
                        match self.ratio(e, w) {
                            Some(r) => format!("{}{flag} ({r:.2}x)", ns(summary.median_ns)),
                            None => format!("{}{flag}", ns(summary.median_ns)),
                        }
                    }
                    Some(Cell::Skipped(_)) => "n/a".to_string(),
                    None => "-".to_string(),
                };
                let _ = write!(out, " | {text:>cw$}");
            }
            out.push('\n');
        }
        if let Some(f) = &self.fcntl_pair {
            let _ = writeln!(
                out,
                "baseline: bare fcntl OFD lock+unlock pair: {} (min {}, max {})",
                ns(f.median_ns),
                ns(f.min_ns),
                ns(f.max_ns)
            );
        }
        for sbs in &self.side_by_side {
            let _ = writeln!(out, "{}", sbs.line());
        }
        if !self.perl.is_empty() {
            let _ = writeln!(
                out,
                "\nthe Perl original, in Perl's own loop (ratio to {reference}):"
            );
            for r in &self.perl {
                let text = match &r.cell {
                    Cell::Measured { summary, .. } => match self.ratio_to_ref(summary, &r.workload)
                    {
                        Some(x) => format!("{} ({x:.1}x)", ns(summary.median_ns)),
                        None => ns(summary.median_ns),
                    },
                    Cell::Skipped(why) => format!("n/a: {why}"),
                };
                let _ = writeln!(out, "  {:wl$} {text}", r.workload);
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                let _ = writeln!(out, "note: {n}");
            }
        }
        for (e, why) in &self.skipped_engines {
            let _ = writeln!(out, "skipped {e}: {why}");
        }
        out
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
                Cell::Skipped(why) if why == crate::runner::IN_PROCESS => {
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

    /// `" (sample ranges overlap: ...)"` when the min-max ranges of two cells overlap, so
    /// a verdict decided by a few per cent is read as the tie it is.
    fn overlap_note(&self, a: &str, b: &str, workload: &str) -> String {
        let range = |e: &str| {
            self.rows
                .iter()
                .find(|r| r.engine == e && r.workload == workload)
                .and_then(|r| r.cell.summary())
                .map(|s| (s.min_ns, s.max_ns))
        };
        match (range(a), range(b)) {
            (Some((a0, a1)), Some((b0, b1))) if a0 <= b1 && b0 <= a1 => format!(
                " (sample ranges overlap: {a} {} - {}, {b} {} - {})",
                ns(a0),
                ns(a1),
                ns(b0),
                ns(b1)
            ),
            _ => String::new(),
        }
    }

    /// The goals of the issue, evaluated on this run.
    pub fn goals(&self) -> Vec<Goal> {
        let f = "store-fastmmap";
        let m = |e: &str, w: &str| self.median(e, w);
        let mut goals = Vec::new();
        let get = (m(f, "get_hit_100"), m("mutex-hashmap", "get_hit_100"));
        goals.push(self.ratio_goal(Pairing::GetVsMap, GET_GOAL, 1.0, get, || {
            self.overlap_note(f, "mutex-hashmap", "get_hit_100")
        }));
        let get_new = (m(f, "get_new_100"), m("mutex-hashmap", "get_new_100"));
        goals.push(
            self.ratio_goal(Pairing::GetNewVsMap, GET_NEW_GOAL, 1.0, get_new, || {
                self.overlap_note(f, "mutex-hashmap", "get_new_100")
            }),
        );
        let mut faster = Vec::new();
        let mut ok = Some(true);
        for (peer, want) in [("lmdb", 3.0), ("redis", 50.0)] {
            for w in ["get_hit_100", "get_hit_4k"] {
                match (m(f, w), m(peer, w)) {
                    (Some(a), Some(b)) => {
                        faster.push(format!("{peer} {w}: {:.1}x (want >= {want})", b / a));
                        if b / a < want {
                            ok = ok.map(|_| false);
                        }
                    }
                    _ => {
                        faster.push(format!("{peer} {w}: not measured"));
                        ok = None;
                    }
                }
            }
        }
        goals.push(Goal {
            text: "at least 3x faster than LMDB for reads and at least 50x faster than Redis on loopback",
            met: ok,
            detail: faster.join("; "),
        });
        let put = (m(f, "put_100"), self.fcntl_pair.map(|s| s.median_ns));
        goals.push(self.ratio_goal(Pairing::PutVsPair, PUT_GOAL, 1.3, put, String::new));
        let rw = (m(f, "read_under_writer"), m(f, "get_hit_100"));
        goals.push(
            self.ratio_goal(Pairing::ReadsUnderWriter, RW_GOAL, 2.0, rw, || {
                " (against the get_hit_100 cell)".to_string()
            }),
        );
        let series: Vec<(String, f64)> = self
            .workloads
            .iter()
            .filter(|(w, _)| w.starts_with("get_at_"))
            .filter_map(|(w, _)| Some((w.clone(), m(f, w)?)))
            .collect();
        let flat = match (series.first(), series.last()) {
            (Some(a), Some(b)) if series.len() > 1 => Some((b.1 / a.1, a, b)),
            _ => None,
        };
        goals.push(Goal {
            text: "flat get cost from 1 thousand to 1 million sessions (largest / smallest <= 1.5)",
            met: flat.and_then(|(r, _, b)| (b.0 == "get_at_1m").then_some(r <= 1.5)),
            detail: match flat {
                Some((r, a, b)) => format!(
                    "{}; {:.2}x from {} to {}{}",
                    series
                        .iter()
                        .map(|(w, v)| format!("{w} {}", ns(*v)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r,
                    a.0,
                    b.0,
                    if b.0 == "get_at_1m" {
                        ""
                    } else {
                        " (get_at_1m is only in --full runs)"
                    }
                ),
                None => "not measured in this run".into(),
            },
        });
        goals
    }

    /// The goals as text lines.
    pub fn goals_text(&self) -> String {
        let mut out = String::from("goals:\n");
        for g in self.goals() {
            let verdict = match g.met {
                Some(true) => "MET",
                Some(false) => "NOT MET",
                None => "UNKNOWN",
            };
            let _ = writeln!(out, "  [{verdict}] {}\n          {}", g.text, g.detail);
        }
        out
    }

    /// Markdown tables (median, min-max, ratio) for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let reference = self.reference();
        let mut out = String::new();
        let _ = writeln!(out, "Command: `{}`  ", self.command);
        let _ = writeln!(out, "Machine: {}  ", self.machine);
        let _ = writeln!(out, "Mode: {}, {:.0} s  ", self.mode, self.seconds);
        for l in &self.load {
            let _ = writeln!(out, "Load: {l}  ");
        }
        let _ = writeln!(
            out,
            "\nMedian ns per operation [min - max over the samples], ratio to {reference} (>1 is slower).\n"
        );
        let _ = write!(out, "| workload |");
        for e in &self.engines {
            let _ = write!(out, " {e} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &self.engines {
            out.push_str("---:|");
        }
        out.push('\n');
        for (w, _) in &self.workloads {
            let _ = write!(out, "| `{w}` |");
            for e in &self.engines {
                let text = match self.cell(e, w) {
                    Some(Cell::Measured { summary: s, .. }) => {
                        let flag = if s.unexpected > 0 { " (!)" } else { "" };
                        let ratio = self
                            .ratio(e, w)
                            .filter(|_| e != reference)
                            .map(|r| format!(" **{r:.2}x**"))
                            .unwrap_or_default();
                        format!(
                            "{:.0} [{:.0} - {:.0}]{ratio}{flag}",
                            s.median_ns, s.min_ns, s.max_ns
                        )
                    }
                    Some(Cell::Skipped(_)) => "n/a".into(),
                    None => "-".into(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "\nWorkloads:\n");
        for (w, d) in &self.workloads {
            let _ = writeln!(out, "- `{w}`: {d}");
        }
        if let Some(f) = &self.fcntl_pair {
            let _ = writeln!(
                out,
                "\nBaseline, a bare fcntl OFD lock+unlock pair: {:.0} ns [{:.0} - {:.0}]",
                f.median_ns, f.min_ns, f.max_ns
            );
        }
        for sbs in &self.side_by_side {
            let _ = writeln!(out, "\n{}", sbs.line());
        }
        if !self.perl.is_empty() {
            let _ = writeln!(
                out,
                "\nThe Perl original, timed in Perl's own loop (pays Perl's call overhead):\n\n| workload | {} | ratio to {reference} |\n|---|---:|---:|",
                self.perl[0].engine
            );
            for r in &self.perl {
                match &r.cell {
                    Cell::Measured { summary: s, .. } => {
                        let ratio = self
                            .ratio_to_ref(s, &r.workload)
                            .map(|x| format!("{x:.1}x"))
                            .unwrap_or_else(|| "-".into());
                        let _ = writeln!(
                            out,
                            "| `{}` | {:.0} [{:.0} - {:.0}] | {ratio} |",
                            r.workload, s.median_ns, s.min_ns, s.max_ns
                        );
                    }
                    Cell::Skipped(why) => {
                        let _ = writeln!(out, "| `{}` | n/a ({why}) | |", r.workload);
                    }
                }
            }
        }
        let notes = self.notes();
        if !notes.is_empty() || !self.skipped_engines.is_empty() {
            out.push_str("\nNotes:\n\n");
            for n in notes {
                let _ = writeln!(out, "- {n}");
            }
            for (e, why) in &self.skipped_engines {
                let _ = writeln!(out, "- skipped {e}: {why}");
            }
        }
        out
    }

    /// A goal "b / a <= limit": from the side-by-side measurement of `pairing` if the run
    /// has one, else from the two cells `(b, a)` measured apart.
    fn ratio_goal(
        &self,
        pairing: Pairing,
        text: &'static str,
        limit: f64,
        (b, a): (Option<f64>, Option<f64>),
        apart_note: impl FnOnce() -> String,
    ) -> Goal {
        let (a_name, b_name, _) = pairing.names();
        match (
            self.side_by_side.iter().find(|s| s.pairing == pairing),
            a,
            b,
        ) {
            (Some(SideBySide { result: Ok(s), .. }), _, _) => Goal {
                text,
                met: Some(s.ratio.median_ns <= limit),
                detail: format!(
                    "{b_name} {} vs {a_name} {} in alternating samples: {:.2}x (median of the \
                     per-round ratios, range {:.2} - {:.2})",
                    ns(s.b.median_ns),
                    ns(s.a.median_ns),
                    s.ratio.median_ns,
                    s.ratio.min_ns,
                    s.ratio.max_ns
                ),
            },
            (_, Some(a), Some(b)) => Goal {
                text,
                met: Some(b <= limit * a),
                detail: format!(
                    "{b_name} {} vs {a_name} {}: {:.2}x (measured apart, not side by side){}",
                    ns(b),
                    ns(a),
                    b / a,
                    apart_note()
                ),
            },
            _ => Goal {
                text,
                met: None,
                detail: "not measured in this run".into(),
            },
        }
    }

    fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().chain(&self.perl)
    }

    /// The results as JSON.
    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<_> = self
            .all_rows()
            .map(|r| match &r.cell {
                Cell::Measured { summary: s, note } => json!({
                    "engine": r.engine,
                    "workload": r.workload,
                    "median_ns": s.median_ns,
                    "min_ns": s.min_ns,
                    "max_ns": s.max_ns,
                    "samples": s.samples,
                    "ops_per_sample": s.ops_per_sample,
                    "unexpected": s.unexpected,
                    "ratio_to_reference": self.ratio_to_ref(s, &r.workload),
                    "note": note,
                }),
                Cell::Skipped(why) => json!({
                    "engine": r.engine,
                    "workload": r.workload,
                    "skipped": why,
                }),
            })
            .collect();
        json!({
            "machine": self.machine,
            "mode": self.mode,
            "command": self.command,
            "load": self.load,
            "seconds": self.seconds,
            "reference": self.reference(),
            "engines": self.engines,
            "workloads": self.workloads.iter().map(|(w, d)| json!({"name": w, "description": d})).collect::<Vec<_>>(),
            "fcntl_pair": self.fcntl_pair.map(|s| json!({"median_ns": s.median_ns, "min_ns": s.min_ns, "max_ns": s.max_ns})),
            "side_by_side": self.side_by_side.iter().map(|s| (s.pairing.names().2.to_string(), s.json())).collect::<serde_json::Map<_, _>>(),
            "skipped_engines": self.skipped_engines.iter().map(|(e, w)| json!({"engine": e, "why": w})).collect::<Vec<_>>(),
            "results": rows,
            "goals": self.goals().iter().map(|g| json!({"goal": g.text, "met": g.met, "detail": g.detail})).collect::<Vec<_>>(),
        })
    }

    /// The results as CSV: one line per engine and workload.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "engine,workload,median_ns,min_ns,max_ns,samples,ops_per_sample,unexpected,ratio_to_reference,skipped\n",
        );
        for r in self.all_rows() {
            match &r.cell {
                Cell::Measured { summary: s, .. } => {
                    let ratio = self
                        .ratio_to_ref(s, &r.workload)
                        .map(|x| format!("{x:.4}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{},{},{:.1},{:.1},{:.1},{},{},{},{ratio},",
                        r.engine,
                        r.workload,
                        s.median_ns,
                        s.min_ns,
                        s.max_ns,
                        s.samples,
                        s.ops_per_sample,
                        s.unexpected
                    );
                }
                Cell::Skipped(why) => {
                    let _ = writeln!(
                        out,
                        "{},{},,,,,,,,\"{}\"",
                        r.engine,
                        r.workload,
                        why.replace('"', "'")
                    );
                }
            }
        }
        out
    }

    /// Writes `results.json`, `results.csv`, `results.md` and `chart.svg` into `dir`;
    /// returns the paths written.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write_all(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut written = Vec::new();
        for (name, text) in [
            (
                "results.json",
                serde_json::to_string_pretty(&self.json()).expect("json"),
            ),
            ("results.csv", self.csv()),
            (
                "results.md",
                format!("{}\n{}", self.markdown(), self.goals_text()),
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            written.push(path);
        }
        let svg = dir.join("chart.svg");
        crate::report::chart::draw(self, &svg)?;
        written.push(svg);
        Ok(written)
    }
}

mod chart {
    //! The SVG bar chart: one group of horizontal bars per workload, log scale.

    use std::path::Path;

    use plotters::prelude::*;

    use super::Report;

    const COLORS: [RGBColor; 6] = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];

    pub(super) fn draw(report: &Report, path: &Path) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
        let mut series: Vec<String> = report.engines.clone();
        if let Some(p) = report.perl.first() {
            series.push(p.engine.clone());
        }
        let workloads: Vec<&str> = report.workloads.iter().map(|(w, _)| w.as_str()).collect();
        let value = |e: &str, w: &str| report.median(e, w);
        let values: Vec<f64> = series
            .iter()
            .flat_map(|e| workloads.iter().filter_map(move |w| value(e, w)))
            .collect();
        let lo = values
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(1.0)
            / 2.0;
        let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 2.0;
        let n = workloads.len().max(1);
        let height = (n as u32 * (series.len() as u32 * 9 + 12)).max(300) + 120;
        let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "session stores, median ns per operation (log scale, shorter is faster), {} mode",
                    report.mode
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .margin_right(40)
            .x_label_area_size(40)
            .y_label_area_size(150)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("time per operation")
            .x_label_formatter(&|v| super::ns(*v))
            .draw()
            .map_err(|e| err(&e))?;
        let band = 0.8 / series.len() as f64;
        for (si, engine) in series.iter().enumerate() {
            let color = COLORS[si % COLORS.len()];
            let bars: Vec<_> = workloads
                .iter()
                .enumerate()
                .filter_map(|(wi, w)| {
                    let v = value(engine, w)?;
                    let top = (n - 1 - wi) as f64 + 0.9 - band * si as f64;
                    Some(Rectangle::new([(lo, top - band), (v, top)], color.filled()))
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| err(&e))?
                .label(engine.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for (wi, w) in workloads.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(lo, (n - 1 - wi) as f64 + 0.5));
            root.draw(&Text::new(
                w.to_string(),
                (px - 145, py - 6),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(median: f64) -> Cell {
        Cell::Measured {
            summary: Summary::from_samples(&[median * 0.9, median, median * 1.2], 100, 0),
            note: None,
        }
    }

    fn sample() -> Report {
        let mut r = Report {
            mode: "quick".into(),
            engines: vec![
                "store-fastmmap".into(),
                "mutex-hashmap".into(),
                "lmdb".into(),
            ],
            workloads: [
                "get_hit_100",
                "get_hit_4k",
                "get_new_100",
                "put_100",
                "get_at_1k",
                "get_at_1m",
            ]
            .iter()
            .map(|w| (w.to_string(), "d".to_string()))
            .collect(),
            fcntl_pair: Some(Summary::from_samples(&[1000.0], 1, 0)),
            ..Report::default()
        };
        for (e, w, v) in [
            ("store-fastmmap", "get_hit_100", 100.0),
            ("mutex-hashmap", "get_hit_100", 120.0),
            ("lmdb", "get_hit_100", 400.0),
            ("store-fastmmap", "get_hit_4k", 500.0),
            ("lmdb", "get_hit_4k", 1000.0),
            ("store-fastmmap", "get_new_100", 130.0),
            ("mutex-hashmap", "get_new_100", 125.0),
            ("store-fastmmap", "put_100", 1200.0),
            ("store-fastmmap", "get_at_1k", 100.0),
            ("store-fastmmap", "get_at_1m", 400.0),
        ] {
            r.rows.push(Row {
                engine: e.into(),
                workload: w.into(),
                cell: measured(v),
            });
        }
        r.rows.push(Row {
            engine: "lmdb".into(),
            workload: "put_100".into(),
            cell: Cell::Skipped("failed: x".into()),
        });
        r
    }

    #[test]
    fn goals_read_the_right_cells() {
        let g = sample().goals();
        assert_eq!(g[0].met, Some(true), "{}", g[0].detail);
        assert_eq!(g[1].met, Some(false), "130 vs 125 ns: {}", g[1].detail);
        assert!(g[1].detail.contains("1.04x"), "{}", g[1].detail);
        assert_eq!(g[2].met, None, "redis not measured: {}", g[2].detail);
        assert_eq!(g[3].met, Some(true), "{}", g[3].detail);
        assert_eq!(g[4].met, None);
        assert_eq!(
            g[5].met,
            Some(false),
            "4x growth is not flat: {}",
            g[5].detail
        );
    }

    /// A side-by-side measurement with samples `[a, b, ratio]`.
    fn side(pairing: Pairing, [a, b, ratio]: [&[f64]; 3], note: Option<&str>) -> SideBySide {
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
    fn the_ratio_goals_prefer_the_side_by_side_ratios() {
        // Apart: put 1200 / 1000 = 1.2, met; side by side the per-round ratios say 1.4.
        let mut r = sample();
        assert_eq!(r.goals()[3].met, Some(true));
        assert!(r.goals()[3].detail.contains("measured apart"));
        r.side_by_side.push(side(
            Pairing::PutVsPair,
            [
                &[600.0, 610.0, 620.0],
                &[840.0, 850.0, 870.0],
                &[1.38, 1.40, 1.41],
            ],
            None,
        ));
        let g = &r.goals()[3];
        assert_eq!(g.met, Some(false), "{}", g.detail);
        assert!(g.detail.contains("1.40x"), "{}", g.detail);
        assert!(r.markdown().contains("ratio 1.40 (median of 3 rounds"));
        assert_eq!(
            r.json()["side_by_side"]["put_vs_pair"]["ratio_median"],
            1.40
        );
        // Apart: get 100 vs 120, met; side by side 1.1, not met.
        assert_eq!(r.goals()[0].met, Some(true));
        r.side_by_side
            .push(side(Pairing::GetVsMap, [&[50.0], &[55.0], &[1.1]], None));
        assert_eq!(r.goals()[0].met, Some(false), "{}", r.goals()[0].detail);
        assert_eq!(
            r.goals()[3].met,
            Some(false),
            "the put pairing is unchanged"
        );
        // Reads under a writer: the side-by-side ratio against the same store's reads.
        assert_eq!(r.goals()[4].met, None, "no cell, no pairing");
        r.side_by_side.push(side(
            Pairing::ReadsUnderWriter,
            [&[60.0], &[150.0], &[2.5]],
            Some("the writer process ran 5 puts/s while writing"),
        ));
        assert_eq!(r.goals()[4].met, Some(false), "{}", r.goals()[4].detail);
        assert!(r.markdown().contains(
            "ratio 2.50 (median of 1 rounds, range 2.50 - 2.50); the writer process ran 5 puts/s"
        ));
        assert_eq!(
            r.json()["side_by_side"]["reads_under_writer"]["note"],
            "the writer process ran 5 puts/s while writing"
        );
        assert!(
            r.goals()[4].detail.contains("reads with no writer"),
            "{}",
            r.goals()[4].detail
        );
        r.side_by_side[0].result = Err("no room".into());
        assert!(r.table().contains("failed: no room"));
        assert_eq!(r.goals()[3].met, Some(true), "falls back to the cells");
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
    fn every_output_renders() {
        let r = sample();
        assert!(r.table().contains("4.00x"), "{}", r.table());
        assert!(r.markdown().contains("| `get_hit_100` |"));
        assert_eq!(r.csv().lines().count(), 1 + r.rows.len());
        assert!(
            r.json()["results"]
                .as_array()
                .is_some_and(|a| a.len() == r.rows.len())
        );
        let dir = tempfile::tempdir().unwrap();
        let written = r.write_all(dir.path()).unwrap();
        assert_eq!(written.len(), 4);
        let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("get_at_1m"));
    }
}
