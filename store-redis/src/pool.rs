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
        /// The seeds with passwords redacted, for `Debug`.
        seeds: Vec<String>,
        /// Connection attempts running now (see [`connect_cluster`]).
        connecting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
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
            Conn::Cluster(c) => match c.req_command(cmd).and_then(Value::extract_error) {
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask) => {
                    follow_ask(c, cmd, e)
                }
                other => other,
            },
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Single(c) => c.supports_pipelining(),
            Conn::Cluster(c) => c.supports_pipelining(),
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
    ///
    /// On a cluster, `op` is tried again (on a new connection, so with a fresh slot map,
    /// after a growing wait) when it failed in a way that says the server did **not** run
    /// it: a redirection (`MOVED`; an `ASK` that [`follow_ask`] could not follow),
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, a refused connection. That is what rides out a failover; the cluster client's own
    /// retries are off, since it would also resend a write after a timeout, which may
    /// have run.
    pub(crate) fn run<T>(
        &self,
        retry: Retry,
        mut op: impl FnMut(&mut Conn) -> RedisResult<T>,
    ) -> RedisResult<T> {
        if !self.is_cluster() {
            return self.run_once(retry, &mut op);
        }
        let mut wait = CLUSTER_FIRST_WAIT;
        for _ in 0..CLUSTER_RETRIES {
            match self.run_once(retry, &mut op) {
                Err(e) if not_run(&e) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(CLUSTER_MAX_WAIT);
                }
                other => return other,
            }
        }
        self.run_once(retry, &mut op)
    }

    fn run_once<T>(
        &self,
        retry: Retry,
        op: &mut impl FnMut(&mut Conn) -> RedisResult<T>,
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
            // A cluster connection that met any error is replaced: its slot map may be
            // stale (the client refreshes it only while retrying, which is off).
            Err(e) if breaks_connection(&e) || self.is_cluster() => {
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
            Target::Cluster {
                client, connecting, ..
            } => {
                let con = connect_cluster(client, connecting, self.connect_timeout)?;
                con.set_read_timeout(self.command_timeout)?;
                con.set_write_timeout(self.command_timeout)?;
                Ok(Conn::Cluster(Box::new(con)))
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

/// Follows an `ASK` redirection (the key's slot is being migrated and the key is already
/// on the node it names): `ASKING`, then the same command, on that node's connection.
/// The node that answered `ASK` did not run the command, so sending it once more is safe
/// for a write too. (The cluster client's own retries, which would do this, are off: see
/// [`Pool::run`].)
fn follow_ask(c: &mut ClusterConnection, cmd: &Cmd, e: RedisError) -> RedisResult<Value> {
    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
    let Some((host, port)) = e
        .redirect_node()
        .and_then(|(addr, _slot)| addr.rsplit_once(':'))
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
    else {
        return Err(e);
    };
    let to = || {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port,
        })
    };
    c.route_command(&redis::cmd("ASKING"), to())?;
    c.route_command(cmd, to()).and_then(Value::extract_error)
}

/// How often [`Pool::run`] tries a cluster call again after an error that says it did
/// not run, and the waits between tries (doubling): 50 ms to 1 s, about 5 s in all,
/// longer than a failover of a killed primary takes with a node timeout of 2 s.
const CLUSTER_RETRIES: u32 = 8;
const CLUSTER_FIRST_WAIT: Duration = Duration::from_millis(50);
const CLUSTER_MAX_WAIT: Duration = Duration::from_secs(1);

/// Whether a cluster call failed before the server ran it, so that running it again is
/// safe for a write too: the node refused it (a redirection, the slot being moved or
/// without a primary, the node loading), or no connection could be made.
fn not_run(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_cluster_error()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading)
                | ErrorKind::ClusterConnectionNotFound
        )
}

/// Connection attempts to a cluster that may run at once; beyond, a call fails at once
/// instead of leaving one more thread behind on a node that does not answer.
const MAX_CONNECTING: usize = 32;

/// A new cluster connection within four connect timeouts: the cluster client sends
/// each node a `PING` before it sets any read timeout, so a node that accepts
/// connections but never answers (stopped, hung) would block the caller for ever. The
/// attempt runs on a thread of its own; if it does not finish in time the caller gets an
/// error and the thread is left to finish (or hang) alone. At most [`MAX_CONNECTING`]
/// attempts run at once, so a hung node costs a bounded number of threads.
fn connect_cluster(
    client: &ClusterClient,
    connecting: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    connect_timeout: Duration,
) -> RedisResult<ClusterConnection> {
    use std::sync::atomic::Ordering;
    // Relaxed: a bound on threads, not a hand-over of data.
    if connecting.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTING {
        connecting.fetch_sub(1, Ordering::Relaxed);
        return Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "too many connection attempts to the cluster have not finished (a node accepts \
             connections but does not answer)",
        )));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (client, count) = (client.clone(), connecting.clone());
    std::thread::spawn(move || {
        let r = client.get_connection();
        count.fetch_sub(1, Ordering::Relaxed);
        let _ = tx.send(r);
    });
    let limit = connect_timeout * 4;
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to the cluster took more than {limit:?}"),
        )))
    })
}

/// Whether the connection that produced `e` must be dropped. Errors the server sent as a
/// reply (a script error, `WRONGTYPE`) leave it in sync and reusable; anything from the
/// transport, a timeout (the reply may still arrive) or a garbled reply does not.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_unrecoverable_error()
}
