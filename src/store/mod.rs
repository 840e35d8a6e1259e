//! The durable store: scenario versions, executions, the step journal, data
//! stores and dedupe keys, behind one trait.
//!
//! SQLite (a file, or `memory`) is the implementation today; the SQL is kept
//! portable so that a PostgreSQL store for several machines can implement the
//! same trait. The engine never sees SQL: it talks to [`StoreJournal`].

pub mod browse;
mod credentials;
mod journal;
mod postgres;
mod records;
mod sqlite;
mod url;
mod watches;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{DataRequest, ExecutionStatus, StepRecord};
pub use crate::engine::{Emitted, EventWait, NewEvent, ReceivedEvent};

pub use credentials::{CredentialRow, CredentialStatus, CredentialWrite, Resealed};
pub use journal::StoreJournal;
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::{Durability, SqliteStore};
pub use url::{open, without_password};
pub use watches::{Seen, WatchCommit, WatchFailure, WatchState};

/// A step kind's name as the engine's records hold it (`&'static str`).
pub(crate) fn kind_name(text: &str) -> &'static str {
    crate::model::StepKind::NAMES
        .iter()
        .find(|k| **k == text)
        .copied()
        .unwrap_or("unknown")
}

/// Where the store lives when neither `--store` nor `SCENARIST_STORE` says.
pub const DEFAULT_STORE_URL: &str = "sqlite://.scenarist/scenarist.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use `{url}` as a store: {message}")]
    Url { url: String, message: String },
    #[error("cannot open the store {path}: {message}")]
    Open { path: String, message: String },
    #[error("{path} is not a scenarist store: {reason}; refusing to touch it")]
    Foreign { path: String, reason: String },
    #[error("{path} was written by a newer scenarist (store schema {found}, this version knows up to {known}); upgrade scenarist to use it")]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("store error: {0}")]
    Database(String),
    #[error("the store's stored data is damaged: {0}")]
    Corrupt(String),
    #[error("the store has shut down")]
    Closed,
    #[error("execution {0} was taken over by another process (this one lost its lease); nothing more is written for it here")]
    LeaseLost(Uuid),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The one interface every store implements. Each method is one short
/// transaction; a method returns only once its change is durable.
#[async_trait]
pub trait Store: Send + Sync {
    /// Keeps the text of a scenario version (idempotent).
    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError>;
    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError>;

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError>;
    /// Inserts or replaces the step's record (a step re-run on resume replaces it).
    ///
    /// Writes for a running execution name its `owner` and are fenced where
    /// several processes share the store: when another process has taken the
    /// execution over, the write is refused with [`StoreError::LeaseLost`].
    async fn record_step(
        &self,
        execution_id: Uuid,
        owner: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError>;
    /// Fenced like [`Store::record_step`].
    async fn finish_execution(
        &self,
        execution_id: Uuid,
        owner: &str,
        finish: Finish,
    ) -> Result<(), StoreError>;

    /// Several step records at once (a journal's batch), in order.
    async fn record_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        for record in records {
            self.record_step(execution_id, owner, record).await?;
        }
        Ok(())
    }

    /// The last step records and the execution's end, as one commit where
    /// the store can.
    async fn finish_with_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
        finish: Finish,
    ) -> Result<(), StoreError> {
        self.record_steps(execution_id, owner, records).await?;
        self.finish_execution(execution_id, owner, finish).await
    }

    /// Runs a data store operation and records the step's result in the same
    /// transaction, so a resumed execution never applies it twice.
    async fn data(
        &self,
        execution_id: Uuid,
        owner: &str,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError>;

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError>;
    /// Ids starting with `prefix` (at most a few): lets people type short ids.
    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError>;
    /// Newest first, with their business keys; a page of `filter.limit`.
    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError>;

    /// For each of `scenarios`, in that order: its last start (however old),
    /// and its executions started since `since` by status.
    async fn activity(
        &self,
        scenarios: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<ScenarioActivity>, StoreError>;

    /// The versions of a scenario kept in the store, newest first.
    async fn versions(&self, scenario: &str) -> Result<Vec<VersionSeen>, StoreError>;

    /// Takes an execution over to run it again: succeeds only if it is still
    /// in `expected` status with the `expected_owner` it had when it was read,
    /// so two processes never resume the same execution.
    async fn claim(
        &self,
        id: Uuid,
        expected: ExecutionStatus,
        expected_owner: Option<&str>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;

    /// Executions to resume: every `running` one (the caller checks its owner
    /// is gone), and every `incomplete`, `waiting` (a deadline or a delay's
    /// end) or decided-and-queued one whose time has come.
    async fn resumable(&self, now: DateTime<Utc>) -> Result<Vec<ExecutionSummary>, StoreError>;

    /// Deletes finished executions (succeeded, failed, filtered) older than the
    /// rule says, with their steps; returns how many.
    async fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError>;

    /// Commits an event as a `queued` execution, unless its dedupe key is
    /// already held (checked and taken in the same transaction).
    async fn enqueue(
        &self,
        new: NewExecution,
        admission: Admission,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError>;

    /// Takes up to `max` of the oldest queued executions whose scenario (and
    /// concurrency key) has room: `limits` gives, per scenario, how many may
    /// run at once. Marks them `running` for `owner`.
    async fn claim_queued(
        &self,
        owner: &str,
        limits: &[(String, u32)],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<StoredExecution>, StoreError>;

    async fn queue_depth(&self) -> Result<u64, StoreError>;

    /// The latest recorded tick of a scenario, to catch up after downtime.
    async fn last_tick(&self, scenario: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Keeps a reviewer's decision as the result of the approval step it names
    /// (`decision.path`), only if the execution still waits on that step.
    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError>;

    /// Business events (`record` steps) recorded in `[since, until)`.
    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError>;

    /// Executions that need a person: waiting reviews, failed and incomplete ones.
    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError>;

    /// Commits a correlated event (idempotent by its id) and, in the same
    /// transaction, wakes every execution waiting for its (event, key): a
    /// `waiting` one is queued at once; one still running towards its wait is
    /// marked, and queued when it parks. `now` is the wake time.
    async fn emit(&self, event: &NewEvent, now: DateTime<Utc>) -> Result<Emitted, StoreError>;

    /// The events a `wait_for` may take (oldest first, a page at a time);
    /// when there are none, registers the wait in the same transaction.
    ///
    /// `emit` and `await_event` must be serialised per (event, key): SQLite's
    /// one writer does it; a backend with concurrent writers (PostgreSQL, at
    /// READ COMMITTED) must take a lock on the pair in both, e.g.
    /// `pg_advisory_xact_lock(hashtextextended(event || key, 0))`, or an event
    /// and a wait committed at the same moment could each miss the other.
    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, StoreError>;

    /// Executions parked at a `wait_for`, oldest wait first.
    async fn waits(&self, filter: &EventFilter) -> Result<Vec<WaitingExecution>, StoreError>;

    /// Kept events, newest first, with the executions each woke.
    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError>;

    /// How many executions wait, per event name: the metrics gauge.
    async fn waiting_by_event(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Deletes events received before `before`; returns how many.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Says that `owner` is alive (running executions). Stores shared by
    /// several machines keep it; a single-machine store needs none.
    async fn heartbeat(&self, _owner: &str, _now: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }

    /// The owners that said they were alive within `lease` of `now`; `None`
    /// when the store keeps no heartbeats (then a process on this host is
    /// known dead by its pid, and one elsewhere counts as alive).
    async fn live_owners(
        &self,
        _now: DateTime<Utc>,
        _lease: std::time::Duration,
    ) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        Ok(None)
    }

    /// Calls `ring` whenever another process queues work (an event accepted,
    /// a decision, a wake-up), until the connection fails; returns then.
    /// Stores shared by several processes push these (PostgreSQL: LISTEN);
    /// the default never rings, and the daemon's slow poll covers the rest.
    async fn listen_for_work(&self, _ring: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        std::future::pending::<()>().await;
        Ok(())
    }

    /// Reserves the next call of a rate-limited connection in a schedule
    /// shared by every process of the store: how long to wait for it, or
    /// `None` when the store keeps no shared schedule (then the process
    /// paces its own calls).
    async fn pace_reserve(
        &self,
        _key: &str,
        _interval: std::time::Duration,
        _tolerance: std::time::Duration,
    ) -> Result<Option<std::time::Duration>, StoreError> {
        Ok(None)
    }

    /// Holds the shared schedule back until `until` from now; `false` when
    /// the store keeps none.
    async fn pace_hold(&self, _key: &str, _until: std::time::Duration) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// How the store's files stand; `None` where it keeps none of its own
    /// (memory, PostgreSQL).
    fn storage(&self) -> Option<StorageStats> {
        None
    }

    /// Whether other processes share this store (then each due poll is
    /// claimed before it is made, so that it is made once).
    fn shared(&self) -> bool {
        false
    }

    /// Where a poll trigger stands.
    async fn watch(&self, scenario: &str) -> Result<Option<WatchState>, StoreError>;

    /// Every poll trigger's row, by scenario.
    async fn watches(&self) -> Result<Vec<WatchState>, StoreError>;

    /// Takes the watch for one poll until `until`, if it is still at
    /// `generation` (`None`: no row yet). The new generation, or `None` when
    /// another process moved it first.
    async fn claim_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;

    /// Commits a poll: the cursor, the window and the executions it queues,
    /// in one transaction, if the watch is still at `generation`. `false`
    /// (and nothing written) when it moved.
    async fn commit_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        commit: WatchCommit,
    ) -> Result<bool, StoreError>;

    /// Records a failed poll (the cursor stays), if the watch is still at `generation`.
    async fn fail_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        failure: WatchFailure,
    ) -> Result<bool, StoreError>;

    /// Makes the next poll start again from `start` (`now`, `all` or a time).
    async fn reset_watch(&self, scenario: &str, start: &str) -> Result<(), StoreError>;

    /// One connection's sealed tokens.
    async fn credential(&self, connection: &str) -> Result<Option<CredentialRow>, StoreError>;

    /// Every connection's row, by name.
    async fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError>;

    /// Writes a connection's row and lets go its lease: `expected: None`
    /// replaces whatever is there (a connect), `Some(g)` writes only if the
    /// row is still at generation `g` (a refresh). Whether it was written.
    async fn put_credential(
        &self,
        write: CredentialWrite,
        expected: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Takes the right to refresh a connection's tokens until `until`, if
    /// its row is at `generation` and no other lease is live at `now`
    /// (`None`: no row yet; an empty one is made). Whether it is ours.
    #[allow(clippy::too_many_arguments)]
    async fn claim_credential(
        &self,
        connection: &str,
        grant: &str,
        key_id: &str,
        generation: Option<i64>,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Lets go a refresh lease without writing (the refresh could not be made).
    async fn release_credential(&self, connection: &str, owner: &str) -> Result<(), StoreError>;

    /// Deletes a connection's row. Whether there was one.
    async fn forget_credential(&self, connection: &str) -> Result<bool, StoreError>;

    /// Replaces every row sealed under `from_key` with its re-sealed text
    /// under `to_key`, all or nothing. How many were re-sealed.
    async fn rekey_credentials(
        &self,
        from_key: &str,
        to_key: &str,
        rows: Vec<Resealed>,
    ) -> Result<u64, StoreError>;

    /// Makes every `incomplete` execution whose error starts with `prefix`
    /// due at `at` (a connection was connected again). How many.
    async fn retry_incomplete(&self, prefix: &str, at: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Remembers a dedupe key; returns the execution that already holds it, if any.
    async fn dedupe(
        &self,
        scenario: &str,
        key: &str,
        execution_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;
}
