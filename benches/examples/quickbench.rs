//! A quick side-by-side timing (not criterion; the `benches` crate has the real ones):
//! `get` of a 100 B hit (a new `Vec`) and `get_into` (a reused buffer) against `get` plus
//! `clone` on a `Mutex<HashMap>` (and `get_into` against the map's copy into a reused
//! buffer), and `put` against a bare OFD fcntl lock + unlock pair on
//! the same file (the same commands as the store's), each in interleaved rounds so that
//! both halves of a ratio see the same phase of a noisy VM; `put` is timed with no expiry
//! and with a relative one (which reads the clock).
//!
//! Differences from the `benches` crate's runner, whose figures are the ones quoted: the
//! entries read here have no expiry, so neither side reads a clock on `get` (the runner
//! gives every entry a TTL, and both sides check it against the coarse clock); the keys
//! are read in order, not shuffled. It lives in `benches`, not in store-fastmmap, whose
//! examples are built with its crash-test `failpoints` feature (its dev-dependency on
//! itself): here the engine is built as users get it.
//!
//! `cargo run --release -p benches --example quickbench`

use std::collections::HashMap;
use std::hint::black_box;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::Instant;

use store_api::{Expiry, Key, SessionStore, WriteMode};
use store_fastmmap::FastMmapStore;

fn time<F: FnMut(u64)>(name: &str, n: u64, mut f: F) -> f64 {
    for i in 0..n / 10 {
        f(i);
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name:<44} {best:>8.0} ns");
    best
}

/// Nanoseconds per call of `f` over `batch` calls: generic, so that the call is inlined
/// into the loop rather than made through a pointer (which would add the same few ns to
/// both halves of every ratio and pull it towards 1).
fn timed(batch: u64, mut f: impl FnMut(u64)) -> f64 {
    let t = Instant::now();
    for i in 0..batch {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / batch as f64
}

fn main() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bench");
    let store = FastMmapStore::builder()
        .storage(&path)
        .cache_size(
            std::env::var("QUICKBENCH_CACHE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(5 << 20),
        )
        .open()
        .expect("open");
    let nkeys: usize = std::env::var("QUICKBENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let keys: Vec<Key> = (0..nkeys)
        .map(|i| Key::new(format!("session:{i:040x}")).expect("key"))
        .collect();
    let value = vec![7u8; 100];
    let mut map = HashMap::new();
    for k in &keys {
        store
            .put(k, &value, Expiry::Never, WriteMode::Upsert)
            .expect("put");
        map.insert(k.as_str().to_owned(), value.clone());
    }
    let map = Mutex::new(map);
    if nkeys != 1000 {
        // Flatness check: random gets over all keys.
        let mut buf = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        time(
            &format!("get_into over {nkeys} keys, random order"),
            1_000_000,
            |_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(
                    store
                        .get_into(&keys[(x % nkeys as u64) as usize], &mut buf)
                        .expect("get"),
                );
            },
        );
        time(
            &format!("Mutex<HashMap> get over {nkeys} keys, random"),
            1_000_000,
            |_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = &keys[(x % nkeys as u64) as usize];
                black_box(map.lock().expect("lock").get(k.as_str()).cloned());
            },
        );
        return;
    }
    let n = 200_000;
    // Warm up: touch every page of the (sparse) file so that page faults of first use
    // are not timed.
    for i in 0..1_000_000usize {
        store
            .put(&keys[i % 1000], &value, Expiry::Never, WriteMode::Upsert)
            .expect("put");
    }
    if std::env::var_os("QUICKBENCH_GET_ONLY").is_some() {
        let mut buf = Vec::new();
        for i in 0..20_000_000usize {
            black_box(store.get_into(&keys[i % 1000], &mut buf).expect("get"));
        }
        return;
    }
    if let Some(worker) = std::env::var_os("QUICKBENCH_WORKER") {
        // `get` while another process writes to the same page continuously (use a
        // one-page store: QUICKBENCH_CACHE=524288).
        let mut buf = Vec::new();
        let quiet = time("get_into, no writer", n, |i| {
            black_box(
                store
                    .get_into(&keys[(i % 1000) as usize], &mut buf)
                    .expect("get"),
            );
        });
        let mut child = std::process::Command::new(worker)
            .args([
                "write",
                path.to_str().expect("utf-8"),
                "w",
                "50",
                "100000000",
                "100",
            ])
            .spawn()
            .expect("spawn the worker");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let busy = time("get_into, another process writing the page", n, |i| {
            black_box(
                store
                    .get_into(&keys[(i % 1000) as usize], &mut buf)
                    .expect("get"),
            );
        });
        let _ = child.kill();
        let _ = child.wait();
        println!("ratio contended/uncontended {:.2}", busy / quiet);
        return;
    }
    let only_put = std::env::var_os("QUICKBENCH_PUT_ONLY").is_some();
    if only_put {
        for i in 0..2_000_000usize {
            store
                .put(&keys[i % 1000], &value, Expiry::Never, WriteMode::Upsert)
                .expect("put");
        }
        return;
    }
    // Interleaved rounds, as for the puts below: each round times a batch of each, and
    // the ratios are medians of the per-round ratios.
    let batch = 20_000u64;
    let mut buf = Vec::with_capacity(256);
    let (mut maps, mut gets, mut intos) = (Vec::new(), Vec::new(), Vec::new());
    let mut mintos = Vec::new();
    let mut mbuf: Vec<u8> = Vec::with_capacity(256);
    let (mut get_ratio, mut into_ratio, mut into_into) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..21 {
        let m = timed(batch, |i| {
            let k = &keys[(i % 1000) as usize];
            black_box(map.lock().expect("lock").get(k.as_str()).cloned());
        });
        let g = timed(batch, |i| {
            black_box(store.get(&keys[(i % 1000) as usize]).expect("get"));
        });
        let gi = timed(batch, |i| {
            black_box(
                store
                    .get_into(&keys[(i % 1000) as usize], &mut buf)
                    .expect("get"),
            );
        });
        let mi = timed(batch, |i| {
            let k = &keys[(i % 1000) as usize];
            let g = map.lock().expect("lock");
            let v = g.get(k.as_str()).expect("present");
            mbuf.clear();
            mbuf.extend_from_slice(v);
            black_box(&mbuf);
        });
        maps.push(m);
        mintos.push(mi);
        gets.push(g);
        intos.push(gi);
        get_ratio.push(g / m);
        into_ratio.push(gi / m);
        into_into.push(gi / mi);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (name, v) in [
        (
            "Mutex<HashMap<String, Vec<u8>>> get 100 B (clone)",
            &mut maps,
        ),
        ("Mutex<HashMap> get into a reused buffer", &mut mintos),
        ("fastmmap get 100 B (new Vec)", &mut gets),
        ("fastmmap get_into 100 B (reused buffer)", &mut intos),
    ] {
        println!("{name:<44} {:>8.0} ns", median(v));
    }
    let (g, gi, ii) = (
        median(&mut get_ratio),
        median(&mut into_ratio),
        median(&mut into_into),
    );
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    // The same calls as the store's page lock, made as it makes them (a waiting lock, a
    // non-waiting unlock; the raw system call on 64-bit Linux, see `--example fcntl_cost`).
    let pair = || {
        store_fastmmap::bench::fcntl_lock_unlock(f.as_fd(), 4096, 4096).expect("fcntl pair");
    };
    let put = |i: u64, expiry: Expiry| {
        black_box(
            store
                .put(
                    &keys[(i % 1000) as usize],
                    &value,
                    expiry,
                    WriteMode::Upsert,
                )
                .expect("put"),
        );
    };
    // Interleaved rounds, so that the pair and the puts see the same phase of a noisy VM;
    // the ratio is the median of the per-round ratios.
    let (mut pairs, mut never, mut after) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..21 {
        let l = timed(batch, |_| pair());
        let n = timed(batch, |i| put(i, Expiry::Never));
        let a = timed(batch, |i| {
            put(i, Expiry::After(std::time::Duration::from_secs(3600)))
        });
        pairs.push(l);
        never.push(n / l);
        after.push(a / l);
    }
    let l = median(&mut pairs);
    println!(
        "{:<44} {l:>8.0} ns",
        "bare OFD fcntl lock + unlock pair (median)"
    );
    println!(
        "ratios: get/mutex {:.2}, get_into/mutex {:.2}, get_into/mutex into a buffer {:.2}, \
         put/fcntl pair {:.2} (no expiry), {:.2} (expiry after 1 h)",
        g,
        gi,
        ii,
        median(&mut never),
        median(&mut after)
    );
}
