//! The example scenarios in `scenarios/`, run against local stand-ins of the
//! referral engine, the CRM, the payments API and the chat tool.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::util::Scenarist;

const REFERRAL_TOKEN: &str = "rf_test_token_123";
const CRM_TOKEN: &str = "crm_test_token_456";

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

async fn run(file: &str, server: &MockServer, input: Value) -> crate::util::Output {
    Scenarist::new()
        .args(["run", file, "--input", "-", "--output", "json"])
        .stdin(input.to_string())
        .env("REFERRAL_FACTORY_URL", server.uri())
        .env("REFERRAL_FACTORY_TOKEN", REFERRAL_TOKEN)
        .env("CRM_API", server.uri())
        .env("CRM_TOKEN", CRM_TOKEN)
        .env("PAYMENTS_API", server.uri())
        .env("PAYMENTS_TOKEN", "pay_test_token_789")
        .env(
            "CHAT_WEBHOOK_URL",
            format!("{}/chat/hook-secret-abc", server.uri()),
        )
        .run()
        .await
}

#[tokio::test]
async fn enrolment_creates_the_participant_and_writes_the_link_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/users"))
        .and(header(
            "authorization",
            format!("Bearer {REFERRAL_TOKEN}").as_str(),
        ))
        .and(body_json(
            json!({"campaign_id": 4211, "first_name": "Ann", "email": "ann@example.com"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"data": {"id": "u-1", "url": "https://ref.example/r/ANN1", "code": "ANN1"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/contacts/c-9"))
        .and(header("authorization", format!("Bearer {CRM_TOKEN}").as_str()))
        .and(body_json(json!({"custom_fields": {"referral_link": "https://ref.example/r/ANN1", "referral_code": "ANN1"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let input = json!({"event": "contact.created", "contact": {"id": "c-9", "email": "ann@example.com", "first_name": "Ann", "custom_fields": {"referral_consent": true}}});
    let out = run("scenarios/enrol-crm-customer.yaml", &server, input).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(
        doc["response"]["body"],
        json!({"enrolled": true, "referral_link": "https://ref.example/r/ANN1"})
    );
    assert!(!out.stdout.contains(REFERRAL_TOKEN) && !out.stderr.contains(CRM_TOKEN));

    // Without consent nothing is sent, and that is not a failure.
    let quiet = MockServer::start().await;
    let input = json!({"event": "contact.created", "contact": {"id": "c-8", "email": "bo@example.com", "first_name": "Bo", "custom_fields": {"referral_consent": false}}});
    let out = run("scenarios/enrol-crm-customer.yaml", &quiet, input).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["status"], "filtered");
    assert!(quiet.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn referred_leads_are_routed_by_segment() {
    let event = |employees: Option<u32>| {
        let mut data = json!({"email": " Lee@BigCo.com ", "first_name": "Lee", "campaign_id": 4211, "company": "BigCo", "referrer": {"email": "ann@example.com"}});
        if let Some(n) = employees {
            data["employees"] = json!(n);
        }
        json!({"event": "user.join", "data": data})
    };
    let cases = [
        (Some(450), "enterprise", 2),
        (Some(12), "smb", 1),
        (None, "needs_review", 1),
    ];
    for (employees, route, calls) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "lead-1"})))
            .mount(&server)
            .await;
        let out = run(
            "scenarios/route-referred-lead.yaml",
            &server,
            event(employees),
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["steps"]["route"]["output"], json!([route]));
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), calls, "{route}");
        match route {
            "enterprise" => {
                assert_eq!(requests[0].url.path(), "/leads");
                assert_eq!(
                    body(&requests[0]),
                    json!({"email": "lee@bigco.com", "company": "BigCo", "owner": "alex@example.com", "source": "referral", "referred_by": "ann@example.com"})
                );
                assert_eq!(requests[1].url.path(), "/chat/hook-secret-abc");
                assert_eq!(
                    body(&requests[1])["text"],
                    "New referred enterprise lead: BigCo (450 people), referred by ann@example.com. Owner: alex@example.com"
                );
                assert!(
                    !out.stderr.contains("hook-secret-abc"),
                    "the chat URL is a secret"
                );
            }
            "smb" => assert_eq!(
                body(&requests[0]),
                json!({"email": "lee@bigco.com", "company": "BigCo", "source": "referral"})
            ),
            _ => assert_eq!(requests[0].url.path(), "/chat/hook-secret-abc"),
        }
    }
}

fn deal(stage: &str, amount: u32) -> Value {
    json!({"deal": {"id": "D-77", "stage": stage, "amount": amount, "contact_email": "ann@example.com"}})
}

#[tokio::test]
async fn a_closed_won_deal_qualifies_the_referral_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/users/ann%40example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": "u-7", "status": "pending", "referred_by": "bob@example.com"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // The referral engine is flaky once; the retry carries the same request.
    Mock::given(method("PUT"))
        .and(path("/api/v2/users/qualification"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/users/qualification"))
        .and(body_json(
            json!({"identifier": "u-7", "qualified": true, "reward_amount": 90}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"status": "qualified"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = run(
        "scenarios/qualify-closed-won.yaml",
        &server,
        deal("closed_won", 900),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["steps"]["qualify"]["attempts"], 2);
    assert_eq!(
        doc["steps"]["summary"]["output"],
        json!({"referral": "u-7", "referrer": "bob@example.com", "deal_amount": 900, "qualified": true})
    );
}

#[tokio::test]
async fn deals_that_do_not_qualify_send_nothing() {
    for input in [deal("closed_lost", 900), deal("closed_won", 100)] {
        let server = MockServer::start().await;
        let out = run("scenarios/qualify-closed-won.yaml", &server, input).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["status"], "filtered");
        assert!(server.received_requests().await.unwrap().is_empty());
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "not found"})))
        .mount(&server)
        .await;
    let out = run(
        "scenarios/qualify-closed-won.yaml",
        &server,
        deal("closed_won", 900),
    )
    .await;
    assert_eq!(out.json()["status"], "filtered", "not a referred customer");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_qualification_alerts_the_ops_channel() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": "u-7", "status": "pending", "referred_by": "bob@example.com"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "campaign closed"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat/hook-secret-abc"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let out = run(
        "scenarios/qualify-closed-won.yaml",
        &server,
        deal("closed_won", 900),
    )
    .await;
    assert_eq!(out.code, 1);
    let alert = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    let text = body(&alert)["text"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("Referral qualification failed for deal D-77 at step qualify: PUT "),
        "{text}"
    );
    assert!(text.contains("answered 400"), "{text}");
}

#[tokio::test]
async fn first_payments_qualify_each_pending_referral() {
    // Each new payment the watch finds is one execution, with the payment as
    // `trigger.item`; `scenarist run` takes the item as its input.
    let server = MockServer::start().await;
    let user = |id: &str, status: &str| json!({"data": {"id": id, "status": status}});
    Mock::given(path("/api/v2/users/ann%40example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user("u-1", "pending")))
        .mount(&server)
        .await;
    Mock::given(path("/api/v2/users/bob%40example.com"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(path("/api/v2/users/cy%40example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user("u-3", "qualified")))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/users/qualification"))
        .and(body_json(
            json!({"identifier": "u-1", "qualified": true, "reward_amount": 50}),
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let payments = [
        (
            json!({"id": "py_1", "customer_email": "ann@example.com", "amount": 4900, "currency": "EUR"}),
            "succeeded",
        ),
        (
            json!({"id": "py_2", "customer_email": "bob@example.com", "amount": 1900, "currency": "EUR"}),
            "filtered",
        ),
        (
            json!({"id": "py_3", "customer_email": "cy@example.com", "amount": 9900, "currency": "USD"}),
            "filtered",
        ),
    ];
    for (payment, status) in payments {
        let out = run(
            "scenarios/poll-first-payments.yaml",
            &server,
            payment.clone(),
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["status"], status, "{payment}: {doc}");
    }
}
