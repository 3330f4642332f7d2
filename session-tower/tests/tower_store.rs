//! tower-sessions' expectations of a store, against store-memory, store-fastmmap and
//! store-redis: create, load, save, delete, expiry, id collisions, `cycle_id`, deletion
//! of expired sessions, foreign bytes, atomic updates, and a stalled Redis.

#[path = "../../store-redis/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_tower::TowerStore;
use store_api::{Expiry, SessionStore as _, WriteMode};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry as TowerExpiry, Session};

/// One engine under test, kept alive with whatever it needs (a directory, a server).
struct Engine {
    name: &'static str,
    store: TowerStore,
    _dir: Option<tempfile::TempDir>,
    _server: Option<Arc<support::RedisServer>>,
}

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine {
        name: "memory",
        store: TowerStore::new(Arc::new(store_memory::MemoryStore::new())),
        _dir: None,
        _server: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let fm = store_fastmmap::FastMmapStore::builder()
        .storage(dir.path().join("sessions"))
        .cache_size(4 << 20)
        .write_lock_timeout(Duration::from_secs(2))
        .open()
        .unwrap();
    v.push(Engine {
        name: "fastmmap",
        store: TowerStore::new(Arc::new(fm)),
        _dir: Some(dir),
        _server: None,
    });
    if let Some(server) = support::RedisServer::start("session_tower", &[]) {
        let server = Arc::new(server);
        v.push(Engine {
            name: "redis",
            store: TowerStore::new(Arc::new(server.store("tower:"))),
            _dir: None,
            _server: Some(server),
        });
    }
    v
}

fn record(data: serde_json::Value, expires_in: time::Duration) -> Record {
    let serde_json::Value::Object(map) = data else {
        panic!("an object")
    };
    Record {
        id: Id::default(),
        data: map.into_iter().collect::<HashMap<_, _>>(),
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

/// The record as read back: the store keeps the expiry in milliseconds.
fn ms(mut r: Record) -> Record {
    let nanos = r.expiry_date.unix_timestamp_nanos();
    r.expiry_date = OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos % 1_000_000).unwrap();
    r
}

#[tokio::test]
async fn create_load_save_delete() {
    for e in engines() {
        let s = &e.store;
        let mut r = record(json!({"user": "ada", "n": 1}), time::Duration::hours(1));
        s.create(&mut r).await.unwrap();
        assert_eq!(
            s.load(&r.id).await.unwrap(),
            Some(ms(r.clone())),
            "{}",
            e.name
        );
        r.data.insert("n".into(), json!(2));
        s.save(&r).await.unwrap();
        assert_eq!(
            s.load(&r.id).await.unwrap(),
            Some(ms(r.clone())),
            "{}",
            e.name
        );
        s.delete(&r.id).await.unwrap();
        assert_eq!(s.load(&r.id).await.unwrap(), None, "{}", e.name);
        s.delete(&r.id).await.unwrap();
        assert_eq!(s.load(&Id::default()).await.unwrap(), None, "{}", e.name);
    }
}

#[tokio::test]
async fn a_session_through_the_framework() {
    for e in engines() {
        let store = Arc::new(e.store.clone());
        let session = Session::new(None, store.clone(), Some(TowerExpiry::OnSessionEnd));
        session.insert("cart", vec!["apple", "pear"]).await.unwrap();
        session.save().await.unwrap();
        let id = session.id().expect("saved: has an id");
        let again = Session::new(Some(id), store.clone(), None);
        let cart: Vec<String> = again.get("cart").await.unwrap().unwrap();
        assert_eq!(cart, ["apple", "pear"], "{}", e.name);
        again.flush().await.unwrap();
        assert_eq!(store.load(&id).await.unwrap(), None, "{}", e.name);
    }
}

#[tokio::test]
async fn expired_sessions_are_gone_and_deleted() {
    for e in engines() {
        let s = &e.store;
        let mut short = record(json!({"a": 1}), time::Duration::milliseconds(150));
        let mut past = record(json!({"a": 2}), time::Duration::seconds(-10));
        let mut long = record(json!({"a": 3}), time::Duration::hours(1));
        for r in [&mut short, &mut past, &mut long] {
            s.create(r).await.unwrap();
        }
        assert_eq!(s.load(&past.id).await.unwrap(), None, "{}", e.name);
        assert!(s.load(&short.id).await.unwrap().is_some(), "{}", e.name);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(s.load(&short.id).await.unwrap(), None, "{}", e.name);
        let before = s.store().store().stats().unwrap();
        s.delete_expired().await.unwrap();
        let after = s.store().store().stats().unwrap();
        if !s.store().store().capabilities().expires_itself {
            assert_eq!(after.purged - before.purged, 2, "{}", e.name);
        }
        assert!(s.load(&long.id).await.unwrap().is_some(), "{}", e.name);
        // A save of an expired session does not bring it back.
        s.save(&short).await.unwrap();
        assert_eq!(s.load(&short.id).await.unwrap(), None, "{}", e.name);
    }
}

#[tokio::test]
async fn create_never_overwrites_a_live_session() {
    for e in engines() {
        let s = &e.store;
        let mut theirs = record(json!({"user": "bob"}), time::Duration::hours(1));
        s.create(&mut theirs).await.unwrap();
        let mut mine = record(json!({"user": "eve"}), time::Duration::hours(1));
        mine.id = theirs.id;
        s.create(&mut mine).await.unwrap();
        assert_ne!(mine.id, theirs.id, "{}: a fresh id was drawn", e.name);
        assert_eq!(s.load(&theirs.id).await.unwrap(), Some(ms(theirs.clone())));
        assert_eq!(s.load(&mine.id).await.unwrap(), Some(ms(mine.clone())));
        // One attempt only: the collision is an error, not an overwrite.
        let one = e.store.clone().create_attempts(1);
        let mut again = record(json!({"user": "mallory"}), time::Duration::hours(1));
        again.id = theirs.id;
        let err = one.create(&mut again).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend(m) if m.contains("collided")),
            "{err}"
        );
        assert_eq!(s.load(&theirs.id).await.unwrap(), Some(ms(theirs.clone())));
    }
}

#[tokio::test]
async fn a_save_after_logout_does_not_resurrect_the_session() {
    for e in engines() {
        let store = Arc::new(e.store.clone());
        let first = Session::new(None, store.clone(), None);
        first.insert("user", "ada").await.unwrap();
        first.save().await.unwrap();
        let id = first.id().unwrap();
        // Two requests of the session: one is slow, the other logs out meanwhile.
        let slow = Session::new(Some(id), store.clone(), None);
        let _: Option<String> = slow.get("user").await.unwrap();
        let logout = Session::new(Some(id), store.clone(), None);
        logout.flush().await.unwrap();
        slow.insert("last_page", "/cart").await.unwrap();
        slow.save().await.unwrap();
        assert_eq!(
            store.load(&id).await.unwrap(),
            None,
            "{}: resurrected",
            e.name
        );
    }
}

#[tokio::test]
async fn cycle_id_leaves_nothing_under_the_old_id() {
    for e in engines() {
        let store = Arc::new(e.store.clone());
        let session = Session::new(None, store.clone(), None);
        session.insert("user", "ada").await.unwrap();
        session.save().await.unwrap();
        let old = session.id().unwrap();
        session.cycle_id().await.unwrap();
        session.save().await.unwrap();
        let new = session.id().unwrap();
        assert_ne!(old, new, "{}", e.name);
        assert_eq!(store.load(&old).await.unwrap(), None, "{}", e.name);
        let rec = store.load(&new).await.unwrap().expect("the new id is live");
        assert_eq!(rec.data.get("user"), Some(&json!("ada")), "{}", e.name);
        // A stale request holding the old id cannot bring it back.
        let stale = Record {
            id: old,
            data: rec.data.clone(),
            expiry_date: rec.expiry_date,
        };
        store.save(&stale).await.unwrap();
        assert_eq!(store.load(&old).await.unwrap(), None, "{}", e.name);
    }
}

#[tokio::test]
async fn foreign_bytes_are_a_decode_error_naming_the_key() {
    for e in engines() {
        let id = Id::default();
        let key = e.store.key(&id).unwrap();
        let k = key.clone();
        e.store
            .store()
            .store()
            .put(&k, b"\x00not json", Expiry::Never, WriteMode::Upsert)
            .unwrap();
        let err = e.store.load(&id).await.unwrap_err();
        assert!(
            matches!(&err, Error::Decode(m) if m.contains(key.as_str())),
            "{}: {err}",
            e.name
        );
    }
}

#[tokio::test]
async fn an_invalid_prefix_is_refused() {
    let s = TowerStore::new(Arc::new(store_memory::MemoryStore::new()));
    assert!(s.clone().with_prefix("bad\nprefix").is_err());
    assert!(s.clone().with_prefix(&"p".repeat(300)).is_err());
    let app = s.with_prefix("app2:").unwrap();
    assert!(app.key(&Id(1)).unwrap().as_str().starts_with("app2:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn atomic_updates_lose_nothing_where_load_then_save_does() {
    const TASKS: usize = 8;
    const EACH: usize = 50;
    for e in engines() {
        let store = Arc::new(e.store.clone());
        let mut r = record(json!({"n": 0}), time::Duration::hours(1));
        store.create(&mut r).await.unwrap();
        let id = r.id;
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..EACH {
                        let found = store
                            .update_data(id, |data| {
                                let n = data.get("n").and_then(|v| v.as_u64()).unwrap();
                                data.insert("n".into(), json!(n + 1));
                            })
                            .await
                            .unwrap();
                        assert!(found);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let rec = store.load(&id).await.unwrap().unwrap();
        assert_eq!(rec.data["n"], json!(TASKS * EACH), "{}", e.name);
        assert!(!store.update_data(Id::default(), |_| {}).await.unwrap());
    }
}

/// A Redis server that stops answering stalls the requests waiting for it, not the
/// runtime: on a single-threaded runtime, other tasks keep running while a load waits.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_redis_does_not_stall_the_runtime() {
    let Some(server) = support::RedisServer::start("session_tower_stall", &[]) else {
        return;
    };
    let redis = server
        .builder("stall:")
        .command_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let tower = TowerStore::new(Arc::new(redis));
    let mut r = record(json!({"a": 1}), time::Duration::hours(1));
    tower.create(&mut r).await.unwrap();
    let memory = TowerStore::new(Arc::new(store_memory::MemoryStore::new()));

    support::signal(server.pid(), "-STOP");
    let id = r.id;
    let t = tower.clone();
    let waiting = tokio::spawn(async move { t.load(&id).await });
    // Unrelated requests on the same (only) runtime thread keep being served.
    let start = std::time::Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_millis(500) {
        let mut other = record(json!({"b": served}), time::Duration::hours(1));
        memory.create(&mut other).await.unwrap();
        assert!(memory.load(&other.id).await.unwrap().is_some());
        served += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !waiting.is_finished(),
        "the load waits for the stopped server"
    );
    assert!(served >= 40, "only {served} other requests in 500 ms");
    support::signal(server.pid(), "-CONT");
    let loaded = waiting.await.unwrap().unwrap();
    assert_eq!(loaded.map(|r| r.data), Some(r.data));
}
