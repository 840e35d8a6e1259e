//! `$.a[*].b`: JSONPath queries, compiled once, walked directly when they
//! only name keys, indexes and wildcards.

use std::borrow::Cow;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value;

use super::one_line;

#[derive(Debug, Clone)]
pub struct JsonPathQuery {
    pub(super) query: JpQuery,
    /// A definite path yields one value (null when absent); others an array.
    definite: bool,
    /// The query as plain steps when it only names keys, indexes and
    /// wildcards: walked directly, without building a path string per match.
    simple: Option<Vec<Selector>>,
}

/// The deepest nesting of brackets and parentheses a JSONPath query may have.
/// The parser backtracks at every level, so its time multiplies with each one:
/// seven levels of `value(none_of(((... [?` (150 bytes) took over a minute.
pub const MAX_JSONPATH_NESTING: usize = 10;

/// How deep brackets and parentheses nest in `text`, outside quoted names.
pub(super) fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0, None, false);
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

impl JsonPathQuery {
    pub(super) fn compile(text: &str) -> Result<JsonPathQuery, String> {
        if nesting(text) > MAX_JSONPATH_NESTING {
            return Err(format!(
                "invalid JSONPath `{text}`: brackets and parentheses nest more than {MAX_JSONPATH_NESTING} deep"
            ));
        }
        let query = jsonpath_rust::parser::parse_json_path(text)
            .map_err(|e| format!("invalid JSONPath `{text}`: {}", one_line(&e.to_string())))?;
        let definite = query
            .segments
            .iter()
            .all(|s| matches!(s, Segment::Selector(Selector::Name(_) | Selector::Index(_))));
        let simple = query
            .segments
            .iter()
            .map(|s| match s {
                Segment::Selector(
                    sel @ (Selector::Name(_) | Selector::Index(_) | Selector::Wildcard),
                ) => Some(sel.clone()),
                _ => None,
            })
            .collect();
        Ok(JsonPathQuery {
            query,
            definite,
            simple,
        })
    }

    pub(super) fn eval<'a>(&'a self, data: &'a Value) -> Cow<'a, Value> {
        if let Some(steps) = &self.simple {
            let mut found = Vec::new();
            walk(data, steps, &mut found);
            return if self.definite {
                found
                    .into_iter()
                    .next()
                    .map(Cow::Borrowed)
                    .unwrap_or(Cow::Owned(Value::Null))
            } else {
                Cow::Owned(Value::Array(found.into_iter().cloned().collect()))
            };
        }
        let found = jsonpath_rust::query::js_path_process(&self.query, data).unwrap_or_default();
        if self.definite {
            found
                .into_iter()
                .next()
                .map(|r| Cow::Borrowed(r.val))
                .unwrap_or(Cow::Owned(Value::Null))
        } else {
            Cow::Owned(Value::Array(
                found.into_iter().map(|r| r.val.clone()).collect(),
            ))
        }
    }
}

/// RFC 9535 semantics for name, index (negative from the end) and wildcard selectors.
fn walk<'a>(value: &'a Value, steps: &[Selector], found: &mut Vec<&'a Value>) {
    let Some((first, rest)) = steps.split_first() else {
        found.push(value);
        return;
    };
    match (first, value) {
        (Selector::Name(name), Value::Object(map)) => {
            if let Some(v) = map.get(name) {
                walk(v, rest, found);
            }
        }
        (Selector::Index(i), Value::Array(items)) => {
            let index = if *i < 0 { items.len() as i64 + i } else { *i };
            if let Some(v) = usize::try_from(index).ok().and_then(|i| items.get(i)) {
                walk(v, rest, found);
            }
        }
        (Selector::Wildcard, Value::Array(items)) => {
            items.iter().for_each(|v| walk(v, rest, found))
        }
        (Selector::Wildcard, Value::Object(map)) => map.values().for_each(|v| walk(v, rest, found)),
        _ => {}
    }
}
