//! Benchmark of the dashboard's pages with 100,000 executions in the store
//! (SQLite file; and a PostgreSQL schema too when `SCENARIST_TEST_POSTGRES`
//! names a server): the executions page, a page filtered by a business key,
//! a page deep in history (keyset position), a status filter, one
//! execution, the scenarios page and the report. Target: the executions
//! page and the key page under 50 ms of server time (median), no page over
//! 200 KB.
//!
//! Server time is what the daemon itself reports in `Server-Timing`; the
//! total time of the same request on loopback is printed beside it, and as
//! the reference `/healthz` (one store round trip), in the same run.
//!
//! Run: `cargo bench --bench dashboard`. `DASHBOARD_EXECUTIONS` changes the
//! number of executions (default 100000), `DASHBOARD_SAMPLES` the requests
//! per page (default 40).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use scenarist::daemon::{Config, Daemon};
use scenarist::engine::ExecutionStatus;
use scenarist::store::{self, Finish, NewExecution, Store};
use serde_json::{json, Map};
use uuid::Uuid;

const SCENARIO: &str = "name: bench
trigger: { webhook: { path: bench/go } }
settings:
  keys: { lead: \"{{ trigger.body.email }}\" }
steps:
  - id: a
    set: { x: 1 }
";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `count` executions over the last six days, one lead per 20 of them;
/// every tenth failed, every tenth (offset) incomplete.
async fn fill(store: &Arc<dyn Store>, count: usize) -> Vec<Uuid> {
    let now = Utc::now();
    let span = chrono::Duration::days(6).num_milliseconds() as usize;
    let mut ids = Vec::with_capacity(count);
    let chunk = 1000;
    for start in (0..count).step_by(chunk) {
        let batch: Vec<(Uuid, usize)> = (start..(start + chunk).min(count))
            .map(|i| (Uuid::now_v7(), i))
            .collect();
        let started = batch.iter().map(|(id, i)| {
            let at = now - chrono::Duration::milliseconds((span - i * span / count) as i64);
            let new = NewExecution {
                id: *id,
                scenario: "bench".to_owned(),
                version: "v".to_owned(),
                trigger: json!({ "body": { "email": format!("lead{}@example.com", i % (count / 20).max(1)) }, "headers": {}, "query": {} }),
                vars: Map::new(),
                started_at: at,
                owner: "bench".to_owned(),
                replay_of: None,
                keys: vec![("lead".to_owned(), format!("lead{}@example.com", i % (count / 20).max(1)))],
            };
            store.start_execution(new)
        });
        for result in in_flight(started).await {
            result.expect("start");
        }
        let finished = batch.iter().map(|(id, i)| {
            let status = match i % 10 {
                0 => ExecutionStatus::Failed,
                5 => ExecutionStatus::Incomplete,
                _ => ExecutionStatus::Succeeded,
            };
            store.finish_execution(
                *id,
                "bench",
                Finish {
                    status,
                    error: None,
                    finished_at: Utc::now(),
                    next_retry_at: (status == ExecutionStatus::Incomplete)
                        .then(|| Utc::now() + chrono::Duration::days(30)),
                },
            )
        });
        for result in in_flight(finished).await {
            result.expect("finish");
        }
        ids.extend(batch.into_iter().map(|(id, _)| id));
    }
    ids
}

/// Runs the writes 16 at a time: what a store's pool (or writer) takes.
async fn in_flight<F: std::future::Future>(writes: impl Iterator<Item = F>) -> Vec<F::Output> {
    use futures::StreamExt;
    futures::stream::iter(writes)
        .buffer_unordered(16)
        .collect()
        .await
}

struct Sample {
    server_ms: Vec<f64>,
    total_ms: Vec<f64>,
    bytes: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(client: &reqwest::Client, url: &str, samples: usize) -> Sample {
    let mut out = Sample {
        server_ms: Vec::new(),
        total_ms: Vec::new(),
        bytes: 0,
    };
    for _ in 0..samples {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("the daemon answers");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let server = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("app;dur="))
            .and_then(|v| v.parse::<f64>().ok());
        let body = response.bytes().await.unwrap();
        out.total_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(ms) = server {
            out.server_ms.push(ms);
        }
        out.bytes = body.len();
    }
    out
}

async fn run(backend: &str, url: &str, count: usize, samples: usize, settle: Option<&str>) {
    let store = store::open(url).expect("store opens");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bench.yaml"), SCENARIO).unwrap();
    let filled = Instant::now();
    let ids = fill(&store, count).await;
    println!(
        "{backend}: {count} executions written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    if let Some(sql) = settle {
        // What autovacuum does soon after a bulk load: statistics for the
        // planner and the visibility map for index-only scans.
        let server = std::env::var("SCENARIST_TEST_POSTGRES").unwrap();
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .expect("connect to settle");
        tokio::spawn(connection);
        for statement in sql.split("; ") {
            client
                .batch_execute(statement)
                .await
                .expect("VACUUM ANALYZE");
        }
    }
    let config = Config::new(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
    let (daemon, problems) = Daemon::start(config, store, HashMap::new()).await.unwrap();
    assert!(problems.is_empty());
    let base = format!("http://{}", daemon.addr);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // A session first: pages answer everyone on loopback, this keeps the
    // cookie out of the measured requests' work.
    let middle = ids[ids.len() / 2];
    let pages = [
        ("reference: /healthz", "/healthz".to_owned()),
        ("executions page", "/ui/executions".to_owned()),
        (
            "filtered by key",
            "/ui/executions?key=lead123%40example.com".to_owned(),
        ),
        (
            "page deep in history",
            format!("/ui/executions?after={middle}"),
        ),
        (
            "filtered by status",
            "/ui/executions?status=failed&scenario=bench".to_owned(),
        ),
        ("one execution", format!("/ui/executions/{middle}")),
        ("scenarios (7-day counts)", "/ui/scenarios".to_owned()),
        ("report (30 days)", "/ui/report".to_owned()),
    ];
    println!(
        "{:<28} {:>16} {:>16} {:>10}",
        "page", "server ms (med)", "total ms (med)", "bytes"
    );
    for (name, path) in pages {
        let url = format!("{base}{path}");
        measure(&client, &url, 3).await; // warm up
        let s = measure(&client, &url, samples).await;
        let server = if s.server_ms.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", median(s.server_ms))
        };
        println!(
            "{name:<28} {server:>16} {:>16.2} {:>10}",
            median(s.total_ms),
            s.bytes
        );
    }
    daemon.shutdown().await;
}

fn main() {
    let count = env_number("DASHBOARD_EXECUTIONS", 100_000);
    let samples = env_number("DASHBOARD_SAMPLES", 40);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("sqlite", &sqlite, count, samples, None).await;
        if let Ok(server) = std::env::var("SCENARIST_TEST_POSTGRES") {
            let schema = format!("bench_{}", Uuid::new_v4().simple());
            let url = format!("{server}?schema={schema}");
            let settle = format!(
                "VACUUM ANALYZE {schema}.executions; VACUUM ANALYZE {schema}.execution_keys; VACUUM ANALYZE {schema}.steps"
            );
            run("postgres", &url, count, samples, Some(&settle)).await;
            let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .expect("drop the bench schema");
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .expect("drop the bench schema");
        }
    });
}
