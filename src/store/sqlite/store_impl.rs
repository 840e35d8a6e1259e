//! The `Store` trait on SQLite: each write is one job for the writer thread,
//! each read one for a reader thread (`readers.rs`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{
    from_micros, insert_execution, json_text, load_execution, micros, parse_json, summaries,
    take_dedupe_key, upsert_step, SUMMARY_COLUMNS,
};
use super::SqliteStore;
use crate::engine::{DataOp, DataRequest, ExecutionStatus, StepRecord, StepStatus};
use crate::store::{
    Emitted, EventFilter, EventWait, ExecutionFilter, ExecutionSummary, Finish, NewEvent,
    NewExecution, PruneRule, ReceivedEvent, ScenarioActivity, Store, StoreError, StoredEvent,
    StoredExecution, VersionSeen, WaitingExecution,
};

fn steps_in(
    conn: &rusqlite::Connection,
    execution_id: Uuid,
    records: &[StepRecord],
) -> Result<(), StoreError> {
    let id = execution_id.to_string();
    for record in records {
        upsert_step(conn, &id, record)?;
        if record.kind == "wait_for" && record.status != StepStatus::Waiting {
            super::waits::end_wait(conn, &id, &record.path)?;
        }
    }
    Ok(())
}

fn finish_in(
    conn: &rusqlite::Connection,
    execution_id: Uuid,
    finish: &Finish,
) -> Result<(), StoreError> {
    let (error_step, error) = match &finish.error {
        Some(e) => (Some(e.step.as_str()), Some(e.message.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(
        "UPDATE executions SET status = ?2, finished_at = ?3, updated_at = ?3, next_retry_at = ?4,
           error_step = ?5, error = ?6, owner = NULL WHERE id = ?1",
    )?
    .execute(params![
        execution_id.to_string(),
        finish.status.as_str(),
        micros(finish.finished_at),
        finish.next_retry_at.map(micros),
        error_step,
        error,
    ])?;
    super::waits::settle_waits(
        conn,
        &execution_id.to_string(),
        finish.status == ExecutionStatus::Waiting,
        finish.finished_at,
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let (scenario, version, source) =
            (scenario.to_owned(), version.to_owned(), source.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO scenario_versions (scenario, version, source, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scenario, version) DO NOTHING",
            )?
            .execute(params![scenario, version, source, micros(Utc::now())])?;
            Ok(())
        })
        .await
    }

    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let (scenario, version) = (scenario.to_owned(), version.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT source FROM scenario_versions WHERE scenario = ?1 AND version = ?2",
                )?
                .query_row(params![scenario, version], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError> {
        self.call(move |conn| insert_execution(conn, &new, ExecutionStatus::Running, None))
            .await
    }

    /// One process writes an execution at a time on one machine (a takeover
    /// needs its owner's pid gone), so SQLite does not fence on `owner`.
    async fn record_step(
        &self,
        execution_id: Uuid,
        _owner: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.call(move |conn| {
            let id = execution_id.to_string();
            upsert_step(conn, &id, &record)?;
            if record.kind == "wait_for" && record.status != StepStatus::Waiting {
                super::waits::end_wait(conn, &id, &record.path)?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_execution(
        &self,
        execution_id: Uuid,
        _owner: &str,
        finish: Finish,
    ) -> Result<(), StoreError> {
        self.call(move |conn| finish_in(conn, execution_id, &finish))
            .await
    }

    async fn record_steps(
        &self,
        execution_id: Uuid,
        _owner: &str,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.call(move |conn| steps_in(conn, execution_id, &records))
            .await
    }

    async fn finish_with_steps(
        &self,
        execution_id: Uuid,
        _owner: &str,
        records: &[StepRecord],
        finish: Finish,
    ) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.call(move |conn| {
            steps_in(conn, execution_id, &records)?;
            finish_in(conn, execution_id, &finish)
        })
        .await
    }

    async fn data(
        &self,
        execution_id: Uuid,
        _owner: &str,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        let request = request.clone();
        let step_path = step_path.to_owned();
        self.call(move |conn| {
            let now_us = micros(now);
            let current: Option<Value> = conn
                .prepare_cached(
                    "SELECT value FROM data_entries WHERE store = ?1 AND key = ?2
                     AND (expires_at IS NULL OR expires_at > ?3)",
                )?
                .query_row(params![request.store, request.key, now_us], |r| r.get::<_, String>(0))
                .optional()?
                .map(|text| parse_json(&text, "a data store value"))
                .transpose()?;
            let write = |value: &Value, ttl: Option<Duration>| -> Result<(), StoreError> {
                let expires = ttl.map(|t| now_us + t.as_micros() as i64);
                conn.prepare_cached(
                    "INSERT INTO data_entries (store, key, value, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                )?
                .execute(params![request.store, request.key, json_text(value), now_us, expires])?;
                Ok(())
            };
            let output = match &request.op {
                DataOp::Get => current.unwrap_or(Value::Null),
                DataOp::Put { value, ttl } => {
                    write(value, *ttl)?;
                    value.clone()
                }
                DataOp::Delete => {
                    conn.prepare_cached("DELETE FROM data_entries WHERE store = ?1 AND key = ?2")?
                        .execute(params![request.store, request.key])?;
                    current.unwrap_or(Value::Null)
                }
                DataOp::Increment { by, ttl } => {
                    let next = crate::engine::increment(current.as_ref(), *by, &request.key)
                        .map_err(|e| StoreError::Database(e.0))?;
                    write(&next, *ttl)?;
                    next
                }
                DataOp::Record { value, data } => super::events::record(
                    conn,
                    &execution_id.to_string(),
                    &request.store,
                    &request.key,
                    *value,
                    data,
                    now,
                )?,
            };
            // The step's result, in the same transaction as its effect.
            let record =
                crate::engine::data_step_record(&step_path, &request, output.clone(), now);
            upsert_step(conn, &execution_id.to_string(), &record)?;
            Ok(output)
        })
        .await
    }

    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Decided, StoreError> {
        let decision = decision.clone();
        self.call(move |conn| super::events::decide(conn, id, &decision, now))
            .await
    }

    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.read(move |conn| super::events::events(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.read(move |conn| super::events::counts(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
        self.read(move |conn| load_execution(conn, id)).await
    }

    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!("{}%", prefix.to_ascii_lowercase().replace(['%', '_'], ""));
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT id FROM executions WHERE id LIKE ?1 ORDER BY id LIMIT 5")?;
            let ids = statement
                .query_map([&pattern], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok())
                .filter_map(|id| Uuid::parse_str(&id).ok())
                .collect();
            Ok(ids)
        })
        .await
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::browse::list(conn, &filter))
            .await
    }

    async fn activity(
        &self,
        scenarios: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<ScenarioActivity>, StoreError> {
        let scenarios = scenarios.to_vec();
        self.read(move |conn| super::browse::activity(conn, &scenarios, since))
            .await
    }

    async fn versions(&self, scenario: &str) -> Result<Vec<VersionSeen>, StoreError> {
        let scenario = scenario.to_owned();
        self.read(move |conn| super::browse::versions(conn, &scenario))
            .await
    }

    async fn claim(
        &self,
        id: Uuid,
        expected: ExecutionStatus,
        expected_owner: Option<&str>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let (expected_owner, owner) = (expected_owner.map(str::to_owned), owner.to_owned());
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE executions SET status = 'running', owner = ?4, attempt = attempt + 1,
                       updated_at = ?5, finished_at = NULL, next_retry_at = NULL
                     WHERE id = ?1 AND status = ?2 AND owner IS ?3",
                )?
                .execute(params![
                    id.to_string(),
                    expected.as_str(),
                    expected_owner,
                    owner,
                    micros(now)
                ])?;
            if changed == 0 {
                return Ok(None);
            }
            let attempt: i64 = conn
                .prepare_cached("SELECT attempt FROM executions WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))?;
            Ok(Some(attempt as u32))
        })
        .await
    }

    async fn resumable(&self, now: DateTime<Utc>) -> Result<Vec<ExecutionSummary>, StoreError> {
        self.read(move |conn| {
            summaries(
                conn,
                &format!(
                    // Two parts, each read from its partial index: an OR
                    // of both would scan every execution.
                    "SELECT {SUMMARY_COLUMNS} FROM executions INDEXED BY executions_running
                     WHERE status = 'running'
                     UNION ALL
                     SELECT {SUMMARY_COLUMNS} FROM executions INDEXED BY executions_due
                     WHERE status IN ('incomplete', 'waiting', 'queued') AND next_retry_at <= ?1
                     ORDER BY started_at"
                ),
                &[&micros(now)],
            )
        })
        .await
    }

    async fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError> {
        let rule = rule.clone();
        self.call(move |conn| {
            let finished = "status IN ('succeeded', 'failed', 'filtered', 'rejected')";
            let mut deleted = 0u64;
            let mut special = Vec::new();
            for (scenario, before) in &rule.per_scenario {
                special.push(scenario.clone());
                deleted += conn
                    .prepare_cached(&format!(
                        "DELETE FROM executions WHERE scenario = ?1 AND {finished} AND COALESCE(finished_at, started_at) < ?2"
                    ))?
                    .execute(params![scenario, micros(*before)])? as u64;
            }
            let mut sql = format!("DELETE FROM executions WHERE {finished} AND COALESCE(finished_at, started_at) < ?1");
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
            let before = micros(rule.before);
            values.push(&before);
            if !special.is_empty() {
                let marks: Vec<String> = (0..special.len()).map(|i| format!("?{}", i + 2)).collect();
                sql.push_str(&format!(" AND scenario NOT IN ({})", marks.join(", ")));
                values.extend(special.iter().map(|s| s as &dyn rusqlite::ToSql));
            }
            deleted += conn.prepare(&sql)?.execute(values.as_slice())? as u64;
            Ok(deleted)
        })
        .await
    }

    async fn enqueue(
        &self,
        new: NewExecution,
        admission: crate::store::Admission,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Enqueued, StoreError> {
        self.call(move |conn| {
            if let Some(dedupe) = &admission.dedupe {
                if let Some(existing) = take_dedupe_key(conn, &new.scenario, dedupe, new.id, now)? {
                    return Ok(crate::store::Enqueued::Duplicate(existing));
                }
            }
            if let Some(tick) = admission.tick {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO schedule_ticks (scenario, scheduled_at, execution_id) VALUES (?1, ?2, ?3)
                         ON CONFLICT (scenario, scheduled_at) DO NOTHING",
                    )?
                    .execute(params![new.scenario, micros(tick), new.id.to_string()])?;
                if inserted == 0 {
                    let holder: String = conn
                        .prepare_cached(
                            "SELECT execution_id FROM schedule_ticks WHERE scenario = ?1 AND scheduled_at = ?2",
                        )?
                        .query_row(params![new.scenario, micros(tick)], |r| r.get(0))?;
                    let holder =
                        Uuid::parse_str(&holder).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    return Ok(crate::store::Enqueued::Duplicate(holder));
                }
            }
            let status = match admission.start {
                true => ExecutionStatus::Running,
                false => ExecutionStatus::Queued,
            };
            insert_execution(conn, &new, status, admission.concurrency_key.as_deref())?;
            Ok(crate::store::Enqueued::Accepted(new.id))
        })
        .await
    }

    async fn claim_queued(
        &self,
        owner: &str,
        limits: &[(String, u32)],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<StoredExecution>, StoreError> {
        let owner = owner.to_owned();
        let limits: std::collections::HashMap<String, u32> = limits.iter().cloned().collect();
        self.call(move |conn| {
            let mut running: std::collections::HashMap<(String, Option<String>), u32> =
                std::collections::HashMap::new();
            if !limits.is_empty() {
                let mut statement = conn.prepare_cached(
                    "SELECT scenario, concurrency_key, COUNT(*) FROM executions INDEXED BY executions_running
                     WHERE status = 'running' GROUP BY scenario, concurrency_key",
                )?;
                let rows = statement.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
                })?;
                for row in rows {
                    let (scenario, key, count) = row?;
                    running.insert((scenario, key), count as u32);
                }
            }
            let mut statement = conn.prepare_cached(
                "SELECT id, scenario, concurrency_key FROM executions WHERE status = 'queued' ORDER BY id LIMIT 256",
            )?;
            let candidates: Vec<(String, String, Option<String>)> = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut chosen = Vec::new();
            for (id, scenario, key) in candidates {
                if chosen.len() >= max {
                    break;
                }
                if let Some(limit) = limits.get(&scenario) {
                    // Taking one counts against the limit of the next candidates too,
                    // and an earlier one waiting keeps the later ones of its key waiting.
                    let slot = running.entry((scenario, key)).or_insert(0);
                    if *slot >= *limit {
                        continue;
                    }
                    *slot += 1;
                }
                chosen.push(id);
            }
            let mut claimed = Vec::with_capacity(chosen.len());
            for id in chosen {
                conn.prepare_cached(
                    "UPDATE executions SET status = 'running', owner = ?2, updated_at = ?3, started_at = ?3 WHERE id = ?1 AND status = 'queued'",
                )?
                .execute(params![id, owner, micros(now)])?;
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(stored) = load_execution(conn, id)? {
                    claimed.push(stored);
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM executions WHERE status = 'queued'")?
                .query_row([], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn last_tick(&self, scenario: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let scenario = scenario.to_owned();
        self.read(move |conn| {
            let last: Option<i64> = conn
                .prepare_cached("SELECT MAX(scheduled_at) FROM schedule_ticks WHERE scenario = ?1")?
                .query_row([scenario], |r| r.get(0))?;
            Ok(last.map(from_micros))
        })
        .await
    }

    async fn emit(&self, event: &NewEvent, now: DateTime<Utc>) -> Result<Emitted, StoreError> {
        let event = event.clone();
        self.call(move |conn| super::waits::emit(conn, &event, now))
            .await
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        let wait = wait.clone();
        self.call(move |conn| super::waits::await_event(conn, execution_id, &wait))
            .await
    }

    async fn waits(&self, filter: &EventFilter) -> Result<Vec<WaitingExecution>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::waits::waits(conn, &filter))
            .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::waits::events(conn, &filter))
            .await
    }

    async fn waiting_by_event(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(super::waits::waiting_by_event).await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |conn| super::waits::prune_events(conn, before))
            .await
    }

    async fn dedupe(
        &self,
        scenario: &str,
        key: &str,
        execution_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let scenario = scenario.to_owned();
        let dedupe = crate::store::DedupeKey {
            key: key.to_owned(),
            expires_at,
        };
        self.call(move |conn| take_dedupe_key(conn, &scenario, &dedupe, execution_id, now))
            .await
    }
}
