//! The conformance suite's [`Harness`] for `RedisStore`, shared by
//! `tests/redis_conformance.rs` and the worker example `redis_conformance_worker`.
//!
//! One server is shared by the harnesses alive at a time (each harness gets its own key
//! prefix) and killed when the last one is dropped. A worker process rebuilds the
//! harness from the server's URL and the prefix and never starts a server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use std::time::Duration;

use super::RedisServer;
use conformance::{Corruption, Harness, Size, Spec, Unsupported};
use store_redis::RedisStore;

/// One store: a prefix on the shared server.
pub struct Redis {
    /// The server this harness keeps alive; `None` in a worker process.
    server: Option<Arc<RedisServer>>,
    url: String,
    prefix: String,
    spec: Spec,
}

/// Name of the worker example, built by `cargo test` next to the test binaries.
const WORKER: &str = "redis_conformance_worker";

/// The worker example's path: `target/<profile>/examples/` beside the test binary's
/// `target/<profile>/deps/`. It exists when `cargo test` built every target; a run of
/// one test target (`--test redis_conformance`) does not build it, and the
/// multi-process behaviours are then skipped.
pub fn worker_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps/<test>");
        profile_dir
            .join("examples")
            .join(WORKER)
            .to_string_lossy()
            .into_owned()
    })
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
        redis::Client::open(self.url.as_str())
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
        let server = shared_server()?;
        Ok(Redis {
            url: server.url(),
            server: Some(server),
            prefix: format!("conf{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
            spec: spec.clone(),
        })
    }

    fn open(&self) -> store_api::Result<RedisStore> {
        let mut b = RedisStore::builder(self.url.as_str())
            .prefix(self.prefix.as_str())
            .connect_timeout(Duration::from_secs(1))
            .command_timeout(Duration::from_secs(2));
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
            .connect_timeout(Duration::from_millis(200))
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

    fn worker_args(&self) -> Option<Vec<String>> {
        if !std::path::Path::new(worker_path()).is_file() {
            eprintln!(
                "redis_conformance: worker {} not built (run the whole `cargo test -p \
                 store-redis`); multi-process behaviours skipped",
                worker_path()
            );
            return None;
        }
        Some(vec![self.url.clone(), self.prefix.clone()])
    }

    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        match args {
            [url, prefix] => Ok(Redis {
                server: None,
                url: url.clone(),
                prefix: prefix.clone(),
                spec: Spec::new(),
            }),
            _ => Err(format!("expected `<url> <prefix>`, got {args:?}")),
        }
    }
}
