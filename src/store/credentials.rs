//! The rows of connections that keep tokens (`credentials`): the tokens
//! sealed (the store only ever sees ciphertext; `crate::credentials` seals
//! and opens), what can be shown without them (status, scopes, expiry), and
//! the refresh lease that lets one process refresh while the others wait.
//! Every write is a compare-and-set on the row's generation. The SQL is in
//! each backend's `credentials.rs`.

use chrono::{DateTime, Utc};

/// Whether a connection's tokens can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    Connected,
    /// A refresh was refused (`invalid_grant`, a revoked client): someone
    /// must connect it again.
    NeedsReconnect,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Connected => "connected",
            CredentialStatus::NeedsReconnect => "needs_reconnect",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<CredentialStatus, super::StoreError> {
        match text {
            "connected" => Ok(CredentialStatus::Connected),
            "needs_reconnect" => Ok(CredentialStatus::NeedsReconnect),
            other => Err(super::StoreError::Corrupt(format!(
                "credential status `{other}`"
            ))),
        }
    }
}

/// One connection's row.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    /// The connection's name (`crm`; an app's name for an app's connection).
    pub connection: String,
    /// The grant that got the tokens (`authorization_code`, `refresh_token`).
    pub grant: String,
    pub status: CredentialStatus,
    /// The tokens, sealed under the key `key_id` names (empty: a first
    /// refresh is under way and no token is there yet).
    pub sealed: Vec<u8>,
    pub key_id: String,
    /// The scopes granted, space-separated.
    pub scopes: String,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub refreshes: u64,
    /// Why it needs reconnecting: the token endpoint's words.
    pub reason: Option<String>,
    /// Moves at every write.
    pub generation: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

/// What a connect, a refresh or a refusal writes.
#[derive(Debug, Clone)]
pub struct CredentialWrite {
    pub connection: String,
    pub grant: String,
    pub status: CredentialStatus,
    pub sealed: Vec<u8>,
    pub key_id: String,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// A connect (sets `connected_at`, counts no refresh), or a refresh.
    pub connect: bool,
    pub reason: Option<String>,
}

/// A row re-sealed by a rekey.
#[derive(Debug, Clone)]
pub struct Resealed {
    pub connection: String,
    pub sealed: Vec<u8>,
}
