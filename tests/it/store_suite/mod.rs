//! The behaviour every `Store` backend must have, as one list of checks.
//!
//! Each check is `async fn name(store: &dyn Store)` and makes its own
//! scenarios, keys and events (fresh names every time), so that all of them
//! run one after another on one store, and on a store other tests share.
//! Methods that act on the whole store (the queue, prune, prune_events) are
//! checked with executions and events dated in the past: those are the
//! oldest in the store, so a check never takes or deletes another's.
//!
//! `the_store_suite_passes_on_every_backend` runs the list on a fresh SQLite
//! file, and on a fresh PostgreSQL schema when `SCENARIST_TEST_POSTGRES`
//! names a server.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt;
use scenarist::engine::{
    DataOp, DataRequest, ExecutionError, ExecutionStatus, StepRecord, StepStatus,
};
use scenarist::store::{self, ExecutionSummary, Finish, NewExecution, Store, StoreError};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::pg::{Schema, VARIABLE};

mod browse;
mod claims;
mod credentials;
mod data;
mod events;
mod executions;
mod pace;
mod prune;
mod queue;
mod review;
mod watches;

// ---------------------------------------------------------------------------
// Helpers: times, names, and executions in a given state.
// ---------------------------------------------------------------------------

/// The store keeps microseconds.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

/// A name no other check (or run) uses.
fn unique(what: &str) -> String {
    format!("{what}-{}", Uuid::new_v4().simple())
}

/// Ids and times in the past, one millisecond apart and increasing: the
/// executions made with them are older than anything else in the store.
struct Past {
    next: DateTime<Utc>,
}

impl Past {
    fn days_ago(days: i64) -> Past {
        Past {
            next: now() - Duration::days(days),
        }
    }

    fn next(&mut self) -> (Uuid, DateTime<Utc>) {
        let at = self.next;
        self.next += ms(1);
        (id_at(at), at)
    }
}

/// A UUIDv7 of the given instant: ids sort as their times do.
fn id_at(at: DateTime<Utc>) -> Uuid {
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    ))
}

fn new_execution(scenario: &str, started_at: DateTime<Utc>) -> NewExecution {
    NewExecution {
        id: Uuid::now_v7(),
        scenario: scenario.to_owned(),
        version: "v1".to_owned(),
        trigger: json!({ "body": { "n": 1 }, "headers": {}, "query": {} }),
        vars: Map::new(),
        started_at,
        owner: OWNER.to_owned(),
        replay_of: None,
        keys: Vec::new(),
    }
}

/// A `running` execution, as `start` commits it before its first step.
async fn start(store: &dyn Store, scenario: &str, started_at: DateTime<Utc>) -> Uuid {
    let new = new_execution(scenario, started_at);
    let id = new.id;
    store.start_execution(new).await.unwrap();
    id
}

/// The owner of executions the checks start (`new_execution`).
const OWNER: &str = "suite";

async fn finish(
    store: &dyn Store,
    id: Uuid,
    owner: &str,
    status: ExecutionStatus,
    finished_at: DateTime<Utc>,
    next_retry_at: Option<DateTime<Utc>>,
) {
    let error = (status == ExecutionStatus::Failed).then(|| ExecutionError {
        step: "s".to_owned(),
        message: "failed".to_owned(),
    });
    store
        .finish_execution(
            id,
            owner,
            Finish {
                status,
                error,
                finished_at,
                next_retry_at,
            },
        )
        .await
        .unwrap();
}

/// An execution that started at `started_at` and is now in `status`
/// (ended a minute after it started; incomplete and waiting ones due in a day).
async fn execution_in(
    store: &dyn Store,
    scenario: &str,
    started_at: DateTime<Utc>,
    status: ExecutionStatus,
) -> Uuid {
    let id = start(store, scenario, started_at).await;
    match status {
        ExecutionStatus::Running => {}
        ExecutionStatus::Incomplete | ExecutionStatus::Waiting => {
            let end = started_at + Duration::minutes(1);
            finish(store, id, OWNER, status, end, Some(end + Duration::days(1))).await;
        }
        ExecutionStatus::Queued => panic!("queued executions come from enqueue"),
        _ => {
            finish(
                store,
                id,
                OWNER,
                status,
                started_at + Duration::minutes(1),
                None,
            )
            .await
        }
    }
    id
}

fn step(
    path: &str,
    kind: &'static str,
    status: StepStatus,
    started_at: DateTime<Utc>,
) -> StepRecord {
    StepRecord {
        path: path.to_owned(),
        kind,
        status,
        input: None,
        output: Value::Null,
        error: None,
        attempts: 1,
        started_at,
        duration_ms: 0,
        detail: None,
    }
}

/// An execution parked at a step of `kind` (`approval` or `delay`) at `path`.
async fn parked_at(
    store: &dyn Store,
    scenario: &str,
    started_at: DateTime<Utc>,
    kind: &'static str,
    path: &str,
) -> Uuid {
    let id = start(store, scenario, started_at).await;
    let deadline = started_at + Duration::hours(72);
    let mut waiting = step(path, kind, StepStatus::Waiting, started_at + ms(1));
    waiting.input = Some(json!({ "message": "Reward of 50", "deadline": deadline.to_rfc3339() }));
    store.record_step(id, OWNER, &waiting).await.unwrap();
    finish(
        store,
        id,
        OWNER,
        ExecutionStatus::Waiting,
        started_at + ms(2),
        Some(deadline),
    )
    .await;
    id
}

async fn summary(store: &dyn Store, id: Uuid) -> ExecutionSummary {
    store
        .execution(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("execution {id} is not in the store"))
        .summary
}

async fn status(store: &dyn Store, id: Uuid) -> ExecutionStatus {
    summary(store, id).await.status
}

fn ids(summaries: &[ExecutionSummary]) -> Vec<Uuid> {
    summaries.iter().map(|s| s.id).collect()
}

fn assert_same_step(got: &StepRecord, want: &StepRecord) {
    let what = &want.path;
    assert_eq!(got.path, want.path, "step path");
    assert_eq!(got.kind, want.kind, "{what}: kind");
    assert_eq!(got.status, want.status, "{what}: status");
    assert_eq!(got.input, want.input, "{what}: input");
    assert_eq!(got.output, want.output, "{what}: output");
    assert_eq!(got.error, want.error, "{what}: error");
    assert_eq!(got.attempts, want.attempts, "{what}: attempts");
    assert_eq!(got.started_at, want.started_at, "{what}: started_at");
    assert_eq!(got.duration_ms, want.duration_ms, "{what}: duration_ms");
    assert_eq!(got.detail, want.detail, "{what}: detail");
}

async fn data_op(
    store: &dyn Store,
    execution: Uuid,
    path: &str,
    (name, key): (&str, &str),
    op: DataOp,
    at: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let request = DataRequest {
        store: name.to_owned(),
        key: key.to_owned(),
        op,
    };
    store.data(execution, OWNER, path, &request, at).await
}

// ---------------------------------------------------------------------------
// Running the suite.
// ---------------------------------------------------------------------------

/// Every check a backend must pass, in order, on one store.
pub async fn every_check(store: Arc<dyn Store>) {
    let store = &*store;
    executions::versions_are_kept_per_scenario_and_version(store).await;
    executions::an_execution_keeps_its_trigger_vars_steps_and_times(store).await;
    executions::find_ids_completes_a_prefix(store).await;
    executions::list_filters_and_puts_the_newest_first(store).await;
    claims::a_claim_succeeds_once(store).await;
    claims::writes_after_a_takeover_are_fenced(store).await;
    claims::heartbeats_say_who_is_alive(store).await;
    claims::resumable_lists_running_and_due_executions(store).await;
    prune::prune_deletes_only_finished_executions_before_the_cut(store).await;
    queue::enqueue_takes_a_dedupe_key_with_the_execution(store).await;
    queue::a_tick_is_queued_once_and_the_latest_is_remembered(store).await;
    queue::claim_queued_takes_the_oldest_up_to_max(store).await;
    queue::an_execution_started_at_once_skips_the_queue(store).await;
    queue::claim_queued_respects_a_scenario_limit(store).await;
    queue::claim_queued_keeps_the_order_of_a_concurrency_key(store).await;
    review::a_decision_is_kept_only_while_the_approval_waits(store).await;
    review::business_events_are_unique_and_filtered(store).await;
    review::report_counts_what_needs_a_person(store).await;
    data::data_stores_keep_values_until_they_expire(store).await;
    data::a_dedupe_key_is_held_until_it_expires(store).await;
    events::an_event_between_the_look_and_the_park_queues_the_execution(store).await;
    events::a_parked_wait_is_woken_by_its_key_only(store).await;
    events::a_wait_sees_events_after_its_cursor_in_order(store).await;
    events::events_are_listed_newest_first(store).await;
    events::waits_are_listed_oldest_first(store).await;
    events::a_wait_ends_with_its_step_and_keeps_its_window(store).await;
    browse::business_keys_are_kept_and_searchable(store).await;
    browse::keyset_pages_cover_every_execution_once(store).await;
    browse::activity_counts_recent_executions_by_status(store).await;
    browse::versions_are_listed_newest_first(store).await;
    pace::a_shared_schedule_spaces_calls_by_the_interval(store).await;
    watches::a_poll_commits_its_executions_with_the_cursor_once(store).await;
    watches::a_failure_a_claim_and_a_reset_move_the_generation(store).await;
    credentials::a_refresh_writes_only_under_the_generation_it_read(store).await;
    credentials::a_first_claim_makes_an_empty_row(store).await;
    credentials::a_rekey_moves_every_row_or_none(store).await;
    credentials::a_reconnect_makes_the_executions_that_waited_due(store).await;
}

/// What to tidy once a backend's checks have run.
enum Cleanup {
    /// The SQLite file's folder, removed when dropped.
    Folder(tempfile::TempDir),
    /// A PostgreSQL schema of its own (see `crate::pg`).
    Schema(Schema),
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::Folder(dir) => drop(dir),
            Cleanup::Schema(schema) => schema.drop().await,
        }
    }
}

/// A fresh store of every backend there is to test: SQLite always, and
/// PostgreSQL when `SCENARIST_TEST_POSTGRES` names a server.
async fn backends() -> Vec<(String, Arc<dyn Store>, Option<Cleanup>)> {
    let mut backends = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("suite.db").display());
    let sqlite = store::open(&url).unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    backends.push(("sqlite".to_owned(), sqlite, Some(Cleanup::Folder(dir))));

    if let Some(schema) = Schema::new("suite").await {
        let postgres = store::open(&schema.url).unwrap_or_else(|e| {
            panic!("{VARIABLE} is set, but the PostgreSQL store does not open: {e}")
        });
        backends.push((
            "postgres".to_owned(),
            postgres,
            Some(Cleanup::Schema(schema)),
        ));
    }
    backends
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Runs `checks` on every backend, cleaning each up after its run, and
/// fails naming the backends that failed.
async fn on_every_backend<F, Fut>(checks: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut failed = Vec::new();
    for (name, store, cleanup) in backends().await {
        let outcome = AssertUnwindSafe(checks(store)).catch_unwind().await;
        if let Some(cleanup) = cleanup {
            cleanup.run().await;
        }
        if let Err(panic) = outcome {
            failed.push(format!("the {name} store: {}", panic_text(&*panic)));
        }
    }
    assert!(
        failed.is_empty(),
        "the store suite failed on {}",
        failed.join("; on ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_suite_passes_on_every_backend() {
    on_every_backend(every_check).await;
}

/// A PostgreSQL store's first calls, many at once (more than its pool
/// holds), all succeed: the schema's migration never waits for a
/// connection those calls hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_first_calls_at_once_on_a_new_postgres_store() {
    let Some(schema) = Schema::new("first").await else {
        return;
    };
    let store = store::open(&schema.url).unwrap();
    let calls = (0..64).map(|_| store.find_ids("0"));
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        futures::future::join_all(calls),
    )
    .await;
    schema.drop().await;
    let results = answered.expect("64 first calls answered within 8 s");
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
}
