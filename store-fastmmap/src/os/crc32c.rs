//! CRC-32C (Castagnoli) one 64-bit word at a time: the CPU's `crc32` instruction where it
//! has one (x86-64 with SSE4.2, detected at run time), a table otherwise. Both compute the
//! same function: the reflected polynomial `0x82F63B78`, the word's 8 bytes in
//! little-endian order, no inversion before or after (exactly what the x86 `crc32 r64,
//! r/m64` instruction does). The record checksum (`crate::format::checksum`) is built from it.
//!
//! The instruction is only usable inside code compiled with the feature, so callers hand
//! their loop to [`dispatch`] as a [`WithCrc`]; it runs the loop compiled with SSE4.2 if the
//! CPU has it (the loop's `run` is `#[inline(always)]`, so the instruction is inlined into
//! it), and with the table otherwise.
#![allow(unsafe_code)]

/// One CRC-32C step: `c` updated with the 8 bytes of `w` (little-endian).
pub(crate) trait Crc32c: Copy {
    /// The updated CRC.
    fn step(self, c: u32, w: u64) -> u32;
}

/// A loop that needs CRC-32C steps, run by [`dispatch`] with the fastest one the CPU has.
pub(crate) trait WithCrc {
    /// What the loop returns.
    type Out;
    /// Runs the loop with `crc`. Implementations must be `#[inline(always)]`, so that the
    /// hardware step is inlined into them.
    fn run<C: Crc32c>(self, crc: C) -> Self::Out;
}

/// Runs `w` with the hardware step if the CPU has one, else the table.
#[inline]
pub(crate) fn dispatch<W: WithCrc>(w: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU supports SSE4.2, checked just above, which is the only
        // requirement of a function compiled with `target_feature(enable = "sse4.2")`.
        return unsafe { run_sse42(w) };
    }
    w.run(Table)
}

/// `w` compiled with SSE4.2, so that `Sse42::step` inlines to one instruction.
///
/// # Safety
/// The CPU must support SSE4.2 (`is_x86_feature_detected!("sse4.2")`), as every function
/// compiled with `target_feature(enable = "sse4.2")` requires.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn run_sse42<W: WithCrc>(w: W) -> W::Out {
    w.run(Sse42(()))
}

/// The hardware step. Only [`run_sse42`] makes one (the field is private), and it runs
/// only after `dispatch` found SSE4.2, so a `Sse42` anywhere proves this process's CPU
/// has the instruction (a CPU feature does not go away while the process runs).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Sse42(());

#[cfg(target_arch = "x86_64")]
impl Crc32c for Sse42 {
    #[inline(always)]
    fn step(self, c: u32, w: u64) -> u32 {
        // SAFETY: holding a `Sse42` proves the CPU has SSE4.2 (see the type), the only
        // requirement of `_mm_crc32_u64`. Inlined into `run_sse42` (compiled with the
        // feature) it is one instruction; anywhere else it would be a call to the
        // intrinsic's out-of-line body, still valid on this CPU. Its result is below
        // 2^32 by definition.
        unsafe { std::arch::x86_64::_mm_crc32_u64(u64::from(c), w) as u32 }
    }
}

/// The table-driven step, for CPUs without the instruction (and the tests' reference).
#[derive(Clone, Copy)]
pub(crate) struct Table;

const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Table {
    /// `c` updated with one byte.
    #[inline]
    pub(crate) fn byte(c: u32, b: u8) -> u32 {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    }
}

impl Crc32c for Table {
    #[inline]
    fn step(self, c: u32, w: u64) -> u32 {
        w.to_le_bytes().iter().fold(c, |c, &b| Table::byte(c, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check value: CRC-32C("123456789") = 0xE3069283 with the usual
    /// inversion before and after.
    #[test]
    fn the_table_computes_crc32c() {
        let crc = !b"123456789".iter().fold(!0, |c, &b| Table::byte(c, b));
        assert_eq!(crc, 0xE306_9283);
    }

    /// The hardware step and the table agree (the dispatch is what the engine uses).
    #[test]
    fn the_hardware_step_agrees_with_the_table() {
        struct Steps(Vec<(u32, u64)>);
        impl WithCrc for Steps {
            type Out = Vec<u32>;
            #[inline(always)]
            fn run<C: Crc32c>(self, crc: C) -> Vec<u32> {
                self.0.iter().map(|&(c, w)| crc.step(c, w)).collect()
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let inputs: Vec<(u32, u64)> = (0..10_000)
            .map(|_| (next() as u32, next()))
            .chain([(0, 0), (!0, !0), (0, 1), (1, 0)])
            .collect();
        let want: Vec<u32> = inputs.iter().map(|&(c, w)| Table.step(c, w)).collect();
        assert_eq!(dispatch(Steps(inputs)), want);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sse4.2") {
            eprintln!("the hardware step was tested");
        }
    }
}
