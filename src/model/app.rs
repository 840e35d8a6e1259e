//! An app: a typed connector written in YAML (`apps/NAME.yaml`), so that
//! scenarios say `uses: referral-factory.qualify` with checked inputs instead
//! of repeating a base URL, an auth header, paths and body shapes by hand.
//! Pure data, like the rest of the model.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kinds::HttpMethod;
use super::{Connection, EnvVar};

/// One app file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// The name steps use: `uses: APP.ACTION`; lowercase letters, digits, `-`.
    pub app: String,
    pub description: Option<String>,
    /// What the app's templates read; a scenario that uses the app needs them.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// The base URL, headers (auth), retry, timeout and rate limit of every action.
    pub connection: Connection,
    pub actions: BTreeMap<String, Action>,
    /// Watches a scenario's `poll` trigger can use: `poll: { uses: APP.TRIGGER }`.
    #[serde(default)]
    pub triggers: BTreeMap<String, AppTrigger>,
}

/// A watch an app offers: a request whose templates read `input` (the
/// poll's `with`), `env`, `cursor` and `page`, and how its answer is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppTrigger {
    pub description: Option<String>,
    /// The JSON Schema of the poll's `with` (an object).
    #[serde(default = "any_object")]
    pub input: Value,
    pub request: ActionRequest,
    /// Statuses that count as success (default: any 2xx).
    pub expect: Option<Vec<u16>>,
    /// JSONPath of the items in an answer, e.g. `$.data[*]`.
    pub items: String,
    /// What makes an item the same item, e.g. `{{ item.id }}`.
    pub id: String,
    /// The item's date (RFC 3339 or Unix seconds).
    pub date: Option<String>,
    /// JSONPath of the next page's token in an answer.
    pub next_page: Option<String>,
}

/// One call an app offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub description: Option<String>,
    /// The JSON Schema of the step's `with` (an object).
    #[serde(default = "any_object")]
    pub input: Value,
    pub request: ActionRequest,
    /// Statuses that count as success (default: any 2xx).
    pub expect: Option<Vec<u16>>,
    /// What the step outputs, a template over `response` (default: the http output).
    pub output: Option<Value>,
}

fn any_object() -> Value {
    serde_json::json!({ "type": "object" })
}

/// The request of an action; templates read `input` (the step's `with`) and `env`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    #[serde(default = "get")]
    pub method: HttpMethod,
    /// Appended to the connection's `base_url`.
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    pub json: Option<Value>,
    pub form: Option<BTreeMap<String, Value>>,
    pub body: Option<String>,
}

impl ActionRequest {
    pub fn body_spec(&self) -> (super::BodySpec<'_>, bool) {
        super::BodySpec::of(self.json.as_ref(), self.form.as_ref(), self.body.as_deref())
    }
}

fn get() -> HttpMethod {
    HttpMethod::Get
}

/// A step's `connection:` when it `uses` an app: what it may change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionOverride {
    /// Added to (or replacing) the app's headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    pub timeout: Option<super::Duration>,
    pub retry: Option<super::RetrySpec>,
}

/// A step that calls an app's action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsesStep {
    /// `APP.ACTION`.
    pub uses: String,
    /// The action's input, checked against its schema.
    pub with: serde_json::Map<String, Value>,
    pub connection: Option<ConnectionOverride>,
}

impl UsesStep {
    /// `(app, action)`, or `None` when `uses` has no dot.
    pub fn target(&self) -> Option<(&str, &str)> {
        self.uses.split_once('.')
    }
}
