//! The whole suite against an engine written from scratch outside the engine crates:
//! the harness is in `support/scratch.rs`; opting in is the one line below.

mod support;

conformance::suite!(support::scratch::Correct);
