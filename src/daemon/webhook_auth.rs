//! A webhook's `auth:`: its secrets rendered (templates over `env`) and the
//! request checked by `signature/`, with the URL the sender called for the
//! schemes that sign it.

use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::Value;

use super::signature::{self, Check, Target};
use super::{trigger_context, Served};
use crate::model::SignatureScheme;
use crate::plan::WebhookAuthPlan;

/// The request line as this daemon received it.
#[derive(Clone, Copy)]
pub(super) struct Called<'a> {
    pub method: &'a str,
    /// The path and query as they came, still percent-encoded.
    pub target: &'a str,
}

impl Called<'_> {
    /// The URL the sender called: HTTPS unless a proxy's `X-Forwarded-Proto`
    /// says otherwise (HubSpot calls only HTTPS URLs, so a TLS proxy stands
    /// in front of the daemon), on the host of `X-Forwarded-Host` or `Host`.
    pub fn url(&self, headers: &HeaderMap) -> String {
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let scheme = first("x-forwarded-proto").unwrap_or("https");
        let host = first("x-forwarded-host")
            .or_else(|| first("host"))
            .unwrap_or("");
        format!("{scheme}://{host}{}", self.target)
    }
}

/// Renders the auth's secrets (templates over `env`) and checks the request.
pub(super) fn authenticate(
    auth: &WebhookAuthPlan,
    served: &Served,
    env: &std::collections::HashMap<String, String>,
    request: Called<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let ctx = trigger_context(served, env, Value::Null);
    let url = match auth {
        WebhookAuthPlan::Signed { scheme, .. } if *scheme == SignatureScheme::Hubspot => {
            request.url(headers)
        }
        _ => String::new(),
    };
    let render = |exprs: &[&crate::plan::Expr]| -> Result<Vec<String>, String> {
        exprs
            .iter()
            .map(|expr| match expr.eval_ref(&ctx) {
                Ok(v) => Ok(match v.as_ref() {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                Err(e) => Err(format!("the webhook secret is not available: {e}")),
            })
            .collect()
    };
    let (check, secrets) = match auth {
        WebhookAuthPlan::HmacSha256 {
            header,
            secrets,
            prefix,
        } => (
            Check::Hmac { header, prefix },
            render(&secrets.iter().collect::<Vec<_>>())?,
        ),
        WebhookAuthPlan::Token { header, secret } => (Check::Token { header }, render(&[secret])?),
        WebhookAuthPlan::Signed {
            scheme,
            secrets,
            tolerance,
        } => (
            Check::Signed {
                scheme: *scheme,
                tolerance: tolerance.as_secs(),
                target: Target {
                    method: request.method,
                    url: &url,
                },
            },
            render(&secrets.iter().collect::<Vec<_>>())?,
        ),
    };
    signature::verify(check, &secrets, headers, body, Utc::now().timestamp())
        .map_err(|e| e.to_string())
}
