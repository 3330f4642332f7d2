//! The bodies of the fuzz targets.
//!
//! Each target is a function taking `&[u8]`. The cargo-fuzz crate in `fuzz/` calls them
//! from one-line `fuzz_target!`s, and `tests/fuzz_replay.rs` runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them on stable, so
//! every input ever found keeps being checked by `cargo test`. `FUZZING.md` at the
//! workspace root says what each target checks and how to run a campaign.
//!
//! A body panics only when it finds a bug; invalid input is simply returned from.

#![forbid(unsafe_code)]

mod codec;
mod file;
mod ops;
mod scratch;
mod seeds;
mod torn;

pub use codec::codec;
pub use file::file;
pub use ops::ops;
pub use seeds::file_seeds;
pub use torn::torn;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder under `fuzz/corpus/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("codec", codec),
    ("ops", ops),
    ("file", file),
    ("torn", torn),
];
