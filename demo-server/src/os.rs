//! The process calls the supervisor makes: fork, signals, wait. The only `unsafe` of
//! this crate.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which side of a fork this is.
pub(crate) enum Fork {
    /// The parent, with the child's pid.
    Parent(libc::pid_t),
    /// The child.
    Child,
}

/// Forks. Call it only while this process has one thread (the supervisor never starts
/// another): the child then holds no lock another thread held.
pub(crate) fn fork() -> io::Result<Fork> {
    // SAFETY: fork has no memory-safety preconditions of its own; the child of a
    // single-threaded process (the supervisor's case) may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// Set by the handlers below; read and cleared by the supervisor's loop.
pub(crate) static STOP: AtomicBool = AtomicBool::new(false);
/// SIGHUP: replace the workers.
pub(crate) static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    // Relaxed: a flag polled by the supervisor's loop, which orders nothing else by it.
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_reload(_: libc::c_int) {
    // Relaxed: as STOP.
    RELOAD.store(true, Ordering::Relaxed);
}

/// Installs the supervisor's handlers: SIGTERM and SIGINT set [`STOP`], SIGHUP sets
/// [`RELOAD`].
pub(crate) fn install_supervisor_signals() -> io::Result<()> {
    let on_stop: extern "C" fn(libc::c_int) = on_stop;
    let on_reload: extern "C" fn(libc::c_int) = on_reload;
    for (sig, handler) in [
        (libc::SIGTERM, on_stop as libc::sighandler_t),
        (libc::SIGINT, on_stop as libc::sighandler_t),
        (libc::SIGHUP, on_reload as libc::sighandler_t),
    ] {
        set_handler(sig, handler)?;
    }
    Ok(())
}

/// In a new worker: the default action for the signals the supervisor handles (the
/// worker's runtime installs its own SIGTERM handler), and SIGTERM when the supervisor
/// dies, so that no worker outlives it.
pub(crate) fn reset_worker_signals(supervisor: libc::pid_t) -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        set_handler(sig, libc::SIG_DFL)?;
    }
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // The supervisor may have died before the call: then nobody will signal us.
    if std::os::unix::process::parent_id() != supervisor as u32 {
        return Err(io::Error::other(
            "the supervisor exited while this worker started",
        ));
    }
    Ok(())
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handlers
    // installed only store to atomics, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends `sig` to `pid`; a process already gone is not an error.
pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill touches no memory of ours.
    if unsafe { libc::kill(pid, sig) } == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}

/// A child that exited, if any, without waiting: its pid and how it ended.
pub(crate) fn reap() -> Option<(libc::pid_t, String)> {
    let mut status = 0;
    // SAFETY: waitpid writes the status to the valid local it is given.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let how = if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended (wait status {status:#x})")
    };
    Some((pid, how))
}
