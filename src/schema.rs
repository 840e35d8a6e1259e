//! The JSON Schemas of the scenario language and of scenario test files,
//! generated from the models so that they cannot drift from what the loaders
//! accept. `schemas/scenario.schema.json` and
//! `schemas/scenario-test.schema.json` are this output, committed for
//! editors; a test fails when one is stale.

use serde_json::{json, Value};

use crate::model::Scenario;
use crate::plan::app::Apps;

/// Adds to an object schema with `uses` and `with` properties one
/// `if`/`then` per named input schema, and the names as `uses` examples.
fn select_with(def: Option<&mut Value>, named: Vec<(String, &Value)>) {
    let Some(Value::Object(def)) = def else {
        return;
    };
    if named.is_empty() {
        return;
    }
    if let Some(uses) = def
        .get_mut("properties")
        .and_then(|p| p.get_mut("uses"))
        .and_then(Value::as_object_mut)
    {
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        uses.insert("examples".to_owned(), json!(names));
    }
    let rules: Vec<Value> = named
        .iter()
        .map(|(name, input)| {
            json!({
                "if": { "properties": { "uses": { "const": name } }, "required": ["uses"] },
                "then": { "properties": { "with": input } }
            })
        })
        .collect();
    def.insert("allOf".to_owned(), Value::Array(rules));
}

/// The scenario schema with the built-in apps' actions and watches.
pub fn scenario_schema() -> serde_json::Value {
    scenario_schema_with(crate::plan::app::builtin())
}

/// The scenario schema in which `with:` of a `uses:` step (and of a poll's
/// `uses:`) has the input schema of that app's action or watch, so that an
/// editor completes and checks it: one `if uses is X then with is ...` per
/// action, and the names as `uses`' examples.
pub fn scenario_schema_with(apps: &Apps) -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Scenario)).expect("schemas serialize");
    let actions = apps.iter().flat_map(|(app, plan)| {
        plan.actions
            .iter()
            .map(move |(name, action)| (format!("{app}.{name}"), &action.schema))
    });
    let watches = apps.iter().flat_map(|(app, plan)| {
        plan.triggers
            .iter()
            .map(move |(name, watch)| (format!("{app}.{name}"), &watch.action.schema))
    });
    if let Some(defs) = schema.get_mut("$defs") {
        select_with(defs.get_mut("Step"), actions.collect());
        select_with(defs.get_mut("Poll"), watches.collect());
    }
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
    scenario_schema_text_with(crate::plan::app::builtin())
}

/// As [`scenario_schema_text`], with these apps (`scenarist schema --apps DIR`).
pub fn scenario_schema_text_with(apps: &Apps) -> String {
    let mut text =
        serde_json::to_string_pretty(&scenario_schema_with(apps)).expect("schemas serialize");
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// A scenario document with one `uses` step and one poll.
    fn scenario(with: serde_json::Value, poll_with: serde_json::Value) -> serde_json::Value {
        json!({
            "name": "won",
            "trigger": { "poll": { "uses": "hubspot.deal_entered_stage", "with": poll_with, "every": "5m" } },
            "steps": [{ "id": "deal", "uses": "hubspot.get_deal", "with": with }]
        })
    }

    #[test]
    fn with_is_checked_against_the_input_of_the_action_that_uses_names() {
        let schema = super::scenario_schema();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let good = scenario(json!({ "deal_id": "42" }), json!({ "stage": "closedwon" }));
        assert!(validator.is_valid(&good));
        // get_deal needs deal_id; deal_entered_stage needs stage.
        assert!(!validator.is_valid(&scenario(json!({}), json!({ "stage": "closedwon" }))));
        assert!(!validator.is_valid(&scenario(json!({ "deal_id": "42" }), json!({}))));
        let uses = &schema["$defs"]["Step"]["properties"]["uses"]["examples"];
        assert!(
            uses.as_array().unwrap().contains(&json!("stripe.refund")),
            "{uses}"
        );
    }
}
