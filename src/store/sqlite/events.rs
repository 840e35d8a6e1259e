//! The SQL of the review and report features: business events, decisions on
//! waiting executions, and the counts the report shows. Kept apart from the
//! store's core so that each stays readable; the statements are portable.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{from_micros, micros, upsert_step};
use crate::engine::{record_output, StepRecord};
use crate::report::{BusinessEvent, ExecutionCounts};
use crate::store::{Decided, StoreError};

/// Writes a business event unless `(event, key)` exists; returns the step's output.
pub(super) fn record(
    conn: &Connection,
    execution_id: &str,
    event: &str,
    key: &str,
    value: Option<f64>,
    data: &Value,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let scenario: String = conn
        .prepare_cached("SELECT scenario FROM executions WHERE id = ?1")?
        .query_row([execution_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let data = (!data.is_null()).then(|| data.to_string());
    let inserted = conn
        .prepare_cached(
            "INSERT INTO business_events (event, key, value, data, scenario, execution_id, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (event, key) DO NOTHING",
        )?
        .execute(params![event, key, value, data, scenario, execution_id, micros(now)])?;
    Ok(record_output(event, key, value, inserted == 1))
}

/// Business events recorded in `[since, until)`, oldest first.
pub(super) fn events(
    conn: &Connection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    scenario: Option<&str>,
) -> Result<Vec<BusinessEvent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT event, key, value, scenario, execution_id, recorded_at FROM business_events
         WHERE recorded_at >= ?1 AND recorded_at < ?2 AND (?3 IS NULL OR scenario = ?3)
         ORDER BY recorded_at",
    )?;
    let rows = statement.query_map(params![micros(since), micros(until), scenario], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<f64>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (event, key, value, scenario, execution_id, recorded_at) = row?;
        out.push(BusinessEvent {
            event,
            key,
            value,
            scenario,
            execution_id: Uuid::parse_str(&execution_id)
                .map_err(|e| StoreError::Corrupt(format!("event execution id: {e}")))?,
            recorded_at: from_micros(recorded_at),
        });
    }
    Ok(out)
}

/// Executions that need a person, among those started in `[since, until)`;
/// waiting reviews are counted whenever they started: they still wait.
pub(super) fn counts(
    conn: &Connection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    scenario: Option<&str>,
) -> Result<ExecutionCounts, StoreError> {
    let count = |sql: &str, with_period: bool| -> Result<u64, StoreError> {
        let n: i64 = if with_period {
            conn.prepare_cached(sql)?
                .query_row(params![micros(since), micros(until), scenario], |r| {
                    r.get(0)
                })?
        } else {
            conn.prepare_cached(sql)?
                .query_row(params![scenario], |r| r.get(0))?
        };
        Ok(n as u64)
    };
    Ok(ExecutionCounts {
        waiting_for_review: count(
            "SELECT COUNT(*) FROM executions e WHERE e.status = 'waiting' AND (?1 IS NULL OR e.scenario = ?1)
             AND EXISTS (SELECT 1 FROM steps s WHERE s.execution_id = e.id AND s.kind = 'approval' AND s.status = 'waiting')",
            false,
        )?,
        failed: count(
            "SELECT COUNT(*) FROM executions WHERE status = 'failed'
             AND started_at >= ?1 AND started_at < ?2 AND (?3 IS NULL OR scenario = ?3)",
            true,
        )?,
        incomplete: count(
            "SELECT COUNT(*) FROM executions WHERE status = 'incomplete' AND (?1 IS NULL OR scenario = ?1)",
            false,
        )?,
    })
}

/// Writes a reviewer's decision as the approval step's result, in the same
/// transaction that checks the execution still waits on that step: two
/// decisions never both count. The execution is queued to go on, due at once.
pub(super) fn decide(
    conn: &Connection,
    id: Uuid,
    decision: &StepRecord,
    now: DateTime<Utc>,
) -> Result<Decided, StoreError> {
    let id_text = id.to_string();
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM executions WHERE id = ?1")?
        .query_row([&id_text], |r| r.get(0))
        .optional()?;
    let Some(status) = status else {
        return Ok(Decided::NotFound);
    };
    if status != "waiting" {
        return Ok(Decided::NotWaiting(status));
    }
    let step: Option<(String, String)> = conn
        .prepare_cached("SELECT kind, status FROM steps WHERE execution_id = ?1 AND path = ?2")?
        .query_row(params![id_text, decision.path], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if step.as_ref().map(|(k, s)| (k.as_str(), s.as_str())) != Some(("approval", "waiting")) {
        return Ok(Decided::NotWaiting(status));
    }
    upsert_step(conn, &id_text, decision)?;
    conn.prepare_cached(
        "UPDATE executions SET status = 'queued', next_retry_at = ?2, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id_text, micros(now)])?;
    Ok(Decided::Queued)
}
