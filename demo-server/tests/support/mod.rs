//! The demo server as real processes on a loopback port, and an HTTP client that sends
//! the session cookie by hand (so that one cookie can be replayed after logout).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `demo-server`; SIGTERMed (then SIGKILLed) when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The supervisor's log (stderr).
    pub log: PathBuf,
}

impl Server {
    /// Starts `demo-server --listen 127.0.0.1:0 --workers N --store STORE` (plus
    /// `extra`), logging to `log`, and waits for its "listening" line.
    pub fn start(workers: usize, store: &str, log: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demo-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &workers.to_string(),
                "--store",
                store,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn demo-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "demo-server did not start: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        let server = Server {
            child: Some(child),
            url,
            log: log.to_owned(),
        };
        // Every worker serving: wait until `workers` distinct ones have answered.
        let c = Client::new(&server.url);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = std::collections::HashSet::new();
        while seen.len() < workers && Instant::now() < deadline {
            if let Ok((_, info)) = c.try_get("/api/session") {
                seen.insert(info["worker"].as_u64().unwrap());
            }
        }
        server
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `sig` to the supervisor.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// SIGTERM, and waits for the supervisor to exit (it stops its workers first).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("demo-server did not stop within 20 s of SIGTERM");
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `sig` (e.g. `-KILL`) to `pid` with the `kill` command.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// An HTTP client with one session cookie, sent by hand; every request opens a new
/// connection, so that requests spread over the workers.
#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    /// The `demo_sid` cookie's value, once the server set one.
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    fn send(&mut self, req: reqwest::blocking::RequestBuilder) -> reqwest::Result<(u16, Value)> {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("demo_sid={c}")),
            None => req,
        };
        let res = req.send()?;
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some(rest) = v.strip_prefix("demo_sid=") {
                let value = rest.split(';').next().unwrap();
                let removed = v.contains("Max-Age=0") || value.is_empty();
                self.cookie = (!removed).then(|| value.to_owned());
            }
        }
        let status = res.status().as_u16();
        let text = res.text()?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// GET, keeping a new cookie the server sets.
    pub fn try_get(&self, path: &str) -> reqwest::Result<(u16, Value)> {
        let mut me = self.clone();
        me.send(self.http.get(format!("{}{path}", self.base)))
    }

    /// GET that must succeed with 200.
    pub fn get(&mut self, path: &str) -> Value {
        let (s, v) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .unwrap();
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// POST with a JSON body (or none), any status.
    pub fn post(&mut self, path: &str, body: Option<Value>) -> reqwest::Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req)
    }

    /// PUT with a JSON body, any status.
    pub fn put(&mut self, path: &str, body: Value) -> reqwest::Result<(u16, Value)> {
        let req = self.http.put(format!("{}{path}", self.base)).json(&body);
        self.send(req)
    }

    /// A GET with this raw Cookie header instead of the session's.
    pub fn get_with_cookie_header(
        &self,
        path: &str,
        cookie: &str,
    ) -> reqwest::Result<(u16, Value)> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()?;
        let status = res.status().as_u16();
        let text = res.text()?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Logs in as `user`.
    pub fn login(&mut self, user: &str) -> Value {
        let (s, v) = self
            .post("/api/login", Some(serde_json::json!({"user": user})))
            .unwrap();
        assert_eq!(s, 200, "login: {v}");
        assert!(self.cookie.is_some(), "login set a session cookie");
        v
    }
}
