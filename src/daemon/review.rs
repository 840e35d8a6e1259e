//! The review endpoints of the admin API: what waits for a person, their
//! decisions, and the report a weekly scenario can post to the chat channel.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::api::error;
use super::Shared;
use crate::report::{self, ReportRequest};
use crate::runner::{Decision, RunnerError};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionBody {
    by: Option<String>,
    comment: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ScenarioQuery {
    scenario: Option<String>,
    since: Option<String>,
}

pub(super) async fn approvals(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ScenarioQuery>,
) -> Response {
    match shared.runner.approvals(query.scenario).await {
        Ok(pending) => Json(pending).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(super) async fn approve(
    state: State<Arc<Shared>>,
    id: Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    decide(state, id, body, true).await
}

pub(super) async fn reject(
    state: State<Arc<Shared>>,
    id: Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    decide(state, id, body, false).await
}

/// Keeps the decision; the workers then take the execution from the queue.
async fn decide(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Option<Json<DecisionBody>>,
    approve: bool,
) -> Response {
    let id = match shared.runner.resolve(&id).await {
        Ok(id) => id,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let Json(body) = body.unwrap_or_default();
    let decision = Decision {
        approve,
        by: body.by.unwrap_or_else(|| "api".to_owned()),
        comment: body.comment,
    };
    match shared.runner.decide(id, decision).await {
        Ok(output) => {
            shared.metrics.queue_depth.inc();
            shared.wake.notify_one();
            (
                StatusCode::ACCEPTED,
                Json(json!({ "execution_id": id, "decision": output })),
            )
                .into_response()
        }
        Err(e @ RunnerError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ RunnerError::NotAnApprover { .. }) => error(StatusCode::FORBIDDEN, e.to_string()),
        Err(
            e @ (RunnerError::NotWaiting { .. }
            | RunnerError::WaitsForDelay { .. }
            | RunnerError::WaitsForEvent { .. }
            | RunnerError::NotResumable { .. }),
        ) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET /api/report?since=7d&scenario=S`: the report as JSON.
pub(super) async fn report(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ScenarioQuery>,
) -> Response {
    let until = Utc::now();
    let since = match query
        .since
        .as_deref()
        .unwrap_or("30d")
        .parse::<crate::model::Duration>()
    {
        Ok(d) => match d.before(until) {
            Some(since) => since,
            None => return error(StatusCode::BAD_REQUEST, "since: too long a period"),
        },
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("since: {e}")),
    };
    let request = ReportRequest {
        since,
        until,
        scenario: query.scenario,
    };
    let scenario = request.scenario.as_deref();
    let events = shared
        .store
        .business_events(request.since, until, scenario)
        .await;
    let counts = shared
        .store
        .report_counts(request.since, until, scenario)
        .await;
    match (events, counts) {
        (Ok(events), Ok(counts)) => Json(report::build(&request, &events, counts)).into_response(),
        (Err(e), _) | (_, Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
