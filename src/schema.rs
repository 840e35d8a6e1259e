//! The JSON Schema of the scenario language, generated from the model so that
//! it cannot drift from what the loader accepts. `schemas/scenario.schema.json`
//! is this output, committed for editors; a test fails when it is stale.

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
