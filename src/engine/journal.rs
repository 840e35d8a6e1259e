//! The engine's window to the outside: every step's result passes through a
//! [`Journal`] as soon as it is known, and the engine waits for it before the
//! next step starts.
//!
//! The CLI's live trace is a journal; the durable store is one too, which is
//! what lets an execution resume after a crash without repeating finished steps.
//! A journal that cannot keep a record stops the execution at once: going on
//! would run side effects nobody could account for after a crash.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::events::{Emitted, EventWait, NewEvent, ReceivedEvent};
use super::execution::{Execution, StepRecord};
use super::redact::Redactor;

/// Why a journal could not keep what it was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// What a new execution starts from, committed before its first step.
pub struct ExecutionStart<'a> {
    pub execution_id: Uuid,
    pub scenario: &'a str,
    pub version: &'a str,
    /// The `--var` overrides, needed to resume the execution identically.
    pub vars: &'a Map<String, Value>,
    pub started_at: DateTime<Utc>,
    /// `settings.keys`, evaluated over the trigger, secrets masked.
    pub keys: Vec<(String, String)>,
    pub(super) trigger: &'a Value,
    pub(super) redactor: &'a Redactor,
}

impl ExecutionStart<'_> {
    /// `{ body, headers, query, received_at }` with secrets masked. Built on
    /// request, so journals that keep no history pay nothing for it.
    pub fn trigger(&self) -> Value {
        let mut trigger = self.trigger.clone();
        self.redactor.value(&mut trigger);
        trigger
    }
}

/// One operation of a `store` step on a named data store.
#[derive(Debug, Clone, PartialEq)]
pub enum DataOp {
    Get,
    Put {
        value: Value,
        ttl: Option<std::time::Duration>,
    },
    Delete,
    /// Adds `by` to the number under the key (missing counts as 0).
    Increment {
        by: f64,
        ttl: Option<std::time::Duration>,
    },
    /// Writes a business event (`DataRequest::store` is the event name, `key`
    /// its key) unless `(event, key)` exists: output `{ recorded: bool, .. }`.
    Record {
        value: Option<f64>,
        data: Value,
    },
}

/// The result a store keeps for a data operation's step, in the same
/// transaction as the operation (every backend writes the same record).
pub fn data_step_record(
    step_path: &str,
    request: &DataRequest,
    output: Value,
    at: DateTime<Utc>,
) -> StepRecord {
    StepRecord {
        path: step_path.to_owned(),
        kind: match request.op {
            DataOp::Record { .. } => "record",
            _ => "store",
        },
        status: super::execution::StepStatus::Succeeded,
        input: None,
        output,
        error: None,
        attempts: 1,
        started_at: at,
        duration_ms: 0,
        detail: None,
    }
}

/// A `store` step's request: the operation, and the key it acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRequest {
    pub store: String,
    pub key: String,
    pub op: DataOp,
}

#[async_trait]
pub trait Journal: Send + Sync {
    /// Called once for a new execution (not when one is resumed).
    async fn execution_started(&self, _start: &ExecutionStart<'_>) -> Result<(), JournalError> {
        Ok(())
    }

    async fn step_finished(&self, _record: &StepRecord) -> Result<(), JournalError> {
        Ok(())
    }

    /// Called before a step with effects outside the engine starts (an HTTP
    /// request, a data store write, an event, a wait): a journal that keeps
    /// results in batches makes everything before it durable now, so no
    /// effect ever depends on a result that a crash could lose.
    async fn before_effect(&self) -> Result<(), JournalError> {
        Ok(())
    }

    /// Keeps the state of a step that has not finished (a wait's fixed
    /// deadline), for the durable side only: a trace shows results, and this
    /// is not one yet.
    async fn step_progress(&self, _record: &StepRecord) -> Result<(), JournalError> {
        Ok(())
    }

    async fn execution_finished(&self, _execution: &Execution) -> Result<(), JournalError> {
        Ok(())
    }

    /// Runs a `store` step's operation. It goes through the journal so that a
    /// durable store can commit the operation together with the step's result:
    /// an `increment` is then never counted twice, whatever crashes in between.
    async fn data(
        &self,
        _execution_id: Uuid,
        _step_path: &str,
        _request: &DataRequest,
    ) -> Result<Value, JournalError> {
        Err(JournalError(
            "no data store is available to this execution".to_owned(),
        ))
    }

    /// Commits a correlated event and wakes every execution waiting for it,
    /// in one transaction (an `emit` step).
    async fn emit(&self, _event: &NewEvent) -> Result<Emitted, JournalError> {
        Err(JournalError(
            "events need a store: this execution has none".to_owned(),
        ))
    }

    /// The events a `wait_for` may take, oldest first; when there are none,
    /// the wait is registered in the same transaction (see [`EventWait`]).
    async fn await_event(
        &self,
        _execution_id: Uuid,
        _wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, JournalError> {
        Err(JournalError(
            "waiting for events needs a store: this execution has none".to_owned(),
        ))
    }
}

/// Records nothing and keeps no data: for benchmarks.
pub struct NoJournal;

#[async_trait]
impl Journal for NoJournal {}

/// Keeps every record, and the data stores, in memory.
#[derive(Default)]
pub struct MemoryJournal {
    pub records: Mutex<Vec<StepRecord>>,
    data: Mutex<HashMap<(String, String), Value>>,
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn step_finished(&self, record: &StepRecord) -> Result<(), JournalError> {
        self.records
            .lock()
            .expect("journal lock")
            .push(record.clone());
        Ok(())
    }

    async fn data(
        &self,
        _execution_id: Uuid,
        _step_path: &str,
        request: &DataRequest,
    ) -> Result<Value, JournalError> {
        let mut data = self.data.lock().expect("data lock");
        let key = (request.store.clone(), request.key.clone());
        apply_in_memory(&mut data, key, &request.op)
    }
}

/// The semantics of data operations, shared by every in-memory keeper
/// (time to live is not enforced in memory: such stores do not outlive the process).
pub fn apply_in_memory(
    data: &mut HashMap<(String, String), Value>,
    key: (String, String),
    op: &DataOp,
) -> Result<Value, JournalError> {
    Ok(match op {
        DataOp::Get => data.get(&key).cloned().unwrap_or(Value::Null),
        DataOp::Put { value, .. } => {
            data.insert(key, value.clone());
            value.clone()
        }
        DataOp::Delete => data.remove(&key).unwrap_or(Value::Null),
        DataOp::Increment { by, .. } => {
            let next = increment(data.get(&key), *by, &key.1)?;
            data.insert(key, next.clone());
            next
        }
        DataOp::Record { value, .. } => {
            let event = key.0.clone();
            let slot = (format!("\u{0}event:{event}"), key.1.clone());
            let recorded = !data.contains_key(&slot);
            if recorded {
                data.insert(slot, Value::Bool(true));
            }
            record_output(&event, &key.1, *value, recorded)
        }
    })
}

/// What a `record` step outputs: whether this execution wrote the event, or
/// found it already written (by a retry, a replay or another execution).
pub fn record_output(event: &str, key: &str, value: Option<f64>, recorded: bool) -> Value {
    serde_json::json!({ "event": event, "key": key, "value": value, "recorded": recorded })
}

/// The new value of a counter, or why the stored value cannot be one.
pub fn increment(current: Option<&Value>, by: f64, key: &str) -> Result<Value, JournalError> {
    let base = match current {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(other) => {
            return Err(JournalError(format!(
                "cannot increment key `{key}`: it holds {other}, not a number"
            )))
        }
    };
    let sum = base + by;
    Ok(if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
        Value::from(sum as i64)
    } else {
        serde_json::Number::from_f64(sum)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    })
}

/// Sends every call to two journals in turn: the live trace and the store.
pub struct Tee<'a>(pub &'a dyn Journal, pub &'a dyn Journal);

#[async_trait]
impl Journal for Tee<'_> {
    async fn execution_started(&self, start: &ExecutionStart<'_>) -> Result<(), JournalError> {
        self.0.execution_started(start).await?;
        self.1.execution_started(start).await
    }

    async fn step_finished(&self, record: &StepRecord) -> Result<(), JournalError> {
        // The durable side first: the trace shows only what was handed to
        // the store (kept at the latest before the next effect).
        self.1.step_finished(record).await?;
        self.0.step_finished(record).await
    }

    async fn step_progress(&self, record: &StepRecord) -> Result<(), JournalError> {
        self.1.step_progress(record).await
    }

    async fn before_effect(&self) -> Result<(), JournalError> {
        self.1.before_effect().await
    }

    async fn execution_finished(&self, execution: &Execution) -> Result<(), JournalError> {
        self.1.execution_finished(execution).await?;
        self.0.execution_finished(execution).await
    }

    async fn data(
        &self,
        execution_id: Uuid,
        step_path: &str,
        request: &DataRequest,
    ) -> Result<Value, JournalError> {
        self.1.data(execution_id, step_path, request).await
    }

    async fn emit(&self, event: &NewEvent) -> Result<Emitted, JournalError> {
        self.1.emit(event).await
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, JournalError> {
        self.1.await_event(execution_id, wait).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_count_from_zero_and_refuse_text() {
        assert_eq!(increment(None, 1.0, "k"), Ok(Value::from(1)));
        assert_eq!(
            increment(Some(&Value::from(2.5)), 1.0, "k"),
            Ok(Value::from(3.5))
        );
        let err = increment(Some(&Value::from("x")), 1.0, "k").unwrap_err();
        assert!(err.0.contains("not a number"), "{err}");
    }
}
