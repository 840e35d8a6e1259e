//! The executions list: filters in the URL (shareable), keyset pages, and a
//! bulk retry of the incomplete executions that match.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::refused_csrf;
use super::scenarios::unavailable;
use super::view::{options, short_id, summary_row, STATUSES};
use super::Visitor;
use crate::daemon::filters::ExecutionQuery;
use crate::daemon::Shared;
use crate::engine::ExecutionStatus;
use crate::store::Cursor;

/// Rows per page.
const PAGE: usize = 50;
/// Most executions one bulk retry takes.
pub(super) const BULK_MAX: usize = 200;

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Query(mut query): Query<ExecutionQuery>,
) -> Response {
    query.limit = Some(query.limit.unwrap_or(PAGE));
    let scenarios = shared.scenarios();
    let mut data = json!({
        "query": query,
        "scenario_options": options(scenarios.by_name.keys().map(String::as_str), query.scenario.as_deref()),
        "status_options": options(STATUSES.iter().map(|s| s.as_str()), query.status.as_deref()),
        "filter_fields": filter_fields(&query),
        "bulk_max": BULK_MAX,
        "rows": [],
    });
    let filter = match query.filter(Utc::now()) {
        Ok(filter) => filter,
        Err(e) => {
            data["error"] = json!(e);
            return shared.ui.page_with(
                StatusCode::BAD_REQUEST,
                &visitor,
                "executions",
                "Executions",
                "executions",
                &mut data,
            );
        }
    };
    let rows = match shared.store.list(&filter).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let full = Some(rows.len()) == filter.limit;
    if let Some(last) = rows.last().filter(|_| full) {
        data["next_page"] = json!(format!(
            "/ui/executions?{}",
            query.to_query_string(Some(&Cursor::of(last)))
        ));
    }
    if filter.after.is_some() {
        data["first_page"] = json!(format!("/ui/executions?{}", query.to_query_string(None)));
    }
    data["rows"] = Value::Array(rows.iter().map(summary_row).collect());
    shared.ui.page_with(
        StatusCode::OK,
        &visitor,
        "executions",
        "Executions",
        "executions",
        &mut data,
    )
}

/// The filter as hidden inputs, so the bulk retry acts on what is shown.
fn filter_fields(query: &ExecutionQuery) -> Vec<Value> {
    [
        ("scenario", &query.scenario),
        ("status", &query.status),
        ("since", &query.since),
        ("until", &query.until),
        ("key", &query.key),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_ref().map(|v| json!({ "name": name, "value": v })))
    .collect()
}

#[derive(Deserialize)]
pub(super) struct RetryForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    query: ExecutionQuery,
}

/// Retries every incomplete execution that matches the filter (whatever
/// status it names), up to [`BULK_MAX`], and says what became of each.
pub(super) async fn retry_matching(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<RetryForm>,
) -> Response {
    if !visitor.sent(&form.csrf) {
        return refused_csrf();
    }
    let mut query = form.query;
    query.after = None;
    query.limit = Some(BULK_MAX);
    let back = format!("/ui/executions?{}", query.to_query_string(None));
    let mut filter = match query.filter(Utc::now()) {
        Ok(filter) => filter,
        Err(e) => {
            return shared
                .ui
                .message(&visitor, StatusCode::BAD_REQUEST, "Retry", &e)
        }
    };
    filter.status = Some(ExecutionStatus::Incomplete);
    let rows = match shared.store.list(&filter).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let mut started = 0;
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            let (result, class) = if crate::daemon::workers::retry_in_background(&shared, row.id) {
                started += 1;
                ("retrying from the step that stopped it", "ok")
            } else {
                ("already being retried", "muted")
            };
            json!({
                "id": row.id,
                "short_id": short_id(&row.id),
                "scenario": row.scenario,
                "result": result,
                "class": class,
            })
        })
        .collect();
    tracing::info!(
        started,
        matched = rows.len(),
        "bulk retry from the dashboard"
    );
    let data = json!({
        "results": results,
        "started": started,
        "total": rows.len(),
        "back": back,
    });
    shared
        .ui
        .page(&visitor, "executions", "Retry", "retried", data)
}
