//! Correlated events: what `emit` sends and `wait_for` takes, as the engine
//! sees them. The store keeps them and wakes waiters; the engine decides which
//! event a wait takes (its `match` is a template, which the store never
//! evaluates).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// An event to commit: by an `emit` step, `scenarist emit` or `POST /api/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stable for an `emit` step (per execution and step), so a resumed or
    /// replayed execution commits it once; fresh for the CLI and the API.
    pub id: Uuid,
    pub event: String,
    pub key: String,
    /// Secrets masked.
    pub data: Value,
    pub received_at: DateTime<Utc>,
    /// The execution that emitted it, if any.
    pub source: Option<Uuid>,
}

/// An event as a waiting execution sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedEvent {
    pub id: Uuid,
    /// Commit order among the events of one (event, key): a wait's cursor.
    #[serde(skip)]
    pub seq: i64,
    pub event: String,
    pub key: String,
    pub data: Value,
    pub received_at: DateTime<Utc>,
}

/// What committing an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Emitted {
    pub event_id: Uuid,
    /// The executions this event woke (in the same transaction as the event).
    pub resumed: Vec<Uuid>,
    /// The event id was already committed (a resumed or replayed `emit`):
    /// nothing was sent again; `resumed` is what the first commit woke.
    pub duplicate: bool,
}

/// A `wait_for` step asking for its events, and registering its wait when
/// there is none yet: both in one transaction, so an event committed at the
/// same moment is either returned or wakes the execution.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWait {
    /// The step's path: one execution may wait at several steps over its life.
    pub path: String,
    pub event: String,
    pub key: String,
    /// Events received before this are not taken.
    pub since: DateTime<Utc>,
    /// Events up to this `seq` were already looked at.
    pub after_seq: i64,
    /// When the wait started (kept for `scenarist waits`).
    pub waiting_since: DateTime<Utc>,
    /// Events received after this are not taken; the execution is woken then.
    pub deadline: DateTime<Utc>,
}
