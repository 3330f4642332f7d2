//! A reusable conformance suite for [`store_api::SessionStore`] engines.
//!
//! An engine author implements [`Harness`] (make a fresh isolated store; optionally a
//! manual clock, reopen, a worker process, corruption) and writes one line in a test
//! file:
//!
//! ```ignore
//! conformance::suite!(MyHarness);
//! ```
//!
//! That generates one named `#[test]` per behaviour of the contract (`basics::…`,
//! `write_modes::…`, `expiry::…`, `update::…`, `capacity::…`, `concurrency::…`,
//! `processes::…`, `errors::…`, `lifecycle::…`, `model::…`), so a failure names the
//! behaviour. [`Capabilities`](store_api::Capabilities) and the harness decide what is
//! skipped, and a skip prints why. Model-based properties check generated operation
//! sequences against [`model::Model`], which a fuzz target can reuse; their case count
//! comes from the `CONFORMANCE_CASES` environment variable. Multi-process behaviours
//! run a worker binary built on [`worker::main`]; the test process is never forked.
//!
//! The suite has teeth: its own tests run it against deliberately broken engines and
//! check that each defect is caught by the behaviour the README's table names.

#![forbid(unsafe_code)]

pub mod behaviours;
pub mod check;
mod ctx;
mod harness;
pub mod model;
mod suite;
pub mod worker;

pub use ctx::{Behaviour, CASES_ENV, Ctx, DEFAULT_CASES, Outcome, require, run};
pub use harness::{Corruption, Harness, Size, Spec, Unsupported};
pub use suite::{behaviour, behaviours};
