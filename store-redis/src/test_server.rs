//! A real `redis-server` for tests (feature `test-server`): started on a free loopback
//! port with persistence off, stopped (SIGKILL) when dropped. Shared by this crate's own
//! tests and by `engine-tests`, which runs the conformance suite against this engine.
//!
//! The binary is `$REDIS_SERVER` or `redis-server` on `PATH`. Without it
//! [`RedisServer::start`] prints a `SKIP` line and returns `None`, unless
//! `STORE_REDIS_REQUIRE_SERVER=1` (set by CI), which turns the skip into a failure.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{RedisStore, RedisStoreBuilder};

/// A running `redis-server` child process.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REDIS_SERVER={} is not a file", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// A test store's options: `prefix`, a 1 s connect timeout and `command` per command.
fn test_options(b: RedisStoreBuilder, prefix: &str, command: Duration) -> RedisStoreBuilder {
    b.prefix(prefix)
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(command)
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts a server with `extra` arguments (e.g. `--requirepass x`), or `None` after
    /// printing a skip line naming `test` when there is no binary.
    ///
    /// # Panics
    /// When there is no binary and `STORE_REDIS_REQUIRE_SERVER=1`, or when the server
    /// does not come up on any of 5 free ports.
    pub fn start(test: &str, extra: &[&str]) -> Option<Self> {
        let Some(binary) = find_binary() else {
            if std::env::var_os("STORE_REDIS_REQUIRE_SERVER").is_some_and(|v| v == "1") {
                panic!(
                    "redis-server not found (PATH or $REDIS_SERVER) and STORE_REDIS_REQUIRE_SERVER=1"
                );
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {test}::{name}: redis-server not found on PATH (install it: apt-get install -y \
                 redis-server, or set REDIS_SERVER=/path/to/redis-server)"
            );
            return None;
        };
        let mut server = RedisServer {
            binary,
            port: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        // Another test may grab the free port between our probe and the server's bind:
        // try a few ports.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a loopback port after 5 tries");
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A builder for a store on this server with short timeouts.
    pub fn builder(&self, prefix: &str) -> RedisStoreBuilder {
        test_options(
            RedisStore::builder(self.url()),
            prefix,
            Duration::from_secs(1),
        )
    }

    /// A store on this server.
    pub fn store(&self, prefix: &str) -> RedisStore {
        self.builder(prefix)
            .build()
            .expect("store on the test server")
    }

    /// Kills the server (SIGKILL) and waits for it; everything in it is lost.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        // The old socket may linger briefly; Redis binds with SO_REUSEADDR, but retry a
        // few times anyway.
        for _ in 0..20 {
            if self.spawn() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Runs `redis-server` and waits (at most 5 s) until it accepts connections; false if
    /// it exited (port taken).
    fn spawn(&mut self) -> bool {
        let dir = std::env::temp_dir();
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", dir.to_str().expect("utf-8 temp dir")])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                // Someone else may own the port and our server be about to exit.
                sleep(Duration::from_millis(20));
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
                self.child = Some(child);
                return true;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real Redis Cluster for tests: six `redis-server` processes on loopback (three
/// primaries, three replicas), started and stopped by the repository's
/// `.ci/redis-cluster` script, and stopped by the script's watchdog if this process dies
/// first.
/// Like [`RedisServer::start`], `None` with a printed `SKIP` line when `redis-server` is
/// missing, unless `STORE_REDIS_REQUIRE_SERVER=1`.
pub struct RedisCluster {
    dir: tempfile_dir::Dir,
    base: u16,
}

/// A temporary directory without a dependency: made under the system's temp directory,
/// removed when dropped.
mod tempfile_dir {
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The cluster script of the repository.
fn cluster_script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/redis-cluster"))
}

impl RedisCluster {
    /// Starts a cluster (about 3 s), or `None` after printing a skip line naming `test`.
    ///
    /// # Panics
    /// When `redis-server` is missing and `STORE_REDIS_REQUIRE_SERVER=1`, or when no
    /// cluster came up on any of 5 port ranges.
    pub fn start(test: &str) -> Option<Self> {
        // The same check (and skip line) as for a single server.
        drop(RedisServer::start(test, &[])?);
        let script = cluster_script();
        assert!(script.is_file(), "{} is missing", script.display());
        // Every cluster of this process gets ports and a directory of its own (tests run
        // in parallel threads); other processes' clusters are told apart by the script,
        // which refuses ports in use.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..5u32 {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let base = 17_000 + ((std::process::id() * 7 + n * 53) % 250) as u16 * 8;
            let dir = std::env::temp_dir()
                .join(format!("store-redis-cluster-{}-{n}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let dir = tempfile_dir::Dir(dir);
            // The script's watchdog stops the nodes if this process dies without
            // dropping the cluster.
            let out = Command::new(&script)
                .arg("start")
                .arg(&dir.0)
                .arg(base.to_string())
                .arg(std::process::id().to_string())
                .stdin(Stdio::null())
                .output()
                .expect("run .ci/redis-cluster");
            if !out.status.success() {
                let _ = writeln!(
                    std::io::stderr(),
                    "redis cluster on ports {base}..: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            return Some(RedisCluster { dir, base });
        }
        panic!("no redis cluster came up on 5 port ranges");
    }

    /// The nodes' URLs (`redis://127.0.0.1:<port>`), primaries first.
    pub fn seeds(&self) -> Vec<String> {
        (0..6)
            .map(|i| format!("redis://127.0.0.1:{}", self.base + i))
            .collect()
    }

    /// The port of node `i` (0..6; the script makes 0..3 the first primaries).
    pub fn port(&self, i: u16) -> u16 {
        self.base + i
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, ...) to the node on `port`.
    ///
    /// # Panics
    /// If the node's pidfile is missing or `kill` fails.
    pub fn signal(&self, port: u16, signal: &str) {
        let pid = std::fs::read_to_string(self.dir.0.join(format!("{port}.pid")))
            .expect("the node's pidfile");
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.trim())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {}", pid.trim());
    }

    /// Stops every node (their data is gone: no persistence) and starts the cluster
    /// again on the same ports.
    ///
    /// # Panics
    /// If it does not come up again.
    pub fn restart(&mut self) {
        let script = cluster_script();
        let _ = Command::new(&script)
            .arg("stop")
            .arg(&self.dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..20 {
            let out = Command::new(&script)
                .arg("start")
                .arg(&self.dir.0)
                .arg(self.base.to_string())
                .arg(std::process::id().to_string())
                .stdin(Stdio::null())
                .output()
                .expect("run .ci/redis-cluster");
            if out.status.success() {
                return;
            }
            sleep(Duration::from_millis(250));
        }
        panic!("the cluster did not come up again on ports {}..", self.base);
    }

    /// A builder for a store on this cluster with short timeouts.
    pub fn builder(&self, prefix: &str) -> RedisStoreBuilder {
        // A longer command timeout than one server's: six nodes share two cores.
        test_options(
            RedisStore::cluster(self.seeds()),
            prefix,
            Duration::from_secs(2),
        )
    }

    /// A store on this cluster.
    pub fn store(&self, prefix: &str) -> RedisStore {
        self.builder(prefix)
            .build()
            .expect("store on the test cluster")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script())
            .arg("stop")
            .arg(&self.dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
