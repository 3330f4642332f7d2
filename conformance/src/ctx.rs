//! What a behaviour gets to run with, and how a run ends (pass, fail or skip).

use std::io::Write as _;
use std::path::Path;

use crate::{Harness, Spec, Unsupported};

/// What a behaviour returns: `Ok` when it passed, [`Unsupported`] when it was skipped.
/// A failure panics with a message naming what was expected.
pub type Outcome = Result<(), Unsupported>;

/// A behaviour: a named test body, generic over the harness.
pub struct Behaviour<H> {
    /// `group::name`, as the generated `#[test]` is named.
    pub name: &'static str,
    /// The body.
    pub run: fn(&Ctx) -> Outcome,
    _harness: std::marker::PhantomData<fn() -> H>,
}

impl<H> Behaviour<H> {
    #[doc(hidden)]
    pub const fn new(name: &'static str, run: fn(&Ctx) -> Outcome) -> Self {
        Behaviour {
            name,
            run,
            _harness: std::marker::PhantomData,
        }
    }
}

impl<H> std::fmt::Debug for Behaviour<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The environment of one behaviour run.
#[derive(Debug, Clone)]
pub struct Ctx {
    worker: Option<&'static str>,
    cases: u32,
}

/// Name of the environment variable holding the number of model-based cases.
pub const CASES_ENV: &str = "CONFORMANCE_CASES";

/// Default number of model-based cases per property.
pub const DEFAULT_CASES: u32 = 48;

impl Ctx {
    /// A context with the worker binary at `worker` (if any); case counts from
    /// [`CASES_ENV`].
    pub fn new(worker: Option<&'static str>) -> Self {
        let cases = std::env::var(CASES_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_CASES);
        Ctx { worker, cases }
    }

    /// Number of model-based cases to run.
    pub fn cases(&self) -> u32 {
        self.cases
    }

    /// How many times longer than default the stress behaviours run: 1 by default,
    /// more when [`CASES_ENV`] asks for more cases than the default.
    pub fn scale(&self) -> u32 {
        (self.cases / DEFAULT_CASES).max(1)
    }

    /// The worker binary, if the suite was given one.
    pub fn worker(&self) -> Option<&Path> {
        self.worker.map(Path::new)
    }

    /// Creates a harness for `spec` and opens a first handle.
    ///
    /// # Errors
    /// [`Unsupported`] when the harness cannot make such a store.
    ///
    /// # Panics
    /// When opening the fresh store fails.
    pub fn store<H: Harness>(&self, spec: &Spec) -> Result<(H, H::Store), Unsupported> {
        let harness = H::create(spec)?;
        let store = harness.open().unwrap_or_else(|e| {
            panic!("opening a fresh store failed: {}", crate::check::chain(&e))
        });
        Ok((harness, store))
    }
}

/// Runs one behaviour for the test the [`suite!`](crate::suite) macro generated. A skip
/// is printed to the real standard error (not captured by the test harness), so that
/// `cargo test` shows why.
pub fn run<H: Harness>(name: &str, body: fn(&Ctx) -> Outcome, worker: Option<&'static str>) {
    let ctx = Ctx::new(worker);
    if let Err(reason) = body(&ctx) {
        let _ = writeln!(
            std::io::stderr(),
            "conformance: {} skipped for {}: {reason}",
            name,
            std::any::type_name::<H>()
        );
    }
}

/// Returns [`Unsupported`] with `reason` unless `cond` holds.
///
/// # Errors
/// The skip.
pub fn require(cond: bool, reason: &str) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(Unsupported::new(reason))
    }
}
