//! The behaviours, one public generic function each, grouped by area. The
//! [`suite!`](crate::suite) macro generates a `#[test]` per function; they can also be
//! called directly with a [`Ctx`](crate::Ctx).

pub mod basics;
pub mod capacity;
pub mod concurrency;
pub mod errors;
pub mod expiry;
pub mod inspect;
pub mod lifecycle;
pub mod model;
pub mod processes;
pub mod update;
pub mod write_modes;
