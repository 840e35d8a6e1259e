//! The engine: executes a [`Plan`] step by step, asynchronously.
//!
//! It knows nothing of the CLI, HTTP servers or storage: results leave through
//! the [`Journal`] and the returned [`Execution`]. It never reads environment
//! variables itself; callers resolve them into [`RunRequest::env`].

mod clock;
mod correlate;
mod effects;
mod events;
mod execution;
mod flow;
mod http;
mod journal;
mod redact;
mod run;
mod transport;
mod wait;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use clock::Clock;
pub use effects::idempotency_key;
pub use events::{Emitted, EventWait, NewEvent, ReceivedEvent};
pub use execution::{Execution, ExecutionError, ExecutionStatus, StepRecord, StepStatus};
pub use http::{parse_retry_after, Body, Request, Response};
pub use journal::{
    apply_in_memory, data_step_record, increment, record_output, DataOp, DataRequest,
    ExecutionStart, Journal, JournalError, MemoryJournal, NoJournal, Tee,
};
pub use redact::{Redactor, MASK, MIN_SECRET_LEN};
pub use run::Prepared;
pub use transport::{Sender, Transport};
pub use wait::{APPROVED, REJECTED};

use crate::plan::Plan;

/// Runs plans. Cheap to share: one HTTP connection pool for all executions,
/// built on the first request (loading TLS roots costs milliseconds that a
/// scenario without HTTP steps should not pay).
#[derive(Clone, Default)]
pub struct Engine {
    client: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    /// Sends http steps' requests instead of the network (tests).
    transport: Option<std::sync::Arc<dyn Transport>>,
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
    /// Set to continue an execution that a crash or a `break` stopped.
    pub resume: Option<Resume>,
    /// The clock `approval` and `delay` steps read (default: the system's);
    /// tests inject one to pass a deadline without sleeping.
    pub clock: Option<Clock>,
    /// The execution whose `emit` event ids this one reuses: a replay's
    /// original (default: this execution), so a replay never emits twice.
    pub origin: Option<Uuid>,
}

/// Where a stopped execution stands: what its journal kept.
#[derive(Debug, Clone)]
pub struct Resume {
    /// Every record kept so far. Settled results are not run again; the step
    /// that was in flight, or failed with `break`, runs again.
    pub completed: Vec<StepRecord>,
    pub started_at: DateTime<Utc>,
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

/// Why an execution could not start, or could not go on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    /// The journal could not keep a result: the execution stopped at once
    /// (it stays `running` in a store, to be resumed).
    #[error("the execution stopped because its result could not be kept: {0}")]
    Journal(JournalError),
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
    /// The response body an error quotes, whole: it is masked before it is
    /// written out (a secret in JSON text may be escaped) and cut to its
    /// first [`QUOTED_CHARS`] only then (a secret cut in two no longer
    /// matches the mask).
    pub body: Option<Value>,
}

/// How much of a response body an error message quotes.
pub const QUOTED_CHARS: usize = 200;

impl StepError {
    pub fn fatal(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            retryable: false,
            retry_after: None,
            status: None,
            body: None,
        }
    }

    /// The message as it may leave the engine: masked, then the quoted body
    /// masked and only then cut.
    pub fn masked(&self, redactor: &Redactor) -> String {
        let message = redactor.string(self.message.clone());
        match &self.body {
            None => message,
            Some(body) => {
                let mut body = body.clone();
                redactor.value(&mut body);
                let text = match body {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let quoted: String = text.chars().take(QUOTED_CHARS).collect();
                format!("{message}: {quoted}")
            }
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
        Engine::default()
    }

    /// An engine whose http steps go through `transport`, never the network.
    pub fn with_transport(transport: std::sync::Arc<dyn Transport>) -> Engine {
        Engine {
            transport: Some(transport),
            ..Engine::default()
        }
    }

    pub(crate) fn transport(&self) -> Option<&dyn Transport> {
        self.transport.as_deref()
    }

    /// Checks the request against the plan and runs the execution to its end.
    pub async fn execute(
        &self,
        plan: &Plan,
        request: RunRequest,
        journal: &dyn Journal,
    ) -> Result<Execution, RunError> {
        let prepared = Engine::prepare(plan, request)?;
        self.run(plan, prepared, journal).await
    }

    /// Checks a request (env, vars, input schema) without running anything.
    pub fn prepare(plan: &Plan, request: RunRequest) -> Result<Prepared, RunError> {
        run::prepare(plan, request)
    }

    /// Runs a prepared execution to its end.
    pub async fn run(
        &self,
        plan: &Plan,
        prepared: Prepared,
        journal: &dyn Journal,
    ) -> Result<Execution, RunError> {
        run::Interpreter::new(self, plan, journal, prepared)
            .run()
            .await
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("scenarist/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
                .expect("the HTTP client builds with static settings")
        })
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
