//! The conformance suite (issue 4) against `RedisStore` on a real `redis-server`.
//!
//! One server is shared by the harnesses alive at a time (each harness gets its own key
//! prefix) and killed when the last one is dropped. The expiry and model behaviours run
//! on a `ManualClock` through [`RedisStoreBuilder::clock`](store_redis::RedisStoreBuilder::clock);
//! server-clock expiry is covered by `redis_expiry.rs`. Skipped, with the reason printed:
//! the bounded-store behaviours (the engine is unbounded; Redis's `maxmemory` policy
//! decides) and the multi-process ones (no worker binary: every client of a Redis server
//! is already another process, and `redis_concurrency.rs` runs several independent
//! store objects).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use conformance::{Corruption, Harness, Size, Spec, Unsupported};
use store_redis::RedisStore;
use support::RedisServer;

/// One store: a prefix on the shared server.
struct Redis {
    server: Arc<RedisServer>,
    prefix: String,
    spec: Spec,
}

fn shared_server() -> Result<Arc<RedisServer>, Unsupported> {
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = shared.upgrade() {
        return Ok(server);
    }
    let server = Arc::new(
        RedisServer::start("redis_conformance", &[])
            .ok_or_else(|| Unsupported::new("redis-server is not installed"))?,
    );
    *shared = Arc::downgrade(&server);
    Ok(server)
}

impl Redis {
    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.server.url())
            .and_then(|c| c.get_connection())
            .expect("a direct connection to the test server")
    }
}

impl Harness for Redis {
    type Store = RedisStore;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        if spec.size == Size::Small {
            return Err(Unsupported::new(
                "store-redis is unbounded: Redis's maxmemory policy evicts, not the engine",
            ));
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Ok(Redis {
            server: shared_server()?,
            prefix: format!("conf{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
            spec: spec.clone(),
        })
    }

    fn open(&self) -> store_api::Result<RedisStore> {
        let mut b = self.server.builder(&self.prefix);
        if let Some(clock) = &self.spec.clock {
            b = b.clock(Arc::new(clock.clone()));
        }
        if let Some(ttl) = self.spec.default_ttl {
            b = b.default_ttl(ttl);
        }
        b.build()
    }

    fn unreachable(spec: &Spec) -> Result<store_api::Result<RedisStore>, Unsupported> {
        let _ = spec;
        // A loopback port nobody listens on: take one and close it again.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Unsupported::new(format!("no free loopback port: {e}")))?
            .port();
        Ok(RedisStore::builder(format!("redis://127.0.0.1:{port}/0"))
            .connect_timeout(std::time::Duration::from_millis(200))
            .build())
    }

    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        let con = &mut self.connection();
        if how == Corruption::Incompatible {
            let () = redis::cmd("SET")
                .arg(format!("{}format", self.prefix))
                .arg("store-redis 999")
                .query(con)
                .expect("SET");
            return Ok(());
        }
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}s:*", self.prefix))
            .query(con)
            .expect("KEYS");
        for (i, k) in keys.iter().enumerate() {
            let () = match how {
                // Garbage over part of the header of every other entry.
                Corruption::Scribble if i % 2 == 0 => redis::cmd("SETRANGE")
                    .arg(k)
                    .arg(i % 40)
                    .arg(b"\xff\x00garbage")
                    .query::<i64>(con)
                    .map(drop)
                    .expect("SETRANGE"),
                // Every entry cut short inside its header.
                Corruption::Truncate => {
                    let head: Vec<u8> = redis::cmd("GETRANGE")
                        .arg(k)
                        .arg(0)
                        .arg(i % 44)
                        .query(con)
                        .expect("GETRANGE");
                    redis::cmd("SET").arg(k).arg(head).query(con).expect("SET")
                }
                _ => (),
            };
        }
        Ok(())
    }
}

conformance::suite!(Redis);
