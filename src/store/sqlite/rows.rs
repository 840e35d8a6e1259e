//! Rows to values and back: times, JSON columns, execution summaries, the
//! step journal's upsert, and dedupe keys. Shared by the store's methods.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::{ExecutionStatus, StepRecord};
use crate::store::{ExecutionSummary, NewExecution, StoreError, StoredExecution};

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

use crate::store::kind_name;

pub(super) const SUMMARY_COLUMNS: &str = "id, scenario, version, status, attempt, started_at, finished_at, next_retry_at, error_step, error, owner, replay_of";

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ExecutionSummary, String>> {
    let id: String = row.get(0)?;
    let status: String = row.get(3)?;
    let replay_of: Option<String> = row.get(11)?;
    Ok((|| {
        Ok(ExecutionSummary {
            id: Uuid::parse_str(&id).map_err(|e| format!("execution id `{id}`: {e}"))?,
            scenario: row.get(1).map_err(|e| e.to_string())?,
            version: row.get(2).map_err(|e| e.to_string())?,
            status: status.parse()?,
            attempt: row.get::<_, i64>(4).map_err(|e| e.to_string())? as u32,
            started_at: from_micros(row.get(5).map_err(|e| e.to_string())?),
            finished_at: row
                .get::<_, Option<i64>>(6)
                .map_err(|e| e.to_string())?
                .map(from_micros),
            next_retry_at: row
                .get::<_, Option<i64>>(7)
                .map_err(|e| e.to_string())?
                .map(from_micros),
            error_step: row.get(8).map_err(|e| e.to_string())?,
            error: row.get(9).map_err(|e| e.to_string())?,
            owner: row.get(10).map_err(|e| e.to_string())?,
            replay_of: replay_of.and_then(|r| Uuid::parse_str(&r).ok()),
            keys: Default::default(),
        })
    })())
}

pub(super) fn summaries(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<ExecutionSummary>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, summary_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.map_err(StoreError::Corrupt)?);
    }
    Ok(out)
}

pub(super) fn upsert_step(
    conn: &Connection,
    execution_id: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (execution_id, path) DO UPDATE SET
           step_key = excluded.step_key, kind = excluded.kind, status = excluded.status,
           attempts = excluded.attempts, input = excluded.input, output = excluded.output,
           error = excluded.error, detail = excluded.detail, started_at = excluded.started_at,
           duration_ms = excluded.duration_ms",
    )?
    .execute(params![
        execution_id,
        record.path,
        record.key(),
        record.kind,
        record.status.as_str(),
        record.attempts,
        record.input.as_ref().map(json_text),
        json_text(&record.output),
        record.error,
        record.detail,
        micros(record.started_at),
        record.duration_ms as i64,
    ])?;
    Ok(())
}

pub(super) fn insert_execution(
    conn: &Connection,
    new: &NewExecution,
    status: ExecutionStatus,
    concurrency_key: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO executions (id, scenario, version, status, trigger_doc, vars, attempt, started_at, updated_at, owner, replay_of, concurrency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        new.id.to_string(),
        new.scenario,
        new.version,
        status.as_str(),
        json_text(&new.trigger),
        json_text(&Value::Object(new.vars.clone())),
        micros(new.started_at),
        micros(Utc::now()),
        match status {
            ExecutionStatus::Queued => None,
            _ => Some(new.owner.as_str()),
        },
        new.replay_of.map(|r| r.to_string()),
        concurrency_key,
    ])?;
    super::browse::insert_keys(conn, new)
}

/// The execution's stored trigger, vars and steps, with its summary.
pub(super) fn load_execution(
    conn: &Connection,
    id: Uuid,
) -> Result<Option<StoredExecution>, StoreError> {
    let id_text = id.to_string();
    let found = summaries(
        conn,
        &format!("SELECT {SUMMARY_COLUMNS} FROM executions WHERE id = ?1"),
        &[&id_text],
    )?;
    let Some(mut summary) = found.into_iter().next() else {
        return Ok(None);
    };
    super::browse::with_keys(conn, std::slice::from_mut(&mut summary))?;
    let (trigger, vars): (String, String) = conn
        .prepare_cached("SELECT trigger_doc, vars FROM executions WHERE id = ?1")?
        .query_row([&id_text], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let trigger = parse_json(&trigger, "a trigger")?;
    let vars = match parse_json(&vars, "vars")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut statement = conn.prepare_cached(
        "SELECT path, kind, status, attempts, input, output, error, detail, started_at, duration_ms
         FROM steps WHERE execution_id = ?1 ORDER BY started_at, seq",
    )?;
    let rows = statement.query_map([&id_text], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, i64>(9)?,
        ))
    })?;
    let mut steps = Vec::new();
    for row in rows {
        let (path, kind, status, attempts, input, output, error, detail, started, duration) = row?;
        steps.push(StepRecord {
            path,
            kind: kind_name(&kind),
            status: status.parse().map_err(StoreError::Corrupt)?,
            input: input.map(|i| parse_json(&i, "a step input")).transpose()?,
            output: parse_json(&output, "a step output")?,
            error,
            attempts: attempts as u32,
            started_at: from_micros(started),
            duration_ms: duration as u64,
            detail,
        });
    }
    Ok(Some(StoredExecution {
        summary,
        trigger,
        vars,
        steps,
    }))
}

/// Takes a dedupe key for `execution_id`, or names the execution that holds it.
pub(super) fn take_dedupe_key(
    conn: &Connection,
    scenario: &str,
    dedupe: &crate::store::DedupeKey,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let existing: Option<String> = conn
        .prepare_cached(
            "SELECT execution_id FROM dedupe_keys WHERE scenario = ?1 AND key = ?2 AND expires_at > ?3",
        )?
        .query_row(params![scenario, dedupe.key, micros(now)], |r| r.get(0))
        .optional()?;
    if let Some(existing) = existing {
        return Ok(Uuid::parse_str(&existing).ok());
    }
    conn.prepare_cached(
        "INSERT INTO dedupe_keys (scenario, key, execution_id, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scenario, key) DO UPDATE SET execution_id = excluded.execution_id, expires_at = excluded.expires_at",
    )?
    .execute(params![scenario, dedupe.key, execution_id.to_string(), micros(dedupe.expires_at)])?;
    Ok(None)
}
