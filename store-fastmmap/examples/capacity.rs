//! Prints the curve of fill level against live entries lost, the way the Perl figures
//! were measured: fill = items x (key + value + 24) / cache_size, random 37-byte keys,
//! default geometry (5 MiB in 10 pages of 512 KiB).
//!
//! `cargo run --release -p store-fastmmap --example capacity -- [TRIALS]`

#[path = "../tests/support/fill.rs"]
mod fill;

use fill::trial;

fn main() {
    let trials: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for vlen in [100usize, 4096] {
        let mut firsts = Vec::new();
        for t in 0..trials {
            let (first, curve) = trial(vlen, 0x9E37_79B9_7F4A_7C15 ^ (t * 7919), 1.0);
            if t == 0 {
                println!("value {vlen} B: fill -> live entries lost");
                for (f, lost) in &curve {
                    println!("  {:>4.0} %  {lost}", f * 100.0);
                }
            }
            firsts.push(first);
        }
        firsts.sort_by(f64::total_cmp);
        println!(
            "value {vlen} B: first live loss at fill min {:.1} % / median {:.1} % over {trials} files",
            firsts[0] * 100.0,
            firsts[firsts.len() / 2] * 100.0
        );
    }
}
