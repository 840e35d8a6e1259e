//! Poll triggers' rows on PostgreSQL: as `sqlite/watches.rs`. Several
//! daemons share them: a poll is claimed (the row's generation moved under a
//! lease) before it is made, and commits only if the generation is still
//! the one it claimed, so each due poll is made once and its executions
//! queued once.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::rows::{from_micros, micros};
use super::writes::{insert_execution, Tx};
use super::{db, PgStore};
use crate::engine::ExecutionStatus;
use crate::store::watches::{seen_from_text, seen_text};
use crate::store::{StoreError, WatchCommit, WatchFailure, WatchState};

const COLUMNS: &str =
    "scenario, fingerprint, generation, cursor_doc, seen, lease_owner, lease_until,
    polls, items, last_items, last_poll_at, failures, last_error, retry_at, restart";

fn state(r: &Row) -> Result<WatchState, StoreError> {
    let at = |i: usize| r.get::<_, Option<i64>>(i).map(from_micros);
    Ok(WatchState {
        scenario: r.get(0),
        fingerprint: r.get(1),
        generation: r.get(2),
        cursor: serde_json::from_str(r.get::<_, &str>(3))
            .map_err(|e| StoreError::Corrupt(format!("watch cursor: {e}")))?,
        seen: seen_from_text(r.get::<_, &str>(4))?,
        lease_owner: r.get(5),
        lease_until: at(6),
        polls: r.get::<_, i64>(7) as u64,
        items: r.get::<_, i64>(8) as u64,
        last_items: r.get::<_, i64>(9) as u64,
        last_poll_at: at(10),
        failures: r.get::<_, i64>(11) as u32,
        last_error: r.get(12),
        retry_at: at(13),
        restart: r.get(14),
    })
}

pub(super) async fn watch(
    store: &PgStore,
    scenario: &str,
) -> Result<Option<WatchState>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM watches WHERE scenario = $1"),
            &[&scenario],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(state).transpose()
}

pub(super) async fn watches(store: &PgStore) -> Result<Vec<WatchState>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM watches ORDER BY scenario"),
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter().map(state).collect()
}

pub(super) async fn claim(
    store: &PgStore,
    scenario: &str,
    generation: Option<i64>,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let client = store.client().await?;
    let moved = match generation {
        None => client
            .execute(
                "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen, lease_owner, lease_until)
                 VALUES ($1, '', 1, '{}', '[]', $2, $3) ON CONFLICT (scenario) DO NOTHING",
                &[&scenario, &owner, &micros(until)],
            )
            .await,
        Some(g) => client
            .execute(
                "UPDATE watches SET generation = generation + 1, lease_owner = $3, lease_until = $4
                 WHERE scenario = $1 AND generation = $2",
                &[&scenario, &g, &owner, &micros(until)],
            )
            .await,
    }
    .map_err(db)?;
    Ok((moved == 1).then(|| generation.map_or(1, |g| g + 1)))
}

/// Moves the row from `generation` (or creates it), clearing the lease.
async fn advance(tx: &Tx<'_>, scenario: &str, generation: Option<i64>) -> Result<bool, StoreError> {
    let moved = match generation {
        None => tx
            .execute(
                "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen)
                 VALUES ($1, '', 1, '{}', '[]') ON CONFLICT (scenario) DO NOTHING",
                &[&scenario],
            )
            .await,
        Some(g) => tx
            .execute(
                "UPDATE watches SET generation = generation + 1, lease_owner = NULL, lease_until = NULL
                 WHERE scenario = $1 AND generation = $2",
                &[&scenario, &g],
            )
            .await,
    }
    .map_err(db)?;
    Ok(moved == 1)
}

pub(super) async fn commit(
    store: &PgStore,
    scenario: &str,
    generation: Option<i64>,
    commit: WatchCommit,
) -> Result<bool, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    if !advance(&tx, scenario, generation).await? {
        return Ok(false);
    }
    tx.execute(
        "UPDATE watches SET fingerprint = $2, cursor_doc = $3, seen = $4, polls = polls + 1,
           items = items + $5, last_items = $5, last_poll_at = $6, failures = 0,
           last_error = NULL, retry_at = NULL, restart = NULL
         WHERE scenario = $1",
        &[
            &scenario,
            &commit.fingerprint,
            &commit.cursor.to_string(),
            &seen_text(&commit.seen),
            &(commit.items as i64),
            &micros(commit.polled_at),
        ],
    )
    .await
    .map_err(db)?;
    for new in &commit.executions {
        insert_execution(
            &tx,
            new,
            ExecutionStatus::Queued,
            commit.concurrency_key.as_deref(),
        )
        .await?;
    }
    if !commit.executions.is_empty() {
        // Wakes every daemon's workers, as a webhook's enqueue does.
        tx.execute("NOTIFY scenarist_queue", &[])
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn fail(
    store: &PgStore,
    scenario: &str,
    generation: Option<i64>,
    failure: WatchFailure,
) -> Result<bool, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    if !advance(&tx, scenario, generation).await? {
        return Ok(false);
    }
    tx.execute(
        "UPDATE watches SET polls = polls + 1, last_items = 0, last_poll_at = $2,
           failures = failures + 1, last_error = $3, retry_at = $4
         WHERE scenario = $1",
        &[
            &scenario,
            &micros(failure.polled_at),
            &failure.error,
            &micros(failure.retry_at),
        ],
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn reset(store: &PgStore, scenario: &str, start: &str) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen, restart)
             VALUES ($1, '', 1, '{}', '[]', $2)
             ON CONFLICT (scenario) DO UPDATE SET generation = watches.generation + 1, restart = $2,
               lease_owner = NULL, lease_until = NULL, failures = 0, retry_at = NULL",
            &[&scenario, &start],
        )
        .await
        .map_err(db)?;
    Ok(())
}
