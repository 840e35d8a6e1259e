//! The store's credentials: the tokens of connections a person connected
//! (or that start from a refresh token), sealed under a key the store never
//! holds (`key.rs`). [`StoreVault`] is the engine's [`Vault`] over a store;
//! [`check`] refuses a store whose credentials the key given cannot open
//! (or that has credentials and no key at all), before anything is written;
//! [`connected`] keeps a new sign-in and wakes the executions that waited
//! for it; [`rekey`] moves every credential to a new key at once.

mod key;

pub use key::{KeyError, SecretKey};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::{reconnect_prefix, Granted, Held, Vault, VaultError};
use crate::store::{CredentialRow, CredentialStatus, CredentialWrite, Resealed, Store, StoreError};

/// How long a refresh may hold a connection before another process may take it.
const REFRESH_LEASE: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("this store holds the sealed credentials of {names}, and no key was given: set SCENARIST_SECRET_KEY (or --secret-key-file) to the key they were sealed with")]
    NoKey { names: String },
    #[error("the credentials of {names} were sealed with key {stored}, and the key given is {given}: give the key they were sealed with (`scenarist credentials rekey` moves them to a new one); nothing was changed")]
    WrongKey {
        names: String,
        stored: String,
        given: String,
    },
}

/// What is sealed: the tokens, and nothing that can be shown.
#[derive(Serialize, Deserialize, Default)]
struct Tokens {
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    refresh: Option<String>,
}

/// Refuses a store whose credentials `key` cannot open. Nothing is written.
pub async fn check(store: &dyn Store, key: Option<&SecretKey>) -> Result<(), CredentialError> {
    let rows = store.credentials().await?;
    let names = |rows: &[&CredentialRow]| {
        rows.iter()
            .map(|r| format!("`{}`", r.connection))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match key {
        None if !rows.is_empty() => Err(CredentialError::NoKey {
            names: names(&rows.iter().collect::<Vec<_>>()),
        }),
        None => Ok(()),
        Some(key) => {
            let foreign: Vec<&CredentialRow> =
                rows.iter().filter(|r| r.key_id != key.id()).collect();
            match foreign.first() {
                None => Ok(()),
                Some(first) => Err(CredentialError::WrongKey {
                    names: names(&foreign),
                    stored: first.key_id.clone(),
                    given: key.id().to_owned(),
                }),
            }
        }
    }
}

fn open(key: &SecretKey, row: &CredentialRow) -> Result<Tokens, CredentialError> {
    if row.key_id != key.id() {
        return Err(CredentialError::WrongKey {
            names: format!("`{}`", row.connection),
            stored: row.key_id.clone(),
            given: key.id().to_owned(),
        });
    }
    if row.sealed.is_empty() {
        return Ok(Tokens::default());
    }
    let plain = key.open(&row.connection, &row.sealed)?;
    serde_json::from_slice(&plain).map_err(|_| KeyError::Open(row.connection.clone()).into())
}

fn seal(key: &SecretKey, connection: &str, tokens: &Tokens) -> Vec<u8> {
    key.seal(
        connection,
        &serde_json::to_vec(tokens).expect("tokens serialize"),
    )
}

/// Keeps the tokens of a new sign-in (replacing whatever was there), then
/// makes every execution that stopped for want of it due now. How many.
pub async fn connected(
    store: &dyn Store,
    key: &SecretKey,
    connection: &str,
    grant: &str,
    granted: &Granted,
) -> Result<u64, CredentialError> {
    let tokens = Tokens {
        access: Some(granted.access.clone()),
        refresh: granted.refresh.clone(),
    };
    let now = Utc::now();
    store
        .put_credential(
            CredentialWrite {
                connection: connection.to_owned(),
                grant: grant.to_owned(),
                status: CredentialStatus::Connected,
                sealed: seal(key, connection, &tokens),
                key_id: key.id().to_owned(),
                scopes: granted.scopes.clone(),
                expires_at: granted.expires_at,
                at: now,
                connect: true,
                reason: None,
            },
            None,
        )
        .await?;
    Ok(store
        .retry_incomplete(&reconnect_prefix(connection), now)
        .await?)
}

/// Re-seals every credential under `to`, all or nothing. How many.
pub async fn rekey(
    store: &dyn Store,
    from: &SecretKey,
    to: &SecretKey,
) -> Result<u64, CredentialError> {
    check(store, Some(from)).await?;
    let mut resealed = Vec::new();
    for row in store.credentials().await? {
        let sealed = if row.sealed.is_empty() {
            Vec::new()
        } else {
            seal(to, &row.connection, &open(from, &row)?)
        };
        resealed.push(Resealed {
            connection: row.connection,
            sealed,
        });
    }
    Ok(store
        .rekey_credentials(from.id(), to.id(), resealed)
        .await?)
}

/// The engine's [`Vault`] over a store.
pub struct StoreVault {
    store: Arc<dyn Store>,
    key: SecretKey,
    owner: String,
}

impl StoreVault {
    pub fn new(store: Arc<dyn Store>, key: SecretKey) -> StoreVault {
        StoreVault {
            store,
            key,
            owner: format!(
                "{}/{}",
                crate::runner::owner::this_process(),
                uuid::Uuid::new_v4()
            ),
        }
    }
}

fn vault_error(e: impl std::fmt::Display) -> VaultError {
    VaultError(e.to_string())
}

fn live(until: Option<DateTime<Utc>>) -> bool {
    until.is_some_and(|u| u > Utc::now())
}

#[async_trait]
impl Vault for StoreVault {
    async fn read(&self, connection: &str) -> Result<Option<Held>, VaultError> {
        let Some(row) = self
            .store
            .credential(connection)
            .await
            .map_err(vault_error)?
        else {
            return Ok(None);
        };
        let tokens = open(&self.key, &row).map_err(vault_error)?;
        Ok(Some(Held {
            access: tokens.access,
            refresh: tokens.refresh,
            expires_at: row.expires_at,
            generation: row.generation,
            needs_reconnect: (row.status == CredentialStatus::NeedsReconnect).then(|| {
                row.reason
                    .clone()
                    .unwrap_or_else(|| "its refresh was refused".to_owned())
            }),
            refreshing: live(row.lease_until),
        }))
    }

    async fn claim(
        &self,
        connection: &str,
        grant: &str,
        generation: Option<i64>,
    ) -> Result<bool, VaultError> {
        let now = Utc::now();
        self.store
            .claim_credential(
                connection,
                grant,
                self.key.id(),
                generation,
                &self.owner,
                now,
                now + REFRESH_LEASE,
            )
            .await
            .map_err(vault_error)
    }

    async fn refreshed(
        &self,
        connection: &str,
        grant: &str,
        generation: i64,
        granted: &Granted,
    ) -> Result<bool, VaultError> {
        let tokens = Tokens {
            access: Some(granted.access.clone()),
            refresh: granted.refresh.clone(),
        };
        self.store
            .put_credential(
                CredentialWrite {
                    connection: connection.to_owned(),
                    grant: grant.to_owned(),
                    status: CredentialStatus::Connected,
                    sealed: seal(&self.key, connection, &tokens),
                    key_id: self.key.id().to_owned(),
                    scopes: granted.scopes.clone(),
                    expires_at: granted.expires_at,
                    at: Utc::now(),
                    connect: false,
                    reason: None,
                },
                Some(generation),
            )
            .await
            .map_err(vault_error)
    }

    async fn refused(
        &self,
        connection: &str,
        generation: i64,
        reason: &str,
    ) -> Result<(), VaultError> {
        let row = self
            .store
            .credential(connection)
            .await
            .map_err(vault_error)?;
        let Some(row) = row else { return Ok(()) };
        // The tokens are dead: nothing of them is kept.
        self.store
            .put_credential(
                CredentialWrite {
                    connection: connection.to_owned(),
                    grant: row.grant,
                    status: CredentialStatus::NeedsReconnect,
                    sealed: Vec::new(),
                    key_id: self.key.id().to_owned(),
                    scopes: row.scopes,
                    expires_at: None,
                    at: Utc::now(),
                    connect: false,
                    reason: Some(reason.to_owned()),
                },
                Some(generation),
            )
            .await
            .map_err(vault_error)?;
        Ok(())
    }

    async fn release(&self, connection: &str) -> Result<(), VaultError> {
        self.store
            .release_credential(connection, &self.owner)
            .await
            .map_err(vault_error)
    }
}
