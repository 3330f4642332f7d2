//! The supervisor: binds the socket, forks the workers before any runtime exists,
//! replaces workers that die, replaces all of them on SIGHUP, purges expired sessions,
//! and stops everything on SIGTERM or SIGINT. It has one thread, so forking is safe.

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use store_api::SessionStore;

use crate::config::{Config, StoreSpec};
use crate::os::{self, Fork};
use crate::{stores, worker};

/// A worker younger than this that dies is restarted after [`BACKOFF`], not at once (a
/// store that cannot be opened would otherwise fork in a tight loop).
const YOUNG: Duration = Duration::from_secs(1);
const BACKOFF: Duration = Duration::from_secs(1);
/// How long stopping workers get to finish their requests before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

struct Slot {
    pid: libc::pid_t,
    started: Instant,
}

/// Runs the server until SIGTERM or SIGINT.
///
/// # Errors
/// What kept it from starting: the socket, the store, a fork.
pub fn run(cfg: &Config) -> Result<(), String> {
    let listener = TcpListener::bind(cfg.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Opened once here: a bad path or permission fails before any worker starts, and
    // this copy purges expired sessions. Workers open their own after the fork.
    let purger: Option<std::sync::Arc<dyn SessionStore>> = match &cfg.store {
        StoreSpec::Fastmmap(_) => {
            Some(stores::open(&cfg.store).map_err(|e| format!("cannot open the store: {e}"))?)
        }
        // One store per worker (memory) or a server that expires entries (Redis).
        StoreSpec::Memory | StoreSpec::Redis(_) => None,
    };
    os::install_supervisor_signals().map_err(|e| format!("signal handlers: {e}"))?;
    let supervisor = std::process::id() as libc::pid_t;
    let spawn = |index: usize| -> Result<Slot, String> {
        match os::fork().map_err(|e| format!("fork: {e}"))? {
            Fork::Parent(pid) => Ok(Slot {
                pid,
                started: Instant::now(),
            }),
            Fork::Child => {
                let code = match os::reset_worker_signals(supervisor) {
                    Ok(()) => match listener.try_clone() {
                        Ok(l) => worker::run(l, cfg, index),
                        Err(e) => {
                            tracing::error!("the listening socket: {e}");
                            1
                        }
                    },
                    Err(e) => {
                        tracing::error!("worker setup: {e}");
                        1
                    }
                };
                std::process::exit(code);
            }
        }
    };
    let mut slots = Vec::with_capacity(cfg.workers);
    for i in 0..cfg.workers {
        slots.push(Some(spawn(i)?));
    }
    tracing::info!(%addr, workers = cfg.workers, store = ?cfg.store, "listening");
    // The line tests and scripts wait for, on stdout.
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let mut retiring: Vec<libc::pid_t> = Vec::new();
    let mut restart_at: Vec<Option<Instant>> = vec![None; cfg.workers];
    let mut next_purge = Instant::now() + cfg.purge_every;
    while !os::STOP.load(Ordering::Relaxed) {
        if os::RELOAD.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGHUP: replacing every worker");
            for (i, slot) in slots.iter_mut().enumerate() {
                let new = spawn(i)?;
                if let Some(old) = slot.replace(new) {
                    let _ = os::kill(old.pid, libc::SIGTERM);
                    retiring.push(old.pid);
                }
            }
        }
        while let Some((pid, how)) = os::reap() {
            if let Some(at) = retiring.iter().position(|&p| p == pid) {
                retiring.swap_remove(at);
                tracing::info!(pid, "replaced worker {how}");
                continue;
            }
            let Some(i) = slots
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.pid == pid))
            else {
                continue;
            };
            let young = slots[i].take().is_some_and(|s| s.started.elapsed() < YOUNG);
            tracing::warn!(worker = i, pid, "worker {how}; starting a replacement");
            restart_at[i] = Some(if young {
                Instant::now() + BACKOFF
            } else {
                Instant::now()
            });
        }
        for i in 0..cfg.workers {
            if restart_at[i].is_some_and(|t| Instant::now() >= t) {
                restart_at[i] = None;
                slots[i] = Some(spawn(i)?);
            }
        }
        if let Some(store) = &purger
            && Instant::now() >= next_purge
        {
            next_purge = Instant::now() + cfg.purge_every;
            match store.purge_expired() {
                Ok(n) => tracing::info!(purged = n, "purged expired sessions"),
                Err(e) => tracing::error!("purging expired sessions: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!("stopping");
    let mut left: Vec<libc::pid_t> = slots
        .iter()
        .flatten()
        .map(|s| s.pid)
        .chain(retiring)
        .collect();
    for &pid in &left {
        let _ = os::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while !left.is_empty() && Instant::now() < deadline {
        while let Some((pid, _)) = os::reap() {
            left.retain(|&p| p != pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for &pid in &left {
        tracing::warn!(pid, "worker did not stop in time: SIGKILL");
        let _ = os::kill(pid, libc::SIGKILL);
    }
    Ok(())
}
