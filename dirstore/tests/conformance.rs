//! The whole conformance suite against `DirStore`, wired as the conformance README says.

conformance::suite!(
    dirstore::harness::DirHarness,
    worker = env!("CARGO_BIN_EXE_dirstore-worker")
);
