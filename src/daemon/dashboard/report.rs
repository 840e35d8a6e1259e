//! The referral report for a chosen period and scenario: totals, the weekly
//! chart (the report's own SVG) and the CSV download.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::scenarios::unavailable;
use super::view::{options, time};
use super::Visitor;
use crate::daemon::filters::ExecutionQuery;
use crate::daemon::Shared;
use crate::report::{self, Report, ReportRequest};

#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
pub(super) struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    scenario: Option<String>,
}

impl ReportQuery {
    /// The period (default: the last 30 days) and scenario, checked.
    fn request(&self, now: DateTime<Utc>) -> Result<ReportRequest, String> {
        let as_filter = ExecutionQuery {
            since: Some(
                self.since
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "30d".to_owned()),
            ),
            until: self.until.clone(),
            scenario: self.scenario.clone(),
            ..ExecutionQuery::default()
        };
        let filter = as_filter.filter(now)?;
        let since = filter.since.expect("a default period");
        let until = filter.until.unwrap_or(now);
        if since >= until {
            return Err("since: the period ends before it starts".to_owned());
        }
        Ok(ReportRequest {
            since,
            until,
            scenario: filter.scenario,
        })
    }

    fn query_string(&self) -> String {
        serde_urlencoded_pairs(&[
            ("since", &self.since),
            ("until", &self.until),
            ("scenario", &self.scenario),
        ])
    }
}

fn serde_urlencoded_pairs(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencoding::encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn build(
    shared: &Shared,
    request: ReportRequest,
) -> Result<Report, crate::store::StoreError> {
    let scenario = request.scenario.as_deref();
    let events = shared
        .store
        .business_events(request.since, request.until, scenario)
        .await?;
    let counts = shared
        .store
        .report_counts(request.since, request.until, scenario)
        .await?;
    Ok(report::build(&request, &events, counts))
}

pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let scenarios = shared.scenarios();
    let mut data = json!({
        "query": query,
        "query_string": query.query_string(),
        "scenario_options": options(scenarios.by_name.keys().map(String::as_str), query.scenario.as_deref()),
    });
    let request = match query.request(Utc::now()) {
        Ok(r) => r,
        Err(e) => {
            data["error"] = json!(e);
            return shared.ui.page_with(
                StatusCode::BAD_REQUEST,
                &visitor,
                "report",
                "Report",
                "report",
                &mut data,
            );
        }
    };
    let built = match build(&shared, request).await {
        Ok(r) => r,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let t = &built.totals;
    let rate = t
        .qualification_rate
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".to_owned());
    let median = t
        .median_hours_to_qualify
        .map(|h| format!("{h:.1} h"))
        .unwrap_or_else(|| "–".to_owned());
    let totals = [
        ("Enrolments", t.enrolments.to_string()),
        ("Referred leads", t.referred.to_string()),
        ("Qualified", t.qualified.to_string()),
        ("Qualification rate", rate),
        ("Rewards issued", t.rewards_issued.to_string()),
        ("Rewards value", format!("{:.2}", t.rewards_value)),
        ("Median time to qualify", median),
        ("Waiting for review", t.waiting_for_review.to_string()),
        ("Failed executions", t.failed.to_string()),
        ("Incomplete executions", t.incomplete.to_string()),
    ];
    data["totals"] = json!(totals
        .iter()
        .map(|(label, value)| json!({ "label": label, "value": value }))
        .collect::<Vec<_>>());
    data["period"] = json!(format!(
        "{} to {} (UTC){}",
        time(built.since),
        time(built.until),
        built
            .scenario
            .as_deref()
            .map(|s| format!(", scenario {s}"))
            .unwrap_or_default()
    ));
    data["chart"] = json!(report::svg::chart(&built));
    shared.ui.page_with(
        StatusCode::OK,
        &visitor,
        "report",
        "Report",
        "report",
        &mut data,
    )
}

pub(super) async fn csv(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let request = match query.request(Utc::now()) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    match build(&shared, request).await {
        Ok(built) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"referral-report.csv\"",
                ),
            ],
            report::render::csv(&built),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
