//! Replays every committed fuzz input on stable: each file under `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through the same body the fuzzer runs.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn replay_corpora_and_regressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, body) in fuzz_targets::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "target {name} has no committed seed corpus"
        );
        let regressions = inputs(&root.join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("readable input");
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "target {name} failed on {}", path.display());
            total += 1;
        }
    }
    println!("replayed {total} inputs");
}
