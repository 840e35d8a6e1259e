//! Validation and compilation in one walk: checks every rule, compiles every
//! expression, and returns every problem found with its field path and position.
//!
//! Nothing here executes anything; a scenario that passes gets a [`Plan`].

mod auth;
mod connections;
mod exprs;
mod flow;
mod http;
mod poll;
mod settings;
mod steps;
mod store;
mod trigger;
mod uses;
mod waits;

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::app::Apps;
use super::{EnvDecl, Plan};
use crate::diagnostic::Diagnostic;
use crate::load::LoadedScenario;

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
        conn_auth: HashMap::new(),
    };
    c.check_env();
    c.index_steps(&scenario.steps, "steps", None);
    c.index_steps(&scenario.on_failure, "on_failure", None);
    c.check_connections();
    let (schedule, webhook) = c.check_trigger();
    let poll = c.check_poll();
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
    let mut env: Vec<EnvDecl> = scenario.env.iter().map(EnvDecl::from_model).collect();
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
        poll,
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
    /// Each connection's `auth:`, compiled once.
    conn_auth: HashMap<String, super::AuthPlan>,
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
        if !self.under_unreadable(path) {
            self.diagnostics.push(self.loaded.diagnostic(path, message));
        }
    }

    /// Whether `path` is, or is inside, a part the loader could not read:
    /// the loader reported it, and what stands in its place is no evidence.
    fn under_unreadable(&self, path: &str) -> bool {
        self.loaded.unreadable.iter().any(|u| {
            path.strip_prefix(u.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// Whether a top-level section (`env`, `vars`, `connections`) could not
    /// be read: names it would declare are then not judged.
    fn section_unreadable(&self, section: &str) -> bool {
        self.loaded.unreadable.iter().any(|u| {
            u.strip_prefix(section)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }
}
