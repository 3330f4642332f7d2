//! Shared by the suite's own integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod scratch;
