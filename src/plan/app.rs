//! Apps compiled: every template, JSON Schema and setting of an app file
//! checked once, with positions in the app file, so that a scenario's
//! `uses:` step is built from parts that are known to be good.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::expr::{Expr, UNKNOWN_HELPER};
use super::{
    parse_network, EnvDecl, HttpBody, NetworkAllowance, RetryPolicy, DEFAULT_IDEMPOTENCY_HEADER,
    DEFAULT_REQUEST_TIMEOUT,
};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::load::app::{load_app_str, LoadedApp};
use crate::load::{join_index, join_key};
use crate::model::{Action, BodySpec, HttpMethod, Idempotency, RateLimit};

mod triggers;

pub use triggers::TriggerPlan;

/// The apps a scenario may use, by name.
pub type Apps = BTreeMap<String, Arc<AppPlan>>;

/// One app, compiled.
#[derive(Debug)]
pub struct AppPlan {
    pub name: String,
    pub description: Option<String>,
    /// Where it was read (`built-in` for the binary's own).
    pub file: PathBuf,
    pub builtin: bool,
    /// The text, kept with every scenario version that uses it.
    pub source: String,
    pub env: Vec<EnvDecl>,
    pub base_url: Expr,
    pub headers: Vec<(String, Expr)>,
    pub query: Vec<(String, Expr)>,
    pub timeout: std::time::Duration,
    pub retry: Option<RetryPolicy>,
    pub idempotency_header: Option<String>,
    pub allowance: NetworkAllowance,
    pub rate_limit: Option<RateLimit>,
    /// The connection's `auth:` (templates over `env`).
    pub auth: Option<super::AuthPlan>,
    pub actions: BTreeMap<String, ActionPlan>,
    /// Watches for `poll: { uses: APP.TRIGGER }`.
    pub triggers: BTreeMap<String, TriggerPlan>,
}

/// One action, compiled; its templates read `input` and `env`.
#[derive(Debug)]
pub struct ActionPlan {
    pub description: Option<String>,
    /// The JSON Schema of `with`, as written (for `apps show` and compile checks).
    pub schema: Value,
    pub validator: Arc<jsonschema::Validator>,
    pub method: HttpMethod,
    pub path: Expr,
    /// The path as written, for `apps show`.
    pub path_text: String,
    pub query: Vec<(String, Expr)>,
    pub headers: Vec<(String, Expr)>,
    pub body: HttpBody,
    pub expect: Option<Vec<u16>>,
    /// A template over `response` (and `input`).
    pub output: Option<Expr>,
}

/// The apps built into the binary; a local file of the same name replaces one.
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    (
        "referral-factory",
        include_str!("../../apps/referral-factory.yaml"),
    ),
    ("chat", include_str!("../../apps/chat.yaml")),
    (
        "google-sheets",
        include_str!("../../apps/google-sheets.yaml"),
    ),
    ("hubspot", include_str!("../../apps/hubspot.yaml")),
    ("pipedrive", include_str!("../../apps/pipedrive.yaml")),
    ("salesforce", include_str!("../../apps/salesforce.yaml")),
    ("slack", include_str!("../../apps/slack.yaml")),
    ("stripe", include_str!("../../apps/stripe.yaml")),
    ("zendesk", include_str!("../../apps/zendesk.yaml")),
];

/// The built-in apps, compiled once.
pub fn builtin() -> &'static Apps {
    static BUILTIN: OnceLock<Apps> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        BUILTIN_SOURCES
            .iter()
            .map(|(name, source)| {
                let file = PathBuf::from(format!("built-in:{name}.yaml"));
                let loaded = load_app_str(&file, (*source).to_owned())
                    .unwrap_or_else(|d| panic!("built-in app {name}: {d:?}"));
                let mut app =
                    compile_app(&loaded).unwrap_or_else(|d| panic!("built-in app {name}: {d:?}"));
                app.builtin = true;
                ((*name).to_owned(), Arc::new(app))
            })
            .collect()
    })
}

/// Whether `name` is an app name: lowercase letters, digits and `-`.
pub fn is_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 60
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

struct AppCompiler<'a> {
    loaded: &'a LoadedApp,
    env: HashSet<String>,
    diagnostics: Vec<Diagnostic>,
}

/// Checks and compiles an app file: every problem, positioned.
pub fn compile_app(loaded: &LoadedApp) -> Result<AppPlan, Vec<Diagnostic>> {
    let app = &loaded.app;
    let mut c = AppCompiler {
        loaded,
        env: app.env.iter().map(|e| e.name().to_owned()).collect(),
        diagnostics: Vec::new(),
    };
    if !is_app_name(&app.app) {
        c.error(
            "app",
            format!(
                "`{}` is not an app name: use lowercase letters, digits and `-`",
                app.app
            ),
        );
    }
    let stem = loaded
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let stem = stem.strip_prefix("built-in:").unwrap_or(stem);
    if stem != app.app {
        c.error(
            "app",
            format!(
                "the app is named `{}` but its file is `{stem}.yaml`: name the file after the app",
                app.app
            ),
        );
    }
    let conn = &app.connection;
    let base_url = c.expr(
        &Value::String(conn.base_url.clone()),
        "connection.base_url",
        &["env"],
    );
    let headers = c.map(&conn.headers, "connection.headers", &["env"]);
    let query = c.map(&conn.query, "connection.query", &["env"]);
    let networks = conn
        .allow_network
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match parse_network(text) {
            Ok(net) => Some(net),
            Err(e) => {
                c.error(&join_index("connection.allow_network", i), e);
                None
            }
        })
        .collect();
    let idempotency_header = match &conn.idempotency {
        None | Some(Idempotency::Enabled(true)) => Some(DEFAULT_IDEMPOTENCY_HEADER.to_owned()),
        Some(Idempotency::Enabled(false)) => None,
        Some(Idempotency::Header { header }) => Some(header.clone()),
    };
    if app.actions.is_empty() {
        c.error("actions", "an app needs at least one action");
    }
    let mut actions = BTreeMap::new();
    for (name, action) in &app.actions {
        let base = join_key("actions", name);
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            c.error(
                &base,
                format!("`{name}` is not an action name: use lowercase letters, digits and _"),
            );
        }
        if let Some(plan) = c.action(&base, action, &["input", "env"]) {
            actions.insert(name.clone(), plan);
        }
    }
    let triggers = c.triggers(app);
    let auth = conn.auth.as_ref().map(|auth| c.auth(auth));
    if !c.diagnostics.is_empty() {
        c.diagnostics.sort_by_key(|d| d.position);
        return Err(c.diagnostics);
    }
    Ok(AppPlan {
        name: app.app.clone(),
        description: app.description.clone(),
        file: loaded.file.clone(),
        builtin: false,
        source: loaded.source.clone(),
        env: app.env.iter().map(EnvDecl::from_model).collect(),
        base_url,
        headers,
        query,
        timeout: conn
            .timeout
            .map(|d| d.as_std())
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
        retry: conn.retry.as_ref().map(RetryPolicy::from_spec),
        idempotency_header,
        allowance: NetworkAllowance {
            private: conn.allow_private,
            networks,
        },
        rate_limit: conn.rate_limit,
        auth,
        actions,
        triggers,
    })
}

impl AppCompiler<'_> {
    /// An action (or a watch's request): its input schema and its request,
    /// whose templates may read `roots`.
    fn action(&mut self, base: &str, action: &Action, roots: &[&str]) -> Option<ActionPlan> {
        let validator = match jsonschema::validator_for(&action.input) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                self.error(
                    &format!("{base}.input"),
                    format!("not a valid JSON Schema: {e}"),
                );
                return None;
            }
        };
        if action.input.get("type").and_then(Value::as_str) != Some("object") {
            self.error(
                &format!("{base}.input"),
                "an action's input is an object: its schema needs `type: object`",
            );
        }
        let request = &action.request;
        let rbase = format!("{base}.request");
        let path = self.expr(
            &Value::String(request.path.clone()),
            &format!("{rbase}.path"),
            roots,
        );
        let (spec, several) = request.body_spec();
        if several {
            self.error(
                &rbase,
                "a request takes at most one of `json`, `form` and `body`",
            );
        }
        let body = match spec {
            BodySpec::Json(json) => {
                HttpBody::Json(self.expr(json, &format!("{rbase}.json"), roots))
            }
            BodySpec::Form(form) => HttpBody::Form(self.map(form, &format!("{rbase}.form"), roots)),
            BodySpec::Text(text) => HttpBody::Text(self.expr(
                &Value::String(text.to_owned()),
                &format!("{rbase}.body"),
                roots,
            )),
            BodySpec::None => HttpBody::None,
        };
        let output = action
            .output
            .as_ref()
            .map(|o| self.expr(o, &format!("{base}.output"), &["response", "input"]));
        Some(ActionPlan {
            description: action.description.clone(),
            schema: action.input.clone(),
            validator,
            method: request.method,
            path,
            path_text: request.path.clone(),
            query: self.map(&request.query, &format!("{rbase}.query"), roots),
            headers: self.map(&request.headers, &format!("{rbase}.headers"), roots),
            body,
            expect: action.expect.clone(),
            output,
        })
    }

    /// The connection's `auth:`: templates over `env`.
    fn auth(&mut self, auth: &crate::model::Auth) -> super::AuthPlan {
        let base = format!("connection.auth.{}", auth.kind());
        let value = |c: &mut Self, text: &str, field: &str| {
            let at = format!("{base}.{field}");
            if text.trim().is_empty() {
                c.error(&at, format!("`{field}` is empty"));
            }
            c.expr(&Value::String(text.to_owned()), &at, &["env"])
        };
        let origin = format!("app {}", self.loaded.app.app);
        super::AuthPlan::compile(auth, origin, |text, field| value(self, text, field))
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diagnostics.push(self.loaded.diagnostic(path, message));
    }

    fn map(
        &mut self,
        map: &BTreeMap<String, Value>,
        path: &str,
        roots: &[&str],
    ) -> Vec<(String, Expr)> {
        map.iter()
            .map(|(k, v)| (k.clone(), self.expr(v, &join_key(path, k), roots)))
            .collect()
    }

    /// A template that may read only `roots` (and declared env names).
    fn expr(&mut self, value: &Value, path: &str, roots: &[&str]) -> Expr {
        match Expr::compile(value) {
            Ok(expr) => {
                let mut refs = Vec::new();
                expr.references(&mut refs);
                for segments in refs {
                    let root = segments[0].as_str();
                    let second = segments.get(1).map(String::as_str).unwrap_or_default();
                    if root == UNKNOWN_HELPER {
                        self.error(path, format!("unknown helper `{second}`"));
                    } else if !roots.contains(&root) {
                        self.error(
                            path,
                            format!(
                                "an app's templates read {}: `{root}` is not one of them",
                                roots
                                    .iter()
                                    .map(|r| format!("`{r}`"))
                                    .collect::<Vec<_>>()
                                    .join(" and ")
                            ),
                        );
                    } else if root == "env" && !second.is_empty() && !self.env.contains(second) {
                        let hint = did_you_mean(second, self.env.iter().map(String::as_str))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        self.error(
                            path,
                            format!("`env.{second}` is not declared in the app's `env`{hint}"),
                        );
                    }
                }
                expr
            }
            Err(errors) => {
                for (sub, message) in errors {
                    self.error(&format!("{path}{sub}"), message);
                }
                Expr::Literal(Value::Null)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_apps_compile() {
        let apps = super::builtin();
        assert!(apps["referral-factory"].actions.contains_key("qualify"));
        assert!(apps["chat"].actions.contains_key("post_message"));
    }
}
