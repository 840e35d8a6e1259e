//! The engine: executes a [`Plan`] step by step, asynchronously.
//!
//! It knows nothing of the CLI, HTTP servers or storage: results leave through
//! the [`Journal`] and the returned [`Execution`]. It never reads environment
//! variables itself; callers resolve them into [`RunRequest::env`].

mod auth;
mod clock;
mod correlate;
mod effects;
mod events;
mod execution;
mod fetch;
mod flow;
pub mod guard;
mod http;
mod journal;
mod oauth;
pub mod pace;
mod proxies;
mod redact;
mod run;
mod transport;
mod vault;
mod wait;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use clock::Clock;
pub use effects::{app_input, idempotency_key};
pub use events::{Emitted, EventWait, NewEvent, ReceivedEvent};
pub use execution::{Execution, ExecutionError, ExecutionStatus, StepRecord, StepStatus};
pub use fetch::{FetchError, Fetched};
pub use guard::{NetworkPolicy, Proxies, Refused};
pub use http::{parse_retry_after, Body, Request, Response};
pub use journal::{
    apply_in_memory, data_step_record, increment, record_output, DataOp, DataRequest,
    ExecutionStart, Journal, JournalError, MemoryJournal, NoJournal, Tee,
};
pub use oauth::{Authorization, Client, TokenError, TEST_ACCESS_TOKEN};
pub use redact::{Redactor, MASK, MIN_SECRET_LEN};
pub use run::{env_context, Prepared};
pub use transport::{Sender, Transport};
pub use vault::{Granted, Held, Vault, VaultError};
pub use wait::{APPROVED, REJECTED};

use crate::plan::Plan;

/// Runs plans. Cheap to share: one HTTP connection pool for all executions
/// (one per connection that widens the outbound guard), built on the first
/// request (loading TLS roots costs milliseconds that a scenario without
/// HTTP steps should not pay).
#[derive(Clone, Default)]
pub struct Engine {
    clients: std::sync::Arc<std::sync::Mutex<HashMap<guard::Allowance, Outbound>>>,
    /// What http steps may reach (the outbound guard's rules).
    network: std::sync::Arc<guard::NetworkPolicy>,
    /// Sends http steps' requests instead of the network (tests).
    transport: Option<std::sync::Arc<dyn Transport>>,
    /// Where `rate_limit` schedules are kept (this process, or a shared store).
    pacer: Option<std::sync::Arc<dyn pace::Pacer>>,
    /// OAuth2 access tokens of `oauth2:` connections, shared by every execution.
    tokens: std::sync::Arc<oauth::Tokens>,
    /// Where connected tokens are kept (the store's sealed credentials).
    vault: Option<std::sync::Arc<dyn vault::Vault>>,
}

/// A client whose resolver and redirect policy enforce one guard.
#[derive(Clone)]
pub(crate) struct Outbound {
    pub client: reqwest::Client,
    pub guard: std::sync::Arc<guard::Guard>,
    /// A proxy resolves the target itself, so the target is checked first.
    pub behind_proxy: bool,
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
    /// What a trigger adds beside those (a poll's `item`, `items`, `cursor`).
    pub extra: Map<String, Value>,
}

impl Default for TriggerData {
    fn default() -> Self {
        TriggerData {
            body: json!({}),
            headers: Map::new(),
            query: Map::new(),
            received_at: Utc::now(),
            extra: Map::new(),
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
    /// The connection that must be connected again before this can succeed:
    /// the execution stops `incomplete`, and resumes once it is.
    pub reconnect: Option<String>,
}

/// How the error of every execution stopped by a connection that needs
/// reconnecting starts: what finds them again once it is reconnected.
pub fn reconnect_prefix(name: &str) -> String {
    format!("connection `{name}` needs to be reconnected")
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
            reconnect: None,
        }
    }

    /// The connection `name` cannot be used until it is connected again.
    pub fn needs_reconnect(name: &str, reason: &str) -> StepError {
        StepError {
            reconnect: Some(name.to_owned()),
            ..StepError::fatal(format!("{}: {reason}", reconnect_prefix(name)))
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

    /// The same engine, with the outbound guard's rules of `policy`.
    pub fn with_network(self, policy: guard::NetworkPolicy) -> Engine {
        Engine {
            network: std::sync::Arc::new(policy),
            clients: Default::default(),
            ..self
        }
    }

    /// The same engine, keeping rate-limit schedules in `pacer` (the
    /// daemon's, shared with other daemons through the store).
    pub fn with_pacer(self, pacer: std::sync::Arc<dyn pace::Pacer>) -> Engine {
        Engine {
            pacer: Some(pacer),
            ..self
        }
    }

    /// The same engine, keeping connected OAuth2 tokens in `vault`.
    pub fn with_vault(self, vault: std::sync::Arc<dyn vault::Vault>) -> Engine {
        Engine {
            vault: Some(vault),
            ..self
        }
    }

    /// Forgets the tokens this process holds for a connection (it was
    /// connected again, or forgotten).
    pub fn forget_tokens(&self, connection: &str) {
        self.tokens.forget(connection);
    }

    pub(crate) fn pacer(&self) -> std::sync::Arc<dyn pace::Pacer> {
        static LOCAL: std::sync::OnceLock<std::sync::Arc<pace::LocalPacer>> =
            std::sync::OnceLock::new();
        match &self.pacer {
            Some(pacer) => std::sync::Arc::clone(pacer),
            None => LOCAL.get_or_init(Default::default).clone(),
        }
    }

    /// The client for a connection's allowance, built once.
    pub(crate) fn outbound(&self, allowance: &guard::Allowance) -> Outbound {
        let mut clients = self.clients.lock().expect("clients lock");
        if let Some(outbound) = clients.get(allowance) {
            return outbound.clone();
        }
        let guard = std::sync::Arc::new(guard::Guard::new(
            (*self.network).clone(),
            allowance.clone(),
        ));
        let proxies = &self.network.proxies;
        let outbound = Outbound {
            client: guard::client(std::sync::Arc::clone(&guard), proxies),
            guard,
            behind_proxy: !proxies.is_empty(),
        };
        clients.insert(allowance.clone(), outbound.clone());
        outbound
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
