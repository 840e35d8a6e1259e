//! Poll triggers: one poll of a watch, made once across processes, whose
//! new items become queued executions committed together with the cursor.
//!
//! A poll reads where the watch stands, claims it when the store is shared
//! (another daemon then skips this poll), asks the API (following pages),
//! picks the new items (`items.rs`), and commits the new cursor, the window
//! of ids run and the executions in one transaction, under the generation it
//! read: if the watch moved meanwhile (a reset, another daemon's poll after
//! a lease ran out), it commits nothing and the next poll asks again. A
//! failed poll moves nothing; it is recorded, and retried after a back-off.
//! A poll that finds nothing new writes nothing (when the store is shared,
//! its claim is its one write).

mod items;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use items::{compare, select, Found, Rules, Selection, WINDOW};

use super::{owner, Runner, RunnerError};
use crate::plan::{Plan, PollPlan, PollStart};
use crate::store::{NewExecution, WatchCommit, WatchFailure, WatchState};

/// What one poll did.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// The cursor moved, or was set; `queued` executions were committed with it.
    Committed {
        queued: Vec<Uuid>,
        items: usize,
        /// The watch started (again) from this start.
        started: Option<PollStart>,
    },
    /// Nothing new; nothing written.
    Nothing,
    /// The API failed: recorded, the cursor unchanged.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// Another process polls it, or moved it while this poll asked: nothing written.
    Skipped,
}

/// How a poll is made.
#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    /// Poll even during a back-off (`scenarist triggers poll`).
    pub force: bool,
    /// The longest a poll may take; past it another process may poll.
    pub lease: Duration,
}

/// A poll's execution reads its item as `trigger.item` (one each) or its
/// items as `trigger.items` (a batch).
pub fn trigger_extra(item: Option<Value>, items: Option<Vec<Value>>) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(item) = item {
        extra.insert("item".to_owned(), item);
    }
    if let Some(items) = items {
        extra.insert("items".to_owned(), Value::Array(items));
    }
    extra
}

/// The wait after `failures` failed polls in a row: the period, doubling,
/// at most five minutes (or the period when longer).
pub fn back_off(period: Duration, failures: u32) -> Duration {
    let cap = period.max(Duration::from_secs(300));
    period
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap)
}

impl Runner {
    /// Polls the watch of `plan` once, now.
    pub async fn poll(
        &self,
        plan: &Plan,
        concurrency_key: impl Fn(&Value) -> Option<String>,
        options: PollOptions,
    ) -> Result<PollOutcome, RunnerError> {
        let Some(poll) = &plan.poll else {
            return Err(RunnerError::NoPoll(plan.name.clone()));
        };
        let store = self.store();
        let now = Utc::now();
        let state = store.watch(&plan.name).await?;
        if let Some(state) = &state {
            if !options.force && state.retry_at.is_some_and(|at| at > now) {
                return Ok(PollOutcome::Skipped);
            }
        }
        let mut generation = state.as_ref().map(|s| s.generation);
        if store.shared() {
            if let Some(state) = &state {
                let held = state.lease_until.is_some_and(|until| until > now)
                    && state
                        .lease_owner
                        .as_deref()
                        .is_some_and(|o| o != owner::this_process() && owner::may_be_alive(o));
                if held {
                    return Ok(PollOutcome::Skipped);
                }
            }
            let until = now + chrono::Duration::from_std(options.lease).unwrap_or_default();
            match store
                .claim_watch(&plan.name, generation, owner::this_process(), until)
                .await?
            {
                Some(claimed) => generation = Some(claimed),
                None => return Ok(PollOutcome::Skipped),
            }
        }
        let started = starting(plan, poll, state.as_ref());
        let (seen, cursor) = match (&started, &state) {
            (None, Some(state)) => (state.seen.clone(), state.cursor.clone()),
            _ => (Vec::new(), json!({})),
        };
        let asked = tokio::time::timeout(options.lease, self.ask(plan, poll, &cursor)).await;
        let found = match asked {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                return self
                    .failed(plan, poll, state.as_ref(), generation, error, now)
                    .await
            }
            Err(_) => {
                let error = format!(
                    "the poll did not finish within {}",
                    crate::model::Duration(options.lease)
                );
                return self
                    .failed(plan, poll, state.as_ref(), generation, error, now)
                    .await;
            }
        };
        let rules = Rules {
            seeding: started,
            changes: poll.changes,
            max_items: poll.max_items as usize,
        };
        let selection = select(found, &seen, cursor.get("date"), rules);
        let mut new_cursor = cursor.clone();
        if let (Some(date), Some(map)) = (&selection.cursor_date, new_cursor.as_object_mut()) {
            map.insert("date".to_owned(), date.clone());
        }
        let recovering = state
            .as_ref()
            .is_some_and(|s| s.failures > 0 || s.restart.is_some());
        let claimed = store.shared();
        if selection.run.is_empty()
            && started.is_none()
            && !recovering
            && new_cursor == cursor
            && !claimed
        {
            return Ok(PollOutcome::Nothing);
        }
        let received_at = Utc::now();
        let executions = self.executions(plan, poll, &selection.run, &cursor, received_at);
        let queued: Vec<Uuid> = executions.iter().map(|e| e.id).collect();
        let items = selection.run.len();
        let key = executions.first().and_then(|e| concurrency_key(&e.trigger));
        let commit = WatchCommit {
            fingerprint: poll.fingerprint.clone(),
            cursor: new_cursor,
            seen: selection.seen,
            polled_at: received_at,
            executions,
            concurrency_key: key,
            items: items as u64,
        };
        if !store.commit_watch(&plan.name, generation, commit).await? {
            tracing::info!(scenario = %plan.name, "the watch moved while this poll asked: nothing committed, the next poll asks again");
            return Ok(PollOutcome::Skipped);
        }
        if let Some(start) = &started {
            tracing::info!(scenario = %plan.name, start = %start.describe(), items, "watch started");
        } else if items > 0 {
            tracing::info!(scenario = %plan.name, items, "poll found new items");
        }
        if queued.is_empty() && started.is_none() {
            return Ok(PollOutcome::Nothing);
        }
        Ok(PollOutcome::Committed {
            queued,
            items,
            started,
        })
    }

    /// The request, page after page: every item of every answer, with its
    /// id and date.
    async fn ask(
        &self,
        plan: &Plan,
        poll: &PollPlan,
        cursor: &Value,
    ) -> Result<Vec<Found>, String> {
        let redactor = self.redactor(plan);
        let env: Map<String, Value> = self
            .env_for(plan)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let mut root = Map::new();
        root.insert("env".to_owned(), Value::Object(env));
        root.insert("vars".to_owned(), Value::Object(plan.vars.clone()));
        // `cursor.date` is null (and renders empty) until an item had a date.
        let mut cursor = cursor.clone();
        if let Some(map) = cursor.as_object_mut() {
            map.entry("date").or_insert(Value::Null);
        }
        root.insert("cursor".to_owned(), cursor);
        root.insert("page".to_owned(), json!({ "next": null, "number": 1 }));
        if let Some(app) = &poll.request.app {
            // An app's watch: its templates read the poll's `with` as `input`.
            let ctx = handlebars::Context::from(Value::Object(root.clone()));
            let input = crate::engine::app_input(app, &ctx).map_err(|e| redactor.string(e))?;
            root.insert("input".to_owned(), input);
        }
        let mut found = Vec::new();
        for number in 1..=poll.max_pages {
            root.insert(
                "page".to_owned(),
                json!({ "next": root["page"]["next"].clone(), "number": number }),
            );
            let ctx = handlebars::Context::from(Value::Object(root.clone()));
            let answer = self
                .engine
                .fetch(&poll.request, poll.retry.as_ref(), &ctx, &redactor)
                .await
                .map_err(|e| e.message)?;
            let items =
                answer_items(poll, &answer.body).map_err(|e| format!("{}: {e}", answer.summary))?;
            for item in items {
                let item_ctx = handlebars::Context::from(json!({ "item": item }));
                let id = match poll.id.eval(&item_ctx) {
                    Ok(Value::String(s)) if !s.is_empty() => s,
                    Ok(Value::Number(n)) => n.to_string(),
                    Ok(other) => {
                        let mut shown = item.to_string();
                        if shown.len() > 200 {
                            let cut = (0..=200)
                                .rev()
                                .find(|i| shown.is_char_boundary(*i))
                                .unwrap_or(0);
                            shown.truncate(cut);
                            shown.push('…');
                        }
                        return Err(redactor.string(format!(
                            "{}: an item has no id (`id` gave {other}): {shown}",
                            answer.summary
                        )));
                    }
                    Err(e) => {
                        return Err(format!(
                            "{}: the id of an item cannot be computed: {}",
                            answer.summary, e.0
                        ))
                    }
                };
                let date = match &poll.date {
                    None => None,
                    Some(expr) => match expr.eval(&item_ctx) {
                        Ok(Value::Null) => None,
                        Ok(Value::String(s)) if s.is_empty() => None,
                        Ok(date) => Some(date),
                        Err(e) => {
                            return Err(format!(
                                "{}: the date of item `{id}` cannot be computed: {}",
                                answer.summary, e.0
                            ))
                        }
                    },
                };
                found.push(Found { id, date, item });
            }
            let next = match &poll.next_page {
                None => break,
                Some(path) => path
                    .eval(&handlebars::Context::from(answer.body.clone()))
                    .unwrap_or(Value::Null),
            };
            let more = match &next {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
            if !more {
                break;
            }
            let next = match next {
                Value::Array(mut a) if a.len() == 1 => a.remove(0),
                other => other,
            };
            root.insert("page".to_owned(), json!({ "next": next, "number": number }));
        }
        Ok(found)
    }

    /// One queued execution per item, or one for the batch.
    fn executions(
        &self,
        plan: &Plan,
        poll: &PollPlan,
        run: &[Found],
        cursor: &Value,
        received_at: DateTime<Utc>,
    ) -> Vec<NewExecution> {
        if run.is_empty() {
            return Vec::new();
        }
        let stamp = received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let documents: Vec<Value> = if poll.batch {
            let items: Vec<Value> = run.iter().map(|f| f.item.clone()).collect();
            vec![
                json!({ "body": { "items": items.clone() }, "items": items, "cursor": cursor, "headers": {}, "query": {}, "received_at": stamp }),
            ]
        } else {
            run.iter()
                .map(|f| json!({ "body": f.item, "item": f.item, "cursor": cursor, "headers": {}, "query": {}, "received_at": stamp }))
                .collect()
        };
        documents
            .into_iter()
            .map(|trigger| {
                let mut root = Map::new();
                root.insert("trigger".to_owned(), trigger.clone());
                root.insert("vars".to_owned(), Value::Object(plan.vars.clone()));
                let ctx = handlebars::Context::from(Value::Object(root));
                NewExecution {
                    id: Uuid::now_v7(),
                    scenario: plan.name.clone(),
                    version: plan.version.clone(),
                    keys: self.business_keys(plan, &ctx),
                    trigger,
                    vars: Map::new(),
                    started_at: received_at,
                    owner: String::new(),
                    replay_of: None,
                }
            })
            .collect()
    }

    async fn failed(
        &self,
        plan: &Plan,
        poll: &PollPlan,
        state: Option<&WatchState>,
        generation: Option<i64>,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<PollOutcome, RunnerError> {
        let failures = state.map_or(0, |s| s.failures) + 1;
        let period = period(poll, now);
        let retry_at =
            now + chrono::Duration::from_std(back_off(period, failures)).unwrap_or_default();
        tracing::debug!(scenario = %plan.name, failures, %retry_at, error = %error, "poll failed; the cursor stays");
        let failure = WatchFailure {
            error: error.clone(),
            polled_at: now,
            retry_at,
        };
        if !self
            .store()
            .fail_watch(&plan.name, generation, failure)
            .await?
        {
            return Ok(PollOutcome::Skipped);
        }
        Ok(PollOutcome::Failed { error, retry_at })
    }
}

/// When the next poll is due: the schedule's next tick, not before a back-off ends.
pub fn next_poll(
    poll: &PollPlan,
    state: Option<&WatchState>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let next = poll.schedule.next_after(now)?;
    Some(match state.and_then(|s| s.retry_at) {
        Some(retry_at) if retry_at > next => retry_at,
        _ => next,
    })
}

/// The time between two polls: `every`, or a cron's gap after `now`.
pub fn period(poll: &PollPlan, now: DateTime<Utc>) -> Duration {
    if let Some(every) = poll.schedule.every {
        return every;
    }
    let next = |after: DateTime<Utc>| poll.schedule.next_after(after);
    match next(now).and_then(|a| next(a).map(|b| (b - a).to_std().ok())) {
        Some(Some(gap)) => gap,
        _ => Duration::from_secs(60),
    }
}

/// Whether this poll starts the watch (again), and from where: a first
/// poll, a reset, or a request that changed since the cursor was set.
fn starting(plan: &Plan, poll: &PollPlan, state: Option<&WatchState>) -> Option<PollStart> {
    let Some(state) = state else {
        return Some(poll.start);
    };
    if let Some(restart) = &state.restart {
        return Some(PollStart::parse(restart).unwrap_or(poll.start));
    }
    if state.fingerprint.is_empty() {
        return Some(poll.start);
    }
    if state.fingerprint != poll.fingerprint {
        tracing::warn!(scenario = %plan.name, start = %poll.start.describe(), "the poll's request changed: the watch starts again from its start");
        return Some(poll.start);
    }
    None
}

/// The items of an answer; an answer without the items' place is an error
/// (an error page, or an API that changed), never "nothing new".
fn answer_items(poll: &PollPlan, body: &Value) -> Result<Vec<Value>, String> {
    if !matches!(body, Value::Object(_) | Value::Array(_)) {
        return Err("the answer is not JSON".to_owned());
    }
    let ctx = handlebars::Context::from(body.clone());
    let value = poll.items.eval(&ctx).map_err(|e| e.0)?;
    match value {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Null => Err("the answer has no items where `items` looks".to_owned()),
        Value::Array(_) => {
            if let Some(container) = poll.items_container.as_ref() {
                if container.eval(&ctx).map_err(|e| e.0)?.is_null() {
                    return Err("the answer has no items where `items` looks".to_owned());
                }
            }
            Ok(Vec::new())
        }
        other => Ok(vec![other]),
    }
}
