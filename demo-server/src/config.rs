//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// One `store-memory` per worker process: sessions are not shared between workers
    /// and are gone with a restart (the demonstration of why it does not do).
    Memory,
    /// One `store-fastmmap` file shared by every worker (the default).
    Fastmmap(PathBuf),
    /// A Redis server at this URL.
    Redis(String),
}

/// What `demo-server` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`--listen`, default `127.0.0.1:3000`; port 0 picks one).
    pub listen: SocketAddr,
    /// Worker processes (`--workers`, default the number of cores).
    pub workers: usize,
    /// The session store (`--store`).
    pub store: StoreSpec,
    /// Sessions expire after this long without a request (`--ttl-secs`, default a day).
    pub ttl: Duration,
    /// How often the supervisor purges expired sessions (`--purge-secs`, default 60).
    pub purge_every: Duration,
}

/// The usage text.
pub const USAGE: &str = "\
usage: demo-server [--listen ADDR] [--workers N] [--store memory|fastmmap[=PATH]|redis=URL]
                   [--ttl-secs S] [--purge-secs S]

  --listen ADDR   address to listen on (default 127.0.0.1:3000; port 0 picks a free one)
  --workers N     worker processes sharing the socket (default: the number of cores)
  --store KIND    memory: one store per worker (sessions not shared, lost on restart)
                  fastmmap[=PATH]: one shared file (default ./demo-sessions/sessions)
                  redis=URL: a Redis server, e.g. redis=redis://127.0.0.1:6379/0
  --ttl-secs S    sessions expire after S seconds without a request (default 86400)
  --purge-secs S  the supervisor purges expired sessions every S seconds (default 60)

Signals to the supervisor: SIGTERM or SIGINT stops (workers finish their requests),
SIGHUP replaces every worker with a new one (sessions stay: they are in the store).";

impl Config {
    /// Parses the arguments (without the program name).
    ///
    /// # Errors
    /// A message saying what is wrong, for the usage text; `Err(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Config, Option<String>> {
        let mut cfg = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            store: StoreSpec::Fastmmap(PathBuf::from("demo-sessions/sessions")),
            ttl: Duration::from_secs(86_400),
            purge_every: Duration::from_secs(60),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") && n != "--store" => {
                    (n.to_owned(), Some(v.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            if name == "--help" || name == "-h" {
                return Err(None);
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| Some(format!("{name} needs a value")))
            };
            match name.as_str() {
                "--listen" => {
                    let v = value()?;
                    cfg.listen = v
                        .parse()
                        .map_err(|e| Some(format!("--listen {v:?}: {e} (use IP:PORT)")))?;
                }
                "--workers" => {
                    let v = value()?;
                    cfg.workers = match v.parse::<usize>() {
                        Ok(n @ 1..=256) => n,
                        _ => return Err(Some(format!("--workers {v:?}: use 1 to 256"))),
                    };
                }
                "--store" => cfg.store = parse_store(&value()?)?,
                "--ttl-secs" => cfg.ttl = secs("--ttl-secs", &value()?)?,
                "--purge-secs" => cfg.purge_every = secs("--purge-secs", &value()?)?,
                other => return Err(Some(format!("unknown argument {other:?}"))),
            }
        }
        Ok(cfg)
    }
}

fn parse_store(v: &str) -> Result<StoreSpec, Option<String>> {
    match v.split_once('=') {
        None if v == "memory" => Ok(StoreSpec::Memory),
        None if v == "fastmmap" => Ok(StoreSpec::Fastmmap(PathBuf::from("demo-sessions/sessions"))),
        Some(("fastmmap", path)) if !path.is_empty() => Ok(StoreSpec::Fastmmap(path.into())),
        Some(("redis", url)) if !url.is_empty() => Ok(StoreSpec::Redis(url.to_owned())),
        _ => Err(Some(format!(
            "--store {v:?}: use memory, fastmmap, fastmmap=PATH or redis=URL"
        ))),
    }
}

fn secs(name: &str, v: &str) -> Result<Duration, Option<String>> {
    match v.parse::<u64>() {
        Ok(s @ 1..=31_536_000) => Ok(Duration::from_secs(s)),
        _ => Err(Some(format!("{name} {v:?}: use 1 to 31536000 seconds"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, Option<String>> {
        Config::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let c = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--workers=3",
            "--store",
            "redis=redis://h/0",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.workers, 3);
        assert_eq!(c.store, StoreSpec::Redis("redis://h/0".into()));
        let c = parse(&["--store", "fastmmap=/tmp/x/s", "--ttl-secs", "5"]).unwrap();
        assert_eq!(c.store, StoreSpec::Fastmmap("/tmp/x/s".into()));
        assert_eq!(c.ttl, Duration::from_secs(5));
        assert_eq!(
            parse(&["--store", "memory"]).unwrap().store,
            StoreSpec::Memory
        );
        assert!(matches!(parse(&["--help"]), Err(None)));
        for bad in [
            &["--workers", "0"][..],
            &["--workers"],
            &["--listen", "nowhere"],
            &["--store", "sqlite"],
            &["--store", "redis="],
            &["--ttl-secs", "-1"],
            &["--frobnicate"],
        ] {
            assert!(matches!(parse(bad), Err(Some(_))), "{bad:?}");
        }
    }
}
