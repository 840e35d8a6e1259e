//! The engine's journal, kept in a store: what makes an execution durable.

use std::sync::Arc;

use async_trait::async_trait;

use serde_json::Value;
use uuid::Uuid;

use super::{Finish, NewExecution, Store};
use crate::engine::{
    DataRequest, Emitted, EventWait, Execution, ExecutionStart, ExecutionStatus, Journal,
    JournalError, NewEvent, ReceivedEvent, StepRecord,
};

/// Commits each result of one execution to the store before the engine goes on.
pub struct StoreJournal {
    store: Arc<dyn Store>,
    execution_id: Uuid,
    /// Which process runs the execution: lets `resume` tell orphans from live runs.
    owner: String,
    /// How many times the execution has been run (1, then +1 per resume).
    attempt: u32,
    /// When an incomplete execution is next tried, after this attempt.
    retry_after: Option<std::time::Duration>,
    replay_of: Option<Uuid>,
    now: crate::engine::Clock,
    /// Results not committed yet: kept until the next step with effects
    /// starts, or the execution ends, whichever comes first (see
    /// `Journal::before_effect`). Steps that only compute are then re-run
    /// after a crash instead of being committed one by one.
    pending: std::sync::Mutex<Vec<StepRecord>>,
}

impl StoreJournal {
    pub fn new(
        store: Arc<dyn Store>,
        execution_id: Uuid,
        owner: String,
        attempt: u32,
    ) -> StoreJournal {
        StoreJournal {
            store,
            execution_id,
            owner,
            attempt,
            retry_after: None,
            replay_of: None,
            now: crate::engine::Clock::system(),
            pending: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The scenario's retry schedule for `incomplete`, already picked for this attempt.
    pub fn retry_after(mut self, delay: Option<std::time::Duration>) -> StoreJournal {
        self.retry_after = delay;
        self
    }

    pub fn replay_of(mut self, original: Option<Uuid>) -> StoreJournal {
        self.replay_of = original;
        self
    }

    /// The clock for retry times; tests inject one.
    pub fn clock(mut self, now: crate::engine::Clock) -> StoreJournal {
        self.now = now;
        self
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl StoreJournal {
    fn take_pending(&self) -> Vec<StepRecord> {
        std::mem::take(&mut *self.pending.lock().expect("pending lock"))
    }

    /// Commits what is pending (and `also`), in one call.
    async fn flush(&self, also: Option<&StepRecord>) -> Result<(), JournalError> {
        let mut records = self.take_pending();
        records.extend(also.cloned());
        if records.is_empty() {
            return Ok(());
        }
        self.store
            .record_steps(self.execution_id, &self.owner, &records)
            .await
            .map_err(kept)
    }
}

fn kept(e: super::StoreError) -> JournalError {
    JournalError(e.to_string())
}

#[async_trait]
impl Journal for StoreJournal {
    async fn execution_started(&self, start: &ExecutionStart<'_>) -> Result<(), JournalError> {
        self.store
            .start_execution(NewExecution {
                id: start.execution_id,
                scenario: start.scenario.to_owned(),
                version: start.version.to_owned(),
                trigger: start.trigger(),
                vars: start.vars.clone(),
                started_at: start.started_at,
                owner: self.owner.clone(),
                replay_of: self.replay_of,
                keys: start.keys.clone(),
            })
            .await
            .map_err(kept)
    }

    async fn step_finished(&self, record: &StepRecord) -> Result<(), JournalError> {
        self.pending
            .lock()
            .expect("pending lock")
            .push(record.clone());
        Ok(())
    }

    async fn before_effect(&self) -> Result<(), JournalError> {
        self.flush(None).await
    }

    async fn step_progress(&self, record: &StepRecord) -> Result<(), JournalError> {
        self.flush(Some(record)).await
    }

    async fn execution_finished(&self, execution: &Execution) -> Result<(), JournalError> {
        let next_retry_at = match execution.status {
            ExecutionStatus::Incomplete => self
                .retry_after
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| self.now.now() + d),
            ExecutionStatus::Waiting => execution.wake_at,
            _ => None,
        };
        let pending = self.take_pending();
        self.store
            .finish_with_steps(
                execution.execution_id,
                &self.owner,
                &pending,
                Finish {
                    status: execution.status,
                    error: execution.error.clone(),
                    finished_at: execution.finished_at,
                    next_retry_at,
                },
            )
            .await
            .map_err(kept)
    }

    async fn data(
        &self,
        execution_id: Uuid,
        step_path: &str,
        request: &DataRequest,
    ) -> Result<Value, JournalError> {
        self.store
            .data(
                execution_id,
                &self.owner,
                step_path,
                request,
                self.now.now(),
            )
            .await
            .map_err(|e| JournalError(e.to_string()))
    }

    async fn emit(&self, event: &NewEvent) -> Result<Emitted, JournalError> {
        self.store.emit(event, self.now.now()).await.map_err(kept)
    }

    async fn await_event(
        &self,
        execution_id: Uuid,
        wait: &EventWait,
    ) -> Result<Vec<ReceivedEvent>, JournalError> {
        self.store
            .await_event(execution_id, wait)
            .await
            .map_err(kept)
    }
}
