//! The command line: every subcommand, its options, and its help (which says whether it
//! is safe while servers run).

use clap::{Arg, ArgAction, Command};

const SAFE: &str = "Safe while servers run.";

/// The whole command line.
pub(crate) fn command() -> Command {
    Command::new("sessionctl")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Look inside a session store and act on it (store-fastmmap files, store-redis prefixes)")
        .long_about(
            "Look inside a session store and act on it.\n\n\
             STORE is what the application configures: the path of a store-fastmmap file \
             (run as the user the servers run as: the file is readable by its owner only), \
             or a redis:// URL, with --redis-prefix for the store's key prefix. Opening \
             never creates or initialises a file.\n\n\
             Exit status: 0 on success, 1 if the command failed (a missing file, a file of \
             another format, a server that is down), 2 if verify found damage.",
        )
        .arg(
            Arg::new("store")
                .value_name("STORE")
                .required(true)
                .help("A store-fastmmap file path, or a redis:// URL"),
        )
        .arg(
            Arg::new("redis-prefix")
                .long("redis-prefix")
                .value_name("PREFIX")
                .global(true)
                .help("The store-redis key prefix (default store-redis's, `session-store:`)"),
        )
        .subcommand_required(true)
        .subcommand(
            Command::new("stats")
                .about(format!(
                    "Geometry, entries, bytes, fill per page, evictions, repairs. {SAFE}"
                ))
                .arg(flag("json", "Print JSON"))
                .arg(flag("prometheus", "Print the Prometheus text exposition format")),
        )
        .subcommand(
            Command::new("watch")
                .about(format!(
                    "Live stats once a second: writes per second, hit rate, evictions. {SAFE}"
                ))
                .arg(
                    Arg::new("interval")
                        .long("interval")
                        .value_name("DURATION")
                        .default_value("1s")
                        .help("Time between lines"),
                )
                .arg(
                    Arg::new("count")
                        .long("count")
                        .value_name("N")
                        .value_parser(clap::value_parser!(u64))
                        .help("Stop after N lines (default: run until interrupted)"),
                ),
        )
        .subcommand(
            Command::new("verify")
                .about(format!(
                    "Check every page and record checksum, changing nothing; exit status 2 on \
                     damage. {SAFE} (one page lock at a time)"
                ))
                .arg(flag(
                    "repair",
                    "Repair damaged pages under their locks, as a writer would (safe while \
                     servers run; records that fail their checks are dropped)",
                ))
                .arg(flag("quiet", "No progress bar")),
        )
        .subcommand(
            Command::new("list")
                .about(format!("List the live sessions' keys, expiry and size. {SAFE}"))
                .arg(
                    Arg::new("prefix")
                        .long("prefix")
                        .value_name("P")
                        .help("Only keys starting with P"),
                )
                .arg(flag("json", "One JSON object per line")),
        )
        .subcommand(
            Command::new("get")
                .about(format!(
                    "Print a session's value: JSON pretty-printed (tower-sessions and \
                     actix-session records are JSON), text as is, anything else in hex. {SAFE}"
                ))
                .arg(key_arg())
                .arg(flag("raw", "The bytes as they are"))
                .arg(flag("hex", "A hex dump"))
                .arg(flag("json", "The entry as JSON: key, expiry, version and value")),
        )
        .subcommand(
            Command::new("delete")
                .about(format!(
                    "Delete a session (log it out). {SAFE} Its user's next request has no \
                     session."
                ))
                .arg(key_arg()),
        )
        .subcommand(
            Command::new("touch")
                .about(format!("Give a live session a new expiry. {SAFE}"))
                .arg(key_arg())
                .arg(
                    Arg::new("duration")
                        .value_name("DURATION")
                        .required(true)
                        .help("From now: 90s, 30m, 1h30m, 2d, or `never`"),
                ),
        )
        .subcommand(
            Command::new("purge")
                .about(format!("Remove every expired session. {SAFE}")),
        )
        .subcommand(
            Command::new("clear")
                .about(format!(
                    "Remove every session: everybody is logged out. {SAFE} Sessions written \
                     while it runs may survive."
                ))
                .arg(flag("yes", "Really remove every session (required)")),
        )
}

fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn key_arg() -> Arg {
    Arg::new("key")
        .value_name("KEY")
        .required(true)
        .help("The session's key, as the application stores it (with its prefix)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
