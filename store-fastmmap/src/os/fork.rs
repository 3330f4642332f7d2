//! Fork detection without a syscall per operation: a `pthread_atfork` child handler bumps
//! a process-global generation. A store compares it with the generation its descriptor
//! was opened in and reopens the file (a new open file description, so that the child's
//! OFD locks exclude its parent's) when they differ.
#![allow(unsafe_code)]

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn in_child() {
    // Async-signal-safe: one atomic add, no allocation, no lock.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler (once per process) and returns the current generation.
pub(crate) fn generation() -> u64 {
    INSTALL.call_once(|| {
        // SAFETY: `in_child` is an `extern "C"` function that only performs an atomic add,
        // which is async-signal-safe; the other handlers are null, which is allowed.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
    // Relaxed: the child handler ran in this very thread before fork returned.
    GENERATION.load(Ordering::Relaxed)
}

/// The generation, without installing (the hot path; `generation` ran at open).
#[inline]
pub(crate) fn current() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
