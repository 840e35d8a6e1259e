//! Conditions as an ops person writes them: `all`, `any`, `not`, a comparison
//! `{ value, <op>: operand }`, or a template that must render exactly `true`/`false`.
//!
//! This is raw data; regexes and expressions inside are compiled by `plan`.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A condition used by `when` and `filter`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    /// A template such as `{{ gte trigger.body.amount 500 }}`; it must render
    /// exactly `true` or `false`, never "something truthy".
    Template(String),
    /// A literal `true` or `false`, handy to switch a step off while testing.
    Literal(bool),
    All {
        all: Vec<Condition>,
    },
    Any {
        any: Vec<Condition>,
    },
    Not {
        not: Box<Condition>,
    },
    Compare(Comparison),
}

/// `{ value: <expr>, <op>: <operand> }`: exactly one operator.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Comparison {
    /// The expression to test (template, JSONPath or literal).
    pub value: Value,
    #[serde(flatten)]
    pub op: CompareOp,
}

/// The operator of a comparison and its operand.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Equals(Value),
    NotEquals(Value),
    In(Value),
    NotIn(Value),
    Contains(Value),
    NotContains(Value),
    StartsWith(Value),
    EndsWith(Value),
    /// A regular expression (Rust `regex` syntax), searched anywhere in the value.
    Matches(String),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    Exists(bool),
    Empty(bool),
}

impl CompareOp {
    pub const NAMES: &'static [&'static str] = &[
        "equals",
        "not_equals",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "matches",
        "gt",
        "gte",
        "lt",
        "lte",
        "exists",
        "empty",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            CompareOp::Equals(_) => "equals",
            CompareOp::NotEquals(_) => "not_equals",
            CompareOp::In(_) => "in",
            CompareOp::NotIn(_) => "not_in",
            CompareOp::Contains(_) => "contains",
            CompareOp::NotContains(_) => "not_contains",
            CompareOp::StartsWith(_) => "starts_with",
            CompareOp::EndsWith(_) => "ends_with",
            CompareOp::Matches(_) => "matches",
            CompareOp::Gt(_) => "gt",
            CompareOp::Gte(_) => "gte",
            CompareOp::Lt(_) => "lt",
            CompareOp::Lte(_) => "lte",
            CompareOp::Exists(_) => "exists",
            CompareOp::Empty(_) => "empty",
        }
    }

    fn from_entry(key: &str, operand: Value) -> Result<Self, String> {
        let text = |v: Value| match v {
            Value::String(s) => Ok(s),
            other => Err(format!("`{key}` takes a string, found {other}")),
        };
        let flag = |v: Value| match v {
            Value::Bool(b) => Ok(b),
            other => Err(format!("`{key}` takes true or false, found {other}")),
        };
        Ok(match key {
            "equals" => CompareOp::Equals(operand),
            "not_equals" => CompareOp::NotEquals(operand),
            "in" => CompareOp::In(operand),
            "not_in" => CompareOp::NotIn(operand),
            "contains" => CompareOp::Contains(operand),
            "not_contains" => CompareOp::NotContains(operand),
            "starts_with" => CompareOp::StartsWith(operand),
            "ends_with" => CompareOp::EndsWith(operand),
            "matches" => CompareOp::Matches(text(operand)?),
            "gt" => CompareOp::Gt(operand),
            "gte" => CompareOp::Gte(operand),
            "lt" => CompareOp::Lt(operand),
            "lte" => CompareOp::Lte(operand),
            "exists" => CompareOp::Exists(flag(operand)?),
            "empty" => CompareOp::Empty(flag(operand)?),
            _ => unreachable!("caller checks the operator name"),
        })
    }
}

impl Condition {
    /// Builds a condition from a YAML/JSON value, with messages that name the
    /// allowed shapes (serde's untagged enums only say "did not match any variant").
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(Condition::Template(s)),
            Value::Bool(b) => Ok(Condition::Literal(b)),
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                if keys.len() == 1 && matches!(keys[0], "all" | "any" | "not") {
                    let (key, inner) = entries.pop().expect("one entry");
                    return match key.as_str() {
                        "not" => Ok(Condition::Not {
                            not: Box::new(Condition::from_value(inner)?),
                        }),
                        _ => {
                            let Value::Array(items) = inner else {
                                return Err(format!("`{key}` takes a list of conditions"));
                            };
                            let items = items
                                .into_iter()
                                .enumerate()
                                .map(|(i, c)| Condition::from_value(c).map_err(|e| format!("{key}[{i}]: {e}")))
                                .collect::<Result<Vec<_>, _>>()?;
                            Ok(if key == "all" {
                                Condition::All { all: items }
                            } else {
                                Condition::Any { any: items }
                            })
                        }
                    };
                }
                for key in &keys {
                    if matches!(*key, "all" | "any" | "not") {
                        return Err(format!("`{key}` must be the only key of its condition"));
                    }
                    if *key != "value" && !CompareOp::NAMES.contains(key) {
                        let hint = crate::diagnostic::did_you_mean(key, CompareOp::NAMES.iter().copied().chain(["value", "all", "any", "not"]))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown condition key `{key}`{hint} (expected all, any, not, or value with one of: {})",
                            CompareOp::NAMES.join(", ")
                        ));
                    }
                }
                let value_pos = entries.iter().position(|(k, _)| k == "value").ok_or_else(|| {
                    "a comparison needs `value` (the thing to test) and one operator, e.g. `{ value: \"{{ trigger.body.stage }}\", equals: closed_won }`".to_string()
                })?;
                let (_, value) = entries.remove(value_pos);
                match entries.len() {
                    1 => {
                        let (key, operand) = entries.pop().expect("one entry");
                        Ok(Condition::Compare(Comparison {
                            value,
                            op: CompareOp::from_entry(&key, operand)?,
                        }))
                    }
                    0 => Err(format!("a comparison needs one operator: {}", CompareOp::NAMES.join(", "))),
                    _ => Err(format!(
                        "a comparison takes exactly one operator, found {}; combine several with `all`",
                        entries.iter().map(|(k, _)| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
            other => Err(format!(
                "a condition is a template string, true/false, or a map (all, any, not, or value + operator); found {}",
                describe(&other)
            )),
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Condition::from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Condition, String> {
        Condition::from_value(v)
    }

    #[test]
    fn comparison_needs_exactly_one_operator() {
        assert!(matches!(
            parse(json!({"value": "x", "equals": "y"})).unwrap(),
            Condition::Compare(Comparison {
                op: CompareOp::Equals(_),
                ..
            })
        ));
        assert!(parse(json!({"value": "x"}))
            .unwrap_err()
            .contains("needs one operator"));
        assert!(parse(json!({"value": "x", "gt": 1, "lt": 3}))
            .unwrap_err()
            .contains("exactly one operator"));
    }

    #[test]
    fn unknown_operator_suggests_the_close_one() {
        let err = parse(json!({"value": "x", "equal": "y"})).unwrap_err();
        assert!(err.contains("did you mean `equals`"), "{err}");
    }

    #[test]
    fn nested_groups_parse() {
        let c = parse(json!({"all": [{"not": {"value": 1, "exists": true}}, "{{ x }}", true]}))
            .unwrap();
        let Condition::All { all } = c else {
            panic!("not all")
        };
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn wrong_types_are_named() {
        assert!(parse(json!(3)).unwrap_err().contains("found a number"));
        assert!(parse(json!({"value": 1, "exists": "yes"}))
            .unwrap_err()
            .contains("true or false"));
        assert!(parse(json!({"any": "x"}))
            .unwrap_err()
            .contains("list of conditions"));
    }
}
