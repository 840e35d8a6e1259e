//! Rows to values: the same columns and encodings as the SQLite store (times
//! in microseconds, JSON as text, UUIDs as text).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::engine::StepRecord;
use crate::store::{ExecutionSummary, StoreError, StoredExecution};

pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(super) fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

pub(super) fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(super) fn parse_json(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(super) fn uuid(text: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("{what} `{text}`: {e}")))
}

pub(super) const SUMMARY_COLUMNS: &str = "id, scenario, version, status, attempt, started_at, finished_at, next_retry_at, error_step, error, owner, replay_of";

pub(super) fn summary(row: &Row) -> Result<ExecutionSummary, StoreError> {
    let id: String = row.get(0);
    let status: String = row.get(3);
    let replay_of: Option<String> = row.get(11);
    summary_rest(row, id, status, replay_of)
}

fn summary_rest(
    row: &Row,
    id: String,
    status: String,
    replay_of: Option<String>,
) -> Result<ExecutionSummary, StoreError> {
    Ok(ExecutionSummary {
        id: uuid(&id, "execution id")?,
        scenario: row.get(1),
        version: row.get(2),
        status: status.parse().map_err(StoreError::Corrupt)?,
        attempt: row.get::<_, i32>(4) as u32,
        started_at: from_micros(row.get(5)),
        finished_at: row.get::<_, Option<i64>>(6).map(from_micros),
        next_retry_at: row.get::<_, Option<i64>>(7).map(from_micros),
        error_step: row.get(8),
        error: row.get(9),
        owner: row.get(10),
        replay_of: replay_of.and_then(|r| Uuid::parse_str(&r).ok()),
        keys: Default::default(),
    })
}

pub(super) fn summaries(rows: &[Row]) -> Result<Vec<ExecutionSummary>, StoreError> {
    rows.iter().map(summary).collect()
}

pub(super) const STEP_COLUMNS: &str =
    "path, kind, status, attempts, input, output, error, detail, started_at, duration_ms";

/// A step from its columns starting at `o` (after the execution id, when
/// the query names it first).
fn step_at(row: &Row, o: usize) -> Result<StepRecord, StoreError> {
    let kind: String = row.get(o + 1);
    let status: String = row.get(o + 2);
    let input: Option<String> = row.get(o + 4);
    let output: String = row.get(o + 5);
    Ok(StepRecord {
        path: row.get(o),
        kind: crate::store::kind_name(&kind),
        status: status.parse().map_err(StoreError::Corrupt)?,
        input: input.map(|i| parse_json(&i, "a step input")).transpose()?,
        output: parse_json(&output, "a step output")?,
        error: row.get(o + 6),
        detail: row.get(o + 7),
        attempts: row.get::<_, i32>(o + 3) as u32,
        started_at: from_micros(row.get(o + 8)),
        duration_ms: row.get::<_, i64>(o + 9) as u64,
    })
}

/// An execution with its trigger, vars and steps, from its row and its steps' rows.
pub(super) fn stored(execution: &Row, steps: &[Row]) -> Result<StoredExecution, StoreError> {
    stored_with_offset(execution, steps, 0)
}

/// As [`stored`], for step rows whose columns start at `offset`.
pub(super) fn stored_with_offset(
    execution: &Row,
    steps: &[Row],
    offset: usize,
) -> Result<StoredExecution, StoreError> {
    let summary = summary(execution)?;
    let trigger: String = execution.get(12);
    let vars: String = execution.get(13);
    let vars = match parse_json(&vars, "vars")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(StoredExecution {
        summary,
        trigger: parse_json(&trigger, "a trigger")?,
        vars,
        steps: steps
            .iter()
            .map(|r| step_at(r, offset))
            .collect::<Result<_, _>>()?,
    })
}
