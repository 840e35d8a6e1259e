//! Claims and the queue on SQLite: taking an execution to run (checked
//! against its expected status and owner), what is due to resume, the
//! webhook queue with its per-scenario limits, schedule ticks, dedupe keys
//! and pruning. As `postgres/queue.rs`, with SQLite's SQL.

use chrono::{DateTime, Utc};
use rusqlite::params;
use uuid::Uuid;

use super::rows::{
    from_micros, insert_execution, load_execution, micros, summaries, take_dedupe_key,
    SUMMARY_COLUMNS,
};
use super::SqliteStore;
use crate::engine::ExecutionStatus;
use crate::store::{ExecutionSummary, NewExecution, PruneRule, StoreError, StoredExecution};

pub(super) async fn claim(
    store: &SqliteStore,
    id: Uuid,
    expected: ExecutionStatus,
    expected_owner: Option<&str>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Option<u32>, StoreError> {
    let (expected_owner, owner) = (expected_owner.map(str::to_owned), owner.to_owned());
    store
        .call(move |conn| {
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

pub(super) async fn resumable(
    store: &SqliteStore,
    now: DateTime<Utc>,
) -> Result<Vec<ExecutionSummary>, StoreError> {
    store
        .read(move |conn| {
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

pub(super) async fn prune(store: &SqliteStore, rule: &PruneRule) -> Result<u64, StoreError> {
    let rule = rule.clone();
    store.call(move |conn| {
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

pub(super) async fn enqueue(
    store: &SqliteStore,
    new: NewExecution,
    admission: crate::store::Admission,
    now: DateTime<Utc>,
) -> Result<crate::store::Enqueued, StoreError> {
    store.accept(move |conn| {
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

pub(super) async fn claim_queued(
    store: &SqliteStore,
    owner: &str,
    limits: &[(String, u32)],
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<StoredExecution>, StoreError> {
    let owner = owner.to_owned();
    let limits: std::collections::HashMap<String, u32> = limits.iter().cloned().collect();
    store.call(move |conn| {
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

pub(super) async fn queue_depth(store: &SqliteStore) -> Result<u64, StoreError> {
    store
        .read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM executions WHERE status = 'queued'")?
                .query_row([], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
}

pub(super) async fn last_tick(
    store: &SqliteStore,
    scenario: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let scenario = scenario.to_owned();
    store
        .read(move |conn| {
            let last: Option<i64> = conn
                .prepare_cached("SELECT MAX(scheduled_at) FROM schedule_ticks WHERE scenario = ?1")?
                .query_row([scenario], |r| r.get(0))?;
            Ok(last.map(from_micros))
        })
        .await
}

pub(super) async fn dedupe(
    store: &SqliteStore,
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
    store
        .call(move |conn| take_dedupe_key(conn, &scenario, &dedupe, execution_id, now))
        .await
}
