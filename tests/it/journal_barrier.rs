//! What is durable when a step's effect leaves the engine. Steps that only
//! compute, from expressions that give the same value each time, are run
//! again after a crash rather than journaled before the first request (one
//! commit fewer per execution); a step that reads the clock or draws a
//! random id is journaled before the request that may carry its value, so
//! a re-run sends what the first run sent. The downstream API, a real axum
//! server, reads the real SQLite store while it holds the request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use scenarist::engine::{Engine, ExecutionStatus, NoJournal, RunRequest, TriggerData};
use scenarist::runner::Runner;
use scenarist::store::{self, Store};
use serde_json::{json, Value};
use uuid::Uuid;

/// What the API saw durable in the store when each request arrived: the
/// paths of the execution's step records.
#[derive(Clone)]
struct Api {
    store: Arc<dyn Store>,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
}

async fn crm(State(api): State<Api>, Json(body): Json<Value>) -> Json<Value> {
    let id: Uuid = body["execution"].as_str().unwrap().parse().unwrap();
    let stored = api
        .store
        .execution(id)
        .await
        .unwrap()
        .expect("the execution is stored");
    let paths = stored.steps.iter().map(|s| s.path.clone()).collect();
    api.seen.lock().unwrap().push(paths);
    Json(json!({ "id": 7 }))
}

async fn start_api(store: Arc<dyn Store>) -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().route("/crm", post(crm)).with_state(Api {
        store,
        seen: seen.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Runs `steps` (then a POST that names the execution, then a second POST)
/// on a fresh SQLite file; what the API saw at each request.
async fn durable_at_each_request(steps: &str) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).unwrap();
    let (url, seen) = start_api(store.clone()).await;
    let yaml = format!(
        r#"name: barrier
steps:
{steps}
  - id: crm
    http: {{ method: POST, url: "{url}/crm", json: {{ execution: "{{{{ execution.id }}}}" }} }}
  - id: again
    http: {{ method: POST, url: "{url}/crm", json: {{ execution: "{{{{ execution.id }}}}" }} }}
"#
    );
    let loaded = scenarist::load::load_str(Path::new("barrier.yaml"), yaml)
        .unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
    let plan = scenarist::plan::compile(&loaded).unwrap_or_else(|d| panic!("{d:?}"));
    let runner = Runner::new(Engine::new(), store.clone(), HashMap::new());
    let request = RunRequest {
        trigger: TriggerData {
            body: json!({ "email": "Lee@Example.com", "code": "R1" }),
            ..TriggerData::default()
        },
        ..RunRequest::default()
    };
    let execution = runner
        .start(&plan, request, &NoJournal, None)
        .await
        .unwrap();
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{execution:?}"
    );
    let stored = store
        .execution(execution.execution_id)
        .await
        .unwrap()
        .unwrap();
    let all: Vec<&str> = stored.steps.iter().map(|s| s.path.as_str()).collect();
    assert!(
        all.ends_with(&["crm", "again"]),
        "every record kept at the end: {all:?}"
    );
    let seen = seen.lock().unwrap().clone();
    seen
}

#[tokio::test]
async fn steps_that_give_the_same_value_again_are_not_committed_before_the_first_request() {
    let seen = durable_at_each_request(
        r#"  - id: referred
    filter: { value: "{{ trigger.body.code }}", exists: true }
  - id: lead
    set: { email: "{{ lower trigger.body.email }}" }"#,
    )
    .await;
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0].is_empty(),
        "nothing but the start before the first request: {:?}",
        seen[0]
    );
    // The first request's result is durable before the second request.
    assert_eq!(seen[1], ["referred", "lead", "crm"]);
}

#[tokio::test]
async fn a_step_that_reads_the_clock_or_draws_an_id_is_committed_before_the_request() {
    for expression in ["{{ now }}", "{{ uuid }}", "at {{ now \"%Y\" }}"] {
        let seen = durable_at_each_request(&format!(
            r#"  - id: referred
    filter: {{ value: "{{{{ trigger.body.code }}}}", exists: true }}
  - id: stamp
    set: {{ at: '{expression}' }}"#
        ))
        .await;
        assert_eq!(seen[0], ["referred", "stamp"], "{expression}");
        assert_eq!(seen[1], ["referred", "stamp", "crm"], "{expression}");
    }
    // In a `when`, too.
    let seen = durable_at_each_request(
        r#"  - id: lead
    when: "{{ gt (len (uuid)) 0 }}"
    set: { email: "{{ lower trigger.body.email }}" }"#,
    )
    .await;
    assert_eq!(seen[0], ["lead"]);
}
