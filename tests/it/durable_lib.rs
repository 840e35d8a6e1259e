//! The durable runner through the library API, with an injected clock:
//! `break` and its retry schedule, data stores and their time to live, prune.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{Engine, ExecutionStatus, NoJournal, RunRequest, TriggerData};
use scenarist::plan::Plan;
use scenarist::runner::Runner;
use scenarist::store::{self, ExecutionFilter, PruneRule, Store};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn compile(yaml: &str) -> Plan {
    let loaded = scenarist::load::load_str(Path::new("test.yaml"), yaml.to_owned())
        .unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
    scenarist::plan::compile(&loaded).unwrap_or_else(|d| panic!("{d:?}"))
}

/// One clock per test function (tests run in parallel): a static per test.
macro_rules! clock {
    ($name:ident) => {
        static $name: AtomicI64 = AtomicI64::new(0);
        impl_clock!($name);
    };
}
macro_rules! impl_clock {
    ($name:ident) => {
        #[allow(non_snake_case)]
        mod $name {
            use super::*;
            pub fn now() -> DateTime<Utc> {
                DateTime::from_timestamp_micros(super::$name.load(Ordering::SeqCst)).unwrap()
            }
            pub fn set(time: DateTime<Utc>) {
                super::$name.store(time.timestamp_micros(), Ordering::SeqCst);
            }
        }
    };
}

/// The store keeps microseconds.
fn now_in_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn runner(store: Arc<dyn Store>, now: fn() -> DateTime<Utc>) -> Runner {
    Runner::new(Engine::new(), store, HashMap::new()).with_clock(now)
}

fn request(body: serde_json::Value) -> RunRequest {
    RunRequest {
        trigger: TriggerData {
            body,
            ..TriggerData::default()
        },
        ..RunRequest::default()
    }
}

clock!(BREAK_CLOCK);

#[tokio::test]
async fn break_keeps_the_execution_incomplete_and_retries_it_on_schedule() {
    let start = now_in_micros();
    BREAK_CLOCK::set(start);
    let server = MockServer::start().await;
    Mock::given(path("/crm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(&server)
        .await;
    Mock::given(path("/engine"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/engine"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "qualified": true })))
        .with_priority(2)
        .mount(&server)
        .await;
    let plan = compile(&format!(
        r#"name: qualify
settings:
  retry_incomplete: [1m, 10m]
steps:
  - id: crm
    http: {{ method: POST, url: "{uri}/crm" }}
  - id: qualify
    on_error: break
    http: {{ method: PUT, url: "{uri}/engine" }}
  - id: done
    set: {{ qualified: "{{{{ steps.qualify.body.qualified }}}}" }}
"#,
        uri = server.uri()
    ));
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = runner(store.clone(), BREAK_CLOCK::now);

    let first = runner
        .start(&plan, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(first.status, ExecutionStatus::Incomplete);
    let id = first.execution_id;
    let stored = runner.load(id).await.unwrap().summary;
    assert_eq!(stored.next_retry_at, Some(start + Duration::minutes(1)));
    assert_eq!(stored.error_step.as_deref(), Some("qualify"));

    // Not yet due.
    BREAK_CLOCK::set(start + Duration::seconds(59));
    assert!(runner.due().await.unwrap().is_empty());
    // Due: resumed from `qualify`, which fails again; the next try is 10 minutes later.
    let second_try = start + Duration::seconds(61);
    BREAK_CLOCK::set(second_try);
    let due = runner.due().await.unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    let second = runner.resume(id, &NoJournal).await.unwrap();
    assert_eq!(second.status, ExecutionStatus::Incomplete);
    let stored = runner.load(id).await.unwrap().summary;
    assert_eq!(stored.attempt, 2);
    assert_eq!(
        stored.next_retry_at,
        Some(second_try + Duration::minutes(10))
    );

    BREAK_CLOCK::set(second_try + Duration::minutes(9));
    assert!(runner.due().await.unwrap().is_empty());
    BREAK_CLOCK::set(second_try + Duration::minutes(11));
    let third = runner.resume(id, &NoJournal).await.unwrap();
    assert_eq!(third.status, ExecutionStatus::Succeeded);
    assert_eq!(
        third.step("done").unwrap().output,
        json!({ "qualified": true })
    );

    let sent = server.received_requests().await.unwrap();
    let crm = sent.iter().filter(|r| r.url.path() == "/crm").count();
    let engine: Vec<_> = sent.iter().filter(|r| r.url.path() == "/engine").collect();
    assert_eq!(crm, 1, "the step before the break is never sent again");
    assert_eq!(engine.len(), 3);
    let keys: Vec<_> = engine
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
    let stored = runner.load(id).await.unwrap();
    assert_eq!(stored.summary.status, ExecutionStatus::Succeeded);
    assert_eq!(stored.summary.next_retry_at, None);
    assert_eq!(stored.steps.len(), 3);
}

clock!(EXHAUST_CLOCK);

#[tokio::test]
async fn after_the_last_scheduled_retry_an_incomplete_execution_waits_for_a_person() {
    let start = now_in_micros();
    EXHAUST_CLOCK::set(start);
    let plan = compile(
        r#"name: stuck
settings: { retry_incomplete: [5m] }
steps:
  - id: stop
    on_error: break
    fail: { message: "the referral engine refused" }
"#,
    );
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = runner(store, EXHAUST_CLOCK::now);
    let first = runner
        .start(&plan, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    let id = first.execution_id;
    assert_eq!(
        runner.load(id).await.unwrap().summary.next_retry_at,
        Some(start + Duration::minutes(5))
    );
    EXHAUST_CLOCK::set(start + Duration::minutes(6));
    let again = runner.resume(id, &NoJournal).await.unwrap();
    assert_eq!(again.status, ExecutionStatus::Incomplete);
    let summary = runner.load(id).await.unwrap().summary;
    assert_eq!(summary.next_retry_at, None, "no more automatic retries");
    EXHAUST_CLOCK::set(start + Duration::days(30));
    assert!(runner.due().await.unwrap().is_empty());
    // A person can still retry it.
    let by_hand = runner.resume(id, &NoJournal).await.unwrap();
    assert_eq!(by_hand.status, ExecutionStatus::Incomplete);
}

clock!(DATA_CLOCK);

#[tokio::test]
async fn store_steps_get_put_increment_delete_and_expire() {
    let start = now_in_micros();
    DATA_CLOCK::set(start);
    let plan = compile(
        r#"name: data
steps:
  - id: before
    store: { name: qualified, get: "{{ trigger.body.referral }}" }
  - id: remember
    store: { name: qualified, put: "{{ trigger.body.referral }}", value: { at: "{{ trigger.body.at }}" }, ttl: 1h }
  - id: after
    store: { name: qualified, get: "{{ trigger.body.referral }}" }
  - id: count
    store: { name: counters, increment: rewards, value: 2 }
  - id: count_again
    store: { name: counters, increment: rewards }
  - id: drop_it
    store: { name: counters, delete: rewards }
  - id: gone
    store: { name: counters, get: rewards }
"#,
    );
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = runner(store, DATA_CLOCK::now);
    let body = json!({ "referral": "r-1", "at": "2026-11-01" });
    let run = runner
        .start(&plan, request(body.clone()), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    let output = |key: &str| run.step(key).unwrap().output.clone();
    assert_eq!(output("before"), json!(null));
    assert_eq!(output("remember"), json!({ "at": "2026-11-01" }));
    assert_eq!(output("after"), json!({ "at": "2026-11-01" }));
    assert_eq!(output("count"), json!(2));
    assert_eq!(output("count_again"), json!(3));
    assert_eq!(output("drop_it"), json!(3));
    assert_eq!(output("gone"), json!(null));
    assert_eq!(
        run.step("remember").unwrap().input,
        Some(json!({ "store": "qualified", "put": "r-1" }))
    );

    // Within the hour the key is there; after it, it has expired.
    let reader = compile(
        r#"name: reader
steps:
  - id: read
    store: { name: qualified, get: r-1 }
"#,
    );
    DATA_CLOCK::set(start + Duration::minutes(59));
    let within = runner
        .start(&reader, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(
        within.step("read").unwrap().output,
        json!({ "at": "2026-11-01" })
    );
    DATA_CLOCK::set(start + Duration::minutes(61));
    let after = runner
        .start(&reader, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(after.step("read").unwrap().output, json!(null));
}

#[tokio::test]
async fn incrementing_text_is_a_step_error() {
    let plan = compile(
        r#"name: bad-counter
steps:
  - id: put
    store: { name: c, put: k, value: "ten" }
  - id: add
    store: { name: c, increment: k }
"#,
    );
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = Runner::new(Engine::new(), store, HashMap::new());
    let run = runner
        .start(&plan, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.step("add").unwrap().error.clone().unwrap();
    assert!(error.contains("cannot increment key `k`"), "{error}");
}

#[tokio::test]
async fn prune_deletes_old_finished_executions_and_keeps_incomplete_ones() {
    let ok = compile("name: ok\nsteps:\n  - id: a\n    set: { x: 1 }\n");
    let kept =
        compile("name: kept\nsettings: { history: 90d }\nsteps:\n  - id: a\n    set: { x: 1 }\n");
    let stuck =
        compile("name: stuck\nsteps:\n  - id: a\n    on_error: break\n    fail: { message: no }\n");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store: Arc<dyn Store> = store::open(&url).unwrap();
    let runner = Runner::new(Engine::new(), store.clone(), HashMap::new());
    for _ in 0..3 {
        runner
            .start(&ok, request(json!({})), &NoJournal, None)
            .await
            .unwrap();
    }
    runner
        .start(&kept, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    runner
        .start(&stuck, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    let all = |store: Arc<dyn Store>| async move {
        store
            .list(&ExecutionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.scenario)
            .collect::<Vec<_>>()
    };
    // Nothing is older than a day.
    let rule = PruneRule {
        before: Utc::now() - Duration::days(1),
        per_scenario: vec![],
    };
    assert_eq!(store.prune(&rule).await.unwrap(), 0);
    // Everything finished is older than "in a minute", except what `kept` keeps for 90 days.
    let rule = PruneRule {
        before: Utc::now() + Duration::minutes(1),
        per_scenario: vec![("kept".to_owned(), Utc::now() - Duration::days(90))],
    };
    assert_eq!(store.prune(&rule).await.unwrap(), 3);
    let mut left = all(store.clone()).await;
    left.sort();
    assert_eq!(left, vec!["kept", "stuck"]);
}

#[tokio::test]
async fn a_resumed_execution_never_counts_twice() {
    let plan = compile(
        r#"name: count-once
steps:
  - id: count
    store: { name: counters, increment: rewards }
  - id: stop
    on_error: break
    fail: { message: "the referral engine is down" }
"#,
    );
    let reader = compile(
        "name: reader\nsteps:\n  - id: read\n    store: { name: counters, get: rewards }\n",
    );
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = Runner::new(Engine::new(), store, HashMap::new());
    let first = runner
        .start(&plan, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    for _ in 0..3 {
        let again = runner.resume(first.execution_id, &NoJournal).await.unwrap();
        assert_eq!(again.status, ExecutionStatus::Incomplete);
        assert_eq!(again.step("count").unwrap().output, json!(1));
    }
    let read = runner
        .start(&reader, request(json!({})), &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(read.step("read").unwrap().output, json!(1));
}

#[tokio::test]
async fn a_dedupe_key_is_held_until_it_expires() {
    let store = store::open("memory").unwrap();
    let now = now_in_micros();
    let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let hour = now + Duration::hours(1);
    assert_eq!(
        store.dedupe("s", "evt-1", first, hour, now).await.unwrap(),
        None
    );
    assert_eq!(
        store.dedupe("s", "evt-1", second, hour, now).await.unwrap(),
        Some(first),
        "a repeat within the window names the first execution"
    );
    assert_eq!(
        store
            .dedupe("other", "evt-1", second, hour, now)
            .await
            .unwrap(),
        None
    );
    let later = now + Duration::hours(2);
    assert_eq!(
        store
            .dedupe("s", "evt-1", second, later + Duration::hours(1), later)
            .await
            .unwrap(),
        None,
        "after the window the key is free again"
    );
}
