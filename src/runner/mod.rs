//! Durable executions: the engine and the store put together.
//!
//! Starting, resuming and replaying executions all go through a [`Runner`],
//! which the CLI uses now and the daemon will use too. It keeps each scenario
//! version's text in the store, so that an execution always resumes with the
//! version it started with, whatever happened to the file since.

pub mod owner;
pub mod pace;
mod review;

pub use review::{Decision, PendingApproval};

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::{
    Clock, Engine, Execution, ExecutionStatus, Journal, Resume, RunError, RunRequest, Tee,
    TriggerData,
};
use crate::plan::Plan;
use crate::store::{ExecutionSummary, Store, StoreError, StoreJournal, StoredExecution};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no execution has an id starting with `{0}`")]
    NotFound(String),
    #[error("`{prefix}` matches several executions ({}); give more of the id", .ids.join(", "))]
    Ambiguous { prefix: String, ids: Vec<String> },
    #[error("execution {id} is {status}: {why}")]
    NotResumable {
        id: Uuid,
        status: ExecutionStatus,
        why: &'static str,
    },
    #[error("execution {0} was taken over by another process")]
    Taken(Uuid),
    #[error("the scenario version {version} of `{scenario}` that execution {id} ran is not in the store")]
    MissingVersion {
        id: Uuid,
        scenario: String,
        version: String,
    },
    #[error("the stored version of `{scenario}` no longer compiles:\n{diagnostics}")]
    StoredVersion {
        scenario: String,
        diagnostics: String,
    },
    #[error("the stored trigger of execution {0} is damaged")]
    DamagedTrigger(Uuid),
    #[error("{0}")]
    InvalidEvent(String),
    #[error("execution {id} is not waiting for a review (it is {status}); nothing was changed")]
    NotWaiting { id: Uuid, status: String },
    #[error(
        "execution {id} waits for a delay until {until}, not for a review; nothing was changed"
    )]
    WaitsForDelay { id: Uuid, until: String },
    #[error("execution {id} waits for the event {event} [{key}] until {until}, not for a review; nothing was changed (`scenarist emit {event} {key}` sends it)")]
    WaitsForEvent {
        id: Uuid,
        event: String,
        key: String,
        until: String,
    },
    #[error("`{by}` may not decide execution {id}: its approvers are {}; nothing was changed", .approvers.join(", "))]
    NotAnApprover {
        id: Uuid,
        by: String,
        approvers: Vec<String>,
    },
}

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
            .filter_map(|d| self.env.get(&d.name).map(|v| (d.name.clone(), v.clone())))
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

    /// The plan of the version an execution ran, compiled from the stored text.
    pub async fn stored_plan(
        &self,
        stored: &ExecutionSummary,
    ) -> Result<(Plan, String), RunnerError> {
        let source = self
            .store
            .version_source(&stored.scenario, &stored.version)
            .await?
            .ok_or_else(|| RunnerError::MissingVersion {
                id: stored.id,
                scenario: stored.scenario.clone(),
                version: stored.version.clone(),
            })?;
        let label = format!(
            "{}@{}",
            stored.scenario,
            &stored.version[..12.min(stored.version.len())]
        );
        let shown = Path::new(&label);
        let failed = |diagnostics: Vec<crate::diagnostic::Diagnostic>| RunnerError::StoredVersion {
            scenario: stored.scenario.clone(),
            diagnostics: diagnostics
                .iter()
                .map(|d| d.render(Some(&source)))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        // The version keeps the apps it used: they are compiled from it, over
        // the built-in ones, so the calls are those the execution started with.
        let (scenario_text, app_texts) = crate::plan::unbundle(&source);
        let mut apps = crate::plan::app::builtin().clone();
        for text in app_texts {
            let mut loaded =
                crate::load::app::load_app_str(shown, text.to_owned()).map_err(&failed)?;
            // The version keeps the app's text, not its file: named after the
            // app, as its file was, so the file-name check accepts it.
            loaded.file = shown.join(format!("{}.yaml", loaded.app.app));
            let app = crate::plan::app::compile_app(&loaded).map_err(&failed)?;
            apps.insert(app.name.clone(), std::sync::Arc::new(app));
        }
        let loaded = crate::load::load_str(shown, scenario_text.to_owned())
            .map_err(|f| failed(f.diagnostics))?;
        let plan = crate::plan::compile_with(&loaded, &apps).map_err(failed)?;
        Ok((plan, source))
    }

    /// Executions `resume` should pick up now: incomplete, waiting and
    /// decided ones that are due, and running ones whose process is gone.
    pub async fn due(&self) -> Result<Vec<ExecutionSummary>, RunnerError> {
        let now = self.now.now();
        let candidates = self.store.resumable(now).await?;
        let live = self.store.live_owners(Utc::now(), self.lease).await?;
        Ok(candidates
            .into_iter()
            .filter(|e| match e.status {
                ExecutionStatus::Running => self.owner_is_gone(e.owner.as_deref(), &live),
                _ => true,
            })
            .collect())
    }

    /// This process's own executions that the store says are `running` but
    /// that this process no longer runs (`in_flight`): a store write failed
    /// (the database went away, a connection was terminated) and the engine
    /// stopped them. The caller marks what it claims as in flight before it
    /// claims the next, so one just claimed is never mistaken for one.
    pub async fn stalled(
        &self,
        in_flight: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<ExecutionSummary>, RunnerError> {
        let me = owner::this_process();
        let candidates = self.store.resumable(self.now.now()).await?;
        Ok(candidates
            .into_iter()
            .filter(|e| {
                e.status == ExecutionStatus::Running
                    && e.owner.as_deref() == Some(me)
                    && !in_flight.contains(&e.id)
            })
            .collect())
    }

    /// Continues a stopped execution from the step that did not finish:
    /// an incomplete one (whenever asked: `executions retry`), or a running
    /// one whose process died.
    pub async fn resume(&self, id: Uuid, trace: &dyn Journal) -> Result<Execution, RunnerError> {
        let stored = self.load(id).await?;
        let summary = &stored.summary;
        let now = self.now.now();
        let due = summary.next_retry_at.is_some_and(|at| at <= now);
        match summary.status {
            ExecutionStatus::Incomplete => {}
            // Decided (or woken) and queued to go on.
            ExecutionStatus::Queued if summary.next_retry_at.is_some() => {}
            ExecutionStatus::Waiting if due => {}
            ExecutionStatus::Waiting => {
                return Err(RunnerError::NotResumable {
                    id,
                    status: summary.status,
                    why: "it waits for a decision (`scenarist approve` / `scenarist reject`), an event (`scenarist emit`) or for its delay to end",
                })
            }
            ExecutionStatus::Running => {
                let live = self.store.live_owners(Utc::now(), self.lease).await?;
                // This process's own: it stopped running it (see `stalled`).
                let mine = summary.owner.as_deref() == Some(owner::this_process());
                if !mine && !self.owner_is_gone(summary.owner.as_deref(), &live) {
                    return Err(RunnerError::NotResumable {
                        id,
                        status: summary.status,
                        why: "its process is still running",
                    });
                }
            }
            status => {
                return Err(RunnerError::NotResumable {
                    id,
                    status,
                    why: "only incomplete executions, and running ones whose process died, can be resumed; `scenarist replay` starts it again with the same trigger",
                })
            }
        }
        let (plan, _) = self.stored_plan(summary).await?;
        // Checked before taking it over: an execution this process cannot run
        // stays where it is, for a process that has the environment (the daemon).
        let missing: Vec<String> = plan
            .env
            .iter()
            .filter(|e| !self.env.contains_key(&e.name))
            .map(|e| e.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(RunnerError::Run(RunError::MissingEnv(missing)));
        }
        let me = owner::this_process();
        let attempt = self
            .store
            .claim(id, summary.status, summary.owner.as_deref(), me, now)
            .await?
            .ok_or(RunnerError::Taken(id))?;
        self.continue_stored(&stored, &plan, attempt, trace).await
    }

    /// Runs an execution this process has claimed (from the queue, or to
    /// resume it): its settled steps are kept, the rest run.
    pub async fn continue_stored(
        &self,
        stored: &StoredExecution,
        plan: &Plan,
        attempt: u32,
        trace: &dyn Journal,
    ) -> Result<Execution, RunnerError> {
        let id = stored.summary.id;
        let request = RunRequest {
            trigger: trigger_data(&stored.trigger).ok_or(RunnerError::DamagedTrigger(id))?,
            env: self.env_for(plan),
            vars: stored.vars.clone(),
            dry_run: false,
            execution_id: Some(id),
            resume: Some(Resume {
                completed: stored.steps.clone(),
                started_at: stored.summary.started_at,
            }),
            clock: Some(self.now.clone()),
            origin: match stored.summary.replay_of {
                Some(_) => Some(self.origin_of(id, stored.summary.replay_of).await),
                None => None,
            },
        };
        let prepared = Engine::prepare(plan, request)?;
        let journal = StoreJournal::new(
            self.store.clone(),
            id,
            owner::this_process().to_owned(),
            attempt,
        )
        .retry_after(plan.retry_incomplete_after(attempt))
        .clock(self.now.clone());
        let tee = Tee(trace, &journal);
        Ok(self.beating(self.engine.run(plan, prepared, &tee)).await?)
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

    /// The first execution of a replay chain: replays reuse its `emit` event
    /// ids, so replaying never announces the same milestone twice. A pruned
    /// ancestor ends the walk.
    async fn origin_of(&self, id: Uuid, replay_of: Option<Uuid>) -> Uuid {
        let (mut origin, mut parent) = (id, replay_of);
        for _ in 0..64 {
            let Some(next) = parent else { break };
            origin = next;
            parent = match self.store.execution(next).await {
                Ok(Some(stored)) => stored.summary.replay_of,
                _ => None,
            };
        }
        origin
    }

    /// A new execution of the same scenario version with the same trigger.
    pub async fn replay(&self, id: Uuid, trace: &dyn Journal) -> Result<Execution, RunnerError> {
        self.replay_as(id, Uuid::now_v7(), trace).await
    }

    /// As [`Runner::replay`], with the new execution's id chosen by the
    /// caller (the dashboard links to it before it has run).
    pub async fn replay_as(
        &self,
        id: Uuid,
        new_id: Uuid,
        trace: &dyn Journal,
    ) -> Result<Execution, RunnerError> {
        let stored = self.load(id).await?;
        let (plan, _) = self.stored_plan(&stored.summary).await?;
        let request = RunRequest {
            trigger: trigger_data(&stored.trigger).ok_or(RunnerError::DamagedTrigger(id))?,
            vars: stored.vars.clone(),
            execution_id: Some(new_id),
            origin: Some(self.origin_of(id, stored.summary.replay_of).await),
            ..RunRequest::default()
        };
        self.start(&plan, request, trace, Some(id)).await
    }
}

/// The trigger as the engine takes it, from its stored document.
pub fn trigger_data(doc: &Value) -> Option<TriggerData> {
    let object = doc.as_object()?;
    let map = |key: &str| match object.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    Some(TriggerData {
        body: object.get("body").cloned().unwrap_or(Value::Null),
        headers: map("headers"),
        query: map("query"),
        received_at: object
            .get("received_at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
    })
}
