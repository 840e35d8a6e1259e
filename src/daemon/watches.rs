//! Poll triggers in the daemon: each scenario with a `poll` trigger is
//! polled on its schedule, each poll on a task of its own (a slow API never
//! delays another watch), at most one at a time per scenario in this
//! process; across processes the runner's claim makes each due poll once.
//! What the last poll did is kept here for the dashboard and `/api/triggers`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::schedule::next_tick;
use super::{metrics::ScenarioLabels, Served, Shared};
use crate::runner::watch::{period, PollOptions, PollOutcome};

/// What this process knows of a watch beyond its row in the store.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub version: String,
    pub next_poll: Option<DateTime<Utc>>,
    pub last_poll: Option<DateTime<Utc>>,
    /// `3 new items`, `nothing new`, `failed: ...`, `polled elsewhere`.
    pub last_outcome: Option<String>,
    pub polling: bool,
}

/// The watches of this process, by scenario.
#[derive(Default)]
pub struct Watches {
    live: Mutex<HashMap<String, Live>>,
}

impl Watches {
    pub fn get(&self, scenario: &str) -> Option<Live> {
        self.live
            .lock()
            .expect("watches lock")
            .get(scenario)
            .cloned()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Live>) -> T) -> T {
        f(&mut self.live.lock().expect("watches lock"))
    }
}

/// The longest one poll may take, past which another process may make it:
/// twice the period, between 10 s and 5 min.
pub fn lease(period: Duration) -> Duration {
    (period * 2).clamp(Duration::from_secs(10), Duration::from_secs(300))
}

pub(super) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let scenarios = shared.scenarios();
        let now = Utc::now();
        shared.watches.with(|live| {
            live.retain(|name, _| {
                scenarios
                    .by_name
                    .get(name)
                    .is_some_and(|s| s.plan.poll.is_some())
            })
        });
        for served in scenarios.by_name.values() {
            let Some(poll) = &served.plan.poll else {
                continue;
            };
            let name = served.plan.name.clone();
            let due = shared.watches.with(|live| {
                let entry = live.entry(name.clone()).or_default();
                if entry.version != served.plan.version {
                    // New, or edited: poll at once (a first poll starts the watch).
                    entry.version = served.plan.version.clone();
                    entry.next_poll = Some(now);
                }
                let due = !entry.polling && entry.next_poll.is_some_and(|t| t <= now);
                if due {
                    entry.polling = true;
                }
                due
            });
            if due {
                let period = period(poll, now);
                tokio::spawn(poll_once(shared.clone(), served.clone(), period));
            }
        }
        let soonest = shared.watches.with(|live| {
            live.values()
                .filter(|l| !l.polling)
                .filter_map(|l| l.next_poll)
                .min()
        });
        let wait = soonest
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_millis(500))
            .clamp(Duration::from_millis(5), Duration::from_millis(500));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

async fn poll_once(shared: Arc<Shared>, served: Arc<Served>, period: Duration) {
    let labels = ScenarioLabels {
        scenario: served.plan.name.clone(),
    };
    let key_of = |trigger: &Value| concurrency_key(&shared, &served, trigger);
    let options = PollOptions {
        force: false,
        lease: lease(period),
    };
    let outcome = shared.runner.poll(&served.plan, key_of, options).await;
    let now = Utc::now();
    let schedule = &served.plan.poll.as_ref().expect("a poll trigger").schedule;
    let mut next = next_tick(schedule, now);
    let said = match &outcome {
        Ok(PollOutcome::Committed {
            queued,
            items,
            started,
        }) => {
            shared.health.wrote();
            shared.metrics.polls.get_or_create(&labels).inc();
            shared
                .metrics
                .poll_items
                .get_or_create(&labels)
                .inc_by(*items as u64);
            if !queued.is_empty() {
                shared.wake.notify_one();
            }
            match started {
                Some(start) => format!("watch started ({}): {items} new items", start.describe()),
                None => format!("{items} new items"),
            }
        }
        Ok(PollOutcome::Nothing) => {
            shared.metrics.polls.get_or_create(&labels).inc();
            "nothing new".to_owned()
        }
        Ok(PollOutcome::Failed { error, retry_at }) => {
            tracing::warn!(scenario = %served.plan.name, %retry_at, error = %error, "poll failed; the cursor stays, the next poll after a back-off");
            shared.metrics.polls.get_or_create(&labels).inc();
            shared.metrics.poll_errors.get_or_create(&labels).inc();
            next = next.map(|t| t.max(*retry_at));
            format!("failed: {error}")
        }
        Ok(PollOutcome::Skipped) => "polled elsewhere".to_owned(),
        Err(e) => {
            shared.metrics.poll_errors.get_or_create(&labels).inc();
            tracing::error!(scenario = %served.plan.name, error = %e, "cannot poll");
            format!("failed: {e}")
        }
    };
    shared.watches.with(|live| {
        if let Some(entry) = live.get_mut(&served.plan.name) {
            entry.polling = false;
            entry.last_poll = Some(now);
            entry.last_outcome = Some(said);
            if entry.version == served.plan.version {
                entry.next_poll = next;
            }
        }
    });
}

/// The execution's concurrency key (`settings.concurrency.key`) over its trigger.
fn concurrency_key(shared: &Shared, served: &Served, trigger: &Value) -> Option<String> {
    let (_, Some(expr)) = served.limit.as_ref()? else {
        return None;
    };
    let ctx = super::trigger_context(served, shared.runner.env(), trigger.clone());
    expr.eval_ref(&ctx).ok().map(|key| match key.as_ref() {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Where a scenario's watch stands, as the dashboard and `/api/triggers`
/// show it: the store's row with what this process saw of the last poll.
pub(crate) async fn view(shared: &Shared, served: &Served) -> Option<Value> {
    let poll = served.plan.poll.as_ref()?;
    let row = shared.store.watch(&served.plan.name).await.ok().flatten();
    let live = shared.watches.get(&served.plan.name).unwrap_or_default();
    let now = Utc::now();
    let stamp =
        |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let last_poll = match (live.last_poll, row.as_ref().and_then(|r| r.last_poll_at)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Some(serde_json::json!({
        "scenario": served.plan.name,
        "trigger": served.plan.scenario.trigger.describe(),
        "started": row.as_ref().is_some_and(|r| !r.fingerprint.is_empty()),
        "last_poll": stamp(last_poll),
        "last_outcome": live.last_outcome,
        "next_poll": stamp(live.next_poll.or_else(|| crate::runner::watch::next_poll(poll, row.as_ref(), now))),
        "last_items": row.as_ref().map_or(0, |r| r.last_items),
        "items": row.as_ref().map_or(0, |r| r.items),
        "cursor": row.as_ref().map(|r| r.cursor.clone()).unwrap_or_else(|| serde_json::json!({})),
        "failures": row.as_ref().map_or(0, |r| r.failures),
        "last_error": row.as_ref().and_then(|r| r.last_error.clone()),
    }))
}

/// `GET /api/triggers`: every poll trigger served, as [`view`] shows it.
pub(super) async fn list(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> axum::Json<Vec<Value>> {
    let scenarios = shared.scenarios();
    let mut shown = Vec::new();
    for served in scenarios.by_name.values() {
        if let Some(view) = view(&shared, served).await {
            shown.push(view);
        }
    }
    axum::Json(shown)
}

/// `POST /api/triggers/{name}/poll`: polls now, even during a back-off
/// (what `scenarist triggers poll` does, through the daemon).
pub(super) async fn poll_now(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let scenarios = shared.scenarios();
    let Some(served) = scenarios.by_name.get(&name).cloned() else {
        let body = serde_json::json!({ "error": format!("no scenario named `{name}`") });
        return (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let Some(poll) = &served.plan.poll else {
        let body = serde_json::json!({ "error": format!("`{name}` is triggered by {}, not by a poll", served.plan.scenario.trigger.kind()) });
        return (axum::http::StatusCode::CONFLICT, axum::Json(body)).into_response();
    };
    let options = PollOptions {
        force: true,
        lease: lease(period(poll, Utc::now())),
    };
    let key_of = |trigger: &Value| concurrency_key(&shared, &served, trigger);
    let answer = match shared.runner.poll(&served.plan, key_of, options).await {
        Ok(PollOutcome::Committed {
            queued,
            items,
            started,
        }) => {
            if !queued.is_empty() {
                shared.wake.notify_one();
            }
            serde_json::json!({ "outcome": "committed", "items": items, "queued": queued, "started": started.map(|s| s.describe()) })
        }
        Ok(PollOutcome::Nothing) => serde_json::json!({ "outcome": "nothing" }),
        Ok(PollOutcome::Skipped) => serde_json::json!({ "outcome": "skipped" }),
        Ok(PollOutcome::Failed { error, retry_at }) => {
            serde_json::json!({ "outcome": "failed", "error": error, "retry_at": retry_at })
        }
        Err(e) => {
            let body = serde_json::json!({ "error": e.to_string() });
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(body),
            )
                .into_response();
        }
    };
    axum::Json(answer).into_response()
}
