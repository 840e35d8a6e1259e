//! When a scenario's top-level sections do not deserialize together, each
//! is read on its own, so that a bad `name`, a bad `trigger` and a bad
//! `settings` are all reported at once (as bad steps already are), not
//! only the first that serde met.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value as Yaml};

use super::Errors;
use crate::diagnostic::Diagnostic;
use crate::model::{Connection, EnvVar, InputSpec, Scenario, ScenarioName, Settings, Trigger};

fn check<T: DeserializeOwned>(
    errors: &Errors<'_>,
    value: &Yaml,
    path: &str,
    out: &mut Vec<Diagnostic>,
) {
    if let Err(d) = errors.read::<T>(value.clone(), path) {
        out.push(d);
    }
}

/// The problems of every top-level section but the steps (read one by one
/// elsewhere).
pub(super) fn problems(errors: &Errors<'_>, mapping: &Mapping) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (key, value) in mapping {
        let Some(name) = key.as_str() else { continue };
        match name {
            "name" => check::<ScenarioName>(errors, value, name, &mut out),
            "description" | "owner" => check::<Option<String>>(errors, value, name, &mut out),
            "tags" => check::<Vec<String>>(errors, value, name, &mut out),
            "env" => check::<Vec<EnvVar>>(errors, value, name, &mut out),
            "vars" => check::<BTreeMap<String, serde_json::Value>>(errors, value, name, &mut out),
            "connections" => check::<BTreeMap<String, Connection>>(errors, value, name, &mut out),
            "trigger" => check::<Trigger>(errors, value, name, &mut out),
            "input" => check::<Option<InputSpec>>(errors, value, name, &mut out),
            "settings" => check::<Settings>(errors, value, name, &mut out),
            "steps" | "on_failure" => {}
            // An unknown key alone: the header's own message, with "did you mean".
            _ => {
                let mut alone = Mapping::new();
                alone.insert(key.clone(), value.clone());
                check::<Scenario<Yaml>>(errors, &Yaml::Mapping(alone), "", &mut out);
            }
        }
    }
    out
}
