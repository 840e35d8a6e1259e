//! Where the tokens of connections that a person connected (or that start
//! from a refresh token) are kept: the engine's seam to the store's sealed
//! credentials (`crate::credentials::StoreVault`). The engine asks for the
//! current tokens, takes the right to refresh them (one process at a time,
//! across daemons), and hands back what the token endpoint gave, which is
//! written before it is used; it never sees a key, a cipher or SQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A connection's tokens, opened.
#[derive(Clone, Debug)]
pub struct Held {
    /// None before the first refresh of a `refresh_token` grant.
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub generation: i64,
    /// Why it cannot be used until someone connects it again.
    pub needs_reconnect: Option<String>,
    /// Another process is refreshing it now.
    pub refreshing: bool,
}

/// What the token endpoint gave.
#[derive(Clone, Debug)]
pub struct Granted {
    pub access: String,
    /// The refresh token to use next (the rotated one, or the one used).
    pub refresh: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted, space-separated.
    pub scopes: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct VaultError(pub String);

#[async_trait]
pub trait Vault: Send + Sync {
    /// The connection's tokens (None: never connected, nothing seeded).
    async fn read(&self, connection: &str) -> Result<Option<Held>, VaultError>;

    /// Takes the right to refresh, if the row is still at `generation`
    /// (None: no row yet) and nobody else holds it.
    async fn claim(
        &self,
        connection: &str,
        grant: &str,
        generation: Option<i64>,
    ) -> Result<bool, VaultError>;

    /// Keeps refreshed tokens (a rotated refresh token with them) if the
    /// row is still at `generation`. Whether they were kept: only then may
    /// they be used.
    async fn refreshed(
        &self,
        connection: &str,
        grant: &str,
        generation: i64,
        granted: &Granted,
    ) -> Result<bool, VaultError>;

    /// The token endpoint refused to refresh: the connection needs to be
    /// connected again, for `reason`.
    async fn refused(
        &self,
        connection: &str,
        generation: i64,
        reason: &str,
    ) -> Result<(), VaultError>;

    /// Lets go the right to refresh (the refresh could not be made now).
    async fn release(&self, connection: &str) -> Result<(), VaultError>;
}
