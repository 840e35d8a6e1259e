//! Resuming: the records of an earlier run split into the settled (their
//! result stands, the step is not run again), the waiting (approval, delay,
//! wait_for parked there) and the events already taken.

use std::collections::{HashMap, HashSet};

use handlebars::Context;
use serde_json::Value;
use uuid::Uuid;

use super::{set_output, Interpreter, Outcome, StepRun};
use crate::engine::execution::{StepRecord, StepStatus};
use crate::model::OnError;
use crate::plan::{Plan, PlanKind};

/// Whether a step's earlier result stands when its execution resumes: a
/// failure stands only where the step said `on_error: continue`, and never
/// one that waited for a connection to be reconnected.
fn is_settled(plan: &Plan, record: &StepRecord) -> bool {
    match record.status {
        StepStatus::Succeeded | StepStatus::Skipped | StepStatus::Filtered => true,
        StepStatus::Running | StepStatus::Waiting => false,
        StepStatus::Failed => {
            !record.error.as_deref().is_some_and(is_reconnect_error)
                && plan
                    .find_step(&record.path)
                    .is_some_and(|step| step.on_error == OnError::Continue)
        }
    }
}

/// Whether an error is a connection's "needs to be reconnected".
fn is_reconnect_error(error: &str) -> bool {
    error.starts_with("connection `") && error.contains("` needs to be reconnected")
}

/// The records of the run being resumed, sorted by what they mean now.
pub(super) struct Resumed {
    /// Every settled record, in the order it was kept.
    pub(super) records: Vec<StepRecord>,
    pub(super) settled: HashMap<String, StepRecord>,
    pub(super) waiting: HashMap<String, StepRecord>,
    pub(super) taken_events: HashSet<Uuid>,
}

impl Resumed {
    pub(super) fn split(plan: &Plan, earlier: Vec<StepRecord>) -> Resumed {
        let mut resumed = Resumed {
            records: Vec::with_capacity(plan.steps.len()),
            settled: HashMap::new(),
            waiting: HashMap::new(),
            taken_events: HashSet::new(),
        };
        for record in earlier {
            if record.kind == "wait_for" {
                if let Some(id) = record.output.get("event_id").and_then(Value::as_str) {
                    resumed.taken_events.extend(Uuid::parse_str(id).ok());
                }
            }
            if is_settled(plan, &record) {
                resumed.records.push(record.clone());
                resumed.settled.insert(record.path.clone(), record);
            } else if record.status == StepStatus::Waiting {
                resumed.waiting.insert(record.path.clone(), record);
            }
        }
        resumed
    }
}

impl Interpreter<'_> {
    /// A step that finished before the crash or the break: its result
    /// stands, its output is restored, and it is not run again.
    pub(super) fn settled_outcome(&self, run: &StepRun<'_>, ctx: &mut Context) -> Option<Outcome> {
        let done = self.settled.get(&run.path)?;
        set_output(ctx, run.step.id.as_str(), done.output.clone());
        Some(match (done.status, &run.step.kind) {
            (StepStatus::Filtered, _) => Outcome::Filtered,
            (StepStatus::Succeeded, PlanKind::Approval(approval)) => {
                self.rejection(&run.path, &done.output, approval)
            }
            _ => Outcome::Continue,
        })
    }
}
