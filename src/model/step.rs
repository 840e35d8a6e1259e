//! A step: the fields every step shares, and exactly one kind.
//!
//! Deserialization goes through [`RawStep`], which lists every kind as optional,
//! so that serde rejects unknown keys and we can say "exactly one kind" precisely.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::app::{ConnectionOverride, UsesStep};
use super::condition::Condition;
use super::kinds::{
    ApprovalStep, DelayStep, EmitStep, FailStep, ForEachStep, HttpStep, RecordStep, RespondStep,
    RouterStep, StoreStep, WaitForStep,
};
use super::values::{Duration, StepId};

/// One step of a scenario.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "RawStep", into = "RawStep")]
#[schemars(with = "RawStep")]
pub struct Step {
    pub id: StepId,
    pub name: Option<String>,
    /// The step is skipped (status `skipped`, output null) when this is false.
    pub when: Option<Condition>,
    /// Bounds each attempt of the step.
    pub timeout: Option<Duration>,
    pub retry: Option<RetrySpec>,
    pub on_error: OnError,
    /// The output recorded when the step fails and `on_error` is `continue`.
    pub fallback: Option<Value>,
    pub kind: StepKind,
}

/// What a step does.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub enum StepKind {
    Http(HttpStep),
    /// Builds an object from expressions: a transform or enrichment.
    Set(serde_json::Map<String, Value>),
    /// Ends the execution as `filtered` (not a failure) when false.
    Filter(Condition),
    Router(RouterStep),
    ForEach(ForEachStep),
    Respond(RespondStep),
    Fail(FailStep),
    /// Reads or writes a named data store (Make.com's data stores).
    Store(StoreStep),
    /// Waits for a person's decision (the review before a reward).
    Approval(ApprovalStep),
    /// Waits for a while, without holding a worker.
    Delay(DelayStep),
    /// Writes a business event for `scenarist report`.
    Record(RecordStep),
    /// Waits for a correlated event (the milestone that qualifies a referral).
    WaitFor(WaitForStep),
    /// Sends a correlated event to the executions waiting for it.
    Emit(EmitStep),
    /// Calls an app's action (`uses: referral-factory.qualify`, `with: {...}`).
    Uses(UsesStep),
}

impl StepKind {
    pub const NAMES: &'static [&'static str] = &[
        "http", "set", "filter", "router", "for_each", "respond", "fail", "store", "approval",
        "delay", "record", "wait_for", "emit", "uses",
    ];

    /// The key that names this kind in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Http(_) => "http",
            StepKind::Set(_) => "set",
            StepKind::Filter(_) => "filter",
            StepKind::Router(_) => "router",
            StepKind::ForEach(_) => "for_each",
            StepKind::Respond(_) => "respond",
            StepKind::Fail(_) => "fail",
            StepKind::Store(_) => "store",
            StepKind::Approval(_) => "approval",
            StepKind::Delay(_) => "delay",
            StepKind::Record(_) => "record",
            StepKind::WaitFor(_) => "wait_for",
            StepKind::Emit(_) => "emit",
            StepKind::Uses(_) => "uses",
        }
    }
}

/// What happens to the execution when a step fails after its retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The execution fails (and `on_failure` steps run).
    #[default]
    Fail,
    /// The error is recorded; the step's output is `fallback` (or null) and the execution goes on.
    Continue,
    /// The execution stops as `incomplete`, to be resumed from this step later.
    Break,
}

/// How often and how patiently a step is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts, the first included (1 means no retry).
    pub attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    /// Delay before the first retry (default 1s).
    pub initial: Option<Duration>,
    /// Upper bound of any delay (default 5m).
    pub max: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    #[default]
    Exponential,
}

/// The written form of a step: every kind optional, unknown keys refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Step",
    description = "A step: common fields and exactly one of http, set, filter, router, for_each, respond, fail, store, approval, delay, record, wait_for, emit, uses (with `with` and `connection`)."
)]
pub struct RawStep {
    pub id: StepId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEachStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<RespondStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<FailStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitForStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emit: Option<EmitStep>,
    /// An app's action: `APP.ACTION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// The input of `uses`.
    #[serde(default, rename = "with", skip_serializing_if = "Option::is_none")]
    pub with_: Option<serde_json::Map<String, Value>>,
    /// What a `uses` step changes of the app's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionOverride>,
}

impl Default for StepId {
    fn default() -> Self {
        "step".parse().expect("valid id")
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, Self::Error> {
        let mut kinds = Vec::new();
        if let Some(k) = raw.http {
            kinds.push(StepKind::Http(k));
        }
        if let Some(k) = raw.set {
            kinds.push(StepKind::Set(k));
        }
        if let Some(k) = raw.filter {
            kinds.push(StepKind::Filter(k));
        }
        if let Some(k) = raw.router {
            kinds.push(StepKind::Router(k));
        }
        if let Some(k) = raw.for_each {
            kinds.push(StepKind::ForEach(k));
        }
        if let Some(k) = raw.respond {
            kinds.push(StepKind::Respond(k));
        }
        if let Some(k) = raw.fail {
            kinds.push(StepKind::Fail(k));
        }
        if let Some(k) = raw.store {
            kinds.push(StepKind::Store(k));
        }
        if let Some(k) = raw.approval {
            kinds.push(StepKind::Approval(k));
        }
        if let Some(k) = raw.delay {
            kinds.push(StepKind::Delay(k));
        }
        if let Some(k) = raw.record {
            kinds.push(StepKind::Record(k));
        }
        if let Some(k) = raw.wait_for {
            kinds.push(StepKind::WaitFor(k));
        }
        if let Some(k) = raw.emit {
            kinds.push(StepKind::Emit(k));
        }
        match raw.uses {
            Some(uses) => kinds.push(StepKind::Uses(UsesStep {
                uses,
                with: raw.with_.unwrap_or_default(),
                connection: raw.connection,
            })),
            None if raw.with_.is_some() || raw.connection.is_some() => {
                return Err(format!(
                    "step `{}`: `with` and `connection` go with `uses: APP.ACTION` (an http step names its connection under `http`)",
                    raw.id
                ))
            }
            None => {}
        }
        let kind = match kinds.len() {
            1 => kinds.pop().expect("one kind"),
            0 => {
                return Err(format!(
                    "step `{}` has no kind: add exactly one of {}",
                    raw.id,
                    StepKind::NAMES.join(", ")
                ))
            }
            _ => {
                return Err(format!(
                    "step `{}` has {} kinds ({}): a step does exactly one thing, split it into several steps",
                    raw.id,
                    kinds.len(),
                    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                ))
            }
        };
        Ok(Step {
            id: raw.id,
            name: raw.name,
            when: raw.when,
            timeout: raw.timeout,
            retry: raw.retry,
            on_error: raw.on_error,
            fallback: raw.fallback,
            kind,
        })
    }
}

impl From<Step> for RawStep {
    fn from(step: Step) -> Self {
        let mut raw = RawStep {
            id: step.id,
            name: step.name,
            when: step.when,
            timeout: step.timeout,
            retry: step.retry,
            on_error: step.on_error,
            fallback: step.fallback,
            ..RawStep::default()
        };
        match step.kind {
            StepKind::Http(k) => raw.http = Some(k),
            StepKind::Set(k) => raw.set = Some(k),
            StepKind::Filter(k) => raw.filter = Some(k),
            StepKind::Router(k) => raw.router = Some(k),
            StepKind::ForEach(k) => raw.for_each = Some(k),
            StepKind::Respond(k) => raw.respond = Some(k),
            StepKind::Fail(k) => raw.fail = Some(k),
            StepKind::Store(k) => raw.store = Some(k),
            StepKind::Approval(k) => raw.approval = Some(k),
            StepKind::Delay(k) => raw.delay = Some(k),
            StepKind::Record(k) => raw.record = Some(k),
            StepKind::WaitFor(k) => raw.wait_for = Some(k),
            StepKind::Emit(k) => raw.emit = Some(k),
            StepKind::Uses(k) => {
                raw.uses = Some(k.uses);
                raw.with_ = Some(k.with);
                raw.connection = k.connection;
            }
        }
        raw
    }
}

impl Step {
    /// The steps nested directly inside this one (route and loop bodies).
    pub fn children(&self) -> Vec<&Step> {
        match &self.kind {
            StepKind::Router(r) => r
                .routes
                .iter()
                .flat_map(|route| route.steps.iter())
                .collect(),
            StepKind::ForEach(f) => f.steps.iter().collect(),
            _ => Vec::new(),
        }
    }
}
