//! A small pool of synchronous connections.
//!
//! A thread takes an idle connection (or opens one), runs its command and gives the
//! connection back, unless the command failed in a way that leaves the connection
//! unusable (an I/O error, a timeout with a reply still in flight, a protocol error).
//! Such a failure also empties the pool: the usual cause is a server restart, which kills
//! every pooled connection at once, and dropping them all means the next operation
//! connects afresh instead of failing once per stale connection.
//!
//! Reconnection is therefore automatic: an operation during the outage fails with an
//! error, the first one after the server is back opens a new connection and succeeds.
//! Idempotent reads are retried once on a fresh connection when a pooled connection
//! turns out to be dead; writes are never retried, since the server may have run them.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, RedisError, RedisResult};

/// Connections shared by the threads of one store.
pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    connect_timeout: Duration,
    command_timeout: Option<Duration>,
}

/// Whether a command should be retried if it fails on a stale pooled connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read: running it twice is harmless.
    Idempotent,
    /// A write: it may have run before the connection died.
    Never,
}

impl Pool {
    pub(crate) fn new(
        client: Client,
        max_idle: usize,
        connect_timeout: Duration,
        command_timeout: Option<Duration>,
    ) -> Self {
        Pool {
            client,
            idle: Mutex::new(Vec::with_capacity(max_idle)),
            max_idle,
            connect_timeout,
            command_timeout,
        }
    }

    /// Runs `op` on a connection.
    pub(crate) fn run<T>(
        &self,
        retry: Retry,
        mut op: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let pooled = self.take_idle();
        let was_pooled = pooled.is_some();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match op(&mut con) {
            Ok(v) => {
                self.give_back(con);
                Ok(v)
            }
            Err(e) if breaks_connection(&e) => {
                drop(con);
                self.clear();
                if was_pooled && retry == Retry::Idempotent && e.is_connection_dropped() {
                    let mut fresh = self.connect()?;
                    let out = op(&mut fresh);
                    if !out.as_ref().is_err_and(breaks_connection) {
                        self.give_back(fresh);
                    }
                    return out;
                }
                Err(e)
            }
            Err(e) => {
                self.give_back(con);
                Err(e)
            }
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(self.command_timeout)?;
        con.set_write_timeout(self.command_timeout)?;
        Ok(con)
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, con: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(con);
        }
    }

    fn clear(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", self.client.get_connection_info().addr())
            .field("max_idle", &self.max_idle)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether the connection that produced `e` must be dropped. Errors the server sent as a
/// reply (a script error, `WRONGTYPE`) leave it in sync and reusable; anything from the
/// transport, a timeout (the reply may still arrive) or a garbled reply does not.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_unrecoverable_error()
}
