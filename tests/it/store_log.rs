//! The SQLite store's write-ahead log stays under its ceiling under
//! continuous writes and reads (it grew for as long as load lasted: 4 GB in
//! minutes). Counted in commits, never timed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use scenarist::engine::ExecutionStatus;
use scenarist::engine::{StepRecord, StepStatus};
use scenarist::store::{self, ExecutionFilter, Finish, NewExecution, PruneRule, Store};
use serde_json::{json, Map};
use uuid::Uuid;

const OWNER: &str = "store-log-test";
const CEILING: u64 = 1024 * 1024;
/// Executions written; each commits its start and three steps of about 2 KB:
/// about ten ceilings' worth.
const EXECUTIONS: usize = 1200;
/// Executions in flight at once, so commits are grouped as under load.
const IN_FLIGHT: usize = 16;

/// An execution with its start and three steps of about 2 KB, left running.
async fn write_execution(store: &Arc<dyn Store>, n: usize) -> Uuid {
    let id = Uuid::now_v7();
    store
        .start_execution(NewExecution {
            id,
            scenario: "log-ceiling".to_owned(),
            version: "v1".to_owned(),
            trigger: json!({ "body": { "n": n }, "headers": {}, "query": {} }),
            vars: Map::new(),
            started_at: Utc::now(),
            owner: OWNER.to_owned(),
            replay_of: None,
            keys: Vec::new(),
        })
        .await
        .unwrap();
    for step in ["find", "reward", "qualify"] {
        let record = StepRecord {
            path: step.to_owned(),
            kind: "set",
            status: StepStatus::Succeeded,
            input: None,
            output: json!({ "padding": "x".repeat(2000), "n": n }),
            error: None,
            attempts: 1,
            started_at: Utc::now(),
            duration_ms: 0,
            detail: None,
        };
        store.record_step(id, OWNER, &record).await.unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stays_under_its_ceiling_with_a_reader_busy_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?max_log=1MB", dir.path().join("s.db").display());
    let store = store::open(&url).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // A reader that never rests: pages of executions, one after the other.
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let page = ExecutionFilter {
                    limit: Some(20),
                    ..ExecutionFilter::default()
                };
                store.list(&page).await.unwrap();
                reads += 1;
            }
            reads
        })
    };
    let mut largest = 0;
    let mut next = 0;
    while next < EXECUTIONS {
        let batch: Vec<_> = (next..(next + IN_FLIGHT).min(EXECUTIONS))
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { write_execution(&store, n).await })
            })
            .collect();
        next += batch.len();
        for task in batch {
            task.await.unwrap();
        }
        largest = largest.max(store.storage().unwrap().log_bytes);
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.unwrap();
    let stats = store.storage().unwrap();
    let written = EXECUTIONS as u64 * 4 * 2000;
    assert!(reads > 10, "the reader read throughout ({reads} pages)");
    assert!(
        written > 4 * CEILING,
        "the test writes several ceilings' worth"
    );
    assert!(stats.log_truncations > 0, "the log was cut back: {stats:?}");
    // Half the ceiling triggers the cut. A reader the OS sets aside can make
    // one cut wait for the next (after 20 ms, then 40): the log may pass the
    // ceiling by those moments' commits, never twice it (where `/healthz`
    // warns). Without the cut it grows by the whole load (10 MB here).
    assert!(
        largest <= 2 * CEILING && stats.log_bytes <= 2 * CEILING,
        "the log reached {largest} bytes (now {}), over twice its ceiling of {CEILING}: {stats:?}",
        stats.log_bytes
    );
    assert_eq!(stats.log_ceiling, CEILING);
}

#[test]
fn a_bad_ceiling_is_refused_with_the_option_named() {
    let dir = tempfile::tempdir().unwrap();
    for (option, wanted) in [
        ("max_log=lots", "`max_log=lots` is not a size"),
        ("max_log=1KB", "at least 256KB"),
        ("max_logs=1MB", "unknown option `max_logs=1MB`"),
    ] {
        let url = format!("sqlite://{}?{option}", dir.path().join("s.db").display());
        let error = store::open(&url).err().expect("refused").to_string();
        assert!(error.contains(wanted), "{option}: {error}");
    }
}

/// Under a steady rate with pruning, the store file stops growing: the pages
/// `prune` frees are used again by the next executions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_space_is_used_again_so_the_file_stops_growing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?max_log=1MB", dir.path().join("s.db").display());
    let store = store::open(&url).unwrap();
    let mut sizes = Vec::new();
    for round in 0..5 {
        let mut ids = Vec::new();
        for n in 0..300 {
            ids.push(write_execution(&store, round * 1000 + n).await);
        }
        for id in ids {
            let finish = Finish {
                status: ExecutionStatus::Succeeded,
                error: None,
                finished_at: Utc::now(),
                next_retry_at: None,
            };
            store.finish_execution(id, OWNER, finish).await.unwrap();
        }
        let rule = PruneRule {
            before: Utc::now() + chrono::Duration::seconds(1),
            per_scenario: Vec::new(),
        };
        assert_eq!(store.prune(&rule).await.unwrap(), 300);
        let stats = store.storage().unwrap();
        sizes.push(stats.store_bytes + stats.log_bytes);
    }
    // Each round writes about 2.5 MB; without reuse the file would hold five.
    let (first, last) = (sizes[1] as f64, sizes[4] as f64);
    assert!(
        last <= first * 1.25,
        "the store kept growing after pruning: {sizes:?} bytes after each round"
    );
}
