//! What the store keeps and returns: executions, their summaries and
//! filters, admissions, decisions, waits and events. Plain data; the
//! [`Store`](super::Store) trait moves it in and out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::{ExecutionError, ExecutionStatus, StepRecord};

/// A new execution, committed before its first step runs.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: Uuid,
    pub scenario: String,
    pub version: String,
    /// `{ body, headers, query, received_at }`, secrets masked.
    pub trigger: Value,
    pub vars: Map<String, Value>,
    pub started_at: DateTime<Utc>,
    pub owner: String,
    pub replay_of: Option<Uuid>,
    /// Business keys (`settings.keys`), evaluated from the trigger when the
    /// execution was accepted: stored indexed, so a lead's email finds its runs.
    pub keys: Vec<(String, String)>,
}

/// How an execution ended (or stopped, for `incomplete`).
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: ExecutionStatus,
    pub error: Option<ExecutionError>,
    pub finished_at: DateTime<Utc>,
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// One line of `executions list`.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionSummary {
    pub id: Uuid,
    pub scenario: String,
    pub version: String,
    pub status: ExecutionStatus,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub error_step: Option<String>,
    pub error: Option<String>,
    #[serde(skip)]
    pub owner: Option<String>,
    pub replay_of: Option<Uuid>,
    /// Filled by [`Store::list`](super::Store::list) and
    /// [`Store::execution`](super::Store::execution) only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

impl ExecutionSummary {
    pub fn duration_ms(&self) -> Option<i64> {
        self.finished_at
            .map(|end| (end - self.started_at).num_milliseconds())
    }
}

/// Everything kept about one execution: what `executions show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StoredExecution {
    #[serde(flatten)]
    pub summary: ExecutionSummary,
    pub trigger: Value,
    pub vars: Map<String, Value>,
    /// In the order the steps started.
    pub steps: Vec<StepRecord>,
}

/// Which executions to list, newest first (by id: the order they were accepted in).
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub scenario: Option<String>,
    pub status: Option<ExecutionStatus>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
    /// A business key's value (any key name), matched exactly.
    pub key: Option<String>,
    /// Keyset pagination: only executions strictly older than this one.
    pub after: Option<Cursor>,
    /// At most this many (default 50).
    pub limit: Option<usize>,
}

/// A position in the newest-first list of executions: the last row of a
/// page. Lists are ordered by id (UUIDv7: acceptance order, never changed),
/// and pages found by position, never by offset, cost the same deep in
/// history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub id: Uuid,
}

impl Cursor {
    pub fn of(summary: &ExecutionSummary) -> Cursor {
        Cursor { id: summary.id }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.id.fmt(f)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;
    fn from_str(text: &str) -> Result<Cursor, String> {
        Uuid::parse_str(text)
            .map(|id| Cursor { id })
            .map_err(|_| format!("`{text}` is not a page position (an execution id)"))
    }
}

/// What a scenario did lately: the scenarios page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioActivity {
    pub scenario: String,
    /// The latest start of any of its executions, however old.
    pub last_started: Option<DateTime<Utc>>,
    /// Executions started since the period's start, by status.
    pub counts: BTreeMap<String, u64>,
}

/// A scenario version kept in the store, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSeen {
    pub version: String,
    pub saved_at: DateTime<Utc>,
}

/// A dedupe key and until when it holds.
#[derive(Debug, Clone)]
pub struct DedupeKey {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// How an event enters the queue: what makes it unique, and how it is ordered.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// A webhook's dedupe key.
    pub dedupe: Option<DedupeKey>,
    /// A schedule's tick: recorded with the execution, so it never fires twice.
    pub tick: Option<DateTime<Utc>>,
    /// `settings.concurrency.key`, evaluated: the limit and order hold per key.
    pub concurrency_key: Option<String>,
    /// Start it at once in the process `NewExecution::owner` names: it is
    /// committed `running` with that owner, never `queued`, so no claim is
    /// needed. For a daemon with a free worker; if that process dies, the
    /// execution is resumed as any orphan is.
    pub start: bool,
}

/// What became of an event offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Accepted(Uuid),
    /// The dedupe key was seen within its window: nothing was queued.
    Duplicate(Uuid),
}

/// What to prune: executions that ended before `before`, except in scenarios
/// that keep their history longer (`settings.history`).
#[derive(Debug, Clone)]
pub struct PruneRule {
    pub before: DateTime<Utc>,
    /// Per-scenario cut-offs that replace `before` for that scenario.
    pub per_scenario: Vec<(String, DateTime<Utc>)>,
}

/// What became of a decision on a waiting execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Kept; the execution is queued to go on.
    Queued,
    NotFound,
    /// The execution does not wait for a review (any more): its status.
    NotWaiting(String),
}

/// One execution waiting at a `wait_for` step (`scenarist waits`).
#[derive(Debug, Clone, Serialize)]
pub struct WaitingExecution {
    pub execution_id: Uuid,
    pub scenario: String,
    /// The step's path.
    pub step: String,
    pub event: String,
    pub key: String,
    pub waiting_since: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// Which events (or waits) to list: by name and key, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event: Option<String>,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

/// A kept event and the executions it woke (`scenarist events`).
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub id: Uuid,
    pub event: String,
    pub key: String,
    pub data: Value,
    pub received_at: DateTime<Utc>,
    /// The execution whose `emit` step sent it; none for the CLI and the API.
    pub source: Option<Uuid>,
    pub resumed: Vec<Uuid>,
}

/// How a store's files stand (SQLite: its write-ahead log and database), for
/// `/metrics` and `/healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// The write-ahead log's size now.
    pub log_bytes: u64,
    /// The size the log is kept under (`?max_log=`).
    pub log_ceiling: u64,
    /// The database file's size.
    pub store_bytes: u64,
    /// Times the writer cut the log back to zero.
    pub log_truncations: u64,
    /// How long the last of those checkpoints held the writer.
    pub last_checkpoint: std::time::Duration,
    /// The longest such hold since the store was opened.
    pub longest_checkpoint: std::time::Duration,
}
