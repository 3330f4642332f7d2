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

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Client, Cmd, Connection, ConnectionLike, RedisError, RedisResult, Value};

/// Where a pool's connections go: one server, or a Redis Cluster.
pub(crate) enum Target {
    /// One server (or a proxy in front of several).
    Single(Client),
    /// A Redis Cluster, through the `redis` crate's cluster client, which follows `MOVED`
    /// and `ASK` and refreshes its slot map; `seeds` are the nodes it was given.
    Cluster {
        /// Boxed: the cluster client's options are large, and every store carries this.
        client: Box<ClusterClient>,
        seeds: Vec<String>,
    },
}

/// One pooled connection: to one server, or to a whole cluster (one connection per node
/// inside, commands routed by their first key).
pub(crate) enum Conn {
    Single(Connection),
    /// Boxed: a cluster connection holds its slot map and node table inline.
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    /// The cluster connection, if this is one.
    pub(crate) fn cluster(&mut self) -> Option<&mut ClusterConnection> {
        match self {
            Conn::Single(_) => None,
            Conn::Cluster(c) => Some(&mut **c),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// Connections shared by the threads of one store.
pub(crate) struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
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
        target: Target,
        max_idle: usize,
        connect_timeout: Duration,
        command_timeout: Option<Duration>,
    ) -> Self {
        Pool {
            target,
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
        mut op: impl FnMut(&mut Conn) -> RedisResult<T>,
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

    /// Whether this pool talks to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    fn connect(&self) -> RedisResult<Conn> {
        match &self.target {
            Target::Single(client) => {
                let con = client.get_connection_with_timeout(self.connect_timeout)?;
                con.set_read_timeout(self.command_timeout)?;
                con.set_write_timeout(self.command_timeout)?;
                Ok(Conn::Single(con))
            }
            // Timeouts and retries are set on the cluster client (see the builder).
            Target::Cluster { client, .. } => {
                client.get_connection().map(|c| Conn::Cluster(Box::new(c)))
            }
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, con: Conn) {
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
        let addr = match &self.target {
            Target::Single(c) => c.get_connection_info().addr().to_string(),
            Target::Cluster { seeds, .. } => format!("cluster {}", seeds.join(",")),
        };
        f.debug_struct("Pool")
            .field("addr", &addr)
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
