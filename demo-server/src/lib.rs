//! A pre-forked web server whose worker processes share their sessions: the Rust
//! equivalent of a Catalyst application on `Session::Store::FastMmap`, to copy.
//!
//! One supervisor process binds the listening socket and forks `--workers` worker
//! processes before any async runtime exists; each runs axum with tower-sessions on
//! the store `--store` names ([`config::StoreSpec`]). With `store-fastmmap` every worker
//! sees every session, and sessions survive replacing the workers (SIGHUP) or the whole
//! server, because they live in the file. With `memory` each worker has its own
//! sessions (a login is seen by one worker only): the demonstration of why an
//! in-process store does not do for pre-forked servers.
//!
//! # Modules
//!
//! - [`config`]: the command line.
//! - [`app`]: the web application (page and JSON API).
//! - [`stores`]: opening the store.
//! - [`supervisor`]: fork, replace, purge, stop.
//! - [`worker`]: one worker's runtime and server.
//! - `os`: fork, signals and wait (the crate's only `unsafe`).

pub mod app;
pub mod config;
mod os;
pub mod stores;
pub mod supervisor;
pub mod worker;

/// The workspace README's examples (the engines' and the web app's), compiled and run
/// as doctests here, where every crate they use is a dependency.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
