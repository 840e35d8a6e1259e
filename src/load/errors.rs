//! serde's errors in the scenario author's words: positioned by field path
//! through the [`SourceMap`] (an unknown key at the key itself), with "did
//! you mean" when an unknown key or value is close to an expected one.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::Value as Yaml;

use super::{join_index, join_key, SourceMap};
use crate::diagnostic::{did_you_mean, Diagnostic};

pub(super) struct Errors<'a> {
    pub(super) file: &'a Path,
    pub(super) map: &'a SourceMap,
}

impl Errors<'_> {
    pub(super) fn at(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file, self.map.value(path), path, message)
    }

    /// Deserializes `value` (found at `base`) and turns a failure into a located diagnostic.
    pub(super) fn read<T: DeserializeOwned>(
        &self,
        value: Yaml,
        base: &str,
    ) -> Result<T, Diagnostic> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let relative = render_path(e.path());
            let mut path = match (base.is_empty(), relative.is_empty()) {
                (_, true) => base.to_owned(),
                (true, false) => relative,
                (false, false) if relative.starts_with('[') => format!("{base}{relative}"),
                (false, false) => format!("{base}.{relative}"),
            };
            let raw = e.inner().to_string();
            if let Some(unknown) = quoted_after(&raw, "unknown field `") {
                // serde reports unknown keys at the containing map; point at the key itself.
                if !path.ends_with(&unknown) {
                    path = join_key(&path, &unknown);
                }
                let position = self.map.key(&path);
                return Diagnostic::new(self.file, position, &path, improve_message(&raw));
            }
            Diagnostic::new(
                self.file,
                self.map.value(&path),
                &path,
                improve_message(&raw),
            )
        })
    }
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out = join_index(&out, *index),
            Segment::Map { key } => out = join_key(&out, key),
            Segment::Enum { variant } => out = join_key(&out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let end = text[start..].find('`')? + start;
    Some(text[start..end].to_owned())
}

/// Rewrites serde's messages in the scenario author's words, with a suggestion
/// when an unknown key or value is close to an expected one.
fn improve_message(raw: &str) -> String {
    let expected: Vec<&str> = raw
        .split_once("expected ")
        .map(|(_, rest)| rest.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    for (prefix, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(word) = quoted_after(raw, prefix) {
            let hint = did_you_mean(&word, expected.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let allowed = if expected.is_empty() {
                String::new()
            } else {
                format!(" (expected one of: {})", expected.join(", "))
            };
            return format!("unknown {noun} `{word}`{hint}{allowed}");
        }
    }
    if let Some(field) = quoted_after(raw, "missing field `") {
        return format!("missing required key `{field}`");
    }
    raw.replace("invalid type: ", "wrong type: found ")
        .replace("expected u16", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
}
