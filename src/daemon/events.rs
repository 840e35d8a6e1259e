//! The correlated-event endpoints of the admin API: `POST /api/events`
//! commits an event and wakes its waiters before answering; `GET /api/waits`
//! and `GET /api/events` list what waits and what arrived.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::error;
use super::Shared;
use crate::runner::RunnerError;
use crate::store::EventFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    event: String,
    key: String,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct EventQuery {
    event: Option<String>,
    key: Option<String>,
    limit: Option<usize>,
}

impl EventQuery {
    fn filter(self) -> EventFilter {
        EventFilter {
            event: self.event,
            key: self.key,
            limit: Some(self.limit.unwrap_or(100).min(1000)),
        }
    }
}

/// 202 `{ event_id, resumed: [ids] }` once the event and the wake-ups are committed.
pub(super) async fn emit(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<EventBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{ event, key, data }}: {}", e.body_text()),
            )
        }
    };
    let data = body.data.unwrap_or_else(|| json!({}));
    match shared.runner.emit(&body.event, &body.key, data).await {
        Ok(emitted) => {
            if !emitted.resumed.is_empty() {
                shared
                    .metrics
                    .queue_depth
                    .inc_by(emitted.resumed.len() as i64);
                shared.wake.notify_one();
            }
            (
                StatusCode::ACCEPTED,
                Json(json!({ "event_id": emitted.event_id, "resumed": emitted.resumed })),
            )
                .into_response()
        }
        Err(e @ RunnerError::InvalidEvent(_)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(super) async fn waits(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<EventQuery>,
) -> Response {
    match shared.store.waits(&query.filter()).await {
        Ok(waits) => Json(waits).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(super) async fn events(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<EventQuery>,
) -> Response {
    match shared.store.events(&query.filter()).await {
        Ok(events) => Json(events).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
