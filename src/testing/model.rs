//! What a scenario test file says: pure serde data, like the scenario model.
//!
//! ```yaml
//! scenario: qualify-closed-won.yaml      # default: NAME.yaml beside NAME.test.yaml
//! env: { REFERRAL_API: "http://referral.test" }
//! cases:
//!   - name: a closed-won deal is qualified
//!     trigger: { body: { deal: { id: D-1 } } }
//!     mocks: { qualify: { status: 200, body: { ok: true } } }
//!     expect: { status: succeeded, requests: { qualify: { count: 1 } } }
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::Duration;

/// A test file. `C` is the case type: [`TestCase`] once read; the loader
/// first reads cases as raw YAML so that each case's errors are found.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "scenarist scenario test", bound = "C: JsonSchema")]
pub struct TestFile<C = TestCase> {
    /// The scenario under test, relative to this file (default: the file
    /// with the same base name, `NAME.yaml` beside `NAME.test.yaml`).
    pub scenario: Option<String>,
    /// Values of the scenario's declared environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Overrides of the scenario's `vars`, for every case.
    #[serde(default)]
    pub vars: Map<String, Value>,
    pub cases: Vec<C>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    #[serde(default)]
    pub trigger: TestTrigger,
    /// Overrides of `vars` for this case (over the file's).
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Where the virtual clock starts (default: 2026-01-05T09:00:00Z, a Monday).
    #[schemars(with = "Option<String>")]
    pub now: Option<DateTime<Utc>>,
    /// Answers of http steps, by step id: one answer, or a list of
    /// successive answers (the last one repeats).
    #[serde(default)]
    pub mocks: BTreeMap<String, Mocks>,
    /// Decisions of approval steps, by step id. An approval without one
    /// waits until its timeout (in virtual time).
    #[serde(default)]
    pub approvals: BTreeMap<String, TestDecision>,
    /// Correlated events, delivered at virtual time `after` from the start.
    #[serde(default)]
    pub events: Vec<TestEvent>,
    /// Tests the poll trigger itself: one poll, answered by `mocks.trigger`
    /// (a page per answer), from where the watch stands.
    pub poll: Option<TestPoll>,
    #[serde(default)]
    pub expect: Expect,
}

/// Where the watch stands before a case's poll (neither: its first poll,
/// from the trigger's `start`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPoll {
    /// Ids already run.
    #[serde(default)]
    pub seen: Vec<String>,
    /// The cursor, e.g. `{ date: 2026-01-05T09:00:00Z }`.
    pub cursor: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestTrigger {
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub query: Map<String, Value>,
    /// A `poll` trigger's item (its `trigger.item`).
    #[serde(default)]
    pub item: Option<Value>,
    /// A batched `poll` trigger's items (its `trigger.items`).
    #[serde(default)]
    pub items: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Mocks {
    One(Mock),
    Sequence(Vec<Mock>),
}

/// A mapping is one answer, a list successive ones: read by shape rather
/// than by trying each variant, so a bad field is reported where it is
/// (`mocks.find.error: unknown value`), not as "no variant matched".
impl<'de> Deserialize<'de> for Mocks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = Mocks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an answer (a mapping) or a list of answers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Mocks, A::Error> {
                Mock::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Mocks::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Mocks, A::Error> {
                Vec::<Mock>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Mocks::Sequence)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

impl Mocks {
    pub fn answers(&self) -> &[Mock] {
        match self {
            Mocks::One(m) => std::slice::from_ref(m),
            Mocks::Sequence(list) => list,
        }
    }
}

/// One answer: a response, or a failure to get one.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mock {
    /// Default 200.
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    /// No response at all: `timeout` or `connect` (both retryable).
    pub error: Option<MockError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MockError {
    Timeout,
    Connect,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestDecision {
    pub decision: DecisionKind,
    /// Who decides (default `test`).
    pub by: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEvent {
    pub event: String,
    pub key: String,
    #[serde(default)]
    pub data: Option<Value>,
    /// When, from the case's start (default: at the start).
    pub after: Option<Duration>,
}

/// What must hold once the case has run. Everything is optional; what is
/// given is checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<ExpectedStatus>,
    /// The ids of the steps that ran (skipped ones left out), in order.
    pub steps: Option<Vec<String>>,
    /// Per step id, a subset of its output.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Per http step id, what it sent.
    #[serde(default)]
    pub requests: BTreeMap<String, ExpectedRequest>,
    /// Http steps that must send nothing.
    #[serde(default)]
    pub not_called: Vec<String>,
    /// Business events (`record` steps) that must have been recorded.
    #[serde(default)]
    pub records: Vec<ExpectedRecord>,
    /// A substring of the execution's error.
    pub error: Option<String>,
    /// With `poll:`: the ids of the items that became executions, in order.
    pub items: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    Succeeded,
    Failed,
    Filtered,
    Incomplete,
    Rejected,
    Waiting,
}

impl ExpectedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Succeeded => "succeeded",
            ExpectedStatus::Failed => "failed",
            ExpectedStatus::Filtered => "filtered",
            ExpectedStatus::Incomplete => "incomplete",
            ExpectedStatus::Rejected => "rejected",
            ExpectedStatus::Waiting => "waiting",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRequest {
    /// How many attempts were sent (retries count).
    pub count: Option<usize>,
    pub method: Option<String>,
    /// The whole URL, or how it ends (`/users/qualification`).
    pub url: Option<String>,
    /// A subset of the JSON body (of the last attempt).
    pub body: Option<Value>,
    /// Headers that must be sent with these values (names in any case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRecord {
    pub event: String,
    pub key: Option<String>,
    pub value: Option<f64>,
}
