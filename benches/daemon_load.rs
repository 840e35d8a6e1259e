//! Load benchmark of `scenarist serve`: a webhook scenario of filter, set and
//! one HTTP POST downstream, driven by 32 concurrent clients on loopback for a
//! bounded time: one daemon on an SQLite file, then (when
//! `SCENARIST_TEST_POSTGRES` names a server) two daemons sharing one
//! PostgreSQL schema, the clients spread over both: once as fast as the
//! daemons answer, once at a fixed offered rate of 1,100 webhooks/s (the
//! target is 1,000 completed/s with p99 under 25 ms).
//!
//! Prints, per phase: webhook answers per second and their latency (median,
//! p99), executions completed per second (accepted to downstream call,
//! sustained), the daemons' peak memory; and as the reference the downstream
//! server's own rate measured alone by the same load generator in the same run.
//!
//! Run: `cargo bench --bench daemon_load` (builds the release binary first).
//! `LOAD_SECONDS` sets the duration of each phase (default 10).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENTS: usize = 32;

#[derive(Default)]
struct Downstream {
    calls: AtomicU64,
}

async fn start_downstream() -> (String, Arc<Downstream>) {
    let state = Arc::new(Downstream::default());
    let counted = state.clone();
    let app = Router::new().route(
        "/{*path}",
        post(move || {
            let counted = counted.clone();
            async move {
                counted.calls.fetch_add(1, Ordering::Relaxed);
                "{\"ok\":true}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

struct Phase {
    ok: u64,
    other: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

/// `CLIENTS` clients sending `body(n)` to the `urls` in turn for `seconds`,
/// each waiting for its answer; with `rate`, the clients together offer at
/// most that many requests per second (each keeps its own schedule).
async fn drive(
    urls: Vec<String>,
    seconds: u64,
    rate: Option<f64>,
    body: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Phase {
    let body = Arc::new(body);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..CLIENTS)
        .enumerate()
        .map(|(i, _)| {
            let url = urls[i % urls.len()].clone();
            let i = i as u32;
            let (body, counter) = (body.clone(), counter.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (mut ok, mut other, mut latencies) = (0u64, 0u64, Vec::new());
                let every = rate.map(|r| Duration::from_secs_f64(CLIENTS as f64 / r));
                let mut next = Instant::now()
                    + every
                        .map(|e| e.mul_f64(f64::from(i) / CLIENTS as f64))
                        .unwrap_or_default();
                while Instant::now() < deadline {
                    if let Some(every) = every {
                        tokio::time::sleep_until(next.into()).await;
                        next += every;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let result = client.post(&url).body(body(n)).send().await;
                    match result {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            ok += 1;
                            latencies.push(sent.elapsed().as_micros() as u64);
                        }
                        _ => other += 1,
                    }
                }
                (ok, other, latencies)
            })
        })
        .collect();
    let mut phase = Phase {
        ok: 0,
        other: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (ok, other, latencies) = task.await.unwrap();
        phase.ok += ok;
        phase.other += other;
        phase.latencies_us.extend(latencies);
    }
    phase.elapsed = start.elapsed();
    phase.latencies_us.sort_unstable();
    phase
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn peak_memory_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    url: String,
}

async fn start_daemon(scenarios: &std::path::Path, store: &str) -> Daemon {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scenarist"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "32",
            "--max-queue",
            "1000000",
            "--store",
            store,
            "--dir",
        ])
        .arg(scenarios)
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

/// One phase: `daemons` daemons on `store`, the clients spread over them.
async fn phase(
    label: &str,
    store: &str,
    daemons: usize,
    scenarios: &std::path::Path,
    downstream: &Downstream,
    seconds: u64,
    rate: Option<f64>,
) {
    let before = downstream.calls.load(Ordering::Relaxed);
    let mut running = Vec::new();
    for _ in 0..daemons {
        running.push(start_daemon(scenarios, store).await);
    }
    let urls = running
        .iter()
        .map(|d| format!("{}/hooks/leads", d.url))
        .collect();
    let started = Instant::now();
    let load = drive(urls, seconds, rate, |n| {
        format!(r#"{{"email":"Lead{n}@Example.com","referral_code":"R{n}"}}"#)
    })
    .await;
    // Every accepted event must reach the downstream server; wait (bounded) for the tail.
    let wait_until = Instant::now() + Duration::from_secs(120);
    while downstream.calls.load(Ordering::Relaxed) - before < load.ok && Instant::now() < wait_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let completed = downstream.calls.load(Ordering::Relaxed) - before;
    let all_done = started.elapsed();
    let memory: Vec<String> = running
        .iter()
        .map(|d| format!("{:.1}", peak_memory_mb(d.pid)))
        .collect();
    for mut daemon in running {
        unsafe {
            libc::kill(daemon.pid as i32, libc::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), daemon.child.wait()).await;
    }
    println!("{label} ({CLIENTS} clients, {seconds}s, 2-core machine)");
    println!(
        "  webhook answers   {:>8.0}/s  (202: {}, other: {})",
        load.ok as f64 / load.elapsed.as_secs_f64(),
        load.ok,
        load.other
    );
    println!(
        "  answer latency    median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&load.latencies_us, 0.5),
        percentile(&load.latencies_us, 0.99),
        percentile(&load.latencies_us, 1.0)
    );
    println!(
        "  completed         {:>8.0}/s  ({completed} of {} accepted, all done after {:.1}s)",
        completed as f64 / all_done.as_secs_f64(),
        load.ok,
        all_done.as_secs_f64()
    );
    println!("  daemon peak RSS   {} MB", memory.join(", "));
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (downstream_url, downstream) = start_downstream().await;

        // Reference: the downstream server alone, same generator, same clients.
        let reference = drive(
            vec![format!("{downstream_url}/alone")],
            seconds,
            None,
            |_| "{}".to_owned(),
        )
        .await;
        let reference_rate = reference.ok as f64 / reference.elapsed.as_secs_f64();

        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("scenarios");
        std::fs::create_dir(&scenarios).unwrap();
        std::fs::write(
            scenarios.join("lead.yaml"),
            format!(
                r#"name: lead
trigger:
  webhook: {{ path: leads }}
steps:
  - id: referred
    filter: {{ value: "{{{{ trigger.body.referral_code }}}}", exists: true }}
  - id: lead
    set: {{ email: "{{{{ lower trigger.body.email }}}}", code: "{{{{ trigger.body.referral_code }}}}" }}
  - id: crm
    http: {{ method: POST, url: "{downstream_url}/crm/leads", json: "{{{{ steps.lead }}}}" }}
"#
            ),
        )
        .unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("store.db").display());
        phase("one daemon, SQLite file", &sqlite, 1, &scenarios, &downstream, seconds, None).await;
        match std::env::var("SCENARIST_TEST_POSTGRES") {
            Ok(server) if !server.is_empty() => {
                let separator = if server.contains('?') { '&' } else { '?' };
                for (label, rate) in [
                    ("two daemons, one PostgreSQL schema, as fast as they answer", None),
                    ("two daemons, one PostgreSQL schema, 1,100 webhooks/s offered", Some(1100.0)),
                ] {
                    let schema = format!("bench_{}_{}", std::process::id(), rate.is_some() as u8);
                    let store = format!("{server}{separator}schema={schema}");
                    phase(label, &store, 2, &scenarios, &downstream, seconds, rate).await;
                    let _ = std::process::Command::new("psql")
                        .arg(&server)
                        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
                        .output();
                }
            }
            _ => println!("(no PostgreSQL phase: set SCENARIST_TEST_POSTGRES=postgres://USER@HOST:PORT/DB)"),
        }
        println!(
            "reference: the downstream server alone {:>8.0}/s (median {:.2} ms, p99 {:.2} ms)",
            reference_rate,
            percentile(&reference.latencies_us, 0.5),
            percentile(&reference.latencies_us, 0.99)
        );
    });
}
