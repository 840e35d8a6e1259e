//! OAuth2 access tokens for connections that sign in with `oauth2:` (the
//! client-credentials grant): minted at the token endpoint, kept in this
//! process until `refresh_before` their expiry, and minted again once when
//! the API answers 401. Concurrent executions wait for the one request in
//! flight (single flight per connection and client). Tokens never leave the
//! process: the request's `Authorization` is named in `Request::masked`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use handlebars::Context;
use serde_json::Value;

use super::http::{text, Request};
use super::{Engine, StepError};
use crate::model::ClientAuth;
use crate::plan::{NetworkAllowance, OAuth2Plan};

/// A minted access token.
#[derive(Clone)]
pub(crate) struct Token {
    access: String,
    /// When it must be minted again (its expiry less `refresh_before`).
    renew_at: Instant,
}

/// The tokens of this process, one slot per connection and client.
#[derive(Default)]
pub(crate) struct Tokens {
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

/// The token a scenario test's transport uses: no request leaves a test.
pub const TEST_ACCESS_TOKEN: &str = "test-access-token";

/// `expires_in` when the token endpoint gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

impl Engine {
    /// Puts a valid access token on `request`; `refused` is the token a 401
    /// answered, which is then minted again (once).
    pub(crate) async fn sign_in(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        request: &mut Request,
        refused: Option<&str>,
    ) -> Result<String, StepError> {
        let access = match self.transport() {
            Some(_) => TEST_ACCESS_TOKEN.to_owned(),
            None => self.token(plan, allowance, ctx, refused).await?,
        };
        request
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        request
            .headers
            .push(("Authorization".to_owned(), format!("Bearer {access}")));
        if !request.masked.iter().any(|m| m == "authorization") {
            request.masked.push("authorization".to_owned());
        }
        Ok(access)
    }

    async fn token(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        refused: Option<&str>,
    ) -> Result<String, StepError> {
        let eval = |expr: &crate::plan::Expr, what: &str| {
            expr.eval_ref(ctx).map(|v| text(v.as_ref())).map_err(|e| {
                StepError::fatal(format!(
                    "{}: the {what} cannot be computed: {}",
                    plan.origin, e.0
                ))
            })
        };
        let token_url = eval(&plan.token_url, "token URL")?;
        let client_id = eval(&plan.client_id, "client id")?;
        let key = format!("{}\n{token_url}\n{client_id}", plan.origin);
        let slot = {
            let mut slots = self.tokens.slots.lock().expect("tokens lock");
            Arc::clone(slots.entry(key).or_default())
        };
        // One request in flight per slot; the others wait and take its token.
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref() {
            let refused_this = refused.is_some_and(|r| r == token.access);
            if !refused_this && Instant::now() < token.renew_at {
                return Ok(token.access.clone());
            }
        }
        let client_secret = eval(&plan.client_secret, "client secret")?;
        let minted = self
            .mint(plan, allowance, &token_url, &client_id, &client_secret)
            .await?;
        let access = minted.access.clone();
        *held = Some(minted);
        Ok(access)
    }

    async fn mint(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Token, StepError> {
        let url = reqwest::Url::parse(token_url).map_err(|e| {
            StepError::fatal(format!(
                "{}: invalid token URL `{token_url}`: {e}",
                plan.origin
            ))
        })?;
        let mut form: Vec<(String, String)> =
            vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        if !plan.scopes.is_empty() {
            form.push(("scope".to_owned(), plan.scopes.join(" ")));
        }
        if let Some(audience) = &plan.audience {
            form.push(("audience".to_owned(), audience.clone()));
        }
        form.extend(plan.params.iter().cloned());
        let outbound = self.outbound(allowance);
        outbound
            .guard
            .check_literal(&url)
            .map_err(|r| StepError::fatal(r.to_string()))?;
        let mut builder = outbound
            .client
            .post(url)
            .timeout(Duration::from_secs(30))
            .header(reqwest::header::ACCEPT, "application/json");
        match plan.client_auth {
            ClientAuth::ClientSecretBasic => {
                builder = builder.basic_auth(
                    urlencoding::encode(client_id),
                    Some(urlencoding::encode(client_secret)),
                );
            }
            ClientAuth::ClientSecretPost => {
                form.push(("client_id".to_owned(), client_id.to_owned()));
                form.push(("client_secret".to_owned(), client_secret.to_owned()));
            }
        }
        let started = Instant::now();
        let response = builder.form(&form).send().await.map_err(|e| {
            StepError::retryable(format!(
                "{}: the token endpoint did not answer: {}",
                plan.origin,
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let access = body.get("access_token").and_then(Value::as_str);
        match access {
            Some(access) if (200..300).contains(&status) && !access.is_empty() => {
                let lifetime = body
                    .get("expires_in")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_LIFETIME);
                tracing::debug!(connection = %plan.origin, lifetime_s = lifetime.as_secs(), "access token minted");
                Ok(Token {
                    access: access.to_owned(),
                    renew_at: started + lifetime.saturating_sub(plan.refresh_before),
                })
            }
            _ => {
                let said = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
                let reason = [said("error"), said("error_description")]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": ");
                let message = format!(
                    "{}: the token endpoint refused to sign in ({status}{})",
                    plan.origin,
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(", {reason}")
                    }
                );
                Err(if status == 429 || status >= 500 {
                    StepError::retryable(message)
                } else {
                    StepError::fatal(message)
                })
            }
        }
    }
}
