//! One poll that finds 10,000 new items: the answer fetched from a local API
//! (one page), the items picked, and 10,000 queued executions committed with
//! the cursor in one transaction on an SQLite file (WAL, synchronous=NORMAL).
//! Reference measured in the same run: the same request with the cursor
//! already past every item (the fetch and the selection, nothing committed).
//!
//! Then an otherwise idle daemon (the release binary) with 100 scenarios
//! polling a local API every 10 s: its CPU time over POLL_IDLE_SECONDS (60),
//! next to the same daemon with 100 scenarios that poll nothing.
//!
//! Run: `cargo bench --bench poll` (POLL_ITEMS, POLL_ROUNDS, POLL_IDLE_SECONDS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod load;

use scenarist::engine::Engine;
use scenarist::runner::watch::{PollOptions, PollOutcome};
use scenarist::runner::Runner;
use serde_json::{json, Value};

/// Polls the idle daemons made.
static SMALL_POLLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let items = number("POLL_ITEMS", 10_000);
    let rounds = number("POLL_ROUNDS", 7);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let body: Arc<Value> = Arc::new(json!({
            "data": (0..items).map(|i| json!({ "id": format!("in_{i:06}"), "created": 1_800_000_000 + i, "amount": 29, "customer_email": format!("payer{i}@example.com") })).collect::<Vec<_>>()
        }));
        let served = body.clone();
        let app = axum::Router::new()
            .route(
                "/v1/invoices",
                axum::routing::get(move || {
                    let body = served.clone();
                    async move { axum::Json((*body).clone()) }
                }),
            )
            .route(
                "/v1/small",
                axum::routing::get(|| async {
                    SMALL_POLLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    axum::Json(json!({ "data": [ { "id": "in_1" }, { "id": "in_2" } ] }))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let yaml = format!(
            r#"name: watch-invoices
trigger:
  poll:
    every: 1m
    request: {{ url: "{url}/v1/invoices" }}
    items: $.data[*]
    id: "{{{{ item.id }}}}"
    date: "{{{{ item.created }}}}"
    start: all
    max_items: {items}
steps:
  - id: seen
    set: {{ invoice: "{{{{ trigger.item.id }}}}" }}
"#
        );
        let loaded = scenarist::load::load_str(std::path::Path::new("watch.yaml"), yaml).expect("loads");
        let plan = scenarist::plan::compile(&loaded).expect("compiles");
        let options = PollOptions { force: true, lease: Duration::from_secs(300) };
        let (mut committed, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let dir = tempfile::tempdir().unwrap();
            let store = scenarist::store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).unwrap();
            store.save_version(&plan.name, &plan.version, &plan.bundle).await.unwrap();
            let runner = Runner::new(Engine::new(), store.clone(), HashMap::new());
            let started = Instant::now();
            let outcome = runner.poll(&plan, |_| None, options).await.expect("polls");
            committed.push(started.elapsed());
            match outcome {
                PollOutcome::Committed { queued, .. } => assert_eq!(queued.len(), items),
                other => panic!("expected {items} executions, got {other:?}"),
            }
            let started = Instant::now();
            let again = runner.poll(&plan, |_| None, options).await.expect("polls");
            reference.push(started.elapsed());
            assert_eq!(again, PollOutcome::Nothing);
            assert_eq!(store.queue_depth().await.unwrap() as usize, items);
        }
        let (c, r) = (median(committed), median(reference));
        println!("poll of {items} new items, median of {rounds} rounds (SQLite file, 2 runtime threads):");
        println!("  {items} executions committed with the cursor  {:>8.1} ms  ({:.0} executions/s)", c.as_secs_f64() * 1e3, items as f64 / c.as_secs_f64());
        println!("  reference: the same poll, nothing new          {:>8.1} ms", r.as_secs_f64() * 1e3);
        idle(&url).await;
    });
}

/// CPU of a daemon whose 100 scenarios poll every 10 s and find nothing new.
async fn idle(url: &str) {
    let seconds = number("POLL_IDLE_SECONDS", 60) as u64;
    let binary = load::binary_under_test();
    let mut shares = Vec::new();
    for polling in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("scenarios");
        std::fs::create_dir(&scenarios).unwrap();
        for n in 0..100 {
            let trigger = if polling {
                format!("  poll:\n    every: 10s\n    request: {{ url: \"{url}/v1/small?n={n}\" }}\n    items: $.data[*]\n    id: \"{{{{ item.id }}}}\"\n")
            } else {
                "  manual: {}\n".to_owned()
            };
            let yaml = format!(
                "name: watch-{n}\ntrigger:\n{trigger}steps:\n  - id: seen\n    set: {{ n: {n} }}\n"
            );
            std::fs::write(scenarios.join(format!("watch-{n}.yaml")), yaml).unwrap();
        }
        let store = format!("sqlite://{}", dir.path().join("s.db").display());
        let daemon = load::Daemon::start(&binary, &scenarios, &store).await;
        // The first polls start the watches; then only the steady state counts.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let before = load::cpu_time(daemon.pid);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let used = load::cpu_time(daemon.pid) - before;
        shares.push(used.as_secs_f64() / started.elapsed().as_secs_f64() * 100.0);
        daemon.stop().await;
    }
    println!("idle daemon over {seconds} s (CPU time of the daemon process / wall time, one core = 100%):");
    println!(
        "  100 scenarios polling every 10 s (nothing new)  {:>6.2} %  ({} polls answered)",
        shares[0],
        SMALL_POLLS.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  reference: 100 scenarios that poll nothing       {:>6.2} %",
        shares[1]
    );
}
