//! Correlated waits at scale, through the library on an SQLite file (WAL,
//! synchronous=NORMAL), as the daemon runs them: 10,000 executions of a
//! `wait_for` scenario park on distinct keys, 10,000 events wake them, and
//! the woken executions are claimed from the queue and run to the end.
//!
//! Printed: parks/s, events/s (each wakes one execution), resumes/s, and the
//! median latency of an event nobody waits for, measured with no wait parked
//! and again with 10,000 parked: equal figures show the event looks its
//! waiters up by index, never by scanning them. The reference, in the same
//! run, is the median latency of a dedupe-key write, the cheapest one-row
//! transaction of the store.
//!
//! Bounded: 10,000 of each, then it stops. Run: `cargo bench --bench waits`
//! (`WAITS=2000` for a quicker look).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use scenarist::engine::{Engine, ExecutionStatus, NoJournal, RunRequest, TriggerData};
use scenarist::runner::Runner;
use scenarist::store::{self, Store};
use serde_json::json;

const SCENARIO: &str = r#"name: bench-journey
steps:
  - id: lead
    set: { email: "{{ trigger.body.email }}" }
  - id: deal_won
    wait_for:
      event: deal.closed_won
      key: "{{ steps.lead.email }}"
      match: { value: "{{ event.data.amount }}", gte: 500 }
      timeout: 90d
  - id: reward
    set: { amount: "{{ mul steps.deal_won.data.amount 0.1 }}" }
"#;

/// Executions (and events) in flight at once, as a daemon's workers.
const IN_FLIGHT: usize = 32;
/// Single events timed one at a time for the latency medians.
const SAMPLES: usize = 500;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn per_second(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

async fn no_waiter_latency(runner: &Runner, round: &str) -> Duration {
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let key = format!("nobody-{round}-{i}@example.com");
        let started = Instant::now();
        let emitted = runner
            .emit("deal.closed_won", &key, json!({ "amount": 1 }))
            .await
            .expect("emit");
        samples.push(started.elapsed());
        assert!(emitted.resumed.is_empty());
    }
    median(samples)
}

async fn reference_latency(store: &dyn Store, round: &str) -> Duration {
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let now = Utc::now();
        let started = Instant::now();
        store
            .dedupe(
                "bench",
                &format!("{round}-{i}"),
                uuid::Uuid::now_v7(),
                now + chrono::Duration::hours(1),
                now,
            )
            .await
            .expect("dedupe");
        samples.push(started.elapsed());
    }
    median(samples)
}

fn main() {
    let waits: usize = std::env::var("WAITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let loaded = scenarist::load::load_str(Path::new("bench-journey.yaml"), SCENARIO.to_owned())
        .expect("loads");
    let plan = scenarist::plan::compile(&loaded).expect("compiles");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("waits.db").display());
    let store: Arc<dyn Store> = store::open(&url).expect("store");
    let runner = Runner::new(Engine::new(), store.clone(), HashMap::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let reference_before = reference_latency(&*store, "before").await;
        let idle_before = no_waiter_latency(&runner, "before").await;

        let started = Instant::now();
        let parked = stream::iter(0..waits)
            .map(|i| {
                let request = RunRequest {
                    trigger: TriggerData {
                        body: json!({ "email": format!("lead-{i}@example.com") }),
                        ..TriggerData::default()
                    },
                    ..RunRequest::default()
                };
                runner.start(&plan, request, &NoJournal, None)
            })
            .buffer_unordered(IN_FLIGHT)
            .filter(|e| {
                let waiting = e.as_ref().is_ok_and(|e| e.status == ExecutionStatus::Waiting);
                async move { waiting }
            })
            .count()
            .await;
        let park_time = started.elapsed();
        assert_eq!(parked, waits, "every execution parks");

        let reference_after = reference_latency(&*store, "after").await;
        let idle_after = no_waiter_latency(&runner, "after").await;

        let started = Instant::now();
        let woken = stream::iter(0..waits)
            .map(|i| {
                let key = format!("lead-{i}@example.com");
                let runner = &runner;
                async move {
                    runner
                        .emit("deal.closed_won", &key, json!({ "amount": 1000 }))
                        .await
                        .expect("emit")
                        .resumed
                        .len()
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .fold(0, |sum, n| async move { sum + n })
            .await;
        let emit_time = started.elapsed();
        assert_eq!(woken, waits, "each event wakes its one execution");

        // The workers' part: claim what the events queued and run it on.
        let started = Instant::now();
        let mut resumed = 0;
        loop {
            let claimed = store
                .claim_queued("bench", &[], Utc::now(), IN_FLIGHT)
                .await
                .expect("claim");
            if claimed.is_empty() {
                break;
            }
            let runs = claimed
                .iter()
                .map(|stored| runner.continue_stored(stored, &plan, stored.summary.attempt, &NoJournal));
            for execution in futures::future::join_all(runs).await {
                assert_eq!(execution.expect("resumes").status, ExecutionStatus::Succeeded);
                resumed += 1;
            }
        }
        let resume_time = started.elapsed();
        assert_eq!(resumed, waits);

        println!("waits benchmark: {waits} executions on distinct keys, {IN_FLIGHT} in flight, SQLite file");
        println!(
            "  park (start, look, register, park): {:>8.0} executions/s",
            per_second(waits, park_time)
        );
        println!(
            "  emit, each waking one:              {:>8.0} events/s",
            per_second(waits, emit_time)
        );
        println!(
            "  resume (claim, run on, finish):     {:>8.0} executions/s",
            per_second(waits, resume_time)
        );
        println!(
            "  event with no waiter, median:       {:>8.1} µs with 0 parked, {:>8.1} µs with {waits} parked",
            idle_before.as_secs_f64() * 1e6,
            idle_after.as_secs_f64() * 1e6
        );
        println!(
            "  reference, dedupe write, median:    {:>8.1} µs before,      {:>8.1} µs after",
            reference_before.as_secs_f64() * 1e6,
            reference_after.as_secs_f64() * 1e6
        );
    });
}
