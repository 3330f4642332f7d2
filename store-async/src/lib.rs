//! Calling a [`SessionStore`] from async code without blocking the runtime.
//!
//! Web frameworks are async; the engines of this workspace are synchronous. An
//! [`AsyncStore`] wraps any engine and runs each call the way its
//! [`Capabilities::blocking`](store_api::Capabilities::blocking) says:
//!
//! - [`Blocking::Brief`] engines (`store-memory`, `store-fastmmap`) answer in
//!   microseconds, so their calls run inline on the task that awaits them: a hop to the
//!   blocking pool would cost more than the call. (A `store-fastmmap` write can wait
//!   for a page lock held by a stopped process; give the store a bounded
//!   `write_lock_timeout` before calling it from a runtime.)
//! - [`Blocking::Io`] engines (`store-redis`) wait on the network, so their calls run
//!   on the runtime's blocking pool (`tokio::task::spawn_blocking`): a stalled server
//!   then stalls only the requests that wait for it, never a runtime worker thread and
//!   the unrelated requests it would serve.
//!
//! [`AsyncStore::purge_expired`] always runs on the blocking pool: it walks the whole
//! store (milliseconds per 100,000 entries). Run one purger per host, not one per
//! worker process.
//!
//! The adapters `session-tower` (tower-sessions, axum) and `session-actix`
//! (actix-session) are built on this crate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> store_api::Result<()> {
//! use std::sync::Arc;
//! use store_api::{Expiry, Key, SessionStore, WriteMode};
//! use store_async::AsyncStore;
//!
//! let store = AsyncStore::new(Arc::new(store_memory::MemoryStore::new()));
//! let key = Key::new("session:1")?;
//! store
//!     .call(move |s| s.put(&key, b"user=ada", Expiry::Never, WriteMode::CreateOnly))
//!     .await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use store_api::{Blocking, Error, Result, SessionStore};

/// An engine and the way its calls are run from async code. Cloning is cheap (an
/// [`Arc`]).
pub struct AsyncStore<S: ?Sized> {
    store: Arc<S>,
    blocking: Blocking,
}

impl<S: ?Sized> Clone for AsyncStore<S> {
    fn clone(&self) -> Self {
        AsyncStore {
            store: Arc::clone(&self.store),
            blocking: self.blocking,
        }
    }
}

impl<S: ?Sized + fmt::Debug> fmt::Debug for AsyncStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStore")
            .field("store", &self.store)
            .field("blocking", &self.blocking)
            .finish()
    }
}

impl<S: SessionStore + ?Sized + 'static> AsyncStore<S> {
    /// Wraps `store`, running its calls as its [`Capabilities::blocking`] says.
    ///
    /// [`Capabilities::blocking`]: store_api::Capabilities::blocking
    pub fn new(store: Arc<S>) -> Self {
        let blocking = store.capabilities().blocking;
        AsyncStore { store, blocking }
    }

    /// The engine.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// How this store's calls are run.
    pub fn blocking(&self) -> Blocking {
        self.blocking
    }

    /// Runs `f` on the engine: inline for a [`Blocking::Brief`] engine, on the tokio
    /// runtime's blocking pool otherwise. A panic in `f` propagates to the caller.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Backend`] if the engine needs the blocking pool and
    /// this is not called from within a tokio runtime, or the runtime is shutting down.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&S) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match self.blocking {
            Blocking::Brief => f(&self.store),
            _ => self.off_runtime(f).await,
        }
    }

    /// Removes every expired entry ([`SessionStore::purge_expired`]) on the blocking
    /// pool, whatever the engine: it walks the whole store.
    ///
    /// # Errors
    /// As [`SessionStore::purge_expired`], and as [`call`](Self::call) without a runtime.
    pub async fn purge_expired(&self) -> Result<u64> {
        self.off_runtime(|s| s.purge_expired()).await
    }

    async fn off_runtime<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&S) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| Error::Backend {
            context: "this engine's calls run on a tokio blocking pool, and there is no \
                      tokio runtime here; call it from within one"
                .into(),
            source: Box::new(e),
        })?;
        let store = Arc::clone(&self.store);
        match handle.spawn_blocking(move || f(&store)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Backend {
                context: "the store call was cancelled: the tokio runtime is shutting down".into(),
                source: Box::new(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_api::{Expiry, Key, WriteMode};
    use store_memory::MemoryStore;

    #[tokio::test(flavor = "current_thread")]
    async fn brief_engine_runs_inline() {
        let s = AsyncStore::new(Arc::new(MemoryStore::new()));
        assert_eq!(s.blocking(), Blocking::Brief);
        let here = std::thread::current().id();
        let there = s.call(|_| Ok(std::thread::current().id())).await.unwrap();
        assert_eq!(
            here, there,
            "a brief engine's call stays on the calling thread"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn purge_runs_on_the_blocking_pool() {
        let m = Arc::new(MemoryStore::new());
        let k = Key::new("k").unwrap();
        m.put(
            &k,
            b"v",
            Expiry::After(std::time::Duration::ZERO),
            WriteMode::Upsert,
        )
        .unwrap();
        let s = AsyncStore::new(m);
        assert_eq!(s.purge_expired().await.unwrap(), 1);
    }

    #[test]
    fn io_engine_without_a_runtime_is_an_error() {
        let s = AsyncStore {
            store: Arc::new(MemoryStore::new()),
            blocking: Blocking::Io,
        };
        // A bare executor with no tokio runtime behind it.
        let fut = s.call(|_| Ok(()));
        let r = block_on_without_runtime(fut);
        match r {
            Err(Error::Backend { context, .. }) => assert!(context.contains("no tokio runtime")),
            other => panic!("expected a Backend error, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn io_engine_runs_off_the_runtime_and_panics_propagate() {
        let s = AsyncStore {
            store: Arc::new(MemoryStore::new()),
            blocking: Blocking::Io,
        };
        let here = std::thread::current().id();
        let there = s.call(|_| Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(
            here, there,
            "an I/O engine's call leaves the runtime's thread"
        );
        let panicked = tokio::spawn(async move {
            s.call(|_| -> Result<()> { panic!("inside the call") })
                .await
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
    }

    /// Polls `fut` to completion on this thread, outside any tokio runtime.
    fn block_on_without_runtime<F: std::future::Future>(fut: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }
}
