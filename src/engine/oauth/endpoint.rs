//! One request to a token endpoint, whatever the grant: the form, the
//! client's proof (`client_secret_basic` or `client_secret_post`, or none
//! for a public client), the answer read into a [`Granted`] or a refusal in
//! the server's words. The form and the answer hold secrets: nothing here
//! is logged, and errors quote only `error` and `error_description`.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::super::vault::Granted;
use super::super::{Engine, StepError};
use crate::model::ClientAuth;
use crate::plan::{NetworkAllowance, OAuth2Plan};

/// `expires_in` when the token endpoint gives none.
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The client, rendered.
pub struct Client {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Why no token came back.
#[derive(Debug)]
pub enum TokenError {
    /// The endpoint could not be reached, or answered 408, 429 or 5xx: worth trying again.
    Unreachable(String),
    /// The endpoint said no (`invalid_grant`, `invalid_client`, ...).
    Refused { status: u16, reason: String },
}

impl TokenError {
    /// As a step's error, the connection named.
    pub(super) fn into_step(self, plan: &OAuth2Plan) -> StepError {
        match self {
            TokenError::Unreachable(m) => StepError::retryable(format!("{}: {m}", plan.origin)),
            TokenError::Refused { status, reason } => StepError::fatal(format!(
                "{}: the token endpoint refused to sign in ({status}{})",
                plan.origin,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(", {reason}")
                }
            )),
        }
    }
}

impl Engine {
    /// Posts `form` (with `grant_type`) to the token endpoint as `client`.
    pub(crate) async fn token_request(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        client: &Client,
        mut form: Vec<(String, String)>,
    ) -> Result<Granted, TokenError> {
        let url = reqwest::Url::parse(&client.token_url).map_err(|e| TokenError::Refused {
            status: 0,
            reason: format!("invalid token URL `{}`: {e}", client.token_url),
        })?;
        form.extend(plan.params.iter().cloned());
        let outbound = self.outbound(allowance);
        outbound
            .guard
            .check_literal(&url)
            .map_err(|r| TokenError::Refused {
                status: 0,
                reason: r.to_string(),
            })?;
        let mut builder = outbound
            .client
            .post(url)
            .timeout(Duration::from_secs(30))
            .header(reqwest::header::ACCEPT, "application/json");
        match (&client.client_secret, plan.client_auth) {
            (Some(secret), ClientAuth::ClientSecretBasic) => {
                builder = builder.basic_auth(
                    urlencoding::encode(&client.client_id),
                    Some(urlencoding::encode(secret)),
                );
            }
            (Some(secret), ClientAuth::ClientSecretPost) => {
                form.push(("client_id".to_owned(), client.client_id.clone()));
                form.push(("client_secret".to_owned(), secret.clone()));
            }
            // A public client names itself; PKCE proves the rest.
            (None, _) => form.push(("client_id".to_owned(), client.client_id.clone())),
        }
        let started = Utc::now();
        let response = builder.form(&form).send().await.map_err(|e| {
            TokenError::Unreachable(format!(
                "the token endpoint did not answer: {}",
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let said = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
        match said("access_token") {
            access if (200..300).contains(&status) && !access.is_empty() => {
                let lifetime = body
                    .get("expires_in")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_LIFETIME);
                let refresh = Some(said("refresh_token")).filter(|r| !r.is_empty());
                tracing::debug!(connection = %plan.origin, lifetime_s = lifetime.as_secs(), rotated = refresh.is_some(), "access token granted");
                Ok(Granted {
                    access: access.to_owned(),
                    refresh: refresh.map(str::to_owned),
                    expires_at: chrono::Duration::from_std(lifetime)
                        .ok()
                        .map(|d| started + d),
                    scopes: match said("scope") {
                        "" => plan.scopes.join(" "),
                        granted => granted.to_owned(),
                    },
                })
            }
            _ => {
                let reason = [said("error"), said("error_description")]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": ");
                if status == 408 || status == 429 || status >= 500 {
                    Err(TokenError::Unreachable(format!(
                        "the token endpoint answered {status}{}",
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({reason})")
                        }
                    )))
                } else {
                    Err(TokenError::Refused { status, reason })
                }
            }
        }
    }
}
