//! The worker process of the multi-process workloads; see `benches::worker` for the
//! protocol. Started by the `compare` runner and the criterion benches, never by hand.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(benches::worker::main(&args));
}
