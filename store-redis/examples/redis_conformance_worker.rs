//! The worker process of the conformance suite's multi-process behaviours
//! (`tests/redis_conformance.rs`): `conformance::worker::main` with the Redis harness.
//! It is an example rather than a binary so that it may use the dev-dependency
//! `conformance`; the tests find it beside their own executable.

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    conformance::worker::main::<support::harness::Redis>()
}
