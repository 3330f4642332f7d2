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
//! - `open PATH PAGE_SIZE NUM_PAGES KEY`: opens with that geometry (creating the file),
//!   create-only writes KEY, prints the file's secret-dependent page of KEY.

use std::process::ExitCode;

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

fn run(args: &[String]) -> R<String> {
    let cmd = args.first().ok_or("no command")?;
    let path: String = arg(args, 1)?;
    if cmd == "open" {
        let store = FastMmapStore::builder()
            .storage(&path)
            .page_size(arg(args, 2)?)
            .num_pages(arg(args, 3)?)
            .open()?;
        let k = Key::new(arg::<String>(args, 4)?)?;
        store.put(&k, b"x", Expiry::Never, WriteMode::CreateOnly)?;
        return Ok(format!("page {}", store.page_of(&k)));
    }
    let store = FastMmapStore::open(&path)?;
    match cmd.as_str() {
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
            // SAFETY: this worker is single-threaded here, so the child may run any code.
            #[allow(unsafe_code)]
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err("fork failed".into());
            }
            incr(&store, &k, n)?;
            if pid == 0 {
                std::process::exit(0);
            }
            let mut status = 0;
            // SAFETY: waiting for our own child with a valid out pointer.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(format!("waitpid returned {rc}, child status {status}").into());
            }
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
        "rotate" => {
            let from = Key::new(arg::<String>(args, 2)?)?;
            let to = Key::new(arg::<String>(args, 3)?)?;
            Ok(format!("rotate {}", store.rotate(&from, &to)?))
        }
        other => Err(format!("unknown command {other}").into()),
    }
}
