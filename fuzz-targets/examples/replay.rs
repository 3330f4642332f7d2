//! Runs fuzz inputs through a target body on stable, printing each panic in full:
//! `cargo run -p fuzz-targets --example replay -- <target> <file>...`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, files)) = args.split_first() else {
        eprintln!("usage: replay <target> <file>...");
        std::process::exit(2);
    };
    let Some((_, body)) = fuzz_targets::TARGETS.iter().find(|(n, _)| n == name) else {
        eprintln!("no target {name}");
        std::process::exit(2);
    };
    let mut failed = 0;
    for f in files {
        let data = std::fs::read(f).expect("readable input");
        match std::panic::catch_unwind(|| body(&data)) {
            Ok(()) => println!("ok   {f}"),
            Err(_) => {
                println!("FAIL {f}");
                failed += 1;
            }
        }
    }
    std::process::exit(i32::from(failed > 0));
}
