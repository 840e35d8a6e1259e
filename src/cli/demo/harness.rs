//! What the demo stands on: the stand-ins, the daemon on the example
//! scenarios (both on 127.0.0.1, ephemeral ports), and small helpers to talk
//! to them and to wait until everything triggered has finished.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use scenarist::daemon::{Config, Daemon};
use scenarist::engine::ExecutionStatus;
use scenarist::standins::StandIns;
use scenarist::store::{ExecutionFilter, ExecutionSummary, Store};
use serde_json::Value;

/// The admin token the demo's daemon requires (and the weekly report sends).
pub const ADMIN_TOKEN: &str = "demo-admin-token-5Rw1";

/// How long the demo waits for anything before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Harness {
    pub standins: StandIns,
    pub daemon: Option<Daemon>,
    pub store: Arc<dyn Store>,
    pub env: HashMap<String, String>,
    pub base: String,
    client: reqwest::Client,
}

impl Harness {
    pub async fn start(dir: &Path, store: Arc<dyn Store>) -> anyhow::Result<Harness> {
        let standins = StandIns::start()
            .await
            .context("cannot start the stand-ins on 127.0.0.1")?;
        // The weekly report reads the daemon's own API: bind before starting it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let base = format!("http://{listen}");
        let mut env: HashMap<String, String> = standins.env().into_iter().collect();
        env.insert("SCENARIST_API".into(), base.clone());
        env.insert("SCENARIST_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
        let mut config = Config::new(dir.to_path_buf(), listen);
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        config.workers = 4;
        config.grace = Duration::from_secs(5);
        config.clock = super::journey::now;
        let (daemon, problems) = Daemon::start_on(listener, config, store.clone(), env.clone())
            .await
            .context("cannot start the daemon")?;
        if !problems.is_empty() {
            bail!(
                "{} scenario(s) of {} are invalid: run `scenarist validate {}`",
                problems.len(),
                dir.display(),
                dir.display()
            );
        }
        for (event, hook) in [
            ("contact.created", "crm/contact-created"),
            ("deal.updated", "crm/deal-updated"),
            ("user.join", "referral/user-join"),
            ("reward_issued", "referral/reward-issued"),
        ] {
            standins.subscribe(event, &format!("{base}/hooks/{hook}"));
        }
        Ok(Harness {
            standins,
            daemon: Some(daemon),
            store,
            env,
            base,
            client: reqwest::Client::builder().timeout(PATIENCE).build()?,
        })
    }

    /// POSTs to the daemon; `/api` calls carry the admin token.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        Ok(response.json().await?)
    }

    /// Waits until every webhook the stand-ins sent was delivered and no
    /// execution is queued or running.
    pub async fn settle(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let delivered = self.standins.with_state(|s| s.pending_deliveries() == 0);
            let mut busy = false;
            for status in [ExecutionStatus::Queued, ExecutionStatus::Running] {
                let filter = ExecutionFilter {
                    status: Some(status),
                    limit: Some(1),
                    ..ExecutionFilter::default()
                };
                busy |= !self.store.list(&filter).await?.is_empty();
            }
            if delivered && !busy {
                return Ok(());
            }
            if started.elapsed() > PATIENCE {
                bail!("the executions did not finish within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Waits until `n` executions wait for a review.
    pub async fn reviews(&self, n: usize) -> anyhow::Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let pending = self.get("/api/approvals").await?;
            let list = pending.as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return Ok(list);
            }
            if started.elapsed() > PATIENCE {
                bail!("{n} executions should wait for a review, {} do", list.len());
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Executions started since `since`, oldest first.
    pub async fn since(&self, since: DateTime<Utc>) -> anyhow::Result<Vec<ExecutionSummary>> {
        let filter = ExecutionFilter {
            since: Some(since),
            limit: Some(1000),
            ..ExecutionFilter::default()
        };
        let mut rows = self.store.list(&filter).await?;
        rows.reverse();
        Ok(rows)
    }

    pub async fn shutdown(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await;
        }
    }
}
