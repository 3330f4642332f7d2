//! The floor under the flat-`get` goal: the cost of one dependent random load (pointer
//! chasing over one word per cache line, in a random cycle) as the working set grows,
//! on this machine, with no store involved.
//!
//! `cargo run --release -p benches --example memory_latency`
//!
//! A hash lookup that must touch even one cache line the previous access did not predict
//! pays at least this much at each size; store-fastmmap's `get` touches two in a row (the
//! slot, then the record).

use std::hint::black_box;
use std::time::Instant;

/// Working-set sizes in bytes: the lines a `get_at_1k` run touches fit in L2, the
/// 1m-session store of `get_at_1m` (twice the raw data) is about 400 MiB.
const SIZES: [usize; 6] = [100 << 10, 1 << 20, 8 << 20, 64 << 20, 256 << 20, 400 << 20];

fn main() {
    println!("working set   ns per dependent random load (median of 5)");
    for bytes in SIZES {
        let lines = (bytes / 64).max(2);
        let order = benches::permutation(lines, 0x9E37_79B9_7F4A_7C15);
        // Word 0 of each line holds the index of the next line's word 0.
        let mut next = vec![0usize; lines * 8];
        for w in 0..lines {
            next[order[w] * 8] = order[(w + 1) % lines] * 8;
        }
        let steps = 1_000_000;
        let mut p = 0;
        for _ in 0..steps / 10 {
            p = next[p];
        }
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..steps {
                    p = next[p];
                }
                t.elapsed().as_nanos() as f64 / steps as f64
            })
            .collect();
        black_box(p);
        runs.sort_by(f64::total_cmp);
        println!("{:>8.1} MiB   {:>6.1}", bytes as f64 / 1048576.0, runs[2]);
    }
}
