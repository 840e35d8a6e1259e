//! The queue and the leases on PostgreSQL: taking an execution over
//! (`claim`), the executions to resume, claiming queued executions under
//! concurrency limits, the queue's depth, a scenario's last tick, dedupe keys,
//! and pruning finished executions.
//!
//! The bodies of those `Store` methods, as free functions on a [`PgStore`]
//! that `store_impl.rs` delegates to, so that the trait's impl stays short.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::{from_micros, micros, summaries, SUMMARY_COLUMNS};
use super::writes::{beat, load_many, take_dedupe_key};
use super::{db, PgStore};
use crate::engine::ExecutionStatus;
use crate::store::{DedupeKey, ExecutionSummary, PruneRule, StoreError, StoredExecution};

/// The advisory lock that serialises claims under concurrency limits across
/// daemons: counting the running executions and taking new ones must not
/// interleave, or two daemons could both fill the last slot.
const CLAIM_LOCK: i64 = 0x5343_4E52_0002;

pub(super) async fn claim(
    store: &PgStore,
    id: Uuid,
    expected: ExecutionStatus,
    expected_owner: Option<&str>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Option<u32>, StoreError> {
    let mut client = store.client().await?;
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

pub(super) async fn resumable(
    store: &PgStore,
    now: DateTime<Utc>,
) -> Result<Vec<ExecutionSummary>, StoreError> {
    let client = store.client().await?;
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

pub(super) async fn prune(store: &PgStore, rule: &PruneRule) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
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

pub(super) async fn claim_queued(
    store: &PgStore,
    owner: &str,
    limits: &[(String, u32)],
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<StoredExecution>, StoreError> {
    let limits: std::collections::HashMap<&str, u32> =
        limits.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let mut client = store.client().await?;
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

pub(super) async fn queue_depth(store: &PgStore) -> Result<u64, StoreError> {
    let client = store.client().await?;
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

pub(super) async fn last_tick(
    store: &PgStore,
    scenario: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let client = store.client().await?;
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

pub(super) async fn dedupe(
    store: &PgStore,
    scenario: &str,
    key: &str,
    execution_id: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let dedupe = DedupeKey {
        key: key.to_owned(),
        expires_at,
    };
    let held = take_dedupe_key(&tx, scenario, &dedupe, execution_id, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(held)
}
