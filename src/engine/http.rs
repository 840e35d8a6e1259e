//! The http step: build the request once from the plan, send it with retries.
//!
//! The request is evaluated once per step, so every retry sends exactly the
//! same method, URL, headers and body.

use std::time::Duration;

use handlebars::Context;
use serde_json::{json, Map, Value};

use super::redact::Redactor;
use super::redact::MASK;
use super::StepError;
use crate::model::HttpMethod;
use crate::plan::{EvalError, HttpBody, HttpPlan};

/// Responses larger than this are refused rather than held in memory.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A fully evaluated request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: HttpMethod,
    pub url: reqwest::Url,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// The address relative to the connection's base URL (or to the env
    /// value that begins `url`): `/qualification?x=1`, kept with the step's
    /// input so that a recorded case expects it under any base.
    pub relative: Option<String>,
    /// Headers and query parameters (lowercase) whose values are credentials
    /// (`auth:`): shown as `***` wherever the request is described.
    pub masked: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Text(String),
}

impl Request {
    pub fn build(plan: &HttpPlan, ctx: &Context) -> Result<Request, EvalError> {
        let target = text(plan.target.eval_ref(ctx)?.as_ref());
        let (url_text, base) = match &plan.base_url {
            Some(base) => {
                let base = text(base.eval_ref(ctx)?.as_ref());
                if target.starts_with("http://") || target.starts_with("https://") {
                    (target, None)
                } else if target.is_empty() {
                    // The base URL is the whole address (an incoming webhook).
                    (base, None)
                } else {
                    let joined = format!(
                        "{}/{}",
                        base.trim_end_matches('/'),
                        target.trim_start_matches('/')
                    );
                    (joined, Some(base))
                }
            }
            None => {
                let base = plan
                    .base_env
                    .as_ref()
                    .and_then(|name| ctx.data()["env"][name.as_str()].as_str())
                    .filter(|value| !value.is_empty() && target.starts_with(value))
                    .map(str::to_owned);
                (target, base)
            }
        };
        let mut url = reqwest::Url::parse(&url_text)
            .map_err(|e| EvalError(format!("invalid URL `{url_text}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EvalError(format!(
                "invalid URL `{url_text}`: only http and https are supported"
            )));
        }
        if !plan.query.is_empty() {
            let mut pairs = Vec::new();
            for (key, expr) in &plan.query {
                flatten(key, expr.eval_ref(ctx)?.as_ref(), &mut pairs);
            }
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
        }
        let mut headers = Vec::with_capacity(plan.headers.len());
        for (name, expr) in &plan.headers {
            let value = expr.eval_ref(ctx)?;
            if !value.is_null() {
                headers.push((name.clone(), text(&value)));
            }
        }
        let mut masked = Vec::new();
        if let Some(auth) = &plan.auth {
            super::auth::apply(auth, ctx, &mut url, &mut headers, &mut masked)?;
        }
        let body = match &plan.body {
            HttpBody::None => Body::None,
            HttpBody::Json(expr) => Body::Json(expr.eval(ctx)?),
            HttpBody::Text(expr) => Body::Text(text(expr.eval_ref(ctx)?.as_ref())),
            HttpBody::Form(fields) => {
                let mut pairs = Vec::new();
                for (key, expr) in fields {
                    flatten(key, expr.eval_ref(ctx)?.as_ref(), &mut pairs);
                }
                Body::Form(pairs)
            }
        };
        let relative = base.and_then(|base| relative_to(&base, &url));
        Ok(Request {
            method: plan.method,
            url,
            headers,
            body,
            relative,
            masked,
        })
    }

    /// `POST https://host/path`, masked.
    pub fn summary(&self, redactor: &Redactor) -> String {
        redactor.string(format!("{} {}", self.method.as_str(), self.shown_url()))
    }

    /// The URL with credential query parameters as `***`.
    pub fn shown_url(&self) -> String {
        if self.masked.is_empty() || self.url.query().is_none() {
            return self.url.to_string();
        }
        let mut url = self.url.clone();
        let pairs: Vec<(String, String)> = self
            .url
            .query_pairs()
            .map(|(k, v)| {
                let hidden = self.masked.contains(&k.to_ascii_lowercase());
                (
                    k.into_owned(),
                    if hidden {
                        MASK.to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }

    /// `text` with the raw URL replaced by [`Request::shown_url`].
    fn hide(&self, text: String) -> String {
        if self.masked.is_empty() {
            return text;
        }
        text.replace(self.url.as_str(), &self.shown_url())
    }

    /// The body as JSON: a JSON body itself, text as a string, a form as an
    /// object of strings.
    pub fn body_value(&self) -> Value {
        match &self.body {
            Body::None => Value::Null,
            Body::Json(v) => v.clone(),
            Body::Text(t) => Value::String(t.clone()),
            Body::Form(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }

    /// What a dry run shows instead of sending: the exact request, masked.
    pub fn describe(&self, redactor: &Redactor) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let hidden = self.masked.contains(&k.to_ascii_lowercase());
                let shown = if hidden { MASK.to_owned() } else { v.clone() };
                (k.clone(), Value::String(shown))
            })
            .collect();
        let body = self.body_value();
        let mut described = json!({
            "method": self.method.as_str(),
            "url": self.shown_url(),
            "headers": headers,
            "body": body,
        });
        redactor.value(&mut described);
        described
    }

    /// Sends once. Statuses outside `expect` are errors (retryable for 429 and 5xx).
    /// The outbound guard checks the target first (refusals are never retried).
    pub(crate) async fn send(
        &self,
        outbound: &super::Outbound,
        timeout: Duration,
        expect: Option<&[u16]>,
    ) -> Result<Response, StepError> {
        outbound
            .guard
            .check_literal(&self.url)
            .map_err(|r| StepError::fatal(r.to_string()))?;
        if outbound.behind_proxy {
            outbound.guard.check_target(&self.url).await?;
        }
        let method =
            reqwest::Method::from_bytes(self.method.as_str().as_bytes()).expect("known method");
        let mut builder = outbound
            .client
            .request(method, self.url.clone())
            .timeout(timeout);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match &self.body {
            Body::None => builder,
            Body::Json(v) => builder.json(v),
            Body::Text(t) => builder.body(t.clone()),
            Body::Form(pairs) => builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(serde_urlencoded_pairs(pairs)),
        };
        let mut response = builder
            .send()
            .await
            .map_err(|e| transport_error(&e, timeout))
            .map_err(|mut e| {
                e.message = self.hide(e.message);
                e
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value));
                }
            }
        }
        let is_json = headers
            .get("content-type")
            .and_then(Value::as_str)
            .is_some_and(|ct| ct.contains("json"));
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
        {
            return Err(StepError::fatal(format!(
                "the response is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&e, timeout))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(StepError::fatal(format!(
                    "the response is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        };
        self.judge(status, headers, body, retry_after, expect)
    }

    /// A response as the step sees it: statuses outside `expect` (default
    /// 2xx) are errors, retryable for 429 and 5xx. Shared by the network and
    /// by transports that answer without one (`scenarist test`'s mocks).
    pub fn judge(
        &self,
        status: u16,
        headers: Map<String, Value>,
        body: Value,
        retry_after: Option<Duration>,
        expect: Option<&[u16]>,
    ) -> Result<Response, StepError> {
        let ok = match expect {
            Some(list) => list.contains(&status),
            None => (200..300).contains(&status),
        };
        if !ok {
            let retryable = status == 429 || status >= 500;
            let message = format!(
                "{} {} answered {status}",
                self.method.as_str(),
                self.shown_url()
            );
            // Quoted whole: the engine masks it before cutting it (`StepError::masked`).
            let body = match body {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                other => Some(other),
            };
            return Err(StepError {
                message,
                retryable,
                retry_after,
                status: Some(status),
                body,
                reconnect: None,
            });
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: Value,
}

impl Response {
    /// `{ status, headers, body }`, built by moving (`json!` would re-serialize the body).
    pub fn into_output(self) -> Value {
        let mut output = Map::with_capacity(3);
        output.insert("status".to_owned(), Value::from(self.status));
        output.insert("headers".to_owned(), Value::Object(self.headers));
        output.insert("body".to_owned(), self.body);
        Value::Object(output)
    }
}

fn transport_error(error: &reqwest::Error, timeout: Duration) -> StepError {
    if let Some(refusal) = super::guard::refusal_in(error) {
        return StepError::fatal(refusal);
    }
    if error.is_timeout() {
        return StepError::retryable(format!(
            "no answer within {}",
            crate::model::Duration(timeout)
        ));
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    StepError::retryable(message)
}

/// Seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = when
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    Some(wait)
}

/// `url` relative to `base` (same origin, under its path): the path after
/// the base's and the query, both as the URL encodes them.
fn relative_to(base: &str, url: &reqwest::Url) -> Option<String> {
    let base = reqwest::Url::parse(base).ok()?;
    if base.origin() != url.origin() {
        return None;
    }
    let rest = url.path().strip_prefix(base.path().trim_end_matches('/'))?;
    if !rest.starts_with('/') || rest == "/" && url.query().is_none() {
        return None;
    }
    Some(match url.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    })
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A query or form value as pairs: scalars as text, a list of scalars as
/// the key repeated, and objects (and lists that hold objects or lists) in
/// bracket notation, `metadata[code]=R1`, `items[0][price]=p`, as Stripe and
/// most servers that read forms expect; nulls are left out. (To send JSON
/// text in a field, render it: `"{{ json steps.x }}"`.)
fn flatten(key: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Array(items) if !items.iter().any(|v| v.is_array() || v.is_object()) => {
            items.iter().for_each(|v| flatten(key, v, pairs))
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{key}[{i}]"), v, pairs);
            }
        }
        Value::Object(fields) => {
            for (name, v) in fields {
                flatten(&format!("{key}[{name}]"), v, pairs);
            }
        }
        other => pairs.push((key.to_owned(), text(other))),
    }
}

fn serde_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn query_values_flatten() {
        let mut pairs = Vec::new();
        flatten("tag", &serde_json::json!(["a", 1, null]), &mut pairs);
        flatten("n", &serde_json::json!(null), &mut pairs);
        assert_eq!(
            pairs,
            vec![("tag".into(), "a".into()), ("tag".into(), "1".into())]
        );
    }

    #[test]
    fn objects_and_lists_of_objects_go_in_brackets() {
        let mut pairs = Vec::new();
        let value = serde_json::json!({ "code": "R1", "tier": { "level": 2, "gone": null } });
        flatten("metadata", &value, &mut pairs);
        let items = serde_json::json!([{ "price": "p1", "quantity": 2 }, ["x"]]);
        flatten("items", &items, &mut pairs);
        let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            pairs,
            [
                "metadata[code]=R1",
                "metadata[tier][level]=2",
                "items[0][price]=p1",
                "items[0][quantity]=2",
                "items[1]=x"
            ]
        );
    }
}
