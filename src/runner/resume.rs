//! Picking up executions again: which are due (incomplete, waiting, decided,
//! orphaned), which of this process's own stalled, and running a claimed
//! one from its settled steps.

use uuid::Uuid;

use chrono::Utc;

use super::{owner, trigger_data, Runner, RunnerError};
use crate::engine::{
    Engine, Execution, ExecutionStatus, Journal, Resume, RunError, RunRequest, Tee,
};
use crate::plan::Plan;
use crate::store::{ExecutionSummary, StoreJournal, StoredExecution};

impl Runner {
    /// Executions `resume` should pick up now: incomplete, waiting and
    /// decided ones that are due, and running ones whose process is gone.
    pub async fn due(&self) -> Result<Vec<ExecutionSummary>, RunnerError> {
        let now = self.now.now();
        let candidates = self.store.resumable(now).await?;
        let live = self.store.live_owners(Utc::now(), self.lease).await?;
        Ok(candidates
            .into_iter()
            .filter(|e| match e.status {
                ExecutionStatus::Running => self.owner_is_gone(e.owner.as_deref(), &live),
                _ => true,
            })
            .collect())
    }

    /// This process's own executions that the store says are `running` but
    /// that this process no longer runs (`in_flight`): a store write failed
    /// (the database went away, a connection was terminated) and the engine
    /// stopped them. The caller marks what it claims as in flight before it
    /// claims the next, so one just claimed is never mistaken for one.
    pub async fn stalled(
        &self,
        in_flight: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<ExecutionSummary>, RunnerError> {
        let me = owner::this_process();
        let candidates = self.store.resumable(self.now.now()).await?;
        Ok(candidates
            .into_iter()
            .filter(|e| {
                e.status == ExecutionStatus::Running
                    && e.owner.as_deref() == Some(me)
                    && !in_flight.contains(&e.id)
            })
            .collect())
    }

    /// Continues a stopped execution from the step that did not finish:
    /// an incomplete one (whenever asked: `executions retry`), or a running
    /// one whose process died.
    pub async fn resume(&self, id: Uuid, trace: &dyn Journal) -> Result<Execution, RunnerError> {
        let stored = self.load(id).await?;
        let summary = &stored.summary;
        let now = self.now.now();
        let due = summary.next_retry_at.is_some_and(|at| at <= now);
        match summary.status {
            ExecutionStatus::Incomplete => {}
            // Decided (or woken) and queued to go on.
            ExecutionStatus::Queued if summary.next_retry_at.is_some() => {}
            ExecutionStatus::Waiting if due => {}
            ExecutionStatus::Waiting => {
                return Err(RunnerError::NotResumable {
                    id,
                    status: summary.status,
                    why: "it waits for a decision (`scenarist approve` / `scenarist reject`), an event (`scenarist emit`) or for its delay to end",
                })
            }
            ExecutionStatus::Running => {
                let live = self.store.live_owners(Utc::now(), self.lease).await?;
                // This process's own: it stopped running it (see `stalled`).
                let mine = summary.owner.as_deref() == Some(owner::this_process());
                if !mine && !self.owner_is_gone(summary.owner.as_deref(), &live) {
                    return Err(RunnerError::NotResumable {
                        id,
                        status: summary.status,
                        why: "its process is still running",
                    });
                }
            }
            status => {
                return Err(RunnerError::NotResumable {
                    id,
                    status,
                    why: "only incomplete executions, and running ones whose process died, can be resumed; `scenarist replay` starts it again with the same trigger",
                })
            }
        }
        let (plan, _) = self.stored_plan(summary).await?;
        // Checked before taking it over: an execution this process cannot run
        // stays where it is, for a process that has the environment (the daemon).
        let missing: Vec<String> = plan
            .env
            .iter()
            .filter(|e| e.value(&self.env).is_none())
            .map(|e| e.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(RunnerError::Run(RunError::MissingEnv(missing)));
        }
        let me = owner::this_process();
        let attempt = self
            .store
            .claim(id, summary.status, summary.owner.as_deref(), me, now)
            .await?
            .ok_or(RunnerError::Taken(id))?;
        self.continue_stored(&stored, &plan, attempt, trace).await
    }

    /// Runs an execution this process has claimed (from the queue, or to
    /// resume it): its settled steps are kept, the rest run.
    pub async fn continue_stored(
        &self,
        stored: &StoredExecution,
        plan: &Plan,
        attempt: u32,
        trace: &dyn Journal,
    ) -> Result<Execution, RunnerError> {
        let id = stored.summary.id;
        let request = RunRequest {
            trigger: trigger_data(&stored.trigger).ok_or(RunnerError::DamagedTrigger(id))?,
            env: self.env_for(plan),
            vars: stored.vars.clone(),
            dry_run: false,
            execution_id: Some(id),
            resume: Some(Resume {
                completed: stored.steps.clone(),
                started_at: stored.summary.started_at,
            }),
            clock: Some(self.now.clone()),
            origin: match stored.summary.replay_of {
                Some(_) => Some(self.origin_of(id, stored.summary.replay_of).await),
                None => None,
            },
        };
        let prepared = Engine::prepare(plan, request)?;
        let journal = StoreJournal::new(
            self.store.clone(),
            id,
            owner::this_process().to_owned(),
            attempt,
        )
        .retry_after(plan.retry_incomplete_after(attempt))
        .clock(self.now.clone());
        let tee = Tee(trace, &journal);
        Ok(self.beating(self.engine.run(plan, prepared, &tee)).await?)
    }
}
