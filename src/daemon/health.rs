//! Whether the store takes writes: the outcome of the daemon's last write
//! (an accepted event, a claim, an execution's journal), for `/healthz`, and
//! a probe with back-off while it does not, so that the executions a refused
//! write stopped are resumed by this same process once writes succeed again
//! (a full disk that got room back, a database that is writable again),
//! without resuming each one against a store that still refuses.
//!
//! It never holds a store URL: only the store's error message, which never
//! carries a password.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::engine::RunError;
use crate::runner::RunnerError;
use crate::store::{Store, StoreError};

/// The first wait before the store is probed again after a refused write;
/// it doubles at each refusal, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The dedupe key a probe writes (and overwrites) under no scenario: an
/// expired key, so it never holds back an event.
const PROBE_KEY: &str = "scenarist-store-probe";

#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    failing: Mutex<Option<Failing>>,
}

#[derive(Debug, Clone)]
struct Failing {
    since: DateTime<Utc>,
    /// The last refusal's message.
    error: String,
    at: DateTime<Utc>,
    /// When the store may be probed next.
    probe_at: Instant,
    backoff: Duration,
}

impl StoreHealth {
    /// A write was refused (or the store could not be reached to write).
    pub fn refused(&self, error: &StoreError) {
        if refuses_writes(error) {
            self.failed(error.to_string());
        }
    }

    fn failed(&self, error: String) {
        let now = Utc::now();
        let mut failing = self.failing.lock().expect("health lock");
        match failing.as_mut() {
            Some(f) => {
                f.error = error;
                f.at = now;
            }
            None => {
                tracing::error!(error = %error, "the store refuses writes; executions it stopped resume once it takes them again");
                *failing = Some(Failing {
                    since: now,
                    error,
                    at: now,
                    probe_at: Instant::now() + FIRST_BACKOFF,
                    backoff: FIRST_BACKOFF,
                });
            }
        }
    }

    /// A write went through: the store takes writes again.
    pub fn wrote(&self) {
        let mut failing = self.failing.lock().expect("health lock");
        if let Some(f) = failing.take() {
            let seconds = (Utc::now() - f.since).num_milliseconds() as f64 / 1000.0;
            tracing::info!(failed_for_s = seconds, "the store takes writes again");
        }
    }

    /// Records the outcome of an execution's run: a store error stopped it,
    /// or its end was written.
    pub fn ran<T>(&self, result: &Result<T, RunnerError>) {
        match result {
            Ok(_) => self.wrote(),
            Err(RunnerError::Store(e)) => self.refused(e),
            // The journal's errors are the store's, as text.
            Err(RunnerError::Run(RunError::Journal(e))) => self.failed(e.0.clone()),
            Err(_) => {}
        }
    }

    /// `None` when the store takes writes; else what `/healthz` shows.
    pub fn report(&self) -> Option<Value> {
        let failing = self.failing.lock().expect("health lock").clone()?;
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        Some(json!({
            "status": "failing",
            "store": failing.error,
            "since": time(failing.since),
            "last_error_at": time(failing.at),
        }))
    }

    /// While failing: one small write when its back-off is over. True when
    /// the store takes writes (then the caller resumes what was stopped).
    pub async fn probe(&self, store: &dyn Store) -> bool {
        {
            let failing = self.failing.lock().expect("health lock");
            match failing.as_ref() {
                None => return true,
                Some(f) if Instant::now() < f.probe_at => return false,
                Some(_) => {}
            }
        }
        let now = Utc::now();
        let written = store
            .dedupe("", PROBE_KEY, uuid::Uuid::nil(), DateTime::UNIX_EPOCH, now)
            .await;
        match written {
            Ok(_) => {
                self.wrote();
                true
            }
            Err(e) => {
                self.refused(&e);
                if let Some(f) = self.failing.lock().expect("health lock").as_mut() {
                    f.backoff = (f.backoff * 2).min(MAX_BACKOFF);
                    f.probe_at = Instant::now() + f.backoff;
                }
                false
            }
        }
    }
}

/// Errors that say the store cannot write now, as opposed to one execution's
/// own trouble (a lost lease, a damaged row).
fn refuses_writes(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(_) | StoreError::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_write_fails_until_a_write_succeeds() {
        let health = StoreHealth::default();
        assert!(health.report().is_none());
        health.refused(&StoreError::LeaseLost(uuid::Uuid::nil()));
        assert!(
            health.report().is_none(),
            "one execution's trouble, not the store's"
        );
        health.refused(&StoreError::Database("database or disk is full".to_owned()));
        let report = health.report().unwrap();
        assert_eq!(report["status"], "failing");
        assert_eq!(report["store"], "store error: database or disk is full");
        let store = crate::store::open("memory").unwrap();
        // Within the back-off: not probed yet.
        assert!(!health.probe(store.as_ref()).await);
        health.failing.lock().unwrap().as_mut().unwrap().probe_at = Instant::now();
        assert!(health.probe(store.as_ref()).await);
        assert!(health.report().is_none());
        // The probe's key holds back no event.
        let held = store
            .dedupe("", PROBE_KEY, uuid::Uuid::new_v4(), Utc::now(), Utc::now())
            .await
            .unwrap();
        assert_eq!(held, None);
    }
}
