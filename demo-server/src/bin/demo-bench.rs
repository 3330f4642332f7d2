//! `demo-bench`: requests per second and latency percentiles of the demo server's
//! session-reading (`GET /api/session`) and session-writing (`POST /api/incr`)
//! endpoints, with `--store memory`, `fastmmap` and `redis`, at 1 and N workers, run
//! side by side: the configurations take turns, round after round, and each figure is
//! the median over the rounds.
//!
//! ```text
//! cargo build --release -p demo-server --bins
//! target/release/demo-bench [--rounds 5] [--seconds 2] [--connections 8] [--workers N]
//! ```
//!
//! The client is in this process: `--connections` keep-alive connections, each on its
//! own thread speaking HTTP/1.1 over a plain socket (so the client costs the same for
//! every store), each logged in once (so a memory store, which is per worker, has the
//! session on the worker that serves the connection). Redis runs if `redis-server` is
//! on `PATH` (started here on a free port, persistence off); without it its rows are
//! skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Opts {
    rounds: usize,
    seconds: f64,
    connections: usize,
    workers: usize,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 5,
        seconds: 2.0,
        connections: 8,
        workers: std::thread::available_parallelism().map_or(2, usize::from),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = v()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--seconds" => o.seconds = v()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--connections" => {
                o.connections = v()?.parse().map_err(|e| format!("--connections: {e}"))?
            }
            "--workers" => o.workers = v()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--help" | "-h" => {
                return Err(
                    "usage: demo-bench [--rounds R] [--seconds S] [--connections C] [--workers N]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.rounds == 0
        || o.connections == 0
        || o.workers == 0
        || !o.seconds.is_finite()
        || o.seconds <= 0.0
    {
        return Err("rounds, seconds, connections and workers must be positive".into());
    }
    Ok(o)
}

/// A server process, SIGTERMed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && self.0.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start_redis() -> Option<(Proc, String)> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Some((p, format!("redis://127.0.0.1:{port}/0")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn start_server(bin: &PathBuf, workers: usize, store: &str) -> (Proc, u16) {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--workers", &workers.to_string()])
        .args(["--store", store])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let out = child.stdout.take().unwrap();
    let p = Proc(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    // Let every worker start listening.
    std::thread::sleep(Duration::from_millis(300));
    (p, port)
}

/// One keep-alive connection with its session cookie.
struct Conn {
    stream: BufReader<TcpStream>,
    cookie: String,
    body: Vec<u8>,
    /// The worker that serves this connection (from the login's answer).
    worker: usize,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        s.set_nodelay(true)?;
        let mut c = Conn {
            stream: BufReader::new(s),
            cookie: String::new(),
            body: Vec::new(),
            worker: 0,
        };
        let login = br#"{"user":"bench"}"#;
        let status = c.request("POST", "/api/login", login)?;
        if status != 200 || c.cookie.is_empty() {
            return Err(std::io::Error::other(format!("login: {status}")));
        }
        let info: serde_json::Value =
            serde_json::from_slice(&c.body).map_err(std::io::Error::other)?;
        c.worker = info["worker"].as_u64().unwrap_or(0) as usize;
        Ok(c)
    }

    /// Sends one request and reads the response; its status.
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("content-type: application/json\r\n");
        }
        if !self.cookie.is_empty() {
            req.push_str(&format!("cookie: demo_sid={}\r\n", self.cookie));
        }
        req.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("status line {line:?}")))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                len = value.parse().map_err(std::io::Error::other)?;
            } else if name.eq_ignore_ascii_case("set-cookie")
                && let Some(v) = value.strip_prefix("demo_sid=")
            {
                self.cookie = v.split(';').next().unwrap_or("").to_owned();
            }
        }
        self.body.resize(len, 0);
        self.stream.read_exact(&mut self.body)?;
        Ok(status)
    }
}

/// A measured configuration: store, workers, endpoint.
type Config = (String, usize, &'static str);

struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// The largest number of connections one worker served.
    busiest: usize,
}

/// `connections` clients hammering one endpoint for `seconds`.
fn load(
    port: u16,
    connections: usize,
    seconds: f64,
    method: &'static str,
    path: &'static str,
) -> Sample {
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (go, stop) = (go.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(port).expect("connect and log in");
                let worker = c.worker;
                let mut lat = Vec::with_capacity(100_000);
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let status = c.request(method, path, b"").expect("request");
                    lat.push(t.elapsed());
                    assert_eq!(status, 200, "{method} {path}");
                }
                (worker, lat)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    go.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut per_worker = std::collections::HashMap::<usize, usize>::new();
    let mut all: Vec<Duration> = Vec::new();
    for t in threads {
        let (worker, lat) = t.join().unwrap();
        *per_worker.entry(worker).or_default() += 1;
        all.extend(lat);
    }
    all.sort_unstable();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e6;
    Sample {
        rps: all.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        busiest: per_worker.values().copied().max().unwrap_or(0),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bin = std::env::current_exe()
        .expect("current exe")
        .with_file_name("demo-server");
    if !bin.is_file() {
        eprintln!(
            "{} not found: build it first (cargo build --release -p demo-server --bins)",
            bin.display()
        );
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("demo-bench-{}", std::process::id()));
    let redis = start_redis();
    if redis.is_none() {
        eprintln!("redis-server not on PATH: the redis rows are skipped");
    }
    let mut stores = vec![
        ("memory".to_owned(), "memory".to_owned()),
        (
            "fastmmap".to_owned(),
            format!("fastmmap={}", dir.join("sessions").display()),
        ),
    ];
    if let Some((_, url)) = &redis {
        stores.push(("redis".to_owned(), format!("redis={url}")));
    }
    let mut worker_counts = vec![1];
    if o.workers > 1 {
        worker_counts.push(o.workers);
    }
    let endpoints = [
        ("read", "GET", "/api/session"),
        ("write", "POST", "/api/incr"),
    ];
    // (store, workers, endpoint) -> one sample per round
    let mut results: Vec<(Config, Vec<Sample>)> = Vec::new();
    for &(ep, _, _) in &endpoints {
        for &w in &worker_counts {
            for (name, _) in &stores {
                results.push(((name.clone(), w, ep), Vec::new()));
            }
        }
    }
    println!(
        "host: {} cores; client: {} keep-alive connections in this process; {} rounds of {} s",
        std::thread::available_parallelism().map_or(0, usize::from),
        o.connections,
        o.rounds,
        o.seconds
    );
    for round in 0..o.rounds {
        for &w in &worker_counts {
            for (name, spec) in &stores {
                let (server, port) = start_server(&bin, w, spec);
                for &(ep, method, path) in &endpoints {
                    let s = load(port, o.connections, o.seconds, method, path);
                    let slot = results
                        .iter_mut()
                        .find(|((n, ww, e), _)| n == name && *ww == w && *e == ep)
                        .unwrap();
                    slot.1.push(s);
                }
                drop(server);
            }
        }
        eprintln!("round {} of {} done", round + 1, o.rounds);
    }
    println!("\n| endpoint | workers | store | requests/s | p50 us | p99 us |");
    println!("|---|---:|---|---:|---:|---:|");
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    for ((name, w, ep), v) in &results {
        println!(
            "| {ep} | {w} | {name} | {:.0} | {:.0} | {:.0} |",
            med(v, |s| s.rps),
            med(v, |s| s.p50_us),
            med(v, |s| s.p99_us)
        );
    }
    println!("\nRatios (median of the per-round ratios of requests/s):");
    for &(ep, _, _) in &endpoints {
        for &w in &worker_counts {
            let get = |n: &str| {
                results
                    .iter()
                    .find(|((nn, ww, e), _)| nn == n && *ww == w && *e == ep)
                    .map(|(_, v)| v)
            };
            let (Some(f), Some(m)) = (get("fastmmap"), get("memory")) else {
                continue;
            };
            let ratio = |a: &[Sample], b: &[Sample]| {
                let v: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.rps / b.rps).collect();
                let (lo, hi) = v
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                format!("{:.3} [{lo:.3} - {hi:.3}]", median(v))
            };
            print!("  {ep}, {w} worker(s): fastmmap / memory {}", ratio(f, m));
            if let Some(r) = get("redis") {
                print!(", fastmmap / redis {}", ratio(f, r));
            }
            println!();
            if w > 1 {
                let busiest = |v: &[Sample]| {
                    v.iter()
                        .map(|s| s.busiest.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                println!(
                    "    connections on the busiest worker, per round: memory {}; fastmmap {}",
                    busiest(m),
                    busiest(f)
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
