//! `scenarist apps import openapi` on three vendors' own descriptions
//! (trimmed, `tests/fixtures/openapi/`): Stripe (OpenAPI 3.0, JSON, form
//! bodies), Slack (Swagger 2.0, JSON) and Pipedrive (OpenAPI 3.0, YAML, JSON
//! bodies). Each imported app validates, importing again gives the same
//! bytes, what cannot be mapped is named, and the actions send exactly the
//! requests the descriptions describe to a local server.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::{fixture, Scenarist};

/// A copy of a fixture whose server is `url`.
fn pointed_at(name: &str, url: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture(&format!("openapi/{name}"))).unwrap();
    let mut spec: Value = if name.ends_with(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_yaml::from_str(&text).unwrap()
    };
    if spec.get("swagger").is_some() {
        let (scheme, host) = url.split_once("://").unwrap();
        spec["schemes"] = json!([scheme]);
        spec["host"] = json!(host);
    } else {
        spec["servers"] = json!([{ "url": url }]);
    }
    let out = dir.join(name);
    let text = if name.ends_with(".json") {
        serde_json::to_string_pretty(&spec).unwrap()
    } else {
        serde_yaml::to_string(&spec).unwrap()
    };
    std::fs::write(&out, text).unwrap();
    out
}

async fn import(spec: &Path, out: &Path, extra: &[&str]) -> crate::util::Output {
    Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(spec)
        .args(["--out"])
        .arg_path(out)
        .args(extra)
        .run()
        .await
}

#[tokio::test]
async fn three_vendor_descriptions_import_validate_and_import_again_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("scenarios/apps");
    std::fs::create_dir_all(&apps).unwrap();
    for (file, app, actions) in [
        ("stripe.json", "stripe", 6),
        ("slack.json", "slack", 3),
        ("pipedrive.yaml", "pipedrive", 4),
    ] {
        let spec = fixture(&format!("openapi/{file}"));
        let out = apps.join(format!("{app}.yaml"));
        let first = import(&spec, &out, &[]).await;
        assert_eq!(first.code, 0, "{first:?}");
        assert!(
            first
                .stderr
                .contains(&format!("✔ {actions} action(s) of `{app}` written")),
            "{}",
            first.stderr
        );
        let again = dir.path().join(format!("{app}.again.yaml"));
        let second = Scenarist::new()
            .args(["apps", "import", "openapi"])
            .arg_path(&spec)
            .args(["--name", app])
            .run()
            .await;
        assert_eq!(second.code, 0, "{second:?}");
        std::fs::write(&again, &second.stdout).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            second.stdout,
            "{app}: importing again gives the same file"
        );
        if app == "stripe" {
            assert!(
                first.stderr.contains("note: PostFiles (POST /v1/files): not imported: its request body is `multipart/form-data`, which an action cannot send (JSON and forms can)"),
                "{}",
                first.stderr
            );
        }
    }
    // The folder's apps load: `apps show` lists each action with its inputs.
    let shown = Scenarist::new()
        .args(["apps", "show", "pipedrive", "--dir"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.contains("pipedrive.add_deal  POST /deals"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("auth: API key in the header `x-api-token`"),
        "{}",
        shown.stdout
    );
    let shown = Scenarist::new()
        .args(["apps", "show", "stripe", "--dir"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert!(
        shown.stdout.contains(
            "stripe.get_customers_customer  GET /v1/customers/{{ url_encode input.customer }}"
        ),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("with.customer: string (required)"),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn imported_actions_send_exactly_the_described_requests() {
    let server = MockServer::start().await;
    // Stripe: a form body of the fields given, the secret key as a bearer token.
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header(
            "authorization",
            "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        ))
        .and(body_string(
            "description=Referred%20by%20ana&email=lee%40bigco.example",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_9", "object": "customer" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers/cus_9"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_9", "email": "lee@bigco.example" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Pipedrive: a JSON body with only the fields given, the key in its header.
    Mock::given(method("POST"))
        .and(path("/api/v2/deals"))
        .and(header("x-api-token", "pd-key-5521"))
        .and(body_json(
            json!({ "title": "Referral: lee@bigco.example", "value": 4000, "currency": "EUR" }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "success": true, "data": { "id": 77 } })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/deals/77"))
        .and(query_param("include_labels", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "success": true, "data": { "id": 77, "status": "open" } })),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Slack (a bot token): the form of chat.postMessage.
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(header("authorization", "Bearer xoxb-77-bot"))
        .and(body_string(
            "channel=C0REFERRALS&text=Deal%2077%20opened%20for%20lee%40bigco.example",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true, "ts": "1.2" })))
        .expect(1)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("scenarios/apps");
    std::fs::create_dir_all(&apps).unwrap();
    let stripe = pointed_at("stripe.json", &server.uri(), dir.path());
    let pipedrive = pointed_at(
        "pipedrive.yaml",
        &format!("{}/api/v2", server.uri()),
        dir.path(),
    );
    let slack = pointed_at("slack.json", &server.uri(), dir.path());
    for (spec, app) in [
        (&stripe, "stripe"),
        (&pipedrive, "pipedrive"),
        (&slack, "slack"),
    ] {
        let out = import(spec, &apps.join(format!("{app}.yaml")), &[]).await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    // Slack's description knows only its OAuth2 flow; a bot token is a
    // bearer token, which is what a team writes in its place.
    let slack_app = std::fs::read_to_string(apps.join("slack.yaml")).unwrap();
    let start = slack_app.find("  auth:\n").unwrap();
    let end = slack_app[start..].find("  base_url:").unwrap() + start;
    let slack_app = format!(
        "{}  auth: {{ bearer: {{ token: \"{{{{ env.SLACK_BOT_TOKEN }}}}\" }} }}\n{}",
        &slack_app[..start],
        &slack_app[end..]
    )
    .replace(
        "- name: SLACK_CLIENT_ID\n  secret: false\n- name: SLACK_CLIENT_SECRET\n  secret: true\n",
        "- SLACK_BOT_TOKEN\n",
    );
    std::fs::write(apps.join("slack.yaml"), slack_app).unwrap();

    let flow = dir.path().join("scenarios/referral.yaml");
    std::fs::write(
        &flow,
        r#"name: referral
steps:
  - id: customer
    uses: stripe.post_customers
    with: { email: "{{ trigger.body.email }}", description: "Referred by ana" }
  - id: again
    uses: stripe.get_customers_customer
    with: { customer: "{{ steps.customer.id }}" }
  - id: deal
    uses: pipedrive.add_deal
    with: { title: "Referral: {{ steps.again.email }}", value: 4000, currency: EUR }
  - id: read
    uses: pipedrive.get_deal
    with: { id: "{{ steps.deal.data.id }}", include_labels: true }
  - id: tell
    uses: slack.chat_post_message
    with: { channel: C0REFERRALS, text: "Deal {{ steps.read.data.id }} opened for {{ steps.again.email }}" }
"#,
    )
    .unwrap();
    let out = Scenarist::new()
        .args(["run"])
        .arg_path(&flow)
        .args(["--input", "-", "--output", "json"])
        .stdin(json!({ "email": "lee@bigco.example" }).to_string())
        .env("STRIPE_TOKEN", "sk_test_4eC39HqLyjWDarjtT1zdp7dc")
        .env("PIPEDRIVE_API_KEY", "pd-key-5521")
        .env("SLACK_BOT_TOKEN", "xoxb-77-bot")
        .run()
        .await;
    if out.code != 0 {
        let received: Vec<String> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {}",
                    r.method,
                    r.url,
                    r.headers.get("authorization"),
                    String::from_utf8_lossy(&r.body)
                )
            })
            .collect();
        panic!("{}\nreceived:\n{}", out.stderr, received.join("\n"));
    }
    assert_eq!(out.json()["steps"]["tell"]["output"]["ok"], true);
    assert!(!out.stdout.contains("sk_test_4eC39HqLyjWDarjtT1zdp7dc"));
}

#[tokio::test]
async fn a_large_description_needs_a_choice_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = serde_json::Map::new();
    for n in 0..150 {
        let tag = if n % 2 == 0 { "Contacts" } else { "Deals" };
        paths.insert(
            format!("/things/{n}"),
            json!({ "get": { "operationId": format!("getThing{n}"), "tags": [tag], "responses": { "200": { "description": "ok" } } } }),
        );
    }
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        json!({ "openapi": "3.1.0", "info": { "title": "Big CRM", "version": "1" }, "servers": [{ "url": "https://crm.example.com" }], "paths": paths }).to_string(),
    )
    .unwrap();
    let refused = Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(&big)
        .run()
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("150 operations is too many for one app: choose with --tag, --operation or --path (tags: Contacts (75), Deals (75))"),
        "{}",
        refused.stderr
    );
    let chosen = Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(&big)
        .args(["--tag", "Deals", "--operation", "getThing0"])
        .run()
        .await;
    assert_eq!(chosen.code, 0, "{chosen:?}");
    assert!(chosen.stdout.contains("app: big-crm"), "{}", chosen.stdout);
    assert_eq!(chosen.stdout.matches("\n  get_thing").count(), 76);

    let nothing = Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(&big)
        .args(["--tag", "Nope"])
        .run()
        .await;
    assert_eq!(nothing.code, 2);
    assert!(
        nothing.stderr.contains("no operation matches --tag Nope"),
        "{}",
        nothing.stderr
    );
    let not_openapi = dir.path().join("x.yaml");
    std::fs::write(&not_openapi, "name: a scenario\nsteps: []\n").unwrap();
    let out = Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(&not_openapi)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("is not an OpenAPI or Swagger description"),
        "{}",
        out.stderr
    );
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "openapi: 3.0.0\npaths: [\n").unwrap();
    let out = Scenarist::new()
        .args(["apps", "import", "openapi"])
        .arg_path(&broken)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("the description does not parse"),
        "{}",
        out.stderr
    );
    let missing = Scenarist::new()
        .args(["apps", "import", "openapi", "/nonexistent/spec.json"])
        .run()
        .await;
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("cannot read /nonexistent/spec.json"),
        "{}",
        missing.stderr
    );
}
