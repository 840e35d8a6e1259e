//! The worker pool: claims executions from the store's queue (never from
//! memory), runs at most `workers` at once, resumes what a dead process left
//! running and retries incomplete executions when they are due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::metrics::MetricsJournal;
use super::Shared;
use crate::engine::{ExecutionError, ExecutionStatus, RunError};
use crate::runner::{owner, RunnerError};
use crate::store::{Finish, StoredExecution};
use uuid::Uuid;

/// How often the queue is looked at when nothing rang.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often orphans and due incomplete executions are looked for.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let permits = shared.permits.clone();
    let mut tasks = JoinSet::new();
    let mut last_maintenance: Option<Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        if shared.stopping() {
            break;
        }
        if last_maintenance.is_none_or(|t| t.elapsed() >= MAINTENANCE_EVERY) {
            last_maintenance = Some(Instant::now());
            maintenance(&shared, &permits, &mut tasks).await;
        }
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore open"),
            _ = stopped.wait_for(|s| *s) => break,
        };
        // Claim as many as there are free workers, in one transaction.
        let mut free = vec![first];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            free.push(permit);
        }
        let limits = shared.scenarios().limits();
        match shared
            .store
            .claim_queued(owner::this_process(), &limits, Utc::now(), free.len())
            .await
        {
            Ok(claimed) if !claimed.is_empty() => {
                shared.health.wrote();
                for stored in claimed {
                    shared.start_flight(stored.summary.id);
                    let permit = free.pop().expect("a permit per claim");
                    shared.metrics.queue_depth.dec();
                    // Boxed: the execution's future is tens of kilobytes, and
                    // tokio would copy it into the task and again at its end.
                    tasks.spawn(Box::pin(run_claimed(shared.clone(), stored, permit)));
                }
            }
            Ok(_) => {
                drop(free);
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
            Err(e) => {
                drop(free);
                shared.health.refused(&e);
                tracing::error!(error = %e, "cannot read the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    // Shutdown: in-flight executions get the grace period; what is left stays
    // `running` in the store and is resumed at the next start.
    let grace = shared.config.grace;
    let started_draining = Instant::now();
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "grace period over: the rest resumes at the next start"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        return;
    }
    // Executions webhooks started at once hold a permit each: they get what
    // is left of the grace period too (past it, they resume at the next start).
    let all = shared.config.workers.max(1) as u32;
    let left = grace.saturating_sub(started_draining.elapsed());
    if tokio::time::timeout(left, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("grace period over: the rest resumes at the next start");
    }
}

/// Resumes executions a dead process left running and incomplete ones now due.
async fn maintenance(shared: &Arc<Shared>, permits: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
    // Other processes (`scenarist approve`, a second daemon) queue executions
    // too: the gauge follows the store, not only this process's own counting.
    if let Ok(depth) = shared.store.queue_depth().await {
        shared.metrics.queue_depth.set(depth as i64);
    }
    if let Ok(waiting) = shared.store.waiting_by_event().await {
        shared.metrics.set_waiting(&waiting);
    }
    prune_events(shared).await;
    // A store that refuses writes would stop every resumed execution at its
    // first step: they wait until a probe (with back-off) goes through.
    if !shared.health.probe(shared.store.as_ref()).await {
        return;
    }
    let due = match shared.runner.due().await {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "cannot look for executions to resume");
            return;
        }
    };
    let stalled = shared.runner.stalled(&shared.in_flight_now()).await;
    for summary in due.into_iter().chain(stalled.into_iter().flatten()) {
        // A free worker first: an execution is marked in flight only when
        // it is about to run, so a busy daemon never strands one.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            return;
        };
        if !shared.start_flight(summary.id) {
            continue;
        }
        let shared = shared.clone();
        tasks.spawn(Box::pin(async move {
            let journal = MetricsJournal(&shared.metrics);
            let result = shared.runner.resume(summary.id, &journal).await;
            shared.health.ran(&result);
            match result {
                Ok(execution) => {
                    tracing::info!(execution = %summary.id, status = %execution.status, "resumed");
                    finished(&shared, execution);
                }
                Err(e) => tracing::warn!(execution = %summary.id, error = %e, "not resumed"),
            }
            shared.end_flight(summary.id);
            drop(permit);
        }));
    }
}

/// Keeps the event table to its retention; once an hour is plenty.
async fn prune_events(shared: &Shared) {
    let now = Utc::now();
    {
        let mut last = shared.last_event_prune.lock().expect("prune lock");
        if last.is_some_and(|t| now - t < chrono::Duration::hours(1)) {
            return;
        }
        *last = Some(now);
    }
    let Some(before) = chrono::Duration::from_std(shared.config.event_retention)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
    else {
        return;
    };
    match shared.store.prune_events(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "pruned events past their retention"),
        Err(e) => tracing::warn!(error = %e, "cannot prune events"),
    }
}

/// Runs an execution this process owns (claimed from the queue, or started
/// at once by a webhook) while it holds a worker's permit.
pub(super) async fn run_claimed(
    shared: Arc<Shared>,
    stored: StoredExecution,
    permit: OwnedSemaphorePermit,
) {
    let id = stored.summary.id;
    let scenarios = shared.scenarios();
    let current = scenarios
        .by_name
        .get(&stored.summary.scenario)
        .filter(|s| s.plan.version == stored.summary.version)
        .cloned();
    let journal = MetricsJournal(&shared.metrics);
    let result = match &current {
        Some(served) => {
            shared
                .runner
                .continue_stored(&stored, &served.plan, stored.summary.attempt, &journal)
                .await
        }
        // Queued before an edit: it runs the version it was accepted with.
        None => match shared.runner.stored_plan(&stored.summary).await {
            Ok((plan, _)) => {
                shared
                    .runner
                    .continue_stored(&stored, &plan, stored.summary.attempt, &journal)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    shared.health.ran(&result);
    match result {
        Ok(execution) => finished(&shared, execution),
        // The store failed: the execution stays running, to be resumed
        // (by the maintenance, once the store takes writes again).
        Err(e @ RunnerError::Run(RunError::Journal(_))) | Err(e @ RunnerError::Store(_)) => {
            tracing::error!(execution = %id, error = %e, "execution stopped")
        }
        // It could not start (an env var is missing, the stored version no
        // longer compiles): it fails, visibly, instead of waiting for ever.
        Err(e) => {
            tracing::error!(execution = %id, error = %e, "execution could not start");
            let finish = Finish {
                status: ExecutionStatus::Failed,
                error: Some(ExecutionError {
                    step: String::new(),
                    message: e.to_string(),
                }),
                finished_at: Utc::now(),
                next_retry_at: None,
            };
            if let Err(e) = shared
                .store
                .finish_execution(id, owner::this_process(), finish)
                .await
            {
                tracing::error!(execution = %id, error = %e, "cannot record the failure");
            }
        }
    }
    shared.end_flight(id);
    drop(permit);
    // A slot is free, and a limited scenario may now have room.
    shared.wake.notify_one();
}

/// Resumes an incomplete execution now, outside the pool (a person asked:
/// the API, the dashboard). False when this process is already running it.
pub(super) fn retry_in_background(shared: &Arc<Shared>, id: Uuid) -> bool {
    if !shared.start_flight(id) {
        return false;
    }
    let shared = shared.clone();
    tokio::spawn(Box::pin(async move {
        let journal = MetricsJournal(&shared.metrics);
        let result = shared.runner.resume(id, &journal).await;
        shared.health.ran(&result);
        match result {
            Ok(execution) => finished(&shared, execution),
            Err(e) => tracing::warn!(execution = %id, error = %e, "retry failed to start"),
        }
        shared.end_flight(id);
    }));
    true
}

/// Starts a replay of `id` as the new execution `new_id`, in the background.
pub(super) fn replay_in_background(shared: &Arc<Shared>, id: Uuid, new_id: Uuid) {
    shared.start_flight(new_id);
    let shared = shared.clone();
    tokio::spawn(Box::pin(async move {
        let journal = MetricsJournal(&shared.metrics);
        let result = shared.runner.replay_as(id, new_id, &journal).await;
        shared.health.ran(&result);
        match result {
            Ok(execution) => finished(&shared, execution),
            Err(e) => tracing::warn!(execution = %id, error = %e, "replay failed to start"),
        }
        shared.end_flight(new_id);
    }));
}

fn finished(shared: &Shared, execution: crate::engine::Execution) {
    let waiter = shared
        .waiters
        .lock()
        .expect("waiters lock")
        .remove(&execution.execution_id);
    if let Some(waiter) = waiter {
        let _ = waiter.send(execution);
    }
}
