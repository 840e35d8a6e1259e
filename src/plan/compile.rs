//! Validation and compilation in one walk: checks every rule, compiles every
//! expression, and returns every problem found with its field path and position.
//!
//! Nothing here executes anything; a scenario that passes gets a [`Plan`].

mod auth;
mod uses;

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::app::Apps;
use super::condition::Cond;
use super::expr::{Expr, UNKNOWN_HELPER};
use super::helpers::HELPER_NAMES;
use super::{
    parse_network, ApprovalPlan, EmitPlan, EnvDecl, ForEachPlan, HttpBody, HttpPlan,
    NetworkAllowance, Plan, PlanKind, PlanStep, RecordPlan, RespondPlan, RetryPolicy, RoutePlan,
    RouterPlan, ScheduleTrigger, StoreOpPlan, StorePlan, WaitForPlan, WebhookPlan,
    DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_REQUEST_TIMEOUT,
};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::load::{join_index, join_key, LoadedScenario};
use crate::model::{Concurrency, Condition, Idempotency, Step, StepKind, Trigger};

/// Names a template may start with, wherever it is.
const ROOTS: &[&str] = &["trigger", "steps", "vars", "env", "execution"];

/// Validates a loaded scenario and compiles it into a [`Plan`], with the
/// built-in apps.
pub fn compile(loaded: &LoadedScenario) -> Result<Plan, Vec<Diagnostic>> {
    compile_with(loaded, super::app::builtin())
}

/// Validates a loaded scenario and compiles it into a [`Plan`]; `uses:`
/// steps may call the actions of `apps`.
pub fn compile_with(loaded: &LoadedScenario, apps: &Apps) -> Result<Plan, Vec<Diagnostic>> {
    let scenario = &loaded.scenario;
    let mut c = Compiler {
        loaded,
        diagnostics: Vec::new(),
        places: HashMap::new(),
        env: scenario.env.iter().map(|e| e.name().to_owned()).collect(),
        vars: scenario.vars.keys().cloned().collect(),
        apps,
        used_apps: std::collections::BTreeMap::new(),
    };
    c.check_env();
    c.index_steps(&scenario.steps, "steps", None);
    c.index_steps(&scenario.on_failure, "on_failure", None);
    c.check_connections();
    let (schedule, webhook) = c.check_trigger();
    let input_schema = c.compile_input_schema();
    let keys = c.check_settings();
    if scenario.steps.is_empty() {
        c.error("steps", "a scenario needs at least one step");
    }

    let mut scope = Scope::default();
    let steps = c.steps(&scenario.steps, "steps", &mut scope);
    let mut failure_scope = Scope {
        visible: scenario.steps.iter().map(|s| s.id.to_string()).collect(),
        in_on_failure: true,
        ..Scope::default()
    };
    let on_failure = c.steps(&scenario.on_failure, "on_failure", &mut failure_scope);

    if !c.diagnostics.is_empty() {
        c.diagnostics.sort_by_key(|d| d.position);
        return Err(c.diagnostics);
    }
    let mut env: Vec<EnvDecl> = scenario
        .env
        .iter()
        .map(|e| EnvDecl {
            name: e.name().to_owned(),
            secret: e.is_secret(),
        })
        .collect();
    let mut bundle = loaded.source.clone();
    for app in c.used_apps.values() {
        for decl in &app.env {
            if !env.iter().any(|e| e.name == decl.name) {
                env.push(decl.clone());
            }
        }
        bundle.push_str(super::BUNDLE_SEPARATOR);
        bundle.push_str(&app.source);
    }
    Ok(Plan {
        name: scenario.name.to_string(),
        version: hex(&Sha256::digest(bundle.as_bytes())),
        bundle,
        env,
        vars: scenario
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        input_schema,
        steps,
        on_failure,
        timeout: scenario.settings.timeout.map(|d| d.as_std()),
        schedule,
        webhook,
        keys,
        scenario: scenario.clone(),
    })
}

/// Business keys a scenario may name: enough for a lead, a referrer, a deal.
const MAX_KEYS: usize = 8;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Compiler<'a> {
    loaded: &'a LoadedScenario,
    diagnostics: Vec<Diagnostic>,
    /// Every step id: where it is written, and the route or loop that encloses it.
    places: HashMap<String, Place>,
    env: HashSet<String>,
    vars: HashSet<String>,
    apps: &'a Apps,
    /// The apps `uses:` steps call, kept with the version.
    used_apps: std::collections::BTreeMap<String, std::sync::Arc<super::app::AppPlan>>,
}

struct Place {
    path: String,
    /// `route `x` of step `r``, or `the loop `l``: where the output is visible.
    enclosure: Option<String>,
}

/// The longest a `wait_for` may wait: a year covers every referral program's window.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// `[a-z0-9_.-]+`: what `wait_for`, `emit` and `scenarist emit` accept as an event name.
pub fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// What a step may read at its point in the flow.
#[derive(Default, Clone)]
struct Scope {
    /// Step ids whose output exists when this point is reached.
    visible: Vec<String>,
    /// Names bound by enclosing `for_each` steps (`item`, `index` or the `as` name).
    loop_names: Vec<String>,
    in_on_failure: bool,
    /// Inside a `wait_for`'s `match`: the candidate event is readable as `event`.
    event_in_scope: bool,
    /// The routes and loops we are inside, named as in [`Place::enclosure`].
    enclosures: Vec<String>,
}

impl Compiler<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.diagnostics.push(self.loaded.diagnostic(path, message));
    }

    fn check_env(&mut self) {
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

    fn index_steps(&mut self, steps: &[Step], base: &str, enclosure: Option<&str>) {
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{base}[{i}]");
            let id = step.id.to_string();
            if let Some(first) = self.places.get(&id) {
                let first_path = first.path.clone();
                let line = self
                    .loaded
                    .source_map
                    .value(&first_path)
                    .map(|p| format!(" (line {})", p.line))
                    .unwrap_or_default();
                self.error(&format!("{path}.id"), format!("duplicate step id `{id}`: already used by {first_path}{line}; ids must be unique in a scenario"));
                continue;
            }
            self.places.insert(
                id.clone(),
                Place {
                    path: path.clone(),
                    enclosure: enclosure.map(str::to_owned),
                },
            );
            match &step.kind {
                StepKind::Router(r) => {
                    for (ri, route) in r.routes.iter().enumerate() {
                        let inner = format!("route `{}` of step `{id}`", route.name);
                        self.index_steps(
                            &route.steps,
                            &format!("{path}.router.routes[{ri}].steps"),
                            Some(&inner),
                        );
                    }
                }
                StepKind::ForEach(f) => {
                    let inner = format!("the loop `{id}`");
                    self.index_steps(&f.steps, &format!("{path}.for_each.steps"), Some(&inner));
                }
                _ => {}
            }
        }
    }

    /// Compiles a value and checks what it reads, leaf by leaf so that every
    /// problem points at its own field.
    fn expr(&mut self, value: &Value, path: &str, scope: &Scope) -> Expr {
        match value {
            Value::Object(map) => {
                let fields: Vec<(String, Expr)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), self.expr(v, &join_key(path, k), scope)))
                    .collect();
                if fields.iter().all(|(_, e)| e.is_literal()) {
                    Expr::Literal(value.clone())
                } else {
                    Expr::Object(fields)
                }
            }
            Value::Array(items) => {
                let items: Vec<Expr> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.expr(v, &join_index(path, i), scope))
                    .collect();
                if items.iter().all(Expr::is_literal) {
                    Expr::Literal(value.clone())
                } else {
                    Expr::Array(items)
                }
            }
            leaf => match Expr::compile(leaf) {
                Ok(expr) => {
                    let mut refs = Vec::new();
                    expr.references(&mut refs);
                    self.check_references(&refs, path, scope);
                    expr
                }
                Err(errors) => {
                    for (sub, message) in errors {
                        self.error(&format!("{path}{sub}"), message);
                    }
                    Expr::Literal(Value::Null)
                }
            },
        }
    }

    fn expr_str(&mut self, text: &str, path: &str, scope: &Scope) -> Expr {
        self.expr(&Value::String(text.to_owned()), path, scope)
    }

    fn cond(&mut self, condition: &Condition, path: &str, scope: &Scope) -> Cond {
        let (cond, errors) = Cond::compile_all(condition);
        let failed: Vec<String> = errors.iter().map(|(sub, _)| sub.clone()).collect();
        for (sub, message) in errors {
            self.error(&format!("{path}{sub}"), message);
        }
        let mut refs = Vec::new();
        cond.references_at(String::new(), &mut refs);
        for (sub, segments) in refs {
            if !failed.contains(&sub) {
                self.check_references(&[segments], &format!("{path}{sub}"), scope);
            }
        }
        cond
    }

    fn check_references(&mut self, refs: &[Vec<String>], path: &str, scope: &Scope) {
        let mut reported = HashSet::new();
        for segments in refs {
            if let Some(message) = self.reference_problem(segments, scope) {
                if reported.insert(message.clone()) {
                    self.error(path, message);
                }
            }
        }
    }

    fn reference_problem(&self, segments: &[String], scope: &Scope) -> Option<String> {
        let root = segments[0].as_str();
        let second = segments.get(1).map(String::as_str);
        match root {
            UNKNOWN_HELPER => {
                let name = second.unwrap_or_default();
                let hint = did_you_mean(name, HELPER_NAMES.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                Some(format!("unknown helper `{name}`{hint}"))
            }
            "steps" => {
                let id = second?;
                if scope.visible.iter().any(|v| v == id) {
                    return None;
                }
                match self.places.get(id) {
                    None => {
                        let hint = did_you_mean(id, self.places.keys().map(String::as_str))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        Some(format!("unknown step `{id}` in `steps.{id}`{hint}"))
                    }
                    Some(Place { enclosure: Some(inside), .. }) if !scope.enclosures.contains(inside) => Some(format!(
                        "step `{id}` runs inside {inside} and its output is not visible here; read the output of the enclosing step instead"
                    )),
                    Some(_) => Some(format!("step `{id}` has not run yet at this point: a step can only read steps before it")),
                }
            }
            "env" => {
                let name = second?;
                if self.env.contains(name) {
                    None
                } else {
                    Some(format!("`env.{name}` is not declared: add `{name}` to `env` at the top of the scenario"))
                }
            }
            "vars" => {
                let name = second?;
                if self.vars.contains(name) {
                    None
                } else {
                    let hint = did_you_mean(name, self.vars.iter().map(String::as_str)).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    Some(format!("`vars.{name}` is not declared in `vars`{hint}"))
                }
            }
            "trigger" => match second {
                None | Some("body" | "headers" | "query" | "received_at") => None,
                Some(other) => Some(format!("`trigger.{other}` does not exist: the trigger has body, headers, query and received_at")),
            },
            "execution" => match second {
                None | Some("id" | "scenario" | "started_at") => None,
                Some(other) => Some(format!("`execution.{other}` does not exist: the execution has id, scenario and started_at")),
            },
            "error" if scope.in_on_failure => None,
            "event" if scope.event_in_scope => None,
            "index" if !scope.loop_names.is_empty() => None,
            name if scope.loop_names.iter().any(|n| n == name) => None,
            name => {
                let mut allowed: Vec<&str> = ROOTS.to_vec();
                allowed.extend(scope.loop_names.iter().map(String::as_str));
                if !scope.loop_names.is_empty() {
                    allowed.push("index");
                }
                if scope.in_on_failure {
                    allowed.push("error");
                }
                let hint = did_you_mean(name, allowed.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                let context = match name {
                    "item" | "index" => " (only inside for_each)",
                    "event" => " (only in a wait_for's `match`)",
                    "error" => " (only inside on_failure)",
                    _ => "",
                };
                Some(format!("unknown name `{name}`{context}{hint}; templates can read {}", allowed.join(", ")))
            }
        }
    }

    fn check_connections(&mut self) {
        let scope = Scope::default();
        for (name, conn) in &self.loaded.scenario.connections {
            let base = format!("connections.{name}");
            let url = self.expr_str(&conn.base_url, &format!("{base}.base_url"), &scope);
            if let Expr::Literal(Value::String(u)) = &url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    self.error(
                        &format!("{base}.base_url"),
                        format!("`{u}` is not an http:// or https:// URL"),
                    );
                }
            }
            for (k, v) in &conn.headers {
                self.expr(v, &format!("{base}.headers.{k}"), &scope);
            }
            for (k, v) in &conn.query {
                self.expr(v, &format!("{base}.query.{k}"), &scope);
            }
            if let Some(retry) = &conn.retry {
                self.check_retry(retry, &format!("{base}.retry"));
            }
        }
    }

    fn check_retry(&mut self, retry: &crate::model::RetrySpec, path: &str) {
        if retry.attempts == 0 || retry.attempts > 50 {
            self.error(
                &format!("{path}.attempts"),
                format!(
                    "attempts must be between 1 and 50, found {}",
                    retry.attempts
                ),
            );
        }
        if let (Some(initial), Some(max)) = (retry.initial, retry.max) {
            if initial > max {
                self.error(
                    &format!("{path}.initial"),
                    format!("initial delay {initial} is longer than max {max}"),
                );
            }
        }
    }

    fn check_trigger(&mut self) -> (Option<ScheduleTrigger>, Option<WebhookPlan>) {
        let trigger_scope = Scope::default();
        match &self.loaded.scenario.trigger {
            Trigger::Manual(_) => (None, None),
            Trigger::Webhook(hook) => {
                let path = hook.path.trim_start_matches('/');
                let valid = !path.is_empty()
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
                if !valid {
                    self.error(
                        "trigger.webhook.path",
                        format!(
                            "invalid webhook path `{}`: use letters, digits, `/`, `-`, `_` and `.`",
                            hook.path
                        ),
                    );
                }
                let dedupe = hook.dedupe.as_ref().map(|dedupe| {
                    let expr = self.expr_str(dedupe, "trigger.webhook.dedupe", &trigger_scope);
                    if expr.is_literal() {
                        self.error("trigger.webhook.dedupe", "the dedupe key must be a template over the request, e.g. `{{ trigger.body.event_id }}`");
                    }
                    expr
                });
                let auth = hook
                    .auth
                    .as_ref()
                    .map(|auth| self.webhook_auth(auth, &trigger_scope));
                let webhook = WebhookPlan {
                    path: path.to_owned(),
                    method: hook.method,
                    auth,
                    dedupe,
                    respond: hook.respond,
                };
                (None, Some(webhook))
            }
            Trigger::Schedule(schedule) => {
                let timezone = match &schedule.timezone {
                    None => chrono_tz::UTC,
                    Some(name) => name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                        let hint = did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        self.error("trigger.schedule.timezone", format!("unknown time zone `{name}`{hint} (use an IANA name such as Europe/Paris)"));
                        chrono_tz::UTC
                    }),
                };
                let cron = match (&schedule.cron, &schedule.every) {
                    (Some(_), Some(_)) => {
                        self.error(
                            "trigger.schedule",
                            "a schedule takes `cron` or `every`, not both",
                        );
                        None
                    }
                    (None, None) => {
                        self.error(
                            "trigger.schedule",
                            "a schedule needs `cron` (e.g. \"*/15 * * * *\") or `every` (e.g. 15m)",
                        );
                        None
                    }
                    (Some(text), None) => {
                        let fields = text.split_whitespace().count();
                        if !(5..=6).contains(&fields) {
                            self.error("trigger.schedule.cron", format!("invalid cron expression `{text}`: expected 5 fields (minute hour day month weekday) or 6 (seconds first), found {fields}"));
                            None
                        } else {
                            match text.parse::<croner::Cron>() {
                                Ok(c) => Some(c),
                                Err(e) => {
                                    self.error(
                                        "trigger.schedule.cron",
                                        format!("invalid cron expression `{text}`: {e}"),
                                    );
                                    None
                                }
                            }
                        }
                    }
                    (None, Some(every)) => {
                        if every.as_std() < std::time::Duration::from_secs(1) {
                            self.error(
                                "trigger.schedule.every",
                                "a schedule cannot fire more often than every 1s",
                            );
                        }
                        None
                    }
                };
                (
                    Some(ScheduleTrigger {
                        cron,
                        every: schedule.every.map(|d| d.as_std()),
                        timezone,
                        catch_up: schedule.catch_up,
                    }),
                    None,
                )
            }
        }
    }

    fn compile_input_schema(&mut self) -> Option<jsonschema::Validator> {
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
    fn check_settings(&mut self) -> Vec<(String, Expr)> {
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

    fn steps(&mut self, steps: &[Step], base: &str, scope: &mut Scope) -> Vec<PlanStep> {
        let mut out = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{base}[{i}]");
            out.push(self.step(step, &path, scope));
            scope.visible.push(step.id.to_string());
        }
        out
    }

    fn step(&mut self, step: &Step, path: &str, scope: &Scope) -> PlanStep {
        let when = step
            .when
            .as_ref()
            .map(|c| self.cond(c, &format!("{path}.when"), scope));
        let fallback = step
            .fallback
            .as_ref()
            .map(|v| self.expr(v, &format!("{path}.fallback"), scope));
        if step.fallback.is_some() && step.on_error != crate::model::OnError::Continue {
            self.error(
                &format!("{path}.fallback"),
                "`fallback` is only used with `on_error: continue`",
            );
        }
        if let Some(retry) = &step.retry {
            self.check_retry(retry, &format!("{path}.retry"));
        }
        let mut retry = step.retry.as_ref().map(RetryPolicy::from_spec);
        if matches!(
            step.kind,
            StepKind::Approval(_) | StepKind::Delay(_) | StepKind::WaitFor(_)
        ) {
            let kind = step.kind.name();
            let a = if kind == "approval" { "an" } else { "a" };
            if scope.in_on_failure {
                self.error(
                    &format!("{path}.{kind}"),
                    format!(
                        "a `{kind}` step cannot be in on_failure: failure handlers run at once"
                    ),
                );
            } else if !scope.loop_names.is_empty() {
                self.error(
                    &format!("{path}.{kind}"),
                    format!("{a} `{kind}` step cannot be inside a for_each: put the loop in a scenario of its own, or wait before the loop"),
                );
            }
        }
        let kind = match &step.kind {
            StepKind::Http(http) => {
                let (plan, connection_retry) = self.http(http, &format!("{path}.http"), scope);
                retry = retry.or(connection_retry);
                PlanKind::Http(Box::new(plan))
            }
            StepKind::Uses(uses) => {
                let (plan, app_retry) = self.uses(uses, path, scope);
                retry = retry.or(app_retry);
                PlanKind::Http(Box::new(plan))
            }
            StepKind::Set(fields) => {
                if fields.is_empty() {
                    self.error(&format!("{path}.set"), "`set` needs at least one key");
                }
                PlanKind::Set(self.expr(
                    &Value::Object(fields.clone()),
                    &format!("{path}.set"),
                    scope,
                ))
            }
            StepKind::Filter(condition) => {
                PlanKind::Filter(self.cond(condition, &format!("{path}.filter"), scope))
            }
            StepKind::Router(router) => {
                let base = format!("{path}.router");
                if router.routes.is_empty() {
                    self.error(
                        &format!("{base}.routes"),
                        "a router needs at least one route",
                    );
                }
                let mut names = HashSet::new();
                let mut fallbacks = 0;
                let mut routes = Vec::new();
                for (ri, route) in router.routes.iter().enumerate() {
                    let rpath = format!("{base}.routes[{ri}]");
                    if !names.insert(route.name.clone()) {
                        self.error(
                            &format!("{rpath}.name"),
                            format!("duplicate route name `{}`", route.name),
                        );
                    }
                    if route.when.is_none() {
                        fallbacks += 1;
                        if fallbacks > 1 {
                            self.error(
                                &rpath,
                                "only one route may omit `when` (the fallback route)",
                            );
                        }
                    }
                    if route.steps.is_empty() {
                        self.error(&format!("{rpath}.steps"), "a route needs at least one step");
                    }
                    let when = route
                        .when
                        .as_ref()
                        .map(|c| self.cond(c, &format!("{rpath}.when"), scope));
                    let mut inner = scope.clone();
                    inner
                        .enclosures
                        .push(format!("route `{}` of step `{}`", route.name, step.id));
                    let steps = self.steps(&route.steps, &format!("{rpath}.steps"), &mut inner);
                    routes.push(RoutePlan {
                        name: route.name.clone(),
                        when,
                        steps,
                    });
                }
                PlanKind::Router(RouterPlan {
                    mode: router.mode,
                    routes,
                })
            }
            StepKind::ForEach(each) => {
                let base = format!("{path}.for_each");
                let items = self.expr(&each.items, &format!("{base}.items"), scope);
                if matches!(items, Expr::Literal(ref v) if !v.is_array()) {
                    self.error(
                        &format!("{base}.items"),
                        "`items` must be a list or an expression that gives one",
                    );
                }
                let name_ok = crate::model::StepId::from_str_checked(&each.as_name)
                    && !ROOTS.contains(&each.as_name.as_str())
                    && each.as_name != "index";
                if !name_ok {
                    self.error(&format!("{base}.as"), format!("`as: {}` must be a lowercase name other than trigger, steps, vars, env, execution and index", each.as_name));
                }
                if each.concurrency == 0 || each.concurrency > 64 {
                    self.error(
                        &format!("{base}.concurrency"),
                        format!(
                            "concurrency must be between 1 and 64, found {}",
                            each.concurrency
                        ),
                    );
                }
                if each.steps.is_empty() {
                    self.error(
                        &format!("{base}.steps"),
                        "a for_each needs at least one step",
                    );
                }
                let mut inner = scope.clone();
                inner.loop_names.push(each.as_name.clone());
                inner.enclosures.push(format!("the loop `{}`", step.id));
                let steps = self.steps(&each.steps, &format!("{base}.steps"), &mut inner);
                let collect = each
                    .collect
                    .as_ref()
                    .map(|v| self.expr(v, &format!("{base}.collect"), &inner));
                PlanKind::ForEach(Box::new(ForEachPlan {
                    items,
                    as_name: each.as_name.clone(),
                    concurrency: each.concurrency.clamp(1, 64) as usize,
                    steps,
                    collect,
                }))
            }
            StepKind::Respond(respond) => {
                let base = format!("{path}.respond");
                if !(100..=599).contains(&respond.status) {
                    self.error(
                        &format!("{base}.status"),
                        format!("{} is not an HTTP status (100 to 599)", respond.status),
                    );
                }
                let headers = respond
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            self.expr(v, &format!("{base}.headers.{k}"), scope),
                        )
                    })
                    .collect();
                let body = respond
                    .body
                    .as_ref()
                    .map(|b| self.expr(b, &format!("{base}.body"), scope));
                PlanKind::Respond(RespondPlan {
                    status: respond.status,
                    headers,
                    body,
                })
            }
            StepKind::Fail(fail) => {
                PlanKind::Fail(self.expr_str(&fail.message, &format!("{path}.fail.message"), scope))
            }
            StepKind::Store(store) => {
                PlanKind::Store(self.store(store, &format!("{path}.store"), scope))
            }
            StepKind::Approval(approval) => {
                let base = format!("{path}.approval");
                PlanKind::Approval(Box::new(ApprovalPlan {
                    message: self.expr_str(&approval.message, &format!("{base}.message"), scope),
                    timeout: approval.timeout.as_std(),
                    on_timeout: approval.on_timeout,
                    approvers: approval.approvers.clone(),
                    on_reject: approval.on_reject,
                }))
            }
            StepKind::Delay(delay) => PlanKind::Delay(delay.duration.as_std()),
            StepKind::WaitFor(wait) => PlanKind::WaitFor(Box::new(self.wait_for(
                wait,
                &format!("{path}.wait_for"),
                scope,
            ))),
            StepKind::Emit(emit) => {
                let base = format!("{path}.emit");
                self.check_event_name(&emit.event, &format!("{base}.event"));
                PlanKind::Emit(Box::new(EmitPlan {
                    event: emit.event.clone(),
                    key: self.expr_str(&emit.key, &format!("{base}.key"), scope),
                    data: emit
                        .data
                        .as_ref()
                        .map(|v| self.expr(v, &format!("{base}.data"), scope)),
                }))
            }
            StepKind::Record(record) => {
                let base = format!("{path}.record");
                PlanKind::Record(Box::new(RecordPlan {
                    event: self.expr_str(&record.event, &format!("{base}.event"), scope),
                    key: self.expr_str(&record.key, &format!("{base}.key"), scope),
                    value: record
                        .value
                        .as_ref()
                        .map(|v| self.expr(v, &format!("{base}.value"), scope)),
                    data: record
                        .data
                        .as_ref()
                        .map(|v| self.expr(v, &format!("{base}.data"), scope)),
                }))
            }
        };
        PlanStep {
            id: step.id.clone(),
            name: step.name.clone(),
            when,
            timeout: step.timeout.map(|d| d.as_std()),
            retry: retry.unwrap_or(RetryPolicy::NONE),
            on_error: step.on_error,
            fallback,
            kind,
        }
    }

    fn wait_for(
        &mut self,
        wait: &crate::model::WaitForStep,
        base: &str,
        scope: &Scope,
    ) -> WaitForPlan {
        self.check_event_name(&wait.event, &format!("{base}.event"));
        let timeout = wait.timeout.as_std();
        if timeout.is_zero() || timeout > MAX_WAIT {
            self.error(
                &format!("{base}.timeout"),
                format!(
                    "a wait_for timeout must be more than 0 and at most 365d, found {}",
                    wait.timeout
                ),
            );
        }
        if let Some(lookback) = wait.lookback {
            if lookback.as_std() > MAX_WAIT {
                self.error(
                    &format!("{base}.lookback"),
                    format!("lookback must be at most 365d, found {lookback}"),
                );
            }
        }
        let mut with_event = scope.clone();
        with_event.event_in_scope = true;
        WaitForPlan {
            event: wait.event.clone(),
            key: self.expr_str(&wait.key, &format!("{base}.key"), scope),
            condition: wait
                .condition
                .as_ref()
                .map(|c| self.cond(c, &format!("{base}.match"), &with_event)),
            timeout,
            on_timeout: wait.on_timeout,
            lookback: wait.lookback.map(|d| d.as_std()),
        }
    }

    /// Event names are identifiers people type on a command line and search for.
    fn check_event_name(&mut self, name: &str, path: &str) {
        if !is_event_name(name) {
            self.error(
                path,
                format!("`{name}` is not an event name: use lowercase letters, digits, `_`, `.` and `-`, e.g. `deal.closed_won`"),
            );
        }
    }

    fn http(
        &mut self,
        http: &crate::model::HttpStep,
        base: &str,
        scope: &Scope,
    ) -> (HttpPlan, Option<RetryPolicy>) {
        let connection = match &http.connection {
            None => None,
            Some(name) => match self.loaded.scenario.connections.get(name) {
                Some(c) => Some(c),
                None => {
                    let known = self.loaded.scenario.connections.keys().map(String::as_str);
                    let hint = did_you_mean(name, known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.error(
                        &format!("{base}.connection"),
                        format!("unknown connection `{name}`{hint}"),
                    );
                    None
                }
            },
        };
        let conn_path = http.connection.as_ref().map(|n| format!("connections.{n}"));
        let base_url = connection.map(|c| {
            self.expr_str(
                &c.base_url,
                &format!("{}.base_url", conn_path.as_deref().unwrap_or_default()),
                &Scope::default(),
            )
        });
        let target = match (&http.url, &http.path) {
            (Some(url), None) => self.expr_str(url, &format!("{base}.url"), scope),
            (None, Some(path)) => {
                if http.connection.is_none() {
                    self.error(
                        &format!("{base}.path"),
                        "`path` needs a `connection` with a base_url; use `url` for a full URL",
                    );
                }
                self.expr_str(path, &format!("{base}.path"), scope)
            }
            (Some(_), Some(_)) => {
                self.error(base, "an http step takes `url` or `path`, not both");
                Expr::Literal(Value::Null)
            }
            (None, None) => {
                self.error(
                    base,
                    "an http step needs `url` (a full URL) or `path` (with a connection)",
                );
                Expr::Literal(Value::Null)
            }
        };
        if let Expr::Literal(Value::String(url)) = &target {
            if http.url.is_some() && !(url.starts_with("http://") || url.starts_with("https://")) {
                self.error(
                    &format!("{base}.url"),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        let mut query = Vec::new();
        let mut headers = Vec::new();
        if let Some(conn) = connection {
            let cp = conn_path.clone().unwrap_or_default();
            for (k, v) in &conn.query {
                query.push((
                    k.clone(),
                    self.expr(v, &format!("{cp}.query.{k}"), &Scope::default()),
                ));
            }
            for (k, v) in &conn.headers {
                headers.push((
                    k.clone(),
                    self.expr(v, &format!("{cp}.headers.{k}"), &Scope::default()),
                ));
            }
        }
        for (k, v) in &http.query {
            query.retain(|(existing, _)| existing != k);
            query.push((k.clone(), self.expr(v, &format!("{base}.query.{k}"), scope)));
        }
        for (k, v) in &http.headers {
            headers.retain(|(existing, _): &(String, Expr)| !existing.eq_ignore_ascii_case(k));
            headers.push((
                k.clone(),
                self.expr(v, &format!("{base}.headers.{k}"), scope),
            ));
        }
        let bodies = [
            http.json.is_some(),
            http.form.is_some(),
            http.body.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if bodies > 1 {
            self.error(
                base,
                "an http step takes at most one of `json`, `form` and `body`",
            );
        }
        let body = if let Some(json) = &http.json {
            HttpBody::Json(self.expr(json, &format!("{base}.json"), scope))
        } else if let Some(form) = &http.form {
            HttpBody::Form(
                form.iter()
                    .map(|(k, v)| (k.clone(), self.expr(v, &format!("{base}.form.{k}"), scope)))
                    .collect(),
            )
        } else if let Some(text) = &http.body {
            HttpBody::Text(self.expr_str(text, &format!("{base}.body"), scope))
        } else {
            HttpBody::None
        };
        if let Some(expect) = &http.expect {
            for (i, status) in expect.iter().enumerate() {
                if !(100..=599).contains(status) {
                    self.error(
                        &format!("{base}.expect[{i}]"),
                        format!("{status} is not an HTTP status (100 to 599)"),
                    );
                }
            }
        }
        let plan = HttpPlan {
            method: http.method,
            base_url,
            target,
            query,
            headers,
            body,
            expect: http.expect.clone(),
            idempotency_header: match connection.and_then(|c| c.idempotency.as_ref()) {
                None | Some(Idempotency::Enabled(true)) => {
                    Some(DEFAULT_IDEMPOTENCY_HEADER.to_owned())
                }
                Some(Idempotency::Enabled(false)) => None,
                Some(Idempotency::Header { header }) => {
                    if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                        self.error(
                            &format!(
                                "{}.idempotency.header",
                                conn_path.as_deref().unwrap_or_default()
                            ),
                            format!("`{header}` is not a valid HTTP header name"),
                        );
                    }
                    Some(header.clone())
                }
            },
            request_timeout: connection
                .and_then(|c| c.timeout)
                .map(|d| d.as_std())
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            rate_limit: connection.and_then(|c| c.rate_limit),
            app: None,
            allowance: match connection {
                None => NetworkAllowance::default(),
                Some(c) => NetworkAllowance {
                    private: c.allow_private,
                    networks: c
                        .allow_network
                        .iter()
                        .enumerate()
                        .filter_map(|(i, text)| match parse_network(text) {
                            Ok(net) => Some(net),
                            Err(e) => {
                                let cp = conn_path.as_deref().unwrap_or_default();
                                self.error(&format!("{cp}.allow_network[{i}]"), e);
                                None
                            }
                        })
                        .collect(),
                },
            },
        };
        (
            plan,
            connection
                .and_then(|c| c.retry.as_ref())
                .map(RetryPolicy::from_spec),
        )
    }

    fn store(&mut self, store: &crate::model::StoreStep, base: &str, scope: &Scope) -> StorePlan {
        if !crate::model::StepId::from_str_checked(&store.name) {
            self.error(
                &format!("{base}.name"),
                format!(
                    "`{}` is not a data store name: use lowercase letters, digits and _",
                    store.name
                ),
            );
        }
        let ops = [
            ("get", &store.get),
            ("put", &store.put),
            ("delete", &store.delete),
            ("increment", &store.increment),
        ];
        let given: Vec<(&str, &String)> = ops
            .iter()
            .filter_map(|(name, key)| key.as_ref().map(|k| (*name, k)))
            .collect();
        let (verb, key_text) = match given.as_slice() {
            [one] => *one,
            [] => {
                self.error(base, "a store step needs exactly one of `get`, `put`, `delete`, `increment` (each names the key)");
                return StorePlan {
                    name: store.name.clone(),
                    key: Expr::Literal(Value::Null),
                    op: StoreOpPlan::Get,
                    ttl: None,
                };
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
                self.error(
                    base,
                    format!(
                        "a store step does one operation, found {}",
                        names.join(", ")
                    ),
                );
                several[0]
            }
        };
        let key = self.expr_str(key_text, &format!("{base}.{verb}"), scope);
        let value = store
            .value
            .as_ref()
            .map(|v| self.expr(v, &format!("{base}.value"), scope));
        let op = match (verb, value) {
            ("put", Some(value)) => StoreOpPlan::Put(value),
            ("put", None) => {
                self.error(base, "`put` needs a `value` to write");
                StoreOpPlan::Put(Expr::Literal(Value::Null))
            }
            ("increment", by) => StoreOpPlan::Increment(by),
            (other, Some(_)) => {
                self.error(
                    &format!("{base}.value"),
                    format!("`value` is not used by `{other}`"),
                );
                StoreOpPlan::Get
            }
            ("delete", None) => StoreOpPlan::Delete,
            _ => StoreOpPlan::Get,
        };
        if store.ttl.is_some() && !matches!(op, StoreOpPlan::Put(_) | StoreOpPlan::Increment(_)) {
            self.error(
                &format!("{base}.ttl"),
                "`ttl` applies to what `put` or `increment` writes",
            );
        }
        StorePlan {
            name: store.name.clone(),
            key,
            op,
            ttl: store.ttl.map(|d| d.as_std()),
        }
    }
}
