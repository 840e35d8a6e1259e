//! Review before reward: listing what waits for a person, and keeping their
//! decision. A decision is written as the approval step's result and the
//! execution is queued to go on; whoever resumes it (the deciding command,
//! the daemon, `scenarist resume`) skips the decided step like any settled one.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Runner, RunnerError};
use crate::engine::{ExecutionStatus, StepRecord, StepStatus};
use crate::store::{Decided, ExecutionFilter, ExecutionSummary};

/// A reviewer's answer.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approve: bool,
    pub by: String,
    pub comment: Option<String>,
}

/// An execution waiting at an approval step: what `scenarist approvals` lists.
#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    #[serde(flatten)]
    pub execution: ExecutionSummary,
    /// The approval step's path.
    pub step: String,
    pub message: String,
    pub approvers: Vec<String>,
    pub waiting_since: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// `approved` or `rejected`: what happens at the deadline.
    pub on_timeout: String,
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn pending_from(execution: ExecutionSummary, record: &StepRecord) -> Option<PendingApproval> {
    let input = record.input.as_ref()?;
    Some(PendingApproval {
        step: record.path.clone(),
        message: input.get("message").and_then(Value::as_str)?.to_owned(),
        approvers: input
            .get("approvers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        waiting_since: time(input.get("waiting_since"))?,
        deadline: time(input.get("deadline"))?,
        on_timeout: input
            .get("on_timeout")
            .and_then(Value::as_str)
            .unwrap_or("rejected")
            .to_owned(),
        execution,
    })
}

impl Runner {
    /// Every execution waiting for a review, oldest first.
    pub async fn approvals(
        &self,
        scenario: Option<String>,
    ) -> Result<Vec<PendingApproval>, RunnerError> {
        let filter = ExecutionFilter {
            scenario,
            status: Some(ExecutionStatus::Waiting),
            limit: Some(10_000),
            ..ExecutionFilter::default()
        };
        let mut out = Vec::new();
        for summary in self.store.list(&filter).await? {
            let stored = self.load(summary.id).await?;
            if let Some(pending) = stored
                .steps
                .iter()
                .find(|r| r.status == StepStatus::Waiting && r.kind == "approval")
                .and_then(|r| pending_from(stored.summary.clone(), r))
            {
                out.push(pending);
            }
        }
        out.sort_by_key(|p| p.waiting_since);
        Ok(out)
    }

    /// The review an execution waits for, or why it does not wait for one.
    pub async fn pending_approval(&self, id: Uuid) -> Result<PendingApproval, RunnerError> {
        let stored = self.load(id).await?;
        if stored.summary.status != ExecutionStatus::Waiting {
            return Err(RunnerError::NotWaiting {
                id,
                status: stored.summary.status.to_string(),
            });
        }
        let waiting = stored
            .steps
            .iter()
            .find(|r| r.status == StepStatus::Waiting);
        match waiting {
            Some(r) if r.kind == "approval" => {
                pending_from(stored.summary.clone(), r).ok_or_else(|| {
                    RunnerError::Store(crate::store::StoreError::Corrupt(format!(
                        "the waiting approval step of execution {id} lacks its message or deadline"
                    )))
                })
            }
            Some(r) if r.kind == "wait_for" => {
                let field = |name: &str| {
                    r.input
                        .as_ref()
                        .and_then(|i| i.get(name))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned()
                };
                Err(RunnerError::WaitsForEvent {
                    id,
                    event: field("event"),
                    key: field("key"),
                    until: field("deadline"),
                })
            }
            Some(r) => Err(RunnerError::WaitsForDelay {
                id,
                until: r
                    .input
                    .as_ref()
                    .and_then(|i| i.get("until"))
                    .and_then(Value::as_str)
                    .unwrap_or("later")
                    .to_owned(),
            }),
            None => Err(RunnerError::NotWaiting {
                id,
                status: stored.summary.status.to_string(),
            }),
        }
    }

    /// Keeps a decision on a waiting approval; the execution is then queued
    /// to go on. Deciding twice, or deciding what does not wait, changes nothing.
    pub async fn decide(&self, id: Uuid, decision: Decision) -> Result<Value, RunnerError> {
        let pending = self.pending_approval(id).await?;
        if !pending.approvers.is_empty() && !pending.approvers.contains(&decision.by) {
            return Err(RunnerError::NotAnApprover {
                id,
                by: decision.by,
                approvers: pending.approvers,
            });
        }
        let now = self.now.now();
        let output = json!({
            "decision": if decision.approve { crate::engine::APPROVED } else { crate::engine::REJECTED },
            "by": decision.by,
            "comment": decision.comment,
            "decided_at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        let mut output = output;
        if let Ok((plan, _)) = self.stored_plan(&pending.execution).await {
            self.mask(&plan, &mut output);
        }
        let record = StepRecord {
            path: pending.step.clone(),
            kind: "approval",
            status: StepStatus::Succeeded,
            input: None,
            output: output.clone(),
            error: None,
            attempts: 1,
            started_at: now,
            duration_ms: (now - pending.waiting_since).num_milliseconds().max(0) as u64,
            detail: Some(format!(
                "{} by {}",
                output["decision"].as_str().unwrap_or_default(),
                output["by"].as_str().unwrap_or_default()
            )),
        };
        match self.store.decide(id, &record, now).await? {
            Decided::Queued => Ok(output),
            Decided::NotFound => Err(RunnerError::NotFound(id.to_string())),
            Decided::NotWaiting(status) => Err(RunnerError::NotWaiting { id, status }),
        }
    }
}
