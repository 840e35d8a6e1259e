//! OAuth2 access tokens for connections that sign in with `oauth2:`.
//! `client_credentials` tokens are minted at the token endpoint and kept in
//! this process; `authorization_code` and `refresh_token` tokens are kept,
//! sealed, in the store (`stored.rs`, through the engine's [`Vault`]), so
//! that every daemon uses, and refreshes once, the same ones. Either way a
//! token is renewed `refresh_before` its expiry, and once when the API
//! answers one of `refresh_on` (401); concurrent executions wait for the
//! one request in flight (single flight per connection and client), and a
//! valid cached token costs nothing. Tokens never leave the process but to
//! the store, sealed: the request's header is named in `Request::masked`.
//!
//! [`Vault`]: super::vault::Vault

mod authorize;
mod endpoint;
mod stored;

pub use authorize::Authorization;
pub use endpoint::{Client, TokenError};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use handlebars::Context;

use super::http::{text, Request};
use super::{Engine, StepError};
use crate::model::OAuth2Grant;
use crate::plan::{NetworkAllowance, OAuth2Plan};

/// A token this process holds.
#[derive(Clone)]
pub(crate) struct Token {
    access: String,
    /// When it must be renewed (its expiry less `refresh_before`).
    renew_at: Instant,
}

/// The tokens of this process, one slot per connection and client.
#[derive(Default)]
pub(crate) struct Tokens {
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
}

impl Tokens {
    fn slot(&self, key: String) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        let mut slots = self.slots.lock().expect("tokens lock");
        Arc::clone(slots.entry(key).or_default())
    }

    /// Forgets what this process holds for a connection (it was connected
    /// again, or forgotten).
    pub(crate) fn forget(&self, name: &str) {
        let mut slots = self.slots.lock().expect("tokens lock");
        slots.retain(|key, _| key.split('\n').next() != Some(name));
    }
}

/// The token a scenario test's transport uses: no request leaves a test.
pub const TEST_ACCESS_TOKEN: &str = "test-access-token";

/// Renders a template of the connection, or says which one failed.
pub(super) fn render(
    plan: &OAuth2Plan,
    expr: &crate::plan::Expr,
    ctx: &Context,
    what: &str,
) -> Result<String, StepError> {
    expr.eval_ref(ctx).map(|v| text(v.as_ref())).map_err(|e| {
        StepError::fatal(format!(
            "{}: the {what} cannot be computed: {}",
            plan.origin, e.0
        ))
    })
}

impl OAuth2Plan {
    /// The client, rendered over `ctx` (`env`).
    pub fn client(&self, ctx: &Context) -> Result<Client, StepError> {
        Ok(Client {
            token_url: render(self, &self.token_url, ctx, "token URL")?,
            client_id: render(self, &self.client_id, ctx, "client id")?,
            client_secret: self
                .client_secret
                .as_ref()
                .map(|s| render(self, s, ctx, "client secret"))
                .transpose()?,
        })
    }
}

impl Engine {
    /// Puts a valid access token on `request`; `refused` is the token the
    /// API just refused, which is then renewed (once).
    pub(crate) async fn sign_in(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        request: &mut Request,
        refused: Option<&str>,
    ) -> Result<String, StepError> {
        let access = match (self.transport(), plan.grant) {
            (Some(_), _) => TEST_ACCESS_TOKEN.to_owned(),
            (None, OAuth2Grant::ClientCredentials) => {
                self.minted(plan, allowance, ctx, refused).await?
            }
            (None, _) => self.stored_token(plan, allowance, ctx, refused).await?,
        };
        request
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(&plan.header));
        request
            .headers
            .push((plan.header.clone(), format!("{}{access}", plan.prefix)));
        let lower = plan.header.to_ascii_lowercase();
        if !request.masked.contains(&lower) {
            request.masked.push(lower);
        }
        Ok(access)
    }

    /// Signs in as a request of `sign_in` would (refreshing the token if it
    /// is due), sending nothing else: `credentials test`.
    pub async fn sign_in_now(
        &self,
        sign_in: &crate::plan::SignIn,
        ctx: &Context,
    ) -> Result<(), StepError> {
        let (plan, allowance) = (&sign_in.oauth, &sign_in.allowance);
        match plan.grant {
            OAuth2Grant::ClientCredentials => self.minted(plan, allowance, ctx, None).await,
            _ => self.stored_token(plan, allowance, ctx, None).await,
        }
        .map(drop)
    }

    /// A client-credentials token, kept in this process.
    async fn minted(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        refused: Option<&str>,
    ) -> Result<String, StepError> {
        let client = plan.client(ctx)?;
        let key = format!("{}\n{}\n{}", plan.name, client.token_url, client.client_id);
        let slot = self.tokens.slot(key);
        // One request in flight per slot; the others wait and take its token.
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref() {
            let refused_this = refused.is_some_and(|r| r == token.access);
            if !refused_this && Instant::now() < token.renew_at {
                return Ok(token.access.clone());
            }
        }
        let started = Instant::now();
        let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        if !plan.scopes.is_empty() {
            form.push(("scope".to_owned(), plan.scopes.join(" ")));
        }
        if let Some(audience) = &plan.audience {
            form.push(("audience".to_owned(), audience.clone()));
        }
        let granted = self
            .token_request(plan, allowance, &client, form)
            .await
            .map_err(|e| e.into_step(plan))?;
        let lifetime = granted
            .expires_at
            .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
            .unwrap_or(endpoint::DEFAULT_LIFETIME);
        *held = Some(Token {
            access: granted.access.clone(),
            renew_at: started + lifetime.saturating_sub(plan.refresh_before),
        });
        Ok(granted.access)
    }
}
