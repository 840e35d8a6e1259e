//! The world the wait tests run in: a folder of scenarios, a SQLite store,
//! a local server standing in for the referral engine, and the daemon, the
//! CLI and the admin API to drive them.

use std::path::PathBuf;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon_util::{eventually, serve, ServeOptions, Served};
use crate::util::Scenarist;

/// A sign-up waits for its deal, then qualifies the referral downstream.
pub fn journey(uri: &str, wait_extra: &str, before: &str) -> String {
    format!(
        r#"name: journey
trigger:
  webhook: {{ path: /signup }}
steps:
  - id: lead
    set: {{ email: "{{{{ trigger.body.email }}}}" }}
{before}
  - id: deal_won
    wait_for:
      event: deal.closed_won
      key: "{{{{ steps.lead.email }}}}"
{wait_extra}
  - id: qualify
    when: "{{{{ not steps.deal_won.timed_out }}}}"
    http: {{ method: POST, url: "{uri}/qualify", json: {{ email: "{{{{ steps.lead.email }}}}", amount: "{{{{ steps.deal_won.data.amount }}}}" }} }}
"#
    )
}

pub struct World {
    dir: tempfile::TempDir,
    store: String,
    pub server: MockServer,
}

impl World {
    pub async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        let store = format!("sqlite://{}", dir.path().join("s.db").display());
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/qualify"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
            .mount(&server)
            .await;
        World { dir, store, server }
    }

    pub fn scenarios(&self) -> PathBuf {
        self.dir.path().join("scenarios")
    }

    pub fn write(&self, name: &str, yaml: &str) {
        std::fs::write(self.scenarios().join(name), yaml).unwrap();
    }

    pub async fn serve(&self) -> Served {
        serve(&ServeOptions {
            dir: &self.scenarios(),
            store: &self.store,
            args: vec![],
            env: vec![],
            log: self.dir.path().join("daemon.log"),
        })
        .await
    }

    pub fn cli(&self) -> Scenarist {
        Scenarist::new().env("SCENARIST_STORE", self.store.clone())
    }

    pub async fn qualified(&self) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/qualify")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// The distinct Idempotency-Keys of the qualifications sent: a request
    /// sent again after a crash carries the same key and counts once.
    pub async fn qualified_keys(&self) -> std::collections::HashSet<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/qualify")
            .filter_map(|r| {
                r.headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .collect()
    }

    pub async fn execution(&self, id: &str) -> Value {
        let out = self
            .cli()
            .args(["executions", "show", id, "--output", "json"])
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    pub async fn status(&self, id: &str) -> String {
        self.execution(id).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn waits(&self, args: &[&str]) -> Vec<Value> {
        let out = self
            .cli()
            .args(["waits", "--output", "json"])
            .args(args)
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json().as_array().cloned().unwrap_or_default()
    }

    pub async fn emit(&self, event: &str, key: &str, data: Value) -> Value {
        let out = self
            .cli()
            .args(["emit", event, key, "--output", "json", "--data"])
            .args([data.to_string()])
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
    }

    pub async fn wait_status(&self, id: &str, status: &str, seconds: u64) {
        let ok = eventually(seconds, || async { self.status(id).await == status }).await;
        assert!(
            ok,
            "execution {id} did not become {status}: {:#}",
            self.execution(id).await
        );
    }
}

/// POSTs a webhook and returns the execution id of its 202.
pub async fn hook(daemon: &Served, path: &str, body: Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/hooks/{path}", daemon.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["execution_id"].as_str().unwrap().to_owned()
}

pub async fn signup(daemon: &Served, email: &str) -> String {
    hook(daemon, "signup", json!({ "email": email })).await
}

pub async fn api_emit(daemon: &Served, event: &str, key: &str, data: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/api/events", daemon.url))
        .json(&json!({ "event": event, "key": key, "data": data }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

pub async fn until_waiting(world: &World, id: &str) {
    let ok = eventually(20, || async {
        world
            .waits(&[])
            .await
            .iter()
            .any(|w| w["execution_id"] == id)
    })
    .await;
    assert!(
        ok,
        "execution {id} never waited: {:#}",
        world.execution(id).await
    );
}
