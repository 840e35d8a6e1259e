//! The `Store` trait on SQLite: each write is one job for the writer thread,
//! each read one for a reader thread (`readers.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{insert_execution, load_execution, micros, upsert_step};
use super::{data, queue, SqliteStore};
use crate::engine::{DataRequest, ExecutionStatus, StepRecord, StepStatus};
use crate::store::{
    CredentialRow, CredentialWrite, Emitted, EventFilter, EventWait, ExecutionFilter,
    ExecutionSummary, Finish, NewEvent, NewExecution, PruneRule, ReceivedEvent, Resealed,
    ScenarioActivity, Store, StoreError, StoredEvent, StoredExecution, VersionSeen,
    WaitingExecution, WatchCommit, WatchFailure, WatchState,
};

fn steps_in(
    conn: &rusqlite::Connection,
    execution_id: Uuid,
    records: &[StepRecord],
) -> Result<(), StoreError> {
    let id = execution_id.to_string();
    for record in records {
        upsert_step(conn, &id, record)?;
        if record.kind == "wait_for" && record.status != StepStatus::Waiting {
            super::waits::end_wait(conn, &id, &record.path)?;
        }
    }
    Ok(())
}

fn finish_in(
    conn: &rusqlite::Connection,
    execution_id: Uuid,
    finish: &Finish,
) -> Result<(), StoreError> {
    let (error_step, error) = match &finish.error {
        Some(e) => (Some(e.step.as_str()), Some(e.message.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(
        "UPDATE executions SET status = ?2, finished_at = ?3, updated_at = ?3, next_retry_at = ?4,
           error_step = ?5, error = ?6, owner = NULL WHERE id = ?1",
    )?
    .execute(params![
        execution_id.to_string(),
        finish.status.as_str(),
        micros(finish.finished_at),
        finish.next_retry_at.map(micros),
        error_step,
        error,
    ])?;
    super::waits::settle_waits(
        conn,
        &execution_id.to_string(),
        finish.status == ExecutionStatus::Waiting,
        finish.finished_at,
    )
}

#[async_trait]
impl Store for SqliteStore {
    fn storage(&self) -> Option<crate::store::StorageStats> {
        self.log.as_ref().map(|log| log.stats())
    }

    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let (scenario, version, source) =
            (scenario.to_owned(), version.to_owned(), source.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO scenario_versions (scenario, version, source, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scenario, version) DO NOTHING",
            )?
            .execute(params![scenario, version, source, micros(Utc::now())])?;
            Ok(())
        })
        .await
    }

    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let (scenario, version) = (scenario.to_owned(), version.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT source FROM scenario_versions WHERE scenario = ?1 AND version = ?2",
                )?
                .query_row(params![scenario, version], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError> {
        self.call(move |conn| insert_execution(conn, &new, ExecutionStatus::Running, None))
            .await
    }

    /// One process writes an execution at a time on one machine (a takeover
    /// needs its owner's pid gone), so SQLite does not fence on `owner`.
    async fn record_step(
        &self,
        execution_id: Uuid,
        _owner: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.call(move |conn| {
            let id = execution_id.to_string();
            upsert_step(conn, &id, &record)?;
            if record.kind == "wait_for" && record.status != StepStatus::Waiting {
                super::waits::end_wait(conn, &id, &record.path)?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_execution(
        &self,
        execution_id: Uuid,
        _owner: &str,
        finish: Finish,
    ) -> Result<(), StoreError> {
        self.call(move |conn| finish_in(conn, execution_id, &finish))
            .await
    }

    async fn record_steps(
        &self,
        execution_id: Uuid,
        _owner: &str,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.call(move |conn| steps_in(conn, execution_id, &records))
            .await
    }

    async fn finish_with_steps(
        &self,
        execution_id: Uuid,
        _owner: &str,
        records: &[StepRecord],
        finish: Finish,
    ) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.call(move |conn| {
            steps_in(conn, execution_id, &records)?;
            finish_in(conn, execution_id, &finish)
        })
        .await
    }

    async fn data(
        &self,
        execution_id: Uuid,
        _owner: &str,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        data::data(self, execution_id, _owner, step_path, request, now).await
    }

    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Decided, StoreError> {
        let decision = decision.clone();
        self.call(move |conn| super::events::decide(conn, id, &decision, now))
            .await
    }

    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.read(move |conn| super::events::events(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.read(move |conn| super::events::counts(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
        self.read(move |conn| load_execution(conn, id)).await
    }

    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!("{}%", prefix.to_ascii_lowercase().replace(['%', '_'], ""));
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT id FROM executions WHERE id LIKE ?1 ORDER BY id LIMIT 5")?;
            let ids = statement
                .query_map([&pattern], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok())
                .filter_map(|id| Uuid::parse_str(&id).ok())
                .collect();
            Ok(ids)
        })
        .await
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::browse::list(conn, &filter))
            .await
    }

    async fn activity(
        &self,
        scenarios: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<ScenarioActivity>, StoreError> {
        let scenarios = scenarios.to_vec();
        self.read(move |conn| super::browse::activity(conn, &scenarios, since))
            .await
    }

    async fn versions(&self, scenario: &str) -> Result<Vec<VersionSeen>, StoreError> {
        let scenario = scenario.to_owned();
        self.read(move |conn| super::browse::versions(conn, &scenario))
            .await
    }

    async fn claim(
        &self,
        id: Uuid,
        expected: ExecutionStatus,
        expected_owner: Option<&str>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        queue::claim(self, id, expected, expected_owner, owner, now).await
    }

    async fn resumable(&self, now: DateTime<Utc>) -> Result<Vec<ExecutionSummary>, StoreError> {
        queue::resumable(self, now).await
    }

    async fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError> {
        queue::prune(self, rule).await
    }

    async fn enqueue(
        &self,
        new: NewExecution,
        admission: crate::store::Admission,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Enqueued, StoreError> {
        queue::enqueue(self, new, admission, now).await
    }

    async fn claim_queued(
        &self,
        owner: &str,
        limits: &[(String, u32)],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<StoredExecution>, StoreError> {
        queue::claim_queued(self, owner, limits, now, max).await
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        queue::queue_depth(self).await
    }

    async fn last_tick(&self, scenario: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        queue::last_tick(self, scenario).await
    }

    async fn emit(&self, event: &NewEvent, now: DateTime<Utc>) -> Result<Emitted, StoreError> {
        let event = event.clone();
        self.call(move |conn| super::waits::emit(conn, &event, now))
            .await
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        let wait = wait.clone();
        self.call(move |conn| super::waits::await_event(conn, execution_id, &wait))
            .await
    }

    async fn waits(&self, filter: &EventFilter) -> Result<Vec<WaitingExecution>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::waits::waits(conn, &filter))
            .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| super::waits::events(conn, &filter))
            .await
    }

    async fn waiting_by_event(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(super::waits::waiting_by_event).await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |conn| super::waits::prune_events(conn, before))
            .await
    }

    async fn watch(&self, scenario: &str) -> Result<Option<WatchState>, StoreError> {
        super::watches::watch(self, scenario).await
    }

    async fn watches(&self) -> Result<Vec<WatchState>, StoreError> {
        super::watches::watches(self).await
    }

    async fn claim_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        super::watches::claim(self, scenario, generation, owner, until).await
    }

    async fn commit_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        commit: WatchCommit,
    ) -> Result<bool, StoreError> {
        super::watches::commit(self, scenario, generation, commit).await
    }

    async fn fail_watch(
        &self,
        scenario: &str,
        generation: Option<i64>,
        failure: WatchFailure,
    ) -> Result<bool, StoreError> {
        super::watches::fail(self, scenario, generation, failure).await
    }

    async fn credential(&self, connection: &str) -> Result<Option<CredentialRow>, StoreError> {
        super::credentials::credential(self, connection).await
    }

    async fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError> {
        super::credentials::credentials(self).await
    }

    async fn put_credential(
        &self,
        write: CredentialWrite,
        expected: Option<i64>,
    ) -> Result<bool, StoreError> {
        super::credentials::put(self, write, expected).await
    }

    async fn claim_credential(
        &self,
        connection: &str,
        grant: &str,
        key_id: &str,
        generation: Option<i64>,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        super::credentials::claim(
            self, connection, grant, key_id, generation, owner, now, until,
        )
        .await
    }

    async fn release_credential(&self, connection: &str, owner: &str) -> Result<(), StoreError> {
        super::credentials::release(self, connection, owner).await
    }

    async fn forget_credential(&self, connection: &str) -> Result<bool, StoreError> {
        super::credentials::forget(self, connection).await
    }

    async fn rekey_credentials(
        &self,
        from_key: &str,
        to_key: &str,
        rows: Vec<Resealed>,
    ) -> Result<u64, StoreError> {
        super::credentials::rekey(self, from_key, to_key, rows).await
    }

    async fn retry_incomplete(&self, prefix: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        super::credentials::retry_incomplete(self, prefix, at).await
    }

    async fn reset_watch(&self, scenario: &str, start: &str) -> Result<(), StoreError> {
        super::watches::reset(self, scenario, start).await
    }

    async fn dedupe(
        &self,
        scenario: &str,
        key: &str,
        execution_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        queue::dedupe(self, scenario, key, execution_id, expires_at, now).await
    }
}
