//! Tokens kept in the store (`authorization_code`, `refresh_token`): read
//! once into this process, refreshed by one process at a time across every
//! daemon (the store's lease; the others wait for the new row and use it),
//! the answer written before it is used, so that a rotated refresh token is
//! never lost. A refusal marks the connection `needs_reconnect`, and every
//! execution that needs it stops `incomplete` until it is connected again.

use std::time::{Duration, Instant};

use chrono::Utc;
use handlebars::Context;

use super::endpoint::TokenError;
use super::{render, Token};
use crate::engine::vault::{Held, Vault};
use crate::engine::{Engine, StepError};
use crate::model::OAuth2Grant;
use crate::plan::{NetworkAllowance, OAuth2Plan};

/// How long an execution waits for another process's refresh.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(30);

/// How often the row is read again while another process refreshes.
const RECHECK: Duration = Duration::from_millis(25);

impl Engine {
    pub(super) async fn stored_token(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        refused: Option<&str>,
    ) -> Result<String, StepError> {
        let Some(vault) = self.vault.as_deref() else {
            return Err(StepError::fatal(format!(
                "{}: its tokens are kept sealed in the store's credentials, which needs a key: set SCENARIST_SECRET_KEY (or --secret-key-file)",
                plan.origin
            )));
        };
        let slot = self.tokens.slot(format!("{}\nstored", plan.name));
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref() {
            if refused != Some(token.access.as_str()) && Instant::now() < token.renew_at {
                return Ok(token.access.clone());
            }
        }
        let vault_error = |e: crate::engine::VaultError| {
            StepError::retryable(format!("{}: the credential store: {e}", plan.origin))
        };
        let give_up = Instant::now() + WAIT_FOR_REFRESH;
        loop {
            let row = vault.read(&plan.name).await.map_err(vault_error)?;
            if let Some(reason) = row.as_ref().and_then(|r| r.needs_reconnect.as_deref()) {
                held.take();
                return Err(StepError::needs_reconnect(&plan.name, reason));
            }
            if row.is_none() && plan.grant == OAuth2Grant::AuthorizationCode {
                held.take();
                return Err(StepError::needs_reconnect(
                    &plan.name,
                    &format!("it was never connected: run `scenarist connect {}`, or Connect it in the dashboard", plan.name),
                ));
            }
            if let Some(token) = row.as_ref().and_then(|r| usable(r, plan, refused)) {
                let access = token.access.clone();
                *held = Some(token);
                return Ok(access);
            }
            if row.as_ref().is_some_and(|r| r.refreshing) {
                if Instant::now() > give_up {
                    return Err(StepError::retryable(format!(
                        "{}: another process has been refreshing its token for {}s",
                        plan.origin,
                        WAIT_FOR_REFRESH.as_secs()
                    )));
                }
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            let generation = row.as_ref().map(|r| r.generation);
            let grant = plan.grant.as_str();
            if !vault
                .claim(&plan.name, grant, generation)
                .await
                .map_err(vault_error)?
            {
                // Someone else took it (or the row moved): read it again.
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            let generation = generation.unwrap_or(1);
            let token = self
                .refresh(vault, plan, allowance, ctx, row.as_ref(), generation)
                .await
                .inspect_err(|e| {
                    if e.reconnect.is_some() {
                        held.take();
                    }
                })?;
            if let Some(token) = token {
                let access = token.access.clone();
                *held = Some(token);
                return Ok(access);
            }
        }
    }

    /// One refresh under the lease: `Some` when its tokens were kept, `None`
    /// when the row moved meanwhile (read it again).
    async fn refresh(
        &self,
        vault: &dyn Vault,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        row: Option<&Held>,
        generation: i64,
    ) -> Result<Option<Token>, StepError> {
        let vault_error = |e: crate::engine::VaultError| {
            StepError::retryable(format!("{}: the credential store: {e}", plan.origin))
        };
        let refresh_token = match row.and_then(|r| r.refresh.clone()) {
            Some(token) => token,
            None => match &plan.refresh_token {
                Some(seed) => render(plan, seed, ctx, "refresh token")?,
                None => {
                    let reason =
                        "the provider gave no refresh token, so the access token cannot be renewed";
                    vault
                        .refused(&plan.name, generation, reason)
                        .await
                        .map_err(vault_error)?;
                    return Err(StepError::needs_reconnect(&plan.name, reason));
                }
            },
        };
        let client = match plan.client(ctx) {
            Ok(client) => client,
            Err(e) => {
                let _ = vault.release(&plan.name).await;
                return Err(e);
            }
        };
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token.clone()),
        ];
        if !plan.scopes.is_empty() && plan.grant == OAuth2Grant::RefreshToken {
            form.push(("scope".to_owned(), plan.scopes.join(" ")));
        }
        let started = Instant::now();
        match self.token_request(plan, allowance, &client, form).await {
            Ok(mut granted) => {
                // A provider that does not rotate keeps the one it took.
                granted.refresh.get_or_insert(refresh_token);
                let kept = vault
                    .refreshed(&plan.name, plan.grant.as_str(), generation, &granted)
                    .await
                    .map_err(vault_error)?;
                if !kept {
                    return Ok(None);
                }
                tracing::info!(connection = %plan.name, "access token refreshed");
                let lifetime = granted
                    .expires_at
                    .and_then(|at| (at - Utc::now()).to_std().ok())
                    .unwrap_or_default();
                Ok(Some(Token {
                    access: granted.access,
                    renew_at: started + lifetime.saturating_sub(plan.refresh_before),
                }))
            }
            Err(TokenError::Refused { status, reason }) => {
                let reason = format!(
                    "the token endpoint refused the refresh ({status}{})",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(", {reason}")
                    }
                );
                tracing::warn!(connection = %plan.name, %reason, "connection needs to be reconnected");
                vault
                    .refused(&plan.name, generation, &reason)
                    .await
                    .map_err(vault_error)?;
                Err(StepError::needs_reconnect(&plan.name, &reason))
            }
            Err(e @ TokenError::Unreachable(_)) => {
                let _ = vault.release(&plan.name).await;
                Err(e.into_step(plan))
            }
        }
    }
}

/// The row's access token, if it is not about to expire and is not the one
/// the API just refused.
fn usable(row: &Held, plan: &OAuth2Plan, refused: Option<&str>) -> Option<Token> {
    let access = row.access.as_deref()?;
    if refused == Some(access) {
        return None;
    }
    let left = match row.expires_at {
        Some(at) => (at - Utc::now()).to_std().ok()?,
        None => super::endpoint::DEFAULT_LIFETIME,
    };
    let fresh_for = left.checked_sub(plan.refresh_before)?;
    Some(Token {
        access: access.to_owned(),
        renew_at: Instant::now() + fresh_for,
    })
}
