//! The capacity measurement shared by `tests/fastmmap_capacity.rs` and
//! `examples/capacity.rs`: fill a fresh default store and note when live entries go.

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
pub(crate) fn trial(vlen: usize, seed: u64, stop: f64) -> (f64, Vec<(f64, u64)>) {
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
