//! The daemon's HTTP surface: webhooks, `/healthz`, `/metrics`, and the
//! admin API under `/api` (Bearer token required when not on loopback).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::filters::ExecutionQuery;
use super::Shared;
use crate::engine::ExecutionStatus;
use crate::store::{Admission, Cursor, Enqueued, NewExecution};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/scenarios", get(scenarios))
        .route("/scenarios/{name}/run", post(run_scenario))
        .route("/executions", get(executions))
        .route("/executions/{id}", get(execution))
        .route("/executions/{id}/retry", post(retry))
        .route("/executions/{id}/approve", post(super::review::approve))
        .route("/executions/{id}/reject", post(super::review::reject))
        .route("/approvals", get(super::review::approvals))
        .route("/report", get(super::review::report))
        .route(
            "/events",
            post(super::events::emit).get(super::events::events),
        )
        .route("/waits", get(super::events::waits))
        .route("/triggers", get(super::watches::list))
        .route("/triggers/{name}/poll", post(super::watches::poll_now))
        .route_layer(middleware::from_fn_with_state(shared.clone(), admin_token));
    Router::new()
        .route("/hooks/{*path}", any(super::webhook::handle))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api", api)
        .merge(super::dashboard::router(shared.clone()))
        .layer(DefaultBodyLimit::max(shared.config.max_body + 1))
        .with_state(shared)
}

pub(super) fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

async fn admin_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &shared.config.admin_token {
        let ip = super::client_ip(request.extensions());
        if let Some(wait) = ip.and_then(|ip| shared.throttle.wait(ip)) {
            return super::throttled(wait);
        }
        let given = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| super::dashboard::same(g.as_bytes(), expected.as_bytes()));
        if !ok {
            if let Some(ip) = ip {
                shared.throttle.failed(ip);
            }
            return error(
                StatusCode::UNAUTHORIZED,
                "the admin API needs `Authorization: Bearer $SCENARIST_ADMIN_TOKEN`",
            );
        }
    }
    next.run(request).await
}

/// 200 `ok` when the store answers and its last write went through; 503
/// `store unreachable` when it does not answer, `failing` (with the
/// store's message, never its URL) while it answers but refuses writes.
/// A store log past twice its ceiling: the checkpoints are not keeping up
/// (a reader that never lets go, another process writing), and the disk fills.
fn storage_warning(stats: Option<crate::store::StorageStats>) -> Option<String> {
    let stats = stats?;
    (stats.log_ceiling > 0 && stats.log_bytes > 2 * stats.log_ceiling).then(|| {
        format!(
            "the store's write-ahead log is {} MB, more than twice its ceiling of {} MB: checkpoints are not keeping up",
            stats.log_bytes / (1024 * 1024),
            stats.log_ceiling / (1024 * 1024)
        )
    })
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let scenarios = shared.scenarios().by_name.len();
    match shared.store.queue_depth().await {
        Ok(queued) => match shared.health.report() {
            None => {
                let mut body = json!({ "status": "ok", "scenarios": scenarios, "queued": queued });
                if let Some(warning) = storage_warning(shared.store.storage()) {
                    body["status"] = json!("warning");
                    body["warnings"] = json!([warning]);
                }
                Json(body).into_response()
            }
            Some(mut failing) => {
                failing["scenarios"] = json!(scenarios);
                failing["queued"] = json!(queued);
                (StatusCode::SERVICE_UNAVAILABLE, Json(failing)).into_response()
            }
        },
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "store unreachable", "error": e.to_string(), "scenarios": scenarios })),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(depth) = shared.store.queue_depth().await {
        shared.metrics.queue_depth.set(depth as i64);
    }
    if let Some(stats) = shared.store.storage() {
        shared.metrics.set_storage(&stats);
    }
    if let Ok(rows) = shared.store.credentials().await {
        shared.metrics.set_connections(&rows);
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.render(),
    )
        .into_response()
}

async fn scenarios(State(shared): State<Arc<Shared>>) -> Response {
    let scenarios = shared.scenarios();
    let list: Vec<Value> = scenarios
        .by_name
        .values()
        .map(|s| {
            let scenario = &s.plan.scenario;
            json!({
                "name": s.plan.name,
                "version": s.plan.version,
                "file": s.file.display().to_string(),
                "owner": scenario.owner,
                "description": scenario.description,
                "trigger": scenario.trigger.kind(),
                "webhook": s.plan.webhook.as_ref().map(|w| format!("/hooks/{}", w.path)),
                "steps": scenario.steps.len(),
            })
        })
        .collect();
    Json(list).into_response()
}

/// `GET /api/executions`: a page, newest first. `X-Next-Page` carries the
/// position to pass as `after=` for the next page when there may be one.
async fn executions(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ExecutionQuery>,
) -> Response {
    let filter = match query.filter(Utc::now()) {
        Ok(filter) => filter,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match shared.store.list(&filter).await {
        Ok(rows) => {
            let full = Some(rows.len()) == filter.limit;
            let next = rows
                .last()
                .filter(|_| full)
                .map(|last| Cursor::of(last).to_string());
            let mut response = Json(rows).into_response();
            if let Some(next) = next.and_then(|n| n.parse().ok()) {
                response.headers_mut().insert("x-next-page", next);
            }
            response
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn execution(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match shared.runner.resolve(&id).await {
        Ok(id) => id,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    match shared.store.execution(id).await {
        Ok(Some(stored)) => Json(stored).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no execution {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A manual trigger: the request body is the trigger body; queued like a webhook event.
async fn run_scenario(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let scenarios = shared.scenarios();
    let Some(served) = scenarios.by_name.get(&name).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("no scenario named `{name}`"));
    };
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                )
            }
        }
    };
    let violations = served.plan.input_violations(&parsed);
    if !violations.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": "the body does not match the scenario's input schema", "violations": violations })),
        )
            .into_response();
    }
    let now = Utc::now();
    let mut trigger = json!({
        "body": parsed,
        "headers": {},
        "query": {},
        "received_at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    let ctx = super::trigger_context(&served, shared.runner.env(), trigger.clone());
    let keys = shared.runner.business_keys(&served.plan, &ctx);
    let concurrency_key = match &served.limit {
        Some((_, Some(expr))) => match expr.eval_ref(&ctx) {
            Ok(v) => Some(match v.as_ref() {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the concurrency key cannot be computed: {e}"),
                )
            }
        },
        _ => None,
    };
    shared.runner.mask(&served.plan, &mut trigger);
    let new = NewExecution {
        id: Uuid::now_v7(),
        scenario: served.plan.name.clone(),
        version: served.plan.version.clone(),
        trigger,
        vars: Map::new(),
        started_at: now,
        owner: String::new(),
        replay_of: None,
        keys,
    };
    let admission = Admission {
        concurrency_key,
        ..Admission::default()
    };
    match shared.store.enqueue(new, admission, now).await {
        Ok(Enqueued::Accepted(id)) | Ok(Enqueued::Duplicate(id)) => {
            shared.metrics.queue_depth.inc();
            shared.wake.notify_one();
            (StatusCode::ACCEPTED, Json(json!({ "execution_id": id }))).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Resumes an incomplete execution now (in the background); 202 when it started.
async fn retry(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = match shared.runner.resolve(&id).await {
        Ok(id) => id,
        Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let stored = match shared.store.execution(id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no execution {id}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    if stored.summary.status != ExecutionStatus::Incomplete {
        return error(
            StatusCode::CONFLICT,
            format!(
                "execution {id} is {}: only incomplete executions can be retried",
                stored.summary.status
            ),
        );
    }
    if !super::workers::retry_in_background(&shared, id) {
        return error(
            StatusCode::CONFLICT,
            format!("execution {id} is being retried already"),
        );
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "execution_id": id, "retrying": true })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::storage_warning;
    use crate::store::StorageStats;

    #[test]
    fn healthz_warns_only_past_twice_the_log_ceiling() {
        let mb = 1024 * 1024;
        let at = |log_bytes| StorageStats {
            log_bytes,
            log_ceiling: 64 * mb,
            ..StorageStats::default()
        };
        assert_eq!(storage_warning(None), None);
        assert_eq!(storage_warning(Some(at(100 * mb))), None);
        assert_eq!(storage_warning(Some(at(128 * mb))), None);
        let warning = storage_warning(Some(at(200 * mb))).expect("a warning");
        assert!(warning.contains("200 MB"), "{warning}");
        assert!(warning.contains("ceiling of 64 MB"), "{warning}");
    }
}
