//! What the tests share: a real `redis-server` per test
//! ([`store_redis::test_server::RedisServer`], feature `test-server`), the
//! [`server_or_skip!`] macro, signals and socket paths.
//!
//! Without a `redis-server` binary a test prints a `SKIP` line and returns, unless
//! `STORE_REDIS_REQUIRE_SERVER=1` (set by CI), which turns the skip into a failure.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::path::PathBuf;
use std::process::Command;

pub use store_redis::test_server::RedisServer;

/// Starts a server, or prints a skip line and returns from the test.
#[macro_export]
macro_rules! server_or_skip {
    () => {
        server_or_skip!(&[])
    };
    ($extra:expr) => {
        match support::RedisServer::start(module_path!(), $extra) {
            Some(s) => s,
            None => return,
        }
    };
}

/// Sends `signal` (e.g. `-STOP`, `-CONT`) to a process with the `kill` command.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// A unique socket path under the temp dir.
pub fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("store-redis-{}-{name}.sock", std::process::id()))
}
