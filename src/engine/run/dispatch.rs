//! One step: its place in the execution (`Location`, the record's path),
//! `when`, the journal's barrier before effects, and the dispatch to the
//! step's kind. The kinds with effects live in `effects.rs`, `wait.rs`,
//! `correlate.rs` and `flow.rs`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use handlebars::Context;
use serde_json::{Map, Value};

use super::{set_output, Interpreter, Outcome};
use crate::engine::execution::StepStatus;
use crate::plan::{PlanKind, PlanStep, RespondPlan};

/// Where a step sits, for its record's key and path.
#[derive(Clone, Default)]
pub(in crate::engine) struct Location {
    prefix: String,
    suffix: String,
}

impl Location {
    /// Where the failure handlers' records go.
    pub(in crate::engine) fn on_failure() -> Location {
        Location {
            prefix: "on_failure/".to_owned(),
            suffix: String::new(),
        }
    }

    /// Outside every loop: a step there has exactly one record.
    pub(in crate::engine) fn outside_loops(&self) -> bool {
        self.suffix.is_empty()
    }

    pub(super) fn path(&self, id: &str) -> String {
        let mut path = String::with_capacity(self.prefix.len() + id.len() + self.suffix.len());
        path.push_str(&self.prefix);
        path.push_str(id);
        path.push_str(&self.suffix);
        path
    }

    pub(in crate::engine) fn route(&self, step: &str, route: &str) -> Location {
        Location {
            prefix: format!("{}{step}/{route}/", self.prefix),
            suffix: self.suffix.clone(),
        }
    }

    pub(in crate::engine) fn iteration(&self, step: &str, index: usize) -> Location {
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

impl Interpreter<'_> {
    pub(super) async fn run_step(
        &self,
        step: &PlanStep,
        ctx: &mut Context,
        at: &Location,
    ) -> Outcome {
        let run = StepRun {
            step,
            at,
            path: at.path(step.id.as_str()),
            clock: self.clock_for(&step.kind),
        };
        if let Some(outcome) = self.settled_outcome(&run, ctx) {
            return outcome;
        }
        // Whether a step a re-run could not give again has run since this
        // attempt began: only then has the barrier before an effect anything
        // to make durable (replayable steps are simply run again after a crash).
        let unsettled = if step.replayable {
            self.unsettled.load(Ordering::Relaxed)
        } else {
            self.unsettled.swap(true, Ordering::Relaxed)
        };
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
        if unsettled && has_effects(&step.kind) {
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
            PlanKind::Respond(respond) => self.respond(&run, respond, ctx).await,
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

    /// The webhook's answer, kept for the caller that waits for it.
    async fn respond(
        &self,
        run: &StepRun<'_>,
        respond: &RespondPlan,
        ctx: &mut Context,
    ) -> Outcome {
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
                *self.response.lock().expect("response lock") = Some(self.masked(response.clone()));
                let detail = format!("-> {}", respond.status);
                self.succeeded(run, ctx, response, 1, Some(detail)).await
            }
            Err(e) => self.step_failed(run, ctx, e.0, 1, None).await,
        }
    }

    pub(super) async fn timed_out(&self, run: &StepRun<'_>, ctx: &mut Context) -> Outcome {
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
}

/// Steps that only compute: they finish within microseconds.
pub(super) fn is_pure(kind: &PlanKind) -> bool {
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
/// The step being run and when it started.
pub(in crate::engine) struct StepRun<'a> {
    pub(in crate::engine) step: &'a PlanStep,
    pub(in crate::engine) at: &'a Location,
    /// Formatted once: `route/enterprise/notify#3`.
    pub(in crate::engine) path: String,
    pub(in crate::engine) clock: Instant,
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
