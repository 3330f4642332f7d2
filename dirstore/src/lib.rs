//! A file-per-session store: an engine written from outside the workspace's engine
//! crates, from the `store-api` docs and the `conformance` README alone, and run through
//! the whole conformance suite (`tests/conformance.rs`, one line, with its worker).
//!
//! Each entry is one file under `<dir>/entries` (see `record` for its layout), replaced
//! by a rename on every write; every write of every handle takes `<dir>/lock` with
//! `flock`, so processes and handles exclude one another; reads take no lock. Versions
//! come from `<dir>/version`, under the lock. It suits a few processes and modest
//! traffic: every operation is a few system calls and a file.
//!
//! # Modules
//!
//! - `store`: [`DirStore`] and its builder.
//! - `record`: an entry's file.
//! - [`harness`]: the conformance harness (the worker binary names it).

#![forbid(unsafe_code)]

pub mod harness;
mod record;
mod store;

pub use store::{DirStore, DirStoreBuilder, FORMAT, MAX_VALUE_LEN};
