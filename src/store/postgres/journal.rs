//! A running execution's journal on PostgreSQL: its step records and its
//! end. They go to the shared-commit writer (`writer.rs`), except a
//! `wait_for` step's record and a park (an end in `waiting`), which touch the
//! event waits and so take a transaction of their own.
//!
//! The bodies of those `Store` methods, as free functions on a [`PgStore`]
//! that `store_impl.rs` delegates to.

use uuid::Uuid;

use super::rows::micros;
use super::writer::Job;
use super::writes::{fence, upsert_step};
use super::{db, PgStore};
use crate::engine::{ExecutionStatus, StepRecord, StepStatus};
use crate::store::{Finish, Store, StoreError};

pub(super) async fn record_step(
    store: &PgStore,
    execution_id: Uuid,
    owner: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    let id = execution_id.to_string();
    if record.kind != "wait_for" {
        let (reply, answer) = tokio::sync::oneshot::channel();
        store.writer().await?.send(Job::Step {
            id,
            owner: owner.to_owned(),
            records: vec![record.clone()],
            reply,
        })?;
        return answer.await.map_err(|_| StoreError::Closed)?;
    }
    let mut client = store.client().await?;
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

pub(super) async fn finish_execution(
    store: &PgStore,
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
        store.writer().await?.send(Job::Finish {
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
    let mut client = store.client().await?;
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

pub(super) async fn record_steps(
    store: &PgStore,
    execution_id: Uuid,
    owner: &str,
    records: &[StepRecord],
) -> Result<(), StoreError> {
    if records.iter().any(|r| r.kind == "wait_for") {
        for record in records {
            store.record_step(execution_id, owner, record).await?;
        }
        return Ok(());
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    store.writer().await?.send(Job::Step {
        id: execution_id.to_string(),
        owner: owner.to_owned(),
        records: records.to_vec(),
        reply,
    })?;
    answer.await.map_err(|_| StoreError::Closed)?
}

pub(super) async fn finish_with_steps(
    store: &PgStore,
    execution_id: Uuid,
    owner: &str,
    records: &[StepRecord],
    finish: Finish,
) -> Result<(), StoreError> {
    if finish.status == ExecutionStatus::Waiting || records.iter().any(|r| r.kind == "wait_for") {
        store.record_steps(execution_id, owner, records).await?;
        return store.finish_execution(execution_id, owner, finish).await;
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    store.writer().await?.send(Job::Finish {
        id: execution_id.to_string(),
        owner: owner.to_owned(),
        records: records.to_vec(),
        finish,
        reply,
    })?;
    answer.await.map_err(|_| StoreError::Closed)?
}
