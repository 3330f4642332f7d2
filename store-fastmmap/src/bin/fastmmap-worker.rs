//! Worker process for the multi-process tests of `store-fastmmap`.
//!
//! Tests spawn it with `env!("CARGO_BIN_EXE_fastmmap-worker")` instead of forking the
//! (multi-threaded) test process. Every command opens the store file given as its first
//! argument with the file's own geometry, prints `ok ...` on success and exits non-zero
//! on any error or failed check. `FASTMMAP_FAILPOINT` stops a writer at a chosen step
//! when the crate is built with the `failpoints` feature (as its tests are); see the
//! crate's `Failpoint`.
//!
//! Commands:
//! - `incr PATH KEY N`: N atomic `update`s adding 1 to a decimal counter.
//! - `fork-incr PATH KEY N`: opens, writes once, forks; parent and child each run N
//!   increments (checks that a child forked after open excludes its parent).
//! - `write PATH PREFIX KEYS ITERS VLEN`: upserts self-checking values round-robin.
//! - `read PATH PREFIX KEYS ITERS`: reads and verifies self-checking values.
//! - `put PATH PREFIX COUNT VLEN`: writes COUNT keys `PREFIX<i>` once each.
//! - `delete PATH PREFIX COUNT`: deletes keys `PREFIX<i>`.
//! - `rotate PATH FROM TO`: renames FROM to TO (`rotate`), printing whether it moved.
//! - `fork-hold PATH SECS`: forks a child that sleeps SECS without touching the store
//!   (its pid printed on stderr as `child PID`), then writes key `hold0` (with
//!   `FASTMMAP_FAILPOINT` it stops there, holding the page lock).
//! - `clone-incr PATH KEY N`: increments once, then makes a child with the raw `clone`
//!   system call (no fork handler runs); parent and child each increment N times.
//! - `fork-busy PATH KEY FORKS`: a thread writes KEY in a loop while the main thread
//!   forks FORKS children, each writing KEY once under a 2 s alarm; fails if one hangs
//!   or fails.
//! - `fork-chdir PATH KEY`: writes KEY, forks; the child changes to `/` and writes KEY
//!   (a relative PATH must still reach the file).
//! - `update-fork PATH KEY`: an `update` closure of KEY forks: the child's update must
//!   fail, the parent's sets `parent`.
//! - `reinit PATH PAGE_SIZE NUM_PAGES TIMES`: opens with `init_file(true)` TIMES times.
//! - `mixed PATH WORKER SEED`: runs worker WORKER's operations of the crash campaign's
//!   mixed workload (`tests/support/mixed.rs`) until killed, printing the index of each
//!   completed one on its own line (never-evict-live: any error ends it).
//! - `put-page PATH PAGE`: upserts a key that hashes to page PAGE.
//! - `open PATH PAGE_SIZE NUM_PAGES KEY [KIND]`: opens with that geometry (creating the
//!   file, with lock kind KIND if given: `fcntl` or `futex`), create-only writes KEY,
//!   prints the file's secret-dependent page of KEY.

use std::process::ExitCode;

#[path = "../../tests/support/mixed.rs"]
mod mixed;

use store_api::{Expiry, Key, SessionStore, UpdateAction, WriteMode};
use store_fastmmap::FastMmapStore;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(msg) => {
            println!("ok {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker error: {e}");
            ExitCode::FAILURE
        }
    }
}

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> R<T>
where
    T::Err: std::fmt::Display,
{
    let s = args.get(i).ok_or_else(|| format!("missing argument {i}"))?;
    s.parse::<T>()
        .map_err(|e| format!("argument {i} ({s}): {e}").into())
}

fn key(prefix: &str, i: u64) -> R<Key> {
    Ok(Key::new(format!("{prefix}{i}"))?)
}

/// A value that proves it belongs to `key` and was written whole: a header naming the
/// writer's sequence number, a body derived from key and sequence, a trailing hash.
pub fn selfcheck_value(key: &Key, seq: u64, len: usize) -> Vec<u8> {
    let len = len.max(16);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&seq.to_le_bytes());
    let mut x = twox_hash::XxHash3_64::oneshot_with_seed(seq, key.as_bytes());
    while v.len() < len - 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    let h = twox_hash::XxHash3_64::oneshot(&v);
    v.extend_from_slice(&h.to_le_bytes());
    v
}

fn verify(key: &Key, v: &[u8]) -> R<()> {
    if v.len() < 16 {
        return Err(format!("{key}: value of {} bytes is too short", v.len()).into());
    }
    let seq = u64::from_le_bytes(v[..8].try_into()?);
    if selfcheck_value(key, seq, v.len()) != v {
        return Err(format!(
            "{key}: torn or foreign value (seq {seq}, {} bytes)",
            v.len()
        )
        .into());
    }
    Ok(())
}

fn incr(store: &FastMmapStore, k: &Key, n: u64) -> R<()> {
    for _ in 0..n {
        store.update(k, &mut |e| {
            let cur: u64 = e
                .map(|e| String::from_utf8_lossy(&e.value).parse().unwrap_or(0))
                .unwrap_or(0);
            UpdateAction::set((cur + 1).to_string().into_bytes(), Expiry::Never)
        })?;
    }
    Ok(())
}

/// The `mixed` command: never returns but on an error.
fn run_mixed(path: &str, w: u64, seed: u64) -> R<String> {
    use std::io::Write as _;
    let store = FastMmapStore::builder()
        .storage(path)
        .policy(store_api::EvictionPolicy::NeverEvictLive)
        .open()?;
    let mut out = std::io::stdout().lock();
    for (j, op) in (0u64..).zip(mixed::Ops::new(w, seed)) {
        let k = |i| Key::new(mixed::key_name(w, i));
        match op {
            mixed::Op::Put { key, len } => {
                store.put(
                    &k(key)?,
                    &mixed::value(w, j, len),
                    Expiry::Never,
                    WriteMode::Upsert,
                )?;
            }
            mixed::Op::Update { key, len } => {
                let v = mixed::value(w, j, len);
                store.update(&k(key)?, &mut |_| {
                    UpdateAction::set(v.clone(), Expiry::Never)
                })?;
            }
            mixed::Op::Delete { key } => {
                store.delete(&k(key)?)?;
            }
            mixed::Op::Rotate { from, to } => match store.rotate(&k(from)?, &k(to)?) {
                Ok(_) | Err(store_api::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            },
        }
        // One write per line: completed operations reach the pipe before a kill.
        writeln!(out, "{j}")?;
        out.flush()?;
    }
    Ok("mixed".into())
}

fn fork() -> R<libc::pid_t> {
    // SAFETY: fork has no preconditions; the callers' children run only what a child of
    // this worker may (see each command).
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("fork failed".into());
    }
    Ok(pid)
}

/// Waits for child `pid`; an error unless it exited with status 0.
fn wait_ok(pid: libc::pid_t) -> R<()> {
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid out pointer.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    if rc != pid {
        return Err(format!("waitpid({pid}) returned {rc}").into());
    }
    if libc::WIFSIGNALED(status) {
        return Err(format!("child {pid} killed by signal {}", libc::WTERMSIG(status)).into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("child {pid} exited with status {status}").into());
    }
    Ok(())
}

fn run(args: &[String]) -> R<String> {
    let cmd = args.first().ok_or("no command")?;
    let path: String = arg(args, 1)?;
    if cmd == "open" {
        let mut b = FastMmapStore::builder()
            .storage(&path)
            .page_size(arg(args, 2)?)
            .num_pages(arg(args, 3)?);
        if args.len() > 5 {
            b = b.lock_kind(arg::<String>(args, 5)?.parse::<store_fastmmap::LockKind>()?);
        }
        let store = b.open()?;
        let k = Key::new(arg::<String>(args, 4)?)?;
        store.put(&k, b"x", Expiry::Never, WriteMode::CreateOnly)?;
        return Ok(format!("page {}", store.page_of(&k)));
    }
    if cmd == "mixed" {
        return run_mixed(&path, arg(args, 2)?, arg(args, 3)?);
    }
    let store = FastMmapStore::open(&path)?;
    match cmd.as_str() {
        "put-page" => {
            let page: u32 = arg(args, 2)?;
            let k = (0..)
                .map(|i| key("x", i))
                .find(|k| k.as_ref().is_ok_and(|k| store.page_of(k) == page))
                .ok_or("no key for that page")??;
            store.put(&k, b"x", Expiry::Never, WriteMode::Upsert)?;
            Ok(format!("put-page {k}"))
        }
        "incr" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            incr(&store, &k, arg(args, 3)?)?;
            Ok("incr".into())
        }
        "fork-incr" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            let n: u64 = arg(args, 3)?;
            // Use the descriptor (and its OFD locks) before forking.
            incr(&store, &k, 1)?;
            // This worker is single-threaded here, so the child may run any code.
            let pid = fork()?;
            incr(&store, &k, n)?;
            if pid == 0 {
                std::process::exit(0);
            }
            wait_ok(pid)?;
            Ok("fork-incr".into())
        }
        "write" => {
            let prefix: String = arg(args, 2)?;
            let (keys, iters, vlen): (u64, u64, usize) =
                (arg(args, 3)?, arg(args, 4)?, arg(args, 5)?);
            let salt = u64::from(std::process::id()) << 32;
            for i in 0..iters {
                let k = key(&prefix, i % keys)?;
                let v = selfcheck_value(&k, salt | i, vlen + (i as usize % 64));
                store.put(&k, &v, Expiry::Never, WriteMode::Upsert)?;
            }
            Ok("write".into())
        }
        "read" => {
            let prefix: String = arg(args, 2)?;
            let (keys, iters): (u64, u64) = (arg(args, 3)?, arg(args, 4)?);
            let mut buf = Vec::new();
            let mut hits = 0u64;
            for i in 0..iters {
                let k = key(&prefix, i % keys)?;
                if store.get_into(&k, &mut buf)?.is_some() {
                    verify(&k, &buf)?;
                    hits += 1;
                }
            }
            Ok(format!("hits {hits}"))
        }
        "put" => {
            let prefix: String = arg(args, 2)?;
            let (count, vlen): (u64, usize) = (arg(args, 3)?, arg(args, 4)?);
            for i in 0..count {
                let k = key(&prefix, i)?;
                store.put(
                    &k,
                    &selfcheck_value(&k, i, vlen),
                    Expiry::Never,
                    WriteMode::Upsert,
                )?;
            }
            Ok("put".into())
        }
        "delete" => {
            let prefix: String = arg(args, 2)?;
            let count: u64 = arg(args, 3)?;
            for i in 0..count {
                store.delete(&key(&prefix, i)?)?;
            }
            Ok("delete".into())
        }
        "fork-hold" => {
            let secs: u32 = arg(args, 2)?;
            let pid = fork()?;
            if pid == 0 {
                std::thread::sleep(std::time::Duration::from_secs(u64::from(secs)));
                // SAFETY: ends the child without running the parent's exit handlers.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(0)
                };
            }
            eprintln!("child {pid}");
            let k = key("hold", 0)?;
            store.put(&k, b"held", Expiry::Never, WriteMode::Upsert)?;
            Ok("fork-hold".into())
        }
        "clone-incr" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            let n: u64 = arg(args, 3)?;
            incr(&store, &k, 1)?;
            // SAFETY: a raw clone with only SIGCHLD is a fork without glibc's bookkeeping
            // or the atfork handlers; this worker is single-threaded, so the child may run
            // any code.
            #[allow(unsafe_code)]
            let pid = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    libc::c_long::from(libc::SIGCHLD),
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            };
            if pid < 0 {
                return Err("clone failed".into());
            }
            let r = incr(&store, &k, n);
            if pid == 0 {
                if let Err(e) = &r {
                    eprintln!("child: {e}");
                }
                // SAFETY: as above.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(i32::from(r.is_err()))
                };
            }
            r?;
            wait_ok(pid as libc::pid_t)?;
            Ok("clone-incr".into())
        }
        "fork-busy" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            let forks: u32 = arg(args, 3)?;
            let store = std::sync::Arc::new(store);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (store, stop, k) = (store.clone(), stop.clone(), k.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let _ = store.put(&k, &i.to_le_bytes(), Expiry::Never, WriteMode::Upsert);
                    }
                })
            };
            let mut failed = Vec::new();
            for _ in 0..forks {
                std::thread::sleep(std::time::Duration::from_millis(3));
                let pid = fork()?;
                if pid == 0 {
                    // SAFETY: alarm has no preconditions; its default action ends the
                    // child if the write hangs.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::alarm(2)
                    };
                    let ok = store
                        .put(&k, b"child", Expiry::Never, WriteMode::Upsert)
                        .is_ok();
                    // SAFETY: ends the child without running the parent's exit handlers
                    // (its other thread does not exist here).
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::_exit(i32::from(!ok))
                    };
                }
                if let Err(e) = wait_ok(pid) {
                    failed.push(e.to_string());
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().map_err(|_| "writer thread panicked")?;
            if !failed.is_empty() {
                return Err(format!("{} of {forks} children: {failed:?}", failed.len()).into());
            }
            Ok("fork-busy".into())
        }
        "fork-chdir" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            store.put(&k, b"parent", Expiry::Never, WriteMode::Upsert)?;
            let pid = fork()?;
            if pid == 0 {
                let code = match std::env::set_current_dir("/") {
                    Ok(()) => match store.put(&k, b"child", Expiry::Never, WriteMode::Upsert) {
                        Ok(_) => 0,
                        Err(e) => {
                            eprintln!("child: {e}");
                            1
                        }
                    },
                    Err(_) => 2,
                };
                // SAFETY: ends the child without running the parent's exit handlers.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(code)
                };
            }
            wait_ok(pid)?;
            Ok("fork-chdir".into())
        }
        "update-fork" => {
            let k = Key::new(arg::<String>(args, 2)?)?;
            let mut child = 0;
            let r = store.update(&k, &mut |_| {
                child = fork().unwrap_or(-1);
                if child != 0 {
                    // The parent lets the child try its write first.
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                let v = if child == 0 { "child" } else { "parent" };
                UpdateAction::set(v.as_bytes().to_vec(), Expiry::Never)
            });
            if child == 0 {
                let code = match r {
                    Err(e) if e.to_string().contains("forked inside") => 0,
                    Err(e) => {
                        eprintln!("child: unexpected error {e}");
                        1
                    }
                    Ok(o) => {
                        eprintln!("child: its update was applied: {o:?}");
                        1
                    }
                };
                // SAFETY: ends the child without running the parent's exit handlers.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(code)
                };
            }
            r?;
            wait_ok(child)?;
            Ok("update-fork".into())
        }
        "reinit" => {
            let (ps, n, times): (u32, u32, u32) = (arg(args, 2)?, arg(args, 3)?, arg(args, 4)?);
            for _ in 0..times {
                FastMmapStore::builder()
                    .storage(&path)
                    .page_size(ps)
                    .num_pages(n)
                    .init_file(true)
                    .open()?;
            }
            Ok("reinit".into())
        }
        "rotate" => {
            let from = Key::new(arg::<String>(args, 2)?)?;
            let to = Key::new(arg::<String>(args, 3)?)?;
            Ok(format!("rotate {}", store.rotate(&from, &to)?))
        }
        other => Err(format!("unknown command {other}").into()),
    }
}
