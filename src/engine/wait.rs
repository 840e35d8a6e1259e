//! Steps that wait without holding a worker (`approval`, `delay`) and the
//! `record` step that feeds the report.
//!
//! A waiting step is journaled with status `waiting` and the execution is
//! parked (`waiting`, with the time to wake it). Whoever resumes it later, a
//! decision or the clock, runs the plan again: settled steps are skipped, and
//! the waiting step reads when it started waiting from its own record, so a
//! deadline does not move however often the execution is woken.

use chrono::{DateTime, SecondsFormat, Utc};
use handlebars::Context;
use serde_json::{json, Value};

use super::execution::{ExecutionError, StepStatus};
use super::journal::{DataOp, DataRequest};
use super::run::{set_output, Interpreter, Outcome, StepRun};
use crate::model::{OnReject, TimeoutDecision};
use crate::plan::{ApprovalPlan, RecordPlan};

/// The decision an approval step's output carries.
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";

pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Interpreter<'_> {
    /// When the step at `path` started waiting: now, or what its record says.
    pub(super) fn waiting_since(&self, path: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        self.waiting
            .get(path)
            .and_then(|r| r.input.as_ref())
            .and_then(|input| input.get("waiting_since"))
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now)
    }

    /// Journals the step as waiting and parks the execution until `until`.
    pub(super) async fn park(
        &self,
        run: &StepRun<'_>,
        input: Value,
        until: DateTime<Utc>,
        detail: String,
    ) -> Outcome {
        let mut record = self.record(run, StepStatus::Waiting, Value::Null, None, 0);
        record.input = Some(self.masked(input));
        record.detail = Some(self.redactor.string(detail));
        self.keep(record, Outcome::Waiting(until)).await
    }

    pub(super) async fn approval(
        &self,
        run: &StepRun<'_>,
        approval: &ApprovalPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let message = match approval.message.eval_ref(ctx) {
            Ok(m) => as_text(m.as_ref()),
            Err(e) => {
                return self
                    .step_failed(run, ctx, format!("`message`: {e}"), 0, None)
                    .await
            }
        };
        let now = self.clock.now();
        if self.dry_run {
            let output = json!({ "decision": APPROVED, "by": "dry run", "comment": null, "decided_at": timestamp(now) });
            set_output(ctx, run.step.id.as_str(), output.clone());
            let mut record = self.record(run, StepStatus::Skipped, output, None, 0);
            record.detail = Some("dry run: not waiting for a decision".to_owned());
            return self.keep(record, Outcome::Continue).await;
        }
        let since = self.waiting_since(&run.path, now);
        let deadline = since + chrono::Duration::from_std(approval.timeout).unwrap_or_default();
        if now >= deadline {
            let decision = match approval.on_timeout {
                TimeoutDecision::Approve => APPROVED,
                TimeoutDecision::Reject => REJECTED,
            };
            let output = json!({
                "decision": decision,
                "by": "timeout",
                "comment": format!("no decision within {}", crate::model::Duration(approval.timeout)),
                "decided_at": timestamp(now),
            });
            let detail = format!("{decision} by timeout");
            let outcome = self.rejection(&run.path, &output, approval);
            set_output(ctx, run.step.id.as_str(), output.clone());
            let mut record = self.record(run, StepStatus::Succeeded, output, None, 1);
            record.detail = Some(detail);
            return self.keep(record, outcome).await;
        }
        let input = json!({
            "message": message,
            "approvers": approval.approvers,
            "waiting_since": timestamp(since),
            "deadline": timestamp(deadline),
            "on_timeout": match approval.on_timeout {
                TimeoutDecision::Approve => APPROVED,
                TimeoutDecision::Reject => REJECTED,
            },
        });
        let detail = format!("waiting for a decision until {}", timestamp(deadline));
        self.park(run, input, deadline, detail).await
    }

    /// What a decided approval means for the execution: a rejection stops it
    /// unless the step says `on_reject: continue`.
    pub(super) fn rejection(&self, path: &str, output: &Value, approval: &ApprovalPlan) -> Outcome {
        let rejected = output.get("decision").and_then(Value::as_str) == Some(REJECTED);
        if !rejected || approval.on_reject == OnReject::Continue {
            return Outcome::Continue;
        }
        let by = output.get("by").map(as_text).unwrap_or_default();
        let comment = output.get("comment").map(as_text).unwrap_or_default();
        let mut message = format!(
            "rejected by {}",
            if by.is_empty() { "a reviewer" } else { &by }
        );
        if !comment.is_empty() {
            message.push_str(": ");
            message.push_str(&comment);
        }
        Outcome::Rejected(ExecutionError {
            step: path.to_owned(),
            message: self.redactor.string(message),
        })
    }

    pub(super) async fn delay(
        &self,
        run: &StepRun<'_>,
        duration: std::time::Duration,
        ctx: &mut Context,
    ) -> Outcome {
        let now = self.clock.now();
        let since = self.waiting_since(&run.path, now);
        let until = since + chrono::Duration::from_std(duration).unwrap_or_default();
        if self.dry_run || now >= until {
            let output = json!({ "waited_since": timestamp(since), "until": timestamp(until) });
            let detail = if self.dry_run {
                format!("dry run: not waiting {}", crate::model::Duration(duration))
            } else {
                format!("waited {}", crate::model::Duration(duration))
            };
            return self.succeeded(run, ctx, output, 1, Some(detail)).await;
        }
        let input = json!({ "for": crate::model::Duration(duration).to_string(), "waiting_since": timestamp(since), "until": timestamp(until) });
        let detail = format!("waiting until {}", timestamp(until));
        self.park(run, input, until, detail).await
    }

    pub(super) async fn record_event(
        &self,
        run: &StepRun<'_>,
        record: &RecordPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let built = (|| -> Result<DataRequest, crate::plan::EvalError> {
            let event = as_text(record.event.eval_ref(ctx)?.as_ref());
            let key = as_text(record.key.eval_ref(ctx)?.as_ref());
            if event.is_empty() || key.is_empty() {
                return Err(crate::plan::EvalError(format!(
                    "an event needs a name and a key (got event `{event}`, key `{key}`)"
                )));
            }
            let value = match &record.value {
                None => None,
                Some(expr) => {
                    let value = expr.eval(ctx)?;
                    match value {
                        Value::Null => None,
                        other => Some(crate::plan::as_number(&other).ok_or_else(|| {
                            crate::plan::EvalError(format!("`value` must be a number, not {other}"))
                        })?),
                    }
                }
            };
            let data = match &record.data {
                None => Value::Null,
                Some(expr) => self.masked(expr.eval(ctx)?),
            };
            Ok(DataRequest {
                store: self.redactor.string(event),
                key: self.redactor.string(key),
                op: DataOp::Record { value, data },
            })
        })();
        let request = match built {
            Ok(request) => request,
            Err(e) => return self.step_failed(run, ctx, e.0, 1, None).await,
        };
        let detail = format!("{} [{}]", request.store, request.key);
        let input = json!({ "event": request.store, "key": request.key });
        self.data_step(run, ctx, request, detail, input).await
    }
}
