//! One worker process: a single-threaded tokio runtime serving the app on the
//! supervisor's listening socket until SIGTERM.

use std::net::TcpListener;
use std::sync::Arc;

use session_tower::TowerStore;
use store_api::MAX_KEY_LEN;

use crate::app::{self, AppState};
use crate::config::Config;
use crate::stores;

/// Runs worker `index` until SIGTERM; the exit code for the process.
pub fn run(listener: TcpListener, cfg: &Config, index: usize) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, "cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(listener, cfg, index)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(worker = index, "{e}");
            1
        }
    }
}

/// How long a stopping worker waits, after it stopped accepting, before it closes the
/// connections that have not sent a request (it finishes those that have).
const ACCEPTED_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// The shared listening socket, accepting until told to stop.
struct Stoppable {
    inner: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl axum::serve::Listener for Stoppable {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        if *self.stop.borrow() {
            return std::future::pending().await;
        }
        tokio::select! {
            biased;
            _ = self.stop.changed() => std::future::pending().await,
            accepted = axum::serve::Listener::accept(&mut self.inner) => accepted,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

async fn serve(listener: TcpListener, cfg: &Config, index: usize) -> Result<(), String> {
    let store = stores::open(&cfg.store).map_err(|e| format!("cannot open the store: {e}"))?;
    let max_record = store.capabilities().max_value_len;
    let state = AppState {
        sessions: TowerStore::new(Arc::clone(&store)),
        worker: (index, std::process::id()),
        max_record: max_record.min(usize::MAX - MAX_KEY_LEN),
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("the listening socket: {e}"))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| format!("the listening socket: {e}"))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tracing::info!(worker = index, pid = std::process::id(), "serving");
    let listener = Stoppable {
        inner: listener,
        stop: stop_rx,
    };
    axum::serve(listener, app::router(state, cfg.ttl))
        .with_graceful_shutdown(async move {
            term.recv().await;
            // Stop accepting first (the other workers take the new connections), then
            // give the connections just accepted time to send their request: the
            // graceful shutdown closes a connection that has not sent one yet.
            let _ = stop_tx.send(true);
            tokio::time::sleep(ACCEPTED_GRACE).await;
        })
        .await
        .map_err(|e| format!("serving: {e}"))?;
    tracing::info!(worker = index, "stopped");
    Ok(())
}
