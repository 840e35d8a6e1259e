//! The `--store` option shared by every command that reads or writes history.

use std::sync::Arc;

use clap::Args;
use scenarist::runner::Runner;
use scenarist::store::{self, Store, DEFAULT_STORE_URL};

#[derive(Args, Clone)]
pub struct StoreArg {
    /// Where executions are kept: sqlite://PATH, or memory for a throwaway run.
    // `hide_env_values`: the value of SCENARIST_STORE may hold a password.
    #[arg(long = "store", env = "SCENARIST_STORE", hide_env_values = true, default_value = DEFAULT_STORE_URL, value_name = "URL")]
    pub url: String,
}

impl StoreArg {
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(store::open(&self.url)?)
    }

    /// A runner on this store, reading declared env values from the process environment.
    pub fn runner(&self) -> anyhow::Result<Runner> {
        Ok(Runner::new(
            scenarist::engine::Engine::new().with_network(scenarist::engine::NetworkPolicy {
                proxies: proxies(),
                ..Default::default()
            }),
            self.open()?,
            std::env::vars().collect(),
        ))
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
