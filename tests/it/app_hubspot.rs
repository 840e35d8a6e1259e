//! The built-in `hubspot` app against a local server in HubSpot's place
//! (`HUBSPOT_BASE_URL`): each action sends the request HubSpot's
//! documentation describes, with the private app's token, and the
//! `deal_entered_stage` watch pages HubSpot's search from its cursor and runs
//! each deal once per entry into the stage.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::apps::run;
use crate::util::Scenarist;

const TOKEN: &str = "pat-na1-hubspot-token-8888";

async fn expect(server: &MockServer, verb: &str, at: &str, body: Option<Value>, answer: Value) {
    let mut mock = Mock::given(method(verb))
        .and(path(at))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()));
    if let Some(body) = body {
        mock = mock.and(body_json(body));
    }
    let status = if verb == "POST" && !at.ends_with("/search") {
        201
    } else {
        200
    };
    mock.respond_with(ResponseTemplate::new(status).set_body_json(answer))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_action_sends_the_documented_request() {
    let server = MockServer::start().await;
    let contact = json!({ "id": "101", "properties": { "email": "lee@bigco.example" } });
    expect(
        &server,
        "POST",
        "/crm/v3/objects/contacts",
        Some(json!({ "properties": { "email": "lee@bigco.example", "referral_code": "R1" } })),
        contact.clone(),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/lee%40bigco.example"))
        .and(query_param("idProperty", "email"))
        .and(query_param("properties", "email,firstname"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact.clone()))
        .expect(1)
        .mount(&server)
        .await;
    expect(
        &server,
        "PATCH",
        "/crm/v3/objects/deals/42",
        Some(json!({ "properties": { "referral_status": "qualified" } })),
        json!({ "id": "42" }),
    )
    .await;
    expect(
        &server,
        "PUT",
        "/crm/v4/objects/contacts/101/associations/default/deals/42",
        None,
        json!({ "status": "COMPLETE" }),
    )
    .await;
    let note = json!({
        "properties": { "hs_note_body": "Referral qualified", "hs_timestamp": "2026-12-07T10:00:00Z" },
        "associations": [{ "to": { "id": "101" }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202 }] }]
    });
    expect(
        &server,
        "POST",
        "/crm/v3/objects/notes",
        Some(note),
        json!({ "id": "900" }),
    )
    .await;
    let filters = json!([{ "filters": [{ "propertyName": "dealstage", "operator": "EQ", "value": "closedwon" }] }]);
    expect(
        &server,
        "POST",
        "/crm/v3/objects/deals/search",
        Some(json!({ "filterGroups": filters, "limit": 10 })),
        json!({ "total": 0, "results": [] }),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crm.yaml");
    std::fs::write(&file, r#"name: crm
steps:
  - id: added
    uses: hubspot.create_contact
    with: { properties: { email: "{{ lower trigger.body.email }}", referral_code: R1 } }
  - id: found
    uses: hubspot.get_contact
    with: { contact_id: "{{ steps.added.properties.email }}", id_property: email, properties: "email,firstname" }
  - id: qualified
    uses: hubspot.update_deal
    with: { deal_id: "42", properties: { referral_status: qualified } }
  - id: linked
    uses: hubspot.associate
    with: { from_type: contacts, from_id: "{{ steps.found.id }}", to_type: deals, to_id: "42" }
  - id: noted
    uses: hubspot.add_note
    with:
      body: Referral qualified
      timestamp: "2026-12-07T10:00:00Z"
      associations: [{ to: { id: "{{ steps.found.id }}" }, types: [{ associationCategory: HUBSPOT_DEFINED, associationTypeId: 202 }] }]
  - id: won
    uses: hubspot.search_deals
    with: { filterGroups: [{ filters: [{ propertyName: dealstage, operator: EQ, value: closedwon }] }], limit: 10 }
"#).unwrap();
    let env = [
        ("HUBSPOT_ACCESS_TOKEN".to_owned(), TOKEN.to_owned()),
        ("HUBSPOT_BASE_URL".to_owned(), server.uri()),
    ];
    let out = run(&file, &env, json!({ "email": "Lee@BigCo.example" })).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["status"], "succeeded", "{}", out.stdout);
    assert!(!out.stdout.contains(TOKEN), "the token never shows");
    server.verify().await;
}

fn deal(id: &str, modified: &str) -> Value {
    json!({ "id": id, "properties": { "dealname": format!("Deal {id}"), "dealstage": "closedwon", "hs_lastmodifieddate": modified } })
}

#[tokio::test]
async fn the_stage_watch_pages_from_its_cursor_and_runs_each_entry_once() {
    let server = MockServer::start().await;
    let page = |after: &str, answer: Value, times: Option<u64>, priority: u8| {
        let mut mock = Mock::given(method("POST"))
            .and(path("/crm/v3/objects/deals/search"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({ "after": after })))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .with_priority(priority);
        if let Some(n) = times {
            mock = mock.up_to_n_times(n);
        }
        mock
    };
    // The first poll reads two pages; later ones get deal 2 again, and deal 3.
    page("0", json!({ "results": [deal("1", "2026-12-01T10:00:00.000Z")], "paging": { "next": { "after": "1" } } }), Some(1), 1)
        .mount(&server)
        .await;
    page(
        "1",
        json!({ "results": [deal("2", "2026-12-02T10:00:00.000Z")] }),
        None,
        1,
    )
    .mount(&server)
    .await;
    page("0", json!({ "results": [deal("2", "2026-12-02T10:00:00.000Z"), deal("3", "2026-12-03T10:00:00.000Z")] }), None, 2)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/won.yaml"),
        r#"name: won
trigger:
  poll:
    uses: hubspot.deal_entered_stage
    with: { stage: closedwon }
    every: 5m
    start: all
steps:
  - id: seen
    set: { deal: "{{ trigger.item.id }}" }
"#,
    )
    .unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let poll = || {
        Scenarist::new()
            .env("SCENARIST_STORE", store.clone())
            .env("HUBSPOT_ACCESS_TOKEN", TOKEN)
            .env("HUBSPOT_BASE_URL", server.uri())
            .in_dir(dir.path())
            .args(["triggers", "poll", "won"])
    };
    let first = poll().run().await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("2 new item(s)"), "{}", first.stdout);
    let second = poll().run().await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stdout.contains("1 new item(s)"),
        "deal 2 is not new: {}",
        second.stdout
    );
    // Each request filters on the stage, from the start and then from the cursor.
    let sent: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let from: Vec<&str> = sent
        .iter()
        .map(|b| {
            b["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(from.len(), 3);
    assert_eq!(from[..2], ["1970-01-01T00:00:00Z"; 2]);
    assert!(from[2].starts_with("2026-12-02T10:00:00"), "{from:?}");
    for body in &sent {
        assert_eq!(
            body["filterGroups"][0]["filters"][1],
            json!({ "propertyName": "dealstage", "operator": "EQ", "value": "closedwon" })
        );
        assert_eq!(body["sorts"][0]["direction"], "ASCENDING");
    }
}
