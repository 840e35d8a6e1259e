//! Every action and watch of the built-in apps against the vendor's own API
//! description (HubSpot's: its documentation, as a description written by
//! hand, since its files may not be reused) (the operations they use, trimmed:
//! `tests/fixtures/openapi/conformance-*.json`, sources in that folder's
//! README): the method and path exist, the path parameters match, every
//! query parameter and body field the action sends is one the operation
//! takes, in the place it takes it, every required one is sent, and the
//! statuses the action expects are documented ones.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::{fixture, root};

/// Credentials the app's `auth:` carries (Slack describes its token as a parameter).
const CREDENTIALS: &[&str] = &["token", "authorization"];

fn deref<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => spec.pointer(&r[1..]).unwrap_or(value),
        None => value,
    }
}

/// `(place, name)`: `("query", "limit")`, `("body", "email")`.
type Fields = BTreeSet<(String, String)>;

/// The operation's names by place (`query`, `body`, `path`) and the required ones.
fn takes(spec: &Value, item: &Value, op: &Value) -> (Fields, Fields) {
    let (mut known, mut required) = (BTreeSet::new(), BTreeSet::new());
    let shared = item["parameters"].as_array().into_iter().flatten();
    for p in shared.chain(op["parameters"].as_array().into_iter().flatten()) {
        let p = deref(spec, p);
        let name = p["name"].as_str().unwrap().to_owned();
        let place = match p["in"].as_str().unwrap() {
            "formData" => "body",
            other => other,
        }
        .to_owned();
        if p["required"] == true {
            required.insert((place.clone(), name.clone()));
        }
        known.insert((place, name));
    }
    if let Some(content) = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
    {
        for media in content.values() {
            let schema = deref(spec, &media["schema"]);
            for name in schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                known.insert(("body".to_owned(), name.clone()));
            }
            for name in schema["required"].as_array().into_iter().flatten() {
                required.insert(("body".to_owned(), name.as_str().unwrap().to_owned()));
            }
        }
    }
    (known, required)
}

/// `/v1/customers/{{ url_encode input.customer }}` → `["v1", "customers", "{}"]`.
fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            if s.contains('{') {
                "{}".to_owned()
            } else {
                s.to_owned()
            }
        })
        .collect()
}

/// What a request sends, by place.
fn sends(request: &Value) -> Fields {
    let mut out = BTreeSet::new();
    for (key, place) in [("query", "query"), ("form", "body"), ("headers", "header")] {
        for name in request[key]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            out.insert((place.to_owned(), name.clone()));
        }
    }
    match &request["json"] {
        Value::Object(fields) => out.extend(fields.keys().map(|k| ("body".to_owned(), k.clone()))),
        Value::String(t) if t.contains("pick input") => out.extend(
            t.split('"')
                .skip(1)
                .step_by(2)
                .map(|k| ("body".to_owned(), k.to_owned())),
        ),
        _ => {}
    }
    out
}

fn check(app_file: &str, spec_file: &str) -> usize {
    let app: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join(app_file)).unwrap()).unwrap();
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(spec_file)).unwrap()).unwrap();
    // Where the description's paths start: Swagger's `basePath`, or the server URL's path.
    let base_path = match spec["basePath"].as_str() {
        Some(base) => base.to_owned(),
        None => spec
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .and_then(|u| u.split_once("://"))
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(_, p)| format!("/{p}"))
            .unwrap_or_default(),
    };
    let app_base = app["connection"]["base_url"].as_str().unwrap();
    let mut checked = 0;
    let mut problems = Vec::new();
    let calls = app["actions"]
        .as_object()
        .into_iter()
        .flatten()
        .chain(app["triggers"].as_object().into_iter().flatten());
    for (name, action) in calls {
        let request = &action["request"];
        let method = request["method"]
            .as_str()
            .unwrap_or("GET")
            .to_ascii_lowercase();
        let path = request["path"].as_str().unwrap();
        // The app's base may carry part of the description's path (Slack's
        // `/api`), also after a templated origin (Salesforce's instance).
        let after_origin = match app_base.split_once("://") {
            Some((_, rest)) => rest,
            None => app_base.split_once("}}").map_or("", |(_, rest)| rest),
        };
        let app_path = match after_origin.split_once('/') {
            Some((_, p)) => format!("/{p}"),
            None => String::new(),
        };
        let full = format!("{app_path}{path}");
        let wanted = segments(&full);
        let found = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find_map(|(p, item)| {
                (segments(&format!("{base_path}{p}")) == wanted)
                    .then(|| item.get(&method).map(|op| (item, op)))
                    .flatten()
            });
        let Some((item, op)) = found else {
            problems.push(format!(
                "{name}: {} {full} is not in the description",
                method.to_ascii_uppercase()
            ));
            continue;
        };
        let (known, required) = takes(&spec, item, op);
        let sent = sends(request);
        for (place, field) in &sent {
            if !known.contains(&(place.clone(), field.clone())) {
                problems.push(format!(
                    "{name}: sends {place} `{field}`, which {} does not take there",
                    op["operationId"]
                ));
            }
        }
        for (place, field) in &required {
            let by_path = place == "path";
            let by_auth = CREDENTIALS.contains(&field.to_ascii_lowercase().as_str());
            if !by_path && !by_auth && !sent.contains(&(place.clone(), field.clone())) {
                problems.push(format!(
                    "{name}: does not send the required {place} `{field}` of {}",
                    op["operationId"]
                ));
            }
        }
        let placeholders = path.matches("{{").count();
        let path_params = known.iter().filter(|(p, _)| p == "path").count();
        if placeholders != path_params {
            problems.push(format!(
                "{name}: {placeholders} path inputs, the operation has {path_params}"
            ));
        }
        let documented: BTreeSet<u64> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect();
        for status in action["expect"].as_array().into_iter().flatten() {
            if !documented.contains(&status.as_u64().unwrap()) {
                problems.push(format!(
                    "{name}: expects {status}, which {} does not document",
                    op["operationId"]
                ));
            }
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{app_file} against {spec_file}:\n{}",
        problems.join("\n")
    );
    checked
}

#[test]
fn every_stripe_action_and_watch_matches_stripes_description() {
    assert_eq!(
        check("apps/stripe.yaml", "openapi/conformance-stripe.json"),
        11
    );
}

#[test]
fn every_slack_action_matches_slacks_description() {
    assert_eq!(
        check("apps/slack.yaml", "openapi/conformance-slack.json"),
        3
    );
}

#[test]
fn every_pipedrive_action_and_watch_matches_pipedrives_description() {
    assert_eq!(
        check("apps/pipedrive.yaml", "openapi/conformance-pipedrive.json"),
        8
    );
}

#[test]
fn every_zendesk_action_matches_zendesks_description() {
    assert_eq!(
        check("apps/zendesk.yaml", "openapi/conformance-zendesk.json"),
        4
    );
}

#[test]
fn every_hubspot_action_and_watch_matches_hubspots_documentation() {
    assert_eq!(
        check("apps/hubspot.yaml", "openapi/conformance-hubspot.json"),
        11
    );
}

#[test]
fn every_google_sheets_action_matches_the_sheets_description() {
    assert_eq!(
        check(
            "apps/google-sheets.yaml",
            "openapi/conformance-google-sheets.json"
        ),
        3
    );
}

#[test]
fn every_salesforce_action_matches_salesforces_documentation() {
    assert_eq!(
        check(
            "apps/salesforce.yaml",
            "openapi/conformance-salesforce.json"
        ),
        4
    );
}

#[test]
fn the_check_catches_a_field_the_operation_does_not_take() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("openapi/conformance-stripe.json")).unwrap(),
    )
    .unwrap();
    let item = &spec["paths"]["/v1/refunds"];
    let (known, _) = takes(&spec, item, &item["post"]);
    assert!(known.contains(&("body".to_owned(), "payment_intent".to_owned())));
    assert!(!known.contains(&("body".to_owned(), "paymentIntent".to_owned())));
    let sent = sends(&serde_json::json!({ "form": { "paymentIntent": "x" } }));
    assert!(sent.iter().any(|s| !known.contains(s)));
}
