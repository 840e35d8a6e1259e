//! The compiled plan: the only input the engine accepts.
//!
//! A [`Plan`] can only be made by [`compile`], which runs every check and
//! compiles every template, JSONPath, regex, cron expression and schema once.
//! The engine therefore never re-checks anything and never parses per execution.

pub mod app;
mod auth;
mod compile;
mod condition;
mod expr;
pub mod helpers;
mod http;
mod native;
pub mod poll;
mod retry;
mod sign_ins;

use std::time::Duration;

use serde_json::{Map, Value};

pub use compile::{compile, compile_with, is_event_name};
pub use condition::{as_number, loose_eq, Cond, Op};
pub use expr::{registry, ContextPath, EvalError, Expr};
pub use http::{
    parse_network, AppCall, AuthPlan, HttpBody, HttpPlan, NetworkAllowance, OAuth2Plan,
    DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_REQUEST_TIMEOUT,
};
pub use poll::{PollPlan, PollStart};

pub use retry::RetryPolicy;
pub use sign_ins::SignIn;

use crate::model::{HttpMethod, OnError, RouterMode, Scenario, StepId};

/// A scenario ready to run.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    /// sha256 of the scenario text: identifies the version an execution ran.
    pub version: String,
    /// The model as written, for `list`, `graph` and the daemon's triggers.
    pub scenario: Scenario,
    pub env: Vec<EnvDecl>,
    pub vars: Map<String, Value>,
    pub input_schema: Option<jsonschema::Validator>,
    pub steps: Vec<PlanStep>,
    pub on_failure: Vec<PlanStep>,
    pub timeout: Option<Duration>,
    /// The compiled schedule, when the trigger is one.
    pub schedule: Option<ScheduleTrigger>,
    /// The compiled webhook, when the trigger is one.
    pub webhook: Option<WebhookPlan>,
    /// The compiled poll, when the trigger is one.
    pub poll: Option<poll::PollPlan>,
    /// `settings.keys`: each name with its template over the trigger.
    pub keys: Vec<(String, Expr)>,
    /// What a stored version keeps: the scenario text, followed by the text
    /// of every app it uses (so a resumed execution runs the same calls).
    pub bundle: String,
}

/// Separates the scenario and each app it uses in a stored version: a YAML
/// document start, so the bundle reads as one multi-document YAML text.
pub const BUNDLE_SEPARATOR: &str = "\n--- # scenarist app\n";

/// A stored version's scenario text and the app texts after it.
pub fn unbundle(bundle: &str) -> (&str, Vec<&str>) {
    let mut parts = bundle.split(BUNDLE_SEPARATOR);
    let scenario = parts.next().unwrap_or_default();
    (scenario, parts.collect())
}

/// Business keys longer than this are cut (on a character boundary): a key
/// is a handle to search by, and its index stays small.
pub const MAX_KEY_LEN: usize = 256;

impl Plan {
    /// The business keys of an execution, evaluated over the trigger's
    /// context (`trigger`, `env`, `vars`). A key that cannot be computed or
    /// comes out empty is left out: a missing field never refuses an event.
    /// Long values are cut to [`MAX_KEY_LEN`] characters.
    pub fn business_keys(&self, ctx: &handlebars::Context) -> Vec<(String, String)> {
        let max = MAX_KEY_LEN;
        self.keys
            .iter()
            .filter_map(|(name, expr)| {
                let value = expr.eval_ref(ctx).ok()?;
                let text = match value.as_ref() {
                    Value::Null => return None,
                    Value::String(s) => s.trim().to_owned(),
                    other => other.to_string(),
                };
                if text.is_empty() {
                    return None;
                }
                let text = match text.char_indices().nth(max) {
                    Some((cut, _)) => text[..cut].to_owned(),
                    None => text,
                };
                Some((name.clone(), text))
            })
            .collect()
    }
}

/// A webhook trigger, ready for the daemon: templates compiled once.
#[derive(Debug)]
pub struct WebhookPlan {
    /// Without a leading `/`: served at `/hooks/<path>`.
    pub path: String,
    pub method: HttpMethod,
    pub auth: Option<WebhookAuthPlan>,
    /// Evaluated over `trigger` (and `env`, `vars`).
    pub dedupe: Option<Expr>,
    pub respond: crate::model::WebhookRespond,
}

#[derive(Debug)]
pub enum WebhookAuthPlan {
    /// An HMAC-SHA256 of the raw body, hex, after an optional prefix (`sha256=`).
    HmacSha256 {
        header: String,
        /// Any one may match (rotation).
        secrets: Vec<Expr>,
        prefix: String,
    },
    Token {
        header: String,
        secret: Expr,
    },
    /// A sender's scheme (`stripe`, `standard_webhooks`, `github`, `slack`).
    Signed {
        scheme: crate::model::SignatureScheme,
        secrets: Vec<Expr>,
        /// The replay window; zero for schemes without a timestamp.
        tolerance: std::time::Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDecl {
    pub name: String,
    pub secret: bool,
    /// Used when the variable is not set.
    pub default: Option<String>,
}

impl EnvDecl {
    pub fn from_model(var: &crate::model::EnvVar) -> EnvDecl {
        EnvDecl {
            name: var.name().to_owned(),
            secret: var.is_secret(),
            default: var.default_value().map(str::to_owned),
        }
    }

    /// Its value in `env`, or its default; none when it is missing.
    pub fn value<'a>(
        &'a self,
        env: &'a std::collections::HashMap<String, String>,
    ) -> Option<&'a str> {
        env.get(&self.name)
            .map(String::as_str)
            .or(self.default.as_deref())
    }
}

#[derive(Debug)]
pub struct ScheduleTrigger {
    pub cron: Option<croner::Cron>,
    pub every: Option<Duration>,
    pub timezone: chrono_tz::Tz,
    pub catch_up: crate::model::CatchUp,
}

impl ScheduleTrigger {
    /// The first tick strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if let Some(every) = self.every {
            // Ticks sit on multiples of the period since the Unix epoch: the same
            // instants in every process and after every restart.
            let period = every.as_micros().max(1) as i64;
            let now = after.timestamp_micros();
            let next = (now.div_euclid(period) + 1) * period;
            return chrono::DateTime::from_timestamp_micros(next);
        }
        let cron = self.cron.as_ref()?;
        cron.find_next_occurrence(&after.with_timezone(&self.timezone), false)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

#[derive(Debug)]
pub struct PlanStep {
    pub id: StepId,
    pub name: Option<String>,
    pub when: Option<Cond>,
    /// Bounds each attempt.
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub on_error: OnError,
    pub fallback: Option<Expr>,
    pub kind: PlanKind,
    /// A step that only computes (set, filter, respond, fail) from
    /// expressions that give the same value each time: after a crash it is
    /// run again rather than journaled before the next effect, so its record
    /// waits for the next commit the execution makes anyway (the journal's
    /// barrier before effects is for results a re-run could change).
    pub replayable: bool,
}

#[derive(Debug)]
pub enum PlanKind {
    Http(Box<HttpPlan>),
    Set(Expr),
    Filter(Cond),
    Router(RouterPlan),
    ForEach(Box<ForEachPlan>),
    Respond(RespondPlan),
    Fail(Expr),
    Store(StorePlan),
    Approval(Box<ApprovalPlan>),
    Delay(Duration),
    Record(Box<RecordPlan>),
    WaitFor(Box<WaitForPlan>),
    Emit(Box<EmitPlan>),
}

impl PlanKind {
    /// A step of this kind only computes, from expressions that give the
    /// same value each time (see [`PlanStep::replayable`]).
    pub fn is_repeatable(&self) -> bool {
        match self {
            PlanKind::Set(e) | PlanKind::Fail(e) => e.is_repeatable(),
            PlanKind::Filter(c) => c.is_repeatable(),
            PlanKind::Respond(r) => {
                r.headers.iter().all(|(_, e)| e.is_repeatable())
                    && r.body.as_ref().is_none_or(Expr::is_repeatable)
            }
            _ => false,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            PlanKind::Http(_) => "http",
            PlanKind::Set(_) => "set",
            PlanKind::Filter(_) => "filter",
            PlanKind::Router(_) => "router",
            PlanKind::ForEach(_) => "for_each",
            PlanKind::Respond(_) => "respond",
            PlanKind::Fail(_) => "fail",
            PlanKind::Store(_) => "store",
            PlanKind::Approval(_) => "approval",
            PlanKind::Delay(_) => "delay",
            PlanKind::Record(_) => "record",
            PlanKind::WaitFor(_) => "wait_for",
            PlanKind::Emit(_) => "emit",
        }
    }
}

/// One `approval` step: what the reviewer is asked and how long they have.
#[derive(Debug)]
pub struct ApprovalPlan {
    pub message: Expr,
    pub timeout: Duration,
    pub on_timeout: crate::model::TimeoutDecision,
    pub approvers: Vec<String>,
    pub on_reject: crate::model::OnReject,
}

/// One `record` step: a business event for the report.
#[derive(Debug)]
pub struct RecordPlan {
    pub event: Expr,
    pub key: Expr,
    pub value: Option<Expr>,
    pub data: Option<Expr>,
}

/// One `wait_for` step: which event, for which key, and until when.
#[derive(Debug)]
pub struct WaitForPlan {
    pub event: String,
    pub key: Expr,
    /// Evaluated with `event` in scope.
    pub condition: Option<Cond>,
    pub timeout: Duration,
    pub on_timeout: crate::model::WaitTimeout,
    pub lookback: Option<Duration>,
}

/// One `emit` step: a correlated event for the executions waiting on it.
#[derive(Debug)]
pub struct EmitPlan {
    pub event: String,
    pub key: Expr,
    pub data: Option<Expr>,
}

/// One `store` step: the operation and the key it acts on.
#[derive(Debug)]
pub struct StorePlan {
    pub name: String,
    pub key: Expr,
    pub op: StoreOpPlan,
    pub ttl: Option<Duration>,
}

#[derive(Debug)]
pub enum StoreOpPlan {
    Get,
    Put(Expr),
    Delete,
    /// By how much (default 1).
    Increment(Option<Expr>),
}

#[derive(Debug)]
pub struct RouterPlan {
    pub mode: RouterMode,
    pub routes: Vec<RoutePlan>,
}

#[derive(Debug)]
pub struct RoutePlan {
    pub name: String,
    /// `None`: the fallback route.
    pub when: Option<Cond>,
    pub steps: Vec<PlanStep>,
}

#[derive(Debug)]
pub struct ForEachPlan {
    pub items: Expr,
    pub as_name: String,
    pub concurrency: usize,
    pub steps: Vec<PlanStep>,
    pub collect: Option<Expr>,
}

#[derive(Debug)]
pub struct RespondPlan {
    pub status: u16,
    pub headers: Vec<(String, Expr)>,
    pub body: Option<Expr>,
}

/// When `incomplete` executions are tried again unless `settings.retry_incomplete` says otherwise.
pub const DEFAULT_RETRY_INCOMPLETE: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(600),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
];

impl Plan {
    /// The step at a journal path such as `route/enterprise/notify#3`.
    pub fn find_step(&self, path: &str) -> Option<&PlanStep> {
        let mut segments = path.split('/').peekable();
        let mut steps = &self.steps;
        if segments.peek() == Some(&"on_failure") {
            segments.next();
            steps = &self.on_failure;
        }
        loop {
            let segment = segments.next()?;
            let id = segment.split('#').next().unwrap_or(segment);
            let step = steps.iter().find(|s| s.id.as_str() == id)?;
            if segments.peek().is_none() {
                return Some(step);
            }
            steps = match &step.kind {
                PlanKind::Router(router) => {
                    let route = segments.next()?;
                    &router.routes.iter().find(|r| r.name == route)?.steps
                }
                PlanKind::ForEach(each) => &each.steps,
                _ => return None,
            };
        }
    }

    /// Every way `body` breaks the scenario's input schema, each with where
    /// (empty when there is no schema or the body fits).
    pub fn input_violations(&self, body: &Value) -> Vec<String> {
        let Some(schema) = &self.input_schema else {
            return Vec::new();
        };
        schema
            .iter_errors(body)
            .map(|e| {
                let at = e.instance_path.to_string();
                let at = if at.is_empty() {
                    "(the whole input)".to_owned()
                } else {
                    at
                };
                format!("{at}: {e}")
            })
            .collect()
    }

    /// When an incomplete execution is next tried, after it stopped for the `attempt`-th time.
    pub fn retry_incomplete_after(&self, attempt: u32) -> Option<Duration> {
        let index = attempt.saturating_sub(1) as usize;
        match &self.scenario.settings.retry_incomplete {
            Some(schedule) => schedule.get(index).map(|d| d.as_std()),
            None => DEFAULT_RETRY_INCOMPLETE.get(index).copied(),
        }
    }
}
