//! The crash campaign: several worker processes run the mixed workload of
//! `support/mixed.rs` (puts, updates, deletes, rotates; values of 24 to 375 bytes, so
//! pages compact and records move onto themselves) on one file, and all are SIGKILLed at
//! once: at a random moment, or when one of them reaches a failpoint. Then, before
//! anything repairs it, the pages a writer died in are those with an odd seqlock
//! counter, and every key of every worker must hold what the operations acknowledged
//! (or, for each worker's one operation in flight, its result):
//! - no hang: the whole check finishes within its time limit;
//! - no key lost or changed outside the damaged pages, and no wrong value anywhere;
//! - keys lost in a damaged page are exactly the records the repair counted
//!   (`lost_in_repair`).
//!
//! Trials alternate between the two lock kinds (odd seeds: futex). `cargo test` runs a
//! short campaign; `FASTMMAP_CAMPAIGN_TRIALS=N` runs N random kills
//! and N/10 (at least 3) kills per failpoint, and prints the figures in FORMAT.md.

#[path = "support/mixed.rs"]
mod mixed;
mod support;

use std::io::{BufRead as _, Read as _};
use std::process::{Child, Stdio};
use std::time::Duration;

use store_api::{Key, SessionStore};
use store_fastmmap::{Failpoint, FastMmapStore};
use support::{Fixture, worker};

const WORKERS: u64 = 3;
const PAGE_SIZE: u32 = 16 << 10;
const PAGES: u32 = 8;

/// What one trial saw.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    trials: u64,
    /// Trials whose kill hit no failpoint in time (failpoint trials only).
    not_reached: u64,
    /// Trials that left at least one page mid-write.
    damaged_trials: u64,
    damaged_pages: u64,
    hangs: u64,
    lost_outside: u64,
    lost_inside: u64,
    counted_lost: u64,
    wrong: u64,
    /// Operations the workers completed, in all.
    ops: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.trials += o.trials;
        self.not_reached += o.not_reached;
        self.damaged_trials += o.damaged_trials;
        self.damaged_pages += o.damaged_pages;
        self.hangs += o.hangs;
        self.lost_outside += o.lost_outside;
        self.lost_inside += o.lost_inside;
        self.counted_lost += o.counted_lost;
        self.wrong += o.wrong;
        self.ops += o.ops;
    }
}

fn rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

struct Workers(Vec<Child>);

impl Workers {
    fn spawn(path: &str, seed: u64, armed: Option<Failpoint>) -> Workers {
        Workers(
            (0..WORKERS)
                .map(|w| {
                    let mut c = worker();
                    c.args(["mixed", path, &w.to_string(), &seed.to_string()])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    if let (0, Some(fp)) = (w, armed) {
                        c.env("FASTMMAP_FAILPOINT", fp.name());
                    }
                    c.spawn().unwrap()
                })
                .collect(),
        )
    }

    /// Kills every worker at one instant, as a SIGKILL of their process group would:
    /// each is stopped first (SIGSTOP, waited for), so that none takes over a lock
    /// another just died holding (and repairs its page) before it is killed too. Returns
    /// the index of the last operation each acknowledged.
    #[allow(unsafe_code)]
    fn kill_all(mut self) -> Vec<Option<u64>> {
        for c in &self.0 {
            // SAFETY: kill has no preconditions; the pid is our child's.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGSTOP) };
        }
        for c in &self.0 {
            let mut status = 0;
            // SAFETY: waiting for our own child with a valid out pointer.
            unsafe { libc::waitpid(c.id() as libc::pid_t, &mut status, libc::WUNTRACED) };
        }
        for c in &mut self.0 {
            let _ = c.kill();
        }
        let mut acked = Vec::new();
        for c in &mut self.0 {
            let _ = c.wait();
            let mut out = String::new();
            c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(
                !err.contains("worker error"),
                "a worker failed by itself: {err}"
            );
            acked.push(out.lines().rev().find_map(|l| l.parse().ok()));
        }
        acked
    }
}

/// Waits until worker 0 prints the failpoint line; false after `limit`.
fn wait_for_failpoint(workers: &mut Workers, limit: Duration) -> bool {
    let stderr = workers.0[0].stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("FAILPOINT") {
                let _ = tx.send(());
            }
            line.clear();
        }
    });
    let reached = rx.recv_timeout(limit).is_ok();
    // Put a stderr back so `kill_all` can read it (the thread keeps the real one).
    workers.0[0].stderr = Some(empty_stderr());
    reached
}

fn empty_stderr() -> std::process::ChildStderr {
    let mut c = std::process::Command::new("true")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = c.wait();
    c.stderr.take().unwrap()
}

/// Pages left mid-write: an odd seqlock counter (the page's first word).
fn damaged_pages(path: &std::path::Path) -> Vec<u32> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    (0..PAGES)
        .filter(|&i| {
            let mut seq = [0u8; 8];
            f.read_exact_at(&mut seq, support::page_offset(PAGE_SIZE, i))
                .unwrap();
            u64::from_le_bytes(seq) % 2 == 1
        })
        .collect()
}

/// The lock kind of a trial's file: odd seeds use the futex kind (on Linux), so both
/// kinds run the campaign at no extra cost.
fn kind_of(seed: u64) -> store_fastmmap::LockKind {
    if seed % 2 == 1 && cfg!(all(target_os = "linux", target_env = "gnu")) {
        store_fastmmap::LockKind::Futex
    } else {
        store_fastmmap::LockKind::Fcntl
    }
}

/// One trial: workers started on a fresh file with `seed` (and its lock kind,
/// [`kind_of`]), killed at a random moment (`armed` = None) or once worker 0 stops at
/// `armed`.
fn trial(seed: u64, armed: Option<Failpoint>) -> Tally {
    let fx = Fixture::new();
    drop(
        FastMmapStore::builder()
            .storage(fx.path())
            .page_size(PAGE_SIZE)
            .num_pages(PAGES)
            .lock_kind(kind_of(seed))
            .open()
            .unwrap(),
    );
    let path = fx.path();
    let p = path.to_str().unwrap().to_owned();
    let mut t = Tally {
        trials: 1,
        ..Tally::default()
    };
    // A journalled move is finished by the repair that is killed: first a mover dies.
    let first = match armed {
        Some(Failpoint::RepairMidJournal) => Some(Failpoint::CompactMidMove),
        other => other,
    };
    let mut workers = Workers::spawn(&p, seed, first);
    match first {
        None => {
            let mut x = seed | 1;
            std::thread::sleep(Duration::from_millis(20 + rand(&mut x) % 80));
        }
        Some(_) => {
            if !wait_for_failpoint(&mut workers, Duration::from_secs(5)) {
                workers.kill_all();
                t.not_reached = 1;
                return t;
            }
        }
    }
    let acked = workers.kill_all();
    if armed == Some(Failpoint::RepairMidJournal) {
        let Some(&page) = damaged_pages(&path).first() else {
            t.not_reached = 1;
            return t;
        };
        let stopped = support::stop_worker_at_or_exit(
            Failpoint::RepairMidJournal,
            &["put-page", &p, &page.to_string()],
        );
        if !stopped {
            t.not_reached = 1;
            return t;
        }
    }
    t.ops = acked.iter().map(|a| a.map_or(0, |j| j + 1)).sum();
    let damaged = damaged_pages(&path);
    t.damaged_pages = damaged.len() as u64;
    t.damaged_trials = u64::from(!damaged.is_empty());
    // The check, under a time limit: a hang is counted, not waited for.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(check(&path, seed, &acked, &damaged));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(c) => {
            t.lost_outside = c.lost_outside;
            t.lost_inside = c.lost_inside;
            t.counted_lost = c.counted_lost;
            t.wrong = c.wrong;
        }
        Err(_) => t.hangs = 1,
    }
    drop(fx);
    t
}

/// Reads every key of every worker and compares with what its operations left.
fn check(path: &std::path::Path, seed: u64, acked: &[Option<u64>], damaged: &[u32]) -> Tally {
    let s = FastMmapStore::builder()
        .storage(path)
        .read_lock_timeout(Duration::from_secs(10))
        .open()
        .unwrap();
    let mut t = Tally::default();
    for (w, &last) in (0..WORKERS).zip(acked) {
        let mut before: Vec<mixed::Held> = vec![None; mixed::KEYS as usize];
        let mut ops = mixed::Ops::new(w, seed);
        let done = last.map_or(0, |j| j + 1);
        for j in 0..done {
            mixed::apply(&mut before, j, ops.next().unwrap());
        }
        let in_flight = ops.next().unwrap();
        let mut after = before.clone();
        mixed::apply(&mut after, done, in_flight);
        let want = |h: mixed::Held| h.map(|(j, len)| mixed::value(w, j, len));
        let mut got = Vec::new();
        for i in 0..mixed::KEYS {
            let k = Key::new(mixed::key_name(w, i)).unwrap();
            let v = match s.get(&k) {
                Ok(e) => e.map(|e| e.value),
                Err(e) => {
                    eprintln!("worker {w} key {i}: {e}");
                    t.wrong += 1;
                    continue;
                }
            };
            let on_damaged = damaged.contains(&s.page_of(&k));
            let (b, a) = (want(before[i as usize]), want(after[i as usize]));
            if v == b || v == a {
                got.push(v);
                continue;
            }
            if v.is_none() {
                if on_damaged {
                    t.lost_inside += 1;
                } else {
                    eprintln!("worker {w} key {i} lost outside the damaged pages {damaged:?}");
                    t.lost_outside += 1;
                }
            } else {
                eprintln!("worker {w} key {i}: a value neither before nor after op {done}");
                t.wrong += 1;
            }
            got.push(v);
        }
        // A rotate in flight: the value survives under one of its two names.
        if let mixed::Op::Rotate { from, to } = in_flight
            && before[from as usize].is_some()
            && before[to as usize].is_none()
            && got.len() == mixed::KEYS as usize
            && got[from as usize].is_none()
            && got[to as usize].is_none()
        {
            let k = Key::new(mixed::key_name(w, from)).unwrap();
            if damaged.contains(&s.page_of(&k)) {
                t.lost_inside += 1;
            } else {
                t.lost_outside += 1;
            }
        }
    }
    t.counted_lost = s.lost_in_repair();
    // Every page works again.
    for page in 0..PAGES {
        let k = support::keys_on_page(&s, page, 1).remove(0);
        s.put(
            &k,
            b"after",
            store_api::Expiry::Never,
            store_api::WriteMode::Upsert,
        )
        .unwrap();
    }
    t
}

fn trials_from_env(default: u64) -> u64 {
    std::env::var("FASTMMAP_CAMPAIGN_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn assert_sound(what: &str, t: &Tally) {
    eprintln!("{what}: {t:?}");
    assert_eq!(t.hangs, 0, "{what}: hangs");
    assert_eq!(
        t.lost_outside, 0,
        "{what}: keys lost outside the damaged pages"
    );
    assert_eq!(t.wrong, 0, "{what}: wrong values or errors");
    assert_eq!(
        t.lost_inside, t.counted_lost,
        "{what}: keys lost in damaged pages against those the repair counted"
    );
}

#[test]
fn random_sigkills_of_every_writer_lose_only_what_repair_counts() {
    let n = trials_from_env(30);
    let mut total = Tally::default();
    for i in 0..n {
        let seed = 0x5eed_0000 + i;
        let t = trial(seed, None);
        assert_sound(
            &format!("random kill, seed {seed:#x}, {} kind", kind_of(seed)),
            &t,
        );
        total += t;
    }
    eprintln!("random kills, all: {total:?}");
    assert!(total.ops > 0);
}

#[test]
fn a_writer_killed_at_each_failpoint_with_others_running_loses_only_what_repair_counts() {
    let per = (trials_from_env(30) / 10).max(3);
    let mut reached = 0;
    for fp in Failpoint::ALL {
        let mut total = Tally::default();
        for i in 0..per {
            let seed = 0xfa11_0000 + i;
            let t = trial(seed, Some(fp));
            assert_sound(
                &format!("{}, trial {i}, {} kind", fp.name(), kind_of(seed)),
                &t,
            );
            total += t;
        }
        eprintln!("{}: {total:?}", fp.name());
        if total.not_reached < total.trials {
            reached += 1;
        }
    }
    assert!(
        reached >= 6,
        "only {reached} failpoints were reached by the workload"
    );
}
