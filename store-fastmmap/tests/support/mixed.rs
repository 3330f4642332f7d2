//! The mixed workload of the crash campaign (`tests/fastmmap_crash_campaign.rs`, the
//! worker's `mixed` command): each worker owns [`KEYS`] keys and runs a deterministic
//! sequence of puts, updates, deletes and rotates among them, so that whoever knows the
//! seed and how many operations completed knows what every key must hold.
#![allow(dead_code, unreachable_pub, missing_docs)]

/// Keys per worker.
pub const KEYS: u64 = 12;

/// One operation of a worker on its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Upsert a value of `len` bytes.
    Put { key: u64, len: usize },
    /// `update` setting a value of `len` bytes whatever is there.
    Update { key: u64, len: usize },
    /// Delete.
    Delete { key: u64 },
    /// `rotate(from, to)`: moves the value if `from` is live and `to` is not.
    Rotate { from: u64, to: u64 },
}

/// The name of worker `w`'s key `i`.
pub fn key_name(w: u64, i: u64) -> String {
    format!("m{w}:{i}")
}

/// Worker `w`'s operations for `seed`.
#[derive(Debug, Clone)]
pub struct Ops(u64);

impl Ops {
    pub fn new(w: u64, seed: u64) -> Ops {
        Ops((seed ^ (w << 40) ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn rand(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

impl Iterator for Ops {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        let key = self.rand() % KEYS;
        // Lengths on either side of the checksum cutoff and large enough that records
        // move by less than their size when a page is compacted.
        let len = 16 + (self.rand() % 360) as usize;
        Some(match self.rand() % 10 {
            0..=4 => Op::Put { key, len },
            5 | 6 => Op::Update { key, len },
            7 => Op::Delete { key },
            _ => Op::Rotate {
                from: key,
                to: (key + 1 + self.rand() % (KEYS - 1)) % KEYS,
            },
        })
    }
}

/// What a key holds: the operation index and length of the value written into it (a
/// rotate carries it to another key).
pub type Held = Option<(u64, usize)>;

/// Applies operation `j` to a worker's state.
pub fn apply(state: &mut [Held], j: u64, op: Op) {
    match op {
        Op::Put { key, len } | Op::Update { key, len } => state[key as usize] = Some((j, len)),
        Op::Delete { key } => state[key as usize] = None,
        Op::Rotate { from, to } => {
            if state[from as usize].is_some() && state[to as usize].is_none() {
                state[to as usize] = state[from as usize].take();
            }
        }
    }
}

/// The value operation `j` of worker `w` writes: the two numbers, a body derived from
/// them and a trailing hash, so any torn or foreign value is recognised.
pub fn value(w: u64, j: u64, len: usize) -> Vec<u8> {
    let len = len.max(24);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&j.to_le_bytes());
    let mut x = (w << 32) ^ j ^ 0xD1B5_4A32_D192_ED03;
    while v.len() < len - 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    let h = v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    v.extend_from_slice(&h.to_le_bytes());
    v
}
