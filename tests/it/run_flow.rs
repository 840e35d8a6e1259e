//! `scenarist run` on flows without network: routes, loops, filters, inputs, exit codes.

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{fixture, scenario_file, Scenarist};

#[tokio::test]
async fn the_ten_step_scenario_runs_end_to_end() {
    let out = Scenarist::new()
        .args([
            "run",
            "tests/fixtures/valid/ten-steps.yaml",
            "--input",
            "tests/fixtures/valid/ten-steps.input.json",
            "--output",
            "json",
        ])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["scenario"], "ten-steps");
    assert_eq!(
        doc["steps"]["normalize"]["output"]["email"],
        "ann@example.com"
    );
    assert_eq!(doc["steps"]["skus"]["output"]["first"], "SKU-0");
    assert_eq!(
        doc["steps"]["skus"]["output"]["all"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        doc["steps"]["route"]["output"],
        json!(["enterprise", "high_value"]),
        "mode all takes every match"
    );
    assert!(
        doc["steps"].get("tag_other").is_none(),
        "the fallback runs only when nothing matched"
    );
    let lines = doc["steps"]["lines"]["output"].as_array().unwrap();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[3],
        json!({"sku": "SKU-3", "total": 13, "label": "SKU-3-3"})
    );
    assert_eq!(doc["steps"]["line#9"]["status"], "succeeded");
    assert_eq!(doc["steps"]["reward"]["output"]["amount"], 150);
    assert_eq!(
        doc["response"]["body"]["summary"],
        "ann@example.com earned 150 on 10 lines"
    );
    for key in ["execution_id", "started_at", "finished_at"] {
        assert!(doc[key].is_string(), "{key}");
    }
    assert!(doc["steps"]["lines"]["duration_ms"].is_u64());
}

#[tokio::test]
async fn input_schema_violations_are_all_listed_and_nothing_runs() {
    let server = MockServer::start().await;
    let yaml = format!(
        r#"name: s
input:
  schema:
    type: object
    required: [email, amount]
    properties: {{ email: {{ type: string }}, amount: {{ type: number, minimum: 0 }} }}
steps:
  - id: call
    http: {{ method: POST, url: "{}/x" }}
"#,
        server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let out = Scenarist::new()
        .args(["run", "--input", "-"])
        .arg_path(&file)
        .stdin(r#"{"amount": -5}"#)
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("\"email\" is a required property"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("/amount: -5 is less than the minimum of 0"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing ran"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_filter_ends_the_execution_as_filtered_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        "name: s\nsteps:\n  - id: won\n    filter: { value: \"{{ trigger.body.stage }}\", equals: closed_won }\n  - id: after\n    set: { a: 1 }\n",
    );
    let out = Scenarist::new()
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&file)
        .stdin(r#"{"stage": "lost"}"#)
        .run()
        .await;
    assert_eq!(out.code, 0);
    let doc = out.json();
    assert_eq!(doc["status"], "filtered");
    assert_eq!(doc["steps"]["won"]["status"], "filtered");
    assert!(doc["steps"].get("after").is_none());
}

#[tokio::test]
async fn a_fail_step_runs_on_failure_with_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: s
steps:
  - id: check
    fail: {{ message: "deal {{{{ trigger.body.deal }}}} has no contact" }}
on_failure:
  - id: notify
    http: {{ method: POST, url: "{}/chat", json: {{ text: "{{{{ error.step }}}}: {{{{ error.message }}}}" }} }}
"#,
        server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let out = Scenarist::new()
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&file)
        .stdin(r#"{"deal": 42}"#)
        .run()
        .await;
    assert_eq!(out.code, 1);
    let doc = out.json();
    assert_eq!(doc["status"], "failed");
    assert_eq!(
        doc["error"],
        json!({"step": "check", "message": "deal 42 has no contact"})
    );
    assert_eq!(doc["steps"]["notify"]["status"], "succeeded");
    let body: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body, json!({"text": "check: deal 42 has no contact"}));
}

#[tokio::test]
async fn a_condition_that_is_not_true_or_false_is_an_error_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", "name: s\nsteps:\n  - id: gate\n    when: \"{{ trigger.body.stage }}\"\n    set: { a: 1 }\n");
    let out = Scenarist::new()
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&file)
        .stdin(r#"{"stage": "won"}"#)
        .run()
        .await;
    assert_eq!(out.code, 1);
    let doc = out.json();
    assert_eq!(doc["error"]["step"], "gate");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must give true or false, but gave \"won\""),
        "{doc}"
    );
}

#[tokio::test]
async fn a_missing_value_is_an_error_that_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", "name: s\nsteps:\n  - id: shape\n    set: { email: \"{{ trigger.body.contact.emial }}\" }\n");
    let out = Scenarist::new()
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&file)
        .stdin(r#"{"contact": {"email": "a@b.c", "id": 1}}"#)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.json()["error"]["message"],
        "`trigger.body.contact.emial` is missing; did you mean `trigger.body.contact.email`? (`trigger.body.contact` has: email, id)"
    );
}

#[tokio::test]
async fn vars_can_be_overridden_and_env_must_be_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", "name: s\nvars: { limit: 10 }\nsteps:\n  - id: a\n    set: { limit: \"{{ vars.limit }}\" }\n");
    let out = Scenarist::new()
        .args(["run", "--var", "limit=25", "--output", "json"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["steps"]["a"]["output"]["limit"], 25);
    let out = Scenarist::new()
        .args(["run", "--var", "limt=25"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown var `limt`"), "{}", out.stderr);

    let file = scenario_file(&dir, "e.yaml", "name: e\nenv: [MISSING_TOKEN_X]\nsteps:\n  - id: a\n    set: { t: \"{{ env.MISSING_TOKEN_X }}\" }\n");
    let out = Scenarist::new().args(["run"]).arg_path(&file).run().await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not set: MISSING_TOKEN_X"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn router_first_takes_one_route_and_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        r#"name: s
steps:
  - id: route
    router:
      routes:
        - name: big
          when: { value: "{{ trigger.body.n }}", gt: 5 }
          steps: [ { id: big_step, set: { r: big } } ]
        - name: bigger
          when: { value: "{{ trigger.body.n }}", gt: 50 }
          steps: [ { id: bigger_step, set: { r: bigger } } ]
        - name: rest
          steps: [ { id: rest_step, set: { r: rest } } ]
"#,
    );
    for (n, routes) in [(100, json!(["big"])), (1, json!(["rest"]))] {
        let out = Scenarist::new()
            .args(["run", "--input", "-", "--output", "json"])
            .arg_path(&file)
            .stdin(format!(r#"{{"n": {n}}}"#))
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["steps"]["route"]["output"], routes);
    }
}

#[tokio::test]
async fn for_each_with_concurrency_keeps_the_order_of_items() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_millis(100)))
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: s
steps:
  - id: each
    for_each:
      items: "{{{{ trigger.body.ids }}}}"
      as: id
      concurrency: 4
      steps:
        - id: send
          http: {{ method: POST, url: "{}/item/{{{{ id }}}}" }}
      collect: "{{{{ id }}}}-{{{{ steps.send.status }}}}"
"#,
        server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let started = std::time::Instant::now();
    let out = Scenarist::new()
        .args(["run", "--input", "-", "--output", "json"])
        .arg_path(&file)
        .stdin(r#"{"ids": [1,2,3,4,5,6,7,8]}"#)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected: Vec<String> = (1..=8).map(|i| format!("{i}-200")).collect();
    assert_eq!(out.json()["steps"]["each"]["output"], json!(expected));
    assert_eq!(server.received_requests().await.unwrap().len(), 8);
    // 8 calls of 100ms, 4 at a time: about 200ms, far from 800ms in sequence.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(790),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn graph_draws_routes_and_loops() {
    let out = Scenarist::new()
        .args(["graph", "scenarios/route-referred-lead.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("flowchart TD"));
    assert!(out.stdout.contains("enterprise"));
    let out = Scenarist::new()
        .args(["graph", "--format", "dot"])
        .arg_path(&fixture("valid/ten-steps.yaml"))
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("digraph"));
}
