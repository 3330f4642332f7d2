//! Fork detection without a syscall per operation: a `pthread_atfork` child handler bumps
//! a process-global generation. A store compares it with the generation its descriptor
//! was opened in and reopens the file (a new open file description, so that the child's
//! OFD locks exclude its parent's) when they differ.
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
/// `pthread_atfork`'s return code, once installed.
static INSTALLED: OnceLock<libc::c_int> = OnceLock::new();

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add, no allocation, no lock.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler (once per process) and returns the current generation. Fails if
/// the handler could not be installed: a child forked later would then share its
/// parent's open file description, and its OFD locks would not exclude the parent's.
pub(crate) fn generation() -> std::io::Result<u64> {
    let rc = *INSTALLED.get_or_init(|| {
        // SAFETY: `in_child` is an `extern "C"` function that only performs an atomic
        // add, which is async-signal-safe; the other handlers are null, which is allowed.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) }
    });
    installed(rc)?;
    // Relaxed: the child handler ran in this very thread before fork returned.
    Ok(GENERATION.load(Ordering::Relaxed))
}

/// `pthread_atfork` returns an error number (not -1 and `errno`).
fn installed(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::from_raw_os_error(rc);
    Err(std::io::Error::new(
        e.kind(),
        format!("installing the fork handler (pthread_atfork): {e}"),
    ))
}

/// The generation, without installing (the hot path; `generation` ran at open).
#[inline]
pub(crate) fn current() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (audit #10): a failing `pthread_atfork` was only a `debug_assert`.
    #[test]
    fn a_failed_install_is_an_error() {
        let e = installed(libc::ENOMEM).unwrap_err();
        assert!(e.to_string().contains("pthread_atfork"), "{e}");
        assert!(installed(0).is_ok());
        generation().expect("installs on this host");
    }
}
