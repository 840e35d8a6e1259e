//! The sections around the steps that are neither trigger nor connections:
//! declared `env` names, the `input` schema and `settings` (business keys,
//! concurrency).

use std::collections::HashSet;

use super::{Compiler, Scope, MAX_KEYS};
use crate::load::join_key;
use crate::model::Concurrency;
use crate::plan::Expr;

impl Compiler<'_> {
    pub(super) fn check_env(&mut self) {
        let mut seen = HashSet::new();
        for (i, var) in self.loaded.scenario.env.iter().enumerate() {
            let name = var.name();
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                self.error(
                    &format!("env[{i}]"),
                    format!(
                        "invalid environment variable name `{name}`: use letters, digits and _"
                    ),
                );
            }
            if !seen.insert(name.to_owned()) {
                self.error(&format!("env[{i}]"), format!("`{name}` is declared twice"));
            }
        }
    }

    pub(super) fn compile_input_schema(&mut self) -> Option<jsonschema::Validator> {
        let input = self.loaded.scenario.input.as_ref()?;
        match jsonschema::validator_for(&input.schema) {
            Ok(v) => Some(v),
            Err(e) => {
                // The error's instance is the user's schema: point inside it.
                let at = e.instance_path.to_string();
                let path = at
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .fold("input.schema".to_owned(), |p, seg| join_key(&p, seg));
                self.error(&path, format!("invalid JSON Schema: {e}"));
                None
            }
        }
    }

    /// Checks `settings`; returns the business keys, compiled.
    pub(super) fn check_settings(&mut self) -> Vec<(String, Expr)> {
        let settings = &self.loaded.scenario.settings;
        if settings.keys.len() > MAX_KEYS {
            self.error(
                "settings.keys",
                format!(
                    "at most {MAX_KEYS} business keys, found {}",
                    settings.keys.len()
                ),
            );
        }
        let mut keys = Vec::new();
        for (name, template) in &settings.keys {
            let path = format!("settings.keys.{name}");
            let well_formed = !name.is_empty()
                && name.len() <= 40
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                self.error(
                    &path,
                    format!(
                        "`{name}` is not a key name: use 1 to 40 lowercase letters, digits and `_`"
                    ),
                );
            }
            let expr = self.expr_str(template, &path, &Scope::default());
            keys.push((name.clone(), expr));
        }
        match &self.loaded.scenario.settings.concurrency {
            Some(Concurrency::Limit(0)) | Some(Concurrency::Keyed { limit: 0, .. }) => {
                self.error(
                    "settings.concurrency",
                    "the concurrency limit must be at least 1",
                );
            }
            Some(Concurrency::Keyed { key: Some(key), .. }) => {
                self.expr_str(key, "settings.concurrency.key", &Scope::default());
            }
            _ => {}
        }
        keys
    }
}
