//! `rediss://` against a `redis-server` listening with TLS on a self-signed certificate
//! (made with the `openssl` command). Runs only with the `tls-native-tls` feature:
//! `cargo test -p store-redis --features tls-native-tls --test redis_tls`.

#![cfg(feature = "tls-native-tls")]

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use store_api::{Error, Expiry, Key, SessionStore, WriteMode};
use store_redis::RedisStore;

/// A temporary directory with `cert.pem` and `key.pem` for 127.0.0.1, removed on drop.
struct Certs(PathBuf);

impl Certs {
    fn make() -> Option<Certs> {
        let dir = std::env::temp_dir().join(format!("store-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(Certs(dir)),
            other => {
                // Straight to stderr: the test harness captures `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP redis_tls: `openssl req` failed ({other:?})"
                );
                None
            }
        }
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rediss_urls_speak_tls() {
    let Some(certs) = Certs::make() else { return };
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (cert, key) = (certs.path("cert.pem"), certs.path("key.pem"));
    let server = server_or_skip!(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &cert,
        "--tls-auth-clients",
        "no",
    ]);

    // Self-signed: only an explicitly insecure URL may skip verification.
    let store = RedisStore::open(format!("rediss://127.0.0.1:{tls_port}/0#insecure")).unwrap();
    let k = Key::new("session:tls").unwrap();
    store
        .put(&k, b"over tls", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"over tls");
    // The plain-text port of the same server sees the entry.
    let plain = server.store(store.prefix());
    assert_eq!(plain.get(&k).unwrap().unwrap().value, b"over tls");

    let err = RedisStore::open(format!("rediss://127.0.0.1:{tls_port}/0")).unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }),
        "an untrusted certificate must be refused: {err}"
    );
    let err = RedisStore::builder(format!("redis://127.0.0.1:{tls_port}/0"))
        .connect_timeout(std::time::Duration::from_millis(500))
        .command_timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }),
        "plain text to a TLS port: {err}"
    );
}
