//! The few `INFO` fields the store reports.

/// A server's own counters since it started ([`RedisStore::server_counters`]): every
/// client's and every prefix's, not one store's.
///
/// [`RedisStore::server_counters`]: crate::RedisStore::server_counters
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerCounters {
    /// Commands the server processed.
    pub commands: u64,
    /// Key lookups that found their key.
    pub keyspace_hits: u64,
    /// Key lookups that did not.
    pub keyspace_misses: u64,
    /// Keys evicted under `maxmemory`.
    pub evicted_keys: u64,
    /// Keys in the store's logical database (every prefix's).
    pub db_keys: u64,
    /// Bytes the server allocated.
    pub used_memory: u64,
}

/// Fields of an `INFO` reply; absent fields are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    /// `redis_version` (Valkey reports the Redis version it is compatible with).
    pub(crate) version: Option<(u32, u32)>,
    /// Keys in the store's logical database (`keyspace` section, `dbN:keys=`).
    pub(crate) db_keys: u64,
    /// `used_memory`: bytes the whole server allocated.
    pub(crate) used_memory: u64,
    /// `maxmemory`; 0 means no limit.
    pub(crate) maxmemory: u64,
    /// `evicted_keys`: keys the server evicted under `maxmemory`, since it started.
    pub(crate) evicted_keys: u64,
    /// `total_commands_processed`, since the server started.
    pub(crate) commands: u64,
    /// `keyspace_hits`: lookups that found their key, since the server started.
    pub(crate) keyspace_hits: u64,
    /// `keyspace_misses`: lookups that did not.
    pub(crate) keyspace_misses: u64,
}

impl ServerInfo {
    /// Two servers' fields added up (the nodes of a cluster): counts and bytes summed,
    /// the older version kept.
    pub(crate) fn sum(self, o: ServerInfo) -> ServerInfo {
        ServerInfo {
            version: match (self.version, o.version) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            db_keys: self.db_keys + o.db_keys,
            used_memory: self.used_memory + o.used_memory,
            maxmemory: self.maxmemory + o.maxmemory,
            evicted_keys: self.evicted_keys + o.evicted_keys,
            commands: self.commands + o.commands,
            keyspace_hits: self.keyspace_hits + o.keyspace_hits,
            keyspace_misses: self.keyspace_misses + o.keyspace_misses,
        }
    }

    /// Parses the text of `INFO` for logical database `db`.
    pub(crate) fn parse(text: &str, db: i64) -> Self {
        let db_field = format!("db{db}");
        let mut info = ServerInfo::default();
        for line in text.lines() {
            let Some((name, value)) = line.trim_end().split_once(':') else {
                continue;
            };
            let num = || value.parse::<u64>().unwrap_or(0);
            match name {
                "redis_version" => {
                    let mut parts = value.split('.').map(|p| p.parse::<u32>().ok());
                    if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
                        info.version = Some((major, minor));
                    }
                }
                "used_memory" => info.used_memory = num(),
                "maxmemory" => info.maxmemory = num(),
                "evicted_keys" => info.evicted_keys = num(),
                "total_commands_processed" => info.commands = num(),
                "keyspace_hits" => info.keyspace_hits = num(),
                "keyspace_misses" => info.keyspace_misses = num(),
                n if n == db_field => {
                    info.db_keys = value
                        .split(',')
                        .find_map(|kv| kv.strip_prefix("keys="))
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(0);
                }
                _ => {}
            }
        }
        info
    }
}

/// The text of `INFO` from the server, or from every primary of a cluster.
pub(crate) fn info_texts(c: &mut crate::pool::Conn) -> redis::RedisResult<Vec<String>> {
    use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
    match c.cluster() {
        None => Ok(vec![redis::cmd("INFO").query(c)?]),
        Some(cc) => {
            let v = cc.route_command(
                &redis::cmd("INFO"),
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
            )?;
            let by_node: std::collections::HashMap<String, String> =
                redis::FromRedisValue::from_redis_value(v).map_err(redis::RedisError::from)?;
            Ok(by_node.into_values().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n\
        # Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n\r\n# Stats\r\nevicted_keys:3\r\n\
        expired_keys:9\r\ntotal_commands_processed:70\r\nkeyspace_hits:40\r\nkeyspace_misses:8\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=4,avg_ttl=100\r\n\
        db2:keys=5,expires=0,avg_ttl=0\r\n";

    #[test]
    fn parses_the_fields_the_store_reports() {
        let i = ServerInfo::parse(SAMPLE, 2);
        assert_eq!(i.version, Some((7, 0)));
        assert_eq!(i.db_keys, 5);
        assert_eq!(i.used_memory, 1_048_576);
        assert_eq!(i.maxmemory, 0);
        assert_eq!(i.evicted_keys, 3);
        assert_eq!(
            (i.commands, i.keyspace_hits, i.keyspace_misses),
            (70, 40, 8)
        );
        assert_eq!(ServerInfo::parse(SAMPLE, 0).db_keys, 12);
        assert_eq!(
            ServerInfo::parse(SAMPLE, 9).db_keys,
            0,
            "empty db is absent"
        );
    }

    #[test]
    fn garbage_gives_zeroes_not_panics() {
        let i = ServerInfo::parse("redis_version:x.y\nused_memory:lots\nnoise", 0);
        assert_eq!(i, ServerInfo::default());
    }
}
