//! A case that tests a poll trigger itself: where the watch stands is set in
//! the case's store, one poll is made with `mocks.trigger` as the pages, and
//! the items that became executions are the outcome.

use serde_json::{json, Value};

use super::model::TestPoll;
use super::run::CaseOutcome;
use crate::engine::ExecutionStatus;
use crate::plan::Plan;
use crate::runner::watch::{PollOptions, PollOutcome};
use crate::runner::Runner;
use crate::store::WatchCommit;

pub async fn run_poll_case(runner: &Runner, plan: &Plan, poll: &TestPoll) -> CaseOutcome {
    let Some(trigger) = &plan.poll else {
        return failed(format!("`{}` has no poll trigger", plan.name));
    };
    let store = runner.store();
    if let Err(e) = store
        .save_version(&plan.name, &plan.version, &plan.bundle)
        .await
    {
        return failed(e.to_string());
    }
    if !poll.seen.is_empty() || poll.cursor.is_some() {
        let standing = WatchCommit {
            fingerprint: trigger.fingerprint.clone(),
            cursor: poll.cursor.clone().unwrap_or_else(|| json!({})),
            seen: poll.seen.iter().map(|id| (id.clone(), None)).collect(),
            polled_at: chrono::Utc::now(),
            executions: Vec::new(),
            concurrency_key: None,
            items: 0,
        };
        if let Err(e) = store.commit_watch(&plan.name, None, standing).await {
            return failed(e.to_string());
        }
    }
    let options = PollOptions {
        force: true,
        lease: std::time::Duration::from_secs(300),
    };
    let queued = match runner.poll(plan, |_| None, options).await {
        Ok(PollOutcome::Committed { queued, .. }) => queued,
        Ok(PollOutcome::Nothing | PollOutcome::Skipped) => Vec::new(),
        Ok(PollOutcome::Failed { error, .. }) => return failed(error),
        Err(e) => return failed(e.to_string()),
    };
    let mut ids = Vec::new();
    for id in queued {
        let stored = match store.execution(id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return failed(format!("execution {id} was not kept")),
            Err(e) => return failed(e.to_string()),
        };
        let items = match (&stored.trigger["item"], &stored.trigger["items"]) {
            (Value::Null, Value::Array(items)) => items.clone(),
            (item, _) => vec![item.clone()],
        };
        for item in items {
            let ctx = handlebars::Context::from(json!({ "item": item }));
            let shown = match trigger.id.eval(&ctx) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => e.0,
            };
            ids.push(shown);
        }
    }
    CaseOutcome {
        status: Some(ExecutionStatus::Succeeded),
        polled: Some(ids),
        ..CaseOutcome::default()
    }
}

/// A poll that failed: the case's `expect.error` may name why.
fn failed(error: String) -> CaseOutcome {
    CaseOutcome {
        status: Some(ExecutionStatus::Failed),
        error: Some(error),
        polled: Some(Vec::new()),
        ..CaseOutcome::default()
    }
}
