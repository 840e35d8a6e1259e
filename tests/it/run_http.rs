//! `scenarist run` with http steps against wiremock servers on 127.0.0.1.

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{scenario_file, Scenarist};

fn post_step(url: &str, extra: &str) -> String {
    format!("name: s\nsteps:\n  - id: call\n{extra}    http:\n      method: POST\n      url: \"{url}\"\n      json: {{ a: 1 }}\n")
}

#[tokio::test]
async fn retries_503_503_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/q"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/q"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        &post_step(
            &format!("{}/q", server.uri()),
            "    retry: { attempts: 3, initial: 10ms }\n",
        ),
    );
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["steps"]["call"]["attempts"], 3);
    assert_eq!(doc["steps"]["call"]["output"]["body"], json!({"ok": true}));
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.body == br#"{"a":1}"#),
        "the same body every attempt"
    );
    assert!(out.stderr.contains("(3 attempts)"), "{}", out.stderr);
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_4xx_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .mount(&server)
        .await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": "email invalid"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let busy = scenario_file(
        &dir,
        "busy.yaml",
        &post_step(
            &format!("{}/busy", server.uri()),
            "    retry: { attempts: 2, initial: 10ms }\n",
        ),
    );
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&busy)
        .run()
        .await;
    assert_eq!(out.code, 1);
    let doc = out.json();
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["steps"]["call"]["attempts"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("answered 503: down"),
        "{doc}"
    );

    let bad = scenario_file(
        &dir,
        "bad.yaml",
        &post_step(
            &format!("{}/bad", server.uri()),
            "    retry: { attempts: 5, initial: 10ms }\n",
        ),
    );
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&bad)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.json()["steps"]["call"]["attempts"],
        1,
        "a 422 is not retried"
    );
    let hits = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/bad")
        .count();
    assert_eq!(hits, 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(path("/q"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/q"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        &post_step(
            &format!("{}/q", server.uri()),
            "    retry: { attempts: 2, initial: 10ms }\n",
        ),
    );
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    // The step took at least the second the server asked for, not the 10ms backoff.
    assert!(out.json()["steps"]["call"]["duration_ms"].as_u64().unwrap() >= 1000);
}

#[tokio::test]
async fn a_step_timeout_fails_the_step_with_a_clear_message() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        &post_step(&format!("{}/slow", server.uri()), "    timeout: 200ms\n"),
    );
    let started = std::time::Instant::now();
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "did not wait for the slow server"
    );
    let doc = out.json();
    assert_eq!(doc["steps"]["call"]["status"], "failed");
    assert_eq!(doc["steps"]["call"]["error"], "no answer within 200ms");
}

#[tokio::test]
async fn secrets_never_appear_in_any_output() {
    let secret = "sk_live_9f8e7d6c5b4a";
    let server = MockServer::start().await;
    Mock::given(path("/echo"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"echo": format!("you sent {secret}")})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/fail"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!("bad token {secret}")))
        .mount(&server)
        .await;
    let yaml = r#"name: s
env: [API_TOKEN, { name: API_BASE, secret: false }]
steps:
  - id: copy
    set: { token: "{{ env.API_TOKEN }}", base: "{{ env.API_BASE }}" }
  - id: echo
    http:
      method: POST
      url: "{{ env.API_BASE }}/echo?key={{ env.API_TOKEN }}"
      headers: { Authorization: "Bearer {{ env.API_TOKEN }}" }
      json: { token: "{{ env.API_TOKEN }}" }
  - id: fail_loudly
    http: { method: POST, url: "{{ env.API_BASE }}/fail", json: { t: "{{ env.API_TOKEN }}" } }
on_failure:
  - id: report
    set: { message: "{{ error.message }}" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", yaml);
    for extra in [
        vec!["--output", "json"],
        vec![],
        vec!["--dry-run", "--output", "json"],
    ] {
        let out = Scenarist::new()
            .args(["run"])
            .arg_path(&file)
            .args(&extra)
            .env("API_TOKEN", secret)
            .env("API_BASE", server.uri())
            .env("SCENARIST_LOG", "debug")
            .run()
            .await;
        assert!(
            !out.stdout.contains(secret),
            "stdout leaks the secret with {extra:?}:\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(secret),
            "stderr leaks the secret with {extra:?}:\n{}",
            out.stderr
        );
        if extra.len() == 2 {
            let doc = out.json();
            assert_eq!(doc["steps"]["copy"]["output"]["token"], "***");
            assert_eq!(
                doc["steps"]["copy"]["output"]["base"],
                server.uri(),
                "non-secret values stay readable"
            );
            assert!(
                doc["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("bad token ***"),
                "{doc}"
            );
        }
    }
    // The real value was sent where it belongs.
    let first = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        first.headers.get("authorization").unwrap(),
        &format!("Bearer {secret}")
    );
}

#[tokio::test]
async fn dry_run_sends_reads_but_shows_writes_instead() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/ann"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: s
env: [TOKEN]
steps:
  - id: find
    http: {{ method: GET, url: "{uri}/users/ann" }}
  - id: qualify
    http:
      method: PUT
      url: "{uri}/qualification"
      headers: {{ Authorization: "Bearer {{{{ env.TOKEN }}}}" }}
      json: {{ identifier: "{{{{ steps.find.body.id }}}}", qualified: true }}
"#,
        uri = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let out = Scenarist::new()
        .args(["run", "--dry-run", "--output", "json"])
        .arg_path(&file)
        .env("TOKEN", "tok-123456")
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "only the GET was sent");
    let doc = out.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["steps"]["qualify"]["status"], "skipped");
    let execution_id: uuid::Uuid = doc["execution_id"].as_str().unwrap().parse().unwrap();
    let key = scenarist::engine::idempotency_key(execution_id, "qualify");
    assert_eq!(
        doc["steps"]["qualify"]["output"]["request"],
        json!({
            "method": "PUT",
            "url": format!("{}/qualification", server.uri()),
            "headers": {"Authorization": "Bearer ***", "Idempotency-Key": key},
            "body": {"identifier": "u1", "qualified": true},
        })
    );
    assert!(
        out.stderr.contains("PUT ") && out.stderr.contains("(dry run: not sent)"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn on_error_continue_uses_the_fallback_and_break_is_incomplete() {
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: s
steps:
  - id: enrich
    on_error: continue
    fallback: {{ segment: unknown }}
    http: {{ url: "{uri}/down" }}
  - id: use
    set: {{ segment: "{{{{ steps.enrich.segment }}}}" }}
  - id: must_work
    on_error: break
    http: {{ url: "{uri}/down" }}
  - id: never
    set: {{ a: 1 }}
"#,
        uri = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let out = Scenarist::new()
        .args(["run", "--output", "json"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1, "incomplete exits 1");
    let doc = out.json();
    assert_eq!(doc["status"], "incomplete");
    assert_eq!(doc["steps"]["enrich"]["status"], "failed");
    assert_eq!(doc["steps"]["use"]["output"], json!({"segment": "unknown"}));
    assert_eq!(doc["error"]["step"], "must_work");
    assert!(doc["steps"].get("never").is_none());
}

#[tokio::test]
async fn headers_query_and_connection_settings_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users"))
        .and(header("x-api-key", "k-1"))
        .and(header("x-step", "yes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: s
connections:
  api:
    base_url: "{uri}/"
    headers: {{ X-Api-Key: k-1 }}
    query: {{ campaign: 7 }}
steps:
  - id: list
    http:
      connection: api
      path: /api/v2/users
      headers: {{ X-Step: "yes" }}
      query: {{ email: "a+b@example.com", tag: [x, y] }}
"#,
        uri = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let out = Scenarist::new().args(["run"]).arg_path(&file).run().await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        request.url.query(),
        Some("campaign=7&email=a%2Bb%40example.com&tag=x&tag=y")
    );
}
