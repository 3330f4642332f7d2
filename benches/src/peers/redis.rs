//! Redis on loopback through `store-redis` (feature `peers`), and a private
//! `redis-server` for runs that were given no server.

/// Splits a [`Location::Redis`](crate::Location::Redis) string into URL and key prefix.
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
fn split(location: &str) -> (&str, &str) {
    location.rsplit_once('#').unwrap_or((location, "bench:"))
}

#[cfg(feature = "peers")]
mod on {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use store_api::Result;
    use store_redis::RedisStore;

    use super::split;
    use crate::registry::{EngineAdapter, not_attachable};
    use crate::{BenchStore, EngineId, Location, OpenedEngine, Sizing, ViaApi};

    fn connect(url: &str, prefix: &str) -> Result<RedisStore> {
        RedisStore::builder(url)
            .prefix(prefix)
            .connect_timeout(Duration::from_millis(500))
            .build()
    }

    /// The registry's adapter for `store-redis`: one key prefix per store on a server.
    pub(crate) struct RedisEngine;

    impl EngineAdapter for RedisEngine {
        fn id(&self) -> EngineId {
            EngineId::Redis
        }

        fn name(&self) -> &'static str {
            "redis"
        }

        /// Its `Capabilities` say so; asking them needs a server, so the test below does.
        fn shared_across_processes(&self) -> bool {
            true
        }

        fn available(&self, url: &str) -> std::result::Result<(), String> {
            connect(url, "bench:").map(drop).map_err(|e| {
                format!(
                    "no Redis server reachable at {url} ({e}); pass --redis URL or install redis-server"
                )
            })
        }

        fn create(&self, _sizing: Sizing, url: &str) -> Result<OpenedEngine> {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            // A fresh prefix per store, so workloads never see each other's keys.
            let prefix = format!(
                "bench:{}:{}:",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let store = connect(url, &prefix)?;
            Ok(OpenedEngine {
                store: Arc::new(ViaApi(store)),
                location: Location::Redis(format!("{url}#{prefix}")),
                dir: None,
            })
        }

        fn attach(&self, location: &Location, _sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
            let Location::Redis(location) = location else {
                return Err(not_attachable(self.name(), location));
            };
            let (url, prefix) = split(location);
            Ok(Arc::new(ViaApi(connect(url, prefix)?)))
        }
    }

    fn connect_cluster(seeds: &str, prefix: &str) -> Result<RedisStore> {
        RedisStore::cluster(seeds.split(','))
            .prefix(prefix)
            .connect_timeout(Duration::from_millis(500))
            .build()
    }

    /// A Redis Cluster this process started (three primaries, three replicas on loopback,
    /// by the repository's `.ci/redis-cluster`), for the whole run: the script's watchdog
    /// stops its nodes once this process exits. The seeds, comma-separated, or why not.
    fn local_cluster() -> std::result::Result<&'static str, String> {
        static CLUSTER: std::sync::OnceLock<std::result::Result<String, String>> =
            std::sync::OnceLock::new();
        CLUSTER
            .get_or_init(|| {
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/redis-cluster");
                let dir =
                    std::env::temp_dir().join(format!("bench-cluster-{}", std::process::id()));
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                // Ports apart from the tests' clusters (17000-18999).
                let base = 21_000 + (std::process::id() % 100) as u16 * 8;
                // The script's watchdog stops the nodes once this process is gone.
                let out = Command::new(script)
                    .arg("start")
                    .arg(&dir)
                    .arg(base.to_string())
                    .arg(std::process::id().to_string())
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("running {script}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "no local Redis Cluster ({script} start failed: {})",
                        String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .last()
                            .unwrap_or("")
                    ));
                }
                let seeds = String::from_utf8_lossy(&out.stdout);
                Ok(seeds.lines().last().unwrap_or("").trim().to_string())
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The registry's adapter for `store-redis` on a Redis Cluster: a private local
    /// cluster, one key prefix per store.
    pub(crate) struct RedisClusterEngine;

    impl EngineAdapter for RedisClusterEngine {
        fn id(&self) -> EngineId {
            EngineId::RedisCluster
        }

        fn name(&self) -> &'static str {
            "redis-cluster"
        }

        fn shared_across_processes(&self) -> bool {
            true
        }

        fn available(&self, _url: &str) -> std::result::Result<(), String> {
            let seeds = local_cluster()?;
            connect_cluster(seeds, "bench:")
                .map(drop)
                .map_err(|e| format!("the local Redis Cluster at {seeds} does not answer ({e})"))
        }

        fn create(&self, _sizing: Sizing, _url: &str) -> Result<OpenedEngine> {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let seeds = local_cluster().map_err(|why| store_api::Error::InvalidConfig {
                option: "engines",
                reason: why,
            })?;
            let prefix = format!(
                "bench:{}:{}:",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let store = connect_cluster(seeds, &prefix)?;
            Ok(OpenedEngine {
                store: Arc::new(ViaApi(store)),
                location: Location::Redis(format!("{seeds}#{prefix}")),
                dir: None,
            })
        }

        fn attach(&self, location: &Location, _sizing: Sizing) -> Result<Arc<dyn BenchStore>> {
            let Location::Redis(location) = location else {
                return Err(not_attachable(self.name(), location));
            };
            let (seeds, prefix) = split(location);
            Ok(Arc::new(ViaApi(connect_cluster(seeds, prefix)?)))
        }
    }

    /// A `redis-server` this process started on a free loopback port, without
    /// persistence; killed on drop.
    #[derive(Debug)]
    pub struct LocalRedis {
        child: Child,
        port: u16,
    }

    impl LocalRedis {
        /// Starts `redis-server` from `PATH`; `None` if it is not installed or did not
        /// come up within 5 seconds.
        pub fn start() -> Option<Self> {
            for _ in 0..5 {
                let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .ok()?
                    .local_addr()
                    .ok()?
                    .port();
                let mut child = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(std::env::temp_dir())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()?;
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break; // port taken: try another
                    }
                    if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                        return Some(LocalRedis { child, port });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            None
        }

        /// `redis://127.0.0.1:<port>/0`.
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/0", self.port)
        }
    }

    impl Drop for LocalRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(feature = "peers")]
pub use on::LocalRedis;
#[cfg(feature = "peers")]
pub(crate) use on::{RedisClusterEngine, RedisEngine};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_splits_into_url_and_prefix() {
        assert_eq!(
            split("redis://127.0.0.1:1/0#bench:1:2:"),
            ("redis://127.0.0.1:1/0", "bench:1:2:")
        );
    }

    #[cfg(feature = "peers")]
    #[test]
    fn shared_as_its_capabilities_say() {
        use store_api::SessionStore;

        use crate::registry::EngineAdapter;

        let Some(server) = LocalRedis::start() else {
            eprintln!("SKIP shared_as_its_capabilities_say: redis-server is not installed");
            return;
        };
        let store = store_redis::RedisStore::builder(server.url())
            .build()
            .unwrap();
        assert_eq!(
            RedisEngine.shared_across_processes(),
            store.capabilities().shared_across_processes
        );
    }
}
