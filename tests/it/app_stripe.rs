//! The built-in `stripe` app against a local server in Stripe's place
//! (`STRIPE_BASE_URL`): form bodies with nested metadata in Stripe's bracket
//! notation, the secret key as a bearer token, and the events watch paging
//! with `starting_after`.

use serde_json::json;
use wiremock::matchers::{body_string, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::apps::run;
use crate::util::Scenarist;

const KEY: &str = "sk_test_stripe_key_5555";

#[tokio::test]
async fn a_customer_is_created_with_its_metadata_in_brackets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_string(
            "email=lee%40bigco.example&metadata%5Bcampaign%5D=spring&metadata%5Breferral_code%5D=R1",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "cus_1", "object": "customer" })))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("enrol.yaml");
    std::fs::write(&file, r#"name: enrol
steps:
  - id: customer
    uses: stripe.create_customer
    with: { email: "{{ lower trigger.body.email }}", metadata: { referral_code: "{{ trigger.body.code }}", campaign: spring } }
"#).unwrap();
    let env = [
        ("STRIPE_SECRET_KEY".to_owned(), KEY.to_owned()),
        ("STRIPE_BASE_URL".to_owned(), server.uri()),
    ];
    let out = run(
        &file,
        &env,
        json!({ "email": "Lee@BigCo.example", "code": "R1" }),
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["steps"]["customer"]["output"]["id"], "cus_1");
    assert!(!out.stdout.contains(KEY));
    server.verify().await;
}

#[tokio::test]
async fn the_events_watch_pages_with_starting_after() {
    let server = MockServer::start().await;
    let event = |id: &str, at: i64| json!({ "id": id, "type": "invoice.paid", "created": at });
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("type", "invoice.paid"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": true, "data": [event("evt_3", 1_765_000_300), event("evt_2", 1_765_000_200)] })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", "evt_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "data": [event("evt_1", 1_765_000_100)] })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", "evt_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "has_more": false, "data": [] })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/paid.yaml"),
        r#"name: paid
trigger:
  poll: { uses: stripe.events, with: { type: invoice.paid }, every: 1m, start: all }
steps:
  - id: seen
    set: { event: "{{ trigger.item.id }}" }
"#,
    )
    .unwrap();
    let out = Scenarist::new()
        .env(
            "SCENARIST_STORE",
            format!("sqlite://{}", dir.path().join("store.db").display()),
        )
        .env("STRIPE_SECRET_KEY", KEY)
        .env("STRIPE_BASE_URL", server.uri())
        .in_dir(dir.path())
        .args(["triggers", "poll", "paid"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("3 new item(s)"), "{}", out.stdout);
    server.verify().await;
}
