//! The `Store` trait on PostgreSQL: each method is one transaction (or one
//! atomic statement) on a pooled connection.
//!
//! The short methods are here; the longer bodies live beside them, one idea
//! a file: `journal.rs` (step records and ends), `data.rs` (data store
//! operations), `queue.rs` (claims, the queue, dedupe keys, pruning), and the
//! statements they share with the writer in `writes.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::rows::micros;
use super::writer::Job;
use super::writes::{beat, insert_execution, load};
use super::{browse, data, db, journal, queue, PgStore};
use crate::engine::{DataRequest, ExecutionStatus, StepRecord};
use crate::store::{
    Admission, CredentialRow, CredentialWrite, Decided, Emitted, Enqueued, EventFilter, EventWait,
    ExecutionFilter, ExecutionSummary, Finish, NewEvent, NewExecution, PruneRule, ReceivedEvent,
    Resealed, ScenarioActivity, Store, StoreError, StoredEvent, StoredExecution, VersionSeen,
    WaitingExecution, WatchCommit, WatchFailure, WatchState,
};

#[async_trait]
impl Store for PgStore {
    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO scenario_versions (scenario, version, source, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (scenario, version) DO NOTHING",
                &[&scenario, &version, &source, &micros(Utc::now())],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT source FROM scenario_versions WHERE scenario = $1 AND version = $2",
                &[&scenario, &version],
            )
            .await
            .map_err(db)?
            .map(|r| r.get(0)))
    }

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        insert_execution(&tx, &new, ExecutionStatus::Running, None).await?;
        tx.commit().await.map_err(db)
    }

    async fn record_step(
        &self,
        execution_id: Uuid,
        owner: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        journal::record_step(self, execution_id, owner, record).await
    }

    async fn finish_execution(
        &self,
        execution_id: Uuid,
        owner: &str,
        finish: Finish,
    ) -> Result<(), StoreError> {
        journal::finish_execution(self, execution_id, owner, finish).await
    }

    async fn record_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        journal::record_steps(self, execution_id, owner, records).await
    }

    async fn finish_with_steps(
        &self,
        execution_id: Uuid,
        owner: &str,
        records: &[StepRecord],
        finish: Finish,
    ) -> Result<(), StoreError> {
        journal::finish_with_steps(self, execution_id, owner, records, finish).await
    }

    async fn data(
        &self,
        execution_id: Uuid,
        owner: &str,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        data::data(self, execution_id, owner, step_path, request, now).await
    }

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
        let client = self.client().await?;
        let mut found = load(&client, &id.to_string()).await?;
        if let Some(stored) = &mut found {
            browse::with_keys(&client, std::slice::from_mut(&mut stored.summary)).await?;
        }
        Ok(found)
    }

    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix
                .trim()
                .to_ascii_lowercase()
                .replace(['%', '_', '\\'], "")
        );
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM executions WHERE id LIKE $1 ORDER BY id LIMIT 5",
                &[&pattern],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| Uuid::parse_str(&r.get::<_, String>(0)).ok())
            .collect())
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        browse::list(self, filter).await
    }

    async fn activity(
        &self,
        scenarios: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<ScenarioActivity>, StoreError> {
        browse::activity(self, scenarios, since).await
    }

    async fn versions(&self, scenario: &str) -> Result<Vec<VersionSeen>, StoreError> {
        browse::versions(self, scenario).await
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
        admission: Admission,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writer().await?.send(Job::Enqueue {
            new: Box::new(new),
            admission,
            now,
            reply,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
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

    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let decided = super::events::decide(&tx, id, decision, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(decided)
    }

    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError> {
        let client = self.client().await?;
        super::events::business_events(&client, since, until, scenario).await
    }

    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError> {
        let client = self.client().await?;
        super::events::counts(&client, since, until, scenario).await
    }

    async fn emit(&self, event: &NewEvent, now: DateTime<Utc>) -> Result<Emitted, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let emitted = super::events::emit(&tx, event, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(emitted)
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let events = super::events::await_event(&tx, execution_id, wait).await?;
        tx.commit().await.map_err(db)?;
        Ok(events)
    }

    async fn waits(&self, filter: &EventFilter) -> Result<Vec<WaitingExecution>, StoreError> {
        let client = self.client().await?;
        super::events::waits(&client, filter).await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        super::events::events(&client, filter).await
    }

    async fn waiting_by_event(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT w.event, COUNT(*) FROM event_waits w JOIN executions e ON e.id = w.execution_id
                 WHERE e.status = 'waiting' GROUP BY w.event ORDER BY w.event",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM events WHERE received_at < $1",
                &[&micros(before)],
            )
            .await
            .map_err(db)
    }

    async fn pace_reserve(
        &self,
        key: &str,
        interval: std::time::Duration,
        tolerance: std::time::Duration,
    ) -> Result<Option<std::time::Duration>, StoreError> {
        super::pace::reserve(self, key, interval, tolerance)
            .await
            .map(Some)
    }

    async fn pace_hold(&self, key: &str, until: std::time::Duration) -> Result<bool, StoreError> {
        super::pace::hold(self, key, until).await.map(|()| true)
    }

    async fn listen_for_work(&self, ring: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        // Connected and migrated first, so a bad URL fails here as everywhere.
        drop(self.client().await?);
        self.listen(ring).await
    }

    async fn heartbeat(&self, owner: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        beat(&tx, owner, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn live_owners(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let client = self.client().await?;
        let since = micros(now) - lease.as_micros() as i64;
        let rows = client
            .query(
                "SELECT owner FROM daemons WHERE heartbeat_at >= $1",
                &[&since],
            )
            .await
            .map_err(db)?;
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }

    fn shared(&self) -> bool {
        true
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
