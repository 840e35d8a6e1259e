//! One execution: what triggered it, its steps as a timeline (the failed
//! one first and marked), each step's input, output and error, the review
//! or event it waits for, and retry and replay. A running or waiting
//! execution's page refreshes itself from `/live`, a fragment of the same
//! template.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::access::refused_csrf;
use super::scenarios::unavailable;
use super::view::{keys, millis, pretty, short_id, short_version, time};
use super::Visitor;
use crate::daemon::Shared;
use crate::engine::{ExecutionStatus, StepStatus};
use crate::store::StoredExecution;

/// The statuses a page keeps refreshing for.
fn is_live(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Queued | ExecutionStatus::Running | ExecutionStatus::Waiting
    )
}

/// A step path as an HTML id: `route/big/notify#2` → `route-big-notify-2`.
fn anchor(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn stamp(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| time(t.with_timezone(&Utc)))
}

/// Everything the page shows, as the template reads it.
async fn details(shared: &Shared, visitor: &Visitor, stored: &StoredExecution) -> Value {
    let summary = &stored.summary;
    let now = Utc::now();
    let end = summary.finished_at.unwrap_or(now);
    let step_end = |s: &crate::engine::StepRecord| {
        s.started_at + chrono::Duration::milliseconds(s.duration_ms as i64)
    };
    let last = stored
        .steps
        .iter()
        .map(step_end)
        .max()
        .unwrap_or(end)
        .max(end);
    let span = (last - summary.started_at).num_milliseconds().max(1) as f64;
    let steps: Vec<Value> = stored
        .steps
        .iter()
        .map(|s| {
            let offset = (s.started_at - summary.started_at)
                .num_milliseconds()
                .max(0);
            let left = (offset as f64 / span * 100.0).clamp(0.0, 99.5);
            let width = (s.duration_ms as f64 / span * 100.0).clamp(0.5, 100.0 - left);
            let failed = s.status == StepStatus::Failed
                || summary.error_step.as_deref() == Some(s.path.as_str());
            json!({
                "path": s.path,
                "anchor": anchor(&s.path),
                "kind": s.kind,
                "status": s.status.as_str(),
                "failed": failed,
                "attempts": s.attempts,
                "retried": s.attempts > 1,
                "left": format!("{left:.2}"),
                "width": format!("{width:.2}"),
                "offset": millis(offset),
                "duration": millis(s.duration_ms as i64),
                "detail": s.detail,
                "error": s.error,
                "input": s.input.as_ref().map(pretty),
                "output": pretty(&s.output),
            })
        })
        .collect();
    let waiting_step = |kind: &str| {
        stored
            .steps
            .iter()
            .find(|s| s.kind == kind && s.status == StepStatus::Waiting)
    };
    let wait = waiting_step("wait_for")
        .and_then(|s| s.input.as_ref())
        .map(|input| {
            json!({
                "event": input.get("event"),
                "key": input.get("key"),
                "deadline": stamp(input.get("deadline")),
            })
        });
    let approval = match (summary.status, waiting_step("approval")) {
        (ExecutionStatus::Waiting, Some(_)) => {
            match shared.runner.pending_approval(summary.id).await {
                Ok(p) => Some(json!({
                    "id": summary.id,
                    "message": p.message,
                    "since": time(p.waiting_since),
                    "deadline": time(p.deadline),
                    "on_timeout": p.on_timeout,
                    "approvers": p.approvers.join(", "),
                    "csrf": visitor.csrf,
                    "back": format!("/ui/executions/{}", summary.id),
                })),
                Err(_) => None,
            }
        }
        _ => None,
    };
    let error = summary.error.as_ref().map(|message| {
        let step = summary.error_step.clone().unwrap_or_default();
        json!({ "step": step, "anchor": anchor(&step), "message": message })
    });
    json!({
        "id": summary.id,
        "short_id": short_id(&summary.id),
        "status": summary.status.as_str(),
        "live": is_live(summary.status),
        "scenario": summary.scenario,
        "url_scenario": urlencoding::encode(&summary.scenario),
        "version": summary.version,
        "short_version": short_version(&summary.version),
        "started": time(summary.started_at),
        "started_iso": summary.started_at.to_rfc3339(),
        "duration": summary
            .duration_ms()
            .map(millis)
            .unwrap_or_else(|| format!("{} so far", millis((now - summary.started_at).num_milliseconds()))),
        "attempt": summary.attempt,
        "next_retry": summary.next_retry_at.map(time),
        "replay_of": summary.replay_of,
        "keys": keys(summary),
        "can_retry": summary.status == ExecutionStatus::Incomplete,
        "steps": steps,
        "error": error,
        "approval": approval,
        "wait": wait,
        "trigger": pretty(&stored.trigger),
        "csrf": visitor.csrf,
    })
}

async fn find(shared: &Shared, id: &str) -> Result<Option<StoredExecution>, String> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    shared.store.execution(id).await.map_err(|e| e.to_string())
}

fn not_found(shared: &Shared, visitor: &Visitor, id: &str) -> Response {
    shared.ui.message(
        visitor,
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("No execution `{id}` in the store (it may have been pruned)."),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ShowQuery {
    /// A line to show once, after an action redirected here.
    done: Option<String>,
}

pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ShowQuery>,
) -> Response {
    let stored = match find(&shared, &id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return not_found(&shared, &visitor, &id),
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let mut data = details(&shared, &visitor, &stored).await;
    data["flash"] = json!(match query.done.as_deref() {
        Some("retry") => Some("Retrying from the step that stopped it."),
        Some("decided") => Some("Decision kept; the execution goes on."),
        Some("replay") => Some("A replay of the execution with the same trigger."),
        _ => None,
    });
    let title = format!(
        "{} {}",
        stored.summary.scenario,
        short_id(&stored.summary.id)
    );
    shared
        .ui
        .page(&visitor, "executions", &title, "execution", data)
}

/// The page's body alone, with the status in `X-Execution-Status`, for
/// the live updates.
pub(super) async fn live(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let stored = match find(&shared, &id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such execution").into_response(),
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    let data = details(&shared, &visitor, &stored).await;
    let mut response = shared.ui.fragment("execution_body", &data);
    if let Ok(status) = HeaderValue::from_str(stored.summary.status.as_str()) {
        response.headers_mut().insert("x-execution-status", status);
    }
    response
}

#[derive(Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// The execution a form acts on, once its CSRF token is checked; or the
/// page that says why not.
async fn acted_on(
    shared: &Shared,
    visitor: &Visitor,
    id: &str,
    form: &ActionForm,
) -> Result<StoredExecution, Response> {
    if !visitor.sent(&form.csrf) {
        return Err(refused_csrf());
    }
    match find(shared, id).await {
        Ok(Some(stored)) => Ok(stored),
        Ok(None) => Err(not_found(shared, visitor, id)),
        Err(e) => Err(unavailable(shared, visitor, e)),
    }
}

pub(super) async fn retry(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let stored = match acted_on(&shared, &visitor, &id, &form).await {
        Ok(stored) => stored,
        Err(refused) => return refused,
    };
    let id = stored.summary.id;
    if stored.summary.status != ExecutionStatus::Incomplete {
        let message = format!(
            "Execution {id} is {}: only incomplete executions can be retried.",
            stored.summary.status
        );
        return shared
            .ui
            .message(&visitor, StatusCode::CONFLICT, "Not retried", &message);
    }
    crate::daemon::workers::retry_in_background(&shared, id);
    Redirect::to(&format!("/ui/executions/{id}?done=retry")).into_response()
}

/// Starts a new execution of the same version with the same trigger and
/// goes to its page once it is in the store.
pub(super) async fn replay(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let stored = match acted_on(&shared, &visitor, &id, &form).await {
        Ok(stored) => stored,
        Err(refused) => return refused,
    };
    let new_id = Uuid::now_v7();
    crate::daemon::workers::replay_in_background(&shared, stored.summary.id, new_id);
    // The replay commits its start before its first step: wait for that
    // (briefly), so the page it lands on exists.
    for _ in 0..50 {
        if matches!(shared.store.execution(new_id).await, Ok(Some(_))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    Redirect::to(&format!("/ui/executions/{new_id}?done=replay")).into_response()
}
