//! The review, report and correlated-event SQL on PostgreSQL.
//!
//! `emit` and `await_event` take a transaction-level advisory lock on their
//! (event, key) first, and `emit` locks each waiting execution's row: with
//! several writers at READ COMMITTED, an event and a wait committed at the
//! same moment would otherwise each miss the other, and an event could mark
//! a wait `woken` just as its execution parks without seeing the mark.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::db;
use super::rows::{from_micros, json_text, micros, parse_json, uuid};
use super::writes::{upsert_step, Tx};
use crate::engine::{record_output, Emitted, EventWait, NewEvent, ReceivedEvent, StepRecord};
use crate::report::{BusinessEvent, ExecutionCounts};
use crate::store::{Decided, EventFilter, StoreError, StoredEvent, WaitingExecution};

/// Events handed to a wait per look (as in SQLite).
const PAGE: i64 = 100;

pub(super) async fn record(
    tx: &Tx<'_>,
    execution_id: &str,
    event: &str,
    key: &str,
    value: Option<f64>,
    data: &Value,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let scenario: String = tx
        .query_opt(
            "SELECT scenario FROM executions WHERE id = $1",
            &[&execution_id],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0))
        .unwrap_or_default();
    let data = (!data.is_null()).then(|| data.to_string());
    let inserted = tx
        .execute(
            "INSERT INTO business_events (event, key, value, data, scenario, execution_id, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event, key) DO NOTHING",
            &[&event, &key, &value, &data, &scenario, &execution_id, &micros(now)],
        )
        .await
        .map_err(db)?;
    Ok(record_output(event, key, value, inserted == 1))
}

pub(super) async fn business_events(
    client: &impl GenericClient,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    scenario: Option<&str>,
) -> Result<Vec<BusinessEvent>, StoreError> {
    let rows = client
        .query(
            "SELECT event, key, value, scenario, execution_id, recorded_at FROM business_events
             WHERE recorded_at >= $1 AND recorded_at < $2 AND ($3::TEXT IS NULL OR scenario = $3)
             ORDER BY recorded_at",
            &[&micros(since), &micros(until), &scenario],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(BusinessEvent {
                event: r.get(0),
                key: r.get(1),
                value: r.get(2),
                scenario: r.get(3),
                execution_id: uuid(&r.get::<_, String>(4), "event execution id")?,
                recorded_at: from_micros(r.get(5)),
            })
        })
        .collect()
}

pub(super) async fn counts(
    client: &impl GenericClient,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    scenario: Option<&str>,
) -> Result<ExecutionCounts, StoreError> {
    let count = |sql: &'static str, with_period: bool| async move {
        let row = if with_period {
            client
                .query_one(sql, &[&micros(since), &micros(until), &scenario])
                .await
        } else {
            client.query_one(sql, &[&scenario]).await
        };
        row.map(|r| r.get::<_, i64>(0) as u64).map_err(db)
    };
    Ok(ExecutionCounts {
        waiting_for_review: count(
            "SELECT COUNT(*) FROM executions e WHERE e.status = 'waiting' AND ($1::TEXT IS NULL OR e.scenario = $1)
             AND EXISTS (SELECT 1 FROM steps s WHERE s.execution_id = e.id AND s.kind = 'approval' AND s.status = 'waiting')",
            false,
        )
        .await?,
        failed: count(
            "SELECT COUNT(*) FROM executions WHERE status = 'failed'
             AND started_at >= $1 AND started_at < $2 AND ($3::TEXT IS NULL OR scenario = $3)",
            true,
        )
        .await?,
        incomplete: count(
            "SELECT COUNT(*) FROM executions WHERE status = 'incomplete' AND ($1::TEXT IS NULL OR scenario = $1)",
            false,
        )
        .await?,
    })
}

/// Writes the decision only if the execution (its row locked) still waits on
/// that approval step: two decisions through two daemons never both count.
pub(super) async fn decide(
    tx: &Tx<'_>,
    id: Uuid,
    decision: &StepRecord,
    now: DateTime<Utc>,
) -> Result<Decided, StoreError> {
    let id_text = id.to_string();
    let status: Option<String> = tx
        .query_opt(
            "SELECT status FROM executions WHERE id = $1 FOR UPDATE",
            &[&id_text],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0));
    let Some(status) = status else {
        return Ok(Decided::NotFound);
    };
    if status != "waiting" {
        return Ok(Decided::NotWaiting(status));
    }
    let step: Option<(String, String)> = tx
        .query_opt(
            "SELECT kind, status FROM steps WHERE execution_id = $1 AND path = $2",
            &[&id_text, &decision.path],
        )
        .await
        .map_err(db)?
        .map(|r| (r.get(0), r.get(1)));
    if step.as_ref().map(|(k, s)| (k.as_str(), s.as_str())) != Some(("approval", "waiting")) {
        return Ok(Decided::NotWaiting(status));
    }
    upsert_step(tx, &id_text, decision).await?;
    tx.execute(
        "UPDATE executions SET status = 'queued', next_retry_at = $2, updated_at = $2 WHERE id = $1",
        &[&id_text, &micros(now)],
    )
    .await
    .map_err(db)?;
    tx.execute("NOTIFY scenarist_queue", &[])
        .await
        .map_err(db)?;
    Ok(Decided::Queued)
}

async fn lock_pair(tx: &Tx<'_>, event: &str, key: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))",
        &[&event, &key],
    )
    .await
    .map_err(db)?;
    Ok(())
}

async fn delivered(client: &impl GenericClient, event_id: &str) -> Result<Vec<Uuid>, StoreError> {
    let rows = client
        .query(
            "SELECT execution_id FROM event_deliveries WHERE event_id = $1 ORDER BY execution_id",
            &[&event_id],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| uuid(&r.get::<_, String>(0), "execution id"))
        .collect()
}

pub(super) async fn emit(
    tx: &Tx<'_>,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> Result<Emitted, StoreError> {
    lock_pair(tx, &event.event, &event.key).await?;
    let id = event.id.to_string();
    let inserted = tx
        .execute(
            "INSERT INTO events (id, event, key, data, received_at, source) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING",
            &[
                &id,
                &event.event,
                &event.key,
                &json_text(&event.data),
                &micros(event.received_at),
                &event.source.map(|s| s.to_string()),
            ],
        )
        .await
        .map_err(db)?;
    if inserted == 0 {
        return Ok(Emitted {
            event_id: event.id,
            resumed: delivered(tx, &id).await?,
            duplicate: true,
        });
    }
    let waiters = tx
        .query(
            "SELECT execution_id, path FROM event_waits WHERE event = $1 AND key = $2 AND since <= $3
             ORDER BY execution_id",
            &[&event.event, &event.key, &micros(event.received_at)],
        )
        .await
        .map_err(db)?;
    let mut resumed = Vec::with_capacity(waiters.len());
    let mut queued = false;
    for row in waiters {
        let (execution_id, path): (String, String) = (row.get(0), row.get(1));
        // The execution's row, locked: a park committing now is seen whole.
        let status: Option<String> = tx
            .query_opt(
                "SELECT status FROM executions WHERE id = $1 FOR UPDATE",
                &[&execution_id],
            )
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        match status.as_deref() {
            Some("waiting") => {
                tx.execute(
                    "UPDATE executions SET status = 'queued', next_retry_at = $2, updated_at = $2 WHERE id = $1",
                    &[&execution_id, &micros(now)],
                )
                .await
                .map_err(db)?;
                tx.execute(
                    "DELETE FROM event_waits WHERE execution_id = $1 AND path = $2",
                    &[&execution_id, &path],
                )
                .await
                .map_err(db)?;
                queued = true;
            }
            Some(_) => {
                tx.execute(
                    "UPDATE event_waits SET woken = 1 WHERE execution_id = $1 AND path = $2",
                    &[&execution_id, &path],
                )
                .await
                .map_err(db)?;
            }
            None => continue,
        }
        tx.execute(
            "INSERT INTO event_deliveries (event_id, execution_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &execution_id],
        )
        .await
        .map_err(db)?;
        resumed.push(uuid(&execution_id, "execution id")?);
    }
    if queued {
        tx.execute("NOTIFY scenarist_queue", &[])
            .await
            .map_err(db)?;
    }
    Ok(Emitted {
        event_id: event.id,
        resumed,
        duplicate: false,
    })
}

pub(super) async fn await_event(
    tx: &Tx<'_>,
    execution_id: Uuid,
    wait: &EventWait,
) -> Result<Vec<ReceivedEvent>, StoreError> {
    lock_pair(tx, &wait.event, &wait.key).await?;
    let rows = tx
        .query(
            "SELECT seq, id, data, received_at FROM events
             WHERE event = $1 AND key = $2 AND seq > $3 AND received_at >= $4 AND received_at <= $5
             ORDER BY seq LIMIT $6",
            &[
                &wait.event,
                &wait.key,
                &wait.after_seq,
                &micros(wait.since),
                &micros(wait.deadline),
                &PAGE,
            ],
        )
        .await
        .map_err(db)?;
    if rows.is_empty() {
        tx.execute(
            "INSERT INTO event_waits (execution_id, path, event, key, since, after_seq, waiting_since, deadline, woken)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)
             ON CONFLICT (execution_id, path) DO UPDATE SET event = excluded.event, key = excluded.key,
               since = excluded.since, after_seq = excluded.after_seq, woken = 0",
            &[
                &execution_id.to_string(),
                &wait.path,
                &wait.event,
                &wait.key,
                &micros(wait.since),
                &wait.after_seq,
                &micros(wait.waiting_since),
                &micros(wait.deadline),
            ],
        )
        .await
        .map_err(db)?;
        return Ok(Vec::new());
    }
    rows.iter()
        .map(|r| {
            Ok(ReceivedEvent {
                id: uuid(&r.get::<_, String>(1), "event id")?,
                seq: r.get(0),
                event: wait.event.clone(),
                key: wait.key.clone(),
                data: parse_json(&r.get::<_, String>(2), "an event's data")?,
                received_at: from_micros(r.get(3)),
            })
        })
        .collect()
}

/// After an execution stopped (its row already updated, so locked by this
/// transaction): see the SQLite store's `settle_waits`.
pub(super) async fn settle_waits(
    tx: &Tx<'_>,
    execution_id: &str,
    parked: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !parked {
        tx.execute(
            "DELETE FROM event_waits WHERE execution_id = $1",
            &[&execution_id],
        )
        .await
        .map_err(db)?;
        return Ok(());
    }
    let woken = tx
        .execute(
            "DELETE FROM event_waits WHERE execution_id = $1 AND woken = 1",
            &[&execution_id],
        )
        .await
        .map_err(db)?;
    if woken > 0 {
        tx.execute(
            "UPDATE executions SET status = 'queued', next_retry_at = $2 WHERE id = $1 AND status = 'waiting'",
            &[&execution_id, &micros(now)],
        )
        .await
        .map_err(db)?;
        tx.execute("NOTIFY scenarist_queue", &[])
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn waits(
    client: &impl GenericClient,
    filter: &EventFilter,
) -> Result<Vec<WaitingExecution>, StoreError> {
    let limit = filter.limit.map(|l| l as i64).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT w.execution_id, e.scenario, w.path, w.event, w.key, w.waiting_since, w.deadline
             FROM event_waits w JOIN executions e ON e.id = w.execution_id
             WHERE e.status = 'waiting' AND ($1::TEXT IS NULL OR w.event = $1) AND ($2::TEXT IS NULL OR w.key = $2)
             ORDER BY w.waiting_since LIMIT $3",
            &[&filter.event, &filter.key, &limit],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(WaitingExecution {
                execution_id: uuid(&r.get::<_, String>(0), "execution id")?,
                scenario: r.get(1),
                step: r.get(2),
                event: r.get(3),
                key: r.get(4),
                waiting_since: from_micros(r.get(5)),
                deadline: from_micros(r.get(6)),
            })
        })
        .collect()
}

pub(super) async fn events(
    client: &impl GenericClient,
    filter: &EventFilter,
) -> Result<Vec<StoredEvent>, StoreError> {
    let limit = filter.limit.map(|l| l as i64).unwrap_or(100);
    let rows = client
        .query(
            "SELECT id, event, key, data, received_at, source FROM events
             WHERE ($1::TEXT IS NULL OR event = $1) AND ($2::TEXT IS NULL OR key = $2)
             ORDER BY seq DESC LIMIT $3",
            &[&filter.event, &filter.key, &limit],
        )
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.get(0);
        let source: Option<String> = r.get(5);
        out.push(StoredEvent {
            resumed: delivered(client, &id).await?,
            id: uuid(&id, "event id")?,
            event: r.get(1),
            key: r.get(2),
            data: parse_json(&r.get::<_, String>(3), "an event's data")?,
            received_at: from_micros(r.get(4)),
            source: source
                .as_deref()
                .map(|s| uuid(s, "execution id"))
                .transpose()?,
        });
    }
    Ok(out)
}
