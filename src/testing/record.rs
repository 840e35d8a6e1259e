//! `scenarist test --record ID`: a test case built from a stored execution,
//! so a production incident becomes a regression test in one command. The
//! trigger is the stored one; each http step's recorded answer becomes its
//! mock; decisions and events become the case's approvals and events; what
//! was observed (status, steps, requests, records) becomes the expectation.
//! Everything comes from the store, where secrets were masked; the
//! scenario's env values are replaced by placeholders.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::run::step_id;
use crate::engine::{Engine, StepRecord, StepStatus, MASK};
use crate::runner::Runner;
use crate::store::Store;

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `3d`, `4h`, `90s` or `250ms`: the largest unit that is exact.
fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % size == 0 && ms > 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn masked(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(MASK),
        Value::Array(items) => items.iter().any(masked),
        Value::Object(map) => map.values().any(masked),
        _ => false,
    }
}

/// The answer an http step got, as a mock.
fn mock_of(record: &StepRecord) -> Value {
    if let Some(status) = record.output.get("status").and_then(Value::as_u64) {
        let mut mock = json!({ "status": status });
        if !record.output["body"].is_null() {
            mock["body"] = record.output["body"].clone();
        }
        return mock;
    }
    // A failed step keeps no output: its status is at the end of the detail.
    let status = record
        .detail
        .as_deref()
        .and_then(|d| d.rsplit("-> ").next())
        .and_then(|s| s.trim().parse::<u16>().ok());
    match status {
        Some(status) => json!({ "status": status }),
        None => json!({ "error": "connect" }),
    }
}

/// The test file, as YAML text, for execution `id`.
pub async fn record(store: Arc<dyn Store>, id: Uuid) -> Result<String, String> {
    let runner = Runner::new(Engine::new(), store.clone(), HashMap::new());
    let stored = runner.load(id).await.map_err(|e| e.to_string())?;
    let (plan, _) = runner
        .stored_plan(&stored.summary)
        .await
        .map_err(|e| e.to_string())?;
    let received = time(&stored.trigger["received_at"]).unwrap_or(stored.summary.started_at);
    let env: Map<String, Value> = plan
        .env
        .iter()
        .map(|d| {
            let placeholder = format!(
                "http://{}.test",
                d.name.to_ascii_lowercase().replace('_', "-")
            );
            (d.name.clone(), Value::String(placeholder))
        })
        .collect();
    let mut mocks = Map::new();
    let mut requests = Map::new();
    let mut approvals = Map::new();
    let mut events = Vec::new();
    let mut steps = Vec::new();
    for record in &stored.steps {
        let id = step_id(&record.path).to_owned();
        if record.status != StepStatus::Skipped {
            steps.push(Value::String(id.clone()));
        }
        match record.kind {
            "http" if record.status != StepStatus::Skipped => {
                mocks.insert(id.clone(), mock_of(record));
                let mut expected = json!({});
                if let Some(input) = &record.input {
                    expected["method"] = input["method"].clone();
                    if let Some(relative) = input["path"].as_str() {
                        // The address after the base URL, whatever the base is.
                        expected["url"] = Value::String(relative.to_owned());
                    } else if let Some(url) = input["url"]
                        .as_str()
                        .and_then(|u| reqwest::Url::parse(u).ok())
                    {
                        // Executions stored before the relative address was kept:
                        // the end of the path (the base URL differs in the test).
                        let segments: Vec<&str> = url
                            .path()
                            .rsplit('/')
                            .filter(|s| !s.is_empty())
                            .take(2)
                            .collect();
                        let mut tail: String =
                            segments.iter().rev().map(|s| format!("/{s}")).collect();
                        if let Some(q) = url.query() {
                            tail.push_str(&format!("?{q}"));
                        }
                        expected["url"] = Value::String(tail);
                    }
                    if !input["body"].is_null() && !masked(&input["body"]) {
                        expected["body"] = input["body"].clone();
                    }
                }
                if record.status == StepStatus::Succeeded && record.attempts == 1 {
                    expected["count"] = json!(1);
                }
                requests.insert(id, expected);
            }
            "approval" if record.status == StepStatus::Succeeded => {
                let out = &record.output;
                let decision = if out["decision"] == "approved" {
                    "approve"
                } else {
                    "reject"
                };
                let mut decided = json!({ "decision": decision });
                if let Some(by) = out["by"].as_str() {
                    decided["by"] = json!(by);
                }
                if let Some(comment) = out["comment"].as_str() {
                    decided["comment"] = json!(comment);
                }
                // A decision at the deadline is the timeout's, not a person's.
                if out["by"].is_string() {
                    approvals.insert(id, decided);
                }
            }
            "wait_for" if record.output["timed_out"] == false => {
                let out = &record.output;
                let at = time(&out["received_at"]).unwrap_or(received);
                events.push(json!({
                    "event": out["event"],
                    "key": out["key"],
                    "data": out["data"],
                    "after": duration((at - received).max(chrono::Duration::zero())),
                }));
            }
            _ => {}
        }
    }
    let business = store
        .business_events(
            received - chrono::Duration::days(1),
            Utc::now() + chrono::Duration::days(3650),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let records: Vec<Value> = business
        .iter()
        .filter(|b| b.execution_id == id)
        .map(|b| {
            let mut r = json!({ "event": b.event, "key": b.key });
            if let Some(v) = b.value {
                r["value"] = if v.fract() == 0.0 && v.abs() < 1e15 {
                    json!(v as i64)
                } else {
                    json!(v)
                };
            }
            r
        })
        .collect();
    let mut expect = json!({
        "status": stored.summary.status.as_str(),
        "steps": steps,
    });
    if !requests.is_empty() {
        expect["requests"] = Value::Object(requests);
    }
    if !records.is_empty() {
        expect["records"] = Value::Array(records);
    }
    if let Some(error) = &stored.summary.error {
        let cut: String = error.chars().take(80).collect();
        if !cut.contains(MASK) {
            expect["error"] = Value::String(cut);
        }
    }
    let trigger = &stored.trigger;
    // Mappings keep the order written here, so the case reads top-down.
    let yaml = |v: &Value| serde_yaml::to_value(v).unwrap_or(serde_yaml::Value::Null);
    let mut case = serde_yaml::Mapping::new();
    let put = |m: &mut serde_yaml::Mapping, k: &str, v: serde_yaml::Value| {
        m.insert(serde_yaml::Value::String(k.to_owned()), v);
    };
    put(
        &mut case,
        "name",
        yaml(&json!(format!("recorded from execution {id}"))),
    );
    put(
        &mut case,
        "now",
        yaml(&json!(
            received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )),
    );
    put(
        &mut case,
        "trigger",
        yaml(&json!({ "body": trigger["body"], "query": trigger["query"] })),
    );
    if !mocks.is_empty() {
        put(&mut case, "mocks", yaml(&Value::Object(mocks)));
    }
    if !approvals.is_empty() {
        put(&mut case, "approvals", yaml(&Value::Object(approvals)));
    }
    if !events.is_empty() {
        put(&mut case, "events", yaml(&Value::Array(events)));
    }
    let mut expected = serde_yaml::Mapping::new();
    for key in ["status", "steps", "requests", "records", "error"] {
        if let Some(v) = expect.get(key) {
            put(&mut expected, key, yaml(v));
        }
    }
    put(&mut case, "expect", serde_yaml::Value::Mapping(expected));
    let mut file = serde_yaml::Mapping::new();
    put(
        &mut file,
        "scenario",
        yaml(&json!(format!("{}.yaml", plan.name))),
    );
    if !env.is_empty() {
        put(&mut file, "env", yaml(&Value::Object(env)));
    }
    put(
        &mut file,
        "cases",
        serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(case)]),
    );
    let yaml = serde_yaml::to_string(&file).map_err(|e| e.to_string())?;
    Ok(format!(
        "# yaml-language-server: $schema=../schemas/scenario-test.schema.json\n# Recorded by `scenarist test --record {id}` from scenario version {}.\n{yaml}",
        &stored.summary.version[..stored.summary.version.len().min(12)]
    ))
}
