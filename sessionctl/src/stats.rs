//! `stats` (text, `--json`, `--prometheus`) and `watch`.

use std::io::Write;
use std::time::Instant;

use serde_json::json;
use store_api::Stats;

use crate::Failure;
use crate::target::Target;

/// Upper bounds of the page-fill histogram's buckets.
const FILL_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// What `stats` reports, gathered once for every format.
struct Report {
    engine: &'static str,
    stats: Stats,
    /// store-fastmmap: the file's geometry, fills and file-wide counters.
    file: Option<FileReport>,
    /// store-redis: live sessions under the prefix, counted by a scan.
    sessions: Option<u64>,
}

struct FileReport {
    path: String,
    page_size: u32,
    num_pages: u32,
    file_len: u64,
    lock_kind: store_fastmmap::LockKind,
    fills: Vec<f64>,
    counters: store_fastmmap::FileCounters,
}

impl FileReport {
    /// Pages per fill bucket (not cumulative).
    fn histogram(&self) -> [u64; 10] {
        let mut h = [0u64; 10];
        for &f in &self.fills {
            let i = FILL_BUCKETS
                .iter()
                .position(|&b| f <= b)
                .unwrap_or(FILL_BUCKETS.len() - 1);
            h[i] += 1;
        }
        h
    }
}

fn gather(t: &Target) -> Result<Report, Failure> {
    let stats = t.store().stats()?;
    let (file, sessions) = match t {
        Target::FastMmap(s) => {
            let fills = s.page_fills().iter().map(|p| p.ratio()).collect();
            let f = FileReport {
                path: s.path().display().to_string(),
                page_size: s.page_size(),
                num_pages: s.num_pages(),
                // The file's own length: the futex kind's lock table follows the pages.
                file_len: std::fs::metadata(s.path()).map_or(0, |m| m.len()),
                lock_kind: s.lock_kind(),
                fills,
                counters: s.file_counters(),
            };
            (Some(f), None)
        }
        Target::Redis(s) => {
            let n = store_api::SessionStore::scan(s, &store_api::ScanOptions::new(), &mut |_| {
                std::ops::ControlFlow::Continue(())
            })?;
            (None, Some(n))
        }
    };
    Ok(Report {
        engine: t.engine(),
        stats,
        file,
        sessions,
    })
}

/// `stats`.
pub(crate) fn stats(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let r = gather(t)?;
    let text = if m.get_flag("json") {
        json_of(&r).to_string() + "\n"
    } else if m.get_flag("prometheus") {
        prometheus(&r)
    } else {
        human(&r)
    };
    out.write_all(text.as_bytes()).map_err(Failure::output)
}

fn json_of(r: &Report) -> serde_json::Value {
    let s = &r.stats;
    let mut v = json!({
        "engine": r.engine,
        "entries": s.entries,
        "bytes_used": s.bytes_used,
        "capacity": s.capacity,
    });
    if let Some(f) = &r.file {
        v["path"] = json!(f.path);
        v["page_size"] = json!(f.page_size);
        v["num_pages"] = json!(f.num_pages);
        v["file_len"] = json!(f.file_len);
        v["lock_kind"] = json!(f.lock_kind.name());
        v["page_fill_histogram"] = json!(
            FILL_BUCKETS
                .iter()
                .zip(f.histogram())
                .map(|(le, n)| json!({"le": le, "pages": n}))
                .collect::<Vec<_>>()
        );
        v["evicted_live"] = json!(f.counters.evicted_live);
        v["evicted_expired"] = json!(f.counters.evicted_expired);
        v["repairs"] = json!(f.counters.repairs);
        v["lost_in_repair"] = json!(f.counters.lost_in_repair);
    }
    if let Some(n) = r.sessions {
        v["sessions"] = json!(n);
        v["evicted_live"] = json!(s.evicted_live);
    }
    v
}

fn human(r: &Report) -> String {
    let s = &r.stats;
    let mut o = String::new();
    let mut line = |k: &str, v: String| o.push_str(&format!("{k:<22} {v}\n"));
    line("engine", r.engine.to_owned());
    if let Some(f) = &r.file {
        line("file", f.path.clone());
        line(
            "geometry",
            format!(
                "{} pages of {} bytes ({} bytes in all)",
                f.num_pages, f.page_size, f.file_len
            ),
        );
        line("lock kind", f.lock_kind.name().to_owned());
    }
    if let Some(n) = r.sessions {
        line(
            "live sessions",
            format!("{n} (under the prefix, by a scan)"),
        );
        line(
            "keys in the database",
            format!("{} (every prefix's)", s.entries),
        );
        line("server memory", format!("{} bytes", s.bytes_used));
        line("server evictions", s.evicted_live.to_string());
    } else {
        line(
            "entries",
            format!("{} (expired ones not yet reclaimed included)", s.entries),
        );
        let cap = s.capacity.map_or(String::new(), |c| {
            format!(
                " of {c} ({:.1} %)",
                100.0 * s.bytes_used as f64 / c.max(1) as f64
            )
        });
        line("bytes used", format!("{}{cap}", s.bytes_used));
    }
    if let Some(f) = &r.file {
        let c = f.counters;
        line("evicted (live)", c.evicted_live.to_string());
        line("evicted (expired)", c.evicted_expired.to_string());
        line("pages repaired", c.repairs.to_string());
        line("records lost in repair", c.lost_in_repair.to_string());
        o.push_str(
            "page fill, bytes or slots (pages per bucket; the fullest evict on their next write)\n",
        );
        let h = f.histogram();
        let most = h.iter().copied().max().unwrap_or(0).max(1);
        let mut lo = 0;
        for (b, n) in FILL_BUCKETS.iter().zip(h) {
            let bar = "#".repeat(((n * 40).div_ceil(most)) as usize);
            o.push_str(&format!(
                "  {:>3}-{:>3} % {n:>8} {bar}\n",
                lo,
                (b * 100.0).round() as u32
            ));
            lo = (b * 100.0).round() as u32;
        }
    }
    o
}

/// The Prometheus text exposition format (version 0.0.4).
fn prometheus(r: &Report) -> String {
    let s = &r.stats;
    let e = r.engine;
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in samples {
            o.push_str(&format!("{name}{{engine=\"{e}\"{labels}}} {v}\n"));
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    match r.sessions {
        Some(n) => metric(
            "session_store_entries",
            "gauge",
            "Live sessions under the store's prefix.",
            &one(n),
        ),
        None => metric(
            "session_store_entries",
            "gauge",
            "Entries stored, expired ones not yet reclaimed included.",
            &one(s.entries),
        ),
    }
    metric(
        "session_store_bytes",
        "gauge",
        "Bytes in use (store-redis: the whole server's).",
        &one(s.bytes_used),
    );
    if let Some(c) = s.capacity {
        metric(
            "session_store_capacity_bytes",
            "gauge",
            "Capacity in bytes.",
            &one(c),
        );
    }
    if let Some(f) = &r.file {
        let c = f.counters;
        metric(
            "session_store_evictions_total",
            "counter",
            "Entries evicted to make room, by every process since the file was initialised.",
            &[
                (",kind=\"live\"".into(), c.evicted_live as f64),
                (",kind=\"expired\"".into(), c.evicted_expired as f64),
            ],
        );
        metric(
            "session_store_repairs_total",
            "counter",
            "Pages repaired since the file was initialised.",
            &one(c.repairs),
        );
        metric(
            "session_store_lost_in_repair_total",
            "counter",
            "Records repairs dropped since the file was initialised.",
            &one(c.lost_in_repair),
        );
        let h = f.histogram();
        let mut samples = Vec::new();
        let mut cum = 0;
        for (b, n) in FILL_BUCKETS.iter().zip(h) {
            cum += n;
            samples.push((format!(",le=\"{b}\""), cum as f64));
        }
        samples.push((",le=\"+Inf\"".into(), cum as f64));
        let name = "session_store_page_fill_ratio";
        o.push_str(&format!(
            "# HELP {name} Pages by how full they are (bytes or slots, the larger).\n# TYPE {name} histogram\n"
        ));
        for (labels, v) in samples {
            o.push_str(&format!("{name}_bucket{{engine=\"{e}\"{labels}}} {v}\n"));
        }
        let sum: f64 = f.fills.iter().sum();
        o.push_str(&format!("{name}_sum{{engine=\"{e}\"}} {sum}\n"));
        o.push_str(&format!(
            "{name}_count{{engine=\"{e}\"}} {}\n",
            f.fills.len()
        ));
    } else {
        metric(
            "session_store_evictions_total",
            "counter",
            "Keys the server evicted under maxmemory since it started.",
            &[(",kind=\"live\"".into(), s.evicted_live as f64)],
        );
    }
    o
}

/// What one `watch` sample reads.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    entries: u64,
    /// Writes since watching started (fastmmap: the pages' write clocks, which wrap at
    /// 2^32, accumulated) or commands since the server started (redis).
    ops: u64,
    hits: Option<(u64, u64)>,
    evictions: u64,
}

/// The pages' write clocks as last read, and the writes they have counted since.
#[derive(Debug, Default)]
struct Clocks {
    last: Vec<u32>,
    writes: u64,
}

fn sample(t: &Target, clocks: &mut Clocks) -> Result<Sample, Failure> {
    match t {
        Target::FastMmap(s) => {
            let fills = s.page_fills();
            if clocks.last.len() != fills.len() {
                clocks.last = fills.iter().map(|p| p.writes).collect();
            }
            for (p, last) in fills.iter().zip(clocks.last.iter_mut()) {
                clocks.writes += u64::from(p.writes.wrapping_sub(*last));
                *last = p.writes;
            }
            let c = s.file_counters();
            Ok(Sample {
                entries: fills.iter().map(|p| u64::from(p.entries)).sum(),
                ops: clocks.writes,
                hits: None,
                evictions: c.evicted_live + c.evicted_expired,
            })
        }
        Target::Redis(s) => {
            let c = s.server_counters()?;
            Ok(Sample {
                entries: c.db_keys,
                ops: c.commands,
                hits: Some((c.keyspace_hits, c.keyspace_misses)),
                evictions: c.evicted_keys,
            })
        }
    }
}

/// `watch`: one line per interval, like `redis-cli --stat`.
pub(crate) fn watch(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let interval = crate::duration::parse(m.get_one::<String>("interval").expect("defaulted"))
        .map_err(Failure::new)?;
    if interval.is_zero() {
        return Err(Failure::new("--interval must be more than zero"));
    }
    let count = m.get_one::<u64>("count").copied();
    let w = |out: &mut dyn Write, s: String| {
        out.write_all(s.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Failure::output)
    };
    let (ops_name, hit_note) = match t {
        Target::FastMmap(_) => (
            "writes/s",
            "hit rate: n/a (reads leave no trace in the file)",
        ),
        Target::Redis(_) => ("commands/s", "hit rate: the server's, every client's"),
    };
    w(
        out,
        format!("# {} every {interval:?}; {hit_note}\n", t.engine()),
    )?;
    w(
        out,
        format!(
            "{:>12} {:>12} {:>10} {:>12}\n",
            "entries", ops_name, "hit rate", "evictions/s"
        ),
    )?;
    let mut clocks = Clocks::default();
    let mut last = sample(t, &mut clocks)?;
    let mut at = Instant::now();
    let mut lines = 0u64;
    while count.is_none_or(|c| lines < c) {
        std::thread::sleep(interval);
        let s = sample(t, &mut clocks)?;
        let secs = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        let ops = s.ops.saturating_sub(last.ops);
        let rate = match (s.hits, last.hits) {
            (Some((h, m)), Some((lh, lm))) => {
                let (dh, dm) = (h.saturating_sub(lh), m.saturating_sub(lm));
                if dh + dm == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.1} %", 100.0 * dh as f64 / (dh + dm) as f64)
                }
            }
            _ => "n/a".to_owned(),
        };
        let ev = s.evictions.saturating_sub(last.evictions) as f64 / secs;
        w(
            out,
            format!(
                "{:>12} {:>12.0} {:>10} {:>12.1}\n",
                s.entries,
                ops as f64 / secs,
                rate,
                ev
            ),
        )?;
        last = s;
        lines += 1;
    }
    Ok(())
}
