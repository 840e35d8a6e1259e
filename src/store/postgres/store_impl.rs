//! The `Store` trait on PostgreSQL: each method is one transaction (or one
//! atomic statement) on a pooled connection.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::rows::{
    from_micros, json_text, micros, parse_json, stored, summaries, uuid, STEP_COLUMNS,
    SUMMARY_COLUMNS,
};
use super::writer::Job;
use super::{db, PgStore};
use crate::engine::{DataOp, DataRequest, ExecutionStatus, StepRecord, StepStatus};
use crate::store::{
    Admission, Decided, DedupeKey, Emitted, Enqueued, EventFilter, EventWait, ExecutionFilter,
    ExecutionSummary, Finish, NewEvent, NewExecution, PruneRule, ReceivedEvent, Store, StoreError,
    StoredEvent, StoredExecution, WaitingExecution,
};

/// The advisory lock that serialises claims under concurrency limits across
/// daemons: counting the running executions and taking new ones must not
/// interleave, or two daemons could both fill the last slot.
const CLAIM_LOCK: i64 = 0x5343_4E52_0002;

pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

pub(super) async fn upsert_step(
    tx: &Tx<'_>,
    execution_id: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (execution_id, path) DO UPDATE SET
               step_key = excluded.step_key, kind = excluded.kind, status = excluded.status,
               attempts = excluded.attempts, input = excluded.input, output = excluded.output,
               error = excluded.error, detail = excluded.detail, started_at = excluded.started_at,
               duration_ms = excluded.duration_ms",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &statement,
        &[
            &execution_id,
            &record.path,
            &record.key(),
            &record.kind,
            &record.status.as_str(),
            &(record.attempts as i32),
            &record.input.as_ref().map(json_text),
            &json_text(&record.output),
            &record.error,
            &record.detail,
            &micros(record.started_at),
            &(record.duration_ms as i64),
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

async fn insert_execution(
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
    Ok(())
}

async fn load(
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
async fn fence(tx: &Tx<'_>, id: &str, owner: &str, execution_id: Uuid) -> Result<(), StoreError> {
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

async fn beat(tx: &Tx<'_>, owner: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
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
async fn load_many(tx: &Tx<'_>, ids: &[String]) -> Result<Vec<StoredExecution>, StoreError> {
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
        .prepare_cached(
            "INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
             SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT, $6::INTEGER, $7::TEXT, $8::TEXT, $9::TEXT, $10::TEXT, $11::BIGINT, $12::BIGINT
             WHERE EXISTS (SELECT 1 FROM executions WHERE id = $1 AND owner = $13 FOR SHARE)
             ON CONFLICT (execution_id, path) DO UPDATE SET
               step_key = excluded.step_key, kind = excluded.kind, status = excluded.status,
               attempts = excluded.attempts, input = excluded.input, output = excluded.output,
               error = excluded.error, detail = excluded.detail, started_at = excluded.started_at,
               duration_ms = excluded.duration_ms",
        )
        .await
        .map_err(db)?;
    let written = tx
        .execute(
            &statement,
            &[
                &id,
                &record.path,
                &record.key(),
                &record.kind,
                &record.status.as_str(),
                &(record.attempts as i32),
                &record.input.as_ref().map(json_text),
                &json_text(&record.output),
                &record.error,
                &record.detail,
                &micros(record.started_at),
                &(record.duration_ms as i64),
                &owner,
            ],
        )
        .await
        .map_err(db)?;
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
    insert_execution(
        tx,
        new,
        ExecutionStatus::Queued,
        admission.concurrency_key.as_deref(),
    )
    .await?;
    Ok(Enqueued::Accepted(new.id))
}

#[async_trait]
impl Store for PgStore {
    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO scenario_versions (scenario, version, source, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (scenario, version) DO NOTHING",
                &[&scenario, &version, &source, &micros(Utc::now())],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT source FROM scenario_versions WHERE scenario = $1 AND version = $2",
                &[&scenario, &version],
            )
            .await
            .map_err(db)?
            .map(|r| r.get(0)))
    }

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        insert_execution(&tx, &new, ExecutionStatus::Running, None).await?;
        tx.commit().await.map_err(db)
    }

    async fn record_step(
        &self,
        execution_id: Uuid,
        owner: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        let id = execution_id.to_string();
        if record.kind != "wait_for" {
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.writer().await?.send(Job::Step {
                id,
                owner: owner.to_owned(),
                records: vec![record.clone()],
                reply,
            })?;
            return answer.await.map_err(|_| StoreError::Closed)?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        fence(&tx, &id, owner, execution_id).await?;
        upsert_step(&tx, &id, record).await?;
        if record.status != StepStatus::Waiting {
            tx.execute(
                "DELETE FROM event_waits WHERE execution_id = $1 AND path = $2",
                &[&id, &record.path],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn finish_execution(
        &self,
        execution_id: Uuid,
        owner: &str,
        finish: Finish,
    ) -> Result<(), StoreError> {
        let (error_step, error) = match finish.error {
            Some(e) => (Some(e.step), Some(e.message)),
            None => (None, None),
        };
        let id = execution_id.to_string();
        if finish.status != ExecutionStatus::Waiting {
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.writer().await?.send(Job::Finish {
                id,
                owner: owner.to_owned(),
                records: Vec::new(),
                finish: Finish {
                    status: finish.status,
                    error: error_step
                        .zip(error)
                        .map(|(step, message)| crate::engine::ExecutionError { step, message }),
                    finished_at: finish.finished_at,
                    next_retry_at: finish.next_retry_at,
                },
                reply,
            })?;
            return answer.await.map_err(|_| StoreError::Closed)?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Only the owner ends an execution (a queued one has none yet): a
        // daemon that lost its lease never frees a slot the new owner holds.
        let changed = tx
            .execute(
                "UPDATE executions SET status = $2, finished_at = $3, updated_at = $3, next_retry_at = $4,
                   error_step = $5, error = $6, owner = NULL
                 WHERE id = $1 AND (owner = $7 OR owner IS NULL)",
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
            .map_err(db)?;
        if changed == 0 {
            return Err(StoreError::LeaseLost(execution_id));
        }
        super::events::settle_waits(
            &tx,
            &id,
            finish.status == ExecutionStatus::Waiting,
            finish.finished_at,
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn record_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        if records.iter().any(|r| r.kind == "wait_for") {
            for record in records {
                self.record_step(execution_id, owner, record).await?;
            }
            return Ok(());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer().await?.send(Job::Step {
            id: execution_id.to_string(),
            owner: owner.to_owned(),
            records: records.to_vec(),
            reply,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn finish_with_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
        finish: Finish,
    ) -> Result<(), StoreError> {
        if finish.status == ExecutionStatus::Waiting || records.iter().any(|r| r.kind == "wait_for")
        {
            self.record_steps(execution_id, owner, records).await?;
            return self.finish_execution(execution_id, owner, finish).await;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer().await?.send(Job::Finish {
            id: execution_id.to_string(),
            owner: owner.to_owned(),
            records: records.to_vec(),
            finish,
            reply,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn data(
        &self,
        execution_id: Uuid,
        owner: &str,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        fence(&tx, &execution_id.to_string(), owner, execution_id).await?;
        let now_us = micros(now);
        // Two executions on one key (a counter) take turns.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))",
            &[&request.store, &request.key],
        )
        .await
        .map_err(db)?;
        let current = tx
            .query_opt(
                "SELECT value FROM data_entries WHERE store = $1 AND key = $2
                 AND (expires_at IS NULL OR expires_at > $3)",
                &[&request.store, &request.key, &now_us],
            )
            .await
            .map_err(db)?
            .map(|r| parse_json(&r.get::<_, String>(0), "a data store value"))
            .transpose()?;
        let write = |value: Value, ttl: Option<std::time::Duration>| {
            let expires = ttl.map(|t| now_us + t.as_micros() as i64);
            let tx = &tx;
            let request = &request;
            async move {
                tx.execute(
                    "INSERT INTO data_entries (store, key, value, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                    &[&request.store, &request.key, &json_text(&value), &now_us, &expires],
                )
                .await
                .map_err(db)
                .map(|_| value)
            }
        };
        let output = match &request.op {
            DataOp::Get => current.unwrap_or(Value::Null),
            DataOp::Put { value, ttl } => write(value.clone(), *ttl).await?,
            DataOp::Delete => {
                tx.execute(
                    "DELETE FROM data_entries WHERE store = $1 AND key = $2",
                    &[&request.store, &request.key],
                )
                .await
                .map_err(db)?;
                current.unwrap_or(Value::Null)
            }
            DataOp::Increment { by, ttl } => {
                let next = crate::engine::increment(current.as_ref(), *by, &request.key)
                    .map_err(|e| StoreError::Database(e.0))?;
                write(next, *ttl).await?
            }
            DataOp::Record { value, data } => {
                super::events::record(
                    &tx,
                    &execution_id.to_string(),
                    &request.store,
                    &request.key,
                    *value,
                    data,
                    now,
                )
                .await?
            }
        };
        let record = StepRecord {
            path: step_path.to_owned(),
            kind: match request.op {
                DataOp::Record { .. } => "record",
                _ => "store",
            },
            status: StepStatus::Succeeded,
            input: None,
            output: output.clone(),
            error: None,
            attempts: 1,
            started_at: now,
            duration_ms: 0,
            detail: None,
        };
        upsert_step(&tx, &execution_id.to_string(), &record).await?;
        tx.commit().await.map_err(db)?;
        Ok(output)
    }

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
        let client = self.client().await?;
        load(&client, &id.to_string()).await
    }

    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix
                .trim()
                .to_ascii_lowercase()
                .replace(['%', '_', '\\'], "")
        );
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM executions WHERE id LIKE $1 ORDER BY id LIMIT 5",
                &[&pattern],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| Uuid::parse_str(&r.get::<_, String>(0)).ok())
            .collect())
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM executions WHERE TRUE");
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(scenario) = &filter.scenario {
            values.push(Box::new(scenario.clone()));
            sql.push_str(&format!(" AND scenario = ${}", values.len()));
        }
        if let Some(status) = filter.status {
            values.push(Box::new(status.as_str().to_owned()));
            sql.push_str(&format!(" AND status = ${}", values.len()));
        }
        if let Some(since) = filter.since {
            values.push(Box::new(micros(since)));
            sql.push_str(&format!(" AND started_at >= ${}", values.len()));
        }
        values.push(Box::new(filter.limit.unwrap_or(50) as i64));
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id DESC LIMIT ${}",
            values.len()
        ));
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let client = self.client().await?;
        let rows = client.query(&sql, &refs).await.map_err(db)?;
        summaries(&rows)
    }

    async fn claim(
        &self,
        id: Uuid,
        expected: ExecutionStatus,
        expected_owner: Option<&str>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The new owner is alive from the moment it holds the execution.
        beat(&tx, owner, now).await?;
        let row = tx
            .query_opt(
                "UPDATE executions SET status = 'running', owner = $4, attempt = attempt + 1,
                   updated_at = $5, finished_at = NULL, next_retry_at = NULL
                 WHERE id = $1 AND status = $2 AND owner IS NOT DISTINCT FROM $3
                 RETURNING attempt",
                &[
                    &id.to_string(),
                    &expected.as_str(),
                    &expected_owner,
                    &owner,
                    &micros(now),
                ],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row.map(|r| r.get::<_, i32>(0) as u32))
    }

    async fn resumable(&self, now: DateTime<Utc>) -> Result<Vec<ExecutionSummary>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM executions
                     WHERE status = 'running'
                        OR (status IN ('incomplete', 'waiting', 'queued') AND next_retry_at <= $1)
                     ORDER BY started_at"
                ),
                &[&micros(now)],
            )
            .await
            .map_err(db)?;
        summaries(&rows)
    }

    async fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let finished = "status IN ('succeeded', 'failed', 'filtered', 'rejected')";
        let mut deleted = 0u64;
        let mut special = Vec::new();
        for (scenario, before) in &rule.per_scenario {
            special.push(scenario.clone());
            deleted += tx
                .execute(
                    &format!(
                        "DELETE FROM executions WHERE scenario = $1 AND {finished} AND COALESCE(finished_at, started_at) < $2"
                    ),
                    &[scenario, &micros(*before)],
                )
                .await
                .map_err(db)?;
        }
        deleted += tx
            .execute(
                &format!(
                    "DELETE FROM executions WHERE {finished} AND COALESCE(finished_at, started_at) < $1 AND NOT (scenario = ANY($2))"
                ),
                &[&micros(rule.before), &special],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }

    async fn enqueue(
        &self,
        new: NewExecution,
        admission: Admission,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer().await?.send(Job::Enqueue {
            new: Box::new(new),
            admission,
            now,
            reply,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn claim_queued(
        &self,
        owner: &str,
        limits: &[(String, u32)],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<StoredExecution>, StoreError> {
        let limits: std::collections::HashMap<&str, u32> =
            limits.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let mut running: std::collections::HashMap<(String, Option<String>), u32> =
            std::collections::HashMap::new();
        if !limits.is_empty() {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
                .await
                .map_err(db)?;
            let rows = tx
                .query(
                    "SELECT scenario, concurrency_key, COUNT(*) FROM executions WHERE status = 'running' GROUP BY scenario, concurrency_key",
                    &[],
                )
                .await
                .map_err(db)?;
            for row in rows {
                running.insert((row.get(0), row.get(1)), row.get::<_, i64>(2) as u32);
            }
        }
        let statement = tx
            .prepare_cached(
                "SELECT id, scenario, concurrency_key FROM executions WHERE status = 'queued'
                 ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED",
            )
            .await
            .map_err(db)?;
        let candidates = tx.query(&statement, &[]).await.map_err(db)?;
        let mut chosen: Vec<String> = Vec::new();
        for row in candidates {
            if chosen.len() >= max {
                break;
            }
            let (id, scenario, key): (String, String, Option<String>) =
                (row.get(0), row.get(1), row.get(2));
            if let Some(limit) = limits.get(scenario.as_str()) {
                let slot = running.entry((scenario, key)).or_insert(0);
                if *slot >= *limit {
                    continue;
                }
                *slot += 1;
            }
            chosen.push(id);
        }
        if chosen.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        beat(&tx, owner, now).await?;
        let statement = tx
            .prepare_cached(
                "UPDATE executions SET status = 'running', owner = $2, updated_at = $3, started_at = $3
                 WHERE id = ANY($1) AND status = 'queued'",
            )
            .await
            .map_err(db)?;
        tx.execute(&statement, &[&chosen, &owner, &micros(now)])
            .await
            .map_err(db)?;
        let claimed = load_many(&tx, &chosen).await?;
        tx.commit().await.map_err(db)?;
        Ok(claimed)
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM executions WHERE status = 'queued'",
                &[],
            )
            .await
            .map_err(db)?
            .get(0);
        Ok(n as u64)
    }

    async fn last_tick(&self, scenario: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let last: Option<i64> = client
            .query_one(
                "SELECT MAX(scheduled_at) FROM schedule_ticks WHERE scenario = $1",
                &[&scenario],
            )
            .await
            .map_err(db)?
            .get(0);
        Ok(last.map(from_micros))
    }

    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let decided = super::events::decide(&tx, id, decision, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(decided)
    }

    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError> {
        let client = self.client().await?;
        super::events::business_events(&client, since, until, scenario).await
    }

    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError> {
        let client = self.client().await?;
        super::events::counts(&client, since, until, scenario).await
    }

    async fn emit(&self, event: &NewEvent, now: DateTime<Utc>) -> Result<Emitted, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let emitted = super::events::emit(&tx, event, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(emitted)
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let events = super::events::await_event(&tx, execution_id, wait).await?;
        tx.commit().await.map_err(db)?;
        Ok(events)
    }

    async fn waits(&self, filter: &EventFilter) -> Result<Vec<WaitingExecution>, StoreError> {
        let client = self.client().await?;
        super::events::waits(&client, filter).await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        super::events::events(&client, filter).await
    }

    async fn waiting_by_event(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT w.event, COUNT(*) FROM event_waits w JOIN executions e ON e.id = w.execution_id
                 WHERE e.status = 'waiting' GROUP BY w.event ORDER BY w.event",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM events WHERE received_at < $1",
                &[&micros(before)],
            )
            .await
            .map_err(db)
    }

    async fn listen_for_work(&self, ring: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        // Connected and migrated first, so a bad URL fails here as everywhere.
        drop(self.client().await?);
        self.listen(ring).await
    }

    async fn heartbeat(&self, owner: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        beat(&tx, owner, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn live_owners(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let client = self.client().await?;
        let since = micros(now) - lease.as_micros() as i64;
        let rows = client
            .query(
                "SELECT owner FROM daemons WHERE heartbeat_at >= $1",
                &[&since],
            )
            .await
            .map_err(db)?;
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }

    async fn dedupe(
        &self,
        scenario: &str,
        key: &str,
        execution_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let dedupe = DedupeKey {
            key: key.to_owned(),
            expires_at,
        };
        let held = take_dedupe_key(&tx, scenario, &dedupe, execution_id, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(held)
    }
}
