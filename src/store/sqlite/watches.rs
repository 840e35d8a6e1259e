//! Poll triggers' rows on SQLite: read, claimed, committed with the
//! executions a poll produced (one transaction), failed and reset, each
//! under the row's generation. As `postgres/watches.rs`, with SQLite's SQL.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{from_micros, insert_execution, micros};
use super::SqliteStore;
use crate::engine::ExecutionStatus;
use crate::store::watches::{seen_from_text, seen_text};
use crate::store::{StoreError, WatchCommit, WatchFailure, WatchState};

const COLUMNS: &str =
    "scenario, fingerprint, generation, cursor_doc, seen, lease_owner, lease_until,
    polls, items, last_items, last_poll_at, failures, last_error, retry_at, restart";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WatchState, String, String)> {
    let at = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(from_micros))
    };
    Ok((
        WatchState {
            scenario: r.get(0)?,
            fingerprint: r.get(1)?,
            generation: r.get(2)?,
            cursor: serde_json::Value::Null,
            seen: Vec::new(),
            lease_owner: r.get(5)?,
            lease_until: at(6)?,
            polls: r.get::<_, i64>(7)? as u64,
            items: r.get::<_, i64>(8)? as u64,
            last_items: r.get::<_, i64>(9)? as u64,
            last_poll_at: at(10)?,
            failures: r.get::<_, i64>(11)? as u32,
            last_error: r.get(12)?,
            retry_at: at(13)?,
            restart: r.get(14)?,
        },
        r.get(3)?,
        r.get(4)?,
    ))
}

fn finish(
    (mut state, cursor, seen): (WatchState, String, String),
) -> Result<WatchState, StoreError> {
    state.cursor = serde_json::from_str(&cursor)
        .map_err(|e| StoreError::Corrupt(format!("watch cursor: {e}")))?;
    state.seen = seen_from_text(&seen)?;
    Ok(state)
}

pub(super) async fn watch(
    store: &SqliteStore,
    scenario: &str,
) -> Result<Option<WatchState>, StoreError> {
    let scenario = scenario.to_owned();
    store
        .read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM watches WHERE scenario = ?1"
            ))?
            .query_row(params![scenario], row)
            .optional()?
            .map(finish)
            .transpose()
        })
        .await
}

pub(super) async fn watches(store: &SqliteStore) -> Result<Vec<WatchState>, StoreError> {
    store
        .read(move |conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM watches ORDER BY scenario"))?;
            let rows = statement.query_map([], row)?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
}

pub(super) async fn claim(
    store: &SqliteStore,
    scenario: &str,
    generation: Option<i64>,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let (scenario, owner) = (scenario.to_owned(), owner.to_owned());
    store
        .call(move |conn| {
            let moved = match generation {
                None => conn
                    .prepare_cached(
                        "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen, lease_owner, lease_until)
                         VALUES (?1, '', 1, '{}', '[]', ?2, ?3) ON CONFLICT (scenario) DO NOTHING",
                    )?
                    .execute(params![scenario, owner, micros(until)])?,
                Some(g) => conn
                    .prepare_cached(
                        "UPDATE watches SET generation = generation + 1, lease_owner = ?3, lease_until = ?4
                         WHERE scenario = ?1 AND generation = ?2",
                    )?
                    .execute(params![scenario, g, owner, micros(until)])?,
            };
            Ok((moved == 1).then(|| generation.map_or(1, |g| g + 1)))
        })
        .await
}

/// Moves the row from `generation` (or creates it), clearing the lease: the
/// compare-and-set every write of a poll goes through.
fn advance(conn: &Connection, scenario: &str, generation: Option<i64>) -> Result<bool, StoreError> {
    let moved = match generation {
        None => conn
            .prepare_cached(
                "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen)
                 VALUES (?1, '', 1, '{}', '[]') ON CONFLICT (scenario) DO NOTHING",
            )?
            .execute(params![scenario])?,
        Some(g) => conn
            .prepare_cached(
                "UPDATE watches SET generation = generation + 1, lease_owner = NULL, lease_until = NULL
                 WHERE scenario = ?1 AND generation = ?2",
            )?
            .execute(params![scenario, g])?,
    };
    Ok(moved == 1)
}

pub(super) async fn commit(
    store: &SqliteStore,
    scenario: &str,
    generation: Option<i64>,
    commit: WatchCommit,
) -> Result<bool, StoreError> {
    let scenario = scenario.to_owned();
    store
        .accept(move |conn| {
            if !advance(conn, &scenario, generation)? {
                return Ok(false);
            }
            conn.prepare_cached(
                "UPDATE watches SET fingerprint = ?2, cursor_doc = ?3, seen = ?4, polls = polls + 1,
                   items = items + ?5, last_items = ?5, last_poll_at = ?6, failures = 0,
                   last_error = NULL, retry_at = NULL, restart = NULL
                 WHERE scenario = ?1",
            )?
            .execute(params![
                scenario,
                commit.fingerprint,
                commit.cursor.to_string(),
                seen_text(&commit.seen),
                commit.items as i64,
                micros(commit.polled_at),
            ])?;
            for new in &commit.executions {
                insert_execution(
                    conn,
                    new,
                    ExecutionStatus::Queued,
                    commit.concurrency_key.as_deref(),
                )?;
            }
            Ok(true)
        })
        .await
}

pub(super) async fn fail(
    store: &SqliteStore,
    scenario: &str,
    generation: Option<i64>,
    failure: WatchFailure,
) -> Result<bool, StoreError> {
    let scenario = scenario.to_owned();
    store
        .call(move |conn| {
            if !advance(conn, &scenario, generation)? {
                return Ok(false);
            }
            conn.prepare_cached(
                "UPDATE watches SET polls = polls + 1, last_items = 0, last_poll_at = ?2,
                   failures = failures + 1, last_error = ?3, retry_at = ?4
                 WHERE scenario = ?1",
            )?
            .execute(params![
                scenario,
                micros(failure.polled_at),
                failure.error,
                micros(failure.retry_at),
            ])?;
            Ok(true)
        })
        .await
}

pub(super) async fn reset(
    store: &SqliteStore,
    scenario: &str,
    start: &str,
) -> Result<(), StoreError> {
    let (scenario, start) = (scenario.to_owned(), start.to_owned());
    store
        .call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO watches (scenario, fingerprint, generation, cursor_doc, seen, restart)
                 VALUES (?1, '', 1, '{}', '[]', ?2)
                 ON CONFLICT (scenario) DO UPDATE SET generation = generation + 1, restart = ?2,
                   lease_owner = NULL, lease_until = NULL, failures = 0, retry_at = NULL",
            )?
            .execute(params![scenario, start])?;
            Ok(())
        })
        .await
}
