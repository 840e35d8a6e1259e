//! The scenarios page (what runs, and how it went this week) and a
//! scenario's page: its flow as SVG, its versions, a diff between two of
//! them, and the YAML.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::view::{short_version, time};
use super::Visitor;
use crate::daemon::Shared;
use crate::graph::{self, GraphFormat};
use crate::model::Trigger;

fn trigger(trigger: &Trigger) -> String {
    trigger.describe()
}

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let scenarios = shared.scenarios();
    let names: Vec<String> = scenarios.by_name.keys().cloned().collect();
    let week_ago = Utc::now() - Duration::days(7);
    let activity = match shared.store.activity(&names, week_ago).await {
        Ok(a) => a,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let rows: Vec<Value> = scenarios
        .by_name
        .values()
        .map(|served| {
            let s = &served.plan.scenario;
            let seen = activity.iter().find(|a| a.scenario == served.plan.name);
            let counts: Vec<Value> = seen
                .map(|a| {
                    a.counts
                        .iter()
                        .map(|(status, count)| json!({ "status": status, "count": count }))
                        .collect()
                })
                .unwrap_or_default();
            let last = seen.and_then(|a| a.last_started);
            json!({
                "name": served.plan.name,
                "url_name": urlencoding::encode(&served.plan.name),
                "description": s.description,
                "owner": s.owner,
                "tags": s.tags,
                "trigger": trigger(&s.trigger),
                "last_run": last.map(time),
                "last_run_iso": last.map(|t| t.to_rfc3339()),
                "counts": counts,
            })
        })
        .collect();
    let data = json!({
        "scenarios": rows,
        "problems": scenarios.problem_files(),
        "reconnect": super::connections::needing_reconnect(&shared).await,
    });
    shared
        .ui
        .page(&visitor, "scenarios", "Scenarios", "scenarios", data)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ScenarioQuery {
    /// The version whose YAML is shown (default: the served one).
    version: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(name): Path<String>,
    Query(query): Query<ScenarioQuery>,
) -> Response {
    let scenarios = shared.scenarios();
    let Some(served) = scenarios.by_name.get(&name).cloned() else {
        return shared.ui.message(
            &visitor,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("No scenario named `{name}` is served from the folder."),
        );
    };
    let versions = match shared.store.versions(&name).await {
        Ok(v) => v,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let known = |v: &Option<String>| {
        v.as_deref()
            .filter(|v| versions.iter().any(|seen| seen.version == *v))
            .map(str::to_owned)
    };
    let shown = known(&query.version).unwrap_or_else(|| served.plan.version.clone());
    let source = if shown == served.plan.version {
        served.source.clone()
    } else {
        match shared.store.version_source(&name, &shown).await {
            Ok(Some(text)) => text,
            Ok(None) => String::new(),
            Err(e) => return unavailable(&shared, &visitor, e),
        }
    };
    let (from, to) = (known(&query.from), known(&query.to));
    let diff = match (&from, &to) {
        (Some(from), Some(to)) => {
            let store = &shared.store;
            let old = store.version_source(&name, from).await.ok().flatten();
            let new = store.version_source(&name, to).await.ok().flatten();
            let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
            Some(diff(&old, &new, from, to))
        }
        _ => None,
    };
    let version_rows: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "version": v.version,
                "short": short_version(&v.version),
                "saved": time(v.saved_at),
                "served": v.version == served.plan.version,
                // By default, compare the previous version with the newest.
                "is_from": from.as_deref().map_or(i == 1, |f| f == v.version),
                "is_to": to.as_deref().map_or(i == 0, |t| t == v.version),
            })
        })
        .collect();
    let s = &served.plan.scenario;
    let watch = crate::daemon::watches::view(&shared, &served)
        .await
        .map(|mut w| {
            w["cursor_text"] = Value::String(w["cursor"].to_string());
            w
        });
    let data = json!({
        "watch": watch,
        "name": served.plan.name,
        "url_name": urlencoding::encode(&served.plan.name),
        "description": s.description,
        "owner": s.owner,
        "trigger": trigger(&s.trigger),
        "file": served.file.display().to_string(),
        "version": served.plan.version,
        "short_version": short_version(&served.plan.version),
        "svg": graph::render(s, GraphFormat::Svg),
        "versions": version_rows,
        "diff": diff,
        "source": source,
        "shown_short": short_version(&shown),
        "shown_served": shown == served.plan.version,
    });
    shared
        .ui
        .page(&visitor, "scenarios", &served.plan.name, "scenario", data)
}

/// A line diff, as rows the template colours.
fn diff(old: &str, new: &str, from: &str, to: &str) -> Value {
    let changes = similar::TextDiff::from_lines(old, new);
    let lines: Vec<Value> = changes
        .iter_all_changes()
        .map(|change| {
            let (tag, sign) = match change.tag() {
                similar::ChangeTag::Delete => ("delete", "-"),
                similar::ChangeTag::Insert => ("insert", "+"),
                similar::ChangeTag::Equal => ("equal", " "),
            };
            json!({ "tag": tag, "sign": sign, "text": change.value().trim_end_matches('\n') })
        })
        .collect();
    json!({
        "from": short_version(from),
        "to": short_version(to),
        "same": old == new,
        "lines": lines,
    })
}

/// The store did not answer: say so, with its words (never a password).
pub(super) fn unavailable(
    shared: &Shared,
    visitor: &Visitor,
    e: impl std::fmt::Display,
) -> Response {
    shared.ui.message(
        visitor,
        StatusCode::SERVICE_UNAVAILABLE,
        "The store does not answer",
        &e.to_string(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diff_marks_removed_and_added_lines() {
        let d = super::diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "v1", "v2");
        let tags: Vec<&str> = d["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["tag"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["equal", "delete", "insert"]);
        assert_eq!(d["lines"][2]["text"], "b: 3");
        assert_eq!(d["same"], false);
    }
}
