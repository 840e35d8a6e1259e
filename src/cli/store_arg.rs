//! The `--store` option shared by every command that reads or writes
//! history, with the key the store's credentials are sealed with.

use std::sync::Arc;

use clap::Args;
use scenarist::credentials::{SecretKey, StoreVault};
use scenarist::runner::Runner;
use scenarist::store::{self, Store, DEFAULT_STORE_URL};

#[derive(Args, Clone)]
pub struct StoreArg {
    /// Where executions are kept: sqlite://PATH, or memory for a throwaway run.
    // `hide_env_values`: the value of SCENARIST_STORE may hold a password.
    #[arg(long = "store", env = "SCENARIST_STORE", hide_env_values = true, default_value = DEFAULT_STORE_URL, value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    pub key: KeyArg,
}

/// The key of the store's credentials: `SCENARIST_SECRET_KEY` (base64 of 32
/// bytes), or a file holding it. Never a command-line value (shell history).
#[derive(Args, Clone)]
pub struct KeyArg {
    /// A file holding the key the store's credentials are sealed with
    /// (instead of SCENARIST_SECRET_KEY).
    #[arg(
        long = "secret-key-file",
        env = "SCENARIST_SECRET_KEY_FILE",
        value_name = "FILE"
    )]
    pub key_file: Option<std::path::PathBuf>,
}

impl KeyArg {
    /// The key given, if any.
    pub fn key(&self) -> anyhow::Result<Option<SecretKey>> {
        let from_env = std::env::var("SCENARIST_SECRET_KEY")
            .ok()
            .filter(|v| !v.trim().is_empty());
        match (&self.key_file, from_env) {
            (Some(_), Some(_)) => anyhow::bail!(
                "the key is given twice (SCENARIST_SECRET_KEY and --secret-key-file): give one"
            ),
            (Some(path), None) => Ok(Some(SecretKey::from_file(path)?)),
            (None, Some(text)) => Ok(Some(SecretKey::parse(&text, "SCENARIST_SECRET_KEY")?)),
            (None, None) => Ok(None),
        }
    }

    /// The key, which this command cannot do without.
    pub fn required(&self, what: &str) -> anyhow::Result<SecretKey> {
        self.key()?.ok_or_else(|| {
            anyhow::anyhow!(
                "{what} needs the key the store's credentials are sealed with: set SCENARIST_SECRET_KEY or --secret-key-file (make a key with `scenarist credentials keygen`)"
            )
        })
    }
}

impl StoreArg {
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(store::open(&self.url)?)
    }

    /// A runner on this store, reading declared env values from the process
    /// environment; with the key given, connected OAuth2 tokens are read
    /// from (and refreshed into) the store's credentials.
    pub fn runner(&self) -> anyhow::Result<Runner> {
        let store = self.open()?;
        let mut engine =
            scenarist::engine::Engine::new().with_network(scenarist::engine::NetworkPolicy {
                proxies: proxies(),
                ..Default::default()
            });
        if let Some(key) = self.key.key()? {
            engine = engine.with_vault(Arc::new(StoreVault::new(store.clone(), key)));
        }
        Ok(Runner::new(engine, store, std::env::vars().collect()))
    }
}

/// The operator's forward proxies, read from the environment once, here.
pub fn proxies() -> scenarist::engine::Proxies {
    scenarist::engine::Proxies::from_vars(|name| std::env::var(name).ok())
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
