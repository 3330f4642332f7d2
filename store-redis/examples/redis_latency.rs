//! Median latency of `get` and `put` through the store, next to plain `GET`/`SET` on a
//! bare connection, to show what the scripts cost.
//!
//! ```text
//! redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no &
//! cargo run --release -p store-redis --example redis_latency -- redis://127.0.0.1:6399/0
//! ```

use std::time::{Duration, Instant};

use store_api::{Expiry, Key, SessionStore, WriteMode};
use store_redis::RedisStore;

const ROUNDS: usize = 20_000;

fn median(mut samples: Vec<Duration>) -> u128 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_nanos()
}

fn time(mut op: impl FnMut()) -> u128 {
    for _ in 0..1_000 {
        op();
    }
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                op();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let store = RedisStore::builder(url.as_str())
        .prefix("latency:")
        .build()?;
    let mut con = redis::Client::open(url.as_str())?.get_connection()?;
    println!("| value | store get | store put | bare GET | bare SET |");
    println!("|---|---|---|---|---|");
    for len in [100usize, 4096] {
        let key = Key::new(format!("session:{len}"))?;
        let value = vec![b'x'; len];
        let hour = Expiry::After(Duration::from_secs(3600));
        let put = time(|| {
            store
                .put(&key, &value, hour, WriteMode::Upsert)
                .expect("put");
        });
        let get = time(|| {
            store.get(&key).expect("get").expect("live");
        });
        let bare_key = format!("latency:bare:{len}");
        let set = time(|| {
            let () = redis::cmd("SET")
                .arg(&bare_key)
                .arg(&value)
                .arg("PX")
                .arg(3_600_000)
                .query(&mut con)
                .expect("SET");
        });
        let bare_get = time(|| {
            let _: Vec<u8> = redis::cmd("GET")
                .arg(&bare_key)
                .query(&mut con)
                .expect("GET");
        });
        println!("| {len} B | {get} ns | {put} ns | {bare_get} ns | {set} ns |");
    }
    Ok(())
}
