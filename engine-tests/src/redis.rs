//! The harness of `store-redis`: one key prefix per harness on a real `redis-server`.
//!
//! One server ([`RedisServer`], store-redis's `test-server` feature, the launcher its own
//! tests use) is shared by the harnesses alive at a time and killed when the last one is
//! dropped. Without a `redis-server` binary every behaviour is skipped with the reason
//! printed, unless `STORE_REDIS_REQUIRE_SERVER=1` (set by CI) makes that a failure. A
//! worker process rebuilds the harness from the server's URL and the prefix and never
//! starts a server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use conformance::{Corruption, Harness, Size, Spec, Unsupported};
use store_redis::RedisStore;
use store_redis::test_server::{RedisCluster, RedisServer};

/// The name of this harness, the first of its worker arguments.
const NAME: &str = "redis";

/// `store-redis` under the conformance suite. The expiry and model behaviours run on a
/// `ManualClock` through `RedisStoreBuilder::clock` (server-clock expiry is covered by
/// store-redis's own `redis_expiry.rs`); the bounded-store behaviours are skipped, since
/// the engine is unbounded and Redis's `maxmemory` policy decides.
pub struct RedisHarness {
    /// The server this harness keeps alive; `None` in a worker process.
    _server: Option<Arc<RedisServer>>,
    url: String,
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
        RedisServer::start(module_path!(), &[])
            .ok_or_else(|| Unsupported::new("redis-server is not installed"))?,
    );
    *shared = Arc::downgrade(&server);
    Ok(server)
}

impl RedisHarness {
    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .expect("a direct connection to the test server")
    }
}

impl Harness for RedisHarness {
    type Store = RedisStore;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        unbounded(spec)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let server = shared_server()?;
        Ok(RedisHarness {
            url: server.url(),
            _server: Some(server),
            prefix: format!("conf{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
            spec: spec.clone(),
        })
    }

    fn open(&self) -> store_api::Result<RedisStore> {
        configured(
            RedisStore::builder(self.url.as_str()),
            &self.prefix,
            &self.spec,
        )
        .build()
    }

    fn unreachable(spec: &Spec) -> Result<store_api::Result<RedisStore>, Unsupported> {
        let _ = spec;
        let port = closed_port()?;
        Ok(RedisStore::builder(format!("redis://127.0.0.1:{port}/0"))
            .connect_timeout(Duration::from_millis(200))
            .build())
    }

    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        corrupt_prefix(&mut self.connection(), &self.prefix, how)
    }

    fn worker_args(&self) -> Option<Vec<String>> {
        Some(vec![NAME.into(), self.url.clone(), self.prefix.clone()])
    }

    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        match args {
            [name, url, prefix] if name == NAME => Ok(RedisHarness {
                _server: None,
                url: url.clone(),
                prefix: prefix.clone(),
                spec: Spec::new(),
            }),
            _ => Err(format!("expected `{NAME} <url> <prefix>`, got {args:?}")),
        }
    }
}

/// The name of the cluster harness, the first of its worker arguments.
const CLUSTER_NAME: &str = "redis-cluster";

/// `store-redis` on a Redis Cluster under the conformance suite, as [`RedisHarness`] on
/// one server: the same behaviours, skips and worker, the keys spread over three primaries.
/// One cluster (`RedisCluster`, six `redis-server` processes) serves the whole test
/// process; its watchdog stops it when the process exits.
///
/// Like the single-server harness: The expiry and model behaviours run on a
/// `ManualClock` through `RedisStoreBuilder::clock` (server-clock expiry is covered by
/// store-redis's own `redis_expiry.rs`); the bounded-store behaviours are skipped, since
/// the engine is unbounded and Redis's `maxmemory` policy decides.
pub struct RedisClusterHarness {
    /// The cluster's node URLs.
    seeds: Vec<String>,
    prefix: String,
    spec: Spec,
}

fn shared_cluster() -> Result<&'static RedisCluster, Unsupported> {
    static SHARED: std::sync::OnceLock<Option<RedisCluster>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| RedisCluster::start(module_path!()))
        .as_ref()
        .ok_or_else(|| Unsupported::new("redis-server is not installed"))
}

impl RedisClusterHarness {
    fn connection(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(self.seeds.clone())
            .and_then(|c| c.get_connection())
            .expect("a direct connection to the test cluster")
    }
}

impl Harness for RedisClusterHarness {
    type Store = RedisStore;

    fn create(spec: &Spec) -> Result<Self, Unsupported> {
        unbounded(spec)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let cluster = shared_cluster()?;
        Ok(RedisClusterHarness {
            seeds: cluster.seeds(),
            prefix: format!("cconf{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
            spec: spec.clone(),
        })
    }

    fn open(&self) -> store_api::Result<RedisStore> {
        configured(
            RedisStore::cluster(self.seeds.clone()),
            &self.prefix,
            &self.spec,
        )
        .build()
    }

    fn unreachable(spec: &Spec) -> Result<store_api::Result<RedisStore>, Unsupported> {
        let _ = spec;
        let port = closed_port()?;
        Ok(RedisStore::cluster([format!("redis://127.0.0.1:{port}")])
            .connect_timeout(Duration::from_millis(200))
            .build())
    }

    fn corrupt(&self, how: Corruption) -> Result<(), Unsupported> {
        corrupt_prefix(&mut self.connection(), &self.prefix, how)
    }

    fn worker_args(&self) -> Option<Vec<String>> {
        Some(vec![
            CLUSTER_NAME.into(),
            self.seeds.join(","),
            self.prefix.clone(),
        ])
    }

    fn from_worker_args(args: &[String]) -> Result<Self, String> {
        match args {
            [name, seeds, prefix] if name == CLUSTER_NAME => Ok(RedisClusterHarness {
                seeds: seeds.split(',').map(str::to_owned).collect(),
                prefix: prefix.clone(),
                spec: Spec::new(),
            }),
            _ => Err(format!(
                "expected `{CLUSTER_NAME} <url,url,...> <prefix>`, got {args:?}"
            )),
        }
    }
}

/// Refuses the behaviours of a bounded store: store-redis is unbounded.
fn unbounded(spec: &Spec) -> Result<(), Unsupported> {
    if spec.size == Size::Small {
        return Err(Unsupported::new(
            "store-redis is unbounded: Redis's maxmemory policy evicts, not the engine",
        ));
    }
    Ok(())
}

/// A harness's builder with its prefix, short timeouts and the spec's clock and TTL.
fn configured(
    b: store_redis::RedisStoreBuilder,
    prefix: &str,
    spec: &Spec,
) -> store_redis::RedisStoreBuilder {
    let mut b = b
        .prefix(prefix)
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_secs(2));
    if let Some(clock) = &spec.clock {
        b = b.clock(Arc::new(clock.clone()));
    }
    if let Some(ttl) = spec.default_ttl {
        b = b.default_ttl(ttl);
    }
    b
}

/// A loopback port nobody listens on: one taken and closed again.
fn closed_port() -> Result<u16, Unsupported> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Unsupported::new(format!("no free loopback port: {e}")))?
        .port())
}

/// Damages the entries under `prefix` as `how` says, through `con` (a connection to the
/// server, or to the cluster, which routes each key's command to its node).
fn corrupt_prefix(
    con: &mut dyn redis::ConnectionLike,
    prefix: &str,
    how: Corruption,
) -> Result<(), Unsupported> {
    if how == Corruption::Incompatible {
        let () = redis::cmd("SET")
            .arg(format!("{}format", prefix))
            .arg("store-redis 999")
            .query(con)
            .expect("SET");
        return Ok(());
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}s:*", prefix))
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
