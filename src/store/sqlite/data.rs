//! The `store` step's operations (get, put, delete, increment) on SQLite,
//! kept with the step's record in one transaction, so a retried step never
//! applies its operation twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{json_text, micros, parse_json, upsert_step};
use super::SqliteStore;
use crate::engine::{DataOp, DataRequest};
use crate::store::StoreError;

pub(super) async fn data(
    store: &SqliteStore,
    execution_id: Uuid,
    _owner: &str,
    step_path: &str,
    request: &DataRequest,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let request = request.clone();
    let step_path = step_path.to_owned();
    store.call(move |conn| {
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
