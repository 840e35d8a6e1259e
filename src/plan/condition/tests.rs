use super::*;
use serde_json::json;

fn check(condition: Value, data: Value) -> Result<bool, EvalError> {
    let condition: Condition = serde_json::from_value(condition).unwrap();
    Cond::compile(&condition)
        .unwrap()
        .eval(&Context::from(data))
}

#[test]
fn numeric_strings_compare_as_numbers() {
    let data = json!({"amount": "750"});
    assert!(check(json!({"value": "{{ amount }}", "gte": 500}), data.clone()).unwrap());
    assert!(check(
        json!({"value": "{{ amount }}", "equals": 750}),
        data.clone()
    )
    .unwrap());
    assert!(!check(json!({"value": "{{ amount }}", "lt": "80"}), data).unwrap());
}

#[test]
fn strings_compare_in_order_and_mismatches_are_errors() {
    let data = json!({"d": "2026-01-05", "o": {"a": 1}});
    assert!(check(
        json!({"value": "{{ d }}", "gt": "2025-12-31"}),
        data.clone()
    )
    .unwrap());
    let err = check(json!({"value": "{{ o }}", "gt": 1}), data).unwrap_err();
    assert!(err.0.contains("`gt` cannot compare"), "{}", err.0);
}

#[test]
fn membership_and_text_operators() {
    let data = json!({"seg": "enterprise", "tags": ["vip", "eu"], "email": "ann@acme.com"});
    assert!(check(
        json!({"value": "{{ seg }}", "in": ["smb", "enterprise"]}),
        data.clone()
    )
    .unwrap());
    assert!(check(
        json!({"value": "{{ tags }}", "contains": "vip"}),
        data.clone()
    )
    .unwrap());
    assert!(check(
        json!({"value": "{{ email }}", "ends_with": "@acme.com"}),
        data.clone()
    )
    .unwrap());
    assert!(check(
        json!({"value": "{{ email }}", "matches": "^[a-z]+@"}),
        data.clone()
    )
    .unwrap());
    assert!(check(json!({"value": "{{ seg }}", "not_in": ["smb"]}), data).unwrap());
}

#[test]
fn exists_and_empty_tolerate_missing_paths() {
    let data = json!({"a": {"b": "", "n": null}});
    assert!(check(
        json!({"value": "{{ a.zzz }}", "exists": false}),
        data.clone()
    )
    .unwrap());
    assert!(check(json!({"value": "{{ a.n }}", "exists": false}), data.clone()).unwrap());
    assert!(check(json!({"value": "{{ a.b }}", "empty": true}), data.clone()).unwrap());
    // Any other operator on a missing path is an error naming the path.
    let err = check(json!({"value": "{{ a.zzz }}", "equals": 1}), data).unwrap_err();
    assert!(err.0.contains("`a.zzz` is missing"), "{}", err.0);
}

#[test]
fn template_conditions_must_be_true_or_false() {
    let data = json!({"amount": 600, "name": "x"});
    assert!(check(json!("{{ gte amount 500 }}"), data.clone()).unwrap());
    let err = check(json!("{{ name }}"), data).unwrap_err();
    assert!(err.0.contains("must give true or false"), "{}", err.0);
}

#[test]
fn groups_short_circuit() {
    let data = json!({"a": 1});
    assert!(check(json!({"any": [{"value": "{{ a }}", "equals": 1}, {"value": "{{ missing }}", "equals": 1}]}), data.clone()).unwrap());
    assert!(!check(json!({"all": [{"value": "{{ a }}", "equals": 2}, {"value": "{{ missing }}", "equals": 1}]}), data.clone()).unwrap());
    assert!(check(json!({"not": {"value": "{{ a }}", "equals": 2}}), data).unwrap());
}

#[test]
fn bad_regexes_are_compile_errors() {
    let condition: Condition =
        serde_json::from_value(json!({"value": "x", "matches": "(unclosed"})).unwrap();
    let errors = Cond::compile(&condition).unwrap_err();
    assert_eq!(errors[0].0, ".matches");
    assert!(
        errors[0].1.contains("invalid regular expression"),
        "{}",
        errors[0].1
    );
}
