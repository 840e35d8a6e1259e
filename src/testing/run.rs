//! Runs one test case on the real engine and runner: a store in memory of
//! its own, the case's mocks as the only transport, and a virtual clock.
//! When the execution parks, the case plays the world: it decides the
//! approvals it names, delivers its events at their virtual time, and lets
//! deadlines and delays pass instantly; then the execution is resumed, as
//! the daemon would, until it ends or nothing more can happen.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::mocks::{MockTransport, SentRequest, VirtualTime};
use super::model::{DecisionKind, TestCase, TestFile};
use crate::engine::{
    Engine, ExecutionStatus, NoJournal, RunRequest, StepRecord, StepStatus, TriggerData,
};
use crate::plan::Plan;
use crate::report::BusinessEvent;
use crate::runner::{Decision, Runner};
use crate::store::{SqliteStore, Store};

/// Where a case's clock starts unless it says: a Monday morning.
pub const DEFAULT_NOW: &str = "2026-01-05T09:00:00Z";

/// Waits (approvals, delays, events) one case may pass through: a bound
/// that stops a scenario that would loop forever.
const MAX_WAKES: usize = 100;

/// What a case's execution did.
#[derive(Debug, Default)]
pub struct CaseOutcome {
    /// None when the execution could not start (`error` says why).
    pub status: Option<ExecutionStatus>,
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
    pub sent: Vec<SentRequest>,
    pub records: Vec<BusinessEvent>,
    /// A poll case: the ids of the items that became executions.
    pub polled: Option<Vec<String>>,
}

fn outcome_error(e: impl std::fmt::Display) -> CaseOutcome {
    CaseOutcome {
        error: Some(e.to_string()),
        ..CaseOutcome::default()
    }
}

/// The step an execution is parked at, from its records.
fn parked(steps: &[StepRecord]) -> Option<&StepRecord> {
    steps.iter().rev().find(|s| s.status == StepStatus::Waiting)
}

/// The id of the step at `path` (`route/big/notify#2` → `notify`).
pub fn step_id(path: &str) -> &str {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.split('#').next().unwrap_or(last)
}

pub async fn run_case(plan: &Plan, file: &TestFile, case: &TestCase) -> CaseOutcome {
    let start: DateTime<Utc> = case
        .now
        .unwrap_or_else(|| DEFAULT_NOW.parse().expect("a valid default time"));
    let time = VirtualTime::starting(start);
    let transport = Arc::new(MockTransport::new(case.mocks.clone(), time.clone()));
    let store: Arc<dyn Store> = match SqliteStore::open_in_memory() {
        Ok(s) => Arc::new(s),
        Err(e) => return outcome_error(e),
    };
    let env: HashMap<String, String> = file.env.clone().into_iter().collect();
    let runner = Runner::new(
        Engine::with_transport(transport.clone()),
        store.clone(),
        env,
    )
    .with_clock({
        let time = time.clone();
        move || time.now()
    });
    if let Some(poll) = &case.poll {
        let outcome = super::poll::run_poll_case(&runner, plan, poll).await;
        return CaseOutcome {
            sent: transport.sent(),
            ..outcome
        };
    }
    let mut vars = file.vars.clone();
    vars.extend(case.vars.clone());
    let request = RunRequest {
        trigger: TriggerData {
            body: case.trigger.body.clone().unwrap_or_else(|| json!({})),
            headers: case.trigger.headers.clone(),
            query: case.trigger.query.clone(),
            received_at: start,
            extra: crate::runner::watch::trigger_extra(
                case.trigger.item.clone(),
                case.trigger.items.clone(),
            ),
        },
        vars,
        ..RunRequest::default()
    };
    let mut events: Vec<(DateTime<Utc>, usize)> = case
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (start + to_chrono(e.after.map(|d| d.as_std())), i))
        .collect();
    events.sort();
    let mut next_event = 0;
    let deliver_until = |now: DateTime<Utc>, next: &mut usize| {
        let due: Vec<usize> = events[*next..]
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, i)| *i)
            .collect();
        *next += due.len();
        due
    };
    for i in deliver_until(start, &mut next_event) {
        if let Err(e) = emit(&runner, case, i).await {
            return outcome_error(e);
        }
    }
    let execution = match runner.start(plan, request, &NoJournal, None).await {
        Ok(execution) => execution,
        Err(e) => return outcome_error(e),
    };
    let id = execution.execution_id;
    for _ in 0..MAX_WAKES {
        let stored = match runner.load(id).await {
            Ok(s) => s,
            Err(e) => return outcome_error(e),
        };
        if !matches!(
            stored.summary.status,
            ExecutionStatus::Waiting | ExecutionStatus::Queued
        ) {
            break;
        }
        if stored.summary.status == ExecutionStatus::Waiting {
            let Some(at) = parked(&stored.steps) else {
                break;
            };
            let deadline = stored.summary.next_retry_at.unwrap_or(time.now());
            let decision = (at.kind == "approval")
                .then(|| case.approvals.get(step_id(&at.path)))
                .flatten();
            if let Some(decision) = decision {
                // A person decides after the execution parked: at the next
                // whole virtual second, so decision times are the same at
                // every run (steps take a few real milliseconds).
                if let Some(t) = stored.steps.iter().map(|s| s.started_at).max() {
                    time.advance_to(next_second(t));
                }
                let kept = runner
                    .decide(
                        id,
                        Decision {
                            approve: decision.decision == DecisionKind::Approve,
                            by: decision.by.clone().unwrap_or_else(|| "test".to_owned()),
                            comment: decision.comment.clone(),
                        },
                    )
                    .await;
                if let Err(e) = kept {
                    return outcome_error(format!("approval `{}`: {e}", step_id(&at.path)));
                }
            } else if at.kind == "wait_for"
                && events.get(next_event).is_some_and(|(t, _)| *t <= deadline)
            {
                let (t, _) = events[next_event];
                time.advance_to(t);
                for i in deliver_until(t, &mut next_event) {
                    if let Err(e) = emit(&runner, case, i).await {
                        return outcome_error(e);
                    }
                }
                continue;
            } else {
                // Nothing comes before the deadline (or the delay's end): it passes.
                time.advance_to(deadline);
            }
        }
        if let Err(e) = runner.resume(id, &NoJournal).await {
            return outcome_error(e);
        }
    }
    finish(
        &runner,
        store.as_ref(),
        id,
        transport.sent(),
        start,
        time.now(),
    )
    .await
}

async fn emit(runner: &Runner, case: &TestCase, index: usize) -> Result<(), String> {
    let event = &case.events[index];
    let data = event
        .data
        .clone()
        .unwrap_or_else(|| Value::Object(Map::new()));
    runner
        .emit(&event.event, &event.key, data)
        .await
        .map(|_| ())
        .map_err(|e| format!("events[{index}]: {e}"))
}

/// The first whole second after `t`.
fn next_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp() + 1;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

fn to_chrono(d: Option<std::time::Duration>) -> chrono::Duration {
    d.and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_default()
}

async fn finish(
    runner: &Runner,
    store: &dyn Store,
    id: Uuid,
    sent: Vec<SentRequest>,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> CaseOutcome {
    let stored = match runner.load(id).await {
        Ok(s) => s,
        Err(e) => return outcome_error(e),
    };
    let until = now + chrono::Duration::seconds(1);
    let records = store
        .business_events(start - chrono::Duration::days(1), until, None)
        .await
        .unwrap_or_default();
    CaseOutcome {
        status: Some(stored.summary.status),
        error: stored.summary.error.clone(),
        steps: stored.steps,
        sent,
        records,
        polled: None,
    }
}
