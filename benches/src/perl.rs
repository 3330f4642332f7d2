//! The Perl original, Cache::FastMmap, through a small Perl driver (`perl/driver.pl`)
//! that runs the same workloads in Perl's own loop. Reported apart: it pays Perl's call
//! overhead on every operation.

use std::io::Write;
use std::process::Command;

use crate::{Budget, Summary, Workload};

const DRIVER: &str = include_str!("../perl/driver.pl");

/// One workload's outcome in the Perl driver.
#[derive(Debug, Clone)]
pub struct PerlResult {
    /// The workload.
    pub workload: Workload,
    /// Its summary, or why it did not run.
    pub outcome: Result<Summary, String>,
}

/// Runs the Perl driver.
#[derive(Debug)]
pub struct PerlDriver {
    /// `Cache::FastMmap`'s version.
    pub version: String,
}

impl PerlDriver {
    /// Finds `perl` with `Cache::FastMmap` (Debian: `libcache-fastmmap-perl`).
    ///
    /// # Errors
    /// Why the driver cannot run.
    pub fn find() -> Result<Self, String> {
        let out = Command::new("perl")
            .args(["-MCache::FastMmap", "-e", "print $Cache::FastMmap::VERSION"])
            .output()
            .map_err(|e| format!("perl not found: {e}"))?;
        if out.status.success() {
            Ok(PerlDriver {
                version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            })
        } else {
            Err("Cache::FastMmap not installed (apt-get install libcache-fastmmap-perl)".into())
        }
    }

    /// Runs `workloads` under `budget`; workloads the driver cannot run come back as
    /// errors with the reason.
    ///
    /// # Errors
    /// When the driver itself fails.
    pub fn run(&self, workloads: &[Workload], budget: &Budget) -> Result<Vec<PerlResult>, String> {
        let dir = tempfile::Builder::new()
            .prefix("bench-perl-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let script = dir.path().join("driver.pl");
        std::fs::File::create(&script)
            .and_then(|mut f| f.write_all(DRIVER.as_bytes()))
            .map_err(|e| format!("writing {}: {e}", script.display()))?;
        let names: Vec<String> = workloads.iter().map(Workload::name).collect();
        let out = Command::new("perl")
            .arg(&script)
            .arg(dir.path())
            .arg(budget.samples.to_string())
            .arg(budget.sample_time.as_millis().max(1).to_string())
            .arg(budget.warmup.as_millis().max(1).to_string())
            .args(&names)
            .output()
            .map_err(|e| format!("running perl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "perl driver failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(workloads
            .iter()
            .map(|w| PerlResult {
                workload: *w,
                outcome: parse_line(&text, &w.name()),
            })
            .collect())
    }
}

fn parse_line(text: &str, name: &str) -> Result<Summary, String> {
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .ok_or_else(|| "no result from the driver".to_string())?;
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.get(1) == Some(&"skip") {
        return Err(fields.get(2).unwrap_or(&"skipped").to_string());
    }
    let bad = || format!("unreadable driver line {line:?}");
    let batch: u64 = fields.get(1).and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    let ns: Vec<f64> = fields
        .get(2)
        .ok_or_else(bad)?
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let unexpected: u64 = fields.get(3).and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    if ns.is_empty() {
        return Err(bad());
    }
    Ok(Summary::from_samples(&ns, batch, unexpected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_lines() {
        let text = "get_hit_100\t10\t3.0,1.0,2.0\t0\ntouch\tskip\tno such op\n";
        let s = parse_line(text, "get_hit_100").unwrap();
        assert_eq!((s.median_ns, s.ops_per_sample), (2.0, 10));
        assert_eq!(parse_line(text, "touch").unwrap_err(), "no such op");
        assert!(parse_line(text, "put_100").is_err());
    }
}
