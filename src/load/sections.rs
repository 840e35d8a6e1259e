//! When a scenario's top-level sections do not deserialize together, each
//! is read on its own, so that a bad `name`, a bad `trigger` and a bad
//! `settings` are all reported at once (as bad steps already are), not
//! only the first that serde met. The sections that do read make up a
//! partial scenario, so its steps are still compiled and checked.

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
    problems_and_readable(errors, mapping).0
}

/// Stands in for a name that could not be read.
pub(super) const PLACEHOLDER_NAME: &str = "unreadable-name";

/// The header made of the sections that read on their own, and the field
/// paths of those that did not (`name`, `trigger`): what the compiler must
/// not judge, since it sees a default in their place. `None` when even that
/// header does not read.
pub(super) fn readable_header(
    errors: &Errors<'_>,
    mapping: &Mapping,
) -> Option<(Scenario<Yaml>, Vec<String>)> {
    let (_, readable, mut unreadable) = problems_and_readable(errors, mapping);
    let mut header = Mapping::new();
    for (key, value) in mapping {
        let Some(name) = key.as_str() else { continue };
        if readable.iter().any(|r| r == name) || name == "steps" || name == "on_failure" {
            header.insert(key.clone(), value.clone());
        } else if name == "connections" {
            // The connections that read stay, to be compiled and checked.
            if let Some((good, bad)) = readable_connections(errors, value) {
                header.insert(key.clone(), Yaml::Mapping(good));
                unreadable.retain(|u| u != "connections");
                unreadable.extend(bad);
            }
        }
    }
    for (required, placeholder) in [
        ("name", Yaml::String(PLACEHOLDER_NAME.to_owned())),
        ("steps", Yaml::Sequence(Vec::new())),
    ] {
        let key = Yaml::String(required.to_owned());
        if !header.contains_key(&key) {
            header.insert(key, placeholder);
            if !unreadable.iter().any(|u| u == required) {
                unreadable.push(required.to_owned());
            }
        }
    }
    let header = errors
        .read::<Scenario<Yaml>>(Yaml::Mapping(header), "")
        .ok()?;
    Some((header, unreadable))
}

/// Each connection on its own: one bad `auth` does not hide the next.
fn check_connections(errors: &Errors<'_>, value: &Yaml, out: &mut Vec<Diagnostic>) {
    let Yaml::Mapping(connections) = value else {
        return check::<BTreeMap<String, Connection>>(errors, value, "connections", out);
    };
    for (key, connection) in connections {
        match key.as_str() {
            Some(name) => {
                let path = super::join_key("connections", name);
                check::<Connection>(errors, connection, &path, out)
            }
            None => check::<BTreeMap<String, Connection>>(errors, value, "connections", out),
        }
    }
}

/// The connections that read on their own, and the paths of those that did not.
fn readable_connections(errors: &Errors<'_>, value: &Yaml) -> Option<(Mapping, Vec<String>)> {
    let Yaml::Mapping(connections) = value else {
        return None;
    };
    let (mut good, mut bad) = (Mapping::new(), Vec::new());
    for (key, connection) in connections {
        let name = key.as_str()?;
        let path = super::join_key("connections", name);
        let mut ignored = Vec::new();
        check::<Connection>(errors, connection, &path, &mut ignored);
        if ignored.is_empty() {
            good.insert(key.clone(), connection.clone());
        } else {
            bad.push(path);
        }
    }
    Some((good, bad))
}

/// Every section's problems, the names of the sections that read, and the
/// names of those that did not.
fn problems_and_readable(
    errors: &Errors<'_>,
    mapping: &Mapping,
) -> (Vec<Diagnostic>, Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let (mut readable, mut unreadable) = (Vec::new(), Vec::new());
    for (key, value) in mapping {
        let Some(name) = key.as_str() else { continue };
        let before = out.len();
        match name {
            "name" => check::<ScenarioName>(errors, value, name, &mut out),
            "description" | "owner" => check::<Option<String>>(errors, value, name, &mut out),
            "tags" => check::<Vec<String>>(errors, value, name, &mut out),
            "env" => check::<Vec<EnvVar>>(errors, value, name, &mut out),
            "vars" => check::<BTreeMap<String, serde_json::Value>>(errors, value, name, &mut out),
            "connections" => check_connections(errors, value, &mut out),
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
        if out.len() == before {
            readable.push(name.to_owned());
        } else {
            unreadable.push(name.to_owned());
        }
    }
    // A required section that is absent: the header's own message.
    for (required, other) in [("name", "steps"), ("steps", "name")] {
        if !mapping.contains_key(required) {
            let mut alone = Mapping::new();
            let stand_in = match other {
                "name" => Yaml::String(PLACEHOLDER_NAME.to_owned()),
                _ => Yaml::Sequence(Vec::new()),
            };
            alone.insert(Yaml::String(other.to_owned()), stand_in);
            check::<Scenario<Yaml>>(errors, &Yaml::Mapping(alone), "", &mut out);
        }
    }
    (out, readable, unreadable)
}
