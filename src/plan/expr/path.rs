//! `{{ a.b.c }}` alone: a dotted path read straight from the context, typed,
//! without rendering a template.

use serde_json::Value;

use crate::plan::helpers;

/// A dotted path into the context, e.g. `steps.find.body.users.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPath {
    pub(super) segments: Vec<String>,
}

impl ContextPath {
    /// Parses `a.b.0.c` or `a.[b c].d`; `None` when it is not a plain path or
    /// when its first segment is a helper name (then it is a helper call).
    pub fn parse(text: &str) -> Option<ContextPath> {
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let segment;
            if let Some(bracketed) = rest.strip_prefix('[') {
                let end = bracketed.find(']')?;
                segment = &bracketed[..end];
                rest = &bracketed[end + 1..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                segment = &rest[..end];
                rest = &rest[end..];
                if segment.is_empty()
                    || !segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@')
                {
                    return None;
                }
            }
            segments.push(segment.to_owned());
            if let Some(after) = rest.strip_prefix('.') {
                if after.is_empty() {
                    return None;
                }
                rest = after;
            } else if !rest.is_empty() {
                return None;
            }
        }
        let first = segments.first()?;
        if helpers::HELPER_NAMES.contains(&first.as_str())
            || first.starts_with('@')
            || first == "this"
        {
            return None;
        }
        Some(ContextPath { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn lookup<'a>(&self, data: &'a Value) -> Option<&'a Value> {
        let mut current = data;
        for segment in &self.segments {
            current = step_into(current, segment)?;
        }
        Some(current)
    }

    /// "`trigger.body.amout` is missing (trigger.body has: amount, email)".
    pub(in crate::plan) fn missing_message(&self, data: &Value) -> String {
        let mut current = data;
        for (depth, segment) in self.segments.iter().enumerate() {
            match step_into(current, segment) {
                Some(next) => current = next,
                None => {
                    let parent = self.segments[..depth].join(".");
                    let full = self.segments.join(".");
                    return match current {
                        Value::Object(map) if depth > 0 => {
                            let keys: Vec<&str> = map.keys().map(String::as_str).take(12).collect();
                            let hint =
                                crate::diagnostic::did_you_mean(segment, keys.iter().copied())
                                    .map(|s| format!("; did you mean `{parent}.{s}`?"))
                                    .unwrap_or_default();
                            if keys.is_empty() {
                                format!("`{full}` is missing (`{parent}` is empty)")
                            } else {
                                format!(
                                    "`{full}` is missing{hint} (`{parent}` has: {})",
                                    keys.join(", ")
                                )
                            }
                        }
                        Value::Array(items) if depth > 0 => {
                            format!(
                                "`{full}` is missing (`{parent}` is a list of {} items)",
                                items.len()
                            )
                        }
                        _ if depth > 0 => {
                            format!("`{full}` is missing (`{parent}` is {})", kind_of(current))
                        }
                        _ => format!("`{full}` is missing"),
                    };
                }
            }
        }
        format!("`{}` is missing", self.segments.join("."))
    }
}

fn step_into<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
