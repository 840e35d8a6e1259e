//! Durable executions: the engine and the store put together.
//!
//! Starting, resuming and replaying executions all go through a [`Runner`],
//! which the CLI uses now and the daemon will use too. It keeps each scenario
//! version's text in the store, so that an execution always resumes with the
//! version it started with, whatever happened to the file since.

mod error;
pub mod owner;
pub mod pace;
mod replay;
mod resume;
mod review;
mod versions;
pub mod watch;

pub use error::RunnerError;
pub use replay::trigger_data;
pub use review::{Decision, PendingApproval};

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{Clock, Engine, Execution, Journal, RunRequest, Tee};
use crate::plan::Plan;
use crate::store::{Store, StoreJournal, StoredExecution};

/// Runs executions that survive crashes.
pub struct Runner {
    engine: Engine,
    store: Arc<dyn Store>,
    /// The process environment: declared `env` values are read from here.
    env: HashMap<String, String>,
    now: Clock,
    /// How long an owner may stay silent before its running executions are
    /// taken over (stores that keep heartbeats; see [`Store::live_owners`]).
    lease: std::time::Duration,
    /// Whether each run says it is alive while it lasts (a command); the
    /// daemon says so once for the whole process instead.
    beat_per_run: bool,
}

/// The lease when nobody sets one (`serve --lease`).
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

impl Runner {
    pub fn new(engine: Engine, store: Arc<dyn Store>, env: HashMap<String, String>) -> Runner {
        Runner {
            engine,
            store,
            env,
            now: Clock::system(),
            lease: DEFAULT_LEASE,
            beat_per_run: true,
        }
    }

    /// The lease of other processes' executions (see [`Runner::due`]).
    pub fn with_lease(mut self, lease: std::time::Duration) -> Runner {
        self.lease = lease;
        self
    }

    /// For a process that keeps its own heartbeat (the daemon).
    pub fn without_run_heartbeats(mut self) -> Runner {
        self.beat_per_run = false;
        self
    }

    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    /// Runs `work` while saying, every third of the lease, that this process
    /// is alive: a long step (or a slow API) does not get its execution taken
    /// over by another process.
    async fn beating<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        if !self.beat_per_run {
            return work.await;
        }
        let store = self.store.clone();
        let every = (self.lease / 3).max(std::time::Duration::from_millis(100));
        let beat = async move {
            loop {
                if let Err(e) = store.heartbeat(owner::this_process(), Utc::now()).await {
                    tracing::warn!(error = %e, "cannot record this process's heartbeat");
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            never = beat => never,
        }
    }

    /// Whether the process that owns a running execution is gone: its
    /// heartbeat is older than the lease (stores that keep them), or it was
    /// a process of this host whose pid is gone.
    fn owner_is_gone(
        &self,
        owner: Option<&str>,
        live: &Option<std::collections::HashSet<String>>,
    ) -> bool {
        let Some(owner) = owner else {
            return true;
        };
        if !owner::may_be_alive(owner) {
            return true;
        }
        live.as_ref().is_some_and(|set| !set.contains(owner))
    }

    /// The clock for retry schedules: tests inject one instead of sleeping.
    pub fn with_clock(mut self, now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Runner {
        self.now = Clock::new(now);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The environment declared `env` values are read from.
    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    /// Masks a plan's secret values in `value`, as everything stored is.
    pub fn mask(&self, plan: &Plan, value: &mut Value) {
        self.redactor(plan).value(value);
    }

    fn redactor(&self, plan: &Plan) -> crate::engine::Redactor {
        let secrets = plan
            .env
            .iter()
            .filter(|e| e.secret)
            .filter_map(|e| self.env.get(&e.name).cloned());
        crate::engine::Redactor::new(secrets)
    }

    /// `settings.keys` evaluated over a trigger's context, secrets masked:
    /// what an accepted event is stored with.
    pub fn business_keys(&self, plan: &Plan, ctx: &handlebars::Context) -> Vec<(String, String)> {
        let redactor = self.redactor(plan);
        plan.business_keys(ctx)
            .into_iter()
            .map(|(name, value)| (name, redactor.string(value)))
            .collect()
    }

    /// The declared env values of a plan, from this runner's environment.
    pub fn env_for(&self, plan: &Plan) -> HashMap<String, String> {
        plan.env
            .iter()
            .filter_map(|d| d.value(&self.env).map(|v| (d.name.clone(), v.to_owned())))
            .collect()
    }

    /// Starts a new execution: the scenario text (with the apps it uses:
    /// `Plan::bundle`) and the trigger are committed
    /// before the first step, each step before the next.
    pub async fn start(
        &self,
        plan: &Plan,
        mut request: RunRequest,
        trace: &dyn Journal,
        replay_of: Option<Uuid>,
    ) -> Result<Execution, RunnerError> {
        if request.env.is_empty() {
            request.env = self.env_for(plan);
        }
        request.clock.get_or_insert_with(|| self.now.clone());
        let prepared = Engine::prepare(plan, request)?;
        self.store
            .save_version(&plan.name, &plan.version, &plan.bundle)
            .await?;
        let journal = StoreJournal::new(
            self.store.clone(),
            prepared.execution_id(),
            owner::this_process().to_owned(),
            1,
        )
        .retry_after(plan.retry_incomplete_after(1))
        .replay_of(replay_of)
        .clock(self.now.clone());
        let tee = Tee(trace, &journal);
        Ok(self.beating(self.engine.run(plan, prepared, &tee)).await?)
    }

    /// Finds the one execution whose id starts with `prefix`.
    pub async fn resolve(&self, prefix: &str) -> Result<Uuid, RunnerError> {
        if let Ok(id) = Uuid::parse_str(prefix) {
            return Ok(id);
        }
        let ids = self.store.find_ids(prefix.trim()).await?;
        match ids.as_slice() {
            [] => Err(RunnerError::NotFound(prefix.to_owned())),
            [one] => Ok(*one),
            several => Err(RunnerError::Ambiguous {
                prefix: prefix.to_owned(),
                ids: several.iter().map(Uuid::to_string).collect(),
            }),
        }
    }

    pub async fn load(&self, id: Uuid) -> Result<StoredExecution, RunnerError> {
        self.store
            .execution(id)
            .await?
            .ok_or_else(|| RunnerError::NotFound(id.to_string()))
    }

    /// Commits an event from outside any execution (`scenarist emit`, `POST
    /// /api/events`) and wakes its waiters; answers once both are durable.
    pub async fn emit(
        &self,
        event: &str,
        key: &str,
        data: Value,
    ) -> Result<crate::engine::Emitted, RunnerError> {
        if !crate::plan::is_event_name(event) {
            return Err(RunnerError::InvalidEvent(format!(
                "`{event}` is not an event name: use lowercase letters, digits, `_`, `.` and `-`, e.g. `deal.closed_won`"
            )));
        }
        if key.is_empty() || key.len() > 1000 {
            return Err(RunnerError::InvalidEvent(
                "an event needs a key (1 to 1000 characters), e.g. the lead's email".to_owned(),
            ));
        }
        let now = self.now.now();
        let event = crate::engine::NewEvent {
            id: Uuid::now_v7(),
            event: event.to_owned(),
            key: key.to_owned(),
            data,
            received_at: now,
            source: None,
        };
        Ok(self.store.emit(&event, now).await?)
    }
}
