//! Checks a case's expectations against what its execution did. Each
//! failure names the field path of the expectation (the loader turns it into
//! file:line:col), the expected and the actual value.

use serde_json::Value;

use super::mocks::SentRequest;
use super::model::TestCase;
use super::run::{step_id, CaseOutcome};
use crate::engine::StepStatus;

/// One expectation that does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Field path in the test file, e.g. `cases[0].expect.status`.
    pub path: String,
    pub message: String,
}

fn fail(path: String, message: impl Into<String>) -> Failure {
    Failure {
        path,
        message: message.into(),
    }
}

/// Whether `actual` holds everything `expected` says (objects: every key
/// given, recursively; arrays: same length, item by item; numbers by value).
/// Differences are written as `path: expected X, got Y` lines.
pub fn subset(expected: &Value, actual: &Value, at: &str, diffs: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let here = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match got.get(key) {
                    Some(found) => subset(value, found, &here, diffs),
                    None => diffs.push(format!("{here}: expected {value}, missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            for (i, (w, g)) in want.iter().zip(got).enumerate() {
                subset(w, g, &format!("{at}[{i}]"), diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (want, got) if want == got => {}
        (want, got) => {
            let here = if at.is_empty() {
                "(the whole value)"
            } else {
                at
            };
            diffs.push(format!("{here}: expected {want}, got {got}"));
        }
    }
}

fn requests_of<'a>(sent: &'a [SentRequest], step: &str) -> Vec<&'a SentRequest> {
    sent.iter().filter(|r| r.step == step).collect()
}

pub fn check(index: usize, case: &TestCase, outcome: &CaseOutcome) -> Vec<Failure> {
    let base = format!("cases[{index}]");
    let mut failures = Vec::new();
    let Some(status) = outcome.status else {
        let why = outcome.error.clone().unwrap_or_default();
        return vec![fail(base, format!("the execution did not run: {why}"))];
    };
    for request in &outcome.sent {
        let iteration = request.path.rsplit('/').next().unwrap_or(&request.path);
        if !case.mocks.contains_key(&request.step) && !case.mocks.contains_key(iteration) {
            let at = if request.path == request.step {
                String::new()
            } else {
                format!(" (at {})", request.path)
            };
            failures.push(fail(
                format!("{base}.mocks"),
                format!(
                    "step `{}`{at} sent {} {} and there is no mock for it: no request leaves a test",
                    request.step, request.method, request.url
                ),
            ));
        }
    }
    let expect = &case.expect;
    let at = |field: &str| format!("{base}.expect.{field}");
    if let Some(want) = expect.status {
        if want.as_str() != status.as_str() {
            let why = outcome
                .error
                .as_deref()
                .map(|e| format!(" (error: {e})"))
                .unwrap_or_default();
            failures.push(fail(
                at("status"),
                format!("expected {}, got {status}{why}", want.as_str()),
            ));
        }
    }
    if let (Some(want), Some(got)) = (&expect.items, &outcome.polled) {
        if want != got {
            failures.push(fail(
                at("items"),
                format!(
                    "expected the items [{}] to become executions, got [{}]",
                    want.join(", "),
                    got.join(", ")
                ),
            ));
        }
    }
    if let Some(want) = &expect.steps {
        let ran: Vec<&str> = outcome
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Skipped)
            .map(|s| step_id(&s.path))
            .collect();
        if ran != want.iter().map(String::as_str).collect::<Vec<_>>() {
            failures.push(fail(
                at("steps"),
                format!("expected [{}], got [{}]", want.join(", "), ran.join(", ")),
            ));
        }
    }
    for (step, want) in &expect.outputs {
        let got = outcome
            .steps
            .iter()
            .rev()
            .find(|s| step_id(&s.path) == step);
        match got {
            None => failures.push(fail(
                at(&format!("outputs.{step}")),
                format!("step `{step}` did not run"),
            )),
            Some(record) => {
                let mut diffs = Vec::new();
                subset(want, &record.output, "", &mut diffs);
                if !diffs.is_empty() {
                    failures.push(fail(
                        at(&format!("outputs.{step}")),
                        format!("the output of `{step}` differs:\n  {}", diffs.join("\n  ")),
                    ));
                }
            }
        }
    }
    for (step, want) in &expect.requests {
        let here = at(&format!("requests.{step}"));
        let sent = requests_of(&outcome.sent, step);
        if let Some(count) = want.count {
            if sent.len() != count {
                failures.push(fail(
                    format!("{here}.count"),
                    format!(
                        "expected {count} request(s) from `{step}`, got {}",
                        sent.len()
                    ),
                ));
            }
        }
        let Some(last) = sent.last() else {
            if want.count != Some(0) {
                failures.push(fail(here, format!("step `{step}` sent no request")));
            }
            continue;
        };
        if let Some(method) = &want.method {
            if !method.eq_ignore_ascii_case(&last.method) {
                failures.push(fail(
                    format!("{here}.method"),
                    format!("expected {method}, got {}", last.method),
                ));
            }
        }
        if let Some(url) = &want.url {
            if last.url != *url && !last.url.ends_with(url.as_str()) {
                failures.push(fail(
                    format!("{here}.url"),
                    format!(
                        "expected a URL equal to or ending with {url}, got {}",
                        last.url
                    ),
                ));
            }
        }
        if let Some(body) = &want.body {
            let mut diffs = Vec::new();
            subset(body, &last.body, "", &mut diffs);
            if !diffs.is_empty() {
                failures.push(fail(
                    format!("{here}.body"),
                    format!("the body `{step}` sent differs:\n  {}", diffs.join("\n  ")),
                ));
            }
        }
        for (name, value) in &want.headers {
            let got = last
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if got != Some(value.as_str()) {
                failures.push(fail(
                    format!("{here}.headers.{name}"),
                    format!(
                        "expected `{name}: {value}`, got {}",
                        got.map(|g| format!("`{g}`"))
                            .unwrap_or_else(|| "no such header".to_owned())
                    ),
                ));
            }
        }
    }
    for (i, step) in expect.not_called.iter().enumerate() {
        let sent = requests_of(&outcome.sent, step);
        if let Some(first) = sent.first() {
            failures.push(fail(
                at(&format!("not_called[{i}]")),
                format!(
                    "step `{step}` was called {} time(s), first {} {}",
                    sent.len(),
                    first.method,
                    first.url
                ),
            ));
        }
    }
    for (i, want) in expect.records.iter().enumerate() {
        let found = outcome.records.iter().any(|r| {
            r.event == want.event
                && want.key.as_ref().is_none_or(|k| *k == r.key)
                && want.value.is_none_or(|v| r.value == Some(v))
        });
        if !found {
            let kept: Vec<String> = outcome
                .records
                .iter()
                .map(|r| {
                    format!(
                        "{} [{}] {}",
                        r.event,
                        r.key,
                        r.value.map(|v| v.to_string()).unwrap_or_default()
                    )
                })
                .collect();
            failures.push(fail(
                at(&format!("records[{i}]")),
                format!(
                    "no `{}` record{}{} was kept; kept: [{}]",
                    want.event,
                    want.key
                        .as_ref()
                        .map(|k| format!(" for `{k}`"))
                        .unwrap_or_default(),
                    want.value.map(|v| format!(" of {v}")).unwrap_or_default(),
                    kept.join(", ")
                ),
            ));
        }
    }
    if let Some(want) = &expect.error {
        match &outcome.error {
            Some(got) if got.contains(want.as_str()) => {}
            Some(got) => failures.push(fail(
                at("error"),
                format!("expected an error containing `{want}`, got `{got}`"),
            )),
            None => failures.push(fail(
                at("error"),
                format!("expected an error containing `{want}`, there was none"),
            )),
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::subset;
    use serde_json::json;

    #[test]
    fn subsets_name_every_difference() {
        let mut diffs = Vec::new();
        subset(
            &json!({ "a": 1, "b": { "c": "x", "d": [1, 2] }, "e": true }),
            &json!({ "a": 1.0, "b": { "c": "y", "d": [1, 3], "z": 0 } }),
            "",
            &mut diffs,
        );
        assert_eq!(
            diffs,
            [
                "b.c: expected \"x\", got \"y\"",
                "b.d[1]: expected 2, got 3",
                "e: expected true, missing"
            ]
        );
    }
}
