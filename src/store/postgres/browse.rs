//! What people browse, on PostgreSQL: the execution list with its keys, the
//! scenarios' activity and versions (the SQL is shared: `store::browse`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::rows::{from_micros, micros, summaries};
use super::writes::Tx;
use super::{db, PgStore};
use crate::store::browse::{
    keys_query, list_query, with_mark, SqlValue, ACTIVITY_COUNTS, ACTIVITY_LAST, VERSIONS,
};
use crate::store::{
    ExecutionFilter, ExecutionSummary, NewExecution, ScenarioActivity, StoreError, VersionSeen,
};

fn mark(n: usize) -> String {
    format!("${n}")
}

fn to_sql(value: &SqlValue) -> &(dyn ToSql + Sync) {
    match value {
        SqlValue::Text(t) => t,
        SqlValue::Int(i) => i,
    }
}

pub(super) async fn list(
    store: &PgStore,
    filter: &ExecutionFilter,
) -> Result<Vec<ExecutionSummary>, StoreError> {
    let (sql, values) = list_query(filter, mark);
    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(to_sql).collect();
    let client = store.client().await?;
    let rows = client.query(&sql, &refs).await.map_err(db)?;
    let mut page = summaries(&rows)?;
    // Two keys of one execution with the same value meet the key filter twice.
    let mut seen = std::collections::HashSet::new();
    page.retain(|s| seen.insert(s.id));
    with_keys(&client, &mut page).await?;
    Ok(page)
}

/// Fills in the business keys of a page of executions (one query).
pub(super) async fn with_keys(
    client: &impl GenericClient,
    page: &mut [ExecutionSummary],
) -> Result<(), StoreError> {
    if page.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = page.iter().map(|s| s.id.to_string()).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = ids.iter().map(|i| i as &(dyn ToSql + Sync)).collect();
    let rows = client
        .query(&keys_query(ids.len(), mark), &refs)
        .await
        .map_err(db)?;
    let mut by_id: HashMap<Uuid, BTreeMap<String, String>> = HashMap::new();
    for row in rows {
        let id: String = row.get(0);
        let id =
            Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("key of `{id}`: {e}")))?;
        by_id.entry(id).or_default().insert(row.get(1), row.get(2));
    }
    for summary in page {
        if let Some(keys) = by_id.remove(&summary.id) {
            summary.keys = keys;
        }
    }
    Ok(())
}

/// Writes an execution's business keys, in the transaction that inserts it.
pub(super) async fn insert_keys(tx: &Tx<'_>, new: &NewExecution) -> Result<(), StoreError> {
    if new.keys.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare_cached(
            "INSERT INTO execution_keys (execution_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    let id = new.id.to_string();
    for (name, value) in &new.keys {
        tx.execute(&statement, &[&id, name, value])
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn activity(
    store: &PgStore,
    scenarios: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<ScenarioActivity>, StoreError> {
    let client = store.client().await?;
    let last = client
        .prepare_cached(&with_mark(ACTIVITY_LAST, mark))
        .await
        .map_err(db)?;
    let counts = client
        .prepare_cached(&with_mark(ACTIVITY_COUNTS, mark))
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let latest: Option<i64> = client
            .query_one(&last, &[scenario])
            .await
            .map_err(db)?
            .get(0);
        let rows = client
            .query(&counts, &[scenario, &micros(since)])
            .await
            .map_err(db)?;
        out.push(ScenarioActivity {
            scenario: scenario.clone(),
            last_started: latest.map(from_micros),
            counts: rows
                .iter()
                .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
                .collect(),
        });
    }
    Ok(out)
}

pub(super) async fn versions(
    store: &PgStore,
    scenario: &str,
) -> Result<Vec<VersionSeen>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(&with_mark(VERSIONS, mark), &[&scenario])
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|row| VersionSeen {
            version: row.get(0),
            saved_at: from_micros(row.get(1)),
        })
        .collect())
}
