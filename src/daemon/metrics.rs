//! What `GET /metrics` shows, in the Prometheus text format.

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::{Execution, Journal, JournalError, StepRecord};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExecutionLabels {
    pub scenario: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScenarioLabels {
    pub scenario: String,
}

pub struct Metrics {
    registry: Registry,
    pub executions: Family<ExecutionLabels, Counter>,
    pub step_seconds: Family<KindLabels, Histogram>,
    pub queue_depth: Gauge,
    pub webhook_responses: Family<CodeLabels, Counter>,
    pub schedule_ticks: Family<ScenarioLabels, Counter>,
    pub polls: Family<ScenarioLabels, Counter>,
    pub poll_items: Family<ScenarioLabels, Counter>,
    pub poll_errors: Family<ScenarioLabels, Counter>,
    pub waiting_for_event: Family<EventLabels, Gauge>,
    /// Connections that keep tokens, by status (`needs_reconnect` wants a person).
    pub connections: Family<StatusLabels, Gauge>,
    /// The store's files (SQLite): set from [`crate::store::StorageStats`] when read.
    store_log_bytes: Gauge,
    store_log_ceiling_bytes: Gauge,
    store_bytes: Gauge,
    store_log_truncations: Gauge,
    store_last_checkpoint_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    store_longest_checkpoint_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("scenarist");
        let executions = Family::<ExecutionLabels, Counter>::default();
        let step_seconds = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 10))
        });
        let queue_depth = Gauge::default();
        let webhook_responses = Family::<CodeLabels, Counter>::default();
        let schedule_ticks = Family::<ScenarioLabels, Counter>::default();
        let polls = Family::<ScenarioLabels, Counter>::default();
        let poll_items = Family::<ScenarioLabels, Counter>::default();
        let poll_errors = Family::<ScenarioLabels, Counter>::default();
        registry.register(
            "polls",
            "Polls made by poll triggers, by scenario",
            polls.clone(),
        );
        registry.register(
            "poll_items",
            "New items that poll triggers turned into executions, by scenario",
            poll_items.clone(),
        );
        registry.register(
            "poll_errors",
            "Polls that failed (the cursor stays), by scenario",
            poll_errors.clone(),
        );
        let waiting_for_event = Family::<EventLabels, Gauge>::default();
        registry.register(
            "executions",
            "Executions that ended, by scenario and status",
            executions.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "How long steps took, by kind",
            step_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Executions accepted and waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "webhook_responses",
            "Webhook answers, by HTTP status",
            webhook_responses.clone(),
        );
        registry.register(
            "schedule_ticks",
            "Schedule ticks that started an execution, by scenario",
            schedule_ticks.clone(),
        );
        registry.register(
            "waiting_for_event",
            "Executions parked at a wait_for step, by event",
            waiting_for_event.clone(),
        );
        let connections = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "connections",
            "Connections that keep tokens in the store, by status (needs_reconnect wants a person)",
            connections.clone(),
        );
        let store_log_bytes = Gauge::default();
        let store_log_ceiling_bytes = Gauge::default();
        let store_bytes = Gauge::default();
        let store_log_truncations = Gauge::default();
        let store_last_checkpoint_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let store_longest_checkpoint_seconds =
            Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        for (name, help, gauge) in [
            (
                "store_log_bytes",
                "The SQLite store's write-ahead log, in bytes",
                &store_log_bytes,
            ),
            (
                "store_log_ceiling_bytes",
                "The size the write-ahead log is kept under (?max_log=)",
                &store_log_ceiling_bytes,
            ),
            (
                "store_bytes",
                "The SQLite store's database file, in bytes",
                &store_bytes,
            ),
            (
                "store_log_truncations",
                "Times the write-ahead log was cut back to zero",
                &store_log_truncations,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "store_last_checkpoint_seconds",
            "How long the last checkpoint that cut the log held the writer",
            store_last_checkpoint_seconds.clone(),
        );
        registry.register(
            "store_longest_checkpoint_seconds",
            "The longest checkpoint that cut the log, since the daemon started",
            store_longest_checkpoint_seconds.clone(),
        );
        Metrics {
            registry,
            store_log_bytes,
            store_log_ceiling_bytes,
            store_bytes,
            store_log_truncations,
            store_last_checkpoint_seconds,
            store_longest_checkpoint_seconds,
            waiting_for_event,
            connections,
            executions,
            step_seconds,
            queue_depth,
            webhook_responses,
            schedule_ticks,
            polls,
            poll_items,
            poll_errors,
        }
    }

    /// Sets the waiting gauge to what the store says; events nobody waits
    /// for any more go to 0 rather than keeping their last value.
    pub fn set_waiting(&self, counts: &[(String, u64)]) {
        self.waiting_for_event.clear();
        for (event, count) in counts {
            self.waiting_for_event
                .get_or_create(&EventLabels {
                    event: event.clone(),
                })
                .set(*count as i64);
        }
    }

    /// Sets the connections gauge from the store's rows (both statuses
    /// always present, so an alert on `needs_reconnect > 0` sees a 0).
    pub fn set_connections(&self, rows: &[crate::store::CredentialRow]) {
        for status in [
            crate::store::CredentialStatus::Connected,
            crate::store::CredentialStatus::NeedsReconnect,
        ] {
            let count = rows.iter().filter(|r| r.status == status).count();
            self.connections
                .get_or_create(&StatusLabels {
                    status: status.as_str().to_owned(),
                })
                .set(count as i64);
        }
    }

    pub fn webhook(&self, code: u16) {
        self.webhook_responses
            .get_or_create(&CodeLabels {
                code: code.to_string(),
            })
            .inc();
    }

    /// The store's files as they stand now.
    pub fn set_storage(&self, stats: &crate::store::StorageStats) {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.store_log_bytes.set(int(stats.log_bytes));
        self.store_log_ceiling_bytes.set(int(stats.log_ceiling));
        self.store_bytes.set(int(stats.store_bytes));
        self.store_log_truncations.set(int(stats.log_truncations));
        self.store_last_checkpoint_seconds
            .set(stats.last_checkpoint.as_secs_f64());
        self.store_longest_checkpoint_seconds
            .set(stats.longest_checkpoint.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A journal that only counts: step durations and finished executions.
pub struct MetricsJournal<'a>(pub &'a Metrics);

#[async_trait]
impl Journal for MetricsJournal<'_> {
    async fn step_finished(&self, record: &StepRecord) -> Result<(), JournalError> {
        self.0
            .step_seconds
            .get_or_create(&KindLabels {
                kind: record.kind.to_owned(),
            })
            .observe(record.duration_ms as f64 / 1000.0);
        Ok(())
    }

    async fn execution_finished(&self, execution: &Execution) -> Result<(), JournalError> {
        self.0
            .executions
            .get_or_create(&ExecutionLabels {
                scenario: execution.scenario.clone(),
                status: execution.status.to_string(),
            })
            .inc();
        Ok(())
    }
}
