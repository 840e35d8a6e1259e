//! What keeps several daemons on one store in step: a heartbeat, so that the
//! others know this one is alive (and take its executions over when it is
//! not), and the store's push of new work, so that an event accepted by one
//! daemon starts on a free worker of any daemon within milliseconds.
//!
//! Both run as tasks of their own: a daemon whose workers are all busy still
//! says it is alive.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::Shared;
use crate::runner::owner;

/// Says this daemon is alive, a few times per lease.
pub(super) async fn heartbeat(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let every =
        (shared.runner.lease() / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        if let Err(e) = shared
            .store
            .heartbeat(owner::this_process(), Utc::now())
            .await
        {
            tracing::warn!(error = %e, "cannot record the heartbeat");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// Rings the workers when another process queues work; reconnects after a
/// failure (the workers' slow poll covers the gap).
pub(super) async fn listen(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let ring = {
            let shared = shared.clone();
            move || shared.wake.notify_one()
        };
        tokio::select! {
            result = shared.store.listen_for_work(&ring) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "not listening for work; polling until the store is back");
                }
            }
            _ = stopped.wait_for(|s| *s) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}
