//! Criterion benches: every workload of `benches::Workload` on every engine this build
//! has, one group per workload, one function per engine.
//!
//! `cargo bench -p benches --bench ops -- --noplot` (add `--features peers` for LMDB and
//! Redis). `cargo test -p benches --benches` runs each once as a smoke test, on small
//! stores. The multi-process throughput workloads need process start-up per sample and
//! live only in the `compare` runner.

use std::cell::OnceCell;
use std::time::Duration;

use benches::worker::WorkerCmd;
use benches::{BackgroundWriter, EngineId, FcntlPair, Workload, WorkloadKind, WriterTarget};
use criterion::{BatchSize, Criterion, criterion_group};

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
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
        if w.kind() == WorkloadKind::MultiProcess {
            continue;
        }
        // Keys and stores are set up inside the benchmark closure, which criterion calls
        // only for the benchmarks its name filter keeps: setting up a store of a million
        // sessions for a benchmark the filter drops would waste minutes.
        let keys = OnceCell::new();
        let keys = || keys.get_or_init(|| w.keys(&tag));
        let value = w.value();
        let mut group = c.benchmark_group(w.name());
        for &e in &engines {
            let prepared = OnceCell::new();
            let (mut i, mut buf) = (0u64, Vec::new());
            group.bench_function(e.name(), |b| {
                let (opened, _writer) = prepared.get_or_init(|| {
                    let opened = e.create(w.sizing(), &redis_url()).expect("open");
                    w.setup(&*opened.store, keys()).expect("setup");
                    let writer = (w.kind() == WorkloadKind::UnderWriter).then(|| {
                        BackgroundWriter::start(&WriterTarget {
                            engine: e,
                            opened: &opened,
                            keys: keys(),
                            tag: &tag,
                            cmd: &worker,
                        })
                        .expect("writer")
                    });
                    (opened, writer)
                });
                let store = &*opened.store;
                if w.kind() == WorkloadKind::Purge {
                    b.iter_batched(
                        || w.before_sample(store, keys()).expect("re-add expired"),
                        |()| store.purge_expired().expect("purge"),
                        BatchSize::PerIteration,
                    );
                } else {
                    // Looked up once, outside the timed loop, as the runner's loop does.
                    let keys = keys();
                    b.iter(|| {
                        i += 1;
                        w.op(store, keys, &value, i, &mut buf).expect("op")
                    });
                }
            });
            if let Some((_, Some(writer))) = prepared.into_inner() {
                writer.stop().expect("writer");
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
