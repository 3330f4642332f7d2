//! The exporter publishes what `stats` says, with the names and labels of the crate docs,
//! and only the elected process publishes the gauges.

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use session_metrics::{Exporter, HostGauges};
use store_api::{Expiry, Key, SessionStore, WriteMode};
use store_memory::MemoryStore;

type Series = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// One snapshot (the debugging recorder resets its counters on every snapshot).
fn take(snap: &Snapshotter) -> Series {
    snap.snapshot().into_vec()
}

/// The value of the series `name` with exactly these labels (besides `engine`).
fn value<'a>(series: &'a Series, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    series.iter().find_map(|(ck, _, _, v)| {
        let key = ck.key();
        let mut got: Vec<(String, String)> = key
            .labels()
            .filter(|l| l.key() != "engine")
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        (key.name() == name && got == want).then_some(v)
    })
}

#[test]
fn counters_and_gauges_follow_the_store_and_only_the_elected_process_has_gauges() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();

    let store = Arc::new(MemoryStore::new());
    let k = Key::new("s").unwrap();
    store
        .put(&k, b"v", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    store.get(&k).unwrap();
    store.get(&Key::new("absent").unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("gauges.lock");
    // Another process of the host holds the election: this one publishes no gauges.
    let holder = std::fs::File::create(&lock).unwrap();
    rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let exporter = Exporter::builder("store-memory")
        .interval(Duration::from_millis(20))
        .host_gauges(HostGauges::Elected(lock.clone()))
        .spawn(store.clone())
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let first = take(&snap);
    assert_eq!(
        value(
            &first,
            "session_store_operations_total",
            &[("op", "read"), ("result", "hit")]
        ),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value(
            &first,
            "session_store_operations_total",
            &[("op", "read"), ("result", "miss")]
        ),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value(
            &first,
            "session_store_operations_total",
            &[("op", "write"), ("result", "ok")]
        ),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value(&first, "session_store_entries", &[]),
        None,
        "not elected"
    );
    // The holder goes away: this process takes over at its next tick.
    drop(holder);
    store
        .put(
            &Key::new("t").unwrap(),
            b"w",
            Expiry::Never,
            WriteMode::Upsert,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let second = take(&snap);
    assert_eq!(
        value(&second, "session_store_entries", &[]),
        Some(&DebugValue::Gauge(2.0.into()))
    );
    assert_eq!(
        value(
            &second,
            "session_store_operations_total",
            &[("op", "write"), ("result", "ok")]
        ),
        Some(&DebugValue::Counter(2))
    );
    drop(exporter);
    assert!(
        Exporter::builder("x")
            .interval(Duration::ZERO)
            .spawn(store)
            .is_err(),
        "a zero interval is refused"
    );
}
