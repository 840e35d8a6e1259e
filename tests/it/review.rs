//! Review before reward: `approval`, `delay` and `record` steps through the
//! binary on a real SQLite file, and time-outs with an injected clock.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{Engine, ExecutionStatus, NoJournal, RunRequest, TriggerData};
use scenarist::runner::{Decision, Runner, RunnerError};
use scenarist::store::{self, Store};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{scenario_file, Scenarist};

fn reward_scenario(uri: &str, extra: &str) -> String {
    format!(
        r#"name: reward
steps:
  - id: review
    approval:
      message: "Reward of {{{{ trigger.body.amount }}}} for {{{{ trigger.body.email }}}}"
      timeout: 72h
{extra}
  - id: issue
    http: {{ method: POST, url: "{uri}/rewards", json: {{ email: "{{{{ trigger.body.email }}}}" }} }}
  - id: issued
    record: {{ event: reward_issued, key: "{{{{ trigger.body.email }}}}", value: "{{{{ trigger.body.amount }}}}" }}
"#
    )
}

async fn rewards_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rewards"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "ok": true })))
        .mount(&server)
        .await;
    server
}

async fn rewards_sent(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

struct Setup {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    store: String,
}

fn setup(yaml: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "reward.yaml", yaml);
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    Setup {
        _dir: dir,
        file,
        store,
    }
}

fn cli(setup: &Setup) -> Scenarist {
    Scenarist::new().env("SCENARIST_STORE", setup.store.clone())
}

/// Runs the scenario and returns the execution id it printed.
async fn start(setup: &Setup, input: Value) -> String {
    let out = cli(setup)
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&setup.file)
        .stdin(input.to_string())
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("■ WAITING in")
            && out
                .stderr
                .contains("for a review: decide with `scenarist approve"),
        "{}",
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc["status"], "waiting");
    doc["execution_id"].as_str().unwrap().to_owned()
}

async fn show(setup: &Setup, id: &str) -> Value {
    let out = cli(setup)
        .args(["executions", "show", id, "--output", "json"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[tokio::test]
async fn an_approval_waits_without_running_on_and_an_approve_lets_it_go_on_once() {
    let server = rewards_server().await;
    let setup = setup(&reward_scenario(&server.uri(), ""));
    let id = start(&setup, json!({ "email": "ann@example.com", "amount": 500 })).await;
    assert_eq!(
        rewards_sent(&server).await,
        0,
        "nothing is sent before the review"
    );

    let listed = cli(&setup).args(["approvals"]).run().await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains(&id), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("Reward of 500 for ann@example.com"),
        "{}",
        listed.stdout
    );

    let approved = cli(&setup)
        .args([
            "approve",
            &id[..13],
            "--by",
            "olivia",
            "--comment",
            "checked the deal",
        ])
        .run()
        .await;
    assert_eq!(approved.code, 0, "{}{}", approved.stdout, approved.stderr);
    assert!(
        approved.stdout.contains("approved by olivia"),
        "{}",
        approved.stdout
    );
    assert_eq!(rewards_sent(&server).await, 1);

    let doc = show(&setup, &id).await;
    assert_eq!(doc["status"], "succeeded");
    let review = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "review")
        .unwrap()
        .clone();
    assert_eq!(review["output"]["decision"], "approved");
    assert_eq!(review["output"]["by"], "olivia");
    assert_eq!(review["output"]["comment"], "checked the deal");

    // Deciding twice is refused and changes nothing.
    let again = cli(&setup).args(["reject", &id]).run().await;
    assert_ne!(again.code, 0);
    assert!(
        again
            .stderr
            .contains("is not waiting for a review (it is succeeded); nothing was changed"),
        "{}",
        again.stderr
    );
    assert_eq!(show(&setup, &id).await["status"], "succeeded");
    assert_eq!(rewards_sent(&server).await, 1);
    let empty = cli(&setup)
        .args(["approvals", "--output", "json"])
        .run()
        .await;
    assert_eq!(empty.json(), json!([]));
}

#[tokio::test]
async fn a_rejection_ends_the_execution_as_rejected_and_issues_nothing() {
    let server = rewards_server().await;
    let setup = setup(&reward_scenario(&server.uri(), ""));
    let id = start(&setup, json!({ "email": "bob@example.com", "amount": 900 })).await;
    let rejected = cli(&setup)
        .args([
            "reject",
            &id,
            "--by",
            "olivia",
            "--comment",
            "self-referral",
        ])
        .run()
        .await;
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    assert!(
        rejected.stdout.contains("is now rejected"),
        "{}",
        rejected.stdout
    );
    let doc = show(&setup, &id).await;
    assert_eq!(doc["status"], "rejected");
    assert_eq!(doc["error"], "rejected by olivia: self-referral");
    assert_eq!(rewards_sent(&server).await, 0);
    let report = cli(&setup).args(["report", "--format", "json"]).run().await;
    assert_eq!(report.json()["totals"]["rewards_issued"], 0);
}

#[tokio::test]
async fn on_reject_continue_goes_on_with_the_decision_in_the_output() {
    let server = rewards_server().await;
    let yaml = reward_scenario(&server.uri(), "      on_reject: continue").replace(
        "  - id: issue\n",
        "  - id: issue\n    when: { value: \"{{ steps.review.decision }}\", equals: approved }\n",
    );
    let setup = setup(&yaml);
    let id = start(&setup, json!({ "email": "cy@example.com", "amount": 10 })).await;
    let rejected = cli(&setup).args(["reject", &id]).run().await;
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    let doc = show(&setup, &id).await;
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(
        rewards_sent(&server).await,
        0,
        "the `when` saw the rejection"
    );
}

#[tokio::test]
async fn deciding_what_does_not_wait_or_as_someone_not_listed_is_a_clear_error() {
    let server = rewards_server().await;
    let setup = setup(&reward_scenario(
        &server.uri(),
        "      approvers: [olivia, sam]",
    ));
    let id = start(&setup, json!({ "email": "dee@example.com", "amount": 70 })).await;

    let stranger = cli(&setup)
        .args(["approve", &id, "--by", "mallory"])
        .run()
        .await;
    assert_ne!(stranger.code, 0);
    assert!(
        stranger
            .stderr
            .contains("`mallory` may not decide execution")
            && stranger.stderr.contains("olivia, sam; nothing was changed"),
        "{}",
        stranger.stderr
    );
    assert_eq!(show(&setup, &id).await["status"], "waiting");

    let unknown = cli(&setup).args(["approve", "ffffffff"]).run().await;
    assert_ne!(unknown.code, 0);
    assert!(
        unknown
            .stderr
            .contains("no execution has an id starting with `ffffffff`"),
        "{}",
        unknown.stderr
    );
    assert_eq!(rewards_sent(&server).await, 0);
    let ok = cli(&setup)
        .args(["approve", &id, "--by", "sam"])
        .run()
        .await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(rewards_sent(&server).await, 1);
}

// ---- With an injected clock, through the library ----

static CLOCK: AtomicI64 = AtomicI64::new(0);
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(CLOCK.load(Ordering::SeqCst)).unwrap()
}
fn set_now(t: DateTime<Utc>) {
    CLOCK.store(t.timestamp_micros(), Ordering::SeqCst);
}
/// Tests sharing the clock run one at a time.
static CLOCK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn compile(yaml: &str) -> scenarist::plan::Plan {
    let loaded = scenarist::load::load_str(Path::new("t.yaml"), yaml.to_owned())
        .unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
    scenarist::plan::compile(&loaded).unwrap_or_else(|d| panic!("{d:?}"))
}

fn request(body: Value) -> RunRequest {
    RunRequest {
        trigger: TriggerData {
            body,
            ..TriggerData::default()
        },
        ..RunRequest::default()
    }
}

/// Starts an execution through the library (the clock is the runner's).
async fn start_waiting(
    runner: &Runner,
    plan: &scenarist::plan::Plan,
    body: Value,
) -> scenarist::engine::Execution {
    runner
        .start(plan, request(body), &NoJournal, None)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unanswered_approval_times_out_as_configured() {
    let _one = CLOCK_LOCK.lock().await;
    let start = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    set_now(start);
    let server = rewards_server().await;
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = Runner::new(Engine::new(), store, HashMap::new()).with_clock(now);
    for (on_timeout, expected, sent) in [
        ("reject", ExecutionStatus::Rejected, 0),
        ("approve", ExecutionStatus::Succeeded, 1),
    ] {
        set_now(start);
        let yaml = reward_scenario(&server.uri(), &format!("      on_timeout: {on_timeout}"))
            .replace("name: reward", &format!("name: reward-{on_timeout}"));
        let plan = compile(&yaml);
        let before = rewards_sent(&server).await;
        let first = start_waiting(&runner, &plan, json!({ "email": "e@x.io", "amount": 5 })).await;
        assert_eq!(first.status, ExecutionStatus::Waiting);
        let id = first.execution_id;
        assert_eq!(
            runner.load(id).await.unwrap().summary.next_retry_at,
            Some(start + Duration::hours(72))
        );
        set_now(start + Duration::hours(71));
        assert!(
            runner.due().await.unwrap().is_empty(),
            "not due before the deadline"
        );
        assert!(matches!(
            runner.resume(id, &NoJournal).await,
            Err(RunnerError::NotResumable { .. })
        ));
        set_now(start + Duration::hours(72));
        let due: Vec<_> = runner
            .due()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(due, vec![id]);
        let ended = runner.resume(id, &NoJournal).await.unwrap();
        assert_eq!(ended.status, expected, "on_timeout: {on_timeout}");
        let review = ended.step("review").unwrap();
        assert_eq!(review.output["by"], "timeout");
        assert_eq!(review.output["comment"], "no decision within 3d");
        assert_eq!(rewards_sent(&server).await - before, sent);
        // Decided by the clock: a late decision changes nothing.
        let late = runner
            .decide(
                id,
                Decision {
                    approve: true,
                    by: "olivia".into(),
                    comment: None,
                },
            )
            .await;
        assert!(
            matches!(late, Err(RunnerError::NotWaiting { .. })),
            "{late:?}"
        );
    }
}

#[tokio::test]
async fn a_delay_parks_the_execution_until_its_time_and_records_count_once() {
    let _one = CLOCK_LOCK.lock().await;
    let start = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    set_now(start);
    let yaml = r#"name: follow-up
steps:
  - id: referred
    record: { event: referred, key: "{{ trigger.body.email }}", data: { segment: smb } }
  - id: wait
    delay: { for: 10m }
  - id: again
    record: { event: referred, key: "{{ trigger.body.email }}" }
"#;
    let plan = compile(yaml);
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = Runner::new(Engine::new(), store.clone(), HashMap::new()).with_clock(now);
    let first = start_waiting(&runner, &plan, json!({ "email": "f@x.io" })).await;
    assert_eq!(first.status, ExecutionStatus::Waiting);
    assert_eq!(first.wake_at, Some(start + Duration::minutes(10)));
    assert_eq!(first.step("referred").unwrap().output["recorded"], true);
    set_now(start + Duration::minutes(9));
    assert!(runner.due().await.unwrap().is_empty());
    set_now(start + Duration::minutes(10));
    let done = runner.resume(first.execution_id, &NoJournal).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.step("again").unwrap().output["recorded"], false);
    // A replay records nothing new either.
    let replay = runner.replay(first.execution_id, &NoJournal).await.unwrap();
    assert_eq!(replay.step("referred").unwrap().output["recorded"], false);
    let events = store
        .business_events(start - Duration::days(1), start + Duration::days(1), None)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, "f@x.io");
    assert_eq!(events[0].scenario, "follow-up");
}

// ---- Through the daemon's admin API ----

/// `scenarist serve` on the reward scenario as a webhook at `/hooks/reward`.
async fn serve_reward(
    server: &MockServer,
    extra: &str,
    timeout: &str,
) -> (tempfile::TempDir, crate::daemon_util::Served) {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    let yaml = reward_scenario(&server.uri(), extra)
        .replace("timeout: 72h", &format!("timeout: {timeout}"))
        .replace(
            "name: reward\n",
            "name: reward\ntrigger: { webhook: { path: reward } }\n",
        );
    std::fs::write(scenarios.join("reward.yaml"), yaml).unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let served = crate::daemon_util::serve(&crate::daemon_util::ServeOptions {
        dir: &scenarios,
        store: &store,
        args: Vec::new(),
        env: Vec::new(),
        log: dir.path().join("serve.log"),
    })
    .await;
    (dir, served)
}

/// Sends one reward event; returns the execution id of the 202.
async fn send_reward(
    http: &reqwest::Client,
    served: &crate::daemon_util::Served,
    email: &str,
    amount: u32,
) -> String {
    let answer: Value = http
        .post(format!("{}/hooks/reward", served.url))
        .json(&json!({ "email": email, "amount": amount }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["execution_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_daemon_takes_decisions_over_its_api_and_refuses_a_second_one() {
    use crate::daemon_util::eventually;
    let server = rewards_server().await;
    let (_dir, served) = serve_reward(&server, "      approvers: [olivia]", "72h").await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for email in ["a@x.io", "b@x.io"] {
        ids.push(send_reward(&http, &served, email, 2000).await);
    }
    let api = |path: String| format!("{}/api{path}", served.url);
    let waiting = eventually(20, || async {
        let list: Value = http
            .get(api("/approvals".into()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert!(waiting, "both executions wait for a review");
    assert_eq!(rewards_sent(&server).await, 0);

    let decide = |id: &str, verb: &str, by: &str| {
        http.post(api(format!("/executions/{id}/{verb}")))
            .json(&json!({ "by": by, "comment": "checked" }))
            .send()
    };
    let stranger = decide(&ids[0], "approve", "mallory").await.unwrap();
    assert_eq!(stranger.status(), 403);
    assert_eq!(
        decide(&ids[0], "approve", "olivia").await.unwrap().status(),
        202
    );
    assert_eq!(
        decide(&ids[1], "reject", "olivia").await.unwrap().status(),
        202
    );
    let twice = decide(&ids[0], "reject", "olivia").await.unwrap();
    assert_eq!(twice.status(), 409);
    let message: Value = twice.json().await.unwrap();
    assert!(
        message["error"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{message}"
    );
    let ended = eventually(20, || async {
        let mut statuses = Vec::new();
        for id in &ids {
            let doc: Value = http
                .get(api(format!("/executions/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            statuses.push(doc["status"].as_str().unwrap_or_default().to_owned());
        }
        statuses == ["succeeded", "rejected"]
    })
    .await;
    assert!(
        ended,
        "the approved one succeeded, the rejected one ended rejected"
    );
    assert_eq!(
        rewards_sent(&server).await,
        1,
        "only the approved reward was issued"
    );
    let report: Value = http
        .get(api("/report".into()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["totals"]["rewards_issued"], 1);
    assert_eq!(report["totals"]["rewards_value"], 2000.0);
    served.stop().await;
}

#[tokio::test]
async fn a_decision_kept_before_a_crash_is_carried_out_by_resume() {
    let _one = CLOCK_LOCK.lock().await;
    set_now(DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap());
    let server = rewards_server().await;
    let store: Arc<dyn Store> = store::open("memory").unwrap();
    let runner = Runner::new(Engine::new(), store, HashMap::new()).with_clock(now);
    let yaml = reward_scenario(&server.uri(), "");
    let plan = compile(&yaml);
    let first = start_waiting(&runner, &plan, json!({ "email": "g@x.io", "amount": 3 })).await;
    let id = first.execution_id;
    // The decision is kept; the process deciding it dies before going on.
    runner
        .decide(
            id,
            Decision {
                approve: true,
                by: "olivia".into(),
                comment: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        runner.load(id).await.unwrap().summary.status,
        ExecutionStatus::Queued
    );
    let due: Vec<_> = runner
        .due()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        due,
        vec![id],
        "`scenarist resume` finds the decided execution"
    );
    let done = runner.resume(id, &NoJournal).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.step("review").unwrap().output["by"], "olivia");
    assert_eq!(rewards_sent(&server).await, 1);
}

#[tokio::test]
async fn the_daemon_decides_an_approval_at_its_deadline() {
    use crate::daemon_util::eventually;
    let server = rewards_server().await;
    let (_dir, served) = serve_reward(&server, "      on_timeout: approve", "1s").await;
    let http = reqwest::Client::new();
    let id = send_reward(&http, &served, "h@x.io", 40).await;
    let url = format!("{}/api/executions/{id}", served.url);
    let decided = eventually(20, || async {
        let doc: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        doc["status"] == "succeeded"
    })
    .await;
    assert!(decided, "{}", served.log());
    let doc: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    let review = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "review")
        .cloned()
        .unwrap();
    assert_eq!(review["output"]["by"], "timeout");
    assert_eq!(review["output"]["decision"], "approved");
    assert_eq!(rewards_sent(&server).await, 1);
    served.stop().await;
}

#[tokio::test]
async fn a_decision_taken_where_the_secrets_are_missing_is_kept_for_the_daemon() {
    let server = rewards_server().await;
    let yaml = reward_scenario(&server.uri(), "")
        .replace("name: reward\n", "name: reward\nenv: [REWARDS_TOKEN]\n")
        .replace(
            "json: { email:",
            "headers: { Authorization: \"Bearer {{ env.REWARDS_TOKEN }}\" }, json: { email:",
        );
    let setup = setup(&yaml);
    let out = cli(&setup)
        .env("REWARDS_TOKEN", "rw-secret-123")
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&setup.file)
        .stdin(json!({ "email": "k@x.io", "amount": 9 }).to_string())
        .run()
        .await;
    let id = out.json()["execution_id"].as_str().unwrap().to_owned();

    // An ops person's shell without the scenario's secrets.
    let approved = cli(&setup).args(["approve", &id]).run().await;
    assert_eq!(approved.code, 1, "{}", approved.stderr);
    assert!(
        approved.stderr.contains("the decision is kept")
            && approved.stderr.contains("REWARDS_TOKEN"),
        "{}",
        approved.stderr
    );
    assert_eq!(show(&setup, &id).await["status"], "queued");
    assert_eq!(rewards_sent(&server).await, 0);

    let resumed = cli(&setup)
        .env("REWARDS_TOKEN", "rw-secret-123")
        .args(["resume"])
        .run()
        .await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(show(&setup, &id).await["status"], "succeeded");
    assert_eq!(rewards_sent(&server).await, 1);
}
