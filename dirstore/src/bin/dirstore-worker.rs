//! The conformance suite's worker process for `DirStore`.

fn main() {
    conformance::worker::main::<dirstore::harness::DirHarness>()
}
