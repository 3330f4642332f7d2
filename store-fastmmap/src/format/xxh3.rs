//! XXH3-64 (seed 0) with a caller's secret, written out for inputs up to 240 bytes:
//! session keys and most session values. This is where a read spends its hashing
//! time, and a general-purpose implementation's dispatch and call overhead is a few
//! nanoseconds of a ~50 ns `get`. Longer inputs go to `twox-hash`, whose long path uses
//! AVX2 when the CPU has it.
//!
//! The values are part of the file format (tags, pages, record checksums). The tests
//! in `hash.rs` check them against the reference implementation (`xxhash-rust`) for
//! every length from 0 to 5,000 bytes.
//!
//! Every read is a bounds-checked slice access; with the fixed-size secret and the
//! length tests before each read, the compiler removes nearly all of the checks.

/// Bytes of secret this module reads for inputs up to 240 bytes (XXH3's minimum
/// secret size): a 192-byte secret always has them.
const SECRET_MIN: usize = 136;

const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME_MX1: u64 = 0x1656_6791_9E37_79F9;
const PRIME_MX2: u64 = 0x9FB2_1C65_1E98_DF25;
/// Offsets into the secret of the 129-240 byte path.
const MIDSIZE_START: usize = 3;
const MIDSIZE_LAST: usize = SECRET_MIN - 17;

/// XXH3-64 of `input` with `secret` (at least [`SECRET_MIN`] bytes; a 192-byte secret
/// covers every length, since longer inputs go to `twox-hash`).
///
/// Always inlined, with the rarely taken 129-240 byte path kept out of line: the short
/// paths then cost a `get` no call.
#[inline(always)]
pub(crate) fn hash<const N: usize>(secret: &[u8; N], input: &[u8]) -> u64 {
    const { assert!(N >= SECRET_MIN && N >= twox_hash::xxhash3_64::SECRET_MINIMUM_LENGTH) };
    let len = input.len();
    match len {
        0..=16 => upto16(secret, input),
        17..=128 => upto128(secret, input),
        129..=240 => upto240(secret, input),
        // The secret is long enough (checked at compile time above), so this never
        // returns the error.
        _ => twox_hash::XxHash3_64::oneshot_with_secret(secret, input)
            .expect("the secret's length is checked at compile time"),
    }
}

#[inline(always)]
fn r64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn r32(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn mix16(input: &[u8], at: usize, secret: &[u8], s: usize) -> u64 {
    fold(
        r64(input, at) ^ r64(secret, s),
        r64(input, at + 8) ^ r64(secret, s + 8),
    )
}

#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(PRIME_MX1);
    h ^ (h >> 32)
}

#[inline(always)]
fn xxh64_avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(PRIME64_2);
    h ^= h >> 29;
    h = h.wrapping_mul(PRIME64_3);
    h ^ (h >> 32)
}

#[inline(always)]
fn rrmxmx(mut h: u64, len: u64) -> u64 {
    h ^= h.rotate_left(49) ^ h.rotate_left(24);
    h = h.wrapping_mul(PRIME_MX2);
    h ^= (h >> 35).wrapping_add(len);
    h = h.wrapping_mul(PRIME_MX2);
    h ^ (h >> 28)
}

#[inline(always)]
fn upto16(secret: &[u8], input: &[u8]) -> u64 {
    let len = input.len();
    if len > 8 {
        let lo = r64(input, 0) ^ (r64(secret, 24) ^ r64(secret, 32));
        let hi = r64(input, len - 8) ^ (r64(secret, 40) ^ r64(secret, 48));
        let acc = (len as u64)
            .wrapping_add(lo.swap_bytes())
            .wrapping_add(hi)
            .wrapping_add(fold(lo, hi));
        avalanche(acc)
    } else if len >= 4 {
        let bitflip = r64(secret, 8) ^ r64(secret, 16);
        let v = r32(input, len - 4).wrapping_add(r32(input, 0) << 32);
        rrmxmx(v ^ bitflip, len as u64)
    } else if len > 0 {
        let (c1, c2, c3) = (input[0], input[len >> 1], input[len - 1]);
        let combined =
            (u32::from(c1) << 16) | (u32::from(c2) << 24) | u32::from(c3) | ((len as u32) << 8);
        let bitflip = (r32(secret, 0) ^ r32(secret, 4)) as u32;
        xxh64_avalanche(u64::from(combined ^ bitflip))
    } else {
        xxh64_avalanche(r64(secret, 56) ^ r64(secret, 64))
    }
}

#[inline(always)]
fn upto128(secret: &[u8], input: &[u8]) -> u64 {
    let len = input.len();
    let mut acc = (len as u64).wrapping_mul(PRIME64_1);
    if len > 32 {
        if len > 64 {
            if len > 96 {
                acc = acc.wrapping_add(mix16(input, 48, secret, 96));
                acc = acc.wrapping_add(mix16(input, len - 64, secret, 112));
            }
            acc = acc.wrapping_add(mix16(input, 32, secret, 64));
            acc = acc.wrapping_add(mix16(input, len - 48, secret, 80));
        }
        acc = acc.wrapping_add(mix16(input, 16, secret, 32));
        acc = acc.wrapping_add(mix16(input, len - 32, secret, 48));
    }
    acc = acc.wrapping_add(mix16(input, 0, secret, 0));
    acc = acc.wrapping_add(mix16(input, len - 16, secret, 16));
    avalanche(acc)
}

#[inline(never)]
#[cold]
fn upto240(secret: &[u8], input: &[u8]) -> u64 {
    let len = input.len();
    let mut acc = (len as u64).wrapping_mul(PRIME64_1);
    for i in 0..8 {
        acc = acc.wrapping_add(mix16(input, 16 * i, secret, 16 * i));
    }
    let mut end = mix16(input, len - 16, secret, MIDSIZE_LAST);
    acc = avalanche(acc);
    for i in 8..len / 16 {
        end = end.wrapping_add(mix16(input, 16 * i, secret, 16 * (i - 8) + MIDSIZE_START));
    }
    avalanche(acc.wrapping_add(end))
}
