//! Durable executions: crash and resume, concurrency on one SQLite file,
//! replay, prune, redaction in the store, and refusing foreign files.

use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{fixture, scenario_file, Scenarist};

/// Four POSTs in a row; each answers with something the next step uses.
fn four_posts(uri: &str) -> String {
    format!(
        r#"name: four-posts
steps:
  - id: one
    http: {{ method: POST, url: "{uri}/one", json: {{ n: 1 }} }}
  - id: two
    http: {{ method: POST, url: "{uri}/two", json: {{ prev: "{{{{ steps.one.body.id }}}}" }} }}
  - id: three
    http: {{ method: POST, url: "{uri}/three", json: {{ prev: "{{{{ steps.two.body.id }}}}" }} }}
  - id: four
    http: {{ method: POST, url: "{uri}/four", json: {{ prev: "{{{{ steps.three.body.id }}}}" }} }}
"#
    )
}

const STEPS: [&str; 4] = ["one", "two", "three", "four"];

async fn requests_to(server: &MockServer, step: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == format!("/{step}"))
        .collect()
}

fn key_of(request: &wiremock::Request) -> String {
    request
        .headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn store_url(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}",
        dir.path().join("store/scenarist.db").display()
    )
}

#[tokio::test]
async fn a_killed_run_resumes_at_the_step_it_was_in_without_resending_earlier_ones() {
    for (stalled_index, stalled) in STEPS.iter().enumerate() {
        let server = MockServer::start().await;
        // The first request to the stalled step hangs; the process is killed while it waits.
        Mock::given(method("POST"))
            .and(path(format!("/{stalled}")))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        for step in STEPS {
            Mock::given(method("POST"))
                .and(path(format!("/{step}")))
                .respond_with(
                    ResponseTemplate::new(201)
                        .set_body_json(serde_json::json!({ "id": format!("{step}-id") })),
                )
                .with_priority(2)
                .mount(&server)
                .await;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = scenario_file(&dir, "four.yaml", &four_posts(&server.uri()));
        let store = store_url(&dir);
        let mut child = Scenarist::new()
            .args(["run"])
            .arg_path(&file)
            .env("SCENARIST_STORE", &store)
            .spawn();
        let mut waited = 0;
        while requests_to(&server, stalled).await.is_empty() {
            assert!(waited < 300, "step {stalled} was never called");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("wait");
        assert!(!status.success(), "the run was killed");

        let listed = Scenarist::new()
            .args(["executions", "list", "--output", "json"])
            .env("SCENARIST_STORE", &store)
            .run()
            .await;
        assert_eq!(listed.json()[0]["status"], "running", "{}", listed.stdout);

        let resumed = Scenarist::new()
            .args(["resume"])
            .env("SCENARIST_STORE", &store)
            .run()
            .await;
        assert_eq!(
            resumed.code, 0,
            "resume after a kill in {stalled}:\n{}",
            resumed.stderr
        );

        for (index, step) in STEPS.iter().enumerate() {
            let sent = requests_to(&server, step).await;
            if index == stalled_index {
                assert_eq!(sent.len(), 2, "{step}: the stalled request and its resume");
                assert_eq!(
                    key_of(&sent[0]),
                    key_of(&sent[1]),
                    "{step}: same Idempotency-Key"
                );
                assert!(!key_of(&sent[0]).is_empty());
            } else {
                assert_eq!(
                    sent.len(),
                    1,
                    "{step} was sent exactly once (kill in {stalled})"
                );
            }
        }
        let id = listed.json()[0]["id"].as_str().unwrap().to_owned();
        let shown = Scenarist::new()
            .args(["executions", "show", &id[..13], "--output", "json"])
            .env("SCENARIST_STORE", &store)
            .run()
            .await;
        let doc = shown.json();
        assert_eq!(doc["status"], "succeeded");
        assert_eq!(doc["attempt"], 2);
        let steps = doc["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 4);
        for (record, step) in steps.iter().zip(STEPS) {
            assert_eq!(record["path"], step);
            assert_eq!(record["status"], "succeeded");
            assert_eq!(record["output"]["body"]["id"], format!("{step}-id"));
        }
        // Nothing left to do.
        let again = Scenarist::new()
            .args(["resume"])
            .env("SCENARIST_STORE", &store)
            .run()
            .await;
        assert!(
            again.stderr.contains("nothing to resume"),
            "{}",
            again.stderr
        );
    }
}

#[tokio::test]
async fn eight_processes_share_one_store_file_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir);
    let scenario = fixture("valid/ten-steps.yaml");
    let input = fixture("valid/ten-steps.input.json");
    let runs = (0..8).map(|_| {
        Scenarist::new()
            .args(["run", "--input"])
            .arg_path(&input)
            .arg_path(&scenario)
            .env("SCENARIST_STORE", &store)
            .run()
    });
    let outputs = futures::future::join_all(runs).await;
    for out in &outputs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stderr.contains("locked"), "{}", out.stderr);
    }
    let listed = Scenarist::new()
        .args(["executions", "list", "--output", "json"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    let rows = listed.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        assert_eq!(row["status"], "succeeded");
        let shown = Scenarist::new()
            .args([
                "executions",
                "show",
                row["id"].as_str().unwrap(),
                "--output",
                "json",
            ])
            .env("SCENARIST_STORE", &store)
            .run()
            .await;
        // 10 top-level steps, 2 routes taken, 10 loop iterations.
        assert_eq!(shown.json()["steps"].as_array().unwrap().len(), 22);
    }
}

#[tokio::test]
async fn replay_starts_a_new_execution_with_the_same_trigger() {
    let server = MockServer::start().await;
    Mock::given(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let yaml = format!(
        "name: echo\nsteps:\n  - id: send\n    http: {{ method: POST, url: \"{}/hook\", json: \"{{{{ trigger.body }}}}\" }}\n",
        server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "echo.yaml", &yaml);
    let store = store_url(&dir);
    let first = Scenarist::new()
        .args(["run", "--output", "json", "--input", "-"])
        .arg_path(&file)
        .stdin(r#"{"referral_id": "r-42"}"#)
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let original = first.json()["execution_id"].as_str().unwrap().to_owned();
    // The file may change or vanish: the replay uses the stored version.
    std::fs::remove_file(&file).unwrap();
    let replayed = Scenarist::new()
        .args(["replay", &original, "--output", "json"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let new_id = replayed.json()["execution_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, original);
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body, serde_json::json!({ "referral_id": "r-42" }));
    }
    assert_ne!(
        key_of(&sent[0]),
        key_of(&sent[1]),
        "a replay is a new request"
    );
    let shown = Scenarist::new()
        .args(["executions", "show", &new_id, "--output", "json"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(shown.json()["replay_of"], original.as_str());
}

#[tokio::test]
async fn secrets_never_reach_the_store_file() {
    let secret = "sk_live_store_secret_98765";
    let server = MockServer::start().await;
    Mock::given(path("/echo"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "echo": format!("token={secret}") })),
        )
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: secretive
env: [API_TOKEN]
steps:
  - id: keep
    set: {{ token: "{{{{ env.API_TOKEN }}}}" }}
  - id: call
    http:
      method: POST
      url: "{uri}/echo?key={{{{ env.API_TOKEN }}}}"
      headers: {{ Authorization: "Bearer {{{{ env.API_TOKEN }}}}" }}
      json: {{ token: "{{{{ env.API_TOKEN }}}}" }}
  - id: remember
    store: {{ name: tokens, put: "t-{{{{ env.API_TOKEN }}}}", value: "{{{{ env.API_TOKEN }}}}" }}
  - id: boom
    fail: {{ message: "failed with {{{{ env.API_TOKEN }}}}" }}
"#,
        uri = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", &yaml);
    let store = store_url(&dir);
    let out = Scenarist::new()
        .args(["run", "--input", "-"])
        .arg_path(&file)
        .stdin(format!(r#"{{"note": "{secret}"}}"#))
        .env("API_TOKEN", secret)
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let store_dir = dir.path().join("store");
    let mut checked = 0;
    for entry in std::fs::read_dir(&store_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        checked += bytes.len();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in the store files"
        );
    }
    assert!(checked > 0);
    let shown = Scenarist::new()
        .args(["executions", "list", "--output", "json"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert!(shown.stdout.contains("failed with ***"), "{}", shown.stdout);
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = fixture("valid/ten-steps.yaml");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "shopping list: milk, eggs\n".repeat(200)).unwrap();
    let foreign_db = dir.path().join("crm.db");
    {
        let conn = rusqlite::Connection::open(&foreign_db).unwrap();
        conn.execute_batch("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO contacts (email) VALUES ('a@b.c');").unwrap();
    }
    let cases = [
        (
            text_file.clone(),
            "is not a scenarist store: it is not an SQLite database",
        ),
        (
            foreign_db.clone(),
            "is not a scenarist store: it is an SQLite database with other tables (contacts)",
        ),
        (dir.path().to_path_buf(), "it is a directory"),
    ];
    for (target, expected) in cases {
        let before = std::fs::read(&target).ok();
        let out = Scenarist::new()
            .args(["run"])
            .arg_path(&scenario)
            .env("SCENARIST_STORE", format!("sqlite://{}", target.display()))
            .run()
            .await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(expected), "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(!out.stderr.contains("▶"), "nothing ran: {}", out.stderr);
        assert_eq!(std::fs::read(&target).ok(), before, "left untouched");
    }
    // A store written by a newer scenarist.
    let newer = dir.path().join("newer.db");
    let url = format!("sqlite://{}", newer.display());
    let first = Scenarist::new()
        .args(["run", "--input"])
        .arg_path(&fixture("valid/ten-steps.input.json"))
        .arg_path(&scenario)
        .env("SCENARIST_STORE", &url)
        .run()
        .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let out = Scenarist::new()
        .args(["executions", "list"])
        .env("SCENARIST_STORE", &url)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("written by a newer scenarist (store schema 99"),
        "{}",
        out.stderr
    );
    let bad_url = Scenarist::new()
        .args(["executions", "list", "--store", "mysql://x"])
        .run()
        .await;
    assert_eq!(bad_url.code, 2);
    assert!(
        bad_url.stderr.contains("use sqlite://PATH"),
        "{}",
        bad_url.stderr
    );
    // A PostgreSQL server that is not there (port 1 on loopback): a clear error.
    let unreachable = Scenarist::new()
        .args([
            "executions",
            "list",
            "--store",
            "postgres://ops:pw@127.0.0.1:1/db",
        ])
        .run()
        .await;
    assert_eq!(unreachable.code, 2);
    assert!(
        unreachable.stderr.contains("PostgreSQL is unreachable")
            && unreachable.stderr.contains("ops:***@127.0.0.1:1"),
        "{}",
        unreachable.stderr
    );
}

#[tokio::test]
async fn only_incomplete_executions_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir);
    let out = Scenarist::new()
        .args(["run", "--output", "json", "--input"])
        .arg_path(&fixture("valid/ten-steps.input.json"))
        .arg_path(&fixture("valid/ten-steps.yaml"))
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    let id = out.json()["execution_id"].as_str().unwrap().to_owned();
    let retry = Scenarist::new()
        .args(["executions", "retry", &id])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(retry.code, 2);
    assert!(
        retry
            .stderr
            .contains("is succeeded: only incomplete executions"),
        "{}",
        retry.stderr
    );
    assert!(
        retry.stderr.contains("scenarist replay"),
        "{}",
        retry.stderr
    );
    let missing = Scenarist::new()
        .args(["executions", "show", "ffff"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("no execution has an id starting with `ffff`"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn prune_from_the_command_line_keeps_recent_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir);
    let run = Scenarist::new()
        .args(["run", "--input"])
        .arg_path(&fixture("valid/ten-steps.input.json"))
        .arg_path(&fixture("valid/ten-steps.yaml"))
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pruned = Scenarist::new()
        .args(["prune", "--older-than", "30d"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(
        pruned
            .stdout
            .contains("deleted 0 execution(s) and 0 event(s)"),
        "{}",
        pruned.stdout
    );
    let bad = Scenarist::new()
        .args(["prune", "--older-than", "soon"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--older-than"), "{}", bad.stderr);
    let listed = Scenarist::new()
        .args(["executions", "list", "--output", "json"])
        .env("SCENARIST_STORE", &store)
        .run()
        .await;
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
}
