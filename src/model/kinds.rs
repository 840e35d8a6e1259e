//! The configuration of each step kind that carries more than one value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::condition::Condition;
use super::step::Step;

/// An HTTP request. Output: `{ status, headers, body }`, `body` parsed when JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// A name from `connections`: its base URL, headers, query, timeout and retry apply.
    pub connection: Option<String>,
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// A full URL (template allowed). Exactly one of `url` and `path`.
    pub url: Option<String>,
    /// A path appended to the connection's `base_url`.
    pub path: Option<String>,
    #[serde(default)]
    pub query: BTreeMap<String, Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// A JSON body, built leaf by leaf from expressions.
    pub json: Option<Value>,
    /// A form body (application/x-www-form-urlencoded).
    pub form: Option<BTreeMap<String, Value>>,
    /// A raw text body.
    pub body: Option<String>,
    /// Statuses that count as success (default: any 2xx).
    pub expect: Option<Vec<u16>>,
}

fn default_method() -> HttpMethod {
    HttpMethod::Get
}

/// The body of a request as written, in an http step or an app action's
/// `request` (whose YAML shapes differ, and must each refuse unknown keys,
/// which serde's `flatten` cannot): one rule for both, at most one of
/// `json`, `form` and `body`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BodySpec<'a> {
    None,
    Json(&'a Value),
    Form(&'a BTreeMap<String, Value>),
    Text(&'a str),
}

impl<'a> BodySpec<'a> {
    /// The body given, and whether more than one was (then `json`, else
    /// `form`, is the one kept, so its own problems are still found).
    pub fn of(
        json: Option<&'a Value>,
        form: Option<&'a BTreeMap<String, Value>>,
        body: Option<&'a str>,
    ) -> (BodySpec<'a>, bool) {
        let several = [json.is_some(), form.is_some(), body.is_some()]
            .iter()
            .filter(|given| **given)
            .count()
            > 1;
        let spec = match (json, form, body) {
            (Some(json), _, _) => BodySpec::Json(json),
            (None, Some(form), _) => BodySpec::Form(form),
            (None, None, Some(text)) => BodySpec::Text(text),
            (None, None, None) => BodySpec::None,
        };
        (spec, several)
    }
}

impl HttpStep {
    pub fn body_spec(&self) -> (BodySpec<'_>, bool) {
        BodySpec::of(self.json.as_ref(), self.form.as_ref(), self.body.as_deref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }

    /// Safe methods are sent even in `--dry-run`: they change nothing remote.
    pub fn is_safe(self) -> bool {
        matches!(
            self,
            HttpMethod::Get | HttpMethod::Head | HttpMethod::Options
        )
    }
}

/// Sends the execution down one or several routes.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterStep {
    #[serde(default)]
    pub mode: RouterMode,
    pub routes: Vec<Route>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouterMode {
    /// The first route whose `when` holds; a route without `when` is the fallback.
    #[default]
    First,
    /// Every matching route in order (Make.com's behaviour); the fallback only if none matched.
    All,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// Absent: this route is the fallback.
    pub when: Option<Condition>,
    pub steps: Vec<Step>,
}

/// Runs its steps once per item of an array.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForEachStep {
    /// An expression that yields an array.
    pub items: Value,
    /// The name under which the current item is visible (default `item`).
    #[serde(rename = "as", default = "default_item_name")]
    pub as_name: String,
    /// How many items run at once (default 1: in order).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    pub steps: Vec<Step>,
    /// What each iteration contributes to the output (default: its last step's output).
    pub collect: Option<Value>,
}

fn default_item_name() -> String {
    "item".to_owned()
}

fn default_concurrency() -> u32 {
    1
}

/// The answer a webhook caller gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondStep {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    pub body: Option<Value>,
}

fn default_status() -> u16 {
    200
}

/// Ends the execution as failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailStep {
    pub message: String,
}

/// One operation on a named data store: exactly one of `get`, `put`,
/// `delete`, `increment`, each naming the key (a template).
/// Output: the value (null when absent); after `put`, the value written;
/// after `increment`, the new number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreStep {
    /// The data store's name, e.g. `qualified_referrals`.
    pub name: String,
    pub get: Option<String>,
    pub put: Option<String>,
    pub delete: Option<String>,
    pub increment: Option<String>,
    /// What `put` writes (expressions allowed), or how much `increment` adds (default 1).
    pub value: Option<Value>,
    /// How long a written key lives, e.g. `90d` (default: for ever).
    pub ttl: Option<super::values::Duration>,
}

/// Pauses the execution until a person approves or rejects it: the review
/// before a risky reward is issued. The execution waits in the store (status
/// `waiting`) and holds no worker meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// What the reviewer is asked (template), e.g. `Reward of {{ vars.amount }} for ...`.
    pub message: String,
    /// How long to wait for a decision (default 72h).
    #[serde(default = "default_approval_timeout")]
    pub timeout: super::values::Duration,
    /// The decision taken when nobody decided in time (default `reject`).
    #[serde(default)]
    pub on_timeout: TimeoutDecision,
    /// Who may decide (names given to `--by`); empty: anyone.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// What a rejection does: `stop` ends the execution as `rejected` (the default).
    #[serde(default)]
    pub on_reject: OnReject,
}

fn default_approval_timeout() -> super::values::Duration {
    super::values::Duration(std::time::Duration::from_secs(72 * 3600))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutDecision {
    #[default]
    Reject,
    Approve,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnReject {
    /// The execution ends with status `rejected`.
    #[default]
    Stop,
    /// The execution goes on; later steps read `steps.<id>.decision`.
    Continue,
}

/// Waits, durably: the execution is parked in the store and resumed when the
/// time has come, by whichever process runs then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayStep {
    /// How long, e.g. `10m`, `2h`, `3d`.
    #[serde(rename = "for")]
    pub duration: super::values::Duration,
}

/// Writes a business event for the report. `(event, key)` is unique: a
/// retried, resumed or replayed execution never counts the same thing twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordStep {
    /// `enrolled`, `referred`, `qualified`, `reward_issued`, or any name (template).
    pub event: String,
    /// What makes the event unique, e.g. the referred person's email (template).
    /// `referred` and `qualified` of one referral must share it: the report
    /// measures the time between them.
    pub key: String,
    /// A number the report sums, e.g. the reward amount.
    pub value: Option<Value>,
    /// Anything else worth keeping with the event.
    pub data: Option<Value>,
}

/// Waits until a correlated event arrives (`emit`, `scenarist emit`, `POST
/// /api/events`): the milestone that qualifies a referral, weeks later. The
/// execution waits in the store (status `waiting`) and holds no worker; an
/// event that arrived before the wait started is not lost (see `lookback`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForStep {
    /// The event's name, e.g. `deal.closed_won` (letters a-z, digits, `_`, `.`, `-`).
    pub event: String,
    /// The correlation key (template), e.g. `{{ steps.lead.email }}`.
    pub key: String,
    /// Only an event for which this holds is taken; `event` is in scope
    /// (`{{ event.data.amount }}`). Others are seen and the wait goes on.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub condition: Option<super::condition::Condition>,
    /// How long to wait at most (at most 365d). The deadline is fixed when the wait starts.
    pub timeout: super::values::Duration,
    /// What a timeout does: `fail` the execution (the default) or `continue`
    /// with `timed_out: true` in the output.
    #[serde(default)]
    pub on_timeout: WaitTimeout,
    /// Also take events received this long before the wait started, when that
    /// reaches further back than the execution's own trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<super::values::Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitTimeout {
    /// The execution fails, naming the step, the event, the key and the deadline.
    #[default]
    Fail,
    /// The execution goes on; the output says `timed_out: true`.
    Continue,
}

/// Sends a correlated event: every execution waiting for it (`wait_for` with
/// the same event and key) is resumed. Output `{ event_id, resumed }`; the
/// event id is stable per execution and step, so a resumed or replayed
/// execution never emits it twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitStep {
    /// The event's name, e.g. `deal.closed_won`.
    pub event: String,
    /// The correlation key (template), e.g. `{{ trigger.body.deal.contact_email }}`.
    pub key: String,
    /// What the event carries (expressions allowed); waiters read it as `event.data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}
