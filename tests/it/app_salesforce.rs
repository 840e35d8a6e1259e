//! The built-in `salesforce` app against a local server in the instance's
//! place (`SALESFORCE_INSTANCE_URL`): it signs in once with the client
//! credentials flow at the instance's token endpoint, then each action sends
//! the request the REST API Developer Guide describes, under the API
//! version's path, with the token.

use serde_json::json;
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::apps::run;

const SECRET: &str = "sf-client-secret-9999";
const TOKEN: &str = "00Dxx-sf-access-token-1234";

#[tokio::test]
async fn salesforce_signs_in_once_then_queries_creates_updates_and_reads() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(
            format!("client_secret={SECRET}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_type": "Bearer", "instance_url": server.uri()
        })))
        .expect(1)
        .mount(&server)
        .await;
    let bearer = format!("Bearer {TOKEN}");
    let api = |verb: &str, at: &str| {
        Mock::given(method(verb))
            .and(path(format!("/services/data/v61.0{at}")))
            .and(header("authorization", bearer.as_str()))
    };
    api("GET", "/query")
        .and(query_param(
            "q",
            "SELECT Id FROM Contact WHERE Email = 'lee@bigco.example'",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 1, "done": true, "records": [{ "Id": "003A1" }] })))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "/sobjects/Lead")
        .and(body_json(
            json!({ "LastName": "Lee", "Company": "BigCo", "Email": "lee@bigco.example" }),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "00QA1", "success": true, "errors": [] })),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("PATCH", "/sobjects/Lead/00QA1")
        .and(body_json(json!({ "Referral_Status__c": "Qualified" })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "/sobjects/Lead/00QA1")
        .and(query_param("fields", "Id,Referral_Status__c"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "Id": "00QA1", "Referral_Status__c": "Qualified" })),
        )
        .expect(1)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crm.yaml");
    std::fs::write(&file, r#"name: crm
steps:
  - id: contact
    uses: salesforce.query
    with: { soql: "SELECT Id FROM Contact WHERE Email = '{{ lower trigger.body.email }}'" }
  - id: lead
    uses: salesforce.create_record
    with: { sobject: Lead, fields: { LastName: Lee, Company: BigCo, Email: "{{ lower trigger.body.email }}" } }
  - id: qualified
    uses: salesforce.update_record
    with: { sobject: Lead, id: "{{ steps.lead.id }}", fields: { Referral_Status__c: Qualified } }
  - id: read
    uses: salesforce.get_record
    with: { sobject: Lead, id: "{{ steps.lead.id }}", fields: "Id,Referral_Status__c" }
"#).unwrap();
    let env = [
        ("SALESFORCE_INSTANCE_URL".to_owned(), server.uri()),
        ("SALESFORCE_CLIENT_ID".to_owned(), "sf-client".to_owned()),
        ("SALESFORCE_CLIENT_SECRET".to_owned(), SECRET.to_owned()),
    ];
    let out = run(&file, &env, json!({ "email": "Lee@BigCo.example" })).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let run = out.json();
    assert_eq!(run["status"], "succeeded", "{}", out.stdout);
    assert_eq!(
        run["steps"]["qualified"]["output"],
        json!({ "updated": true })
    );
    assert_eq!(
        run["steps"]["read"]["output"]["Referral_Status__c"],
        "Qualified"
    );
    for secret in [SECRET, TOKEN] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    }
    server.verify().await;
}
