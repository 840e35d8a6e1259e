//! How a step's result is kept: its record (masked, timed), handed to the
//! journal before the outcome counts, and its output set in the context.

use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use handlebars::Context;
use serde_json::Value;

use super::dispatch::is_pure;
use super::{Interpreter, Outcome, StepRun};
use crate::engine::execution::{ExecutionError, StepRecord, StepStatus};
use crate::model::OnError;
use crate::plan::PlanKind;

impl Interpreter<'_> {
    pub(in crate::engine) async fn succeeded(
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
    pub(in crate::engine) async fn succeeded_with_input(
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

    pub(super) async fn finish_success(
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
        let lend = run.at.outside_loops() && !self.redactor.finds_secret(&output);
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
    pub(in crate::engine) async fn step_failed(
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

    /// A connection the step needs must be connected again: whatever its
    /// `on_error`, the execution stops `incomplete` here (its error names
    /// the connection), and goes on from this step once it is reconnected.
    pub(in crate::engine) async fn needs_reconnect(
        &self,
        run: &StepRun<'_>,
        message: String,
        detail: Option<String>,
    ) -> Outcome {
        let message = self.redactor.string(message);
        self.reconnect
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let failure = ExecutionError {
            step: run.path.clone(),
            message: message.clone(),
        };
        let mut record = self.record(run, StepStatus::Failed, Value::Null, Some(message), 0);
        record.detail = detail.map(|d| self.redactor.string(d));
        self.keep(record, Outcome::Incomplete(failure)).await
    }

    /// When a step starts: the clock for steps that wait on something, the
    /// last reading for steps that only compute.
    pub(super) fn clock_for(&self, kind: &PlanKind) -> Instant {
        if is_pure(kind) {
            let nanos = self.last_reading.load(AtomicOrdering::Relaxed);
            return self.epoch.1 + std::time::Duration::from_nanos(nanos);
        }
        self.read_clock()
    }

    pub(super) fn read_clock(&self) -> Instant {
        let now = Instant::now();
        let nanos = now.saturating_duration_since(self.epoch.1).as_nanos() as u64;
        self.last_reading.fetch_max(nanos, AtomicOrdering::Relaxed);
        now
    }

    /// The wall-clock time of an instant taken during this execution.
    pub(super) fn wall_time(&self, at: Instant) -> DateTime<Utc> {
        let (utc, instant) = self.epoch;
        utc + chrono::Duration::from_std(at.saturating_duration_since(instant)).unwrap_or_default()
    }

    pub(in crate::engine) fn masked(&self, mut value: Value) -> Value {
        self.redactor.value(&mut value);
        value
    }

    /// A record of the step as it ends now, masked.
    pub(in crate::engine) fn record(
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
    pub(in crate::engine) fn record_raw(
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
    pub(in crate::engine) async fn keep(&self, record: StepRecord, outcome: Outcome) -> Outcome {
        if let Err(e) = self.journal.step_finished(&record).await {
            return Outcome::Aborted(e);
        }
        self.records.lock().expect("records lock").push(record);
        outcome
    }
}

pub(in crate::engine) fn set_output(ctx: &mut Context, id: &str, output: Value) {
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
