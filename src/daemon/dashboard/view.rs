//! Small formatting shared by the pages: times, durations, ids, JSON.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::engine::ExecutionStatus;
use crate::store::ExecutionSummary;

/// `2026-03-02 09:00:00` (UTC).
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `812 ms`, `4.2 s`, `3 min 2 s`, `2 h 5 min`, `3 d 4 h`.
pub fn millis(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => span(ms / 1000),
    }
}

fn span(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// How long ago (or how long until, for a future time).
pub fn since(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    millis((now - t).num_milliseconds())
}

/// The last 8 hex digits of an id: random in a UUIDv7, so they tell apart
/// executions accepted in the same minute (whose first digits, the time,
/// are the same). Pages show the whole id where it matters.
pub fn short_id(id: &uuid::Uuid) -> String {
    let text = id.simple().to_string();
    format!("…{}", &text[24..])
}

pub fn short_version(version: &str) -> String {
    version.chars().take(12).collect()
}

/// JSON larger than this is cut on the page (the API has it whole): a
/// page stays light even when a step received a large body.
const MAX_JSON: usize = 16 * 1024;

/// Pretty JSON for a `<pre>`, cut past [`MAX_JSON`] bytes.
pub fn pretty(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if text.len() <= MAX_JSON {
        return text;
    }
    let mut cut = MAX_JSON;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… cut here: {} bytes in all (GET /api/executions/ID has everything)",
        &text[..cut],
        text.len()
    )
}

/// One row of an executions table.
pub fn summary_row(row: &ExecutionSummary) -> Value {
    json!({
        "id": row.id,
        "short_id": short_id(&row.id),
        "scenario": row.scenario,
        "status": row.status.as_str(),
        "started": time(row.started_at),
        "started_iso": row.started_at.to_rfc3339(),
        "duration": row.duration_ms().map(millis).unwrap_or_else(|| "–".to_owned()),
        "error_step": row.error_step,
        "replay_of": row.replay_of,
        "keys": keys(row),
    })
}

pub fn keys(row: &ExecutionSummary) -> Vec<Value> {
    row.keys
        .iter()
        .map(|(name, value)| {
            json!({ "name": name, "value": value, "url_value": urlencoding::encode(value) })
        })
        .collect()
}

/// Every status, for the filter's select.
pub const STATUSES: [ExecutionStatus; 8] = [
    ExecutionStatus::Queued,
    ExecutionStatus::Running,
    ExecutionStatus::Succeeded,
    ExecutionStatus::Failed,
    ExecutionStatus::Filtered,
    ExecutionStatus::Incomplete,
    ExecutionStatus::Waiting,
    ExecutionStatus::Rejected,
];

/// `<option>`s with the chosen one marked.
pub fn options<'a>(names: impl IntoIterator<Item = &'a str>, chosen: Option<&str>) -> Vec<Value> {
    names
        .into_iter()
        .map(|name| json!({ "name": name, "selected": Some(name) == chosen }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(millis(812), "812 ms");
        assert_eq!(millis(4_200), "4.2 s");
        assert_eq!(millis(182_000), "3 min 2 s");
        assert_eq!(millis(7_500_000), "2 h 5 min");
        assert_eq!(millis(90 * 86_400_000), "90 d 0 h");
    }

    #[test]
    fn large_json_is_cut_on_a_character_boundary() {
        let big = json!({ "text": "é".repeat(20_000) });
        let shown = pretty(&big);
        assert!(
            shown.len() < 17_000 && shown.contains("cut here"),
            "{}",
            shown.len()
        );
        assert_eq!(pretty(&json!({ "a": 1 })), "{\n  \"a\": 1\n}");
    }
}
