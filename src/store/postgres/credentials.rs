//! Connections' sealed tokens on PostgreSQL: as `sqlite/credentials.rs`.
//! Several daemons share a row: one claims the refresh lease, refreshes and
//! writes under the generation it read; the others wait for the generation
//! to move and read the new tokens.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::rows::{from_micros, micros};
use super::{db, PgStore};
use crate::store::credentials::Resealed;
use crate::store::{CredentialRow, CredentialStatus, CredentialWrite, StoreError};

const COLUMNS: &str = "connection, grant_kind, status, sealed, key_id, scopes, expires_at,
    connected_at, refreshed_at, refreshes, reason, generation, lease_owner, lease_until";

fn row(r: &Row) -> Result<CredentialRow, StoreError> {
    let at = |i: usize| r.get::<_, Option<i64>>(i).map(from_micros);
    Ok(CredentialRow {
        connection: r.get(0),
        grant: r.get(1),
        status: CredentialStatus::parse(r.get::<_, &str>(2))?,
        sealed: r.get(3),
        key_id: r.get(4),
        scopes: r.get(5),
        expires_at: at(6),
        connected_at: from_micros(r.get(7)),
        refreshed_at: at(8),
        refreshes: r.get::<_, i64>(9) as u64,
        reason: r.get(10),
        generation: r.get(11),
        lease_owner: r.get(12),
        lease_until: at(13),
    })
}

pub(super) async fn credential(
    store: &PgStore,
    connection: &str,
) -> Result<Option<CredentialRow>, StoreError> {
    let client = store.client().await?;
    let found = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM credentials WHERE connection = $1"),
            &[&connection],
        )
        .await
        .map_err(db)?;
    found.as_ref().map(row).transpose()
}

pub(super) async fn credentials(store: &PgStore) -> Result<Vec<CredentialRow>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM credentials ORDER BY connection"),
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter().map(row).collect()
}

pub(super) async fn put(
    store: &PgStore,
    w: CredentialWrite,
    expected: Option<i64>,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let at = micros(w.at);
    let expires = w.expires_at.map(micros);
    let written = match expected {
        None => {
            client
                .execute(
                    "INSERT INTO credentials (connection, grant_kind, status, sealed, key_id, scopes,
                       expires_at, connected_at, refreshed_at, refreshes, reason, generation)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, $9, 1)
                     ON CONFLICT (connection) DO UPDATE SET grant_kind = $2, status = $3,
                       sealed = $4, key_id = $5, scopes = $6, expires_at = $7, connected_at = $8,
                       refreshed_at = NULL, refreshes = 0, reason = $9,
                       generation = credentials.generation + 1, lease_owner = NULL, lease_until = NULL",
                    &[
                        &w.connection, &w.grant, &w.status.as_str(), &w.sealed, &w.key_id,
                        &w.scopes, &expires, &at, &w.reason,
                    ],
                )
                .await
        }
        Some(g) => {
            client
                .execute(
                    "UPDATE credentials SET status = $3, sealed = $4, key_id = $5, scopes = $6,
                       expires_at = $7, refreshed_at = $8, refreshes = refreshes + $9, reason = $10,
                       generation = generation + 1, lease_owner = NULL, lease_until = NULL
                     WHERE connection = $1 AND generation = $2",
                    &[
                        &w.connection, &g, &w.status.as_str(), &w.sealed, &w.key_id, &w.scopes,
                        &expires, &at, &i64::from(!w.connect), &w.reason,
                    ],
                )
                .await
        }
    }
    .map_err(db)?;
    Ok(written == 1)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn claim(
    store: &PgStore,
    connection: &str,
    grant: &str,
    key_id: &str,
    generation: Option<i64>,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let taken = match generation {
        None => client
            .execute(
                "INSERT INTO credentials (connection, grant_kind, status, sealed, key_id, scopes,
                       connected_at, generation, lease_owner, lease_until)
                     VALUES ($1, $2, 'connected', ''::BYTEA, $3, '', $4, 1, $5, $6)
                     ON CONFLICT (connection) DO NOTHING",
                &[
                    &connection,
                    &grant,
                    &key_id,
                    &micros(now),
                    &owner,
                    &micros(until),
                ],
            )
            .await,
        Some(g) => {
            client
                .execute(
                    "UPDATE credentials SET lease_owner = $3, lease_until = $4
                     WHERE connection = $1 AND generation = $2
                       AND (lease_until IS NULL OR lease_until < $5)",
                    &[&connection, &g, &owner, &micros(until), &micros(now)],
                )
                .await
        }
    }
    .map_err(db)?;
    Ok(taken == 1)
}

pub(super) async fn release(
    store: &PgStore,
    connection: &str,
    owner: &str,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "UPDATE credentials SET lease_owner = NULL, lease_until = NULL
             WHERE connection = $1 AND lease_owner = $2",
            &[&connection, &owner],
        )
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn forget(store: &PgStore, connection: &str) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let gone = client
        .execute(
            "DELETE FROM credentials WHERE connection = $1",
            &[&connection],
        )
        .await
        .map_err(db)?;
    Ok(gone == 1)
}

pub(super) async fn rekey(
    store: &PgStore,
    from_key: &str,
    to_key: &str,
    rows: Vec<Resealed>,
) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db)?;
    let mut moved = 0;
    for r in &rows {
        moved += tx
            .execute(
                "UPDATE credentials SET sealed = $2, key_id = $3, generation = generation + 1
                 WHERE connection = $1 AND key_id = $4",
                &[&r.connection, &r.sealed, &to_key, &from_key],
            )
            .await
            .map_err(db)?;
    }
    let left: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM credentials WHERE key_id <> $1",
            &[&to_key],
        )
        .await
        .map_err(db)?
        .get(0);
    if left > 0 {
        // Dropping the transaction rolls it back.
        return Err(StoreError::Corrupt(format!(
            "{left} credential(s) changed during the rekey; nothing was re-sealed, run it again"
        )));
    }
    tx.commit().await.map_err(db)?;
    Ok(moved)
}

pub(super) async fn retry_incomplete(
    store: &PgStore,
    prefix: &str,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "UPDATE executions SET next_retry_at = $2
             WHERE status = 'incomplete' AND substr(error, 1, length($1)) = $1",
            &[&prefix, &micros(at)],
        )
        .await
        .map_err(db)
}
