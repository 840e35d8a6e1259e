//! The interpreter: walks the plan's steps with one mutable context.
//!
//! The context is a single JSON document updated in place as steps finish; it
//! is cloned only for concurrent loop workers (once per worker, not per step).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use handlebars::Context;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::execution::{Execution, ExecutionError, ExecutionStatus, StepRecord, StepStatus};
use super::journal::JournalError;
use super::journal::{ExecutionStart, Journal};
use super::redact::Redactor;
use super::{Clock, Engine, RunError, RunRequest};
use crate::model::OnError;
use crate::plan::{Plan, PlanKind, PlanStep};

/// A request checked against the plan, turned into the starting context.
pub struct Prepared {
    ctx: Context,
    redactor: Redactor,
    execution_id: Uuid,
    started_at: DateTime<Utc>,
    dry_run: bool,
    /// `Some` when resuming: the settled steps, by path, and their order.
    resume: Option<Vec<StepRecord>>,
    vars_overrides: Map<String, Value>,
    clock: Clock,
    origin: Option<Uuid>,
}

impl Prepared {
    pub fn execution_id(&self) -> Uuid {
        self.execution_id
    }
}

pub(super) fn prepare(plan: &Plan, request: RunRequest) -> Result<Prepared, RunError> {
    let missing: Vec<String> = plan
        .env
        .iter()
        .filter(|e| !request.env.contains_key(&e.name))
        .map(|e| e.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(RunError::MissingEnv(missing));
    }
    let mut vars = plan.vars.clone();
    for (name, value) in &request.vars {
        if !vars.contains_key(name) {
            return Err(RunError::UnknownVar(name.clone()));
        }
        vars.insert(name.clone(), value.clone());
    }
    let violations = plan.input_violations(&request.trigger.body);
    if !violations.is_empty() {
        return Err(RunError::InvalidInput(violations));
    }
    let secrets = plan
        .env
        .iter()
        .filter(|e| e.secret)
        .filter_map(|e| request.env.get(&e.name).cloned());
    let redactor = Redactor::new(secrets);
    let env: Map<String, Value> = plan
        .env
        .iter()
        .map(|e| (e.name.clone(), Value::String(request.env[&e.name].clone())))
        .collect();
    let execution_id = request.execution_id.unwrap_or_else(Uuid::now_v7);
    let (started_at, resume) = match request.resume {
        Some(resume) => (resume.started_at, Some(resume.completed)),
        None => (Utc::now(), None),
    };
    let trigger = request.trigger;
    // Built by moving values in: `json!` would serialize the body again.
    let mut trigger_map = Map::with_capacity(4);
    trigger_map.insert("body".to_owned(), trigger.body);
    trigger_map.insert("headers".to_owned(), Value::Object(trigger.headers));
    trigger_map.insert("query".to_owned(), Value::Object(trigger.query));
    trigger_map.insert(
        "received_at".to_owned(),
        Value::String(
            trigger
                .received_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
    );
    let mut execution = Map::with_capacity(3);
    execution.insert("id".to_owned(), Value::String(execution_id.to_string()));
    execution.insert("scenario".to_owned(), Value::String(plan.name.clone()));
    execution.insert(
        "started_at".to_owned(),
        Value::String(started_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    let mut root = Map::with_capacity(8);
    root.insert("trigger".to_owned(), Value::Object(trigger_map));
    root.insert("steps".to_owned(), Value::Object(Map::new()));
    root.insert("vars".to_owned(), Value::Object(vars));
    root.insert("env".to_owned(), Value::Object(env));
    root.insert("execution".to_owned(), Value::Object(execution));
    let ctx = Context::from(Value::Object(root));
    Ok(Prepared {
        ctx,
        redactor,
        execution_id,
        started_at,
        dry_run: request.dry_run,
        resume,
        vars_overrides: request.vars,
        clock: request.clock.clone().unwrap_or_default(),
        origin: request.origin,
    })
}

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

/// Where a step sits, for its record's key and path.
#[derive(Clone, Default)]
pub(super) struct Location {
    prefix: String,
    suffix: String,
}

impl Location {
    fn path(&self, id: &str) -> String {
        let mut path = String::with_capacity(self.prefix.len() + id.len() + self.suffix.len());
        path.push_str(&self.prefix);
        path.push_str(id);
        path.push_str(&self.suffix);
        path
    }

    pub(super) fn route(&self, step: &str, route: &str) -> Location {
        Location {
            prefix: format!("{}{step}/{route}/", self.prefix),
            suffix: self.suffix.clone(),
        }
    }

    pub(super) fn iteration(&self, step: &str, index: usize) -> Location {
        let mut prefix = String::with_capacity(self.prefix.len() + step.len() + 1);
        prefix.push_str(&self.prefix);
        prefix.push_str(step);
        prefix.push('/');
        let mut suffix = String::with_capacity(self.suffix.len() + 4);
        suffix.push_str(&self.suffix);
        suffix.push('#');
        push_decimal(&mut suffix, index);
        Location { prefix, suffix }
    }
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
}

impl<'a> Interpreter<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        plan: &'a Plan,
        journal: &'a dyn Journal,
        prepared: Prepared,
    ) -> Self {
        let resuming = prepared.resume.is_some();
        let mut records = Vec::with_capacity(plan.steps.len());
        let mut settled = HashMap::new();
        let mut waiting = HashMap::new();
        let mut taken_events = std::collections::HashSet::new();
        for record in prepared.resume.unwrap_or_default() {
            if record.kind == "wait_for" {
                if let Some(id) = record.output.get("event_id").and_then(Value::as_str) {
                    taken_events.extend(Uuid::parse_str(id).ok());
                }
            }
            if is_settled(plan, &record) {
                records.push(record.clone());
                settled.insert(record.path.clone(), record);
            } else if record.status == StepStatus::Waiting {
                waiting.insert(record.path.clone(), record);
            }
        }
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
            settled,
            waiting,
            clock: prepared.clock,
            origin: prepared.origin.unwrap_or(prepared.execution_id),
            taken_events: Mutex::new(taken_events),
            resuming,
            vars_overrides: prepared.vars_overrides,
            epoch,
            last_reading: AtomicU64::new(0),
            records: Mutex::new(records),
            lent: Mutex::new(Vec::new()),
            response: Mutex::new(None),
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
        if let (ExecutionStatus::Failed, Some(error)) = (status, &error) {
            if !self.plan.on_failure.is_empty() {
                if let Some(root) = ctx.data_mut().as_object_mut() {
                    root.insert(
                        "error".to_owned(),
                        json!({ "step": error.step, "message": error.message }),
                    );
                }
                let at = Location {
                    prefix: "on_failure/".to_owned(),
                    suffix: String::new(),
                };
                // The execution stays failed whatever its failure handlers do.
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

    async fn run_step(&self, step: &PlanStep, ctx: &mut Context, at: &Location) -> Outcome {
        let run = StepRun {
            step,
            at,
            path: at.path(step.id.as_str()),
            clock: self.clock_for(&step.kind),
        };
        if let Some(done) = self.settled.get(&run.path) {
            // Finished before the crash or the break: its result stands.
            set_output(ctx, step.id.as_str(), done.output.clone());
            return match (done.status, &step.kind) {
                (StepStatus::Filtered, _) => Outcome::Filtered,
                (StepStatus::Succeeded, PlanKind::Approval(approval)) => {
                    self.rejection(&run.path, &done.output, approval)
                }
                _ => Outcome::Continue,
            };
        }
        if let Some(when) = &step.when {
            match when.eval(ctx) {
                Ok(true) => {}
                Ok(false) => {
                    set_output(ctx, step.id.as_str(), Value::Null);
                    let record = self.record(&run, StepStatus::Skipped, Value::Null, None, 0);
                    return self
                        .keep(
                            record.with_detail("skipped: `when` is false"),
                            Outcome::Continue,
                        )
                        .await;
                }
                Err(e) => {
                    return self
                        .step_failed(&run, ctx, format!("`when`: {e}"), 0, None)
                        .await
                }
            }
        }
        if has_effects(&step.kind) {
            if let Err(e) = self.journal.before_effect().await {
                return Outcome::Aborted(e);
            }
        }
        match &step.kind {
            PlanKind::Set(expr) => match expr.eval(ctx) {
                Ok(output) => self.succeeded(&run, ctx, output, 1, None).await,
                Err(e) => self.step_failed(&run, ctx, e.0, 1, None).await,
            },
            PlanKind::Filter(cond) => match cond.eval(ctx) {
                Ok(true) => {
                    self.succeeded(&run, ctx, Value::Bool(true), 1, Some("passed".to_owned()))
                        .await
                }
                Ok(false) => {
                    set_output(ctx, step.id.as_str(), Value::Bool(false));
                    let record =
                        self.record(&run, StepStatus::Filtered, Value::Bool(false), None, 1);
                    self.keep(
                        record.with_detail("stopped here: the filter is false"),
                        Outcome::Filtered,
                    )
                    .await
                }
                Err(e) => self.step_failed(&run, ctx, e.0, 1, None).await,
            },
            // A deliberate failure; `on_error` applies as to any other failure.
            PlanKind::Fail(message) => {
                let message = match message.eval_ref(ctx) {
                    Ok(v) => match v.as_ref() {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    Err(e) => format!("(the fail message could not be built: {e})"),
                };
                self.step_failed(&run, ctx, message, 1, None).await
            }
            PlanKind::Respond(respond) => {
                let built = (|| -> Result<Value, crate::plan::EvalError> {
                    let mut headers = Map::new();
                    for (k, v) in &respond.headers {
                        headers.insert(k.clone(), v.eval(ctx)?);
                    }
                    let body = match &respond.body {
                        Some(b) => b.eval(ctx)?,
                        None => Value::Null,
                    };
                    let mut response = Map::with_capacity(3);
                    response.insert("status".to_owned(), Value::from(respond.status));
                    response.insert("headers".to_owned(), Value::Object(headers));
                    response.insert("body".to_owned(), body);
                    Ok(Value::Object(response))
                })();
                match built {
                    Ok(response) => {
                        *self.response.lock().expect("response lock") =
                            Some(self.masked(response.clone()));
                        let detail = format!("-> {}", respond.status);
                        self.succeeded(&run, ctx, response, 1, Some(detail)).await
                    }
                    Err(e) => self.step_failed(&run, ctx, e.0, 1, None).await,
                }
            }
            // Boxed so that every other step's future stays small (the HTTP one is large).
            PlanKind::Http(http) => Box::pin(self.http(&run, http, ctx)).await,
            PlanKind::Store(store) => Box::pin(self.store(&run, store, ctx)).await,
            PlanKind::Record(record) => Box::pin(self.record_event(&run, record, ctx)).await,
            PlanKind::Approval(approval) => Box::pin(self.approval(&run, approval, ctx)).await,
            PlanKind::Delay(duration) => Box::pin(self.delay(&run, *duration, ctx)).await,
            PlanKind::WaitFor(wait) => Box::pin(self.wait_for(&run, wait, ctx)).await,
            PlanKind::Emit(emit) => Box::pin(self.emit(&run, emit, ctx)).await,
            PlanKind::Router(router) => {
                let result = match step.timeout {
                    None => Ok(Box::pin(self.router(&run, router, ctx)).await),
                    Some(limit) => {
                        tokio::time::timeout(limit, Box::pin(self.router(&run, router, ctx))).await
                    }
                };
                match result {
                    Ok(outcome) => outcome,
                    Err(_) => self.timed_out(&run, ctx).await,
                }
            }
            PlanKind::ForEach(each) => {
                let result = match step.timeout {
                    None => Ok(Box::pin(self.for_each(&run, each, ctx)).await),
                    Some(limit) => {
                        tokio::time::timeout(limit, Box::pin(self.for_each(&run, each, ctx))).await
                    }
                };
                match result {
                    Ok(outcome) => outcome,
                    Err(_) => self.timed_out(&run, ctx).await,
                }
            }
        }
    }

    async fn timed_out(&self, run: &StepRun<'_>, ctx: &mut Context) -> Outcome {
        let limit = run.step.timeout.unwrap_or_default();
        self.step_failed(
            run,
            ctx,
            format!("the step timed out after {}", crate::model::Duration(limit)),
            1,
            None,
        )
        .await
    }

    pub(super) async fn succeeded(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        output: Value,
        attempts: u32,
        detail: Option<String>,
    ) -> Outcome {
        self.finish_success(run, ctx, output, attempts, detail, None)
            .await
    }

    /// As [`Self::succeeded`], keeping what the step sent (masked) as its input.
    pub(super) async fn succeeded_with_input(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        output: Value,
        attempts: u32,
        detail: String,
        input: Value,
    ) -> Outcome {
        self.finish_success(run, ctx, output, attempts, Some(detail), Some(input))
            .await
    }

    async fn finish_success(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        output: Value,
        attempts: u32,
        detail: Option<String>,
        input: Option<Value>,
    ) -> Outcome {
        let id = run.step.id.as_str();
        // A step outside any loop has exactly one record, and its output stays
        // in the context until the end: unless it must be masked, the record
        // lends it to the journal and takes it back from the context at the end
        // instead of keeping a copy.
        let lend = run.at.suffix.is_empty() && !self.redactor.finds_secret(&output);
        let mut record = if lend {
            self.record_raw(run, StepStatus::Succeeded, output, None, attempts)
        } else {
            let copy = self.masked(output.clone());
            let record = self.record_raw(run, StepStatus::Succeeded, copy, None, attempts);
            set_output(ctx, id, output);
            record
        };
        record.detail = detail.map(|d| self.redactor.string(d));
        record.input = input;
        if !lend {
            return self.keep(record, Outcome::Continue).await;
        }
        if let Err(e) = self.journal.step_finished(&record).await {
            return Outcome::Aborted(e);
        }
        set_output(ctx, id, std::mem::take(&mut record.output));
        let mut records = self.records.lock().expect("records lock");
        self.lent.lock().expect("lent lock").push(records.len());
        records.push(record);
        Outcome::Continue
    }

    /// Applies the step's `on_error` after it failed for good.
    pub(super) async fn step_failed(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        message: String,
        attempts: u32,
        detail: Option<String>,
    ) -> Outcome {
        let message = self.redactor.string(message);
        let step = run.step;
        let failure = ExecutionError {
            step: run.path.clone(),
            message: message.clone(),
        };
        let (output, outcome, detail) = match step.on_error {
            OnError::Fail => (Value::Null, Outcome::Failed(failure), detail),
            OnError::Break => (Value::Null, Outcome::Incomplete(failure), detail),
            OnError::Continue => {
                let output = match &step.fallback {
                    None => Value::Null,
                    Some(expr) => expr.eval(ctx).unwrap_or(Value::Null),
                };
                set_output(ctx, step.id.as_str(), output.clone());
                (
                    output,
                    Outcome::Continue,
                    detail.map(|d| format!("{d} (continuing)")),
                )
            }
        };
        let mut record = self.record(run, StepStatus::Failed, output, Some(message), attempts);
        record.detail = detail.map(|d| self.redactor.string(d));
        self.keep(record, outcome).await
    }

    /// When a step starts: the clock for steps that wait on something, the
    /// last reading for steps that only compute.
    fn clock_for(&self, kind: &PlanKind) -> Instant {
        if is_pure(kind) {
            let nanos = self.last_reading.load(AtomicOrdering::Relaxed);
            return self.epoch.1 + std::time::Duration::from_nanos(nanos);
        }
        self.read_clock()
    }

    fn read_clock(&self) -> Instant {
        let now = Instant::now();
        let nanos = now.saturating_duration_since(self.epoch.1).as_nanos() as u64;
        self.last_reading.fetch_max(nanos, AtomicOrdering::Relaxed);
        now
    }

    /// The wall-clock time of an instant taken during this execution.
    fn wall_time(&self, at: Instant) -> DateTime<Utc> {
        let (utc, instant) = self.epoch;
        utc + chrono::Duration::from_std(at.saturating_duration_since(instant)).unwrap_or_default()
    }

    pub(super) fn masked(&self, mut value: Value) -> Value {
        self.redactor.value(&mut value);
        value
    }

    /// A record of the step as it ends now, masked.
    pub(super) fn record(
        &self,
        run: &StepRun<'_>,
        status: StepStatus,
        output: Value,
        error: Option<String>,
        attempts: u32,
    ) -> StepRecord {
        self.record_raw(run, status, self.masked(output), error, attempts)
    }

    /// As [`Self::record`], for an output known to hold no secret.
    pub(super) fn record_raw(
        &self,
        run: &StepRun<'_>,
        status: StepStatus,
        output: Value,
        error: Option<String>,
        attempts: u32,
    ) -> StepRecord {
        StepRecord {
            path: run.path.clone(),
            kind: run.step.kind.name(),
            status,
            input: None,
            output,
            error: error.map(|e| self.redactor.string(e)),
            attempts,
            started_at: self.wall_time(run.clock),
            duration_ms: if is_pure(&run.step.kind) {
                0
            } else {
                self.read_clock()
                    .saturating_duration_since(run.clock)
                    .as_millis() as u64
            },
            detail: None,
        }
    }

    /// Hands the record to the journal and waits until it is kept; only then
    /// does the step's outcome count.
    pub(super) async fn keep(&self, record: StepRecord, outcome: Outcome) -> Outcome {
        if let Err(e) = self.journal.step_finished(&record).await {
            return Outcome::Aborted(e);
        }
        self.records.lock().expect("records lock").push(record);
        outcome
    }
}

/// Steps that only compute: they finish within microseconds.
fn is_pure(kind: &PlanKind) -> bool {
    matches!(
        kind,
        PlanKind::Set(_) | PlanKind::Filter(_) | PlanKind::Respond(_) | PlanKind::Fail(_)
    )
}

/// Steps whose effects leave the engine: everything before them is made
/// durable first (see [`Journal::before_effect`]).
fn has_effects(kind: &PlanKind) -> bool {
    matches!(
        kind,
        PlanKind::Http(_)
            | PlanKind::Store(_)
            | PlanKind::Record(_)
            | PlanKind::Approval(_)
            | PlanKind::Delay(_)
            | PlanKind::WaitFor(_)
            | PlanKind::Emit(_)
    )
}

/// Whether a step's earlier result stands when its execution resumes: a
/// failure stands only where the step said `on_error: continue`.
fn is_settled(plan: &Plan, record: &StepRecord) -> bool {
    match record.status {
        StepStatus::Succeeded | StepStatus::Skipped | StepStatus::Filtered => true,
        StepStatus::Running | StepStatus::Waiting => false,
        StepStatus::Failed => plan
            .find_step(&record.path)
            .is_some_and(|step| step.on_error == OnError::Continue),
    }
}

/// The step being run and when it started.
pub(super) struct StepRun<'a> {
    pub(super) step: &'a PlanStep,
    pub(super) at: &'a Location,
    /// Formatted once: `route/enterprise/notify#3`.
    pub(super) path: String,
    pub(super) clock: Instant,
}

pub(super) fn set_output(ctx: &mut Context, id: &str, output: Value) {
    if let Some(steps) = ctx
        .data_mut()
        .get_mut("steps")
        .and_then(Value::as_object_mut)
    {
        // Loops set the same ids again and again: reuse the key when it is there.
        match steps.get_mut(id) {
            Some(slot) => *slot = output,
            None => {
                steps.insert(id.to_owned(), output);
            }
        }
    }
}

/// Appends a number without going through the formatting machinery (this
/// runs once per loop iteration).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).expect("ASCII digits"));
}
