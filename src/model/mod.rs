//! The scenario language as plain data: what a user writes, nothing more.
//!
//! No I/O and no async here. Values that need compiling (templates, JSONPath,
//! regexes, cron) stay text; `plan` compiles them after `load` has read the file.

mod app;
mod auth;
mod condition;
mod kinds;
mod poll;
mod rate;
mod step;
mod trigger;
mod values;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use app::{Action, ActionRequest, App, AppTrigger, ConnectionOverride, UsesStep};
pub use auth::{Auth, ClientAuth, KeyPlace, OAuth2, OAuth2Grant};
pub use condition::{CompareOp, Comparison, Condition};
pub use kinds::{
    ApprovalStep, BodySpec, DelayStep, EmitStep, FailStep, ForEachStep, HttpMethod, HttpStep,
    OnReject, RecordStep, RespondStep, Route, RouterMode, RouterStep, StoreStep, TimeoutDecision,
    WaitForStep, WaitTimeout,
};
pub use poll::Poll;
pub use rate::RateLimit;
pub use step::{Backoff, OnError, RawStep, RetrySpec, Step, StepKind};
pub use trigger::{
    CatchUp, Manual, Schedule, SignatureScheme, Trigger, Webhook, WebhookAuth, WebhookRespond,
    DEFAULT_SIGNATURE_TOLERANCE,
};
pub use values::{Duration, ScenarioName, StepId};

/// One scenario file. `S` is the step type: [`Step`] once loaded; the loader
/// first reads steps as raw YAML so that each step's errors are found separately.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "scenarist scenario", bound = "S: JsonSchema")]
pub struct Scenario<S = Step> {
    pub name: ScenarioName,
    pub description: Option<String>,
    /// Who answers for this automation.
    pub owner: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Environment variables the scenario may read as `{{ env.NAME }}`.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Constants, readable as `{{ vars.x }}`.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    #[serde(default)]
    pub connections: BTreeMap<String, Connection>,
    #[serde(default)]
    pub trigger: Trigger,
    pub input: Option<InputSpec>,
    pub steps: Vec<S>,
    /// Run when the execution fails; they see `error.step` and `error.message`.
    #[serde(default)]
    pub on_failure: Vec<S>,
    #[serde(default)]
    pub settings: Settings,
}

/// A declared environment variable. Its value is a secret (masked as `***` in
/// every output) unless declared `{ name: X, secret: false }`, which suits base URLs.
/// It must be set, unless it has a `default` (an app's production base URL,
/// which a stand-in or a sandbox replaces).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a variable's name, or { name, secret: true | false, default: TEXT }"
)]
pub enum EnvVar {
    Name(String),
    Detailed(EnvDetail),
}

/// `{ name, secret, default }`: an env entry with more than its name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvDetail {
    pub name: String,
    #[serde(default = "yes")]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

fn yes() -> bool {
    true
}

impl EnvVar {
    pub fn name(&self) -> &str {
        match self {
            EnvVar::Name(n) | EnvVar::Detailed(EnvDetail { name: n, .. }) => n,
        }
    }

    pub fn is_secret(&self) -> bool {
        match self {
            EnvVar::Name(_) => true,
            EnvVar::Detailed(detail) => detail.secret,
        }
    }

    /// The value when the variable is not set; none means it must be.
    pub fn default_value(&self) -> Option<&str> {
        match self {
            EnvVar::Name(_) => None,
            EnvVar::Detailed(detail) => detail.default.as_deref(),
        }
    }
}

/// Shared settings for the http steps that name this connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub base_url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    #[serde(default)]
    pub query: BTreeMap<String, Value>,
    /// Per-request timeout (default 30s).
    pub timeout: Option<Duration>,
    pub retry: Option<RetrySpec>,
    /// The header that carries each request's idempotency key (default
    /// `Idempotency-Key`), or `false` to send none.
    pub idempotency: Option<Idempotency>,
    /// Reach loopback and private addresses even when the daemon listens
    /// beyond loopback (an internal CRM, say).
    #[serde(default)]
    pub allow_private: bool,
    /// Addresses or CIDR ranges this connection may reach whatever the
    /// outbound guard's rules, cloud metadata included.
    #[serde(default)]
    pub allow_network: Vec<String>,
    /// Calls through this connection are paced to this rate, across every
    /// execution of the process (of every daemon sharing a PostgreSQL store).
    pub rate_limit: Option<RateLimit>,
    /// How requests sign in: a bearer token, a user and password, or an API
    /// key; a header the connection or step sets by name wins.
    pub auth: Option<Auth>,
}

/// `idempotency: false`, or `idempotency: { header: X-Request-Id }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Idempotency {
    Enabled(bool),
    Header { header: String },
}

/// Validates the trigger body before any step runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// An inline JSON Schema.
    pub schema: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Bounds a whole execution.
    pub timeout: Option<Duration>,
    pub concurrency: Option<Concurrency>,
    /// When an `incomplete` execution (stopped by `on_error: break`) is tried
    /// again, counted from each stop. Default `[1m, 10m, 1h, 6h, 24h]`; `[]` never.
    pub retry_incomplete: Option<Vec<Duration>>,
    /// How long executions of this scenario are kept by `prune` (default: its `--older-than`).
    pub history: Option<Duration>,
    /// Business keys: names for values taken from the trigger when an
    /// execution is accepted (`lead: "{{ trigger.body.email }}"`), stored
    /// indexed so that people find a lead's executions by its email.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

/// How many executions of this scenario the daemon runs at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Concurrency {
    Limit(u32),
    Keyed {
        limit: u32,
        /// A template; the limit and the arrival order hold per key value.
        key: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::EnvVar;

    #[test]
    fn an_env_entry_is_a_name_or_its_known_fields() {
        let read = |yaml: &str| serde_yaml::from_str::<EnvVar>(yaml);
        let url = read("{ name: API_URL, secret: false, default: https://api.example }").unwrap();
        assert_eq!(url.default_value(), Some("https://api.example"));
        assert!(!url.is_secret());
        assert!(read("TOKEN").unwrap().is_secret());
        for bad in [
            "{ name: X, defualt: a }",
            "{ name: X, default: 3 }",
            "{ secret: true }",
        ] {
            let err = read(bad).unwrap_err().to_string();
            assert!(
                err.contains("a variable's name, or { name, secret"),
                "{bad}: {err}"
            );
        }
    }
}
