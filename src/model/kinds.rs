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
