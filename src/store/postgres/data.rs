//! A data store operation on PostgreSQL (`Store::data`): a get, put, delete,
//! increment or record on one key, fenced on the execution's owner, with the
//! step's result recorded in the same transaction so that a resumed
//! execution never applies it twice.
//!
//! The body of that `Store` method, as a free function on a [`PgStore`] that
//! `store_impl.rs` delegates to.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{json_text, micros, parse_json};
use super::writes::{fence, upsert_step};
use super::{db, PgStore};
use crate::engine::{DataOp, DataRequest};
use crate::store::StoreError;

pub(super) async fn data(
    store: &PgStore,
    execution_id: Uuid,
    owner: &str,
    step_path: &str,
    request: &DataRequest,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let mut client = store.client().await?;
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
    let record = crate::engine::data_step_record(step_path, request, output.clone(), now);
    upsert_step(&tx, &execution_id.to_string(), &record).await?;
    tx.commit().await.map_err(db)?;
    Ok(output)
}
