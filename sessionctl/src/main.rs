//! `sessionctl`: look inside a session store and act on it, the way an operator of LMDB
//! has `mdb_stat` and one of Redis has `redis-cli`.
//!
//! The store is named the way a user configures it: a file path for store-fastmmap, a
//! `redis://` URL (and `--redis-prefix`) for store-redis. Each subcommand's help says
//! whether it is safe while servers run. Bad input (a path that is not a session file, a
//! file of another format version, a missing file, a Redis that is down) is one line on
//! standard error and exit status 1, never a panic and never a change to the file:
//! opening never creates or initialises a file (`FastMmapBuilder::existing_only`).
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | the entry point: parse, open, run, report |
//! | `cli.rs` | the command line (clap) and each subcommand's help |
//! | `target.rs` | opening the store a STORE argument names |
//! | `stats.rs` | `stats` and `watch`: text, `--json`, `--prometheus` |
//! | `commands.rs` | `verify`, `list`, `get`, `delete`, `touch`, `purge`, `clear` |
//! | `duration.rs` | durations such as `30m` or `1h30m` |

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod duration;
mod stats;
mod target;

use std::io::Write;
use std::process::ExitCode;

/// A failure to report: one line, and the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A failure of the command (status 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    /// Writing the output failed; a reader that went away (`sessionctl ... list | head`)
    /// ends the command quietly, as for every Unix filter.
    pub(crate) fn output(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Failure {
                message: String::new(),
                code: 0,
            };
        }
        Failure::new(format!("writing the output: {e}"))
    }

    /// Damage found (status 2, so scripts can tell it from a failure to look).
    pub(crate) fn damage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl From<store_api::Error> for Failure {
    fn from(e: store_api::Error) -> Self {
        Failure::new(chain(&e))
    }
}

/// An error and its sources, on one line.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cur = c.source();
    }
    s
}

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let out = &mut std::io::stdout().lock();
    match run(&matches, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = out.flush();
            if !f.message.is_empty() {
                eprintln!("sessionctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let store = m.get_one::<String>("store").expect("required");
    let prefix = m.get_one::<String>("redis-prefix").map(String::as_str);
    let target = target::Target::open(store, prefix)?;
    let (name, sub) = m.subcommand().expect("a subcommand is required");
    match name {
        "stats" => stats::stats(&target, sub, out),
        "watch" => stats::watch(&target, sub, out),
        "verify" => commands::verify(&target, sub, out),
        "list" => commands::list(&target, sub, out),
        "get" => commands::get(&target, sub, out),
        "delete" => commands::delete(&target, sub, out),
        "touch" => commands::touch(&target, sub, out),
        "purge" => commands::purge(&target, out),
        "clear" => commands::clear(&target, sub, out),
        other => Err(Failure::new(format!("unknown subcommand {other}"))),
    }
}
