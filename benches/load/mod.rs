//! What the load benches (`daemon_load`, `soak`) share: the downstream API
//! stand-in in a process of its own, the daemon under test, and the load
//! generator (HTTP/1.1 clients on loopback, keep-alive, each waiting for its
//! answer), with the process CPU reading and the figures' arithmetic.

#![allow(dead_code)]

pub mod scenarios;
pub mod soak_store;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const MAX_CLIENTS: usize = 32;

/// The API stand-in, in a process of its own as a real API would be (and
/// as the daemon is): `/fast/...` answers at once, `/slow/...` after 200 ms,
/// `GET /calls` tells how many POSTs it took.
pub async fn serve_downstream() {
    let calls = Arc::new(AtomicU64::new(0));
    let (fast, slow, count) = (calls.clone(), calls.clone(), calls);
    let app = Router::new()
        .route(
            "/fast/{*path}",
            post(move || {
                fast.fetch_add(1, Ordering::Relaxed);
                async { "{\"ok\":true}" }
            }),
        )
        .route(
            "/slow/{*path}",
            post(move || {
                slow.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "{\"ok\":true}"
                }
            }),
        )
        .route(
            "/calls",
            get(move || async move { count.load(Ordering::Relaxed).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

pub struct Downstream {
    pub url: String,
    pub client: reqwest::Client,
    /// The stand-in's process, for the handle that started it.
    pub _child: Option<tokio::process::Child>,
}

impl Downstream {
    pub async fn start() -> Downstream {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .env(DOWNSTREAM_ROLE, "1")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the downstream stand-in");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        Downstream {
            url: first.trim_start_matches("listening on ").to_owned(),
            client: reqwest::Client::new(),
            _child: Some(child),
        }
    }

    pub async fn calls(&self) -> u64 {
        let answer = self.client.get(format!("{}/calls", self.url)).send().await;
        answer.unwrap().text().await.unwrap().parse().unwrap()
    }
}

/// Set in the environment of the process that plays the downstream API.
pub const DOWNSTREAM_ROLE: &str = "DAEMON_LOAD_DOWNSTREAM";

/// What a load of one phase saw.
pub struct Load {
    pub ok: u64,
    pub busy: u64,
    pub other: u64,
    pub latencies_us: Vec<u64>,
    pub elapsed: Duration,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    pub fn p(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// `clients` clients posting to `urls` (client `i` to `urls[i % len]`) for
/// `seconds`, each waiting for its answer; with `rate`, together at most
/// that many requests per second.
pub async fn drive(urls: &[String], clients: usize, seconds: f64, rate: Option<f64>) -> Load {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, counter) = (urls[i % urls.len()].clone(), counter.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut load = Load {
                    ok: 0,
                    busy: 0,
                    other: 0,
                    latencies_us: Vec::new(),
                    elapsed: Duration::ZERO,
                };
                let every = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
                let mut next = start
                    + every
                        .map(|e| e.mul_f64(i as f64 / clients as f64))
                        .unwrap_or_default();
                while Instant::now() < deadline {
                    if let Some(every) = every {
                        tokio::time::sleep_until(next.into()).await;
                        next += every;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let body =
                        format!(r#"{{"email":"Lead{n}@Example.com","referral_code":"R{n}"}}"#);
                    let sent = Instant::now();
                    match client.post(&url).body(body).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            load.ok += 1;
                            load.latencies_us.push(sent.elapsed().as_micros() as u64);
                        }
                        Ok(r) if r.status() == 503 => {
                            let _ = r.bytes().await;
                            load.busy += 1;
                        }
                        _ => load.other += 1,
                    }
                }
                load
            })
        })
        .collect();
    let mut all = Load {
        ok: 0,
        busy: 0,
        other: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let load = task.await.unwrap();
        all.ok += load.ok;
        all.busy += load.busy;
        all.other += load.other;
        all.latencies_us.extend(load.latencies_us);
    }
    all.elapsed = start.elapsed();
    all.latencies_us.sort_unstable();
    all
}

/// User plus system CPU time of a process.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(fields.iter().sum::<u64>() as f64 / ticks)
}

pub struct Daemon {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub url: String,
}

impl Daemon {
    pub async fn start(binary: &Path, scenarios: &Path, store: &str) -> Daemon {
        let mut child = tokio::process::Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--dir",
            ])
            .arg(scenarios)
            .args(
                std::env::var("DAEMON_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("SCENARIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start scenarist serve");
        let pid = child.id().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Daemon {
            child,
            pid,
            url: first.trim_start_matches("listening on ").to_owned(),
        }
    }

    pub async fn stop(mut self) {
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[values.len() / 2]
}

pub fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The binary under test: `SCENARIST_BIN`, or the one cargo built for the bench.
pub fn binary_under_test() -> std::path::PathBuf {
    std::env::var_os("SCENARIST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_scenarist")))
}

/// In the process started to play the downstream API: serves it until
/// killed and answers true; elsewhere false at once.
pub fn play_downstream_if_asked() -> bool {
    if std::env::var_os(DOWNSTREAM_ROLE).is_none() {
        return false;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(serve_downstream());
    true
}

/// The runtime the load benches drive everything from.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}
