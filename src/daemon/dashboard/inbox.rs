//! What waits for someone: the review inbox with approve and reject, and
//! the executions waiting for a correlated event.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::refused_csrf;
use super::scenarios::unavailable;
use super::view::{keys, short_id, since, time};
use super::Visitor;
use crate::daemon::Shared;
use crate::runner::{Decision, RunnerError};
use crate::store::EventFilter;

pub(super) async fn approvals(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let pending = match shared.runner.approvals(None).await {
        Ok(p) => p,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let now = Utc::now();
    let rows: Vec<Value> = pending
        .iter()
        .map(|p| {
            json!({
                "id": p.execution.id,
                "short_id": short_id(&p.execution.id),
                "scenario": p.execution.scenario,
                "step": p.step,
                "message": p.message,
                "waiting": since(p.waiting_since, now),
                "deadline": time(p.deadline),
                "on_timeout": p.on_timeout,
                "approvers": p.approvers.join(", "),
                "keys": keys(&p.execution),
                "csrf": visitor.csrf,
                "back": "/ui/approvals",
            })
        })
        .collect();
    shared.ui.page(
        &visitor,
        "approvals",
        "Approvals",
        "approvals",
        json!({ "pending": rows }),
    )
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    back: String,
}

/// Keeps an approve or reject; the workers then take the execution on.
pub(super) async fn decide(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if !visitor.sent(&form.csrf) {
        return refused_csrf();
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            let message = format!("`{other}` is not a decision: approve or reject");
            return shared
                .ui
                .message(&visitor, StatusCode::BAD_REQUEST, "Not decided", &message);
        }
    };
    let by = form.by.trim();
    if by.is_empty() {
        return shared.ui.message(
            &visitor,
            StatusCode::BAD_REQUEST,
            "Not decided",
            "Say who decides (your name): it is kept with the decision.",
        );
    }
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return shared.ui.message(
            &visitor,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such execution.",
        );
    };
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    let decision = Decision {
        approve,
        by: by.to_owned(),
        comment,
    };
    match shared.runner.decide(id, decision).await {
        Ok(_) => {
            shared.metrics.queue_depth.inc();
            shared.wake.notify_one();
            let back = match form.back.as_str() {
                "/ui/approvals" => "/ui/approvals".to_owned(),
                _ => format!("/ui/executions/{id}?done=decided"),
            };
            Redirect::to(&back).into_response()
        }
        Err(e @ RunnerError::NotFound(_)) => shared.ui.message(
            &visitor,
            StatusCode::NOT_FOUND,
            "Not decided",
            &e.to_string(),
        ),
        Err(e @ RunnerError::NotAnApprover { .. }) => shared.ui.message(
            &visitor,
            StatusCode::FORBIDDEN,
            "Not decided",
            &e.to_string(),
        ),
        Err(
            e @ (RunnerError::NotWaiting { .. }
            | RunnerError::WaitsForDelay { .. }
            | RunnerError::WaitsForEvent { .. }
            | RunnerError::NotResumable { .. }),
        ) => shared.ui.message(
            &visitor,
            StatusCode::CONFLICT,
            "Not decided",
            &e.to_string(),
        ),
        Err(e) => unavailable(&shared, &visitor, e),
    }
}

pub(super) async fn waits(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let filter = EventFilter {
        limit: Some(500),
        ..EventFilter::default()
    };
    let waits = match shared.store.waits(&filter).await {
        Ok(w) => w,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let rows: Vec<Value> = waits
        .iter()
        .map(|w| {
            json!({
                "id": w.execution_id,
                "short_id": short_id(&w.execution_id),
                "scenario": w.scenario,
                "step": w.step,
                "event": w.event,
                "key": w.key,
                "since": time(w.waiting_since),
                "deadline": time(w.deadline),
            })
        })
        .collect();
    shared.ui.page(
        &visitor,
        "waits",
        "Waits",
        "waits",
        json!({ "waits": rows }),
    )
}
