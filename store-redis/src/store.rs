//! The engine: each operation is one round trip, atomic on the server (a Lua script, or
//! `MULTI GET TIME EXEC` for reads).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::RedisError;
use store_api::{
    Blocking, Capabilities, Clock, Entry, EntryMeta, Error, Evictions, Expiry, Key, MAX_KEY_LEN,
    Result, ScanEntry, ScanOptions, SessionStore, Stats, Support, Timestamp, UpdateAction,
    UpdateAtomicity, UpdateOutcome, Version, WriteMode, WriteOutcome, is_live, visit_part,
};

use crate::RedisStoreBuilder;
use crate::format::{Header, MAX_RELATIVE_MS, pad20};
use crate::info::ServerInfo;
use crate::keys::KeyLayout;
use crate::pool::{Pool, Retry};
use crate::scripts;

/// A session store on a Redis (or Valkey) server, shared by every process and host that
/// points at the same server and prefix.
///
/// # Time
///
/// The engine's clock is the **server's** clock. Every operation reads the server's
/// `TIME` in the same atomic step as the entry (inside its script, or in the same
/// `MULTI` for reads), and the server expires entries by the same clock, so
/// liveness (`live while now < expires_at`) never depends on the clocks of the hosts
/// that share the store:
///
/// - [`Expiry::After`] (and [`Expiry::Default`]) is resolved on the server at the moment
///   of the write, atomically with it: `server now + d`.
/// - [`Expiry::At`] is an absolute time **in the server's clock**. Clients whose clocks
///   are NTP-synchronised with the server can compute it from their own
///   [`SystemClock`](store_api::SystemClock); others should use
///   [`server_time`](Self::server_time) or relative expiries.
/// - The [`Entry::expires_at`] a read returns is the absolute server time, and
///   [`rotate`](SessionStore::rotate) carries it over unchanged.
///
/// ## An injected clock (tests)
///
/// [`RedisStoreBuilder::clock`] replaces the server's clock by a [`Clock`] of your own,
/// such as a [`ManualClock`](store_api::ManualClock), so that expiry tests advance time
/// instead of sleeping. The scripts then receive `now` from that clock, and the server
/// is **never** told to expire anything (its time has nothing to do with a fake clock):
/// expired entries stay in Redis, invisible, until overwritten, deleted or removed by
/// [`purge_expired`](SessionStore::purge_expired), which then scans the prefix. Every
/// handle on the same prefix must use the same clock. Meant for tests; in production,
/// keep the server's clock.
///
/// # Eviction and `maxmemory`
///
/// The store itself never evicts ([`Capabilities::bounded`] is false) and every write
/// reports [`Evictions::Unknown`]: Redis's `maxmemory-policy` decides. Under
/// `noeviction` (the default) a full server refuses writes, which become
/// [`Error::Backend`]. Under `volatile-*` policies only entries with an expiry can be
/// evicted. Under `allkeys-lru`/`allkeys-lfu`/`allkeys-random` any entry (a logged-in
/// session) may vanish without notice; reads then return `None`, exactly as if it had
/// expired. A version counter evicted that way restarts at the server's time in
/// microseconds, above every version it issued before, so versions are still not reused.
///
/// # Redis Cluster
///
/// Every script call names keys of one hash slot only (see the README's key layout), so
/// the layout never causes `CROSSSLOT`. [`RedisStore::cluster`] connects through the
/// `redis` crate's cluster client; the store's pool retries what surely did not run
/// (redirections, a slot without a primary) on fresh connections, which rides out a
/// failover, and never resends a write that may have run. Scans, `clear` and `stats`
/// visit every primary. [`RedisStore::builder`] talks to one node (or a proxy). Replicas
/// are not read from. [`rotate`](SessionStore::rotate) is one atomic script where both
/// ids' keys share a slot (one server; a cluster with a hash-tagged prefix), and the
/// contract's default (create the new id, then delete the old) across slots.
///
/// # Failures
///
/// A refused connection, a timeout, an authentication failure or a server restart gives
/// [`Error::Backend`], never `Ok(None)`. The store reconnects by itself: the first
/// operation after the server is back opens a new connection (see the pool's docs).
/// A key under the prefix that holds data this store did not write is
/// [`Error::Corrupted`].
#[derive(Debug)]
pub struct RedisStore {
    pool: Pool,
    layout: KeyLayout,
    /// `host:port db N`, for messages (never the password).
    addr: String,
    db: i64,
    /// `None`: the server's clock.
    clock: Option<Arc<dyn Clock>>,
    default_ttl: Option<Duration>,
    max_value_len: usize,
    max_update_attempts: u32,
    reads: AtomicU64,
    hits: AtomicU64,
    writes: AtomicU64,
    purged: AtomicU64,
}

/// Everything the builder hands over.
pub(crate) struct Parts {
    pub(crate) pool: Pool,
    pub(crate) layout: KeyLayout,
    pub(crate) addr: String,
    pub(crate) db: i64,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) max_value_len: usize,
    pub(crate) max_update_attempts: u32,
}

/// What the put script decided.
enum PutReply {
    Written(Version),
    Exists,
    Missing,
    /// An if-version write found another version (`None`: no live entry).
    Mismatch {
        expected: Version,
        actual: Option<Version>,
    },
}

/// What the delete script decided.
enum DeleteReply {
    Deleted,
    Absent,
    Mismatch,
}

impl RedisStore {
    /// Options for a store on the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url)
    }

    /// Options for a store on a Redis Cluster, reached through `seeds` (URLs of some of
    /// its nodes, `redis://host:port`; better all primaries). A call that surely did not
    /// run (a redirection, a slot without a primary, a refused connection) is tried again
    /// on a fresh connection for about 5 s, which rides out a failover; a write that timed
    /// out is never resent. Scans, `clear` and `stats` visit every primary. See the
    /// README's deployments.
    pub fn cluster<I, S>(seeds: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder::new_cluster(seeds.into_iter().map(Into::into).collect())
    }

    /// A store on the server at `url` with default options.
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::build`].
    pub fn open(url: impl Into<String>) -> Result<Self> {
        RedisStoreBuilder::new(url).build()
    }

    pub(crate) fn from_parts(p: Parts) -> Self {
        RedisStore {
            pool: p.pool,
            layout: p.layout,
            addr: p.addr,
            db: p.db,
            clock: p.clock,
            default_ttl: p.default_ttl,
            max_value_len: p.max_value_len,
            max_update_attempts: p.max_update_attempts,
            reads: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            purged: AtomicU64::new(0),
        }
    }

    /// The prefix of every Redis key this store uses.
    pub fn prefix(&self) -> &str {
        self.layout.prefix()
    }

    /// The server's current time, the clock every expiry of this store is measured
    /// against (unless a clock was injected). Use it to compute [`Expiry::At`] values on
    /// a host whose clock may differ.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server cannot be reached.
    pub fn server_time(&self) -> Result<Timestamp> {
        let (secs, micros): (u64, u64) = self
            .pool
            .run(Retry::Idempotent, |c| redis::cmd("TIME").query(c))
            .map_err(|e| self.backend("TIME", None, e))?;
        Ok(Timestamp::from_millis(secs * 1000 + micros / 1000))
    }

    /// The scripts' `now` argument: empty for the server's clock.
    fn now_arg(&self) -> String {
        self.clock
            .as_ref()
            .map_or_else(String::new, |c| c.now().as_millis().to_string())
    }

    fn backend(&self, what: &str, key: Option<&Key>, e: RedisError) -> Error {
        let context = match key {
            Some(k) => format!(
                "redis {what} of key {k} on {} failed (the store reconnects by itself once the server answers)",
                self.addr
            ),
            None => format!(
                "redis {what} on {} failed (the store reconnects by itself once the server answers)",
                self.addr
            ),
        };
        Error::backend(context, e)
    }

    fn corrupted(&self, data_key: &str) -> Error {
        Error::Corrupted {
            what: format!(
                "redis key {data_key:?} on {} does not hold an entry of this store (written by \
                 another program?); delete it or give this store its own prefix",
                self.addr
            ),
        }
    }

    /// The script arguments for `expiry`: kind and value (see [`scripts::PUT`]).
    fn expiry_args(&self, expiry: Expiry) -> (&'static str, String) {
        let expiry = match (expiry, self.default_ttl) {
            (Expiry::Default, Some(ttl)) => Expiry::After(ttl),
            (Expiry::Default, None) => Expiry::Never,
            (e, _) => e,
        };
        match expiry {
            Expiry::Never | Expiry::Default => ("n", String::new()),
            Expiry::At(t) => ("a", pad20(t.as_millis())),
            Expiry::After(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                if ms > MAX_RELATIVE_MS {
                    // now + d saturates: what every engine reports for such a duration
                    // once now is past 1970 + (u64::MAX - 2^52) ms, i.e. always.
                    ("a", pad20(u64::MAX))
                } else {
                    ("r", ms.to_string())
                }
            }
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len > self.max_value_len {
            return Err(Error::TooLarge {
                len,
                max: self.max_value_len,
            });
        }
        Ok(())
    }

    /// Reads the raw string of `key` and the server's time, atomically (one `MULTI`/`EXEC`
    /// round trip).
    fn read_raw(&self, key: &Key, data_key: &str) -> Result<(Timestamp, Option<Vec<u8>>)> {
        let (raw, (secs, micros)): (Option<Vec<u8>>, (u64, u64)) = self
            .pool
            .run(Retry::Idempotent, |c| {
                if c.cluster().is_some() {
                    return scripts::READ.key(data_key).invoke(c);
                }
                redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(data_key)
                    .cmd("TIME")
                    .query(c)
            })
            .map_err(|e| self.backend("GET", Some(key), e))?;
        let now = match &self.clock {
            Some(c) => c.now(),
            None => Timestamp::from_millis(secs * 1000 + micros / 1000),
        };
        Ok((now, raw))
    }

    /// Reads the live entry's header and raw string, counting the read.
    fn read_live(&self, key: &Key, data_key: &str) -> Result<Option<(Header, Vec<u8>)>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let (now, raw) = self.read_raw(key, data_key)?;
        let Some(raw) = raw else { return Ok(None) };
        let header = Header::parse(&raw).ok_or_else(|| self.corrupted(data_key))?;
        if !is_live(header.expires_at, now) {
            return Ok(None);
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Ok(Some((header, raw)))
    }

    fn run_put(
        &self,
        key: &Key,
        data_key: &str,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<PutReply> {
        let counter = self.layout.counter_key(data_key);
        let (mode_arg, expected) = match mode {
            WriteMode::Upsert => ("u", String::new()),
            WriteMode::CreateOnly => ("c", String::new()),
            WriteMode::ReplaceOnly => ("r", String::new()),
            WriteMode::IfVersion(v) => ("v", pad20(v.get())),
        };
        let (kind, when) = self.expiry_args(expiry);
        let now = self.now_arg();
        let reply: Vec<u64> = self
            .pool
            .run(Retry::Never, |c| {
                scripts::PUT
                    .key(data_key)
                    .key(&counter)
                    .arg(&now)
                    .arg(mode_arg)
                    .arg(&expected)
                    .arg(kind)
                    .arg(&when)
                    .arg(value)
                    .invoke(c)
            })
            .map_err(|e| self.backend("write", Some(key), e))?;
        match (reply.as_slice(), mode) {
            ([0, v], _) => {
                let version = Version::new(*v).ok_or_else(|| self.corrupted(&counter))?;
                self.writes.fetch_add(1, Ordering::Relaxed);
                Ok(PutReply::Written(version))
            }
            ([1], _) => Ok(PutReply::Exists),
            ([2], _) => Ok(PutReply::Missing),
            // Only if-version writes can be refused for their version; any other `[3, _]`
            // falls to the unexpected-reply error below.
            ([3, actual], WriteMode::IfVersion(expected)) => Ok(PutReply::Mismatch {
                expected,
                actual: Version::new(*actual),
            }),
            ([4], _) => Err(self.corrupted(data_key)),
            (other, _) => Err(Error::Backend {
                context: format!(
                    "redis write of key {key} on {}: the server refused SET NX/XX after the \
                     script's own check (reply {other:?}); is another program writing under this prefix?",
                    self.addr
                ),
                source: "unexpected script reply".into(),
            }),
        }
    }

    fn run_delete(
        &self,
        key: &Key,
        data_key: &str,
        expected: Option<Version>,
    ) -> Result<DeleteReply> {
        let expected = expected.map_or_else(String::new, |v| pad20(v.get()));
        let now = self.now_arg();
        let reply: i64 = self
            .pool
            .run(Retry::Never, |c| {
                scripts::DELETE
                    .key(data_key)
                    .arg(&now)
                    .arg(&expected)
                    .invoke(c)
            })
            .map_err(|e| self.backend("delete", Some(key), e))?;
        match reply {
            1 => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                Ok(DeleteReply::Deleted)
            }
            0 => Ok(DeleteReply::Absent),
            -1 => Ok(DeleteReply::Mismatch),
            _ => Err(self.corrupted(data_key)),
        }
    }

    /// The live entries of a batch of data keys (from `each_batch`), read with one
    /// `MGET` and the server's time in one round trip; keys gone since the `SCAN`, foreign
    /// data and expired entries are left out.
    fn live_entries(&self, keys: &[Vec<u8>], options: &ScanOptions) -> Result<Vec<ScanEntry>> {
        let data_prefix = self.layout.data_key_prefix();
        let (raws, (secs, micros)): (Vec<Option<Vec<u8>>>, (u64, u64)) = self
            .pool
            .run(Retry::Idempotent, |c| {
                if c.cluster().is_some() {
                    // The keys are in many slots: one GET each, a cluster pipeline (one
                    // round trip per node), and the time of one node.
                    let gets = keys.iter().map(|k| {
                        let mut g = redis::cmd("GET");
                        g.arg(k);
                        g
                    });
                    let raws = pipelined(c, gets)?;
                    let time = redis::cmd("TIME").query(c)?;
                    return Ok((raws, time));
                }
                redis::pipe()
                    .atomic()
                    .cmd("MGET")
                    .arg(keys)
                    .cmd("TIME")
                    .query(c)
            })
            .map_err(|e| self.backend("scan (MGET)", None, e))?;
        let now = match &self.clock {
            Some(c) => c.now(),
            None => Timestamp::from_millis(secs * 1000 + micros / 1000),
        };
        let mut out = Vec::new();
        for (k, raw) in keys.iter().zip(raws) {
            let Some(raw) = raw else { continue };
            let Some(h) = Header::parse(&raw) else {
                continue;
            };
            if !is_live(h.expires_at, now) {
                continue;
            }
            let Some(key) = k
                .strip_prefix(data_prefix.as_bytes())
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| Key::new(k).ok())
            else {
                continue;
            };
            let entry = h.into_entry(raw);
            let len = entry.value.len();
            let value = options.values.then_some(entry.value);
            out.push(ScanEntry::new(
                key,
                entry.expires_at,
                entry.version,
                len,
                value,
            ));
        }
        Ok(out)
    }

    /// `SCAN MATCH` over the data keys of session keys starting with `prefix`, a batch
    /// of up to 500 keys at a time (one round trip each), each key handed to `f` once
    /// (`SCAN` may return a key twice; the repeats are dropped) until it breaks. Every key
    /// present for the whole scan is in some batch.
    ///
    /// On a Redis Cluster every primary is scanned in turn, each with its own cursor.
    fn each_batch(&self, prefix: &str, what: &str, f: &mut BatchFn<'_>) -> Result<()> {
        let pattern = format!(
            "{}{}*",
            glob_escape(&self.layout.data_key_prefix()),
            glob_escape(prefix)
        );
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        if !self.pool.is_cluster() {
            let _stopped_or_done = self.scan_node(None, &pattern, what, &mut seen, f)?;
            return Ok(());
        }
        // A cluster: every primary in turn. A failover or a slot migration during the
        // scan changes which node holds what; the scan then goes over the new primaries
        // again (the keys already handed out are not handed out twice), so that every
        // key present for the whole scan is seen.
        let primaries_now = || {
            self.pool
                .run(Retry::Idempotent, primaries)
                .map_err(|e| self.backend(&format!("{what} (CLUSTER SLOTS)"), None, e))
        };
        let mut nodes = primaries_now()?;
        for _ in 0..SCAN_TOPOLOGY_TRIES {
            for node in &nodes {
                if self
                    .scan_node(Some(node), &pattern, what, &mut seen, f)?
                    .is_break()
                {
                    return Ok(());
                }
            }
            let after = primaries_now()?;
            if after == nodes {
                return Ok(());
            }
            nodes = after;
        }
        Err(Error::Backend {
            context: format!(
                "redis {what} on {}: the cluster's primaries kept changing during the scan \
                 ({SCAN_TOPOLOGY_TRIES} passes); retry once it is stable",
                self.addr
            ),
            source: Box::new(std::io::Error::other("cluster topology changed")),
        })
    }

    /// One node's part of [`Self::each_batch`] (`None`: the server of a single-server
    /// store).
    fn scan_node(
        &self,
        node: Option<&(String, u16)>,
        pattern: &str,
        what: &str,
        seen: &mut HashSet<Vec<u8>>,
        f: &mut BatchFn<'_>,
    ) -> Result<ControlFlow<()>> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .pool
                .run(Retry::Idempotent, |c| {
                    let mut cmd = redis::cmd("SCAN");
                    cmd.arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(500);
                    match (node, c.cluster()) {
                        (Some((host, port)), Some(cc)) => {
                            use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                            let v = cc.route_command(
                                &cmd,
                                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                    host: host.clone(),
                                    port: *port,
                                }),
                            )?;
                            redis::FromRedisValue::from_redis_value(v)
                                .map_err(redis::RedisError::from)
                        }
                        _ => cmd.query(c),
                    }
                })
                .map_err(|e| self.backend(&format!("{what} (SCAN)"), None, e))?;
            let fresh: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect();
            if !fresh.is_empty() && f(&fresh)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
            if next == 0 {
                return Ok(ControlFlow::Continue(()));
            }
            cursor = next;
        }
    }

    /// The server's own counters since it started, for tools watching it (`sessionctl
    /// watch`): they cover every client and prefix of the server, unlike `stats`' reads
    /// and hits, which are this store object's.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub fn server_counters(&self) -> Result<crate::ServerCounters> {
        let i = self.server_info()?;
        Ok(crate::ServerCounters {
            commands: i.commands,
            keyspace_hits: i.keyspace_hits,
            keyspace_misses: i.keyspace_misses,
            evicted_keys: i.evicted_keys,
            db_keys: i.db_keys,
            used_memory: i.used_memory,
        })
    }

    /// The server's `INFO`, summed over every primary of a cluster (the version is the
    /// oldest node's).
    fn server_info(&self) -> Result<ServerInfo> {
        let texts = self
            .pool
            .run(Retry::Idempotent, crate::info::info_texts)
            .map_err(|e| self.backend("INFO", None, e))?;
        Ok(texts
            .iter()
            .map(|t| ServerInfo::parse(t, self.db))
            .reduce(ServerInfo::sum)
            .unwrap_or_default())
    }

    fn outcome(version: Version) -> WriteOutcome {
        WriteOutcome {
            version,
            evicted: Evictions::Unknown,
        }
    }
}

/// What `each_batch` hands each batch of data keys to.
type BatchFn<'a> = dyn FnMut(&[Vec<u8>]) -> Result<ControlFlow<()>> + 'a;

/// Escapes the glob characters of Redis's `MATCH` patterns.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl SessionStore for RedisStore {
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let data_key = self.layout.data_key(key);
        Ok(self
            .read_live(key, &data_key)?
            .map(|(h, raw)| h.into_entry(raw)))
    }

    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        buf.clear();
        let data_key = self.layout.data_key(key);
        Ok(self.read_live(key, &data_key)?.map(|(h, raw)| {
            buf.extend_from_slice(&raw[crate::format::HEADER_LEN..]);
            h.meta()
        }))
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        self.check_len(value.len())?;
        let data_key = self.layout.data_key(key);
        match self.run_put(key, &data_key, value, expiry, mode)? {
            PutReply::Written(version) => Ok(Self::outcome(version)),
            PutReply::Exists => Err(Error::AlreadyExists { key: key.clone() }),
            PutReply::Missing => Err(Error::NotFound { key: key.clone() }),
            PutReply::Mismatch { expected, actual } => Err(Error::VersionMismatch {
                key: key.clone(),
                expected,
                actual,
            }),
        }
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        let data_key = self.layout.data_key(key);
        Ok(matches!(
            self.run_delete(key, &data_key, None)?,
            DeleteReply::Deleted
        ))
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let data_key = self.layout.data_key(key);
        let (kind, when) = self.expiry_args(expiry);
        let now = self.now_arg();
        let reply: i64 = self
            .pool
            .run(Retry::Never, |c| {
                scripts::TOUCH
                    .key(&data_key)
                    .arg(&now)
                    .arg(kind)
                    .arg(&when)
                    .invoke(c)
            })
            .map_err(|e| self.backend("touch", Some(key), e))?;
        match reply {
            1 => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            0 => Ok(false),
            _ => Err(self.corrupted(&data_key)),
        }
    }

    /// Optimistic: reads the entry, runs `f` with no connection held, then writes only if
    /// the entry is still the one `f` saw (same version, or still absent), all checked in
    /// one script on the server. If another writer got in between, `f` runs again, at
    /// most `max_update_attempts` times, then [`Error::Contention`]. `Keep`, and `Delete`
    /// of an absent entry, write nothing. Each attempt counts as a read in the stats.
    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        let data_key = self.layout.data_key(key);
        for _ in 0..self.max_update_attempts {
            let current = self
                .read_live(key, &data_key)?
                .map(|(h, raw)| h.into_entry(raw));
            let seen = current.as_ref().map(|e| e.version);
            match f(current.as_ref()) {
                UpdateAction::Keep => return Ok(UpdateOutcome::Kept),
                UpdateAction::Delete => {
                    let Some(seen) = seen else {
                        return Ok(UpdateOutcome::Deleted { existed: false });
                    };
                    match self.run_delete(key, &data_key, Some(seen))? {
                        DeleteReply::Deleted => {
                            return Ok(UpdateOutcome::Deleted { existed: true });
                        }
                        DeleteReply::Absent | DeleteReply::Mismatch => {}
                    }
                }
                UpdateAction::Set { value, expiry } => {
                    self.check_len(value.len())?;
                    let mode = seen.map_or(WriteMode::CreateOnly, WriteMode::IfVersion);
                    match self.run_put(key, &data_key, &value, expiry, mode)? {
                        PutReply::Written(v) => {
                            return Ok(UpdateOutcome::Written(Self::outcome(v)));
                        }
                        PutReply::Exists | PutReply::Missing | PutReply::Mismatch { .. } => {}
                    }
                }
            }
        }
        Err(Error::Contention {
            key: key.clone(),
            attempts: self.max_update_attempts,
        })
    }

    /// On the server's clock, returns 0 without doing anything: Redis removes expired
    /// entries itself (on access, and in its background expiry cycle) by the same clock
    /// the store uses, and an entry past its expiry that Redis has not removed yet is
    /// already invisible to every operation.
    ///
    /// With an injected clock the server expires nothing, so this scans the prefix
    /// (`SCAN MATCH`, pages of 500 keys, one pipelined round trip of single-key scripts
    /// per page) and deletes the entries that clock says are expired. Foreign data is
    /// left alone.
    fn purge_expired(&self) -> Result<u64> {
        if self.clock.is_none() {
            return Ok(0);
        }
        let now = self.now_arg();
        let mut total = 0;
        self.each_batch("", "purge", &mut |keys| {
            let removed: Vec<u64> = self
                .pool
                .run(Retry::Never, |c| {
                    scripts::PURGE.prepare_invoke().load(c)?;
                    let calls = keys.iter().map(|k| {
                        let mut cmd = redis::cmd("EVALSHA");
                        cmd.arg(scripts::PURGE.get_hash()).arg(1).arg(k).arg(&now);
                        cmd
                    });
                    pipelined(c, calls)
                })
                .map_err(|e| self.backend("purge", None, e))?;
            let n: u64 = removed.iter().sum();
            self.purged.fetch_add(n, Ordering::Relaxed);
            total += n;
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(total)
    }

    /// `reads`, `hits` and `writes` are this store object's own counters (this process
    /// only). The rest comes from the server's `INFO` and covers more than this store:
    ///
    /// - `entries`: keys in the store's logical database (`dbN:keys`), including other
    ///   prefixes sharing the database and this store's version counters and
    ///   `format` marker;
    /// - `bytes_used`: the whole server's `used_memory`;
    /// - `capacity`: `maxmemory`, if set;
    /// - `evicted_live`: the server's `evicted_keys` since it started, all databases;
    /// - `purged`: entries this store object's `purge_expired` removed (only ever
    ///   non-zero with an injected clock);
    /// - `evicted_expired` and `recovered` are 0.
    fn stats(&self) -> Result<Stats> {
        let info = self.server_info()?;
        let mut s = Stats::default();
        s.entries = info.db_keys;
        s.capacity = (info.maxmemory > 0).then_some(info.maxmemory);
        s.bytes_used = info.used_memory;
        s.reads = self.reads.load(Ordering::Relaxed);
        s.hits = self.hits.load(Ordering::Relaxed);
        s.writes = self.writes.load(Ordering::Relaxed);
        s.purged = self.purged.load(Ordering::Relaxed);
        s.evicted_live = info.evicted_keys;
        Ok(s)
    }

    /// `SCAN MATCH` over the store's prefix (and the scan's), a batch of up to 500 keys
    /// per round trip, their values read with one `MGET` per batch; `SCAN`'s repeats are
    /// dropped, so an entry live for the whole scan is visited exactly once. On a shared
    /// server, only this store's prefix is visited.
    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        let prefix = options.prefix.as_deref().unwrap_or("");
        let mut visited = 0;
        self.each_batch(prefix, "scan", &mut |keys| {
            let part = self.live_entries(keys, options)?;
            Ok(visit_part(part, visit, &mut visited))
        })?;
        Ok(visited)
    }

    /// Deletes the entries under this store's prefix only (never `FLUSHDB`: other
    /// prefixes sharing the server keep theirs), a `SCAN` batch at a time, each key with
    /// the delete script (so the count is of live entries) and then `UNLINK` (so expired
    /// ones not yet reclaimed go too). Key by key: an entry written while it runs may
    /// survive. The version counters stay, so versions are still never reused.
    fn clear(&self) -> Result<u64> {
        let now = self.now_arg();
        let mut total = 0;
        self.each_batch("", "clear", &mut |keys| {
            let (deleted, _unlinked): (Vec<i64>, u64) = self
                .pool
                .run(Retry::Never, |c| {
                    scripts::DELETE.prepare_invoke().load(c)?;
                    let calls = keys.iter().map(|k| {
                        let mut cmd = redis::cmd("EVALSHA");
                        cmd.arg(scripts::DELETE.get_hash())
                            .arg(1)
                            .arg(k)
                            .arg(&now)
                            .arg("");
                        cmd
                    });
                    let d: Vec<i64> = pipelined(c, calls)?;
                    let u: u64 = redis::cmd("UNLINK").arg(keys).query(c)?;
                    Ok((d, u))
                })
                .map_err(|e| self.backend("clear", None, e))?;
            let n = deleted.iter().filter(|&&r| r == 1).count() as u64;
            self.writes.fetch_add(n, Ordering::Relaxed);
            total += n;
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(total)
    }

    /// One script moves the entry, atomically, when the two ids' keys are in one hash
    /// slot: always on one server, and on a cluster when the prefix carries a hash tag
    /// (`{shop}:`, the whole store in one slot). Otherwise (a cluster, untagged prefix: the
    /// ids hash to different slots, and Redis runs no script or transaction across slots)
    /// the contract's default: create the new id, then delete the old, not atomic.
    fn rotate(&self, from: &Key, to: &Key) -> Result<bool> {
        let from_key = self.layout.data_key(from);
        let to_key = self.layout.data_key(to);
        let counter = self.layout.counter_key(&to_key);
        let one_slot = !self.pool.is_cluster()
            || (crate::keys::key_slot(from_key.as_bytes())
                == crate::keys::key_slot(to_key.as_bytes())
                && crate::keys::key_slot(counter.as_bytes())
                    == crate::keys::key_slot(to_key.as_bytes()));
        if !one_slot {
            return store_api::rotate_by_copy(self, from, to);
        }
        let now = self.now_arg();
        let reply: redis::RedisResult<Vec<u64>> = self.pool.run(Retry::Never, |c| {
            scripts::ROTATE
                .key(&from_key)
                .key(&to_key)
                .key(&counter)
                .arg(&now)
                .invoke(c)
        });
        let reply = match reply {
            Ok(r) => r,
            // Behind a slot-routing proxy, one server may still refuse keys of several
            // slots: the move then takes two steps, as on a cluster.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot) => {
                return store_api::rotate_by_copy(self, from, to);
            }
            Err(e) => return Err(self.backend("rotate", Some(from), e)),
        };
        // Counted as the two-step move counts: a read, a hit if found, two writes.
        self.reads.fetch_add(1, Ordering::Relaxed);
        match reply.as_slice() {
            [0] => Ok(false),
            [1] => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Err(Error::AlreadyExists { key: to.clone() })
            }
            [2, _] => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.writes.fetch_add(2, Ordering::Relaxed);
                Ok(true)
            }
            [4, 2] => Err(self.corrupted(&to_key)),
            _ => Err(self.corrupted(&from_key)),
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::new(self.max_value_len);
        caps.shared_across_processes = true;
        caps.shared_across_hosts = true;
        caps.survives_restart = true;
        caps.bounded = false;
        caps.max_key_len = MAX_KEY_LEN;
        caps.expires_itself = self.clock.is_none();
        caps.update = UpdateAtomicity::Optimistic {
            max_attempts: self.max_update_attempts,
        };
        caps.blocking = Blocking::Io;
        caps.scan = Support::Exact;
        caps.clear = Support::Exact;
        caps
    }
}

/// Passes over a cluster's primaries a scan makes before it gives up on a topology that
/// keeps changing.
const SCAN_TOPOLOGY_TRIES: usize = 3;

/// Sends `cmds` in one pipeline: on a cluster, a cluster pipeline, which sends each
/// node the commands of its own keys.
fn pipelined<T: redis::FromRedisValue>(
    c: &mut crate::pool::Conn,
    cmds: impl Iterator<Item = redis::Cmd>,
) -> redis::RedisResult<T> {
    match c.cluster() {
        Some(cc) => {
            let mut p = redis::cluster::cluster_pipe();
            for cmd in cmds {
                p.add_command(cmd);
            }
            p.query(cc)
        }
        None => {
            let mut p = redis::pipe();
            for cmd in cmds {
                p.add_command(cmd);
            }
            p.query(c)
        }
    }
}

/// The primaries of the cluster, as `(host, port)`, from `CLUSTER SLOTS` (a node that
/// serves several slot ranges is named once).
fn primaries(c: &mut crate::pool::Conn) -> redis::RedisResult<Vec<(String, u16)>> {
    let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(c)?;
    let mut out: Vec<(String, u16)> = Vec::new();
    for range in slots {
        // [start, end, [host, port, id, ...], replicas...]
        let Some(primary) = range.get(2) else {
            continue;
        };
        let node: Vec<redis::Value> = redis::FromRedisValue::from_redis_value(primary.clone())
            .map_err(redis::RedisError::from)?;
        let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
            continue;
        };
        let host: String = redis::FromRedisValue::from_redis_value(host.clone())
            .map_err(redis::RedisError::from)?;
        let port: u16 = redis::FromRedisValue::from_redis_value(port.clone())
            .map_err(redis::RedisError::from)?;
        // An empty host is the node that answered; `?` a node whose address it does not
        // know: neither can be scanned by address.
        if host.is_empty() || host == "?" {
            return Err(redis::RedisError::from(std::io::Error::other(format!(
                "CLUSTER SLOTS names a primary without a usable address ({host:?}:{port}); \
                 set cluster-announce-ip on the nodes"
            ))));
        }
        if !out.contains(&(host.clone(), port)) {
            out.push((host, port));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escape_makes_patterns_literal() {
        assert_eq!(glob_escape("app:s:"), "app:s:");
        assert_eq!(glob_escape(r"a*b?c[d]e\\"), r"a\*b\?c\[d\]e\\\\");
    }
}
