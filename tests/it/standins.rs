//! The stand-ins (src/standins/) over real HTTP on 127.0.0.1, with a wiremock
//! server as the receiver of their webhooks.

use std::time::Duration;

use scenarist::standins::{StandIns, CRM_TOKEN, PAYMENTS_TOKEN, REFERRAL_TOKEN};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(5);
/// How long to wait for a webhook that must not come.
const QUIET: Duration = Duration::from_millis(400);

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// Sends `body` (if not null) with `token` (if any); returns status and JSON.
async fn call(verb: &str, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = client().request(verb.parse().unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A webhook receiver answering `statuses` in turn, then 200.
async fn receiver(statuses: &[u16]) -> MockServer {
    let server = MockServer::start().await;
    for &status in statuses {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The bodies the receiver got, in order.
async fn received(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn enrol(standins: &StandIns, email: &str, name: &str) {
    let url = format!("{}/api/v2/users", standins.url("referral"));
    let body = json!({"email": email, "first_name": name});
    let (status, _) = call("POST", url, Some(REFERRAL_TOKEN), body).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_sign_up_through_a_link_sends_one_unsigned_user_join() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    standins.subscribe("user.join", &format!("{}/referral/user-join", hooks.uri()));
    enrol(&standins, "ann@acme.example", "Ann").await;

    let url = format!("{}/sim/join", standins.url("referral"));
    let body = json!({"email": "Lee@BigCo.example", "first_name": "Lee", "referrer_email": "ann@acme.example", "company": "BigCo", "employees": 450});
    let (status, answer) = call("POST", url, None, body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["data"]["status"], "pending");

    let deliveries = standins.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(deliveries[0].event, "user.join");
    assert_eq!(
        (deliveries[0].status, deliveries[0].attempts),
        (Some(200), 1)
    );
    assert!(standins.wait_for_deliveries(2, QUIET).await.is_err());

    let requests = hooks.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/referral/user-join");
    for (name, _) in requests[0].headers.iter() {
        let name = name.as_str();
        assert!(
            !name.contains("signature") && !name.contains("id"),
            "unexpected header {name}"
        );
    }
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data", "event"], "no event id: {body}");
    assert_eq!(body["event"], "user.join");
    assert_eq!(body["data"]["email"], "lee@bigco.example");
    assert_eq!(body["data"]["referrer"]["email"], "ann@acme.example");
    assert_eq!(body["data"]["company"], "BigCo");
    assert_eq!(body["data"]["employees"], 450);
    assert!(body["data"]["campaign_id"].is_number());

    // A sign-up through an unknown link is refused, and sends nothing.
    let url = format!("{}/sim/join", standins.url("referral"));
    let body = json!({"email": "x@example.com", "referrer_email": "nobody@example.com"});
    assert_eq!(call("POST", url, None, body).await.0, 404);
    assert_eq!(standins.summary().referred, 1);
}

#[tokio::test]
async fn qualifying_issues_one_reward_and_a_second_qualification_is_counted() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    for event in ["user.qualified", "reward_issued"] {
        standins.subscribe(event, &hooks.uri());
    }
    enrol(&standins, "ann@acme.example", "Ann").await;
    standins.with_state(|s| s.join("lee@bigco.example", "Lee", "ann@acme.example"));

    let url = format!("{}/api/v2/users/qualification", standins.url("referral"));
    let body = json!({"identifier": "lee@bigco.example", "qualified": true});
    let (status, answer) = call("PUT", url.clone(), Some(REFERRAL_TOKEN), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["status"], "qualified");

    let deliveries = standins.wait_for_deliveries(2, WAIT).await.unwrap();
    let events: Vec<&str> = deliveries.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(events, ["user.qualified", "reward_issued"]);
    let bodies = received(&hooks).await;
    assert_eq!(bodies[0]["data"]["email"], "lee@bigco.example");
    assert_eq!(bodies[0]["data"]["status"], "qualified");
    assert_eq!(
        bodies[1],
        json!({"event": "reward_issued", "data": {"id": "r-1", "referrer": "ann@acme.example", "referral": "lee@bigco.example", "amount": 50, "status": "issued"}})
    );

    let (status, _) = call("PUT", url, Some(REFERRAL_TOKEN), body).await;
    assert_eq!(status, 200);
    assert!(standins.wait_for_deliveries(3, QUIET).await.is_err());
    assert_eq!(received(&hooks).await.len(), 2);
    let summary = standins.summary();
    assert_eq!(summary.rewards_issued, 1);
    assert_eq!(summary.rewards_value, 50);
    assert_eq!(summary.rewards_issued_twice, 1);
    assert_eq!(summary.webhooks_delivered, 2);
    assert_eq!(standins.rewards().len(), 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried() {
    let standins = StandIns::start().await.unwrap();
    let flaky = receiver(&[503]).await;
    let broken = receiver(&[500, 500, 500]).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    standins.subscribe("payment.succeeded", &flaky.uri());
    standins.subscribe("payment.succeeded", &broken.uri());
    standins.subscribe("payment.succeeded", &closed);
    standins.pay("max@smallshop.example", 4900, true);

    let deliveries = standins.wait_for_deliveries(3, WAIT).await.unwrap();
    let to = |url: &str| deliveries.iter().find(|d| d.url.starts_with(url)).unwrap();
    let ok = to(&flaky.uri());
    assert_eq!(
        (ok.status, ok.attempts, ok.succeeded()),
        (Some(200), 2, true)
    );
    let bodies = received(&flaky).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
    let failed = to(&broken.uri());
    assert_eq!((failed.status, failed.attempts), (Some(500), 3));
    let refused = to(&closed);
    assert_eq!((refused.status, refused.attempts), (None, 3));
    assert!(refused.error.is_some());
    let summary = standins.summary();
    assert_eq!(
        (summary.webhooks_delivered, summary.webhooks_failed),
        (1, 2)
    );
}

#[tokio::test]
async fn a_deal_stage_change_sends_deal_updated_once() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    let deal = standins.with_state(|s| {
        let contact = s.add_contact("lee@bigco.example", "Lee", "Li", "BigCo", "enterprise");
        s.add_deal(&contact, "BigCo seats", 900, "EUR", "proposal")
    });
    let deal = deal.unwrap();
    standins.subscribe("deal.updated", &hooks.uri());

    assert_eq!(standins.move_deal(&deal, "closed_won"), Ok(true));
    standins.wait_for_deliveries(1, WAIT).await.unwrap();
    let bodies = received(&hooks).await;
    assert_eq!(bodies[0]["event"], "deal.updated");
    let sent = &bodies[0]["deal"];
    assert_eq!(sent["id"], deal.as_str());
    assert_eq!(sent["stage"], "closed_won");
    assert_eq!(sent["contact_email"], "lee@bigco.example");
    assert_eq!(
        (&sent["amount"], &sent["currency"]),
        (&json!(900), &json!("EUR"))
    );

    assert_eq!(standins.move_deal(&deal, "closed_won"), Ok(false));
    let url = format!("{}/deals/{deal}", standins.url("crm"));
    let same = json!({"stage": "closed_won"});
    assert_eq!(call("PATCH", url, Some(CRM_TOKEN), same).await.0, 200);
    assert!(standins.wait_for_deliveries(2, QUIET).await.is_err());
    assert_eq!(standins.summary().deals_closed_won, 1);
    assert!(standins.move_deal("D-nope", "closed_won").is_err());
}

#[tokio::test]
async fn the_crm_keeps_contacts_and_deals_over_http() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    standins.subscribe("contact.created", &hooks.uri());
    standins.subscribe("deal.updated", &hooks.uri());
    let crm = standins.url("crm");
    let token = Some(CRM_TOKEN);

    let contact = json!({"email": "cy@initech.example", "first_name": "Cy", "last_name": "Young", "company": "Initech", "segment": "smb"});
    let (status, created) = call("POST", format!("{crm}/contacts"), token, contact).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, found) = call("GET", format!("{crm}/contacts/{id}"), token, Value::Null).await;
    assert_eq!((status, &found["company"]), (200, &json!("Initech")));
    let search = format!("{crm}/contacts?email=cy%40initech.example");
    let (_, results) = call("GET", search, token, Value::Null).await;
    assert_eq!(results["results"].as_array().unwrap().len(), 1);
    assert_eq!(results["results"][0]["id"], id.as_str());
    let search = format!("{crm}/contacts?email=nobody%40example.com");
    let (_, results) = call("GET", search, token, Value::Null).await;
    assert_eq!(results["results"], json!([]));

    let link = json!({"custom_fields": {"referral_link": "https://refer.example/r/CY1"}});
    let (status, patched) = call("PATCH", format!("{crm}/contacts/{id}"), token, link).await;
    assert_eq!(
        (status, &patched["email"]),
        (200, &json!("cy@initech.example"))
    );
    assert_eq!(
        patched["custom_fields"]["referral_link"],
        "https://refer.example/r/CY1"
    );

    let deal = json!({"contact_id": id, "name": "Initech pilot", "amount": 700, "currency": "EUR", "stage": "open"});
    let (status, deal) = call("POST", format!("{crm}/deals"), token, deal).await;
    assert_eq!(status, 201, "{deal}");
    let deal_url = format!("{crm}/deals/{}", deal["id"].as_str().unwrap());
    let won = json!({"stage": "closed_won"});
    let (status, moved) = call("PATCH", deal_url.clone(), token, won).await;
    assert_eq!((status, &moved["stage"]), (200, &json!("closed_won")));
    let (_, read) = call("GET", deal_url, token, Value::Null).await;
    assert_eq!(read["stage"], "closed_won");
    let orphan = json!({"contact_id": "c-404", "amount": 1});
    assert_eq!(
        call("POST", format!("{crm}/deals"), token, orphan).await.0,
        422
    );

    standins.wait_for_deliveries(2, WAIT).await.unwrap();
    let events: Vec<Value> = received(&hooks)
        .await
        .iter()
        .map(|b| b["event"].clone())
        .collect();
    assert_eq!(events, [json!("contact.created"), json!("deal.updated")]);
    let summary = standins.summary();
    assert_eq!(
        (summary.contacts, summary.deals, summary.crm_links_written),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn only_a_customers_first_succeeded_payment_is_first() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    standins.subscribe("payment.succeeded", &hooks.uri());
    standins.subscribe("payment.failed", &hooks.uri());
    let payments = format!("{}/v1/payments", standins.url("payments"));
    let token = Some(PAYMENTS_TOKEN);

    let declined = json!({"customer_email": "max@smallshop.example", "amount": 4900, "currency": "EUR", "status": "failed"});
    let (status, paid) = call("POST", payments.clone(), token, declined).await;
    assert_eq!((status, &paid["first_payment"]), (201, &json!(false)));
    let succeeded = json!({"customer_email": "max@smallshop.example", "amount": 4900, "currency": "EUR", "status": "succeeded"});
    let (status, first) = call("POST", payments.clone(), token, succeeded).await;
    assert_eq!((status, &first["first_payment"]), (201, &json!(true)));
    let second = standins.pay("Max@SmallShop.example", 4900, true);
    assert_eq!(second["first_payment"], false);

    standins.wait_for_deliveries(3, WAIT).await.unwrap();
    let bodies = received(&hooks).await;
    let seen: Vec<(&Value, &Value)> = bodies
        .iter()
        .map(|b| (&b["type"], &b["data"]["first_payment"]))
        .collect();
    assert_eq!(
        seen,
        [
            (&json!("payment.failed"), &json!(false)),
            (&json!("payment.succeeded"), &json!(true)),
            (&json!("payment.succeeded"), &json!(false)),
        ]
    );
    assert_eq!(bodies[1]["data"]["id"], first["id"]);
    assert_eq!(bodies[1]["data"]["customer_email"], "max@smallshop.example");

    let list = |query: &str| call("GET", format!("{payments}?{query}"), token, Value::Null);
    let (status, all) = list("").await;
    assert_eq!((status, all["data"].as_array().unwrap().len()), (200, 3));
    let (_, firsts) = list("status=succeeded&first=true").await;
    assert_eq!(firsts["data"], json!([first]));
    let (_, firsts) = list("status=succeeded&first_payment=true&limit=100").await;
    assert_eq!(firsts["data"], json!([first]));
    let summary = standins.summary();
    assert_eq!((summary.payments, summary.first_payments), (3, 1));
}

#[tokio::test]
async fn payments_set_by_hand_are_listed_as_first_payments() {
    // The demo sets records without status or first_payment.
    let standins = StandIns::start().await.unwrap();
    standins.with_state(|s| {
        s.payments = vec![
            json!({"id": "py_9001", "customer_email": "max@smallshop.example", "amount": 4900, "currency": "EUR"}),
            json!({"id": "py_9002", "customer_email": "max@smallshop.example", "amount": 1900, "currency": "EUR"}),
        ]
    });
    let url = format!(
        "{}/v1/payments?status=succeeded&first_payment=true&limit=100",
        standins.url("payments")
    );
    let (status, listed) = call("GET", url, Some(PAYMENTS_TOKEN), Value::Null).await;
    assert_eq!(status, 200);
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, [&json!("py_9001")]);
}

#[tokio::test]
async fn the_apis_refuse_a_missing_or_wrong_token() {
    let standins = StandIns::start().await.unwrap();
    let crm = standins.url("crm");
    let payments = standins.url("payments");
    let referral = standins.url("referral");
    let contact = json!({"email": "a@example.com"});
    let payment = json!({"customer_email": "a@example.com", "amount": 1});
    let cases = [
        ("POST", format!("{crm}/contacts"), contact.clone()),
        (
            "GET",
            format!("{crm}/contacts?email=a%40example.com"),
            Value::Null,
        ),
        (
            "PATCH",
            format!("{crm}/deals/D-501"),
            json!({"stage": "closed_won"}),
        ),
        ("GET", format!("{payments}/v1/payments"), Value::Null),
        ("POST", format!("{payments}/v1/payments"), payment.clone()),
        (
            "GET",
            format!("{referral}/api/v2/users/a%40example.com"),
            Value::Null,
        ),
    ];
    for (verb, url, body) in cases {
        for token in [None, Some("wrong"), Some(REFERRAL_TOKEN)] {
            if token == Some(REFERRAL_TOKEN) && url.starts_with(&referral) {
                continue;
            }
            let (status, _) = call(verb, url.clone(), token, body.clone()).await;
            assert_eq!(status, 401, "{verb} {url} with {token:?}");
        }
    }
    assert_eq!(
        call("POST", format!("{crm}/contacts"), Some(CRM_TOKEN), contact)
            .await
            .0,
        201
    );
    let paid = call(
        "POST",
        format!("{payments}/v1/payments"),
        Some(PAYMENTS_TOKEN),
        payment,
    );
    assert_eq!(paid.await.0, 201);
    assert_eq!(standins.summary().payments, 1);
}

#[tokio::test]
async fn redeliver_last_sends_the_same_body_again() {
    let standins = StandIns::start().await.unwrap();
    let hooks = receiver(&[]).await;
    assert!(!standins.redeliver_last("deal.updated"));
    let deal = standins.with_state(|s| {
        let contact = s.add_contact("lee@bigco.example", "Lee", "", "BigCo", "enterprise");
        s.add_deal(&contact, "BigCo seats", 900, "EUR", "proposal")
            .unwrap()
    });
    standins.subscribe("deal.updated", &hooks.uri());
    standins.move_deal(&deal, "closed_won").unwrap();
    standins.wait_for_deliveries(1, WAIT).await.unwrap();

    assert!(standins.redeliver_last("deal.updated"));
    let deliveries = standins.wait_for_deliveries(2, WAIT).await.unwrap();
    assert!(deliveries.iter().all(|d| d.succeeded()));
    let requests = hooks.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert!(!standins.redeliver_last("user.join"));
}
