//! The statements the `Store` methods and the shared-commit writer
//! (`writer.rs`) have in common: a step's upsert, an execution's insert and
//! load, the owner's fence and heartbeat, a dedupe key, and the fenced step
//! record, end and enqueue that each writer job runs.
//!
//! Each runs on a transaction (or a client) its caller passes and never
//! commits, so that one transaction can hold several of them: one method's,
//! or a whole batch of the writer's.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::db;
use super::rows::{json_text, micros, stored, uuid, STEP_COLUMNS, SUMMARY_COLUMNS};
use crate::engine::{ExecutionStatus, StepRecord};
use crate::store::{
    Admission, DedupeKey, Enqueued, Finish, NewExecution, StoreError, StoredExecution,
};

pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The columns of a step's row, and what a re-run of the step replaces.
const STEP_INSERT: &str = "INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)";
const STEP_CONFLICT: &str = "ON CONFLICT (execution_id, path) DO UPDATE SET
   step_key = excluded.step_key, kind = excluded.kind, status = excluded.status,
   attempts = excluded.attempts, input = excluded.input, output = excluded.output,
   error = excluded.error, detail = excluded.detail, started_at = excluded.started_at,
   duration_ms = excluded.duration_ms";

/// A step record's column values, owned, for `$1` to `$12` of [`STEP_INSERT`].
struct StepRow<'a> {
    id: &'a str,
    record: &'a StepRecord,
    key: &'a str,
    status: &'static str,
    attempts: i32,
    input: Option<String>,
    output: String,
    started_at: i64,
    duration_ms: i64,
}

impl<'a> StepRow<'a> {
    fn new(id: &'a str, record: &'a StepRecord) -> StepRow<'a> {
        StepRow {
            id,
            record,
            key: record.key(),
            status: record.status.as_str(),
            attempts: record.attempts as i32,
            input: record.input.as_ref().map(json_text),
            output: json_text(&record.output),
            started_at: micros(record.started_at),
            duration_ms: record.duration_ms as i64,
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.record.path,
            &self.key,
            &self.record.kind,
            &self.status,
            &self.attempts,
            &self.input,
            &self.output,
            &self.record.error,
            &self.record.detail,
            &self.started_at,
            &self.duration_ms,
        ]
    }
}

pub(super) async fn upsert_step(
    tx: &Tx<'_>,
    execution_id: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(&format!(
            "{STEP_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) {STEP_CONFLICT}"
        ))
        .await
        .map_err(db)?;
    let row = StepRow::new(execution_id, record);
    tx.execute(&statement, &row.params()).await.map_err(db)?;
    Ok(())
}

pub(super) async fn insert_execution(
    tx: &Tx<'_>,
    new: &NewExecution,
    status: ExecutionStatus,
    concurrency_key: Option<&str>,
) -> Result<(), StoreError> {
    let owner = match status {
        ExecutionStatus::Queued => None,
        _ => Some(new.owner.as_str()),
    };
    let statement = tx
        .prepare_cached(
            "INSERT INTO executions (id, scenario, version, status, trigger_doc, vars, attempt, started_at, updated_at, owner, replay_of, concurrency_key)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[
            &new.id.to_string(),
            &new.scenario,
            &new.version,
            &status.as_str(),
            &json_text(&new.trigger),
            &json_text(&Value::Object(new.vars.clone())),
            &micros(new.started_at),
            &micros(Utc::now()),
            &owner,
            &new.replay_of.map(|r| r.to_string()),
            &concurrency_key,
        ],
    )
    .await
    .map_err(db)?;
    super::browse::insert_keys(tx, new).await
}

pub(super) async fn load(
    client: &impl deadpool_postgres::GenericClient,
    id: &str,
) -> Result<Option<StoredExecution>, StoreError> {
    let Some(row) = client
        .query_opt(
            &format!("SELECT {SUMMARY_COLUMNS}, trigger_doc, vars FROM executions WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let steps = client
        .query(
            &format!(
                "SELECT {STEP_COLUMNS} FROM steps WHERE execution_id = $1 ORDER BY started_at, seq"
            ),
            &[&id],
        )
        .await
        .map_err(db)?;
    stored(&row, &steps).map(Some)
}

/// Locks the execution's row and checks that `owner` still holds it: a
/// process whose lease expired (paused, cut off) and whose execution another
/// took over writes nothing more for it. Zero rows means the lease is lost;
/// the caller drops the execution, it never retries.
pub(super) async fn fence(
    tx: &Tx<'_>,
    id: &str,
    owner: &str,
    execution_id: Uuid,
) -> Result<(), StoreError> {
    let held = tx
        .query_opt(
            "SELECT 1 FROM executions WHERE id = $1 AND owner = $2 FOR UPDATE",
            &[&id, &owner],
        )
        .await
        .map_err(db)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(execution_id)),
    }
}

pub(super) async fn beat(tx: &Tx<'_>, owner: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO daemons (owner, heartbeat_at) VALUES ($1, $2)
             ON CONFLICT (owner) DO UPDATE SET heartbeat_at = GREATEST(daemons.heartbeat_at, excluded.heartbeat_at)",
        )
        .await
        .map_err(db)?;
    tx.execute(&statement, &[&owner, &micros(now)])
        .await
        .map_err(db)?;
    Ok(())
}

/// Takes a dedupe key for `execution_id` in one atomic statement (an expired
/// key is taken over), or names the execution that holds it.
pub(super) async fn take_dedupe_key(
    tx: &Tx<'_>,
    scenario: &str,
    dedupe: &DedupeKey,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let taken = tx
        .query_opt(
            "INSERT INTO dedupe_keys (scenario, key, execution_id, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scenario, key) DO UPDATE SET execution_id = excluded.execution_id, expires_at = excluded.expires_at
             WHERE dedupe_keys.expires_at <= $5
             RETURNING execution_id",
            &[&scenario, &dedupe.key, &execution_id.to_string(), &micros(dedupe.expires_at), &micros(now)],
        )
        .await
        .map_err(db)?;
    if taken.is_some() {
        return Ok(None);
    }
    let holder: String = tx
        .query_one(
            "SELECT execution_id FROM dedupe_keys WHERE scenario = $1 AND key = $2",
            &[&scenario, &dedupe.key],
        )
        .await
        .map_err(db)?
        .get(0);
    Ok(Uuid::parse_str(&holder).ok())
}

/// Several executions with their steps in two queries, in the order of `ids`.
pub(super) async fn load_many(
    tx: &Tx<'_>,
    ids: &[String],
) -> Result<Vec<StoredExecution>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, trigger_doc, vars FROM executions WHERE id = ANY($1)"
            ),
            &[&ids],
        )
        .await
        .map_err(db)?;
    let steps = tx
        .query(
            &format!(
                "SELECT execution_id, {STEP_COLUMNS} FROM steps WHERE execution_id = ANY($1) ORDER BY started_at, seq"
            ),
            &[&ids],
        )
        .await
        .map_err(db)?;
    let mut by_execution: std::collections::HashMap<String, Vec<tokio_postgres::Row>> =
        std::collections::HashMap::new();
    for step in steps {
        by_execution.entry(step.get(0)).or_default().push(step);
    }
    let mut found: std::collections::HashMap<String, StoredExecution> =
        std::collections::HashMap::new();
    for row in rows {
        let id: String = row.get(0);
        let steps = by_execution.remove(&id).unwrap_or_default();
        found.insert(id, super::rows::stored_with_offset(&row, &steps, 1)?);
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// A step's record, fenced on the owner, in the writer's shared transaction:
/// the execution's row is share-locked for the insert, so a take-over either
/// happened before (nothing is written) or waits for it.
pub(super) async fn step_in(
    tx: &Tx<'_>,
    id: &str,
    owner: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(&format!(
            "{STEP_INSERT}
             SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT, $6::INTEGER, $7::TEXT, $8::TEXT, $9::TEXT, $10::TEXT, $11::BIGINT, $12::BIGINT
             WHERE EXISTS (SELECT 1 FROM executions WHERE id = $1 AND owner = $13 FOR SHARE)
             {STEP_CONFLICT}"
        ))
        .await
        .map_err(db)?;
    let row = StepRow::new(id, record);
    let mut params = row.params();
    params.push(&owner);
    let written = tx.execute(&statement, &params).await.map_err(db)?;
    match written {
        0 => Err(lease_lost(id)),
        _ => Ok(()),
    }
}

fn lease_lost(id: &str) -> StoreError {
    match Uuid::parse_str(id) {
        Ok(id) => StoreError::LeaseLost(id),
        Err(_) => StoreError::Corrupt(format!("execution id `{id}`")),
    }
}

/// An execution's end (not a park), fenced on the owner, with the end of any
/// wait it registered: one statement.
pub(super) async fn finish_in(
    tx: &Tx<'_>,
    id: &str,
    owner: &str,
    finish: &Finish,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "WITH done AS (
               UPDATE executions SET status = $2, finished_at = $3, updated_at = $3, next_retry_at = $4,
                 error_step = $5, error = $6, owner = NULL
               WHERE id = $1 AND (owner = $7 OR owner IS NULL) RETURNING id),
             waits AS (DELETE FROM event_waits WHERE execution_id IN (SELECT id FROM done))
             SELECT COUNT(*) FROM done",
        )
        .await
        .map_err(db)?;
    let (error_step, error) = match &finish.error {
        Some(e) => (Some(e.step.as_str()), Some(e.message.as_str())),
        None => (None, None),
    };
    let done: i64 = tx
        .query_one(
            &statement,
            &[
                &id,
                &finish.status.as_str(),
                &micros(finish.finished_at),
                &finish.next_retry_at.map(micros),
                &error_step,
                &error,
                &owner,
            ],
        )
        .await
        .map_err(db)?
        .get(0);
    match done {
        0 => Err(lease_lost(id)),
        _ => Ok(()),
    }
}

/// A webhook's or a tick's event, in the writer's shared transaction.
pub(super) async fn enqueue_in(
    tx: &Tx<'_>,
    new: &NewExecution,
    admission: &Admission,
    now: DateTime<Utc>,
) -> Result<Enqueued, StoreError> {
    if let Some(dedupe) = &admission.dedupe {
        if let Some(existing) = take_dedupe_key(tx, &new.scenario, dedupe, new.id, now).await? {
            return Ok(Enqueued::Duplicate(existing));
        }
    }
    if let Some(tick) = admission.tick {
        let holder = tx
            .query_opt(
                "INSERT INTO schedule_ticks (scenario, scheduled_at, execution_id) VALUES ($1, $2, $3)
                 ON CONFLICT (scenario, scheduled_at) DO NOTHING RETURNING execution_id",
                &[&new.scenario, &micros(tick), &new.id.to_string()],
            )
            .await
            .map_err(db)?;
        if holder.is_none() {
            let holder: String = tx
                .query_one(
                    "SELECT execution_id FROM schedule_ticks WHERE scenario = $1 AND scheduled_at = $2",
                    &[&new.scenario, &micros(tick)],
                )
                .await
                .map_err(db)?
                .get(0);
            return Ok(Enqueued::Duplicate(uuid(&holder, "execution id")?));
        }
    }
    let status = match admission.start {
        true => ExecutionStatus::Running,
        false => ExecutionStatus::Queued,
    };
    insert_execution(tx, new, status, admission.concurrency_key.as_deref()).await?;
    Ok(Enqueued::Accepted(new.id))
}
