//! Entry points for the fuzz targets in `fuzz/`: the daemon's parsing of
//! untrusted request parts, which is private to the daemon otherwise.
//!
//! Thin wrappers only, so a fuzz target runs exactly the code `serve` runs.
//! Not a stable API: nothing in scenarist itself calls it.

use serde_json::Value;

pub use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::daemon::webhook;
use crate::plan::WebhookAuthPlan;

/// `trigger.query` of a webhook request with this raw query string.
pub fn webhook_query(query: Option<&str>) -> Value {
    webhook::query_map(query)
}

/// `trigger.headers` of a webhook request: the headers without the credentials.
pub fn webhook_headers(headers: &HeaderMap, auth: Option<&WebhookAuthPlan>) -> Value {
    webhook::kept_headers(headers, auth)
}

/// `trigger.body` of a webhook request, or why it is answered 400.
pub fn webhook_body(body: &[u8]) -> Result<Value, String> {
    webhook::parse_body(body).map_err(|e| e.to_string())
}
