//! actix-session's expectations of a store, against store-memory, store-fastmmap and
//! store-redis: save, load, update, update_ttl, delete, expiry, key collisions, a stale
//! update after logout, forged cookies, foreign bytes, and whole requests through
//! `SessionMiddleware`.

#[path = "../../store-redis/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::{LoadError, SessionKey, SessionStore};
use actix_session::{Session, SessionExt as _, SessionMiddleware};
use actix_web::cookie::time::Duration as Ttl;
use actix_web::{App, HttpResponse, test, web};
use serde_json::{Value, json};
use session_actix::ActixStore;
use store_api::{Expiry, SessionStore as _, WriteMode};

struct Engine {
    name: &'static str,
    store: ActixStore,
    _dir: Option<tempfile::TempDir>,
    _server: Option<support::RedisServer>,
}

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine {
        name: "memory",
        store: ActixStore::new(Arc::new(store_memory::MemoryStore::new())),
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
        store: ActixStore::new(Arc::new(fm)),
        _dir: Some(dir),
        _server: None,
    });
    if let Some(server) = support::RedisServer::start("session_actix", &[]) {
        v.push(Engine {
            name: "redis",
            store: ActixStore::new(Arc::new(server.store("actix:"))),
            _dir: None,
            _server: Some(server),
        });
    }
    v
}

/// A state as actix-session hands it over: each value serialised to JSON text.
fn state(v: Value) -> HashMap<String, String> {
    let Value::Object(m) = v else {
        panic!("an object")
    };
    m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).unwrap()
}

#[actix_web::test]
async fn save_load_update_delete() {
    for e in engines() {
        let s = &e.store;
        let k = s
            .save(state(json!({"user": "ada"})), &Ttl::hours(1))
            .await
            .unwrap();
        assert_eq!(k.as_ref().len(), 64, "{}", e.name);
        assert_eq!(
            s.load(&k).await.unwrap(),
            Some(state(json!({"user": "ada"})))
        );
        let k2 = s
            .update(
                k,
                state(json!({"user": "ada", "n": [1, {"x": null}]})),
                &Ttl::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(
            s.load(&k2).await.unwrap(),
            Some(state(json!({"user": "ada", "n": [1, {"x": null}]}))),
            "{}",
            e.name
        );
        s.delete(&k2).await.unwrap();
        assert_eq!(s.load(&k2).await.unwrap(), None, "{}", e.name);
        s.delete(&k2).await.unwrap();
    }
}

#[actix_web::test]
async fn ttl_expires_and_update_ttl_extends() {
    for e in engines() {
        let s = &e.store;
        let short = s
            .save(state(json!({"a": 1})), &Ttl::milliseconds(200))
            .await
            .unwrap();
        let kept = s
            .save(state(json!({"a": 2})), &Ttl::milliseconds(200))
            .await
            .unwrap();
        let past = s
            .save(state(json!({"a": 3})), &Ttl::seconds(-1))
            .await
            .unwrap();
        assert_eq!(s.load(&past).await.unwrap(), None, "{}", e.name);
        s.update_ttl(&kept, &Ttl::hours(1)).await.unwrap();
        tokio_sleep(Duration::from_millis(300)).await;
        assert_eq!(s.load(&short).await.unwrap(), None, "{}", e.name);
        assert_eq!(
            s.load(&kept).await.unwrap(),
            Some(state(json!({"a": 2}))),
            "{}",
            e.name
        );
        // update_ttl of a gone session does not create it.
        s.update_ttl(&short, &Ttl::hours(1)).await.unwrap();
        assert_eq!(s.load(&short).await.unwrap(), None, "{}", e.name);
    }
}

async fn tokio_sleep(d: Duration) {
    actix_web::rt::time::sleep(d).await;
}

fn fixed_key() -> SessionKey {
    key("fixedfixedfixedfixedfixedfixedfixedfixedfixedfixedfixedfixedfixe")
}

#[actix_web::test]
async fn save_never_overwrites_a_live_session() {
    for e in engines() {
        let fixed = e.store.clone().key_generator(fixed_key).save_attempts(3);
        let first = fixed
            .save(state(json!({"user": "bob"})), &Ttl::hours(1))
            .await
            .unwrap();
        let err = fixed
            .save(state(json!({"user": "eve"})), &Ttl::hours(1))
            .await
            .unwrap_err();
        assert!(
            format!("{err:?}").contains("collided"),
            "{}: {err:?}",
            e.name
        );
        assert_eq!(
            e.store.load(&first).await.unwrap(),
            Some(state(json!({"user": "bob"}))),
            "{}",
            e.name
        );
    }
}

#[actix_web::test]
async fn an_update_after_logout_writes_nothing() {
    for e in engines() {
        let s = &e.store;
        let k = s
            .save(state(json!({"user": "ada"})), &Ttl::hours(1))
            .await
            .unwrap();
        let same = key(k.as_ref());
        s.delete(&k).await.unwrap();
        let back = s
            .update(
                same,
                state(json!({"user": "ada", "stale": true})),
                &Ttl::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(back.as_ref(), k.as_ref(), "{}: no new key", e.name);
        assert_eq!(s.load(&k).await.unwrap(), None, "{}: resurrected", e.name);
        assert_eq!(
            sessions_left(&e),
            0,
            "{}: the stale update wrote something",
            e.name
        );
    }
}

#[actix_web::test]
async fn forged_keys_are_no_session() {
    for e in engines() {
        let s = &e.store;
        for forged in ["a\u{1}b".to_owned(), "x".repeat(4000), String::new()] {
            let k = key(&forged);
            assert_eq!(s.load(&k).await.unwrap(), None, "{}", e.name);
            let k = s
                .update(k, state(json!({"a": 1})), &Ttl::hours(1))
                .await
                .unwrap();
            assert_eq!(s.load(&k).await.unwrap(), None, "{}", e.name);
            s.update_ttl(&k, &Ttl::hours(1)).await.unwrap();
            s.delete(&k).await.unwrap();
        }
    }
}

#[actix_web::test]
async fn foreign_bytes_are_a_deserialization_error_naming_the_key() {
    for e in engines() {
        let k = key("foreignforeignforeignforeignforeignforeignforeignforeignforeign0");
        let store_key = e.store.key(&k).unwrap();
        e.store
            .store()
            .store()
            .put(
                &store_key,
                b"{\"user\":\"ada\"}",
                Expiry::Never,
                WriteMode::Upsert,
            )
            .unwrap();
        match e.store.load(&k).await {
            Err(LoadError::Deserialization(err)) => {
                assert!(err.to_string().contains(store_key.as_str()), "{err}")
            }
            other => panic!(
                "{}: expected a deserialization error, got {other:?}",
                e.name
            ),
        }
    }
}

async fn login(session: Session) -> HttpResponse {
    session.insert("user", "ada").unwrap();
    session.renew();
    HttpResponse::Ok().finish()
}

async fn whoami(session: Session) -> HttpResponse {
    let user: Option<String> = session.get("user").unwrap();
    let n: u64 = session.get("n").unwrap().unwrap_or(0);
    session.insert("n", n + 1).unwrap();
    HttpResponse::Ok().body(format!("{}:{}", user.unwrap_or_default(), n + 1))
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().finish()
}

#[actix_web::test]
async fn requests_through_the_middleware() {
    for e in engines() {
        let secret = actix_web::cookie::Key::generate();
        let app = test::init_service(
            App::new()
                .wrap(SessionMiddleware::new(e.store.clone(), secret))
                .route("/login", web::post().to(login))
                .route("/whoami", web::get().to(whoami))
                .route("/logout", web::post().to(logout))
                .route(
                    "/peek",
                    web::get().to(|r: actix_web::HttpRequest| async move {
                        let s = r.get_session();
                        HttpResponse::Ok().body(s.entries().len().to_string())
                    }),
                ),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::post().uri("/login").to_request()).await;
        assert!(res.status().is_success(), "{}", e.name);
        let cookie = res
            .response()
            .cookies()
            .next()
            .expect("a session cookie")
            .into_owned();
        let mut last = String::new();
        for _ in 0..3 {
            let req = test::TestRequest::get()
                .uri("/whoami")
                .cookie(cookie.clone())
                .to_request();
            last = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
        }
        assert_eq!(last, "ada:3", "{}", e.name);
        assert_eq!(
            sessions_left(&e),
            1,
            "{}: one session, renewed at login",
            e.name
        );
        let req = test::TestRequest::post()
            .uri("/logout")
            .cookie(cookie.clone())
            .to_request();
        assert!(test::call_service(&app, req).await.status().is_success());
        // The old cookie now names no session.
        let req = test::TestRequest::get()
            .uri("/peek")
            .cookie(cookie.clone())
            .to_request();
        assert_eq!(test::call_and_read_body(&app, req).await, "0", "{}", e.name);
        assert_eq!(
            sessions_left(&e),
            0,
            "{}: a session outlived logout",
            e.name
        );
    }
}

/// Sessions of this adapter left in the engine.
fn sessions_left(e: &Engine) -> usize {
    match &e._server {
        // The server also holds the store's own keys: count the sessions' keys.
        Some(server) => {
            let mut con = redis::Client::open(server.url())
                .and_then(|c| c.get_connection())
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("actix:*actix-session:*")
                .query(&mut con)
                .unwrap();
            keys.len()
        }
        None => e.store.store().store().stats().unwrap().entries as usize,
    }
}
