//! Prints the curve of fill level against live entries lost, the way the Perl figures
//! were measured: fill = items x (key + value + 24) / cache_size, random 37-byte keys,
//! default geometry (5 MiB in 10 pages of 512 KiB).
//!
//! `cargo run --release -p store-fastmmap --example capacity -- [TRIALS]`

use store_api::{Expiry, Key, SessionStore, WriteMode};
use store_fastmmap::FastMmapStore;

fn random_key(x: &mut u64) -> Key {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut s = String::from("s:");
    while s.len() < 37 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        s.push(HEX[(*x % 16) as usize] as char);
    }
    Key::new(s).expect("hex keys are valid")
}

/// Fills a fresh default store with `vlen`-byte values up to 100 % fill; returns the fill
/// at the first live eviction and the entries lost at each 5 % step from 50 %.
fn trial(vlen: usize, seed: u64, stop: f64) -> (f64, Vec<(f64, u64)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FastMmapStore::builder()
        .storage(dir.path().join("cap"))
        .open()
        .expect("open");
    let cache = store_fastmmap::DEFAULT_CACHE_SIZE as f64;
    let per = (37 + vlen + 24) as f64;
    let total = (cache / per) as u64;
    let value = vec![0x5a; vlen];
    let mut x = seed | 1;
    let mut first_loss = f64::INFINITY;
    let mut curve = Vec::new();
    let mut next_mark = 0.50;
    for i in 1..=((total as f64 * stop) as u64) {
        let out = store
            .put(
                &random_key(&mut x),
                &value,
                Expiry::Never,
                WriteMode::Upsert,
            )
            .expect("put");
        let fill = i as f64 * per / cache;
        if out.evicted.live().unwrap_or(0) > 0 && first_loss.is_infinite() {
            first_loss = fill;
        }
        if fill >= next_mark - 1e-9 && next_mark < stop + 1e-9 {
            let lost = i - store.stats().expect("stats").entries;
            curve.push((next_mark, lost));
            next_mark += 0.05;
        }
    }
    (first_loss, curve)
}

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
