//! `scenarist apps import openapi`: an API description (OpenAPI 3.0 or 3.1,
//! Swagger 2.0; JSON or YAML) into an app file. `servers` (or `host` and
//! `basePath`) give `base_url`, the security schemes `auth:`, each chosen
//! operation an action (`operation.rs`). The file is a pure function of the
//! description and the options: actions sorted by name, keys in a fixed
//! order, so importing again gives the same bytes. What cannot be mapped is
//! named, with the operation and why.

mod auth;
mod operation;
mod schema;
mod spec;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

pub use operation::snake_case;

/// A description of more operations than this needs `--tag`, `--operation` or `--path`.
pub const MAX_UNFILTERED: usize = 100;

#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The app's name (default: from the description's title).
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// `operationId`s, or the actions' names.
    pub operations: Vec<String>,
    /// Path prefixes, e.g. `/v1/customers`.
    pub paths: Vec<String>,
    /// Where the description came from, for the file's first lines.
    pub source: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("this is not an OpenAPI or Swagger description (no `openapi: 3.x` or `swagger: \"2.0\"` with `paths`)")]
    NotOpenApi,
    #[error("description version {0} is not read (OpenAPI 3.0 and 3.1, Swagger 2.0 are)")]
    Version(String),
    #[error("the description does not parse: {0}")]
    Parse(String),
    #[error("{count} operations is too many for one app: choose with --tag, --operation or --path ({choices})")]
    TooMany { count: usize, choices: String },
    #[error("no operation matches {0}")]
    NothingChosen(String),
    #[error("`{0}` is not an app name: lowercase letters, digits and `-` (give one with --name)")]
    Name(String),
}

/// What an import made.
#[derive(Debug)]
pub struct Imported {
    pub name: String,
    /// The app file's text.
    pub yaml: String,
    pub actions: usize,
    /// What was left out or changed, each naming the operation.
    pub notes: Vec<String>,
}

/// Reads a description written as JSON or YAML.
pub fn parse(text: &str) -> Result<Value, ImportError> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| ImportError::Parse(e.to_string()))
    } else {
        serde_yaml::from_str(text).map_err(|e| ImportError::Parse(e.to_string()))
    }
}

fn app_name(title: &str) -> String {
    snake_case(title).replace('_', "-")
}

pub fn import(root: &Value, options: &Options) -> Result<Imported, ImportError> {
    let described = spec::read(root)?;
    let name = match &options.name {
        Some(name) => name.clone(),
        None => app_name(described.title.as_deref().unwrap_or("api")),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(ImportError::Name(name));
    }
    let filtered =
        !(options.tags.is_empty() && options.operations.is_empty() && options.paths.is_empty());
    let chosen: Vec<&spec::Op> = described
        .ops
        .iter()
        .filter(|op| {
            !filtered
                || op.tags.iter().any(|t| options.tags.contains(t))
                || op.id.as_ref().is_some_and(|id| {
                    options
                        .operations
                        .iter()
                        .any(|o| o == id || *o == snake_case(id))
                })
                || options
                    .paths
                    .iter()
                    .any(|p| op.path.starts_with(p.as_str()))
        })
        .collect();
    if !filtered && chosen.len() > MAX_UNFILTERED {
        let mut tags: BTreeMap<&str, usize> = BTreeMap::new();
        for op in &described.ops {
            for tag in &op.tags {
                *tags.entry(tag).or_default() += 1;
            }
        }
        let choices = if tags.is_empty() {
            "its operations have no tags; e.g. --path /v1/customers".to_owned()
        } else {
            let listed: Vec<String> = tags.iter().map(|(t, n)| format!("{t} ({n})")).collect();
            format!("tags: {}", listed.join(", "))
        };
        return Err(ImportError::TooMany {
            count: chosen.len(),
            choices,
        });
    }
    if chosen.is_empty() {
        let what = [
            options
                .tags
                .iter()
                .map(|t| format!("--tag {t}"))
                .collect::<Vec<_>>(),
            options
                .operations
                .iter()
                .map(|o| format!("--operation {o}"))
                .collect(),
            options
                .paths
                .iter()
                .map(|p| format!("--path {p}"))
                .collect(),
        ]
        .concat()
        .join(", ");
        return Err(ImportError::NothingChosen(if what.is_empty() {
            "(the description has none)".to_owned()
        } else {
            what
        }));
    }
    let env_prefix = name.to_ascii_uppercase().replace('-', "_");
    let mut notes = Vec::new();
    let mut env: Vec<(String, bool)> = Vec::new();
    // The base URL: `{variable}`s of the server become env values.
    let base_url = match &described.server {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            let mut out = url.clone();
            for var in url
                .split('{')
                .skip(1)
                .filter_map(|r| r.split_once('}'))
                .map(|(v, _)| v.to_owned())
            {
                let env_name = format!("{env_prefix}_{}", snake_case(&var).to_ascii_uppercase());
                out = out.replace(&format!("{{{var}}}"), &format!("{{{{ env.{env_name} }}}}"));
                env.push((env_name, false));
            }
            out
        }
        other => {
            let env_name = format!("{env_prefix}_URL");
            env.push((env_name.clone(), false));
            notes.push(format!(
                "the description gives no absolute server URL{}: the base URL is read from {env_name}",
                other.as_deref().map(|u| format!(" (`{u}`)")).unwrap_or_default()
            ));
            format!("{{{{ env.{env_name} }}}}{}", other.as_deref().unwrap_or(""))
        }
    };
    let (auth, auth_env, auth_notes) =
        auth::map(&described.schemes, &env_prefix, described.swagger);
    env.extend(auth_env);
    notes.extend(auth_notes);
    let mut actions: BTreeMap<String, Value> = BTreeMap::new();
    for op in chosen {
        let label = op
            .id
            .clone()
            .unwrap_or_else(|| format!("{} {}", op.method.to_ascii_uppercase(), op.path));
        let base = snake_case(
            op.id
                .as_deref()
                .unwrap_or(&format!("{} {}", op.method, op.path)),
        );
        match operation::action(op, &described.resolver) {
            Ok((action, action_notes)) => {
                let mut key = base.clone();
                let mut n = 2;
                while actions.contains_key(&key) {
                    key = format!("{base}_{n}");
                    n += 1;
                }
                notes.extend(action_notes.into_iter().map(|n| format!("{label}: {n}")));
                actions.insert(key, action);
            }
            Err(why) => notes.push(format!(
                "{label} ({} {}): not imported: {why}",
                op.method.to_ascii_uppercase(),
                op.path
            )),
        }
    }
    if actions.is_empty() {
        return Err(ImportError::NothingChosen(format!(
            "that can be mapped: {}",
            notes.join("; ")
        )));
    }
    let yaml = write(&name, &described, options, &base_url, auth, &env, &actions);
    Ok(Imported {
        name,
        yaml,
        actions: actions.len(),
        notes,
    })
}

/// The file, section by section, in a fixed order.
fn write(
    name: &str,
    described: &spec::Described<'_>,
    options: &Options,
    base_url: &str,
    auth: Option<Value>,
    env: &[(String, bool)],
    actions: &BTreeMap<String, Value>,
) -> String {
    let section = |key: &str, value: Value| {
        let mut one = Map::new();
        one.insert(key.to_owned(), value);
        serde_yaml::to_string(&Value::Object(one)).expect("JSON values serialize as YAML")
    };
    let mut out = String::new();
    out.push_str("# yaml-language-server: $schema=../schemas/app.schema.json\n");
    out.push_str(&format!(
        "# Imported by `scenarist apps import openapi` from {}.\n# Check each action against the vendor's documentation before relying on it.\n",
        if options.source.is_empty() { "an OpenAPI description" } else { &options.source }
    ));
    out.push_str(&section("app", json!(name)));
    if let Some(title) = &described.title {
        out.push_str(&section("description", json!(title)));
    }
    if !env.is_empty() {
        let list: Vec<Value> = env
            .iter()
            .map(|(n, secret)| json!({ "name": n, "secret": secret }))
            .collect();
        out.push_str(&section("env", Value::Array(list)));
    }
    let mut connection = Map::new();
    connection.insert("base_url".into(), json!(base_url));
    if let Some(auth) = auth {
        connection.insert("auth".into(), auth);
    }
    out.push_str(&section("connection", Value::Object(connection)));
    let actions: Map<String, Value> = actions
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.push_str(&section("actions", Value::Object(actions)));
    out
}
