//! What people browse, on SQLite: the execution list with its keys, the
//! scenarios' activity and versions (the SQL is shared: `store::browse`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::rows::{from_micros, micros, summaries};
use crate::store::browse::{
    keys_query, list_query, with_mark, SqlValue, ACTIVITY_COUNTS, ACTIVITY_LAST, VERSIONS,
};
use crate::store::{
    ExecutionFilter, ExecutionSummary, NewExecution, ScenarioActivity, StoreError, VersionSeen,
};

fn mark(n: usize) -> String {
    format!("?{n}")
}

fn to_sql(value: &SqlValue) -> &dyn rusqlite::ToSql {
    match value {
        SqlValue::Text(t) => t,
        SqlValue::Int(i) => i,
    }
}

pub(super) fn list(
    conn: &Connection,
    filter: &ExecutionFilter,
) -> Result<Vec<ExecutionSummary>, StoreError> {
    let (sql, values) = list_query(filter, mark);
    let refs: Vec<&dyn rusqlite::ToSql> = values.iter().map(to_sql).collect();
    let mut page = summaries(conn, &sql, &refs)?;
    // Two keys of one execution with the same value meet the key filter twice.
    let mut seen = std::collections::HashSet::new();
    page.retain(|s| seen.insert(s.id));
    with_keys(conn, &mut page)?;
    Ok(page)
}

/// Fills in the business keys of a page of executions (one query).
pub(super) fn with_keys(
    conn: &Connection,
    page: &mut [ExecutionSummary],
) -> Result<(), StoreError> {
    if page.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = page.iter().map(|s| s.id.to_string()).collect();
    let mut statement = conn.prepare_cached(&keys_query(ids.len(), mark))?;
    let refs: Vec<&dyn rusqlite::ToSql> = ids.iter().map(|i| i as &dyn rusqlite::ToSql).collect();
    let rows = statement.query_map(refs.as_slice(), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut by_id: HashMap<Uuid, BTreeMap<String, String>> = HashMap::new();
    for row in rows {
        let (id, name, value) = row?;
        let id =
            Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("key of `{id}`: {e}")))?;
        by_id.entry(id).or_default().insert(name, value);
    }
    for summary in page {
        if let Some(keys) = by_id.remove(&summary.id) {
            summary.keys = keys;
        }
    }
    Ok(())
}

/// Writes an execution's business keys, in the transaction that inserts it.
pub(super) fn insert_keys(conn: &Connection, new: &NewExecution) -> Result<(), StoreError> {
    if new.keys.is_empty() {
        return Ok(());
    }
    let mut statement = conn.prepare_cached(
        "INSERT OR IGNORE INTO execution_keys (execution_id, name, value) VALUES (?1, ?2, ?3)",
    )?;
    let id = new.id.to_string();
    for (name, value) in &new.keys {
        statement.execute(params![id, name, value])?;
    }
    Ok(())
}

pub(super) fn activity(
    conn: &Connection,
    scenarios: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<ScenarioActivity>, StoreError> {
    let mut last = conn.prepare_cached(&with_mark(ACTIVITY_LAST, mark))?;
    let mut counts = conn.prepare_cached(&with_mark(ACTIVITY_COUNTS, mark))?;
    let mut out = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let latest: Option<i64> = last.query_row([scenario], |r| r.get(0))?;
        let mut by_status = BTreeMap::new();
        let rows = counts.query_map(params![scenario, micros(since)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (status, n) = row?;
            by_status.insert(status, n as u64);
        }
        out.push(ScenarioActivity {
            scenario: scenario.clone(),
            last_started: latest.map(from_micros),
            counts: by_status,
        });
    }
    Ok(out)
}

pub(super) fn versions(conn: &Connection, scenario: &str) -> Result<Vec<VersionSeen>, StoreError> {
    let mut statement = conn.prepare_cached(&with_mark(VERSIONS, mark))?;
    let rows = statement.query_map([scenario], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, saved) = row?;
        out.push(VersionSeen {
            version,
            saved_at: from_micros(saved),
        });
    }
    Ok(out)
}
