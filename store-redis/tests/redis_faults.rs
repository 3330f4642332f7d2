//! Failures are errors, never `Ok(None)`, and the store recovers by itself: a killed
//! server, a restarted one, a hung one (timeouts), a refused connection, bad credentials.

mod support;

use std::time::{Duration, Instant};

use store_api::{Error, Expiry, Key, SessionStore, UpdateAction, WriteMode};
use store_redis::RedisStore;

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// Every operation, each expected to fail with a backend error.
fn assert_all_fail(store: &RedisStore, when: &str) {
    let k = key("session:f");
    let results: Vec<(&str, store_api::Result<()>)> = vec![
        ("get", store.get(&k).map(drop)),
        ("get_into", store.get_into(&k, &mut Vec::new()).map(drop)),
        (
            "put",
            store
                .put(&k, b"x", Expiry::Never, WriteMode::Upsert)
                .map(drop),
        ),
        ("delete", store.delete(&k).map(drop)),
        ("touch", store.touch(&k, Expiry::Never).map(drop)),
        (
            "update",
            store.update(&k, &mut |_| UpdateAction::Keep).map(drop),
        ),
        ("stats", store.stats().map(drop)),
        ("server_time", store.server_time().map(drop)),
    ];
    for (op, r) in results {
        let err = r.expect_err(&format!("{op} {when} must fail, not answer"));
        assert!(matches!(err, Error::Backend { .. }), "{op} {when}: {err}");
    }
}

#[test]
fn killed_server_gives_errors_and_restarted_server_works_without_rebuilding() {
    let mut server = server_or_skip!();
    let store = server.store("fault:");
    let k = key("session:f");
    store
        .put(&k, b"x", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert!(store.get(&k).unwrap().is_some());

    server.kill();
    assert_all_fail(&store, "while the server is down");
    let err = store.get(&k).unwrap_err();
    assert!(
        err.to_string().contains("127.0.0.1"),
        "message names the server: {err}"
    );

    server.restart();
    // Persistence is off: the entry is gone, and saying so is now correct.
    assert_eq!(store.get(&k).unwrap(), None);
    let v = store
        .put(&k, b"y", Expiry::Never, WriteMode::CreateOnly)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().version, v.version);
}

#[test]
fn restart_between_operations_costs_reads_nothing_and_writes_at_most_one_error() {
    let mut server = server_or_skip!();
    let store = server.builder("restart:").pool_size(4).build().unwrap();
    let k = key("session:r");
    // Fill the pool with several connections that the restart will kill.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    store.get(&k).unwrap();
                }
            });
        }
    });
    server.restart();
    assert_eq!(
        store.get(&k).unwrap(),
        None,
        "a read retries on a fresh connection"
    );

    server.restart();
    let first = store.put(&k, b"x", Expiry::Never, WriteMode::Upsert);
    if let Err(e) = &first {
        assert!(matches!(e, Error::Backend { .. }), "{e}");
    }
    // The failed write emptied the pool: the next one connects afresh.
    store
        .put(&k, b"y", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"y");
}

#[test]
fn a_hung_server_times_out_and_recovers() {
    let server = server_or_skip!();
    let store = server
        .builder("hang:")
        .command_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let k = key("session:h");
    store
        .put(&k, b"x", Expiry::Never, WriteMode::Upsert)
        .unwrap();

    support::signal(server.pid(), "-STOP");
    let started = Instant::now();
    let err = store.get(&k).unwrap_err();
    let took = started.elapsed();
    support::signal(server.pid(), "-CONT");
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        took < Duration::from_secs(3),
        "timed out after {took:?}, expected about 200 ms (plus one retry)"
    );
    assert_eq!(store.get(&k).unwrap().unwrap().value, b"x", "works again");
}

#[test]
fn unreachable_server_or_bad_credentials_fail_to_build() {
    let server = server_or_skip!(&["--requirepass", "s3cret"]);
    let port = server.url().rsplit(':').next().unwrap().to_owned();
    let port = port.trim_end_matches("/0");

    let err = RedisStore::open(format!("redis://:wrong@127.0.0.1:{port}/0")).unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "no password in messages: {err}"
    );

    let store = RedisStore::open(format!("redis://:s3cret@127.0.0.1:{port}/0")).unwrap();
    assert!(!format!("{store:?}").contains("s3cret"), "{store:?}");
    store
        .put(&key("k"), b"v", Expiry::Never, WriteMode::Upsert)
        .unwrap();

    // A port nobody listens on: take one and close it again.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port();
    drop(free);
    let err = RedisStore::open(format!("redis://127.0.0.1:{free_port}/0")).unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
}

#[test]
fn unix_socket_urls_work() {
    let path = support::socket_path("unix");
    let path_str = path.to_str().unwrap().to_owned();
    let server = server_or_skip!(&["--unixsocket", &path_str, "--unixsocketperm", "700"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "socket {path_str} never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let store = RedisStore::builder(format!("redis+unix://{path_str}?db=3"))
        .build()
        .unwrap();
    let k = key("session:unix");
    store
        .put(&k, b"v", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    // The same entry through TCP, db 3.
    let tcp = RedisStore::open(server.url().replace("/0", "/3")).unwrap();
    assert_eq!(tcp.get(&k).unwrap().unwrap().value, b"v");
    drop(server);
    let _ = std::fs::remove_file(&path);
}
