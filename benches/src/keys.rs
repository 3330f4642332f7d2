//! Session keys: deterministic, realistic, and the same in every process.

use store_api::Key;

/// splitmix64: a cheap, well-mixed bijection of `u64`, used for key ids and access order.
#[inline]
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn tag_seed(tag: &str) -> u64 {
    // FNV-1a: stable across processes and builds, unlike std's RandomState.
    tag.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// `n` keys shaped like Catalyst session keys: `session:` and 40 hex digits (a SHA-1
/// session id), 48 bytes. The digits derive from `tag` and the index, so two processes
/// given the same tag build the same keys and different tags never collide in practice.
pub fn session_keys(tag: &str, n: usize) -> Vec<Key> {
    let seed = tag_seed(tag);
    (0..n as u64)
        .map(|i| {
            let a = mix64(seed ^ mix64(i));
            let b = mix64(a);
            let c = mix64(b) >> 32;
            Key::new(format!("session:{a:016x}{b:016x}{c:08x}")).expect("hex keys are valid")
        })
        .collect()
}

/// The keys one workload uses.
///
/// Operations visit keys through [`order`](Self::order): the live keys in a pseudo-random
/// permutation, cloned in visiting order so that consecutive operations read consecutive
/// memory. Access to the store stays uniformly random, but the harness's own fetch of the
/// key stays in cache, as a session id freshly parsed from a request would; otherwise a
/// store of a million sessions would be charged a cache miss per key that no server pays.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Keys the workload stores, in load order.
    pub live: Vec<Key>,
    /// `live` in visiting order, its length rounded up to a power of two (the first few
    /// keys of the permutation come round twice per pass) so an index is a mask.
    pub order: Vec<Key>,
    /// Keys that are never written (misses), a power-of-two count.
    pub absent: Vec<Key>,
    /// Keys written already expired (purge).
    pub expired: Vec<Key>,
}

/// `0..n` in a pseudo-random order derived from `seed` (Fisher-Yates with [`mix64`] as
/// the generator).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (mix64(seed ^ i as u64) % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// `keys` in a permutation derived from `seed`, cycled to a power-of-two length.
fn visiting_order(keys: &[Key], seed: u64) -> Vec<Key> {
    if keys.is_empty() {
        return Vec::new();
    }
    let idx = permutation(keys.len(), seed);
    let len = keys.len().next_power_of_two();
    (0..len)
        .map(|j| keys[idx[j % keys.len()]].clone())
        .collect()
}

impl KeySet {
    /// Builds the key set: `live`, `absent` and `expired` keys under `tag`.
    pub fn new(tag: &str, live: usize, absent: usize, expired: usize) -> Self {
        let live = session_keys(&format!("{tag}/live"), live);
        let order = visiting_order(&live, tag_seed(tag));
        KeySet {
            live,
            order,
            absent: session_keys(&format!("{tag}/absent"), absent.next_power_of_two()),
            expired: session_keys(&format!("{tag}/expired"), expired),
        }
    }

    /// The live key operation `i` visits.
    #[inline]
    pub fn visit(&self, i: u64) -> &Key {
        &self.order[i as usize & (self.order.len() - 1)]
    }

    /// The absent key operation `i` asks for.
    #[inline]
    pub fn visit_absent(&self, i: u64) -> &Key {
        &self.absent[i as usize & (self.absent.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_distinct_and_48_bytes() {
        let a = session_keys("t", 1000);
        assert_eq!(a, session_keys("t", 1000), "same tag, same keys");
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        assert!(
            a.iter().all(|k| k.as_str().len() == 48),
            "{}",
            a[0].as_str()
        );
        assert_ne!(a[0], session_keys("u", 1)[0]);
    }

    #[test]
    fn visiting_order_covers_every_key() {
        let ks = KeySet::new("t", 1000, 3, 0);
        assert_eq!(ks.order.len(), 1024);
        assert_eq!(ks.absent.len(), 4);
        let seen: std::collections::HashSet<_> = (0..1024).map(|i| ks.visit(i)).collect();
        assert_eq!(seen.len(), 1000, "one pass visits every live key");
        assert_ne!(ks.order[..10], ks.live[..10], "the order is shuffled");
    }
}
