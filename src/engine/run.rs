//! The interpreter: walks the plan's steps with one mutable context.
//!
//! The context is a single JSON document updated in place as steps finish; it
//! is cloned only for concurrent loop workers (once per worker, not per step).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use handlebars::Context;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::execution::{Execution, ExecutionError, ExecutionStatus, StepRecord, StepStatus};
use super::http::Request;
use super::journal::Journal;
use super::redact::Redactor;
use super::{Engine, RunError, RunRequest, StepError};
use crate::model::{OnError, RouterMode};
use crate::plan::{ForEachPlan, HttpPlan, Plan, PlanKind, PlanStep, RouterPlan};

/// A request checked against the plan, turned into the starting context.
pub(super) struct Prepared {
    ctx: Context,
    redactor: Redactor,
    execution_id: Uuid,
    started_at: DateTime<Utc>,
    dry_run: bool,
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
    for (name, value) in request.vars {
        if !vars.contains_key(&name) {
            return Err(RunError::UnknownVar(name));
        }
        vars.insert(name, value);
    }
    if let Some(schema) = &plan.input_schema {
        let violations: Vec<String> = schema
            .iter_errors(&request.trigger.body)
            .map(|e| {
                let at = e.instance_path.to_string();
                format!(
                    "{}: {e}",
                    if at.is_empty() {
                        "(the whole input)".to_owned()
                    } else {
                        at
                    }
                )
            })
            .collect();
        if !violations.is_empty() {
            return Err(RunError::InvalidInput(violations));
        }
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
    let started_at = Utc::now();
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
    })
}

/// How a block of steps ended.
enum Outcome {
    Continue,
    /// A filter said no: the enclosing route or iteration, or the execution, stops.
    Filtered,
    Failed(ExecutionError),
    Incomplete(ExecutionError),
}

/// Where a step sits, for its record's key and path.
#[derive(Clone, Default)]
struct Location {
    prefix: String,
    suffix: String,
}

impl Location {
    fn key(&self, id: &str) -> String {
        let mut key = String::with_capacity(id.len() + self.suffix.len());
        key.push_str(id);
        key.push_str(&self.suffix);
        key
    }

    fn path(&self, id: &str) -> String {
        let mut path = String::with_capacity(self.prefix.len() + id.len() + self.suffix.len());
        path.push_str(&self.prefix);
        path.push_str(id);
        path.push_str(&self.suffix);
        path
    }

    fn route(&self, step: &str, route: &str) -> Location {
        Location {
            prefix: format!("{}{step}/{route}/", self.prefix),
            suffix: self.suffix.clone(),
        }
    }

    fn iteration(&self, step: &str, index: usize) -> Location {
        Location {
            prefix: format!("{}{step}/", self.prefix),
            suffix: format!("{}#{index}", self.suffix),
        }
    }
}

pub(super) struct Interpreter<'a> {
    engine: &'a Engine,
    plan: &'a Plan,
    journal: &'a dyn Journal,
    redactor: Redactor,
    execution_id: Uuid,
    started_at: DateTime<Utc>,
    dry_run: bool,
    ctx: Option<Context>,
    records: Mutex<Vec<StepRecord>>,
    response: Mutex<Option<Value>>,
}

impl<'a> Interpreter<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        plan: &'a Plan,
        journal: &'a dyn Journal,
        prepared: Prepared,
    ) -> Self {
        Interpreter {
            engine,
            plan,
            journal,
            redactor: prepared.redactor,
            execution_id: prepared.execution_id,
            started_at: prepared.started_at,
            dry_run: prepared.dry_run,
            ctx: Some(prepared.ctx),
            records: Mutex::new(Vec::with_capacity(plan.steps.len())),
            response: Mutex::new(None),
        }
    }

    pub(super) async fn run(mut self) -> Execution {
        let clock = Instant::now();
        let mut ctx = self.ctx.take().expect("run once");
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
        let (status, error) = match outcome {
            Outcome::Continue => (ExecutionStatus::Succeeded, None),
            Outcome::Filtered => (ExecutionStatus::Filtered, None),
            Outcome::Failed(e) => (ExecutionStatus::Failed, Some(e)),
            Outcome::Incomplete(e) => (ExecutionStatus::Incomplete, Some(e)),
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
                let _ = self.run_block(&self.plan.on_failure, &mut ctx, &at).await;
            }
        }
        let finished_at = Utc::now();
        let execution = Execution {
            execution_id: self.execution_id,
            scenario: self.plan.name.clone(),
            version: self.plan.version.clone(),
            status,
            started_at: self.started_at,
            finished_at,
            duration_ms: clock.elapsed().as_millis() as u64,
            steps: std::mem::take(&mut *self.records.lock().expect("records lock")),
            response: self.response.lock().expect("response lock").take(),
            error: error.map(|e| ExecutionError {
                step: e.step,
                message: self.redactor.string(e.message),
            }),
            dry_run: self.dry_run,
        };
        self.journal.execution_finished(&execution);
        execution
    }

    async fn run_block(&self, steps: &[PlanStep], ctx: &mut Context, at: &Location) -> Outcome {
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
            started_at: Utc::now(),
            clock: Instant::now(),
        };
        self.journal.step_started(&run.path, step.kind.name());
        if let Some(when) = &step.when {
            match when.eval(ctx) {
                Ok(true) => {}
                Ok(false) => {
                    set_output(ctx, step.id.as_str(), Value::Null);
                    self.record(
                        &run,
                        StepStatus::Skipped,
                        Value::Null,
                        None,
                        0,
                        Some("skipped: `when` is false".to_owned()),
                    );
                    return Outcome::Continue;
                }
                Err(e) => return self.step_failed(&run, ctx, format!("`when`: {e}"), 0, None),
            }
        }
        match &step.kind {
            PlanKind::Set(expr) => match expr.eval(ctx) {
                Ok(output) => self.succeeded(&run, ctx, output, 1, None),
                Err(e) => self.step_failed(&run, ctx, e.0, 1, None),
            },
            PlanKind::Filter(cond) => match cond.eval(ctx) {
                Ok(true) => {
                    self.succeeded(&run, ctx, Value::Bool(true), 1, Some("passed".to_owned()))
                }
                Ok(false) => {
                    set_output(ctx, step.id.as_str(), Value::Bool(false));
                    self.record(
                        &run,
                        StepStatus::Filtered,
                        Value::Bool(false),
                        None,
                        1,
                        Some("stopped here: the filter is false".to_owned()),
                    );
                    Outcome::Filtered
                }
                Err(e) => self.step_failed(&run, ctx, e.0, 1, None),
            },
            PlanKind::Fail(message) => {
                let message = match message.eval_ref(ctx) {
                    Ok(v) => match v.as_ref() {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    Err(e) => format!("(the fail message could not be built: {e})"),
                };
                let message = self.redactor.string(message);
                self.record(
                    &run,
                    StepStatus::Failed,
                    Value::Null,
                    Some(message.clone()),
                    1,
                    None,
                );
                Outcome::Failed(ExecutionError {
                    step: run.path.clone(),
                    message,
                })
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
                        self.succeeded(&run, ctx, response, 1, Some(detail))
                    }
                    Err(e) => self.step_failed(&run, ctx, e.0, 1, None),
                }
            }
            // Boxed so that every other step's future stays small (the HTTP one is large).
            PlanKind::Http(http) => Box::pin(self.http(&run, http, ctx)).await,
            PlanKind::Router(router) => {
                let result = match step.timeout {
                    None => Ok(Box::pin(self.router(&run, router, ctx)).await),
                    Some(limit) => {
                        tokio::time::timeout(limit, Box::pin(self.router(&run, router, ctx))).await
                    }
                };
                result.unwrap_or_else(|_| self.timed_out(&run, ctx))
            }
            PlanKind::ForEach(each) => {
                let result = match step.timeout {
                    None => Ok(Box::pin(self.for_each(&run, each, ctx)).await),
                    Some(limit) => {
                        tokio::time::timeout(limit, Box::pin(self.for_each(&run, each, ctx))).await
                    }
                };
                result.unwrap_or_else(|_| self.timed_out(&run, ctx))
            }
        }
    }

    fn timed_out(&self, run: &StepRun<'_>, ctx: &mut Context) -> Outcome {
        let limit = run.step.timeout.unwrap_or_default();
        self.step_failed(
            run,
            ctx,
            format!("the step timed out after {}", crate::model::Duration(limit)),
            1,
            None,
        )
    }

    async fn http(&self, run: &StepRun<'_>, http: &HttpPlan, ctx: &mut Context) -> Outcome {
        let request = match Request::build(http, ctx) {
            Ok(r) => r,
            Err(e) => return self.step_failed(run, ctx, e.0, 0, None),
        };
        let summary = request.summary(&self.redactor);
        if self.dry_run && !request.method.is_safe() {
            let output = json!({ "dry_run": true, "request": request.describe(&self.redactor) });
            set_output(ctx, run.step.id.as_str(), output.clone());
            self.record(
                run,
                StepStatus::Skipped,
                output,
                None,
                0,
                Some(format!("{summary} (dry run: not sent)")),
            );
            return Outcome::Continue;
        }
        let policy = &run.step.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let send = request.send(
                self.engine.client(),
                http.request_timeout,
                http.expect.as_deref(),
            );
            let result = match run.step.timeout {
                None => send.await,
                Some(limit) => tokio::time::timeout(limit, send).await.unwrap_or_else(|_| {
                    Err(StepError::retryable(format!(
                        "no answer within {}",
                        crate::model::Duration(limit)
                    )))
                }),
            };
            match result {
                Ok(response) => {
                    let detail = format!("{summary} -> {}", response.status);
                    return self.succeeded(run, ctx, response.into_output(), attempt, Some(detail));
                }
                Err(e) if e.retryable && attempt < policy.attempts => {
                    let delay =
                        policy.delay_with_hint(attempt, rand::random::<f64>(), e.retry_after);
                    tracing::debug!(step = %run.step.id, attempt, delay_ms = delay.as_millis() as u64, error = %self.redactor.text(&e.message), "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let detail = match e.status {
                        Some(status) => format!("{summary} -> {status}"),
                        None => summary.clone(),
                    };
                    return self.step_failed(run, ctx, e.message, attempt, Some(detail));
                }
            }
        }
    }

    async fn router(&self, run: &StepRun<'_>, router: &RouterPlan, ctx: &mut Context) -> Outcome {
        let mut taken = Vec::new();
        for (i, route) in router.routes.iter().enumerate() {
            if let Some(when) = &route.when {
                match when.eval(ctx) {
                    Ok(true) => {
                        taken.push(i);
                        if router.mode == RouterMode::First {
                            break;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return self.step_failed(
                            run,
                            ctx,
                            format!("route `{}`: {e}", route.name),
                            1,
                            None,
                        )
                    }
                }
            }
        }
        if taken.is_empty() {
            if let Some(fallback) = router.routes.iter().position(|r| r.when.is_none()) {
                taken.push(fallback);
            }
        }
        let names: Vec<Value> = taken
            .iter()
            .map(|&i| Value::String(router.routes[i].name.clone()))
            .collect();
        for &i in &taken {
            let route = &router.routes[i];
            let at = run.at.route(run.step.id.as_str(), &route.name);
            match Box::pin(self.run_block(&route.steps, ctx, &at)).await {
                Outcome::Continue | Outcome::Filtered => {}
                failed @ (Outcome::Failed(_) | Outcome::Incomplete(_)) => {
                    self.record(
                        run,
                        StepStatus::Failed,
                        Value::Array(names),
                        Some(format!("route `{}` failed", route.name)),
                        1,
                        None,
                    );
                    return failed;
                }
            }
        }
        let detail = if names.is_empty() {
            "no route matched".to_owned()
        } else {
            format!(
                "routes: {}",
                taken
                    .iter()
                    .map(|&i| router.routes[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        self.succeeded(run, ctx, Value::Array(names), 1, Some(detail))
    }

    async fn for_each(&self, run: &StepRun<'_>, each: &ForEachPlan, ctx: &mut Context) -> Outcome {
        let items = match each.items.eval(ctx) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                let kind = if other.is_object() {
                    "a map"
                } else {
                    "a single value"
                };
                return self.step_failed(
                    run,
                    ctx,
                    format!("`items` must give a list, but gave {kind}"),
                    1,
                    None,
                );
            }
            Err(e) => return self.step_failed(run, ctx, format!("`items`: {e}"), 1, None),
        };
        let total = items.len();
        let mut collected: Vec<(usize, Value)> = Vec::with_capacity(total);
        let outcome = if each.concurrency <= 1 || total <= 1 {
            let saved = take_loop_names(ctx, &each.as_name);
            let mut outcome = Outcome::Continue;
            for (index, item) in items.into_iter().enumerate() {
                match self.iteration(run, each, ctx, index, item).await {
                    (Outcome::Continue, Some(value)) => collected.push((index, value)),
                    (Outcome::Continue | Outcome::Filtered, _) => {}
                    (failed, _) => {
                        outcome = failed;
                        break;
                    }
                }
            }
            restore_loop_names(ctx, &each.as_name, saved);
            outcome
        } else {
            let next = AtomicUsize::new(0);
            let stop = AtomicBool::new(false);
            let results = Mutex::new(Vec::with_capacity(total));
            let (items, next, stop, results) = (&items, &next, &stop, &results);
            let workers = (0..each.concurrency.min(total)).map(|_| {
                let mut worker_ctx = ctx.clone();
                async move {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= total || stop.load(Ordering::Relaxed) {
                            return Outcome::Continue;
                        }
                        match self
                            .iteration(run, each, &mut worker_ctx, index, items[index].clone())
                            .await
                        {
                            (Outcome::Continue, Some(value)) => {
                                results.lock().expect("results lock").push((index, value))
                            }
                            (Outcome::Continue | Outcome::Filtered, _) => {}
                            (failed, _) => {
                                stop.store(true, Ordering::Relaxed);
                                return failed;
                            }
                        }
                    }
                }
            });
            let outcomes = futures::future::join_all(workers).await;
            collected = std::mem::take(&mut *results.lock().expect("results lock"));
            collected.sort_by_key(|(i, _)| *i);
            outcomes
                .into_iter()
                .find(|o| !matches!(o, Outcome::Continue))
                .unwrap_or(Outcome::Continue)
        };
        let output = Value::Array(collected.into_iter().map(|(_, v)| v).collect());
        match outcome {
            Outcome::Continue | Outcome::Filtered => {
                let detail = format!("{total} items");
                self.succeeded(run, ctx, output, 1, Some(detail))
            }
            failed => {
                self.record(
                    run,
                    StepStatus::Failed,
                    output,
                    Some("an iteration failed".to_owned()),
                    1,
                    None,
                );
                failed
            }
        }
    }

    /// Runs one iteration; returns its outcome and, when it finished, its collected value.
    async fn iteration(
        &self,
        run: &StepRun<'_>,
        each: &ForEachPlan,
        ctx: &mut Context,
        index: usize,
        item: Value,
    ) -> (Outcome, Option<Value>) {
        if let Some(root) = ctx.data_mut().as_object_mut() {
            root.insert(each.as_name.clone(), item);
            root.insert("index".to_owned(), Value::from(index));
        }
        let at = run.at.iteration(run.step.id.as_str(), index);
        let outcome = Box::pin(self.run_block(&each.steps, ctx, &at)).await;
        if !matches!(outcome, Outcome::Continue) {
            return (outcome, None);
        }
        let value = match &each.collect {
            Some(expr) => match expr.eval(ctx) {
                Ok(v) => v,
                Err(e) => {
                    return (
                        Outcome::Failed(ExecutionError {
                            step: run.path.clone(),
                            message: self
                                .redactor
                                .string(format!("`collect` of item {index}: {e}")),
                        }),
                        None,
                    )
                }
            },
            // The next iteration overwrites it, and nothing outside the loop can read it: move it out.
            None => each
                .steps
                .last()
                .and_then(|last| {
                    ctx.data_mut()
                        .get_mut("steps")
                        .and_then(Value::as_object_mut)
                        .and_then(|steps| steps.remove(last.id.as_str()))
                })
                .unwrap_or(Value::Null),
        };
        (Outcome::Continue, Some(value))
    }

    fn succeeded(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        output: Value,
        attempts: u32,
        detail: Option<String>,
    ) -> Outcome {
        self.record(
            run,
            StepStatus::Succeeded,
            output.clone(),
            None,
            attempts,
            detail,
        );
        set_output(ctx, run.step.id.as_str(), output);
        Outcome::Continue
    }

    /// Applies the step's `on_error` after it failed for good.
    fn step_failed(
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
        match step.on_error {
            OnError::Fail => {
                self.record(
                    run,
                    StepStatus::Failed,
                    Value::Null,
                    Some(message),
                    attempts,
                    detail,
                );
                Outcome::Failed(failure)
            }
            OnError::Break => {
                self.record(
                    run,
                    StepStatus::Failed,
                    Value::Null,
                    Some(message),
                    attempts,
                    detail,
                );
                Outcome::Incomplete(failure)
            }
            OnError::Continue => {
                let output = match &step.fallback {
                    None => Value::Null,
                    Some(expr) => expr.eval(ctx).unwrap_or(Value::Null),
                };
                self.record(
                    run,
                    StepStatus::Failed,
                    output.clone(),
                    Some(message),
                    attempts,
                    detail.map(|d| format!("{d} (continuing)")),
                );
                set_output(ctx, step.id.as_str(), output);
                Outcome::Continue
            }
        }
    }

    fn masked(&self, mut value: Value) -> Value {
        self.redactor.value(&mut value);
        value
    }

    fn record(
        &self,
        run: &StepRun<'_>,
        status: StepStatus,
        output: Value,
        error: Option<String>,
        attempts: u32,
        detail: Option<String>,
    ) {
        let id = run.step.id.as_str();
        let record = StepRecord {
            key: run.at.key(id),
            path: run.path.clone(),
            kind: run.step.kind.name(),
            status,
            output: self.masked(output),
            error: error.map(|e| self.redactor.string(e)),
            attempts,
            started_at: run.started_at,
            duration_ms: run.clock.elapsed().as_millis() as u64,
            detail: detail.map(|d| self.redactor.string(d)),
        };
        self.journal.step_finished(&record);
        self.records.lock().expect("records lock").push(record);
    }
}

/// The step being run and when it started.
struct StepRun<'a> {
    step: &'a PlanStep,
    at: &'a Location,
    /// Formatted once: `route/enterprise/notify#3`.
    path: String,
    started_at: DateTime<Utc>,
    clock: Instant,
}

fn set_output(ctx: &mut Context, id: &str, output: Value) {
    if let Some(steps) = ctx
        .data_mut()
        .get_mut("steps")
        .and_then(Value::as_object_mut)
    {
        steps.insert(id.to_owned(), output);
    }
}

/// Saves what an outer loop bound to the names this loop is about to bind.
fn take_loop_names(ctx: &mut Context, name: &str) -> (Option<Value>, Option<Value>) {
    let root = ctx.data_mut().as_object_mut();
    match root {
        Some(root) => (root.remove(name), root.remove("index")),
        None => (None, None),
    }
}

fn restore_loop_names(ctx: &mut Context, name: &str, saved: (Option<Value>, Option<Value>)) {
    if let Some(root) = ctx.data_mut().as_object_mut() {
        root.remove(name);
        root.remove("index");
        if let Some(v) = saved.0 {
            root.insert(name.to_owned(), v);
        }
        if let Some(v) = saved.1 {
            root.insert("index".to_owned(), v);
        }
    }
}
