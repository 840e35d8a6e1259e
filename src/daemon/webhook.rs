//! `/hooks/<path>`: every check before anything is stored, then one commit,
//! then the answer. Once 202 is sent, the event survives any crash.
//!
//! Order of checks: size (413), authentication (401: `signature.rs`, over the
//! raw body, with the sender's replay window), JSON (400), input schema (422),
//! queue depth (503), dedupe (200 duplicate; by default the signed sender's
//! delivery id), commit (202).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::signature;
use super::webhook_auth::{authenticate, Called};
use super::{trigger_context, Shared};
use crate::engine::ExecutionStatus;
use crate::model::{HttpMethod, WebhookRespond};
use crate::plan::WebhookAuthPlan;
use crate::runner::owner;
use crate::store::{
    Admission, DedupeKey, Enqueued, ExecutionSummary, NewExecution, StoredExecution,
};

pub(super) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let (code, response) = answer(&shared, method, &path, query, target, headers, body).await;
    shared.metrics.webhook(code.as_u16());
    response
}

fn problem(code: StatusCode, message: impl Into<String>) -> (StatusCode, Response) {
    let body = Json(json!({ "error": message.into() }));
    (code, (code, body).into_response())
}

async fn answer(
    shared: &Arc<Shared>,
    method: Method,
    path: &str,
    query: Option<String>,
    target: &str,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Response) {
    let Some(method) = http_method(&method) else {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "unsupported method");
    };
    let scenarios = shared.scenarios();
    let path = path.trim_matches('/');
    let Some(name) = scenarios.webhooks.get(&(method, path.to_owned())) else {
        let other_method = scenarios.webhooks.keys().any(|(_, p)| p == path);
        return if other_method {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("/hooks/{path} does not take {}", method.as_str()),
            )
        } else {
            problem(
                StatusCode::NOT_FOUND,
                format!("no scenario listens at /hooks/{path}"),
            )
        };
    };
    let served = scenarios.by_name[name].clone();
    let webhook = served.plan.webhook.as_ref().expect("webhook scenario");
    if body.len() > shared.config.max_body {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {} bytes; the limit is {}",
                body.len(),
                shared.config.max_body
            ),
        );
    }
    let env = shared.runner.env();
    if let Some(auth) = &webhook.auth {
        let request = Called {
            method: method.as_str(),
            target,
        };
        if let Err(why) = authenticate(auth, &served, env, request, &headers, &body) {
            return problem(StatusCode::UNAUTHORIZED, why);
        }
    }
    let parsed = match parse_body(&body) {
        Ok(value) => value,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            )
        }
    };
    let violations = served.plan.input_violations(&parsed);
    if !violations.is_empty() {
        let body = Json(
            json!({ "error": "the body does not match the scenario's input schema", "violations": violations }),
        );
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            (StatusCode::UNPROCESSABLE_ENTITY, body).into_response(),
        );
    }
    if shared.stopping() {
        return overloaded("shutting down", 5);
    }
    let depth = shared.metrics.queue_depth.get().max(0) as u64;
    if depth >= shared.config.max_queue {
        return overloaded(&format!("{depth} executions are waiting"), 5);
    }
    if let Err(refusal) = shared.backlog.admit(depth) {
        return overloaded(
            &format!("{depth} executions are waiting, {refusal}"),
            refusal.retry_after,
        );
    }
    let received_at = Utc::now();
    let trigger = json!({
        "body": parsed,
        "headers": kept_headers(&headers, webhook.auth.as_ref()),
        "query": query_map(query.as_deref()),
        "received_at": received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    let ctx = trigger_context(&served, env, trigger.clone());
    let dedupe = match &webhook.dedupe {
        // A signed sender's own delivery id, when the scenario names no key.
        None => match &webhook.auth {
            Some(WebhookAuthPlan::Signed { scheme, .. }) => {
                signature::delivery_id(*scheme, &headers, &trigger["body"]).map(|key| DedupeKey {
                    key,
                    expires_at: received_at
                        + chrono::Duration::from_std(shared.config.dedupe_window)
                            .unwrap_or_default(),
                })
            }
            _ => None,
        },
        Some(expr) => match expr.eval_ref(&ctx) {
            Ok(key) => Some(DedupeKey {
                key: match key.as_ref() {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                expires_at: received_at
                    + chrono::Duration::from_std(shared.config.dedupe_window).unwrap_or_default(),
            }),
            Err(e) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the dedupe key cannot be computed: {e}"),
                )
            }
        },
    };
    let concurrency_key = match &served.limit {
        Some((_, Some(expr))) => match expr.eval_ref(&ctx) {
            Ok(key) => Some(match key.as_ref() {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Err(e) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the concurrency key cannot be computed: {e}"),
                )
            }
        },
        _ => None,
    };
    let keys = shared.runner.business_keys(&served.plan, &ctx);
    let mut trigger = trigger;
    shared.runner.mask(&served.plan, &mut trigger);
    let id = Uuid::now_v7();
    // A free worker: the event is committed running, owned by this
    // process, and starts at once (no claim, no wake-up). When every worker
    // is busy it takes the queue, and a freed permit goes to the workers'
    // claim first (tokio's semaphore serves waiters before `try_acquire`),
    // so queued events are never overtaken for long. Scenarios with a
    // concurrency limit always take the queue, which keeps limits and order.
    let permit = served
        .limit
        .is_none()
        .then(|| shared.permits.clone().try_acquire_owned().ok())
        .flatten();
    if permit.is_some() {
        shared.start_flight(id);
    }
    let new = NewExecution {
        id,
        scenario: served.plan.name.clone(),
        version: served.plan.version.clone(),
        trigger,
        vars: Map::new(),
        started_at: received_at,
        owner: match permit {
            Some(_) => owner::this_process().to_owned(),
            None => String::new(),
        },
        replay_of: None,
        keys,
    };
    let started = permit.map(|permit| (permit, started_execution(&new)));
    let admission = Admission {
        dedupe,
        tick: None,
        concurrency_key,
        start: started.is_some(),
    };
    let waiter = (webhook.respond == WebhookRespond::AfterRun).then(|| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        shared.waiters.lock().expect("waiters lock").insert(id, tx);
        rx
    });
    match shared.store.enqueue(new, admission, received_at).await {
        Ok(Enqueued::Accepted(id)) => {
            shared.health.wrote();
            match started {
                Some((permit, stored)) => {
                    // Boxed, as the workers' own: the future is large.
                    tokio::spawn(Box::pin(super::workers::run_claimed(
                        shared.clone(),
                        stored,
                        permit,
                    )));
                }
                None => {
                    shared.metrics.queue_depth.inc();
                    shared.wake.notify_one();
                }
            }
            match waiter {
                None => {
                    let body = Json(json!({ "execution_id": id }));
                    (
                        StatusCode::ACCEPTED,
                        (StatusCode::ACCEPTED, body).into_response(),
                    )
                }
                Some(rx) => after_run(shared, id, rx).await,
            }
        }
        Ok(Enqueued::Duplicate(existing)) => {
            shared.cancel_flight(id);
            shared.waiters.lock().expect("waiters lock").remove(&id);
            let body = Json(json!({ "duplicate": true, "execution_id": existing }));
            (StatusCode::OK, (StatusCode::OK, body).into_response())
        }
        Err(e) => {
            shared.cancel_flight(id);
            shared.waiters.lock().expect("waiters lock").remove(&id);
            shared.health.refused(&e);
            tracing::error!(error = %e, "cannot commit a webhook event");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; send it again",
            )
        }
    }
}

/// What a worker would have claimed: the execution as it is committed
/// when a webhook starts it at once.
fn started_execution(new: &NewExecution) -> StoredExecution {
    StoredExecution {
        summary: ExecutionSummary {
            id: new.id,
            scenario: new.scenario.clone(),
            version: new.version.clone(),
            status: ExecutionStatus::Running,
            attempt: 1,
            started_at: new.started_at,
            finished_at: None,
            next_retry_at: None,
            error_step: None,
            error: None,
            owner: Some(new.owner.clone()),
            replay_of: None,
            keys: Default::default(),
        },
        trigger: new.trigger.clone(),
        vars: new.vars.clone(),
        steps: Vec::new(),
    }
}

/// `respond: after_run`: what the scenario's `respond` step built, or a summary.
async fn after_run(
    shared: &Arc<Shared>,
    id: Uuid,
    rx: tokio::sync::oneshot::Receiver<crate::engine::Execution>,
) -> (StatusCode, Response) {
    match tokio::time::timeout(shared.config.respond_timeout, rx).await {
        Ok(Ok(execution)) => match &execution.response {
            Some(response) => {
                let code = response["status"]
                    .as_u64()
                    .and_then(|c| StatusCode::from_u16(c as u16).ok())
                    .unwrap_or(StatusCode::OK);
                let mut builder = Response::builder().status(code);
                let mut has_type = false;
                if let Some(headers) = response["headers"].as_object() {
                    for (name, value) in headers {
                        let text = match value {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        has_type |= name.eq_ignore_ascii_case("content-type");
                        builder = builder.header(name.as_str(), text);
                    }
                }
                let body = match &response["body"] {
                    Value::String(s) if has_type => s.clone(),
                    Value::Null => String::new(),
                    other => {
                        if !has_type {
                            builder = builder.header("content-type", "application/json");
                        }
                        other.to_string()
                    }
                };
                let response = builder
                    .body(axum::body::Body::from(body))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
                (code, response)
            }
            None => {
                let body = Json(json!({
                    "execution_id": id,
                    "status": execution.status,
                    "error": execution.error,
                }));
                // Parked for a review or a delay: accepted, not done.
                let code = if execution.status == crate::engine::ExecutionStatus::Waiting {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                (code, (code, body).into_response())
            }
        },
        _ => {
            shared.waiters.lock().expect("waiters lock").remove(&id);
            let body = Json(
                json!({ "execution_id": id, "status": "running", "note": "accepted; the execution did not finish in time to answer" }),
            );
            (
                StatusCode::ACCEPTED,
                (StatusCode::ACCEPTED, body).into_response(),
            )
        }
    }
}

fn overloaded(why: &str, retry_after: u64) -> (StatusCode, Response) {
    let code = StatusCode::SERVICE_UNAVAILABLE;
    let body = Json(json!({ "error": format!("busy: {why}; retry later") }));
    let retry_after = retry_after.to_string();
    (
        code,
        (code, [("retry-after", retry_after.as_str())], body).into_response(),
    )
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        _ => return None,
    })
}

/// The body as JSON; an empty (or all-whitespace) body is an empty object.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_slice(body)
    }
}

/// The request headers a scenario may read, without the credentials.
pub(crate) fn kept_headers(headers: &HeaderMap, auth: Option<&WebhookAuthPlan>) -> Value {
    let credentials: Vec<String> = match auth {
        None => Vec::new(),
        Some(
            WebhookAuthPlan::HmacSha256 { header, .. } | WebhookAuthPlan::Token { header, .. },
        ) => {
            vec![header.to_ascii_lowercase()]
        }
        Some(WebhookAuthPlan::Signed { scheme, .. }) => signature::signature_headers(*scheme)
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    };
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if name == "authorization" || name == "cookie" || credentials.iter().any(|c| c == name) {
            continue;
        }
        if let Ok(text) = value.to_str() {
            out.insert(name.to_owned(), Value::String(text.to_owned()));
        }
    }
    Value::Object(out)
}

/// The query string as a map of decoded names to decoded values (the last one wins).
pub(crate) fn query_map(query: Option<&str>) -> Value {
    let mut out = Map::new();
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| s.to_owned())
            };
            out.insert(decode(k), Value::String(decode(v)));
        }
    }
    Value::Object(out)
}
