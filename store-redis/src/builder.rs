//! Options for a [`RedisStore`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use store_api::{Clock, Error, Result};

use crate::RedisStore;
use crate::format::HEADER_LEN;
use crate::info::ServerInfo;
use crate::keys::{FORMAT, KeyLayout};
use crate::pool::{Pool, Retry, Target};

/// Largest value accepted unless told otherwise (4 MiB, as `store-memory`: sessions are
/// small; a larger value is almost always a bug).
pub const DEFAULT_MAX_VALUE_LEN: usize = 4 << 20;

/// The prefix every Redis key of a store starts with unless told otherwise.
pub const DEFAULT_PREFIX: &str = "session-store:";

/// Redis's limit on one string (`proto-max-bulk-len`, 512 MiB), less the entry header.
const REDIS_MAX_VALUE_LEN: usize = (512 << 20) - HEADER_LEN;

/// Builds a [`RedisStore`] (the `setup_session` counterpart).
///
/// ```no_run
/// use std::time::Duration;
/// use store_redis::RedisStore;
/// let store = RedisStore::builder("redis://:secret@10.0.0.5:6379/2")
///     .prefix("shop:")
///     .default_ttl(Duration::from_secs(3600))
///     .command_timeout(Duration::from_millis(500))
///     .build()?;
/// # Ok::<(), store_api::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    clock: Option<Arc<dyn Clock>>,
    url: String,
    prefix: String,
    connect_timeout: Duration,
    command_timeout: Option<Duration>,
    pool_size: usize,
    default_ttl: Option<Duration>,
    max_value_len: usize,
    max_update_attempts: u32,
    /// The nodes of a Redis Cluster to start from, when the store talks to a cluster
    /// (`url` is then unused).
    cluster: Option<Vec<String>>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    /// Shows the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact(&self.url))
            .field(
                "cluster",
                &self
                    .cluster
                    .as_ref()
                    .map(|c| c.iter().map(|u| redact(u)).collect::<Vec<_>>()),
            )
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("pool_size", &self.pool_size)
            .field("default_ttl", &self.default_ttl)
            .field("max_value_len", &self.max_value_len)
            .field("max_update_attempts", &self.max_update_attempts)
            .finish()
    }
}

/// `url` with the password of `user:password@` and of `pass=` replaced by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let (start, end) = (scheme_end + 3 + colon + 1, scheme_end + 3 + at);
            out.replace_range(start..end, "***");
        }
    }
    if let Some(p) = out.find("pass=") {
        let start = p + "pass=".len();
        let end = out[start..].find('&').map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
}

impl RedisStoreBuilder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        RedisStoreBuilder {
            clock: None,
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Some(Duration::from_secs(2)),
            pool_size: 8,
            default_ttl: None,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            max_update_attempts: 16,
            cluster: None,
        }
    }

    pub(crate) fn new_cluster(seeds: Vec<String>) -> Self {
        let mut b = RedisStoreBuilder::new(String::new());
        b.cluster = Some(seeds);
        b
    }

    /// The prefix of every Redis key the store uses (default [`DEFAULT_PREFIX`]), so that
    /// several applications can share one database. On a Redis Cluster, a prefix with a
    /// hash tag (`{shop}:`) puts the whole store in one slot; without one, entries spread
    /// over all slots. A `{` must open a complete, non-empty tag.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for a new connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may take to send and answer (default 2 s). A command that
    /// times out is an error and its connection is dropped.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = Some(timeout);
        self
    }

    /// Waits for commands as long as they take (not recommended: a hung server then
    /// hangs the caller).
    pub fn no_command_timeout(mut self) -> Self {
        self.command_timeout = None;
        self
    }

    /// Most idle connections kept for reuse (default 8). More threads than this still
    /// run in parallel, each opening a connection of its own, which is closed afterwards.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Time to live for writes with [`Expiry::Default`](store_api::Expiry::Default)
    /// (default: never expire).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Largest value accepted (default [`DEFAULT_MAX_VALUE_LEN`]; at most 512 MiB less
    /// 45 bytes, Redis's limit on a string).
    pub fn max_value_len(mut self, len: usize) -> Self {
        self.max_value_len = len;
        self
    }

    /// Measures expiry against `clock` instead of the server's clock: for tests that
    /// advance a [`ManualClock`](store_api::ManualClock) instead of sleeping. The server
    /// then never expires entries itself; see [`RedisStore`]'s `# Time` for what that
    /// means. Default: the server's clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Most times [`update`](store_api::SessionStore::update) runs its closure before
    /// giving up with [`Error::Contention`] (default 16).
    pub fn max_update_attempts(mut self, attempts: u32) -> Self {
        self.max_update_attempts = attempts;
        self
    }

    /// Checks the options, connects once and checks the server's version.
    ///
    /// The URL is anything the `redis` crate accepts: `redis://[user][:password@]host[:port][/db]`,
    /// `redis+unix:///path/redis.sock?db=N`, or `rediss://` for TLS (needs this crate's
    /// `tls-native-tls` feature; the server's certificate must be trusted by the system,
    /// or the URL end in `#insecure`, which skips verification).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a URL that does not parse or an option out of range;
    /// [`Error::Backend`] if the server cannot be reached or refuses the credentials;
    /// [`Error::Incompatible`] for a server older than Redis 6.2 (which lacks `PXAT`), or
    /// a prefix that holds another version's key layout.
    pub fn build(self) -> Result<RedisStore> {
        let layout = KeyLayout::new(&self.prefix)?;
        if self.max_value_len > REDIS_MAX_VALUE_LEN {
            return Err(Error::InvalidConfig {
                option: "max_value_len",
                reason: format!(
                    "{} bytes is more than a Redis string can hold with the entry header ({REDIS_MAX_VALUE_LEN})",
                    self.max_value_len
                ),
            });
        }
        if self.max_update_attempts == 0 {
            return Err(Error::InvalidConfig {
                option: "max_update_attempts",
                reason: "must be at least 1".into(),
            });
        }
        for (option, t) in [
            ("connect_timeout", Some(self.connect_timeout)),
            ("command_timeout", self.command_timeout),
        ] {
            if t == Some(Duration::ZERO) {
                return Err(Error::InvalidConfig {
                    option,
                    reason: "a zero timeout is not allowed; use a positive duration".into(),
                });
            }
        }
        let tls_hint = |url: &str, e: &redis::RedisError| {
            let tls = ["rediss:", "valkeys:"].iter().any(|s| url.starts_with(s));
            Error::InvalidConfig {
                option: "url",
                reason: if tls {
                    format!("{e}; TLS URLs need store-redis's `tls-native-tls` feature")
                } else {
                    format!("not a usable Redis URL: {e}")
                },
            }
        };
        let (target, addr, db) = match &self.cluster {
            None => {
                let client =
                    Client::open(self.url.as_str()).map_err(|e| tls_hint(&self.url, &e))?;
                let info = client.get_connection_info();
                let addr = format!("{} db {}", info.addr(), info.redis_settings().db());
                let db = info.redis_settings().db();
                (Target::Single(client), addr, db)
            }
            Some(seeds) => {
                if seeds.is_empty() {
                    return Err(Error::InvalidConfig {
                        option: "cluster",
                        reason: "no cluster node given; name at least one (better: all \
                                 primaries)"
                            .into(),
                    });
                }
                // No retries in the client: it would resend a write after a timeout (the
                // write may have run). The pool retries what surely did not run.
                let mut b = redis::cluster::ClusterClient::builder(seeds.clone())
                    .connection_timeout(self.connect_timeout)
                    .retries(0);
                if let Some(t) = self.command_timeout {
                    b = b.response_timeout(t);
                }
                let client = b.build().map_err(|e| match seeds.first() {
                    Some(u) => tls_hint(u, &e),
                    None => Error::backend("building the cluster client", e),
                })?;
                let addr = format!(
                    "cluster {}",
                    seeds
                        .iter()
                        .map(|u| redact(u))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                (
                    Target::Cluster {
                        client: Box::new(client),
                        seeds: seeds.iter().map(|u| redact(u)).collect(),
                        connecting: Default::default(),
                    },
                    addr,
                    0,
                )
            }
        };
        let pool = Pool::new(
            target,
            self.pool_size,
            self.connect_timeout,
            self.command_timeout,
        );
        let texts = pool
            .run(Retry::Idempotent, crate::info::info_texts)
            .map_err(|e| Error::backend(format!("connecting to redis at {addr}"), e))?;
        let oldest = texts
            .iter()
            .map(|t| ServerInfo::parse(t, db).version)
            .min()
            .flatten();
        match oldest {
            Some(v) if v >= (6, 2) => {}
            other => {
                return Err(Error::Incompatible {
                    path: PathBuf::from(&addr),
                    reason: format!(
                        "the server reports version {}; store-redis needs Redis 6.2 or later \
                         (or Valkey) for SET ... PXAT",
                        other.map_or_else(|| "unknown".into(), |(a, b)| format!("{a}.{b}"))
                    ),
                });
            }
        }
        // Claim the prefix for this layout, or find out that another layout has it.
        let marker = layout.format_key();
        let (found,): (Option<String>,) = pool
            .run(Retry::Idempotent, |c| {
                if c.cluster().is_some() {
                    // One key, but a cluster does not redirect a transaction.
                    let () = redis::cmd("SETNX").arg(&marker).arg(FORMAT).query(c)?;
                    let found: Option<String> = redis::cmd("GET").arg(&marker).query(c)?;
                    return Ok((found,));
                }
                redis::pipe()
                    .atomic()
                    .cmd("SETNX")
                    .arg(&marker)
                    .arg(FORMAT)
                    .ignore()
                    .cmd("GET")
                    .arg(&marker)
                    .query(c)
            })
            .map_err(|e| Error::backend(format!("checking {marker:?} on {addr}"), e))?;
        if let Some(found) = found.filter(|f| f != FORMAT) {
            return Err(Error::Incompatible {
                path: PathBuf::from(&addr),
                reason: format!(
                    "the prefix {:?} holds data of layout {found:?}, this version reads only \
                     {FORMAT:?}; use another prefix, or delete the prefix's keys if the data \
                     can go",
                    layout.prefix()
                ),
            });
        }
        Ok(RedisStore::from_parts(crate::store::Parts {
            pool,
            layout,
            addr,
            db,
            clock: self.clock,
            default_ttl: self.default_ttl,
            max_value_len: self.max_value_len,
            max_update_attempts: self.max_update_attempts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every check here fails before a connection is attempted; port 9 (discard) on
    // loopback is never contacted.
    const URL: &str = "redis://127.0.0.1:9/0";

    #[test]
    fn debug_output_hides_passwords() {
        for (url, shown) in [
            ("redis://:s3cret@h:1/0", "redis://:***@h:1/0"),
            ("redis://ann:s3cret@h/2", "redis://ann:***@h/2"),
            ("redis://ann@h/2", "redis://ann@h/2"),
            (
                "redis+unix:///run/r.sock?db=1&pass=s3cret",
                "redis+unix:///run/r.sock?db=1&pass=***",
            ),
            (
                "redis+unix:///r.sock?pass=s3cret&db=1",
                "redis+unix:///r.sock?pass=***&db=1",
            ),
        ] {
            assert_eq!(redact(url), shown);
            let debug = format!("{:?}", RedisStoreBuilder::new(url));
            assert!(
                !debug.contains("s3cret") && debug.contains(shown),
                "{debug}"
            );
        }
    }

    #[test]
    fn out_of_range_options_are_invalid_config() {
        let cases = [
            (
                RedisStoreBuilder::new(URL).max_value_len(usize::MAX),
                "max_value_len",
            ),
            (
                RedisStoreBuilder::new(URL).max_update_attempts(0),
                "max_update_attempts",
            ),
            (
                RedisStoreBuilder::new(URL).command_timeout(Duration::ZERO),
                "command_timeout",
            ),
            (
                RedisStoreBuilder::new(URL).connect_timeout(Duration::ZERO),
                "connect_timeout",
            ),
            (RedisStoreBuilder::new(URL).prefix("a{"), "prefix"),
            (RedisStoreBuilder::new("http://example.invalid/"), "url"),
            (RedisStoreBuilder::new("redis://127.0.0.1:9/notadb"), "url"),
        ];
        #[cfg(not(feature = "tls-native-tls"))]
        {
            let err = RedisStoreBuilder::new("rediss://127.0.0.1:9/0")
                .build()
                .unwrap_err();
            assert!(
                err.to_string().contains("tls-native-tls"),
                "TLS hint: {err}"
            );
        }
        for (builder, name) in cases {
            let err = builder.build().unwrap_err();
            assert!(
                matches!(err, Error::InvalidConfig { option, .. } if option == name),
                "{name}: {err}"
            );
        }
    }
}
