//! What an execution produced: statuses as explicit state machines and the
//! execution document that `run --output json` prints (and the store will keep).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

/// Where an execution stands. Text forms are stable: they are stored and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Accepted (a webhook answered 202, a schedule ticked) and waiting for a worker.
    Queued,
    Running,
    Succeeded,
    Failed,
    /// A top-level filter said no: not a failure.
    Filtered,
    /// Stopped by a step with `on_error: break`; to be resumed from that step.
    Incomplete,
    /// Parked by an `approval` or `delay` step: it holds no worker and is
    /// resumed by a decision or when its time comes.
    Waiting,
    /// A reviewer (or an approval's timeout) said no: not a failure.
    Rejected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Succeeded,
    Failed,
    /// `when` was false, or a dry run did not send the request.
    Skipped,
    Filtered,
    /// An `approval` or `delay` step that has not finished waiting.
    Waiting,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($ty::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($ty), " `{}`"), other)),
                }
            }
        }
    };
}

text_enum!(ExecutionStatus { Queued => "queued", Running => "running", Succeeded => "succeeded", Failed => "failed", Filtered => "filtered", Incomplete => "incomplete", Waiting => "waiting", Rejected => "rejected" });
text_enum!(StepStatus { Running => "running", Succeeded => "succeeded", Failed => "failed", Skipped => "skipped", Filtered => "filtered", Waiting => "waiting" });

impl ExecutionStatus {
    /// Succeeded, filtered and rejected executions did what they should.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded | ExecutionStatus::Filtered | ExecutionStatus::Rejected
        )
    }

    /// Whether the execution has ended for good (nothing will resume it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded
                | ExecutionStatus::Failed
                | ExecutionStatus::Filtered
                | ExecutionStatus::Rejected
        )
    }
}

/// The result of one step (one iteration of it, inside a loop).
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Where the step sits: `route_lead/enterprise/notify`, `qualify_each/qualify#3`.
    pub path: String,
    pub kind: &'static str,
    pub status: StepStatus,
    /// What the step sent, for steps with effects (an HTTP request, a data store key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    pub output: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// A one-line summary for traces, e.g. `POST https://... -> 201`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Which step failed and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExecutionError {
    pub step: String,
    pub message: String,
}

/// The whole story of one execution.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub execution_id: Uuid,
    pub scenario: String,
    /// The scenario version (content hash) this execution ran.
    pub version: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    #[serde(serialize_with = "records_as_map")]
    pub steps: Vec<StepRecord>,
    /// What a `respond` step produced, for a webhook caller.
    pub response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
    /// For a `waiting` execution: when it is to be woken (an approval's
    /// deadline, a delay's end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<DateTime<Utc>>,
    /// The request-sending steps a dry run did not send.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl StepRecord {
    /// The key in the document: the step id, with `#i` per enclosing loop
    /// iteration (the last segment of the path).
    pub fn key(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> StepRecord {
        self.detail = Some(detail.into());
        self
    }
}

impl Execution {
    pub fn step(&self, key: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.key() == key)
    }
}

fn records_as_map<S: Serializer>(records: &[StepRecord], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(records.len()))?;
    for record in records {
        map.serialize_entry(record.key(), record)?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Filtered,
            ExecutionStatus::Incomplete,
            ExecutionStatus::Waiting,
            ExecutionStatus::Rejected,
        ] {
            assert_eq!(s.as_str().parse::<ExecutionStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.to_string())
            );
        }
        assert!("done".parse::<StepStatus>().is_err());
    }
}
