//! `scenarist serve` as a user runs it: the real binary on an ephemeral
//! loopback port, real local downstream servers, a real SQLite file.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon_util::{eventually, executions, serve, ServeOptions};

struct Setup {
    dir: tempfile::TempDir,
    store: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        let store = format!("sqlite://{}", dir.path().join("store.db").display());
        Setup { dir, store }
    }

    fn write(&self, name: &str, yaml: &str) {
        std::fs::write(self.dir.path().join("scenarios").join(name), yaml).unwrap();
    }

    fn options(&self, args: &[&str], env: &[(&str, &str)]) -> ServeOptions<'_> {
        ServeOptions {
            dir: Box::leak(self.dir.path().join("scenarios").into_boxed_path()),
            store: &self.store,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: self.dir.path().join("daemon.log"),
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn webhooks_check_size_signature_json_and_schema_before_storing_anything() {
    let setup = Setup::new();
    setup.write(
        "signed.yaml",
        r#"name: signed
env: [HOOK_SECRET]
trigger:
  webhook:
    path: crm/deal
    auth: { hmac_sha256: { header: X-Signature, secret: "{{ env.HOOK_SECRET }}", prefix: "sha256=" } }
input:
  schema:
    type: object
    required: [deal]
    properties: { deal: { type: object, required: [id], properties: { id: { type: string } } } }
steps:
  - id: noted
    set: { deal: "{{ trigger.body.deal.id }}" }
"#,
    );
    setup.write(
        "tokened.yaml",
        r#"name: tokened
env: [FORM_TOKEN]
trigger:
  webhook: { path: forms/signup, auth: { token: { header: X-Token, secret: "{{ env.FORM_TOKEN }}" } } }
steps:
  - id: noted
    set: { email: "{{ trigger.body.email }}" }
"#,
    );
    let daemon = serve(&setup.options(
        &[],
        &[
            ("HOOK_SECRET", "whsec_abcdef123"),
            ("FORM_TOKEN", "tok_987654321"),
        ],
    ))
    .await;
    let hook = format!("{}/hooks/crm/deal", daemon.url);
    let body = br#"{"deal":{"id":"D-1"}}"#.to_vec();
    let post = |body: Vec<u8>, signature: Option<String>| {
        let mut request = client().post(&hook).body(body);
        if let Some(s) = signature {
            request = request.header("X-Signature", s);
        }
        request.send()
    };
    let good = post(
        body.clone(),
        Some(format!("sha256={}", sign("whsec_abcdef123", &body))),
    )
    .await
    .unwrap();
    assert_eq!(good.status(), 202);
    let id = good.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let forged = post(
        body.clone(),
        Some(format!("sha256={}", sign("wrong", &body))),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned = post(body.clone(), None).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(unsigned
        .text()
        .await
        .unwrap()
        .contains("missing `X-Signature`"));

    let not_json = b"{deal".to_vec();
    let bad = post(
        not_json.clone(),
        Some(format!("sha256={}", sign("whsec_abcdef123", &not_json))),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("not JSON"));

    let wrong_shape = br#"{"deal":{"id":7}}"#.to_vec();
    let invalid = post(
        wrong_shape.clone(),
        Some(format!("sha256={}", sign("whsec_abcdef123", &wrong_shape))),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), 422);
    let violations = invalid.json::<Value>().await.unwrap();
    assert!(
        violations["violations"][0]
            .as_str()
            .unwrap()
            .contains("/deal/id"),
        "{violations}"
    );

    let huge = vec![b' '; 1024 * 1024 + 10];
    let too_big = post(huge, None).await.unwrap();
    assert_eq!(too_big.status(), 413);

    let form = format!("{}/hooks/forms/signup", daemon.url);
    let ok = client()
        .post(&form)
        .header("X-Token", "tok_987654321")
        .body(r#"{"email":"a@b.c"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    let refused = client()
        .post(&form)
        .header("X-Token", "tok_000000000")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let nowhere = client()
        .post(format!("{}/hooks/nowhere", daemon.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);

    // Only the two accepted events were stored, and they ran.
    let url = daemon.url.clone();
    assert!(
        eventually(10, || {
            let url = url.clone();
            async move {
                let all = executions(&url, "").await;
                all.len() == 2 && all.iter().all(|e| e["status"] == "succeeded")
            }
        })
        .await
    );
    let shown: Value = client()
        .get(format!("{}/api/executions/{id}", daemon.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["steps"][0]["output"], json!({ "deal": "D-1" }));
    assert!(
        shown["trigger"]["headers"].get("x-signature").is_none(),
        "credentials are not stored"
    );
    assert_eq!(daemon.stop().await, 0);
}

#[tokio::test]
async fn a_repeated_event_runs_once_and_calls_downstream_once() {
    let downstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/qualify"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&downstream)
        .await;
    let setup = Setup::new();
    setup.write(
        "qualify.yaml",
        &format!(
            r#"name: qualify
trigger:
  webhook: {{ path: deals, dedupe: "{{{{ trigger.body.event_id }}}}" }}
steps:
  - id: qualify
    http: {{ method: POST, url: "{}/qualify", json: {{ deal: "{{{{ trigger.body.deal }}}}" }} }}
"#,
            downstream.uri()
        ),
    );
    let daemon = serve(&setup.options(&[], &[])).await;
    let hook = format!("{}/hooks/deals", daemon.url);
    let event = json!({ "event_id": "evt-1", "deal": "D-9" });
    let first = client().post(&hook).json(&event).send().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let second = client().post(&hook).json(&event).send().await.unwrap();
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["execution_id"], first["execution_id"]);
    let url = daemon.url.clone();
    assert!(
        eventually(10, || {
            let url = url.clone();
            async move { executions(&url, "status=succeeded").await.len() == 1 }
        })
        .await
    );
    assert_eq!(executions(&daemon.url, "").await.len(), 1);
    assert_eq!(downstream.received_requests().await.unwrap().len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn respond_after_run_answers_with_what_the_scenario_built() {
    let setup = Setup::new();
    setup.write(
        "lookup.yaml",
        r#"name: lookup
trigger:
  webhook: { path: lookup, respond: after_run }
steps:
  - id: answer
    respond:
      status: 201
      headers: { X-Referral: "{{ trigger.body.code }}" }
      body: { link: "https://ref.example/{{ trigger.body.code }}" }
"#,
    );
    let daemon = serve(&setup.options(&[], &[])).await;
    let answer = client()
        .post(format!("{}/hooks/lookup", daemon.url))
        .json(&json!({ "code": "ANN42" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["x-referral"], "ANN42");
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({ "link": "https://ref.example/ANN42" })
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_schedule_fires_on_time_never_twice_and_catches_up_after_a_stop() {
    let setup = Setup::new();
    setup.write(
        "tick.yaml",
        r#"name: tick
trigger:
  schedule: { every: 1s, catch_up: last }
steps:
  - id: seen
    set: { at: "{{ trigger.body.scheduled_at }}" }
"#,
    );
    let daemon = serve(&setup.options(&[], &[])).await;
    let url = daemon.url.clone();
    assert!(
        eventually(10, || {
            let url = url.clone();
            async move {
                executions(&url, "scenario=tick&status=succeeded")
                    .await
                    .len()
                    >= 2
            }
        })
        .await
    );
    daemon.stop().await;
    let stopped_at = chrono::Utc::now();
    // Down for three seconds: `catch_up: last` fires the last missed tick once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarting_at = chrono::Utc::now();
    let daemon = serve(&setup.options(&[], &[])).await;
    let restarted_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = executions(&daemon.url, "scenario=tick").await;
    let mut ticks: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ticks.sort();
    let mut scheduled = Vec::new();
    for id in &ticks {
        let shown: Value = client()
            .get(format!("{}/api/executions/{id}", daemon.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        scheduled.push(
            shown["trigger"]["body"]["scheduled_at"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let fired = shown["trigger"]["body"]["fired_at"].as_str().unwrap();
        assert!(!fired.is_empty());
    }
    let mut unique = scheduled.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        scheduled.len(),
        "a tick fired twice: {scheduled:?}"
    );
    // Of the three ticks missed while the daemon was down, one (the last) fired.
    let times: Vec<chrono::DateTime<chrono::Utc>> = unique
        .iter()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        })
        .collect();
    let while_down = times
        .iter()
        .filter(|t| **t > stopped_at && **t <= restarting_at)
        .count();
    let until_ready = times
        .iter()
        .filter(|t| **t > stopped_at && **t <= restarted_at)
        .count();
    assert!(while_down <= 1, "missed ticks fired: {unique:?}");
    assert!(until_ready >= 1, "no tick caught up: {unique:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn an_edit_reloads_and_an_invalid_edit_keeps_the_previous_version() {
    let setup = Setup::new();
    let version = |label: &str| {
        format!(
            "name: greet\ntrigger:\n  webhook: {{ path: greet, respond: after_run }}\nsteps:\n  - id: answer\n    respond: {{ status: 200, body: {{ v: {label} }} }}\n"
        )
    };
    setup.write("greet.yaml", &version("one"));
    let daemon = serve(&setup.options(&[], &[])).await;
    let ask = |url: String| async move {
        client()
            .post(format!("{url}/hooks/greet"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["v"]
            .clone()
    };
    assert_eq!(ask(daemon.url.clone()).await, "one");
    setup.write("greet.yaml", &version("two"));
    let url = daemon.url.clone();
    assert!(eventually(10, || ask(url.clone()).then_some_eq("two")).await);
    // Broken YAML: logged, and version two keeps answering.
    setup.write("greet.yaml", "name: greet\nsteps: [\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ask(daemon.url.clone()).await, "two");
    assert!(
        daemon.log().contains("scenario edit rejected"),
        "{}",
        daemon.log()
    );
    daemon.stop().await;
}

trait ThenEq {
    async fn then_some_eq(self, expected: &str) -> bool;
}

impl<F: std::future::Future<Output = Value>> ThenEq for F {
    async fn then_some_eq(self, expected: &str) -> bool {
        self.await == expected
    }
}

#[tokio::test]
async fn concurrency_one_keeps_arrival_order_and_a_key_keeps_order_per_lead() {
    let downstream = MockServer::start().await;
    Mock::given(path("/step"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(30)))
        .mount(&downstream)
        .await;
    let setup = Setup::new();
    let scenario = |name: &str, concurrency: &str| {
        format!(
            r#"name: {name}
settings: {{ concurrency: {concurrency} }}
trigger:
  webhook: {{ path: {name} }}
steps:
  - id: start
    http: {{ method: POST, url: "{uri}/step", json: {{ scenario: {name}, lead: "{{{{ trigger.body.lead }}}}", n: "{{{{ trigger.body.n }}}}", phase: start }} }}
  - id: finish
    http: {{ method: POST, url: "{uri}/step", json: {{ scenario: {name}, lead: "{{{{ trigger.body.lead }}}}", n: "{{{{ trigger.body.n }}}}", phase: finish }} }}
"#,
            uri = downstream.uri()
        )
    };
    setup.write("serial.yaml", &scenario("serial", "1"));
    setup.write(
        "keyed.yaml",
        &scenario("keyed", "{ limit: 1, key: \"{{ trigger.body.lead }}\" }"),
    );
    let daemon = serve(&setup.options(&["--workers", "8"], &[])).await;
    for n in 0..6 {
        let r = client()
            .post(format!("{}/hooks/serial", daemon.url))
            .json(&json!({ "lead": "x", "n": n }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    for n in 0..4 {
        for lead in ["ann", "bob"] {
            let r = client()
                .post(format!("{}/hooks/keyed", daemon.url))
                .json(&json!({ "lead": lead, "n": n }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    }
    let url = daemon.url.clone();
    assert!(
        eventually(30, || {
            let url = url.clone();
            async move { executions(&url, "status=succeeded").await.len() == 14 }
        })
        .await
    );
    let calls: Vec<Value> = downstream
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    // Strict order: start n, finish n, start n+1, ... never overlapping.
    let serial: Vec<(i64, String)> = calls
        .iter()
        .filter(|c| c["scenario"] == "serial")
        .map(|c| {
            (
                c["n"].as_i64().unwrap(),
                c["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(i64, String)> = (0..6)
        .flat_map(|n| [(n, "start".to_owned()), (n, "finish".to_owned())])
        .collect();
    assert_eq!(serial, expected);
    // Per key: each lead's events in order, without overlap; the two leads interleave.
    for lead in ["ann", "bob"] {
        let mine: Vec<(i64, String)> = calls
            .iter()
            .filter(|c| c["scenario"] == "keyed" && c["lead"] == lead)
            .map(|c| {
                (
                    c["n"].as_i64().unwrap(),
                    c["phase"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(i64, String)> = (0..4)
            .flat_map(|n| [(n, "start".to_owned()), (n, "finish".to_owned())])
            .collect();
        assert_eq!(mine, expected, "{lead}");
    }
    let keyed: Vec<&Value> = calls.iter().filter(|c| c["scenario"] == "keyed").collect();
    let overlapped = keyed
        .windows(2)
        .any(|w| w[0]["lead"] != w[1]["lead"] && w[0]["phase"] == "start");
    assert!(overlapped, "different leads ran in parallel");
    daemon.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let downstream = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&downstream)
        .await;
    let setup = Setup::new();
    setup.write(
        "slow.yaml",
        &format!(
            "name: slow\ntrigger:\n  webhook: {{ path: slow }}\nsteps:\n  - id: call\n    http: {{ method: POST, url: \"{}/slow\" }}\n",
            downstream.uri()
        ),
    );
    let daemon = serve(&setup.options(
        &["--workers", "1", "--max-queue", "2", "--grace", "1s"],
        &[],
    ))
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = client()
            .post(format!("{}/hooks/slow", daemon.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            assert_eq!(r.headers()["retry-after"], "5");
        }
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&202), "{codes:?}");
    assert!(codes.contains(&503), "{codes:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn the_admin_api_needs_the_token_when_one_is_set_and_beyond_loopback() {
    let setup = Setup::new();
    setup.write(
        "open.yaml",
        "name: open\ntrigger:\n  webhook: { path: open }\nsteps:\n  - id: a\n    set: { x: 1 }\n",
    );
    let daemon = serve(&setup.options(&[], &[("SCENARIST_ADMIN_TOKEN", "admin-secret-1")])).await;
    let anonymous = client()
        .get(format!("{}/api/scenarios", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_token = client()
        .get(format!("{}/api/scenarios", daemon.url))
        .bearer_auth("admin-secret-1")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
    let listed: Value = with_token.json().await.unwrap();
    assert_eq!(listed[0]["webhook"], "/hooks/open");
    // Webhooks have their own auth, never the admin token.
    let hook = client()
        .post(format!("{}/hooks/open", daemon.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 202);
    let manual = client()
        .post(format!("{}/api/scenarios/open/run", daemon.url))
        .bearer_auth("admin-secret-1")
        .json(&json!({ "by": "hand" }))
        .send()
        .await
        .unwrap();
    assert_eq!(manual.status(), 202);
    daemon.stop().await;

    // Beyond loopback without a token, serve refuses to start (before binding anything).
    let out = crate::util::Scenarist::new()
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--store",
            "memory",
            "--dir",
        ])
        .arg_path(&setup.dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("SCENARIST_ADMIN_TOKEN"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn metrics_count_executions_webhook_answers_and_step_durations() {
    let setup = Setup::new();
    setup.write(
        "m.yaml",
        "name: m\ntrigger:\n  webhook: { path: m }\nsteps:\n  - id: a\n    set: { x: 1 }\n",
    );
    let daemon = serve(&setup.options(&[], &[])).await;
    for _ in 0..3 {
        client()
            .post(format!("{}/hooks/m", daemon.url))
            .body("{}")
            .send()
            .await
            .unwrap();
    }
    client()
        .post(format!("{}/hooks/m", daemon.url))
        .body("{no")
        .send()
        .await
        .unwrap();
    let url = daemon.url.clone();
    assert!(
        eventually(10, || {
            let url = url.clone();
            async move { executions(&url, "status=succeeded").await.len() == 3 }
        })
        .await
    );
    let text = client()
        .get(format!("{}/metrics", daemon.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(
        value(r#"scenarist_executions_total{scenario="m",status="succeeded"}"#),
        3.0
    );
    assert_eq!(
        value(r#"scenarist_webhook_responses_total{code="202"}"#),
        3.0
    );
    assert_eq!(
        value(r#"scenarist_webhook_responses_total{code="400"}"#),
        1.0
    );
    assert_eq!(
        value(r#"scenarist_step_duration_seconds_count{kind="set"}"#),
        3.0
    );
    assert_eq!(value("scenarist_queue_depth"), 0.0);
    let health: Value = client()
        .get(format!("{}/healthz", daemon.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    daemon.stop().await;
}

#[tokio::test]
async fn every_accepted_event_completes_once_across_two_crashes() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::sync::RwLock;

    const EVENTS: usize = 500;
    let downstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(2)))
        .mount(&downstream)
        .await;
    let setup = Setup::new();
    setup.write(
        "events.yaml",
        &format!(
            r#"name: events
trigger:
  webhook: {{ path: events, dedupe: "{{{{ trigger.body.event }}}}" }}
steps:
  - id: enrol
    http: {{ method: POST, url: "{uri}/enrol", json: {{ event: "{{{{ trigger.body.event }}}}" }} }}
  - id: notify
    http: {{ method: POST, url: "{uri}/notify", json: {{ event: "{{{{ trigger.body.event }}}}" }} }}
"#,
            uri = downstream.uri()
        ),
    );
    let options = setup.options(&["--workers", "8"], &[]);
    let daemon = serve(&options).await;
    let url = Arc::new(RwLock::new(daemon.url.clone()));
    let daemon = Arc::new(tokio::sync::Mutex::new(Some(daemon)));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // Eight senders; an event is sent again until it gets 202 or 200 (duplicate),
    // as a real sender retries what was not acknowledged.
    let senders = (0..8).map(|worker| {
        let url = url.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut accepted = Vec::new();
            for n in (worker..EVENTS).step_by(8) {
                let event = format!("evt-{n}");
                let mut tries = 0;
                loop {
                    tries += 1;
                    assert!(tries < 400, "{event} never acknowledged");
                    let base = url.read().await.clone();
                    match client
                        .post(format!("{base}/hooks/events"))
                        .json(&json!({ "event": event }))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 || r.status() == 200 => {
                            accepted.push(event.clone());
                            break;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(25)).await,
                    }
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            accepted
        })
    });
    let senders: Vec<_> = senders.collect();
    // Two crashes while events flow: SIGKILL, then a restart on the same store.
    for at in [150, 330] {
        while sent.load(std::sync::atomic::Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let running = daemon.lock().await.take().unwrap();
        running.kill().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let restarted = serve(&options).await;
        *url.write().await = restarted.url.clone();
        *daemon.lock().await = Some(restarted);
    }
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    assert_eq!(accepted.len(), EVENTS);
    let base = url.read().await.clone();
    let done = eventually(60, || {
        let base = base.clone();
        async move { executions(&base, "status=succeeded").await.len() == EVENTS }
    })
    .await;
    let all = executions(&base, "").await;
    let mut by_status: HashMap<String, usize> = HashMap::new();
    for e in &all {
        *by_status
            .entry(e["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(done, "not all executions succeeded: {by_status:?}");
    assert_eq!(all.len(), EVENTS, "one execution per event");

    // Downstream: per event and step, every request carried the same
    // Idempotency-Key, so a well-behaved API saw exactly one call.
    let mut keys: HashMap<(String, String), Vec<String>> = HashMap::new();
    for request in downstream.received_requests().await.unwrap() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let key = request
            .headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        keys.entry((
            body["event"].as_str().unwrap().to_owned(),
            request.url.path().to_owned(),
        ))
        .or_default()
        .push(key);
    }
    assert_eq!(
        keys.len(),
        EVENTS * 2,
        "every step of every event was called"
    );
    for ((event, step), sent) in &keys {
        assert!(
            sent.iter().all(|k| k == &sent[0]),
            "{event} {step}: {sent:?}"
        );
        assert!(sent.len() <= 2, "{event} {step} sent {} times", sent.len());
    }
    let daemon = daemon.lock().await.take().unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_executions_finish_and_leaves_the_rest_for_the_next_start() {
    let downstream = MockServer::start().await;
    Mock::given(path("/quick"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(800)))
        .mount(&downstream)
        .await;
    Mock::given(path("/long"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(4)))
        .mount(&downstream)
        .await;
    let setup = Setup::new();
    for name in ["quick", "long"] {
        setup.write(
            &format!("{name}.yaml"),
            &format!(
                "name: {name}\ntrigger:\n  webhook: {{ path: {name} }}\nsteps:\n  - id: call\n    http: {{ method: POST, url: \"{}/{name}\" }}\n",
                downstream.uri()
            ),
        );
    }
    let options = setup.options(&["--grace", "2s"], &[]);
    let daemon = serve(&options).await;
    for name in ["quick", "long"] {
        let r = client()
            .post(format!("{}/hooks/{name}", daemon.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert!(
        eventually(10, || async {
            downstream.received_requests().await.unwrap().len() == 2
        })
        .await
    );
    assert_eq!(daemon.stop().await, 0, "a graceful stop");
    let listed = crate::util::Scenarist::new()
        .args(["executions", "list", "--output", "json"])
        .env("SCENARIST_STORE", &setup.store)
        .run()
        .await;
    let rows = listed.json();
    let status = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(
        status("quick"),
        "succeeded",
        "finished within the grace period"
    );
    assert_eq!(status("long"), "running", "left for the next start");
    // The next start resumes it: the request is sent again with the same key.
    let daemon = serve(&options).await;
    let url = daemon.url.clone();
    assert!(
        eventually(20, || {
            let url = url.clone();
            async move { executions(&url, "status=succeeded").await.len() == 2 }
        })
        .await
    );
    let long: Vec<_> = downstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/long")
        .collect();
    assert_eq!(long.len(), 2);
    assert_eq!(
        long[0].headers["idempotency-key"],
        long[1].headers["idempotency-key"]
    );
    daemon.stop().await;
}
