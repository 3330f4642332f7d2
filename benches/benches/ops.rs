//! Criterion benches: every workload of `benches::Workload` on every engine this build
//! has, one group per workload, one function per engine.
//!
//! `cargo bench -p benches --bench ops -- --noplot` (add `--features peers` for LMDB and
//! Redis). `cargo test -p benches --benches` runs each once as a smoke test, on small
//! stores. The multi-process throughput workloads need process start-up per sample and
//! live only in the `compare` runner.

use std::time::Duration;

use benches::worker::WorkerCmd;
use benches::{BackgroundWriter, EngineId, FcntlPair, Workload, WorkloadKind};
use criterion::{BatchSize, Criterion, criterion_group};

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whether `id` may pass criterion's name filter: setting up a store of a million
/// sessions for a benchmark the filter drops would waste minutes. Plain filters (with
/// `|` alternatives) are matched as substrings; anything else regex-like runs everything
/// and lets criterion decide.
fn wanted(id: &str) -> bool {
    match name_filter(std::env::args().skip(1)) {
        None => true,
        Some(f) if f.contains(|c: char| "^$.*+?()[]{}\\".contains(c)) => true,
        Some(f) => f.split('|').any(|part| id.contains(part)),
    }
}

/// Criterion's positional name filter among `args`: the first argument that is neither
/// an option nor the value of an option that takes one (`--save-baseline main`).
fn name_filter(args: impl IntoIterator<Item = String>) -> Option<String> {
    const TAKES_VALUE: [&str; 17] = [
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
    ];
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if TAKES_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// The private `redis-server`, stopped at the end of `main`.
#[cfg(feature = "peers")]
static LOCAL_REDIS: std::sync::Mutex<Option<benches::LocalRedis>> = std::sync::Mutex::new(None);

/// `$BENCH_REDIS_URL`, else a private `redis-server` on loopback when one is installed.
fn redis_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("BENCH_REDIS_URL") {
            return url;
        }
        #[cfg(feature = "peers")]
        if let Some(local) = benches::LocalRedis::start() {
            let url = local.url();
            *LOCAL_REDIS.lock().unwrap_or_else(|e| e.into_inner()) = Some(local);
            return url;
        }
        "redis://127.0.0.1:6379/".to_string()
    })
    .clone()
}

fn engines() -> Vec<EngineId> {
    EngineId::ALL
        .into_iter()
        .filter(|e| match e.available(&redis_url()) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("skipping {e}: {why}");
                false
            }
        })
        .collect()
}

fn ops(c: &mut Criterion) {
    let (max_sessions, purge) = if bench_mode() {
        (1_000_000, 100_000)
    } else {
        (10_000, 10_000)
    };
    let tag = format!("criterion-{}", std::process::id());
    let worker = WorkerCmd {
        program: env!("CARGO_BIN_EXE_bench-worker").into(),
        prefix: Vec::new(),
    };
    let engines = engines();
    for w in Workload::standard(max_sessions, purge, 0) {
        let keys = w.keys(&tag);
        let value = w.value();
        let mut group = c.benchmark_group(w.name());
        for &e in &engines {
            if !wanted(&format!("{}/{}", w.name(), e.name())) {
                continue;
            }
            let opened = e.create(w.sizing(), &redis_url()).expect("open");
            let store = &*opened.store;
            w.setup(store, &keys).expect("setup");
            let mut buf = Vec::new();
            match w.kind() {
                WorkloadKind::Op => {
                    let mut i = 0u64;
                    group.bench_function(e.name(), |b| {
                        b.iter(|| {
                            i += 1;
                            w.op(store, &keys, &value, i, &mut buf).expect("op")
                        });
                    });
                }
                WorkloadKind::Purge => {
                    group.bench_function(e.name(), |b| {
                        b.iter_batched(
                            || w.before_sample(store, &keys).expect("re-add expired"),
                            |()| store.purge_expired().expect("purge"),
                            BatchSize::PerIteration,
                        );
                    });
                }
                WorkloadKind::UnderWriter => {
                    let writer = BackgroundWriter::start(e, &opened, &w, &keys, &tag, &worker)
                        .expect("writer");
                    let mut i = 0u64;
                    group.bench_function(e.name(), |b| {
                        b.iter(|| {
                            i += 1;
                            w.op(store, &keys, &value, i, &mut buf).expect("op")
                        });
                    });
                    writer.stop().expect("writer");
                }
                WorkloadKind::MultiProcess => {}
            }
        }
        group.finish();
    }
}

fn fcntl_pair(c: &mut Criterion) {
    let pair = FcntlPair::new().expect("temp file");
    let mut i = 0;
    c.bench_function("baseline/fcntl_ofd_lock_unlock", |b| {
        b.iter(|| {
            i += 1;
            pair.op(i).expect("fcntl");
        });
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = fcntl_pair, ops
}
fn main() {
    // `criterion_main!`, plus stopping the private Redis server.
    benches();
    Criterion::default().configure_from_args().final_summary();
    #[cfg(feature = "peers")]
    drop(LOCAL_REDIS.lock().unwrap_or_else(|e| e.into_inner()).take());
}
