//! The markdown tables for `BENCHMARKS.md`.

use std::fmt::Write as _;

use super::{Cell, Report};

impl Report {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

    #[test]
    fn the_markdown_has_a_row_per_workload() {
        assert!(sample().markdown().contains("| `get_hit_100` |"));
    }
}
