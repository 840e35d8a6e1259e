//! The rows of poll triggers (`watches`): where each watch stands, and what
//! a poll commits. The SQL is in each backend's `watches.rs`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NewExecution;

/// One id already run, with the date it had (for `changes`).
pub type Seen = (String, Option<Value>);

/// Where a watch stands.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchState {
    pub scenario: String,
    /// What the request was when the cursor was set (empty: never seeded).
    pub fingerprint: String,
    /// Moves at each claim and commit: a poll commits only if it is still
    /// the generation it claimed.
    pub generation: i64,
    /// `{ "date": ..., "token": ... }`, as the request's templates read it.
    pub cursor: Value,
    /// The window of ids already run, oldest first.
    pub seen: Vec<Seen>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// Polls committed (with something new, a seed or a failure).
    pub polls: u64,
    /// Items that became executions, in all.
    pub items: u64,
    /// Items the last committed poll ran.
    pub last_items: u64,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Failed polls in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    /// No poll before this time (back-off after failures).
    pub retry_at: Option<DateTime<Utc>>,
    /// A reset's start, taken by the next poll.
    pub restart: Option<String>,
}

/// What a successful poll commits, with its executions.
#[derive(Debug, Clone)]
pub struct WatchCommit {
    pub fingerprint: String,
    pub cursor: Value,
    pub seen: Vec<Seen>,
    pub polled_at: DateTime<Utc>,
    pub executions: Vec<NewExecution>,
    /// The concurrency key of every execution (the scenario's limit), if any.
    pub concurrency_key: Option<String>,
    /// Items that became executions (a batch is one execution of several).
    pub items: u64,
}

/// What a failed poll records: the cursor stays where it is.
#[derive(Debug, Clone)]
pub struct WatchFailure {
    pub error: String,
    pub polled_at: DateTime<Utc>,
    pub retry_at: DateTime<Utc>,
}

pub(crate) fn seen_text(seen: &[Seen]) -> String {
    let list: Vec<Value> = seen
        .iter()
        .map(|(id, date)| {
            Value::Array(vec![
                Value::String(id.clone()),
                date.clone().unwrap_or(Value::Null),
            ])
        })
        .collect();
    Value::Array(list).to_string()
}

pub(crate) fn seen_from_text(text: &str) -> Result<Vec<Seen>, super::StoreError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| super::StoreError::Corrupt(format!("watch window: {e}")))?;
    Ok(value
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|pair| {
                    let id = pair.get(0)?.as_str()?.to_owned();
                    let date = pair.get(1).filter(|d| !d.is_null()).cloned();
                    Some((id, date))
                })
                .collect()
        })
        .unwrap_or_default())
}
