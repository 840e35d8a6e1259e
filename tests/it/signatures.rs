//! Signed webhooks as their senders sign them (Stripe, Standard Webhooks,
//! GitHub, Slack): signatures computed here with the senders' documented
//! formulas, sent to the real daemon, which must accept exactly the genuine,
//! fresh ones and treat a repeated delivery id as a duplicate.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::daemon_util::{serve, ServeOptions, Served};

pub(crate) fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The old and the new secret of a rotation, one of each per scheme.
const STRIPE: [&str; 2] = ["whsec_stripe_old_1111", "whsec_stripe_new_2222"];
const GITHUB: &str = "gh-hook-secret-3333";
const SLACK: &str = "slack-signing-secret-4444";
pub(crate) const HUBSPOT: &str = "hubspot-client-secret-7777";
/// Standard Webhooks secrets are `whsec_` + base64 of the key bytes.
fn standard_secrets() -> [String; 2] {
    let b64 = base64::engine::general_purpose::STANDARD;
    [
        format!("whsec_{}", b64.encode(b"standard-old-key-5555")),
        format!("whsec_{}", b64.encode(b"standard-new-key-6666")),
    ]
}

pub(crate) struct Signed {
    _dir: tempfile::TempDir,
    pub(crate) daemon: Served,
    client: reqwest::Client,
}

pub(crate) async fn start() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    let scenario = |name: &str, auth: &str| {
        let yaml = format!(
            "name: {name}\nenv: [STRIPE_OLD, STRIPE_NEW, STANDARD_OLD, STANDARD_NEW, GITHUB_SECRET, SLACK_SECRET]\n\
             trigger:\n  webhook:\n    path: in/{name}\n    auth: {auth}\n\
             steps:\n  - id: noted\n    set: {{ seen: \"{{{{ trigger.body.n }}}}\" }}\n"
        );
        std::fs::write(scenarios.join(format!("{name}.yaml")), yaml).unwrap();
    };
    scenario(
        "stripe",
        r#"{ stripe: { secrets: ["{{ env.STRIPE_OLD }}", "{{ env.STRIPE_NEW }}"] } }"#,
    );
    scenario(
        "standard",
        r#"{ standard_webhooks: { secrets: ["{{ env.STANDARD_OLD }}", "{{ env.STANDARD_NEW }}"], tolerance: 2m } }"#,
    );
    scenario(
        "github",
        r#"{ github: { secret: "{{ env.GITHUB_SECRET }}" } }"#,
    );
    scenario(
        "slack",
        r#"{ slack: { secret: "{{ env.SLACK_SECRET }}" } }"#,
    );
    // HubSpot posts an array of events.
    std::fs::write(
        scenarios.join("hubspot.yaml"),
        "name: hubspot\nenv: [HUBSPOT_SECRET]\ntrigger:\n  webhook:\n    path: in/hubspot\n\
         \x20   auth: { hubspot: { secret: \"{{ env.HUBSPOT_SECRET }}\" } }\n\
         steps:\n  - id: noted\n    set: { deal: \"{{ trigger.body.[0].objectId }}\" }\n",
    )
    .unwrap();
    let [standard_old, standard_new] = standard_secrets();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let options = ServeOptions {
        dir: &scenarios,
        store: &store,
        args: Vec::new(),
        env: [
            ("STRIPE_OLD", STRIPE[0].to_owned()),
            ("STRIPE_NEW", STRIPE[1].to_owned()),
            ("STANDARD_OLD", standard_old),
            ("STANDARD_NEW", standard_new),
            ("GITHUB_SECRET", GITHUB.to_owned()),
            ("SLACK_SECRET", SLACK.to_owned()),
            ("HUBSPOT_SECRET", HUBSPOT.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        log: dir.path().join("daemon.log"),
    };
    let daemon = serve(&options).await;
    Signed {
        _dir: dir,
        daemon,
        client: reqwest::Client::new(),
    }
}

impl Signed {
    /// Posts `body` with `headers`; the status and the answer's JSON.
    pub(crate) async fn post(
        &self,
        name: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/hooks/in/{name}", self.daemon.url))
            .body(body.to_owned());
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn stripe_headers(secret: &str, at: i64, body: &str) -> Vec<(&'static str, String)> {
    let signature = hex(&mac(
        secret.as_bytes(),
        &[format!("{at}.").as_bytes(), body.as_bytes()],
    ));
    vec![("Stripe-Signature", format!("t={at},v1={signature}"))]
}

fn standard_headers(secret: &str, id: &str, at: i64, body: &str) -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let signed = format!("{id}.{at}.{body}");
    let signature = b64.encode(mac(&key, &[signed.as_bytes()]));
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.to_string()),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

fn github_headers(secret: &str, delivery: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Delivery", delivery.to_owned()),
        (
            "X-Hub-Signature-256",
            format!(
                "sha256={}",
                hex(&mac(secret.as_bytes(), &[body.as_bytes()]))
            ),
        ),
    ]
}

fn slack_headers(secret: &str, at: i64, body: &str) -> Vec<(&'static str, String)> {
    let signed = format!("v0:{at}:{body}");
    vec![
        ("X-Slack-Request-Timestamp", at.to_string()),
        (
            "X-Slack-Signature",
            format!("v0={}", hex(&mac(secret.as_bytes(), &[signed.as_bytes()]))),
        ),
    ]
}

pub(crate) fn assert_refused(answer: (u16, Value), words: &str) {
    assert_eq!(answer.0, 401, "{}", answer.1);
    let message = answer.1["error"].as_str().unwrap_or_default();
    assert!(message.contains(words), "`{message}` should say `{words}`");
}

#[tokio::test]
async fn stripe_signatures_accept_both_secrets_of_a_rotation_and_refuse_replays() {
    let hooks = start().await;
    let body = r#"{"id":"evt_1","n":1}"#;
    let at = now();
    assert_eq!(
        hooks
            .post("stripe", &stripe_headers(STRIPE[0], at, body), body)
            .await
            .0,
        202
    );
    let second = r#"{"id":"evt_2","n":2}"#;
    assert_eq!(
        hooks
            .post("stripe", &stripe_headers(STRIPE[1], at, second), second)
            .await
            .0,
        202
    );
    // The same event again (a sender's retry or a captured request): deduped by its id.
    let again = hooks
        .post("stripe", &stripe_headers(STRIPE[1], at, second), second)
        .await;
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(again.1["duplicate"], true);

    let third = r#"{"id":"evt_3","n":3}"#;
    assert_refused(
        hooks
            .post("stripe", &stripe_headers("whsec_wrong", at, third), third)
            .await,
        "does not match",
    );
    assert_refused(
        hooks
            .post("stripe", &stripe_headers(STRIPE[0], at - 301, third), third)
            .await,
        "replay",
    );
    assert_refused(
        hooks
            .post("stripe", &stripe_headers(STRIPE[0], at + 301, third), third)
            .await,
        "replay",
    );
    let tampered = r#"{"id":"evt_3","n":30}"#;
    assert_refused(
        hooks
            .post("stripe", &stripe_headers(STRIPE[0], at, third), tampered)
            .await,
        "does not match",
    );
    assert_refused(
        hooks.post("stripe", &[], third).await,
        "missing `stripe-signature`",
    );
    assert_refused(
        hooks
            .post(
                "stripe",
                &[("Stripe-Signature", format!("v1={}", "ab".repeat(32)))],
                third,
            )
            .await,
        "no `t=`",
    );
    // The signature never reaches the scenario; the rest of the headers do.
    let executions: Vec<Value> = hooks
        .client
        .get(format!(
            "{}/api/executions?scenario=stripe",
            hooks.daemon.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        executions.len(),
        2,
        "only the two genuine events were stored"
    );
    let id = executions[0]["id"].as_str().unwrap();
    let execution: Value = hooks
        .client
        .get(format!("{}/api/executions/{id}", hooks.daemon.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let headers = &execution["trigger"]["headers"];
    assert!(headers.get("stripe-signature").is_none(), "{headers}");
    assert!(headers.get("content-length").is_some(), "{headers}");
}

#[tokio::test]
async fn standard_webhooks_signatures_check_id_timestamp_and_body() {
    let hooks = start().await;
    let [old, new] = standard_secrets();
    let body = r#"{"n":1}"#;
    let at = now();
    assert_eq!(
        hooks
            .post("standard", &standard_headers(&old, "msg_1", at, body), body)
            .await
            .0,
        202
    );
    assert_eq!(
        hooks
            .post("standard", &standard_headers(&new, "msg_2", at, body), body)
            .await
            .0,
        202
    );
    let again = hooks
        .post("standard", &standard_headers(&new, "msg_2", at, body), body)
        .await;
    assert_eq!((again.0, &again.1["duplicate"]), (200, &Value::Bool(true)));

    let wrong = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"not-ours")
    );
    assert_refused(
        hooks
            .post(
                "standard",
                &standard_headers(&wrong, "msg_3", at, body),
                body,
            )
            .await,
        "does not match",
    );
    // The tolerance here is 2 minutes.
    assert_refused(
        hooks
            .post(
                "standard",
                &standard_headers(&old, "msg_3", at - 121, body),
                body,
            )
            .await,
        "replay",
    );
    assert_eq!(
        hooks
            .post(
                "standard",
                &standard_headers(&old, "msg_3", at - 100, body),
                body
            )
            .await
            .0,
        202
    );
    assert_refused(
        hooks
            .post(
                "standard",
                &standard_headers(&old, "msg_4", at, body),
                r#"{"n":2}"#,
            )
            .await,
        "does not match",
    );
    // The id is signed too: the same signature under another id is refused.
    let mut moved = standard_headers(&old, "msg_5", at, body);
    moved[0].1 = "msg_6".to_owned();
    assert_refused(hooks.post("standard", &moved, body).await, "does not match");
    let mut missing = standard_headers(&old, "msg_7", at, body);
    missing.remove(1);
    assert_refused(
        hooks.post("standard", &missing, body).await,
        "missing `webhook-timestamp`",
    );
}

#[tokio::test]
async fn github_and_slack_signatures() {
    let hooks = start().await;
    let body = r#"{"n":1}"#;
    assert_eq!(
        hooks
            .post("github", &github_headers(GITHUB, "d-1", body), body)
            .await
            .0,
        202
    );
    let again = hooks
        .post("github", &github_headers(GITHUB, "d-1", body), body)
        .await;
    assert_eq!(again.0, 200, "the delivery id dedupes: {}", again.1);
    assert_refused(
        hooks
            .post("github", &github_headers("other", "d-2", body), body)
            .await,
        "does not match",
    );
    assert_refused(
        hooks
            .post("github", &github_headers(GITHUB, "d-2", body), r#"{"n":9}"#)
            .await,
        "does not match",
    );
    assert_refused(
        hooks
            .post("github", &[("X-GitHub-Delivery", "d-3".into())], body)
            .await,
        "missing `x-hub-signature-256`",
    );

    let at = now();
    assert_eq!(
        hooks
            .post("slack", &slack_headers(SLACK, at, body), body)
            .await
            .0,
        202
    );
    assert_refused(
        hooks
            .post("slack", &slack_headers("other", at, body), body)
            .await,
        "does not match",
    );
    assert_refused(
        hooks
            .post("slack", &slack_headers(SLACK, at - 600, body), body)
            .await,
        "replay",
    );
    assert_refused(
        hooks
            .post("slack", &slack_headers(SLACK, at, body), r#"{"n":2}"#)
            .await,
        "does not match",
    );
    let mut unstamped = slack_headers(SLACK, at, body);
    unstamped.remove(0);
    assert_refused(
        hooks.post("slack", &unstamped, body).await,
        "missing `x-slack-request-timestamp`",
    );
}
