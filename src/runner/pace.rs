//! The engine's rate-limit schedules kept in the store, so that every
//! daemon sharing a PostgreSQL store paces its calls to an API together.
//!
//! A shared token bucket (exact whatever the number of daemons, and idle
//! daemons take nothing) rather than an equal share per live daemon (which
//! would waste the share of an idle one and drift while daemons come and
//! go). A store that keeps no shared schedule (SQLite: one process) and a
//! store that fails fall back to this process's own schedule, so a store
//! outage never stops pacing.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::pace::{LocalPacer, Pacer};
use crate::model::RateLimit;
use crate::store::Store;

pub struct StorePacer {
    store: Arc<dyn Store>,
    local: LocalPacer,
}

impl StorePacer {
    pub fn new(store: Arc<dyn Store>) -> StorePacer {
        StorePacer {
            store,
            local: LocalPacer::default(),
        }
    }
}

#[async_trait::async_trait]
impl Pacer for StorePacer {
    async fn reserve(&self, key: &str, limit: RateLimit) -> Duration {
        match self
            .store
            .pace_reserve(key, limit.pacing_interval(), limit.tolerance())
            .await
        {
            Ok(Some(wait)) => wait,
            Ok(None) => self.local.reserve(key, limit).await,
            Err(e) => {
                tracing::warn!(error = %e, key, "the shared rate-limit schedule is unavailable; pacing in this process");
                self.local.reserve(key, limit).await
            }
        }
    }

    async fn hold(&self, key: &str, limit: RateLimit, pause: Duration) {
        self.local.hold(key, limit, pause).await;
        if let Err(e) = self.store.pace_hold(key, pause + limit.tolerance()).await {
            tracing::warn!(error = %e, key, "cannot hold the shared rate-limit schedule back");
        }
    }

    /// Holds this daemon met; another daemon's 429 reaches the calls
    /// reserved after it, through the shared schedule.
    fn held_since(&self, key: &str, since: std::time::Instant) -> bool {
        self.local.held_since(key, since)
    }
}
