//! The acceptance goals of issue 17, evaluated on a run: read from the cells and the
//! side-by-side measurements, not a way of showing them. They hold the futex lock kind
//! against the in-process map and LMDB, the fcntl kind against its own put and the bare
//! fcntl pair, and both kinds' reads against the map.

use std::fmt::Write as _;

use super::{Pairing, Report, SideBySide, ns};

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

// The engine names the goals read: the registry's (checked in the tests).
const FCNTL: &str = "store-fastmmap";
const FUTEX: &str = "store-fastmmap-futex";
const MAP: &str = "mutex-hashmap";
const LMDB: &str = "lmdb";

/// The verdict of a goal made of parts: not met if one part is not, unknown if a part was
/// not measured, else met.
fn all_met(parts: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let parts: Vec<_> = parts.into_iter().collect();
    if parts.contains(&Some(false)) {
        Some(false)
    } else if parts.contains(&None) {
        None
    } else {
        Some(true)
    }
}

impl Report {
    /// `" (sample ranges overlap: ...)"` when the min-max ranges of two cells, each an
    /// engine and a workload, overlap, so a verdict decided by a few per cent is read as
    /// the tie it is.
    fn overlap_note(&self, a: (&str, &str), b: (&str, &str)) -> String {
        let range = |(e, w): (&str, &str)| {
            self.cell(e, w)
                .and_then(|c| c.summary())
                .map(|s| (s.min_ns, s.max_ns))
        };
        // Named by what tells the two apart: the engine, the workload, or both.
        let name = |(e, w): (&str, &str)| match (a.0 == b.0, a.1 == b.1) {
            (true, false) => w.to_string(),
            (false, true) => e.to_string(),
            _ => format!("{e} {w}"),
        };
        match (range(a), range(b)) {
            (Some((a0, a1)), Some((b0, b1))) if a0 <= b1 && b0 <= a1 => format!(
                " (sample ranges overlap: {} {} - {}, {} {} - {})",
                name(a),
                ns(a0),
                ns(a1),
                name(b),
                ns(b0),
                ns(b1)
            ),
            _ => String::new(),
        }
    }

    /// The goals of issue 17, evaluated on this run, in the order they are printed.
    pub fn goals(&self) -> Vec<Goal> {
        let m = |e: &str, w: &str| self.median(e, w);
        let mut goals = Vec::new();

        let put = (m(FUTEX, "put_100"), m(MAP, "put_100"));
        goals.push(self.ratio_goal(
            Pairing::FutexPutVsMap,
            "futex kind: put_100 within 2x of the in-process Mutex<HashMap>'s put",
            2.0,
            put,
            || self.overlap_note((FUTEX, "put_100"), (MAP, "put_100")),
        ));

        let (met, detail): (Vec<_>, Vec<_>) = ["put_100", "update_counter", "touch"]
            .into_iter()
            .map(|w| self.speedup(FUTEX, LMDB, w, 4.0))
            .unzip();
        goals.push(Goal {
            text: "futex kind: at least 4x faster than LMDB on put_100, update_counter and touch",
            met: all_met(met),
            detail: detail.join("; "),
        });

        let (met, detail) = self.speedup(FUTEX, LMDB, "mix_90_10", 2.0);
        goals.push(Goal {
            text: "futex kind: mix_90_10 at least 2x faster than LMDB",
            met,
            detail,
        });

        goals.push(self.scaling_goal(FUTEX));

        goals.push(self.cheap_updates_goal(FCNTL));

        let put = (m(FCNTL, "put_100"), self.fcntl_pair.map(|s| s.median_ns));
        goals.push(self.ratio_goal(
            Pairing::PutVsPair,
            "fcntl kind: put_100 within 1.2x of a bare fcntl lock+unlock pair",
            1.2,
            put,
            String::new,
        ));

        let get = |pairing: Pairing| {
            let e = pairing.engine().name();
            let cells = (m(e, "get_hit_100"), m(MAP, "get_hit_100"));
            self.ratio_goal(pairing, "", 1.0, cells, || {
                self.overlap_note((e, "get_hit_100"), (MAP, "get_hit_100"))
            })
        };
        let parts = [get(Pairing::GetVsMap), get(Pairing::FutexGetVsMap)];
        goals.push(Goal {
            text: "both kinds: get_into of a 100 B hit (a reused buffer) no slower than the \
                   in-process Mutex<HashMap> copying into one (ratio <= 1.0)",
            met: all_met(parts.iter().map(|g| g.met)),
            detail: parts.map(|g| g.detail).join("; "),
        });

        let (met, detail): (Vec<_>, Vec<_>) = [FCNTL, FUTEX]
            .into_iter()
            .map(|e| self.cell_ratio((e, "get_hit_4k"), (MAP, "get_hit_4k"), 1.25))
            .unzip();
        goals.push(Goal {
            text: "both kinds: get_hit_4k within 1.25x of the in-process Mutex<HashMap>",
            met: all_met(met),
            detail: detail.join("; "),
        });

        let (met, detail): (Vec<_>, Vec<_>) = [FCNTL, FUTEX]
            .into_iter()
            .map(|e| self.cell_ratio((e, "get_at_1m"), (MAP, "get_at_1m"), 1.0))
            .unzip();
        let in_run = self.workloads.iter().any(|(w, _)| w == "get_at_1m");
        goals.push(Goal {
            text: "both kinds: a get hit among 1 million sessions (get_at_1m, get_into) no \
                   slower than the in-process Mutex<HashMap>'s",
            met: all_met(met),
            detail: if in_run {
                detail.join("; ")
            } else {
                "not measured in this run (get_at_1m is only in --full runs)".to_string()
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

    /// "`engine` at least `want` times faster than `peer` on `workload`" from the cells:
    /// the verdict (`None` if either is not measured) and the numbers.
    fn speedup(
        &self,
        engine: &str,
        peer: &str,
        workload: &str,
        want: f64,
    ) -> (Option<bool>, String) {
        match (self.median(engine, workload), self.median(peer, workload)) {
            (Some(e), Some(p)) => (
                Some(p >= want * e),
                format!(
                    "{workload}: {peer} {} / {engine} {} = {:.1}x (want >= {want})",
                    ns(p),
                    ns(e),
                    p / e,
                ),
            ),
            _ => (None, self.missing(&[(engine, workload), (peer, workload)])),
        }
    }

    /// "cell `b` costs at most `limit` times cell `a`" (each an engine and a workload),
    /// from the cells measured apart: the verdict (`None` if either is not measured) and
    /// the numbers.
    fn cell_ratio(&self, b: (&str, &str), a: (&str, &str), limit: f64) -> (Option<bool>, String) {
        match (self.median(b.0, b.1), self.median(a.0, a.1)) {
            (Some(vb), Some(va)) => (
                Some(vb <= limit * va),
                format!(
                    "{} {} {} vs {} {} {}: {:.2}x (want <= {limit}){}",
                    b.0,
                    b.1,
                    ns(vb),
                    a.0,
                    a.1,
                    ns(va),
                    vb / va,
                    self.overlap_note(b, a)
                ),
            ),
            _ => (None, self.missing(&[b, a])),
        }
    }

    /// Which of `cells` (each an engine and a workload) are not measured, in words.
    fn missing(&self, cells: &[(&str, &str)]) -> String {
        let missing: Vec<_> = cells
            .iter()
            .filter(|(e, w)| self.median(e, w).is_none())
            .map(|(e, w)| format!("{e} {w}"))
            .collect();
        format!("{} not measured in this run", missing.join(" and "))
    }

    /// "`mp_2` at least 1.5x the throughput of `mp_1`" for `engine`: the cells are ns per
    /// aggregate operation, so the throughput ratio is mp_1 / mp_2.
    fn scaling_goal(&self, engine: &str) -> Goal {
        let text = "futex kind: mp_2 aggregate throughput at least 1.5x mp_1's on 2 cores";
        match (self.median(engine, "mp_1"), self.median(engine, "mp_2")) {
            (Some(one), Some(two)) => Goal {
                text,
                met: Some(one >= 1.5 * two),
                detail: format!(
                    "{engine} mp_1 {} per op ({:.2} M ops/s), mp_2 {} per aggregate op \
                     ({:.2} M ops/s): {:.2}x the throughput (want >= 1.5)",
                    ns(one),
                    1e3 / one,
                    ns(two),
                    1e3 / two,
                    one / two,
                ),
            },
            _ => Goal {
                text,
                met: None,
                detail: self.missing(&[(engine, "mp_1"), (engine, "mp_2")]),
            },
        }
    }

    /// "`touch` and `update_counter` cost no more than `put_100`" for `engine`: each
    /// rewrites one entry under the page lock as a put does.
    fn cheap_updates_goal(&self, engine: &str) -> Goal {
        let (met, detail): (Vec<_>, Vec<_>) = ["touch", "update_counter"]
            .into_iter()
            .map(|w| self.cell_ratio((engine, w), (engine, "put_100"), 1.0))
            .unzip();
        Goal {
            text: "fcntl kind: touch and update_counter cost no more than put_100",
            met: all_met(met),
            detail: detail.join("; "),
        }
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
                    "{b_name} {} vs {a_name} {} in alternating samples: {:.2}x (want <= \
                     {limit}; median of the per-round ratios, range {:.2} - {:.2})",
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
                    "{b_name} {} vs {a_name} {}: {:.2}x (want <= {limit}; measured apart, \
                     not side by side){}",
                    ns(b),
                    ns(a),
                    b / a,
                    apart_note()
                ),
            },
            _ => Goal {
                text,
                met: None,
                detail: format!("{b_name} vs {a_name}: not measured in this run"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sample, set, side};
    use super::*;
    use crate::EngineId;

    // The goals in the order `goals` lists them.
    const FUTEX_PUT: usize = 0;
    const FUTEX_VS_LMDB: usize = 1;
    const FUTEX_MIX: usize = 2;
    const FUTEX_MP: usize = 3;
    const FCNTL_UPDATES: usize = 4;
    const FCNTL_PUT: usize = 5;
    const GET_100: usize = 6;
    const GET_4K: usize = 7;
    const GET_1M: usize = 8;

    fn goal(r: &Report, i: usize) -> Goal {
        r.goals().swap_remove(i)
    }

    /// Asserts goal `i`'s verdict, showing its detail when it differs.
    #[track_caller]
    fn verdict(r: &Report, i: usize, want: Option<bool>) -> Goal {
        let g = goal(r, i);
        assert_eq!(g.met, want, "goal {i}, {}: {}", g.text, g.detail);
        g
    }

    #[test]
    fn goals_read_the_right_cells() {
        let names = [
            EngineId::Fastmmap,
            EngineId::FastmmapFutex,
            EngineId::HashMap,
        ];
        assert_eq!([FCNTL, FUTEX, MAP], names.map(EngineId::name));
        assert_eq!(LMDB, EngineId::Lmdb.name());
        let mut r = sample();
        assert_eq!(r.goals().len(), 9);
        let text = r.goals_text();
        assert!(
            text.starts_with("goals:\n  [NOT MET] futex kind: put_100"),
            "{text}"
        );

        // a. futex put 300 ns vs the map's 140 ns: 2.14x, over 2x; 160 ns: 1.88x, met.
        let g = verdict(&r, FUTEX_PUT, Some(false));
        assert!(
            g.detail.contains("2.14x (want <= 2; measured apart"),
            "{}",
            g.detail
        );
        set(&mut r, "mutex-hashmap", "put_100", 160.0);
        verdict(&r, FUTEX_PUT, Some(true));

        // b. LMDB's put failed: unknown, though update_counter (5x) and touch (6x) pass;
        // its put at 5x meets it, its touch at 3.6x fails it.
        let g = verdict(&r, FUTEX_VS_LMDB, None);
        assert!(
            g.detail.contains("lmdb put_100 not measured")
                && g.detail
                    .contains("update_counter: lmdb 1400 ns / store-fastmmap-futex 280 ns = 5.0x")
                && g.detail
                    .contains("touch: lmdb 1500 ns / store-fastmmap-futex 250 ns = 6.0x"),
            "{}",
            g.detail
        );
        set(&mut r, "lmdb", "put_100", 1500.0);
        verdict(&r, FUTEX_VS_LMDB, Some(true));
        set(&mut r, "lmdb", "touch", 900.0);
        let g = verdict(&r, FUTEX_VS_LMDB, Some(false));
        assert!(g.detail.contains("3.6x (want >= 4)"), "{}", g.detail);

        // c. mix: LMDB 400 ns / futex 150 ns = 2.7x, met; 250 ns: 1.7x, not.
        verdict(&r, FUTEX_MIX, Some(true));
        set(&mut r, "lmdb", "mix_90_10", 250.0);
        verdict(&r, FUTEX_MIX, Some(false));

        // d. mp_1 200 ns per op, mp_2 120 ns per aggregate op: 1.67x the throughput;
        // 150 ns: 1.33x, not enough. The fcntl kind's mp cells are not read.
        let g = verdict(&r, FUTEX_MP, Some(true));
        assert!(g.detail.contains("1.67x the throughput"), "{}", g.detail);
        set(&mut r, "store-fastmmap", "mp_2", 50.0);
        set(&mut r, "store-fastmmap-futex", "mp_2", 150.0);
        verdict(&r, FUTEX_MP, Some(false));
        r.rows
            .retain(|row| !(row.engine == "store-fastmmap-futex" && row.workload == "mp_1"));
        let g = verdict(&r, FUTEX_MP, None);
        assert_eq!(
            g.detail,
            "store-fastmmap-futex mp_1 not measured in this run"
        );

        // e. fcntl touch 900 ns is under put's 1150 ns, update_counter 1300 ns is not, and
        // their ranges overlap; at 1000 ns both are under.
        let g = verdict(&r, FCNTL_UPDATES, Some(false));
        assert!(
            g.detail
                .contains("store-fastmmap touch 900 ns vs store-fastmmap put_100 1150 ns: 0.78x")
                && g.detail.contains(
                    "1.13x (want <= 1) (sample ranges overlap: update_counter 1170 ns - 1560 ns, \
                     put_100 1035 ns - 1380 ns)"
                ),
            "{}",
            g.detail
        );
        set(&mut r, "store-fastmmap", "update_counter", 1000.0);
        verdict(&r, FCNTL_UPDATES, Some(true));

        // f. fcntl put 1150 ns vs the pair's 1000 ns: 1.15x, met; 1250 ns: 1.25x, not.
        verdict(&r, FCNTL_PUT, Some(true));
        set(&mut r, "store-fastmmap", "put_100", 1250.0);
        verdict(&r, FCNTL_PUT, Some(false));

        // g. get_hit_100: fcntl 100 ns and futex 110 ns against the map's 120 ns, met;
        // the futex kind at 130 ns fails it; with its cell missing it is unknown, and so
        // with neither.
        let g = verdict(&r, GET_100, Some(true));
        assert!(
            g.detail.contains(
                "store-fastmmap get_hit_100 100 ns vs mutex-hashmap get_hit_100 120 ns: 0.83x"
            ) && g.detail.contains("store-fastmmap-futex get_hit_100 110 ns"),
            "{}",
            g.detail
        );
        set(&mut r, "store-fastmmap-futex", "get_hit_100", 130.0);
        verdict(&r, GET_100, Some(false));
        let mut one = r.clone();
        one.rows
            .retain(|row| !(row.engine == "store-fastmmap-futex" && row.workload == "get_hit_100"));
        verdict(&one, GET_100, None);
        one.rows
            .retain(|row| !(row.engine == "store-fastmmap" && row.workload == "get_hit_100"));
        let g = verdict(&one, GET_100, None);
        assert!(
            g.detail.contains("not measured in this run"),
            "{}",
            g.detail
        );

        // h. get_hit_4k: 500 and 520 ns against 450 ns, within 1.25x; 600 ns is 1.33x.
        verdict(&r, GET_4K, Some(true));
        set(&mut r, "store-fastmmap-futex", "get_hit_4k", 600.0);
        verdict(&r, GET_4K, Some(false));

        // i. get_at_1m: fcntl 400 ns is slower than the map's 390 ns; at 350 ns both kinds
        // are faster; a run without get_at_1m (not --full) cannot tell.
        verdict(&r, GET_1M, Some(false));
        set(&mut r, "store-fastmmap", "get_at_1m", 350.0);
        verdict(&r, GET_1M, Some(true));
        r.workloads.retain(|(w, _)| w != "get_at_1m");
        r.rows.retain(|row| row.workload != "get_at_1m");
        let g = verdict(&r, GET_1M, None);
        assert!(g.detail.contains("only in --full runs"), "{}", g.detail);
    }

    #[test]
    fn the_ratio_goals_prefer_the_side_by_side_ratios() {
        // Apart: fcntl put 1150 / 1000 = 1.15, met; side by side the per-round ratios
        // say 1.4.
        let mut r = sample();
        let g = verdict(&r, FCNTL_PUT, Some(true));
        assert!(g.detail.contains("measured apart"), "{}", g.detail);
        r.side_by_side.push(side(
            Pairing::PutVsPair,
            [
                &[600.0, 610.0, 620.0],
                &[840.0, 850.0, 870.0],
                &[1.38, 1.40, 1.41],
            ],
            None,
        ));
        let g = verdict(&r, FCNTL_PUT, Some(false));
        assert!(g.detail.contains("1.40x (want <= 1.2"), "{}", g.detail);
        assert!(r.markdown().contains("ratio 1.40 (median of 3 rounds"));
        assert_eq!(
            r.json()["side_by_side"]["put_vs_pair"]["ratio_median"],
            1.40
        );

        // Futex put: apart 2.14x, not met; side by side 1.8x, met.
        verdict(&r, FUTEX_PUT, Some(false));
        r.side_by_side.push(side(
            Pairing::FutexPutVsMap,
            [&[150.0], &[270.0], &[1.8]],
            None,
        ));
        let g = verdict(&r, FUTEX_PUT, Some(true));
        assert!(
            g.detail.contains(
                "store-fastmmap-futex put_100 270 ns vs mutex-hashmap put_100 150 ns in \
                 alternating samples: 1.80x"
            ),
            "{}",
            g.detail
        );
        assert_eq!(
            r.json()["side_by_side"]["futex_put_vs_map"]["ratio_median"],
            1.8
        );

        // Gets: apart both under the map, met; side by side the futex kind's 1.1x fails
        // it, whatever the fcntl kind's cells say.
        verdict(&r, GET_100, Some(true));
        r.side_by_side.push(side(
            Pairing::FutexGetVsMap,
            [&[50.0], &[55.0], &[1.1]],
            None,
        ));
        let g = verdict(&r, GET_100, Some(false));
        assert!(
            g.detail.contains("store-fastmmap get_hit_100 100 ns vs mutex-hashmap get_hit_100 120 ns: 0.83x (want <= 1; measured apart")
                && g.detail.contains("store-fastmmap-futex get_hit_100 55 ns vs mutex-hashmap get_hit_100 50 ns in alternating samples: 1.10x"),
            "{}",
            g.detail
        );
        assert!(r.table().contains(
            "Side by side (alternating samples): store-fastmmap-futex get_hit_100 55 ns, \
             mutex-hashmap get_hit_100 50 ns, ratio 1.10"
        ));
        // With the fcntl kind side by side too, 0.9x: the futex kind still fails it, and
        // at 0.96x both meet it.
        r.side_by_side
            .push(side(Pairing::GetVsMap, [&[50.0], &[45.0], &[0.9]], None));
        verdict(&r, GET_100, Some(false));
        for s in &mut r.side_by_side {
            if s.pairing == Pairing::FutexGetVsMap {
                *s = side(Pairing::FutexGetVsMap, [&[50.0], &[48.0], &[0.96]], None);
            }
        }
        let g = verdict(&r, GET_100, Some(true));
        assert!(!g.detail.contains("measured apart"), "{}", g.detail);

        // Reads under a writer are no goal any more, but still measured and shown.
        r.side_by_side.push(side(
            Pairing::ReadsUnderWriter,
            [&[60.0], &[150.0], &[2.5]],
            Some("the writer process ran 5 puts/s while writing"),
        ));
        assert_eq!(r.goals().len(), 9, "the pairing adds no goal");
        assert!(r.markdown().contains(
            "store-fastmmap read_under_writer 150 ns, store-fastmmap reads with no writer 60 ns, \
             ratio 2.50 (median of 1 rounds, range 2.50 - 2.50); the writer process ran 5 puts/s"
        ));
        assert_eq!(
            r.json()["side_by_side"]["reads_under_writer"]["note"],
            "the writer process ran 5 puts/s while writing"
        );

        // A failed side-by-side measurement is shown, and the goal falls back to the cells.
        r.side_by_side[0].result = Err("no room".into());
        assert!(r.table().contains("failed: no room"));
        verdict(&r, FCNTL_PUT, Some(true));
    }
}
