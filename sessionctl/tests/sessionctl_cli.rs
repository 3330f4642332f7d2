//! `sessionctl` driven as an operator drives it: the binary, against real files (one made
//! and damaged here) and a real redis-server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use store_api::{Expiry, Key, SessionStore, WriteMode};
use store_fastmmap::FastMmapStore;

fn sessionctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(args)
        .output()
        .expect("running sessionctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure as the CLI promises it: the given status, one line on standard error
/// starting with `sessionctl:`, nothing on standard output, no panic.
fn assert_fails(o: &Output, code: i32, mentions: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "status; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("sessionctl: "), "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
    assert!(
        err.contains(mentions),
        "{err:?} does not mention {mentions:?}"
    );
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// A store file with ten tower-sessions-like JSON records, two text ones and one
/// binary one.
fn made_file(dir: &Path) -> PathBuf {
    let path = dir.join("sessions");
    let s = FastMmapStore::builder()
        .storage(&path)
        .page_size(4096)
        .num_pages(4)
        .open()
        .unwrap();
    for i in 0..10 {
        let v = format!(r#"{{"tower_sessions":1,"data":{{"user":"u{i}","n":{i}}}}}"#);
        s.put(
            &key(&format!("tower-sessions:{i:04}")),
            v.as_bytes(),
            Expiry::After(Duration::from_secs(3600)),
            WriteMode::Upsert,
        )
        .unwrap();
    }
    for k in ["user:ada:1", "user:ada:2"] {
        s.put(&key(k), b"plain text", Expiry::Never, WriteMode::Upsert)
            .unwrap();
    }
    s.put(
        &key("bin"),
        &[0, 1, 2, 255],
        Expiry::Never,
        WriteMode::Upsert,
    )
    .unwrap();
    path
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A futex-kind file: the tool adopts the file's kind, says which it is, and reports the
/// whole file's length (the lock table follows the pages).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn stats_and_verify_work_on_a_futex_kind_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions");
    let s = FastMmapStore::builder()
        .storage(&path)
        .page_size(4096)
        .num_pages(4)
        .lock_kind(store_fastmmap::LockKind::Futex)
        .open()
        .unwrap();
    s.put(&key("a"), b"1", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let p = path.to_str().unwrap();
    let o = sessionctl(&[p, "stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("lock kind              futex"),
        "{}",
        stdout(&o)
    );
    let o = sessionctl(&[p, "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lock_kind"], "futex");
    assert_eq!(v["file_len"], 4096 + 4 * 4096 + 4 * 64);
    let o = sessionctl(&[p, "verify"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    drop(s);
}

#[test]
fn stats_list_and_get_show_what_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = made_file(dir.path());
    let p = path.to_str().unwrap();

    let o = sessionctl(&[p, "stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("4 pages of 4096 bytes (20480 bytes in all)"),
        "{text}"
    );
    assert!(text.contains("lock kind              fcntl"), "{text}");
    assert!(text.contains("entries                13"), "{text}");

    let o = sessionctl(&[p, "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["entries"], 13);
    assert_eq!(v["num_pages"], 4);
    let pages: u64 = v["page_fill_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["pages"].as_u64().unwrap())
        .sum();
    assert_eq!(pages, 4, "every page is in one bucket");

    let o = sessionctl(&[p, "stats", "--prometheus"]);
    let prom = stdout(&o);
    assert!(
        prom.contains("# TYPE session_store_entries gauge\nsession_store_entries{engine=\"store-fastmmap\"} 13\n"),
        "{prom}"
    );
    assert!(prom.contains("session_store_page_fill_ratio_count{engine=\"store-fastmmap\"} 4"));
    assert!(
        prom.contains("session_store_evictions_total{engine=\"store-fastmmap\",kind=\"live\"} 0")
    );

    let o = sessionctl(&[p, "list"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 13);
    let o = sessionctl(&[p, "list", "--prefix", "user:ada:", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["user:ada:1", "user:ada:2"]);
    assert_eq!(lines[0]["value_len"], 10);

    let o = sessionctl(&[p, "get", "tower-sessions:0003"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["data"]["user"], "u3", "the record, decoded");
    assert!(stdout(&o).contains("\n  "), "pretty-printed");
    let o = sessionctl(&[p, "get", "user:ada:1", "--raw"]);
    assert_eq!(o.stdout, b"plain text");
    let o = sessionctl(&[p, "get", "bin"]);
    assert!(
        stdout(&o).starts_with("00000000  00 01 02 ff"),
        "{}",
        stdout(&o)
    );
    let o = sessionctl(&[p, "get", "bin", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["value"]["hex"], "000102ff");
    assert_fails(
        &sessionctl(&[p, "get", "nobody"]),
        1,
        "no live session under nobody",
    );
}

#[test]
fn delete_touch_purge_and_clear_change_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = made_file(dir.path());
    let p = path.to_str().unwrap();
    let o = sessionctl(&[p, "delete", "user:ada:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails(
        &sessionctl(&[p, "delete", "user:ada:1"]),
        1,
        "no live session",
    );
    let o = sessionctl(&[p, "touch", "user:ada:2", "90s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails(
        &sessionctl(&[p, "touch", "user:ada:2", "soon"]),
        1,
        "not a duration",
    );
    let s = FastMmapStore::open(&path).unwrap();
    let e = s.get(&key("user:ada:2")).unwrap().unwrap();
    assert!(e.expires_at.is_some(), "touched");
    assert_eq!(s.get(&key("user:ada:1")).unwrap(), None, "deleted");
    let o = sessionctl(&[p, "purge"]);
    assert!(
        stdout(&o).starts_with("purged 0 expired sessions"),
        "{}",
        stdout(&o)
    );
    // Clear asks for --yes and changes nothing without it.
    assert_fails(&sessionctl(&[p, "clear"]), 1, "--yes");
    assert_eq!(s.stats().unwrap().entries, 12);
    let o = sessionctl(&[p, "clear", "--yes"]);
    assert_eq!(stdout(&o), "cleared: 12 live sessions removed\n");
    assert_eq!(
        s.stats().unwrap().entries,
        0,
        "the open store sees the clear"
    );
    s.put(&key("after"), b"x", Expiry::Never, WriteMode::CreateOnly)
        .unwrap();
    let o = sessionctl(&[p, "watch", "--interval", "50ms", "--count", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
}

#[test]
fn verify_finds_damage_without_changing_the_file_and_repairs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = made_file(dir.path());
    let p = path.to_str().unwrap();
    let o = sessionctl(&[p, "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("4 pages, 13 records: 0 fail their checks"),
        "{}",
        stdout(&o)
    );

    // Damage the value of one record: flip the last byte of the last used word of the
    // page holding `user:ada:1`, inside its data area.
    let s = FastMmapStore::open(&path).unwrap();
    let page = s.page_of(&key("user:ada:1"));
    let range = s.page_range(page).unwrap();
    drop(s);
    let mut bytes = file_bytes(&path);
    let end = range.end as usize;
    // Records are packed at the page's end: its last word is the value of a record.
    bytes[end - 9] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let o = sessionctl(&[p, "verify"]);
    assert_eq!(o.status.code(), Some(2), "damage: {}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("page {page}: damaged")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("1 fail their checks"), "{}", stdout(&o));
    assert_eq!(file_bytes(&path), bytes, "verify changed the file");

    let o = sessionctl(&[p, "verify", "--repair"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("repaired"), "{}", stdout(&o));
    let o = sessionctl(&[p, "verify"]);
    assert!(o.status.success(), "clean after the repair: {}", stdout(&o));
    let o = sessionctl(&[p, "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["repairs"], 1, "the file counts the repair");
    assert_eq!(v["lost_in_repair"], 1);
    assert_eq!(v["entries"], 12);
}

#[test]
fn bad_stores_are_one_line_and_nothing_is_created_or_changed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let o = sessionctl(&[missing.to_str().unwrap(), "stats"]);
    assert_fails(&o, 1, "no session store file there");
    assert!(!missing.exists(), "a missing file was created");
    let nodir = dir.path().join("no-such-dir").join("sessions");
    assert_fails(
        &sessionctl(&[nodir.to_str().unwrap(), "list"]),
        1,
        "no-such-dir",
    );
    assert!(!nodir.parent().unwrap().exists(), "a directory was created");

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_fails(&sessionctl(&[empty.to_str().unwrap(), "stats"]), 1, "empty");
    assert_eq!(file_bytes(&empty), b"", "an empty file was initialised");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a session store\n".repeat(300)).unwrap();
    std::fs::set_permissions(&text, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let before = file_bytes(&text);
    assert_fails(
        &sessionctl(&[text.to_str().unwrap(), "list"]),
        1,
        "not a session store file",
    );
    assert_eq!(file_bytes(&text), before);

    // A store file of another format version (its header checksum made right again).
    let path = made_file(dir.path());
    let mut b = file_bytes(&path);
    b[8..12].copy_from_slice(&9u32.to_le_bytes());
    b[40..48].fill(0);
    let sum = xxhash_rust::xxh3::xxh3_64(&b[..256]);
    b[40..48].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    assert_fails(
        &sessionctl(&[path.to_str().unwrap(), "stats"]),
        1,
        "version",
    );
    assert_eq!(
        file_bytes(&path),
        b,
        "a file of another version was changed"
    );

    assert_fails(
        &sessionctl(&[path.to_str().unwrap(), "--redis-prefix", "x:", "stats"]),
        1,
        "redis",
    );
    // A Redis that is down.
    let o = sessionctl(&["redis://127.0.0.1:1/0", "list"]);
    assert_fails(&o, 1, "127.0.0.1:1");
    // A usage error is clap's, with its usage text and status 2.
    let o = sessionctl(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage"), "{}", stderr(&o));
}

#[test]
fn a_real_redis_server_is_listed_read_and_cleared_under_its_prefix() {
    let Some(server) = store_redis::test_server::RedisServer::start("sessionctl", &[]) else {
        return;
    };
    let store = server.store("app1:");
    let other = server.store("app2:");
    for i in 0..25 {
        store
            .put(
                &key(&format!("tower-sessions:{i}")),
                br#"{"tower_sessions":1,"data":{}}"#,
                Expiry::After(Duration::from_secs(600)),
                WriteMode::Upsert,
            )
            .unwrap();
    }
    other
        .put(&key("keep"), b"other app", Expiry::Never, WriteMode::Upsert)
        .unwrap();
    let url = server.url();
    let args = |rest: &[&str]| {
        let mut v = vec![url.as_str(), "--redis-prefix", "app1:"];
        v.extend_from_slice(rest);
        sessionctl(&v)
    };
    let o = args(&["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 25);
    let o = args(&["get", "tower-sessions:7"]);
    assert!(
        stdout(&o).contains("\"tower_sessions\": 1"),
        "{}",
        stdout(&o)
    );
    let o = args(&["stats", "--prometheus"]);
    assert!(
        stdout(&o).contains("session_store_entries{engine=\"store-redis\"} 25"),
        "{}",
        stdout(&o)
    );
    let o = args(&["watch", "--interval", "50ms", "--count", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails(&args(&["verify"]), 1, "redis-check");
    let o = args(&["clear", "--yes"]);
    assert_eq!(
        stdout(&o),
        "cleared: 25 live sessions removed\n",
        "{}",
        stderr(&o)
    );
    assert_eq!(args(&["list"]).stdout, b"");
    assert_eq!(
        other.get(&key("keep")).unwrap().unwrap().value,
        b"other app",
        "another prefix's sessions survive"
    );
}

/// A reader that went away (`sessionctl FILE list | head -1`) ends the command quietly,
/// as for every Unix filter: no error line, status 0.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = made_file(dir.path());
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args([path.to_str().unwrap(), "list"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// `watch` turns the pages' write clocks into writes per second: a writer running while
/// it watches shows up, and an idle store shows zero.
#[test]
fn watch_counts_the_writes_of_a_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = made_file(dir.path());
    let p = path.to_str().unwrap().to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let s = FastMmapStore::open(&path).unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.put(
                    &key("busy"),
                    &i.to_le_bytes(),
                    Expiry::Never,
                    WriteMode::Upsert,
                )
                .unwrap();
                i += 1;
            }
        })
    };
    let o = sessionctl(&[&p, "watch", "--interval", "200ms", "--count", "2"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let out = stdout(&o);
    let rates: Vec<f64> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rates.len(), 2, "{out}");
    assert!(rates.iter().all(|&r| r > 100.0), "a busy writer: {out}");
    let o = sessionctl(&[&p, "watch", "--interval", "100ms", "--count", "1"]);
    let idle: f64 = stdout(&o)
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(idle, 0.0, "{}", stdout(&o));
}
