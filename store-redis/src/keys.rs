//! The key layout in Redis, and Redis Cluster's slot rule that it respects.
//!
//! A store with prefix `P` keeps:
//!
//! - `P format`: the layout's version, [`FORMAT`], checked when a store is built;
//! - `P s:<key>`: one string per session entry (see [`crate::format`]);
//! - `P v:{<tag>}`: version counters, one per cluster hash slot in use, where `<tag>` is a
//!   short string chosen so that the counter hashes to the same slot as the data key it
//!   serves. When `P` itself contains a hash tag (`{app}:`), every key of the store is in
//!   that tag's slot and one counter `P v` serves all.
//!
//! Every script call therefore names keys of one slot only: the layout is valid on a
//! Redis Cluster (no `CROSSSLOT`), and a slot-routing proxy can forward each call whole.
//! After the prefix, data keys start with `s:`, counters with `v` and the marker is
//! `format`, so they never collide.

use std::sync::OnceLock;

use store_api::{Error, Key, Result};

/// The value of the `format` marker this version writes and accepts. Another value under
/// the same prefix means another (future or foreign) layout: the store refuses to open.
pub(crate) const FORMAT: &str = "store-redis 1";

/// Number of hash slots in a Redis Cluster.
const SLOTS: usize = 16_384;

/// How a store names its keys in Redis.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
    /// Whether the prefix carries its own hash tag (one slot for the whole store).
    prefix_tagged: bool,
}

impl KeyLayout {
    /// Checks `prefix`: a `{` in it must open a complete, non-empty hash tag, or the data
    /// key and its counter could land in different slots.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let prefix_tagged = match prefix.find('{') {
            None => false,
            Some(open) => match prefix[open + 1..].find('}') {
                Some(len) if len > 0 => true,
                _ => {
                    return Err(Error::InvalidConfig {
                        option: "prefix",
                        reason: format!(
                            "{prefix:?} has a `{{` without a closing `}}` and a non-empty tag \
                             between them; use a complete hash tag such as `{{myapp}}:` or no braces"
                        ),
                    });
                }
            },
        };
        Ok(KeyLayout {
            prefix: prefix.to_owned(),
            prefix_tagged,
        })
    }

    /// The prefix every key of the store starts with.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of the layout's version marker.
    pub(crate) fn format_key(&self) -> String {
        format!("{}format", self.prefix)
    }

    /// What every data key starts with.
    pub(crate) fn data_key_prefix(&self) -> String {
        format!("{}s:", self.prefix)
    }

    /// The Redis key holding `key`'s entry.
    pub(crate) fn data_key(&self, key: &Key) -> String {
        let mut k = String::with_capacity(self.prefix.len() + 2 + key.len());
        k.push_str(&self.prefix);
        k.push_str("s:");
        k.push_str(key.as_str());
        k
    }

    /// The version counter for the data key `data_key` (same hash slot).
    pub(crate) fn counter_key(&self, data_key: &str) -> String {
        if self.prefix_tagged {
            return format!("{}v", self.prefix);
        }
        let tag = &slot_tags()[usize::from(key_slot(data_key.as_bytes()))];
        format!("{}v:{{{tag}}}", self.prefix)
    }
}

/// Redis Cluster's hash slot of `key`: CRC16 of the key, or of its hash tag (the bytes
/// between the first `{` and the next `}`, if not empty), modulo 16384.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            match rest.iter().position(|&b| b == b'}') {
                Some(len) if len > 0 => Some(&rest[..len]),
                _ => None,
            }
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// For every slot, a short tag (a decimal number) that hashes to it. Built once, in a
/// few milliseconds: about 170,000 numbers cover all 16,384 slots.
fn slot_tags() -> &'static [Box<str>] {
    static TAGS: OnceLock<Vec<Box<str>>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<Box<str>>> = vec![None; SLOTS];
        let mut missing = SLOTS;
        // Bounded: CRC16 reaches every slot long before this (checked by a unit test).
        for n in 0u32..10_000_000 {
            let s = n.to_string();
            let slot = usize::from(crc16(s.as_bytes())) % SLOTS;
            if tags[slot].is_none() {
                tags[slot] = Some(s.into_boxed_str());
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags.into_iter()
            .map(|t| t.expect("ten million numbers cover every CRC16 slot"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_and_slots_match_redis() {
        // Check values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(
            key_slot(b"{}x"),
            crc16(b"{}x") % 16384,
            "empty tag hashes all"
        );
        assert_eq!(
            key_slot(b"a{b"),
            crc16(b"a{b") % 16384,
            "unclosed tag hashes all"
        );
    }

    #[test]
    fn every_slot_has_a_tag_that_hashes_to_it() {
        let tags = slot_tags();
        assert_eq!(tags.len(), SLOTS);
        for (slot, tag) in tags.iter().enumerate() {
            assert_eq!(usize::from(key_slot(tag.as_bytes())), slot, "tag {tag}");
        }
    }

    #[test]
    fn counter_shares_the_data_keys_slot() {
        for prefix in ["", "app:", "{app}:", "x}y:"] {
            let layout = KeyLayout::new(prefix).unwrap();
            for k in ["session:1", "session:{user7}", "a{", "}{b}", "grüße", "{}"] {
                let data = layout.data_key(&Key::new(k).unwrap());
                let counter = layout.counter_key(&data);
                assert_eq!(
                    key_slot(data.as_bytes()),
                    key_slot(counter.as_bytes()),
                    "prefix {prefix:?}, data {data:?}, counter {counter:?}"
                );
                assert!(data.starts_with(prefix) && counter.starts_with(prefix));
                assert_ne!(data, counter);
            }
        }
    }

    #[test]
    fn prefix_with_an_incomplete_tag_is_rejected() {
        for bad in ["a{", "{}:", "x{y"] {
            let err = KeyLayout::new(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidConfig {
                        option: "prefix",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
