//! README.md documents every behaviour the suite runs.

mod support;

use conformance::behaviours;
use support::scratch::Correct;

#[test]
fn readme_lists_every_behaviour() {
    let readme = include_str!("../README.md");
    let missing: Vec<_> = behaviours::<Correct>()
        .into_iter()
        .filter(|b| !readme.contains(&format!("`{}`", b.name)))
        .map(|b| b.name)
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not list these behaviours: {missing:?}"
    );
}
