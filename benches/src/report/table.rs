//! The terminal table: workloads down, engines across.

use std::fmt::Write as _;

use super::{Cell, Report, ns};

impl Report {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;

    #[test]
    fn the_table_shows_medians_and_ratios() {
        let r = sample();
        assert!(r.table().contains("4.00x"), "{}", r.table());
    }
}
