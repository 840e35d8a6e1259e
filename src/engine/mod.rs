//! The engine: executes a [`Plan`] step by step, asynchronously.
//!
//! It knows nothing of the CLI, HTTP servers or storage: results leave through
//! the [`Journal`] and the returned [`Execution`]. It never reads environment
//! variables itself; callers resolve them into [`RunRequest::env`].

mod execution;
mod http;
mod journal;
mod redact;
mod run;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use execution::{Execution, ExecutionError, ExecutionStatus, StepRecord, StepStatus};
pub use journal::{Journal, MemoryJournal, NoJournal};
pub use redact::{Redactor, MASK, MIN_SECRET_LEN};

use crate::plan::Plan;

/// Runs plans. Cheap to share: one HTTP connection pool for all executions.
#[derive(Clone)]
pub struct Engine {
    client: reqwest::Client,
}

/// Everything one execution starts from.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub trigger: TriggerData,
    /// Values of the scenario's declared environment variables.
    pub env: HashMap<String, String>,
    /// Overrides of declared `vars` (`--var k=v`).
    pub vars: Map<String, Value>,
    /// Send only GET/HEAD/OPTIONS; show the other requests instead.
    pub dry_run: bool,
    pub execution_id: Option<Uuid>,
}

/// What triggered the execution, visible as `trigger.*`.
#[derive(Debug, Clone)]
pub struct TriggerData {
    pub body: Value,
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
    pub received_at: DateTime<Utc>,
}

impl Default for TriggerData {
    fn default() -> Self {
        TriggerData {
            body: json!({}),
            headers: Map::new(),
            query: Map::new(),
            received_at: Utc::now(),
        }
    }
}

/// Why an execution could not start. Nothing has run when one is returned.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    #[error("the input does not match the scenario's input schema:\n{}", .0.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n"))]
    InvalidInput(Vec<String>),
    #[error("environment variables declared by the scenario are not set: {}", .0.join(", "))]
    MissingEnv(Vec<String>),
    #[error("unknown var `{0}`: only vars declared in the scenario's `vars` can be set")]
    UnknownVar(String),
}

/// How a step failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq)]
pub struct StepError {
    pub message: String,
    /// Connect errors, timeouts, 429 and 5xx.
    pub retryable: bool,
    /// What the server asked for in `Retry-After`.
    pub retry_after: Option<Duration>,
    pub status: Option<u16>,
}

impl StepError {
    pub fn fatal(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            retryable: false,
            retry_after: None,
            status: None,
        }
    }

    pub fn retryable(message: impl Into<String>) -> StepError {
        StepError {
            retryable: true,
            ..StepError::fatal(message)
        }
    }
}

impl Engine {
    pub fn new() -> Engine {
        let client = reqwest::Client::builder()
            .user_agent(concat!("scenarist/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("the HTTP client builds with static settings");
        Engine { client }
    }

    /// Checks the request against the plan and runs the execution to its end.
    pub async fn execute(
        &self,
        plan: &Plan,
        request: RunRequest,
        journal: &dyn Journal,
    ) -> Result<Execution, RunError> {
        let prepared = run::prepare(plan, request)?;
        Ok(run::Interpreter::new(self, plan, journal, prepared)
            .run()
            .await)
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon spawns executions on a multi-threaded runtime.
    #[allow(dead_code)]
    fn execute_future_is_send(engine: &Engine, plan: &Plan, journal: &dyn Journal) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(engine.execute(plan, RunRequest::default(), journal));
    }
}
