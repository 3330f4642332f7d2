//! Writes the seed files of the `file` fuzz target to `fuzz/corpus/file/`.

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/file");
    std::fs::create_dir_all(dir).expect("creating the corpus folder");
    for (name, bytes) in fuzz_targets::file_seeds() {
        let path = format!("{dir}/{name}");
        std::fs::write(&path, bytes).expect("writing a seed");
        println!("{path}");
    }
}
