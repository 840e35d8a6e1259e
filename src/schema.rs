//! The JSON Schemas of the scenario language and of scenario test files,
//! generated from the models so that they cannot drift from what the loaders
//! accept. `schemas/scenario.schema.json` and
//! `schemas/scenario-test.schema.json` are this output, committed for
//! editors; a test fails when one is stale.

use crate::model::Scenario;

pub fn scenario_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Scenario)).expect("schemas serialize");
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "$id".to_owned(),
            "https://scenarist.dev/schemas/scenario.schema.json".into(),
        );
        root.insert(
            "description".to_owned(),
            "A scenarist scenario: a trigger, steps (http, set, filter, router, for_each, respond, fail) and settings.".into(),
        );
    }
    schema
}

/// The schema as committed: pretty JSON with a final newline.
pub fn scenario_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&scenario_schema()).expect("schemas serialize");
    text.push('\n');
    text
}

/// The schema of `NAME.test.yaml` files (`scenarist schema --tests`).
pub fn test_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(crate::testing::model::TestFile))
        .expect("schemas serialize");
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "$id".to_owned(),
            "https://scenarist.dev/schemas/scenario-test.schema.json".into(),
        );
        root.insert(
            "description".to_owned(),
            "A scenarist scenario test file: cases with a trigger, mocked http answers, approvals, events in virtual time and expectations.".into(),
        );
    }
    schema
}

pub fn test_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&test_schema()).expect("schemas serialize");
    text.push('\n');
    text
}

/// The schema of app files (`apps/NAME.yaml`, `scenarist schema --app`).
pub fn app_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(crate::model::App)).expect("schemas serialize");
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "$id".to_owned(),
            "https://scenarist.dev/schemas/app.schema.json".into(),
        );
        root.insert(
            "description".to_owned(),
            "A scenarist app: env, a connection and actions with typed inputs, used by `uses: APP.ACTION` steps.".into(),
        );
    }
    schema
}

pub fn app_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&app_schema()).expect("schemas serialize");
    text.push('\n');
    text
}
