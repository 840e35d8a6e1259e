//! Apps (`apps/NAME.yaml`, `uses: APP.ACTION`): the exact request an app
//! describes, its checks at load time and at run time, the built-in
//! Referral Factory app against the stand-in engine, local apps replacing
//! built-in ones, and `scenarist apps`.

use std::path::Path;

use scenarist::standins::StandIns;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::Scenarist;

/// A folder with `scenarios/` and `scenarios/apps/`.
fn folder(scenarios: &[(&str, &str)], apps: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scenarios");
    std::fs::create_dir_all(root.join("apps")).unwrap();
    for (name, text) in scenarios {
        std::fs::write(root.join(name), text).unwrap();
    }
    for (name, text) in apps {
        std::fs::write(root.join("apps").join(name), text).unwrap();
    }
    dir
}

const CRM_APP: &str = r#"app: crm
description: The team's CRM
env:
  - { name: CRM_URL, secret: false }
  - CRM_KEY
connection:
  base_url: "{{ env.CRM_URL }}/v1"
  headers: { X-Api-Key: "{{ env.CRM_KEY }}" }
actions:
  create_contact:
    description: Add a contact.
    input:
      type: object
      required: [email]
      properties:
        email: { type: string }
        tags: { type: array, items: { type: string }, default: [] }
    request:
      method: POST
      path: /contacts
      json: { email: "{{ input.email }}", tags: "{{ input.tags }}", source: scenarist }
    expect: [201]
    output: "{{ response.body.contact }}"
"#;

const ADD_CONTACT: &str = r#"name: add-contact
steps:
  - id: add
    uses: crm.create_contact
    with: { email: "{{ trigger.body.email }}" }
    connection: { headers: { X-Request-Source: "ops-{{ trigger.body.team }}" }, timeout: 5s }
  - id: noted
    set: { contact: "{{ steps.add.id }}" }
"#;

/// `scenarist run FILE --output json` with `input` on stdin and `env` set (the app tests share it).
pub(crate) async fn run(
    file: &Path,
    env: &[(String, String)],
    input: Value,
) -> crate::util::Output {
    let mut command = Scenarist::new()
        .args(["run"])
        .arg_path(file)
        .args(["--input", "-", "--output", "json"])
        .stdin(input.to_string());
    for (k, v) in env {
        command = command.env(k, v.clone());
    }
    command.run().await
}

#[tokio::test]
async fn a_local_app_sends_exactly_the_request_it_describes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/contacts"))
        .and(header("x-api-key", "crm-key-1234"))
        .and(header("x-request-source", "ops-growth"))
        .and(body_json(
            json!({ "email": "ana@example.com", "tags": [], "source": "scenarist" }),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "contact": { "id": "c-9" } })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = folder(
        &[("add-contact.yaml", ADD_CONTACT)],
        &[("crm.yaml", CRM_APP)],
    );
    let env = [
        ("CRM_URL".to_owned(), server.uri()),
        ("CRM_KEY".to_owned(), "crm-key-1234".to_owned()),
    ];
    let out = run(
        &dir.path().join("scenarios/add-contact.yaml"),
        &env,
        json!({ "email": "ana@example.com", "team": "growth" }),
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let execution = out.json();
    let steps = &execution["steps"];
    assert_eq!(
        steps["add"]["output"],
        json!({ "id": "c-9" }),
        "the action's output"
    );
    assert_eq!(steps["noted"]["output"], json!({ "contact": "c-9" }));
    // The app's secret env is masked like the scenario's own.
    assert!(!out.stdout.contains("crm-key-1234"), "{}", out.stdout);
}

#[tokio::test]
async fn every_problem_of_a_uses_step_is_found_at_load_time_with_its_position() {
    let out = Scenarist::new()
        .args(["validate", "tests/fixtures/uses/bad-uses.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("bad_uses", out.stderr);
}

#[tokio::test]
async fn an_input_that_fails_the_schema_at_run_time_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "contact": {} })))
        .expect(0)
        .mount(&server)
        .await;
    let dir = folder(
        &[("add-contact.yaml", ADD_CONTACT)],
        &[("crm.yaml", CRM_APP)],
    );
    let env = [
        ("CRM_URL".to_owned(), server.uri()),
        ("CRM_KEY".to_owned(), "crm-key-1234".to_owned()),
    ];
    // `email` renders to a number: the schema wants a string.
    let out = run(
        &dir.path().join("scenarios/add-contact.yaml"),
        &env,
        json!({ "email": 42 }),
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let error = out.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(
            "the input of `crm.create_contact` does not match its schema, nothing was sent"
        ) && error.contains("email"),
        "{error}"
    );
}

const EVERY_ACTION: &str = r#"name: every-action
steps:
  - id: enrol
    uses: referral-factory.create_participant
    with: { email: new@example.com, first_name: Nia }
  - id: found
    uses: referral-factory.get_user
    with: { identifier: "{{ steps.enrol.code }}" }
  - id: renamed
    uses: referral-factory.update_user
    with: { identifier: "{{ steps.enrol.id }}", fields: { first_name: Nina } }
  - id: search
    uses: referral-factory.search_users
    with: { search: example.com }
  - id: qualify_a
    uses: referral-factory.qualify
    with: { identifier: a@example.com }
  - id: qualify_b
    uses: referral-factory.qualify
    with: { identifier: b@example.com, reward_amount: 20 }
  - id: due
    uses: referral-factory.list_due_rewards
    with: {}
  - id: issued
    uses: referral-factory.issue_reward
    with: { reward_id: "{{ steps.qualify_a.reward_id }}" }
  - id: cancelled
    uses: referral-factory.cancel_reward
    with: { reward_id: "{{ steps.qualify_b.reward_id }}", reason: refunded }
  - id: unqualified
    uses: referral-factory.unqualify
    with: { identifier: b@example.com }
"#;

#[tokio::test]
async fn the_built_in_referral_factory_app_drives_every_action_of_the_stand_in() {
    let standins = StandIns::start().await.unwrap();
    standins.with_state(|state| {
        state.manual_payouts = true;
        state.join("ref@example.com", "Rae", "");
        state.join("a@example.com", "Ada", "ref@example.com");
        state.join("b@example.com", "Bo", "ref@example.com");
    });
    let dir = folder(&[("every-action.yaml", EVERY_ACTION)], &[]);
    let out = run(
        &dir.path().join("scenarios/every-action.yaml"),
        &standins.env(),
        json!({}),
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let execution = out.json();
    let output = |id: &str| -> Value { execution["steps"][id]["output"].clone() };
    assert!(output("enrol")["url"]
        .as_str()
        .unwrap()
        .starts_with("https://refer.example/r/"));
    assert_eq!(output("found")["email"], "new@example.com");
    assert_eq!(output("renamed")["first_name"], "Nina");
    assert_eq!(output("search").as_array().unwrap().len(), 4);
    assert_eq!(
        output("qualify_a")["reward_issued"],
        false,
        "manual payouts: due"
    );
    assert_eq!(output("due").as_array().unwrap().len(), 2);
    assert_eq!(output("issued")["status"], "issued");
    assert_eq!(output("cancelled")["status"], "cancelled");
    assert_eq!(output("unqualified")["data"]["email"], "b@example.com");
    let summary = standins.summary();
    assert_eq!(summary.rewards_issued, 1, "one issued, one cancelled");
}

const CHAT_OVERRIDE: &str = r#"app: chat
description: Our Discord-style chat, replacing the built-in Slack-style one
env: [CHAT_WEBHOOK_URL]
connection:
  base_url: "{{ env.CHAT_WEBHOOK_URL }}"
actions:
  post_message:
    input: { type: object, required: [text], properties: { text: { type: string } } }
    request: { method: POST, path: "", json: { content: "{{ input.text }}" } }
"#;

const ANNOUNCE: &str = r#"name: announce
steps:
  - id: post
    uses: chat.post_message
    with: { text: "A reward was issued" }
"#;

#[tokio::test]
async fn a_local_app_replaces_the_built_in_one_of_the_same_name() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook/abc"))
        .and(body_json(json!({ "content": "A reward was issued" })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let dir = folder(
        &[("announce.yaml", ANNOUNCE)],
        &[("chat.yaml", CHAT_OVERRIDE)],
    );
    let env = [(
        "CHAT_WEBHOOK_URL".to_owned(),
        format!("{}/hook/abc", server.uri()),
    )];
    let out = run(&dir.path().join("scenarios/announce.yaml"), &env, json!({})).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    let listed = Scenarist::new()
        .args(["apps", "--dir"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let chat = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("chat "))
        .unwrap()
        .to_owned();
    assert!(
        chat.contains("apps/chat.yaml") && chat.contains("Discord-style"),
        "{chat}"
    );
    let builtin = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("referral-factory "))
        .unwrap()
        .to_owned();
    assert!(
        builtin.contains("built-in") && builtin.contains("qualify"),
        "{builtin}"
    );

    let shown = Scenarist::new()
        .args(["apps", "show", "referral-factory"])
        .args(["--dir"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .contains("referral-factory.qualify  PUT /users/qualification"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("with.identifier: string | integer (required)"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("with.qualified: boolean (default true)"),
        "{}",
        shown.stdout
    );
    let unknown = Scenarist::new()
        .args(["apps", "show", "referal-factory"])
        .args(["--dir"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("did you mean `referral-factory`?"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn a_bad_app_file_is_reported_with_positions() {
    let dir = folder(
        &[("add-contact.yaml", ADD_CONTACT)],
        &[(
            "crm.yaml",
            &CRM_APP
                .replace("{{ env.CRM_KEY }}", "{{ env.CRM_KYE }}")
                .replace(
                    "type: object\n      required",
                    "type: objekt\n      required",
                ),
        )],
    );
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("apps/crm.yaml:8:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`env.CRM_KYE` is not declared in the app's `env`; did you mean `CRM_KEY`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("actions.create_contact.input"),
        "{}",
        out.stderr
    );
}

const WAIT_THEN_CALL: &str = r#"name: wait-then-call
steps:
  - id: later
    delay: { for: 1h }
  - id: add
    uses: crm.create_contact
    with: { email: "{{ trigger.body.email }}" }
  - id: tell
    uses: chat.post_message
    with: { text: "Added {{ steps.add.id }}" }
"#;

const WAIT_THEN_CALL_TEST: &str = r#"env: { CRM_URL: "http://crm.test", CRM_KEY: k3y, CHAT_WEBHOOK_URL: "http://chat.test/hook" }
cases:
  - name: the calls after the delay are made
    trigger: { body: { email: ann@example.com } }
    mocks:
      add: { status: 201, body: { contact: { id: c-1 } } }
      tell: { status: 200 }
    expect:
      status: succeeded
      steps: [later, add, tell]
      requests:
        add: { count: 1, url: "http://crm.test/v1/contacts" }
        tell: { count: 1, body: { text: Added c-1 } }
"#;

/// A stored version keeps the apps' texts, not their file names: resuming
/// one (after a delay, a wait or a review) once refused every app in it as
/// "named `chat` but its file is `wait-then-call@....yaml`".
#[tokio::test]
async fn an_execution_resumed_from_its_stored_version_compiles_the_apps_it_keeps() {
    let dir = folder(
        &[
            ("wait-then-call.yaml", WAIT_THEN_CALL),
            ("wait-then-call.test.yaml", WAIT_THEN_CALL_TEST),
        ],
        &[("crm.yaml", CRM_APP)],
    );
    let out = Scenarist::new()
        .args(["test"])
        .arg_path(&dir.path().join("scenarios"))
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 case: 1 passed"), "{}", out.stdout);
}
