//! The `wait_for` and `emit` steps: an execution waits for a business
//! milestone keyed by a business value (the lead's email), and another
//! execution, the CLI or the API announces it.
//!
//! A wait never misses an event that arrived early: before it parks, it asks
//! the journal for every event of its (event, key) received since its
//! execution was accepted (or within `lookback`), and the journal registers
//! the wait in the same transaction when there is none. The deadline is
//! journaled before the first look and read back from that record on every
//! wake, so it never moves.

use chrono::{DateTime, Utc};
use handlebars::Context;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::events::{EventWait, NewEvent, ReceivedEvent};
use super::execution::{ExecutionError, StepStatus};
use super::run::{set_output, Interpreter, Outcome, StepRun};
use super::wait::{as_text, timestamp};
use crate::model::WaitTimeout;
use crate::plan::{EmitPlan, WaitForPlan};

/// The namespace of `emit` event ids inside an execution's id space: distinct
/// from the Idempotency-Key of an HTTP step at the same path.
const EMIT_SCOPE: &str = "emit:";

fn parse_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn event_value(event: &ReceivedEvent) -> Value {
    json!({
        "id": event.id,
        "event": event.event,
        "key": event.key,
        "data": event.data,
        "received_at": timestamp(event.received_at),
    })
}

impl Interpreter<'_> {
    fn render_key(&self, key: &crate::plan::Expr, ctx: &Context) -> Result<String, String> {
        let key = key
            .eval_ref(ctx)
            .map_err(|e| format!("`key`: {e}"))
            .map(|k| as_text(k.as_ref()))?;
        if key.is_empty() {
            return Err("`key` rendered empty: an event needs a key to correlate on".to_owned());
        }
        Ok(self.redactor.string(key))
    }

    /// Whether `match` holds for `event`, with the event readable as `event`.
    fn event_matches(
        &self,
        wait: &WaitForPlan,
        event: &ReceivedEvent,
        ctx: &mut Context,
    ) -> Result<bool, String> {
        let Some(condition) = &wait.condition else {
            return Ok(true);
        };
        let Some(root) = ctx.data_mut().as_object_mut() else {
            return Ok(false);
        };
        root.insert("event".to_owned(), event_value(event));
        let holds = condition.eval(ctx).map_err(|e| format!("`match`: {e}"));
        if let Some(root) = ctx.data_mut().as_object_mut() {
            root.remove("event");
        }
        holds
    }

    pub(super) async fn wait_for(
        &self,
        run: &StepRun<'_>,
        wait: &WaitForPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let key = match self.render_key(&wait.key, ctx) {
            Ok(key) => key,
            Err(message) => return self.step_failed(run, ctx, message, 0, None).await,
        };
        let now = self.clock.now();
        if self.dry_run {
            let output = json!({ "event": wait.event, "key": key, "timed_out": false });
            let mut record = self.record(run, StepStatus::Skipped, output.clone(), None, 0);
            record.detail = Some(format!("dry run: not waiting for {} [{key}]", wait.event));
            set_output(ctx, run.step.id.as_str(), output);
            return self.keep(record, Outcome::Continue).await;
        }
        let previous = self.waiting.get(&run.path).and_then(|r| r.input.clone());
        let waiting_since = self.waiting_since(&run.path, now);
        let timeout = chrono::Duration::from_std(wait.timeout).unwrap_or_default();
        let deadline = previous
            .as_ref()
            .and_then(|input| parse_time(input.get("deadline")))
            .unwrap_or(waiting_since + timeout);
        let accepted = parse_time(ctx.data().pointer("/trigger/received_at")).unwrap_or(now);
        let since = match wait.lookback {
            Some(lookback) => accepted
                .min(waiting_since - chrono::Duration::from_std(lookback).unwrap_or_default()),
            None => accepted,
        };
        let mut after_seq = previous
            .as_ref()
            .and_then(|input| input.get("seen_seq"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let input = |seen: i64| {
            json!({
                "event": wait.event,
                "key": key,
                "waiting_since": timestamp(waiting_since),
                "deadline": timestamp(deadline),
                "since": timestamp(since),
                "seen_seq": seen,
            })
        };
        let detail = format!(
            "waiting for {} [{key}] until {}",
            wait.event,
            timestamp(deadline)
        );
        if previous.is_none() {
            // The deadline is fixed before anything else: a crash from here on
            // resumes with this record, whatever time it is then.
            let mut record = self.record(run, StepStatus::Waiting, Value::Null, None, 0);
            record.input = Some(self.masked(input(after_seq)));
            record.detail = Some(self.redactor.string(detail.clone()));
            if let Err(e) = self.journal.step_progress(&record).await {
                return Outcome::Aborted(e);
            }
        }
        loop {
            let request = EventWait {
                path: run.path.clone(),
                event: wait.event.clone(),
                key: key.clone(),
                since,
                after_seq,
                waiting_since,
                deadline,
            };
            let events = match self.journal.await_event(self.execution_id, &request).await {
                Ok(events) => events,
                Err(e) => return Outcome::Aborted(e),
            };
            if events.is_empty() {
                break;
            }
            for event in events {
                after_seq = after_seq.max(event.seq);
                if self
                    .taken_events
                    .lock()
                    .expect("taken lock")
                    .contains(&event.id)
                {
                    continue;
                }
                match self.event_matches(wait, &event, ctx) {
                    Ok(false) => continue,
                    Ok(true) => {
                        self.taken_events
                            .lock()
                            .expect("taken lock")
                            .insert(event.id);
                        let output = json!({
                            "event": event.event,
                            "key": event.key,
                            "event_id": event.id,
                            "data": event.data,
                            "received_at": timestamp(event.received_at),
                            "timed_out": false,
                        });
                        let waited = event.received_at.max(waiting_since) - waiting_since;
                        let detail = format!(
                            "{} [{}] received {}{}",
                            event.event,
                            event.key,
                            timestamp(event.received_at),
                            if event.received_at < waiting_since {
                                " (before the wait started)".to_owned()
                            } else {
                                format!(" after {}s", waited.num_seconds())
                            }
                        );
                        return self.succeeded(run, ctx, output, 1, Some(detail)).await;
                    }
                    Err(message) => return self.step_failed(run, ctx, message, 1, None).await,
                }
            }
        }
        if now >= deadline {
            return self.wait_timed_out(run, wait, &key, deadline, ctx).await;
        }
        self.park(run, input(after_seq), deadline, detail).await
    }

    async fn wait_timed_out(
        &self,
        run: &StepRun<'_>,
        wait: &WaitForPlan,
        key: &str,
        deadline: DateTime<Utc>,
        ctx: &mut Context,
    ) -> Outcome {
        let timeout = crate::model::Duration(wait.timeout);
        match wait.on_timeout {
            WaitTimeout::Continue => {
                let output = json!({ "event": wait.event, "key": key, "timed_out": true });
                let detail = format!("no {} [{key}] within {timeout}: going on", wait.event);
                self.succeeded(run, ctx, output, 1, Some(detail)).await
            }
            WaitTimeout::Fail => {
                let message = format!(
                    "step `{}` waited for `{}` with key `{key}` until {} ({timeout}): no matching event arrived",
                    run.step.id,
                    wait.event,
                    timestamp(deadline)
                );
                let output = json!({ "event": wait.event, "key": key, "timed_out": true });
                let message = self.redactor.string(message);
                let failure = ExecutionError {
                    step: run.path.clone(),
                    message: message.clone(),
                };
                set_output(ctx, run.step.id.as_str(), output.clone());
                let record = self.record(run, StepStatus::Failed, output, Some(message), 1);
                // A timeout is final: `on_error: continue` does not make a
                // missing milestone look like a success.
                self.keep(record.with_detail("timed out"), Outcome::Failed(failure))
                    .await
            }
        }
    }

    pub(super) async fn emit(
        &self,
        run: &StepRun<'_>,
        emit: &EmitPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let key = match self.render_key(&emit.key, ctx) {
            Ok(key) => key,
            Err(message) => return self.step_failed(run, ctx, message, 0, None).await,
        };
        let data = match &emit.data {
            None => Value::Object(Map::new()),
            Some(expr) => match expr.eval(ctx) {
                Ok(value) => self.masked(value),
                Err(e) => {
                    return self
                        .step_failed(run, ctx, format!("`data`: {e}"), 0, None)
                        .await
                }
            },
        };
        let event_id = Uuid::new_v5(&self.origin, format!("{EMIT_SCOPE}{}", run.path).as_bytes());
        if self.dry_run {
            let output = json!({ "event_id": event_id, "resumed": 0 });
            let mut record = self.record(run, StepStatus::Skipped, output.clone(), None, 0);
            record.detail = Some(format!("dry run: not emitting {} [{key}]", emit.event));
            set_output(ctx, run.step.id.as_str(), output);
            return self.keep(record, Outcome::Continue).await;
        }
        let event = NewEvent {
            id: event_id,
            event: emit.event.clone(),
            key: key.clone(),
            data,
            received_at: self.clock.now(),
            source: Some(self.execution_id),
        };
        let emitted = match self.journal.emit(&event).await {
            Ok(emitted) => emitted,
            Err(e) => return Outcome::Aborted(e),
        };
        let resumed = emitted.resumed.len();
        let output = json!({ "event_id": emitted.event_id, "resumed": resumed });
        let detail = format!(
            "{} [{key}]: resumed {resumed}{}",
            emit.event,
            if emitted.duplicate {
                " (already emitted: not sent again)"
            } else {
                ""
            }
        );
        self.succeeded(run, ctx, output, 1, Some(detail)).await
    }
}
