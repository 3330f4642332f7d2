//! The files a run leaves: JSON, CSV, the markdown with the goals, and the chart.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::{Cell, Report, SideBySide};

impl SideBySide {
    /// The measurement as the JSON value under its pairing's key.
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

impl Report {
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
                    "skipped": why.to_string(),
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
                        why.to_string().replace('"', "'")
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
        super::chart::draw(self, &svg)?;
        written.push(svg);
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

    #[test]
    fn every_output_renders() {
        let r = sample();
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
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn skip_reasons_are_exported() {
        let r = sample();
        assert!(
            r.csv().ends_with("lmdb,put_100,,,,,,,,\"failed: x\"\n"),
            "{}",
            r.csv()
        );
        let json = r.json();
        let skipped = json["results"].as_array().and_then(|a| {
            a.iter()
                .find(|row| row["engine"] == "lmdb" && row["workload"] == "put_100")
        });
        assert_eq!(
            skipped.map(|row| &row["skipped"]),
            Some(&"failed: x".into())
        );
    }
}
