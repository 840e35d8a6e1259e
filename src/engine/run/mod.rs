//! The interpreter: walks the plan's steps with one mutable context.
//!
//! The context is a single JSON document updated in place as steps finish; it
//! is cloned only for concurrent loop workers (once per worker, not per step).

mod dispatch;
mod prepare;
mod results;
mod resume;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use handlebars::Context;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::execution::{Execution, ExecutionError, ExecutionStatus, StepRecord};
use super::journal::JournalError;
use super::journal::{ExecutionStart, Journal};
use super::redact::Redactor;
use super::{Clock, Engine, RunError};
use crate::plan::{Plan, PlanStep};
pub(in crate::engine) use dispatch::{Location, StepRun};
pub(super) use prepare::prepare;
pub use prepare::{env_context, Prepared};
pub(in crate::engine) use results::set_output;

/// How a block of steps ended.
pub(super) enum Outcome {
    Continue,
    /// A filter said no: the enclosing route or iteration, or the execution, stops.
    Filtered,
    Failed(ExecutionError),
    Incomplete(ExecutionError),
    /// An `approval` or `delay` step parked the execution until this time.
    Waiting(DateTime<Utc>),
    /// A review said no: the execution ends as `rejected`.
    Rejected(ExecutionError),
    /// The journal could not keep a result: stop now, the store resumes it later.
    Aborted(JournalError),
}
pub(super) struct Interpreter<'a> {
    pub(super) engine: &'a Engine,
    pub(super) plan: &'a Plan,
    pub(super) journal: &'a dyn Journal,
    pub(super) redactor: Redactor,
    pub(super) execution_id: Uuid,
    started_at: DateTime<Utc>,
    pub(super) dry_run: bool,
    ctx: Option<Context>,
    /// Steps that finished before a crash or a break, by path: not run again.
    settled: HashMap<String, StepRecord>,
    /// `approval` and `delay` steps that were waiting when the execution was parked.
    pub(super) waiting: HashMap<String, StepRecord>,
    pub(super) clock: Clock,
    /// Whose ids `emit` steps reuse: this execution, or a replay's original.
    pub(super) origin: Uuid,
    /// Events already taken by this execution's `wait_for` steps: one
    /// execution takes any one event at most once.
    pub(super) taken_events: Mutex<std::collections::HashSet<Uuid>>,
    resuming: bool,
    vars_overrides: Map<String, Value>,
    /// One reading of both clocks: step start times are derived from it, which
    /// saves a system clock call per step.
    epoch: (DateTime<Utc>, Instant),
    /// The latest clock reading, in nanoseconds after `epoch`: steps that only
    /// compute (set, filter, respond, fail) take microseconds, so they start
    /// "now" as of the last reading and last 0 ms, without reading the clock.
    last_reading: AtomicU64,
    records: Mutex<Vec<StepRecord>>,
    /// Records whose output is still in the context (see `finish_success`).
    lent: Mutex<Vec<usize>>,
    response: Mutex<Option<Value>>,
    /// A step stopped for a connection that needs reconnecting: the
    /// execution is `incomplete`, and `on_failure` still hears of it.
    reconnect: std::sync::atomic::AtomicBool,
    /// A step that is not `replayable` has run in this attempt: the next
    /// effect must make the records before it durable first.
    unsettled: std::sync::atomic::AtomicBool,
}

impl<'a> Interpreter<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        plan: &'a Plan,
        journal: &'a dyn Journal,
        prepared: Prepared,
    ) -> Self {
        let resuming = prepared.resume.is_some();
        let resumed = resume::Resumed::split(plan, prepared.resume.unwrap_or_default());
        // Step times come from the injected clock (a test's virtual one),
        // advanced by the monotonic clock within the execution.
        let epoch = (prepared.clock.now(), Instant::now());
        Interpreter {
            engine,
            plan,
            journal,
            redactor: prepared.redactor,
            execution_id: prepared.execution_id,
            started_at: prepared.started_at,
            dry_run: prepared.dry_run,
            ctx: Some(prepared.ctx),
            settled: resumed.settled,
            waiting: resumed.waiting,
            clock: prepared.clock,
            origin: prepared.origin.unwrap_or(prepared.execution_id),
            taken_events: Mutex::new(resumed.taken_events),
            resuming,
            vars_overrides: prepared.vars_overrides,
            epoch,
            last_reading: AtomicU64::new(0),
            records: Mutex::new(resumed.records),
            lent: Mutex::new(Vec::new()),
            response: Mutex::new(None),
            reconnect: Default::default(),
            unsettled: Default::default(),
        }
    }

    pub(super) async fn run(mut self) -> Result<Execution, RunError> {
        let clock = Instant::now();
        let mut ctx = self.ctx.take().expect("run once");
        if !self.resuming {
            let start = ExecutionStart {
                execution_id: self.execution_id,
                scenario: &self.plan.name,
                version: &self.plan.version,
                vars: &self.vars_overrides,
                started_at: self.started_at,
                keys: self
                    .plan
                    .business_keys(&ctx)
                    .into_iter()
                    .map(|(name, value)| (name, self.redactor.string(value)))
                    .collect(),
                trigger: &ctx.data()["trigger"],
                redactor: &self.redactor,
            };
            self.journal
                .execution_started(&start)
                .await
                .map_err(RunError::Journal)?;
        }
        let top = Location::default();
        let main = self.run_block(&self.plan.steps, &mut ctx, &top);
        let outcome = match self.plan.timeout {
            None => main.await,
            Some(limit) => match tokio::time::timeout(limit, main).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Failed(ExecutionError {
                    step: String::new(),
                    message: format!(
                        "the execution timed out after {}",
                        crate::model::Duration(limit)
                    ),
                }),
            },
        };
        let mut wake_at = None;
        let (status, error) = match outcome {
            Outcome::Continue => (ExecutionStatus::Succeeded, None),
            Outcome::Filtered => (ExecutionStatus::Filtered, None),
            Outcome::Failed(e) => (ExecutionStatus::Failed, Some(e)),
            Outcome::Incomplete(e) => (ExecutionStatus::Incomplete, Some(e)),
            Outcome::Waiting(until) => {
                wake_at = Some(until);
                (ExecutionStatus::Waiting, None)
            }
            Outcome::Rejected(e) => (ExecutionStatus::Rejected, Some(e)),
            Outcome::Aborted(e) => return Err(RunError::Journal(e)),
        };
        let reconnect = self.reconnect.load(std::sync::atomic::Ordering::Relaxed);
        let failed = status == ExecutionStatus::Failed || reconnect;
        if let (true, Some(error)) = (failed, &error) {
            if !self.plan.on_failure.is_empty() {
                if let Some(root) = ctx.data_mut().as_object_mut() {
                    root.insert(
                        "error".to_owned(),
                        json!({ "step": error.step, "message": error.message }),
                    );
                }
                let at = Location::on_failure();
                // The execution stays failed (or incomplete) whatever its failure handlers do.
                if let Outcome::Aborted(e) =
                    self.run_block(&self.plan.on_failure, &mut ctx, &at).await
                {
                    return Err(RunError::Journal(e));
                }
            }
        }
        let finished_at = Utc::now();
        let mut steps = std::mem::take(&mut *self.records.lock().expect("records lock"));
        if let Some(outputs) = ctx
            .data_mut()
            .get_mut("steps")
            .and_then(Value::as_object_mut)
        {
            for index in std::mem::take(&mut *self.lent.lock().expect("lent lock")) {
                let record = &mut steps[index];
                if let Some(output) = outputs.remove(record.key()) {
                    record.output = output;
                }
            }
        }
        let execution = Execution {
            execution_id: self.execution_id,
            scenario: self.plan.name.clone(),
            version: self.plan.version.clone(),
            status,
            started_at: self.started_at,
            finished_at,
            duration_ms: clock.elapsed().as_millis() as u64,
            steps,
            response: self.response.lock().expect("response lock").take(),
            error: error.map(|e| ExecutionError {
                step: e.step,
                message: self.redactor.string(e.message),
            }),
            wake_at,
            dry_run: self.dry_run,
        };
        self.journal
            .execution_finished(&execution)
            .await
            .map_err(RunError::Journal)?;
        Ok(execution)
    }

    pub(super) async fn run_block(
        &self,
        steps: &[PlanStep],
        ctx: &mut Context,
        at: &Location,
    ) -> Outcome {
        for step in steps {
            match self.run_step(step, ctx, at).await {
                Outcome::Continue => {}
                other => return other,
            }
        }
        Outcome::Continue
    }
}
