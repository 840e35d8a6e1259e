//! The SQL of correlated events: committing an event and waking its waiters
//! in one transaction, a wait's look at its events (registering the wait when
//! there are none), and the lists `waits` and `events` show.
//!
//! Both sides of the race between an event and a wait that is about to park
//! run on the writer thread, one after the other: either the event is
//! committed first and the wait's look returns it, or the wait is registered
//! first and the event wakes it.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::rows::{from_micros, json_text, micros, parse_json};
use crate::engine::{Emitted, EventWait, NewEvent, ReceivedEvent};
use crate::store::{EventFilter, StoreError, StoredEvent, WaitingExecution};

/// Events handed to a wait per look: a wait whose `match` refuses many events
/// looks again from where it stopped.
const PAGE: i64 = 100;

fn uuid(text: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("{what} `{text}`: {e}")))
}

fn delivered(conn: &Connection, event_id: &str) -> Result<Vec<Uuid>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT execution_id FROM event_deliveries WHERE event_id = ?1 ORDER BY execution_id",
    )?;
    let ids: Vec<String> = statement
        .query_map([event_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.iter().map(|id| uuid(id, "execution id")).collect()
}

pub(super) fn emit(
    conn: &Connection,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> Result<Emitted, StoreError> {
    let id = event.id.to_string();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (id, event, key, data, received_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            id,
            event.event,
            event.key,
            json_text(&event.data),
            micros(event.received_at),
            event.source.map(|s| s.to_string()),
        ])?;
    if inserted == 0 {
        return Ok(Emitted {
            event_id: event.id,
            resumed: delivered(conn, &id)?,
            duplicate: true,
        });
    }
    let waiters: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT w.execution_id, w.path, e.status FROM event_waits w JOIN executions e ON e.id = w.execution_id
             WHERE w.event = ?1 AND w.key = ?2 AND w.since <= ?3",
        )?
        .query_map(params![event.event, event.key, micros(event.received_at)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut resumed = Vec::with_capacity(waiters.len());
    for (execution_id, path, status) in waiters {
        if status == "waiting" {
            conn.prepare_cached(
                "UPDATE executions SET status = 'queued', next_retry_at = ?2, updated_at = ?2
                 WHERE id = ?1 AND status = 'waiting'",
            )?
            .execute(params![execution_id, micros(now)])?;
            conn.prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1 AND path = ?2")?
                .execute(params![execution_id, path])?;
        } else {
            // Still running towards its park: queued when it parks.
            conn.prepare_cached(
                "UPDATE event_waits SET woken = 1 WHERE execution_id = ?1 AND path = ?2",
            )?
            .execute(params![execution_id, path])?;
        }
        conn.prepare_cached(
            "INSERT INTO event_deliveries (event_id, execution_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, execution_id])?;
        resumed.push(uuid(&execution_id, "execution id")?);
    }
    Ok(Emitted {
        event_id: event.id,
        resumed,
        duplicate: false,
    })
}

pub(super) fn await_event(
    conn: &Connection,
    execution_id: Uuid,
    wait: &EventWait,
) -> Result<Vec<ReceivedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, id, data, received_at FROM events
         WHERE event = ?1 AND key = ?2 AND seq > ?3 AND received_at >= ?4 AND received_at <= ?5
         ORDER BY seq LIMIT ?6",
    )?;
    let rows: Vec<(i64, String, String, i64)> = statement
        .query_map(
            params![
                wait.event,
                wait.key,
                wait.after_seq,
                micros(wait.since),
                micros(wait.deadline),
                PAGE
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        conn.prepare_cached(
            "INSERT INTO event_waits (execution_id, path, event, key, since, after_seq, waiting_since, deadline, woken)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)
             ON CONFLICT (execution_id, path) DO UPDATE SET event = excluded.event, key = excluded.key,
               since = excluded.since, after_seq = excluded.after_seq, woken = 0",
        )?
        .execute(params![
            execution_id.to_string(),
            wait.path,
            wait.event,
            wait.key,
            micros(wait.since),
            wait.after_seq,
            micros(wait.waiting_since),
            micros(wait.deadline),
        ])?;
        return Ok(Vec::new());
    }
    rows.into_iter()
        .map(|(seq, id, data, received_at)| {
            Ok(ReceivedEvent {
                id: uuid(&id, "event id")?,
                seq,
                event: wait.event.clone(),
                key: wait.key.clone(),
                data: parse_json(&data, "an event's data")?,
                received_at: from_micros(received_at),
            })
        })
        .collect()
}

/// After an execution stopped: a parked one that an event reached while it
/// was still running is queued at once; any other outcome ends its waits.
pub(super) fn settle_waits(
    conn: &Connection,
    execution_id: &str,
    parked: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !parked {
        conn.prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1")?
            .execute([execution_id])?;
        return Ok(());
    }
    let woken = conn
        .prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1 AND woken = 1")?
        .execute([execution_id])?;
    if woken > 0 {
        conn.prepare_cached(
            "UPDATE executions SET status = 'queued', next_retry_at = ?2 WHERE id = ?1 AND status = 'waiting'",
        )?
        .execute(params![execution_id, micros(now)])?;
    }
    Ok(())
}

/// A `wait_for` step that settled no longer waits.
pub(super) fn end_wait(
    conn: &Connection,
    execution_id: &str,
    path: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM event_waits WHERE execution_id = ?1 AND path = ?2")?
        .execute(params![execution_id, path])?;
    Ok(())
}

pub(super) fn waits(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<WaitingExecution>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT w.execution_id, e.scenario, w.path, w.event, w.key, w.waiting_since, w.deadline
         FROM event_waits w JOIN executions e ON e.id = w.execution_id
         WHERE e.status = 'waiting' AND (?1 IS NULL OR w.event = ?1) AND (?2 IS NULL OR w.key = ?2)
         ORDER BY w.waiting_since LIMIT ?3",
    )?;
    let limit = filter.limit.map(|l| l as i64).unwrap_or(-1);
    let rows = statement.query_map(params![filter.event, filter.key, limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, scenario, step, event, key, since, deadline) = row?;
        out.push(WaitingExecution {
            execution_id: uuid(&id, "execution id")?,
            scenario,
            step,
            event,
            key,
            waiting_since: from_micros(since),
            deadline: from_micros(deadline),
        });
    }
    Ok(out)
}

pub(super) fn events(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, event, key, data, received_at, source FROM events
         WHERE (?1 IS NULL OR event = ?1) AND (?2 IS NULL OR key = ?2)
         ORDER BY seq DESC LIMIT ?3",
    )?;
    let limit = filter.limit.map(|l| l as i64).unwrap_or(100);
    let rows: Vec<(String, String, String, String, i64, Option<String>)> = statement
        .query_map(params![filter.event, filter.key, limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, event, key, data, received_at, source) in rows {
        out.push(StoredEvent {
            resumed: delivered(conn, &id)?,
            id: uuid(&id, "event id")?,
            event,
            key,
            data: parse_json(&data, "an event's data")?,
            received_at: from_micros(received_at),
            source: source
                .as_deref()
                .map(|s| uuid(s, "execution id"))
                .transpose()?,
        });
    }
    Ok(out)
}

pub(super) fn waiting_by_event(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT w.event, COUNT(*) FROM event_waits w JOIN executions e ON e.id = w.execution_id
         WHERE e.status = 'waiting' GROUP BY w.event ORDER BY w.event",
    )?;
    let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (event, count) = row?;
        out.push((event, count as u64));
    }
    Ok(out)
}

pub(super) fn prune_events(conn: &Connection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM events WHERE received_at < ?1")?
        .execute([micros(before)])? as u64)
}
