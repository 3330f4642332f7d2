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
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// Keys the workload stores and reads.
    pub live: Vec<Key>,
    /// Keys that are never written (misses).
    pub absent: Vec<Key>,
    /// Keys written already expired (purge).
    pub expired: Vec<Key>,
}

impl KeySet {
    /// Builds the key set: `live`, `absent` and `expired` keys under `tag`.
    pub fn new(tag: &str, live: usize, absent: usize, expired: usize) -> Self {
        KeySet {
            live: session_keys(&format!("{tag}/live"), live),
            absent: session_keys(&format!("{tag}/absent"), absent),
            expired: session_keys(&format!("{tag}/expired"), expired),
        }
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
}
