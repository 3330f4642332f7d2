//! The demo server end to end: real worker processes on a loopback port, a real HTTP
//! client, restarts and SIGKILLs.

#[path = "../../store-redis/tests/support/mod.rs"]
mod redis_support;
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, Server, signal};

fn fastmmap(dir: &tempfile::TempDir) -> String {
    format!("fastmmap={}", dir.path().join("store/sessions").display())
}

/// Requests (each on a new connection) until `n` answered or 30 s passed: the workers
/// that served them and what they said.
fn spread(c: &mut Client, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.push(c.get("/api/session"));
    }
    out
}

fn workers(infos: &[Value]) -> HashSet<u64> {
    infos
        .iter()
        .map(|i| i["worker"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_worker_sees_the_login_and_the_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(3, &fastmmap(&dir), &dir.path().join("log"), &[]);
    let mut c = Client::new(&server.url);
    c.login("ada");
    let infos = spread(&mut c, 60);
    assert!(
        workers(&infos).len() >= 2,
        "60 requests on new connections all landed on one worker: {:?}",
        workers(&infos)
    );
    assert!(infos.iter().all(|i| i["user"] == "ada"), "{infos:?}");
    // Logout on one worker; the old cookie, replayed, finds no session on any worker.
    let old = c.clone();
    let (s, _) = c.post("/api/logout", None).unwrap();
    assert_eq!(s, 200);
    assert_eq!(c.cookie, None, "logout removed the cookie");
    let mut replay = old;
    let after = spread(&mut replay, 40);
    assert!(workers(&after).len() >= 2, "{:?}", workers(&after));
    assert!(after.iter().all(|i| i["user"].is_null()), "{after:?}");
}

#[test]
fn concurrent_increments_of_one_session() {
    const CLIENTS: usize = 4;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(3, &fastmmap(&dir), &dir.path().join("log"), &[]);
    let mut c = Client::new(&server.url);
    c.login("ada");
    let run = |path: &'static str| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let mut c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..EACH {
                        let (s, v) = c.post(path, None).unwrap();
                        assert_eq!(s, 200, "{path}: {v}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    };
    run("/api/incr-atomic");
    run("/api/incr");
    let info = c.get("/api/session");
    // The atomic counter changes the stored session in one locked step: nothing lost.
    assert_eq!(info["atomic"], json!(CLIENTS * EACH), "{info}");
    // tower-sessions loads the session at the start of a request and saves it whole at
    // the end: two requests that overlap both save "what I loaded + 1", so one
    // increment is lost. Reported, not asserted (how many depends on the timing).
    let lossy = info["counter"].as_u64().unwrap();
    assert!(lossy >= 1 && lossy <= (CLIENTS * EACH) as u64, "{info}");
    eprintln!(
        "load-then-save counter: {lossy} of {} increments kept ({} lost to overlapping requests)",
        CLIENTS * EACH,
        (CLIENTS * EACH) as u64 - lossy
    );
}

#[test]
fn a_worker_killed_mid_request_is_replaced_and_no_session_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(3, &fastmmap(&dir), &dir.path().join("log"), &[]);
    let mut users: Vec<Client> = (0..5)
        .map(|i| {
            let mut c = Client::new(&server.url);
            c.login(&format!("user{i}"));
            c
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // Clients keep incrementing while a worker is killed under them.
    let handles: Vec<_> = users
        .iter()
        .map(|c| {
            let (mut c, stop, ok, failed) = (c.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let (mut mine_ok, mut mine_failed) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    match c.post("/api/incr-atomic", None) {
                        Ok((200, _)) => mine_ok += 1,
                        _ => mine_failed += 1,
                    }
                }
                ok.fetch_add(mine_ok, Ordering::Relaxed);
                failed.fetch_add(mine_failed, Ordering::Relaxed);
                (mine_ok, mine_failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut probe = users[0].clone();
    let victim = probe.get("/api/session");
    let (index, pid) = (
        victim["worker"].as_u64().unwrap(),
        victim["pid"].as_u64().unwrap(),
    );
    signal(pid as u32, "-KILL");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let per_client: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // A replacement serves the same worker slot with a new process, and the old
    // sessions.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut replaced = None;
    while replaced.is_none() && Instant::now() < deadline {
        let i = probe.get("/api/session");
        if i["worker"].as_u64() == Some(index) && i["pid"].as_u64() != Some(pid) {
            replaced = Some(i);
        }
    }
    let replaced = replaced.expect("no replacement worker served within 10 s");
    assert_eq!(replaced["user"], "user0");
    for (i, (c, (n_ok, n_failed))) in users.iter_mut().zip(per_client).enumerate() {
        let info = c.get("/api/session");
        assert_eq!(
            info["user"],
            json!(format!("user{i}")),
            "session {i} survived"
        );
        let atomic = info["atomic"].as_u64().unwrap();
        // Every answered increment is stored; an unanswered one (the killed worker's)
        // may or may not have been.
        assert!(
            (n_ok..=n_ok + n_failed).contains(&atomic),
            "user{i}: {atomic} stored, {n_ok} answered, {n_failed} failed"
        );
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 20, "only {ok} increments answered");
    assert!(
        failed <= 5,
        "{failed} requests failed: only the killed worker's in-flight ones may"
    );
    assert!(
        server.log_text().contains("killed by signal 9"),
        "{}",
        server.log_text()
    );
}

#[test]
fn sessions_survive_replacing_the_workers_and_the_server_with_fastmmap() {
    let dir = tempfile::tempdir().unwrap();
    let store = fastmmap(&dir);
    let mut server = Server::start(2, &store, &dir.path().join("log1"), &[]);
    let mut c = Client::new(&server.url);
    c.login("ada");
    c.post("/api/incr-atomic", None).unwrap();
    let before: HashSet<u64> = spread(&mut c, 30)
        .iter()
        .map(|i| i["pid"].as_u64().unwrap())
        .collect();
    // SIGHUP: every worker replaced by a new process; the sessions stay.
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = Vec::new();
    while Instant::now() < deadline {
        let i = c.get("/api/session");
        if !before.contains(&i["pid"].as_u64().unwrap()) {
            after.push(i);
        }
        if after.len() >= 10 {
            break;
        }
    }
    assert!(after.len() >= 10, "no new workers after SIGHUP");
    assert!(
        after.iter().all(|i| i["user"] == "ada" && i["atomic"] == 1),
        "{after:?}"
    );
    // The whole server stopped and started again on the same file.
    server.stop();
    let server = Server::start(2, &store, &dir.path().join("log2"), &[]);
    let mut again = Client::new(&server.url);
    again.cookie = c.cookie.clone();
    let infos = spread(&mut again, 10);
    assert!(
        infos.iter().all(|i| i["user"] == "ada" && i["atomic"] == 1),
        "{infos:?}"
    );
}

#[test]
fn memory_sessions_are_per_worker_and_gone_with_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(2, "memory", &dir.path().join("log1"), &[]);
    let mut c = Client::new(&server.url);
    let login = c.login("ada");
    let home = login["worker"].as_u64().unwrap();
    let cookie = c.cookie.clone();
    let infos = spread(&mut c, 40);
    // Requests served by the login's worker see the session; the first served by
    // another worker does not (that worker has no such session, and tower-sessions
    // then drops the cookie: the user is logged out).
    let foreign = infos
        .iter()
        .position(|i| i["worker"].as_u64() != Some(home))
        .expect("40 requests all served by one worker");
    assert!(
        infos[..foreign].iter().all(|i| i["user"] == "ada"),
        "{infos:?}"
    );
    assert!(infos[foreign]["user"].is_null(), "{infos:?}");
    server.stop();
    let server = Server::start(2, "memory", &dir.path().join("log2"), &[]);
    let mut again = Client::new(&server.url);
    again.cookie = cookie;
    assert!(spread(&mut again, 10).iter().all(|i| i["user"].is_null()));
}

#[test]
fn bad_input_gets_a_clear_answer_and_the_workers_survive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(2, &fastmmap(&dir), &dir.path().join("log"), &[]);
    let mut c = Client::new(&server.url);
    c.login("ada");
    // Both workers' pids, however the kernel spreads the first requests (20 of them
    // could all reach one worker, and the check at the end then took the other for a
    // replacement).
    let mut pids: HashSet<u64> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.len() < 2 && Instant::now() < deadline {
        pids.insert(c.get("/api/session")["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2, "both workers answer: {pids:?}");
    // Forged, malformed and over-long cookies: no session, no error.
    for cookie in [
        "demo_sid=AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "demo_sid=%%%not-an-id%%%".to_owned(),
        "demo_sid=".to_owned(),
        format!("demo_sid={}", "A".repeat(6000)),
        "demo_sid=\"quoted\"; other=1; demo_sid=twice".to_owned(),
    ] {
        let (s, v) = c.get_with_cookie_header("/api/session", &cookie).unwrap();
        assert_eq!(s, 200, "{cookie:.40}");
        assert!(v["user"].is_null(), "{cookie:.40}: {v}");
    }
    // Far larger than any cookie: no session, or refused by the HTTP layer (hyper takes
    // headers up to about 400 kB); never a crash.
    match c.get_with_cookie_header("/api/session", &format!("demo_sid={}", "A".repeat(200_000))) {
        Ok((200, v)) => assert!(v["user"].is_null(), "{v}"),
        Ok((s, v)) => assert!((400..500).contains(&s), "{s}: {v}"),
        Err(e) => eprintln!("a 200 kB cookie: connection closed ({e})"),
    }
    // A user name that is not one.
    let (s, v) = c.post("/api/login", Some(json!({"user": ""}))).unwrap();
    assert_eq!(s, 400, "{v}");
    let (s, _) = c.post("/api/login", Some(json!({"nope": 1}))).unwrap();
    assert!((400..500).contains(&s), "{s}");
    // A session value over the store's limit: 413 and a log line, nothing stored; one
    // at the limit is stored whole.
    let max = c.get("/api/limits")["max_note"].as_u64().unwrap() as usize;
    assert!(max > 1000 && max < 1_500_000, "{max}");
    let (s, v) = c
        .put("/api/note", json!({"note": "x".repeat(max + 1)}))
        .unwrap();
    assert_eq!(s, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("does not fit"), "{v}");
    let (s, v) = c
        .put("/api/note", json!({"note": "y".repeat(max)}))
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.get("/api/session")["note_len"], json!(max));
    let (s, v) = c.put("/api/note", json!({"note": "short"})).unwrap();
    assert_eq!(s, 200, "{v}");
    // The same workers still serve, with the session intact.
    let infos = spread(&mut c, 20);
    assert!(
        infos
            .iter()
            .all(|i| i["user"] == "ada" && i["note_len"] == 5),
        "{infos:?}"
    );
    let now: HashSet<u64> = infos.iter().map(|i| i["pid"].as_u64().unwrap()).collect();
    assert!(
        now.is_subset(&pids),
        "a worker was replaced: {pids:?} -> {now:?}"
    );
    let log = server.log_text();
    assert!(log.contains("note too large"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn redis_sessions_are_shared_by_every_worker() {
    let Some(redis) = redis_support::RedisServer::start("demo_e2e", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redis={}", redis.url());
    let server = Server::start(2, &store, &dir.path().join("log"), &[]);
    let mut c = Client::new(&server.url);
    c.login("ada");
    for _ in 0..5 {
        let (s, v) = c.post("/api/incr-atomic", None).unwrap();
        assert_eq!(s, 200, "{v}");
    }
    let infos = spread(&mut c, 30);
    assert!(workers(&infos).len() >= 2, "{:?}", workers(&infos));
    assert!(
        infos.iter().all(|i| i["user"] == "ada" && i["atomic"] == 5),
        "{infos:?}"
    );
}
