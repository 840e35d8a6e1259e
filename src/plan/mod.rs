//! The compiled plan: the only input the engine accepts.
//!
//! A [`Plan`] can only be made by [`compile`], which runs every check and
//! compiles every template, JSONPath, regex, cron expression and schema once.
//! The engine therefore never re-checks anything and never parses per execution.

mod compile;
mod condition;
mod expr;
pub mod helpers;
mod native;
mod retry;

use std::time::Duration;

use serde_json::{Map, Value};

pub use compile::compile;
pub use condition::{as_number, loose_eq, Cond, Op};
pub use expr::{registry, ContextPath, EvalError, Expr};
pub use retry::RetryPolicy;

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDecl {
    pub name: String,
    pub secret: bool,
}

#[derive(Debug)]
pub struct ScheduleTrigger {
    pub cron: Option<croner::Cron>,
    pub every: Option<Duration>,
    pub timezone: chrono_tz::Tz,
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
}

impl PlanKind {
    pub fn name(&self) -> &'static str {
        match self {
            PlanKind::Http(_) => "http",
            PlanKind::Set(_) => "set",
            PlanKind::Filter(_) => "filter",
            PlanKind::Router(_) => "router",
            PlanKind::ForEach(_) => "for_each",
            PlanKind::Respond(_) => "respond",
            PlanKind::Fail(_) => "fail",
        }
    }
}

#[derive(Debug)]
pub struct HttpPlan {
    pub method: HttpMethod,
    /// The connection's base URL, joined with `path` at run time.
    pub base_url: Option<Expr>,
    /// `url`, or `path` when there is a base URL.
    pub target: Expr,
    /// Connection entries first, then the step's (which win).
    pub query: Vec<(String, Expr)>,
    pub headers: Vec<(String, Expr)>,
    pub body: HttpBody,
    /// Success statuses; `None` means any 2xx.
    pub expect: Option<Vec<u16>>,
    pub request_timeout: Duration,
}

#[derive(Debug)]
pub enum HttpBody {
    None,
    Json(Expr),
    Form(Vec<(String, Expr)>),
    Text(Expr),
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

/// Default per-request timeout of http steps.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
