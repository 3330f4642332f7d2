//! The acceptance goals, evaluated on a run: read from the cells and the
//! side-by-side measurements, not a way of showing them.

use std::fmt::Write as _;

use super::{Pairing, Report, SideBySide, ns};

const PUT_GOAL: &str = "put within 1.3x of a bare fcntl lock+unlock pair";
const RW_GOAL: &str = "reads under a concurrent writer within 2x of uncontended reads";
const GET_GOAL: &str = "store-fastmmap get_into (100 B hit, a reused buffer) no slower than the \
                        in-process Mutex<HashMap> copying into one (ratio <= 1.0)";
const GET_NEW_GOAL: &str = "store-fastmmap get (100 B hit, a new Vec) no slower than the \
                            in-process Mutex<HashMap>'s get + clone (ratio <= 1.0)";

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

impl Report {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sample, side};
    use super::*;

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
}
