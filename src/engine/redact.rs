//! Secret masking. Every string that leaves the engine (step records, errors,
//! trace details, the execution document) passes through here first.

use std::borrow::Cow;

use serde_json::Value;

/// Values shorter than this are not treated as secrets: masking `1` or `ab`
/// would garble every output without protecting anything.
pub const MIN_SECRET_LEN: usize = 4;

pub const MASK: &str = "***";

#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        Cow::Owned(out)
    }

    pub fn string(&self, text: String) -> String {
        match self.text(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => masked,
        }
    }

    /// Whether any string or key inside `value` holds a secret.
    pub fn finds_secret(&self, value: &Value) -> bool {
        if self.is_empty() {
            return false;
        }
        match value {
            Value::String(s) => matches!(self.text(s), Cow::Owned(_)),
            Value::Array(items) => items.iter().any(|v| self.finds_secret(v)),
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| matches!(self.text(k), Cow::Owned(_)) || self.finds_secret(v)),
            _ => false,
        }
    }

    /// Masks every string and key inside `value`, in place.
    pub fn value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.text(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => {
                if map.keys().any(|k| matches!(self.text(k), Cow::Owned(_))) {
                    let entries = std::mem::take(map);
                    for (k, v) in entries {
                        map.insert(self.string(k), v);
                    }
                }
                map.values_mut().for_each(|v| self.value(v));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_everywhere_in_a_value() {
        let r = Redactor::new([
            "s3cr3t-token".to_owned(),
            "s3cr3t".to_owned(),
            "ab".to_owned(),
        ]);
        let mut v =
            json!({"auth": "Bearer s3cr3t-token", "list": ["x s3cr3t y"], "s3cr3t": 1, "ab": "ab"});
        r.value(&mut v);
        assert_eq!(
            v,
            json!({"auth": "Bearer ***", "list": ["x *** y"], "***": 1, "ab": "ab"})
        );
    }

    #[test]
    fn a_quoted_body_is_masked_before_it_is_cut() {
        let secret = "s3cr3t-token-XYZ";
        let r = Redactor::new([secret.to_owned(), "quo\"te-secret".to_owned()]);
        // The cut at 200 characters falls inside the token.
        let body = format!("{} Bearer {secret} and more", "x".repeat(185));
        let error = crate::engine::StepError {
            body: Some(Value::String(body)),
            ..crate::engine::StepError::retryable("POST /charge answered 500")
        };
        let masked = error.masked(&r);
        assert!(!masked.contains("s3cr3t"), "{masked}");
        assert!(
            masked.starts_with("POST /charge answered 500: xxx"),
            "{masked}"
        );
        assert!(masked.ends_with(" Bearer *** and"), "{masked}");
        // JSON text escapes a quote: the value is masked, then written out.
        let error = crate::engine::StepError {
            body: Some(json!({ "echo": "quo\"te-secret" })),
            ..crate::engine::StepError::fatal("GET /x answered 400")
        };
        assert_eq!(error.masked(&r), r#"GET /x answered 400: {"echo":"***"}"#);
    }
}
