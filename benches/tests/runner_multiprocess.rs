//! The runner end to end on a tiny budget: worker processes start, share the fastmmap
//! file (of either lock kind), report, and every selected cell comes back measured with
//! expected results.

use benches::worker::WorkerCmd;
use benches::{Budget, Cell, EngineId, Mode, Pairing, Runner, RunnerOptions, Workload};

#[test]
fn workers_share_the_store_and_every_cell_is_measured() {
    let mut budget = Budget::for_mode(Mode::Quick);
    budget.slow_samples = 2;
    let samples = budget.samples;
    // The futex lock kind is Linux only; elsewhere the runner lists it as skipped.
    let futex = cfg!(target_os = "linux");
    let mut engines = vec![EngineId::Fastmmap, EngineId::HashMap];
    if futex {
        engines.insert(1, EngineId::FastmmapFutex);
    }
    let workloads = vec![
        Workload::GetHit { value_len: 100 },
        Workload::PurgeExpired { entries: 2_000 },
        Workload::Throughput { workers: 2 },
        Workload::ReadUnderWriter,
    ];
    let report = Runner::new(RunnerOptions {
        budget,
        engines: engines.clone(),
        workloads,
        redis_url: "redis://127.0.0.1:1/".into(),
        worker: WorkerCmd {
            program: env!("CARGO_BIN_EXE_bench-worker").into(),
            prefix: Vec::new(),
        },
        perl: false,
        command: "test".into(),
    })
    .run();
    for row in &report.rows {
        match (&row.cell, row.engine.as_str(), row.workload.as_str()) {
            (Cell::Skipped(_), "mutex-hashmap", "mp_2") => {}
            (Cell::Measured { summary, .. }, _, _) => {
                assert_eq!(summary.unexpected, 0, "{} {}", row.engine, row.workload);
                assert!(summary.median_ns > 0.0);
            }
            (Cell::Skipped(why), e, w) => panic!("{e} {w} skipped: {why}"),
        }
    }
    assert!(report.fcntl_pair.is_some());
    assert_eq!(report.rows.len(), 4 * engines.len());
    // The pairings the selection allows, each measured: get against the map (each kind),
    // and the fcntl kind's reads with and without a writer process (resumed before each
    // contended sample, paused before each quiet one).
    let pairings: Vec<Pairing> = report.side_by_side.iter().map(|s| s.pairing).collect();
    let mut want = vec![Pairing::GetVsMap, Pairing::ReadsUnderWriter];
    if futex {
        want.push(Pairing::FutexGetVsMap);
    }
    assert_eq!(pairings, want);
    for s in &report.side_by_side {
        let m = s
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{:?}: {e}", s.pairing));
        assert_eq!((m.a.unexpected, m.b.unexpected), (0, 0), "{:?}", s.pairing);
        assert_eq!(m.ratio.samples, samples, "{:?}", s.pairing);
        assert!(m.ratio.median_ns > 0.0);
        // The writer wrote: the note gives its rate over the time it was writing.
        if s.pairing == Pairing::ReadsUnderWriter {
            let note = s.note.as_deref().expect("the writer's rate");
            let rate = note
                .split_whitespace()
                .find_map(|t| t.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no rate in {note:?}"));
            assert!(rate > 0.0, "{note}");
        }
    }
}
