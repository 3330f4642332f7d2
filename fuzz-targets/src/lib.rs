//! The bodies of the fuzz targets.
//!
//! Each target is a function taking `&[u8]`. The cargo-fuzz crate in `fuzz/` calls them
//! from one-line `fuzz_target!`s, and `tests/fuzz_replay.rs` runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them on stable, so
//! every input ever found keeps being checked by `cargo test`.
//!
//! A body panics only when it finds a bug; invalid input is simply returned from.

#![forbid(unsafe_code)]

mod codec;

pub use codec::codec;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder under `fuzz/corpus/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[("codec", codec)];
