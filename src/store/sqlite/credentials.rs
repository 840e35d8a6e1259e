//! Connections' sealed tokens on SQLite: read, claimed for a refresh, written
//! under the row's generation, forgotten, re-sealed. As
//! `postgres/credentials.rs`, with SQLite's SQL.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::rows::{from_micros, micros};
use super::SqliteStore;
use crate::store::credentials::Resealed;
use crate::store::{CredentialRow, CredentialStatus, CredentialWrite, StoreError};

const COLUMNS: &str = "connection, grant_kind, status, sealed, key_id, scopes, expires_at,
    connected_at, refreshed_at, refreshes, reason, generation, lease_owner, lease_until";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CredentialRow, String)> {
    let at = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(from_micros))
    };
    Ok((
        CredentialRow {
            connection: r.get(0)?,
            grant: r.get(1)?,
            status: CredentialStatus::Connected,
            sealed: r.get(3)?,
            key_id: r.get(4)?,
            scopes: r.get(5)?,
            expires_at: at(6)?,
            connected_at: from_micros(r.get(7)?),
            refreshed_at: at(8)?,
            refreshes: r.get::<_, i64>(9)? as u64,
            reason: r.get(10)?,
            generation: r.get(11)?,
            lease_owner: r.get(12)?,
            lease_until: at(13)?,
        },
        r.get(2)?,
    ))
}

fn finish((mut row, status): (CredentialRow, String)) -> Result<CredentialRow, StoreError> {
    row.status = CredentialStatus::parse(&status)?;
    Ok(row)
}

pub(super) async fn credential(
    store: &SqliteStore,
    connection: &str,
) -> Result<Option<CredentialRow>, StoreError> {
    let connection = connection.to_owned();
    store
        .read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM credentials WHERE connection = ?1"
            ))?
            .query_row(params![connection], row)
            .optional()?
            .map(finish)
            .transpose()
        })
        .await
}

pub(super) async fn credentials(store: &SqliteStore) -> Result<Vec<CredentialRow>, StoreError> {
    store
        .read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM credentials ORDER BY connection"
            ))?;
            let rows = statement.query_map([], row)?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
}

pub(super) async fn put(
    store: &SqliteStore,
    w: CredentialWrite,
    expected: Option<i64>,
) -> Result<bool, StoreError> {
    store
        .call(move |conn| {
            let at = micros(w.at);
            let expires = w.expires_at.map(micros);
            let written = match expected {
                None => conn
                    .prepare_cached(
                        "INSERT INTO credentials (connection, grant_kind, status, sealed, key_id, scopes,
                           expires_at, connected_at, refreshed_at, refreshes, reason, generation)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, 0, ?9, 1)
                         ON CONFLICT (connection) DO UPDATE SET grant_kind = ?2, status = ?3,
                           sealed = ?4, key_id = ?5, scopes = ?6, expires_at = ?7, connected_at = ?8,
                           refreshed_at = NULL, refreshes = 0, reason = ?9,
                           generation = credentials.generation + 1, lease_owner = NULL, lease_until = NULL",
                    )?
                    .execute(params![
                        w.connection, w.grant, w.status.as_str(), w.sealed, w.key_id, w.scopes,
                        expires, at, w.reason
                    ])?,
                Some(g) => conn
                    .prepare_cached(
                        "UPDATE credentials SET status = ?3, sealed = ?4, key_id = ?5, scopes = ?6,
                           expires_at = ?7, refreshed_at = ?8, refreshes = refreshes + ?9, reason = ?10,
                           generation = generation + 1, lease_owner = NULL, lease_until = NULL
                         WHERE connection = ?1 AND generation = ?2",
                    )?
                    .execute(params![
                        w.connection, g, w.status.as_str(), w.sealed, w.key_id, w.scopes, expires,
                        at, i64::from(!w.connect), w.reason
                    ])?,
            };
            Ok(written == 1)
        })
        .await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn claim(
    store: &SqliteStore,
    connection: &str,
    grant: &str,
    key_id: &str,
    generation: Option<i64>,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (connection, grant, key_id, owner) = (
        connection.to_owned(),
        grant.to_owned(),
        key_id.to_owned(),
        owner.to_owned(),
    );
    store
        .call(move |conn| {
            let taken = match generation {
                None => conn
                    .prepare_cached(
                        "INSERT INTO credentials (connection, grant_kind, status, sealed, key_id, scopes,
                           connected_at, generation, lease_owner, lease_until)
                         VALUES (?1, ?2, 'connected', X'', ?3, '', ?4, 1, ?5, ?6)
                         ON CONFLICT (connection) DO NOTHING",
                    )?
                    .execute(params![connection, grant, key_id, micros(now), owner, micros(until)])?,
                Some(g) => conn
                    .prepare_cached(
                        "UPDATE credentials SET lease_owner = ?3, lease_until = ?4
                         WHERE connection = ?1 AND generation = ?2
                           AND (lease_until IS NULL OR lease_until < ?5)",
                    )?
                    .execute(params![connection, g, owner, micros(until), micros(now)])?,
            };
            Ok(taken == 1)
        })
        .await
}

pub(super) async fn release(
    store: &SqliteStore,
    connection: &str,
    owner: &str,
) -> Result<(), StoreError> {
    let (connection, owner) = (connection.to_owned(), owner.to_owned());
    store
        .call(move |conn| {
            conn.prepare_cached(
                "UPDATE credentials SET lease_owner = NULL, lease_until = NULL
                 WHERE connection = ?1 AND lease_owner = ?2",
            )?
            .execute(params![connection, owner])?;
            Ok(())
        })
        .await
}

pub(super) async fn forget(store: &SqliteStore, connection: &str) -> Result<bool, StoreError> {
    let connection = connection.to_owned();
    store
        .call(move |conn| {
            let gone = conn
                .prepare_cached("DELETE FROM credentials WHERE connection = ?1")?
                .execute(params![connection])?;
            Ok(gone == 1)
        })
        .await
}

pub(super) async fn rekey(
    store: &SqliteStore,
    from_key: &str,
    to_key: &str,
    rows: Vec<Resealed>,
) -> Result<u64, StoreError> {
    let (from_key, to_key) = (from_key.to_owned(), to_key.to_owned());
    store
        .call(move |conn| {
            // A job is a savepoint of the group commit: an error undoes all of it.
            let mut moved = 0;
            for r in &rows {
                moved += conn
                    .prepare_cached(
                        "UPDATE credentials SET sealed = ?2, key_id = ?3, generation = generation + 1
                         WHERE connection = ?1 AND key_id = ?4",
                    )?
                    .execute(params![r.connection, r.sealed, to_key, from_key])?;
            }
            let left: i64 = conn.query_row(
                "SELECT COUNT(*) FROM credentials WHERE key_id <> ?1",
                params![to_key],
                |r| r.get(0),
            )?;
            if left > 0 {
                return Err(StoreError::Corrupt(format!(
                    "{left} credential(s) changed during the rekey; nothing was re-sealed, run it again"
                )));
            }
            Ok(moved as u64)
        })
        .await
}

pub(super) async fn retry_incomplete(
    store: &SqliteStore,
    prefix: &str,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let prefix = prefix.to_owned();
    store
        .call(move |conn| {
            let due = conn
                .prepare_cached(
                    "UPDATE executions SET next_retry_at = ?2
                     WHERE status = 'incomplete' AND substr(error, 1, length(?1)) = ?1",
                )?
                .execute(params![prefix, micros(at)])?;
            Ok(due as u64)
        })
        .await
}
