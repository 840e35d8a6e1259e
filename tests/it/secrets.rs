//! No secret value leaves the daemon: it runs at trace level with JSON logs
//! through authenticated webhooks, HTTP steps that send secrets in a
//! header, the body and the URL query, retries against a server that
//! echoes them back in its errors, a failure and its `on_failure` handler;
//! then its logs, its store file, its API, its metrics and its dashboard
//! are searched for every secret, whole or in part.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::daemon_util::{eventually, serve, ServeOptions};

/// The webhook's shared token (token auth).
const HOOK_TOKEN: &str = "s3cr3t-hook-token-XYZ";
/// The webhook's HMAC key (never sent; only signatures are).
const HOOK_HMAC: &str = "s3cr3t-hmac-key-XYZ";
/// Sent as a Bearer token and inside the JSON body.
const API_TOKEN: &str = "s3cr3t-token-XYZ";
/// Sent in the URL query.
const QUERY_KEY: &str = "s3cr3t-query-key-XYZ";
/// Used by the `on_failure` handler only.
const ALERT_TOKEN: &str = "s3cr3t-alert-token-XYZ";

const SECRETS: [&str; 5] = [HOOK_TOKEN, HOOK_HMAC, API_TOKEN, QUERY_KEY, ALERT_TOKEN];

/// A part of a secret this long is a leak too: a truncated message that
/// cut a secret in two would otherwise escape the search.
const WINDOW: usize = 10;

/// The secrets (or parts of them) found in `text`.
fn leaks(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in SECRETS {
        for start in 0..=secret.len() - WINDOW {
            let part = &secret[start..start + WINDOW];
            if text.contains(part) {
                found.push(format!("{part:?} (of {secret:?})"));
                break;
            }
        }
    }
    found
}

fn scenarios(api: &str) -> [(&'static str, String); 2] {
    let charge = format!(
        r#"name: charge
env: [HOOK_TOKEN, API_TOKEN, QUERY_KEY]
trigger:
  webhook:
    path: billing/charge
    auth: {{ token: {{ header: X-Hook-Token, secret: "{{{{ env.HOOK_TOKEN }}}}" }} }}
settings:
  keys: {{ lead: "{{{{ trigger.body.email }}}}", token: "{{{{ env.API_TOKEN }}}}" }}
steps:
  - id: charge
    retry: {{ attempts: 4, initial: 10ms }}
    http:
      method: POST
      url: "{api}/charge?api_key={{{{ env.QUERY_KEY }}}}"
      headers: {{ Authorization: "Bearer {{{{ env.API_TOKEN }}}}" }}
      json: {{ email: "{{{{ trigger.body.email }}}}", token: "{{{{ env.API_TOKEN }}}}" }}
  - id: noted
    set: {{ echoed: "{{{{ steps.charge.body.echo }}}}", query: "{{{{ trigger.query.api_key }}}}" }}
"#
    );
    let refund = format!(
        r#"name: refund
env: [HOOK_HMAC, API_TOKEN, QUERY_KEY, ALERT_TOKEN]
trigger:
  webhook:
    path: billing/refund
    auth: {{ hmac_sha256: {{ header: X-Signature, secret: "{{{{ env.HOOK_HMAC }}}}", prefix: "sha256=" }} }}
steps:
  - id: refund
    retry: {{ attempts: 3, initial: 10ms }}
    http:
      method: POST
      url: "{api}/refund?api_key={{{{ env.QUERY_KEY }}}}"
      headers: {{ Authorization: "Bearer {{{{ env.API_TOKEN }}}}" }}
      json: {{ token: "{{{{ env.API_TOKEN }}}}" }}
on_failure:
  - id: alert
    http:
      method: POST
      url: "{api}/alert?token={{{{ env.ALERT_TOKEN }}}}"
      headers: {{ X-Alert-Token: "{{{{ env.ALERT_TOKEN }}}}" }}
      json: {{ text: "refund failed at {{{{ error.step }}}}: {{{{ error.message }}}} (alert {{{{ env.ALERT_TOKEN }}}})" }}
"#
    );
    [("charge.yaml", charge), ("refund.yaml", refund)]
}

/// `/charge` fails twice (the first error body, long and plain, ends with the
/// token the request carried, the second is JSON with the query key), then
/// succeeds echoing the token in a header and the body; `/refund` always
/// fails echoing both, the last time with the long body; `/alert` echoes
/// its token.
async fn downstream() -> MockServer {
    let server = MockServer::start().await;
    // A step's error quotes the first 200 characters of the body: this one
    // is cut inside the token it ends with.
    let padding = "every header and field was checked; ".repeat(4);
    let long = format!(
        "upstream refused the request: {} Authorization: Bearer {API_TOKEN} (request id 7f3a)",
        &padding[..133]
    );
    assert_eq!(long.find(API_TOKEN), Some(186), "{long}");
    Mock::given(method("POST"))
        .and(path("/charge"))
        .respond_with(ResponseTemplate::new(500).set_body_string(long.clone()))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/charge"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({ "error": "bad key", "api_key": QUERY_KEY })),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/charge"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-echo-token", API_TOKEN)
                .set_body_json(json!({ "ok": true, "echo": API_TOKEN })),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/refund"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({ "error": "refund refused", "token": API_TOKEN, "api_key": QUERY_KEY }),
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    // The last attempt's error is the one stored and handed to on_failure.
    Mock::given(method("POST"))
        .and(path("/refund"))
        .respond_with(ResponseTemplate::new(500).set_body_string(long.clone()))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/alert"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-echo-alert", ALERT_TOKEN)
                .set_body_json(json!({ "posted": ALERT_TOKEN })),
        )
        .mount(&server)
        .await;
    server
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_HMAC.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn requests_to(server: &MockServer, to: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == to)
        .collect()
}

fn header(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The store file and its write-ahead log, as bytes read as text.
fn store_bytes(dir: &Path) -> String {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("store.db") {
            all.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn no_secret_leaves_the_daemon_through_logs_store_api_metrics_or_dashboard() {
    let api = downstream().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("scenarios");
    std::fs::create_dir(&folder).unwrap();
    for (name, yaml) in scenarios(&api.uri()) {
        std::fs::write(folder.join(name), yaml).unwrap();
    }
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let env = [
        ("HOOK_TOKEN", HOOK_TOKEN),
        ("HOOK_HMAC", HOOK_HMAC),
        ("API_TOKEN", API_TOKEN),
        ("QUERY_KEY", QUERY_KEY),
        ("ALERT_TOKEN", ALERT_TOKEN),
        ("SCENARIST_LOG", "trace"),
        ("RUST_LOG", "trace"),
    ];
    let daemon = serve(&ServeOptions {
        dir: &folder,
        store: &store,
        args: vec!["--log-format".to_owned(), "json".to_owned()],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        log: dir.path().join("daemon.log"),
    })
    .await;
    let client = reqwest::Client::new();

    // A wrong token is refused; the right one, with the query key in the
    // webhook's own URL too, is accepted.
    let charge = format!("{}/hooks/billing/charge", daemon.url);
    let refused = client
        .post(&charge)
        .header("X-Hook-Token", "not-the-token")
        .body(r#"{"email":"lee@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = client
        .post(format!("{charge}?api_key={QUERY_KEY}"))
        .header("X-Hook-Token", HOOK_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"email":"lee@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let charged = accepted.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = br#"{"order":"R-1"}"#;
    let accepted = client
        .post(format!("{}/hooks/billing/refund", daemon.url))
        .header("X-Signature", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let refunded = accepted.json::<Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let detail = |id: String| {
        let client = client.clone();
        let url = format!("{}/api/executions/{id}", daemon.url);
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let settled = |status: &Value| status == "succeeded" || status == "failed";
    assert!(
        eventually(60, || {
            let (a, b) = (detail(charged.clone()), detail(refunded.clone()));
            async move { settled(&a.await["status"]) && settled(&b.await["status"]) }
        })
        .await,
        "both executions finished:\n{}",
        daemon.log()
    );

    // It really happened: the secrets went out, the steps were retried, the
    // failure handler ran.
    let charge_doc = detail(charged.clone()).await;
    let refund_doc = detail(refunded.clone()).await;
    assert_eq!(charge_doc["status"], "succeeded", "{charge_doc:#}");
    assert_eq!(refund_doc["status"], "failed", "{refund_doc:#}");
    let sent = requests_to(&api, "/charge").await;
    assert_eq!(sent.len(), 3, "two failures, then the success");
    for request in &sent {
        assert_eq!(
            header(request, "authorization"),
            format!("Bearer {API_TOKEN}")
        );
        assert!(request.url.query().unwrap_or_default().contains(QUERY_KEY));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["token"], API_TOKEN);
    }
    assert_eq!(
        requests_to(&api, "/refund").await.len(),
        3,
        "three attempts"
    );
    let alerts = requests_to(&api, "/alert").await;
    assert_eq!(alerts.len(), 1, "on_failure ran once");
    assert_eq!(header(&alerts[0], "x-alert-token"), ALERT_TOKEN);
    let steps = charge_doc["steps"].as_array().unwrap();
    assert_eq!(steps[0]["attempts"], 3, "{charge_doc:#}");
    assert!(refund_doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["path"] == "on_failure/alert" && s["status"] == "succeeded"));
    // What the secrets were replaced with is there.
    assert!(charge_doc.to_string().contains("***"), "{charge_doc:#}");

    // Everything a person or a program can read from the daemon.
    let mut read = vec![
        ("store while running".to_owned(), store_bytes(dir.path())),
        (
            "charge detail".to_owned(),
            serde_json::to_string_pretty(&charge_doc).unwrap(),
        ),
        (
            "refund detail".to_owned(),
            serde_json::to_string_pretty(&refund_doc).unwrap(),
        ),
    ];
    for page in [
        "/api/executions?limit=100".to_owned(),
        "/api/executions?limit=100&status=failed".to_owned(),
        "/metrics".to_owned(),
        "/healthz".to_owned(),
        "/ui/executions".to_owned(),
        format!("/ui/executions/{charged}"),
        format!("/ui/executions/{refunded}"),
        format!("/ui/executions/{refunded}/live"),
        "/ui/scenarios/charge".to_owned(),
        "/ui/scenarios/refund".to_owned(),
    ] {
        let response = client
            .get(format!("{}{page}", daemon.url))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{page}: {}",
            response.status()
        );
        read.push((page, response.text().await.unwrap()));
    }
    // The pages are the real ones.
    let ui = &read.iter().find(|(p, _)| p.ends_with(&refunded)).unwrap().1;
    assert!(ui.contains("on_failure/alert"), "{ui}");

    let stdout = daemon.stdout.clone();
    let log_file = daemon.stderr.clone();
    assert_eq!(daemon.stop().await, 0);
    let log = std::fs::read_to_string(&log_file).unwrap();
    // Trace level, as JSON: the daemon's and its libraries' finest events.
    assert!(
        log.lines()
            .any(|l| l.contains(r#""level":"TRACE""#) || l.contains(r#""level":"DEBUG""#)),
        "{log}"
    );
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{log}"
    );
    assert!(log.contains("retrying"), "the retries were logged:\n{log}");
    read.push(("daemon stderr".to_owned(), log));
    read.push(("daemon stdout".to_owned(), stdout.lock().unwrap().clone()));
    read.push(("store after stop".to_owned(), store_bytes(dir.path())));

    let found: Vec<String> = read
        .iter()
        .flat_map(|(what, text)| leaks(text).into_iter().map(move |l| format!("{what}: {l}")))
        .collect();
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    // Not vacuous: the search does find them where they were sent.
    assert!(!leaks(&format!("{:?}", requests_to(&api, "/charge").await)).is_empty());
}
