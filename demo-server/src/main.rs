//! `demo-server`: see the crate docs and `demo-server --help`.

use demo_server::config::{Config, USAGE};

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .init();
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(None) => {
            println!("{USAGE}");
            return;
        }
        Err(Some(msg)) => {
            eprintln!("demo-server: {msg}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = demo_server::supervisor::run(&cfg) {
        eprintln!("demo-server: {e}");
        std::process::exit(1);
    }
}
