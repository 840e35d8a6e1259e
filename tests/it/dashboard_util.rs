//! A daemon serving two scenarios for the dashboard's tests, with a real
//! rewards API (wiremock) behind it, and an HTTP client that keeps the
//! dashboard's session cookie and reads CSRF tokens from its forms.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon_util::{eventually, serve, ServeOptions, Served};
use crate::util::scenario_file;

/// The secret the scenarios send as a Bearer token: no page may show it.
pub const SECRET: &str = "s3cr3t-reward-token-91";

/// `reward`: a won deal's reward, reviewed above 1000, keyed by the lead's
/// email. `flaky`: one POST that stops the execution as `incomplete` while
/// the API answers 503. `journey`: waits for the lead's `deal.closed_won`.
fn scenarios(api: &str) -> [(&'static str, String); 3] {
    let reward = format!(
        r#"name: reward
owner: ops@example.com
tags: [referrals]
description: Reward the referrer of a won deal.
env: [REWARD_TOKEN]
trigger: {{ webhook: {{ path: deals/won }} }}
settings:
  keys: {{ lead: "{{{{ lower trigger.body.email }}}}" }}
steps:
  - id: amount
    set: {{ value: "{{{{ trigger.body.amount }}}}" }}
  - id: review
    when: {{ value: "{{{{ trigger.body.amount }}}}", gt: 1000 }}
    approval: {{ message: "Reward for {{{{ trigger.body.email }}}}", timeout: 72h, approvers: [olivia, sam] }}
  - id: issue
    http:
      method: POST
      url: "{api}/rewards"
      headers: {{ Authorization: "Bearer {{{{ env.REWARD_TOKEN }}}}" }}
      json: {{ email: "{{{{ trigger.body.email }}}}", token_echo: "{{{{ env.REWARD_TOKEN }}}}" }}
  - id: issued
    record: {{ event: reward_issued, key: "{{{{ lower trigger.body.email }}}}", value: "{{{{ trigger.body.amount }}}}" }}
"#
    );
    let flaky = format!(
        r#"name: flaky
trigger: {{ webhook: {{ path: flaky/go }} }}
settings:
  keys: {{ lead: "{{{{ trigger.body.email }}}}" }}
  retry_incomplete: []
steps:
  - id: call
    on_error: break
    retry: {{ attempts: 1 }}
    http: {{ method: POST, url: "{api}/flaky", json: {{ n: "{{{{ trigger.body.n }}}}" }} }}
"#
    );
    let journey = r#"name: journey
trigger: { webhook: { path: trials/started } }
settings:
  keys: { lead: "{{ trigger.body.email }}" }
steps:
  - id: milestone
    wait_for: { event: deal.closed_won, key: "{{ trigger.body.email }}", timeout: 90d }
  - id: done
    set: { amount: "{{ steps.milestone.data.amount }}" }
"#
    .to_owned();
    [
        ("reward.yaml", reward),
        ("flaky.yaml", flaky),
        ("journey.yaml", journey),
    ]
}

pub struct Dashboard {
    pub daemon: Served,
    pub api: MockServer,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// The session cookie (`name=value`), once the dashboard gave one.
    pub cookie: std::sync::Mutex<Option<String>>,
}

/// The rewards API answers 201; `/flaky` answers 503 until [`Dashboard::heal`].
pub async fn start(env: Vec<(String, String)>) -> Dashboard {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rewards"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "ok": true })))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(10)
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    for (name, yaml) in scenarios(&api.uri()) {
        scenario_file(&dir, name, &yaml);
    }
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut env = env;
    env.push(("REWARD_TOKEN".to_owned(), SECRET.to_owned()));
    let daemon = serve(&ServeOptions {
        dir: dir.path(),
        store: &store,
        args: vec![],
        env,
        log: dir.path().join("daemon.log"),
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Dashboard {
        daemon,
        api,
        dir,
        http,
        cookie: Default::default(),
    }
}

/// A page as the tests read it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .expect("a form with a CSRF token");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Dashboard {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.daemon.url)
    }

    async fn read(&self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookie.lock().unwrap().clone();
        let request = match cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.expect("the daemon answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap().to_owned();
            *self.cookie.lock().unwrap() = Some(pair).filter(|p| !p.ends_with('='));
        }
        Page {
            status: response.status().as_u16(),
            location,
            set_cookie,
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.read(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.read(self.http.post(self.url(path)).form(form)).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self.http.post(self.url(path)).form(form);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.read(request).await
    }

    /// Sends a webhook event; returns the execution id.
    pub async fn send(&self, hook: &str, body: Value) -> String {
        let response = self
            .http
            .post(self.url(&format!("/hooks/{hook}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202, "webhook accepted");
        let answer: Value = response.json().await.unwrap();
        answer["execution_id"].as_str().unwrap().to_owned()
    }

    /// A won deal of `amount` for the lead `email` (reviewed above 1000).
    pub async fn reward(&self, email: &str, amount: u32) -> String {
        self.send("deals/won", json!({ "email": email, "amount": amount }))
            .await
    }

    /// The execution as `GET /api/executions/ID` shows it.
    pub async fn execution(&self, id: &str) -> Value {
        self.http
            .get(self.url(&format!("/api/executions/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn status(&self, id: &str) -> String {
        let shown = self.execution(id).await;
        shown["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the execution is in `status` (at most 20 s).
    pub async fn until_status(&self, id: &str, status: &str) {
        let reached = eventually(20, || async { self.status(id).await == status }).await;
        assert!(
            reached,
            "execution {id} is {} (wanted {status})\n{}",
            self.status(id).await,
            self.daemon.log()
        );
    }

    /// From now on `/flaky` answers 200.
    pub async fn heal(&self) {
        Mock::given(method("POST"))
            .and(path("/flaky"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
            .with_priority(1)
            .mount(&self.api)
            .await;
    }
}
