//! The SQL of what people browse (the dashboard, `executions list`, the
//! API): a filtered, keyset-paginated list of executions and the business
//! keys of a page. Both backends run the same text; only the parameter
//! marks differ (`?1` in SQLite, `$1` in PostgreSQL), so it is written once.

use super::records::ExecutionFilter;

/// A parameter of a browse query, converted by each backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Text(String),
    Int(i64),
}

/// The columns of an execution summary, as both backends' row mappers read
/// them, read from the table aliased `e`.
pub(crate) const SUMMARY_COLUMNS_OF_E: &str = "e.id, e.scenario, e.version, e.status, e.attempt, e.started_at, e.finished_at, e.next_retry_at, e.error_step, e.error, e.owner, e.replay_of";

/// The page query for `filter`, newest first, and its parameters; `mark(n)`
/// writes the n-th parameter's placeholder.
///
/// Newest first means by id: a UUIDv7, the order the events were accepted
/// in, unique and never changed (an execution's `started_at` moves when a
/// worker takes it from the queue, so it cannot hold a page's place). A key
/// filter reads `execution_keys` in its `(value, execution_id)` index order
/// and joins the executions; otherwise `executions` is read by id. Either
/// way a page deep in history costs what the first one does: the cursor is
/// a position in an index, never an offset.
pub(crate) fn list_query(
    filter: &ExecutionFilter,
    mark: impl Fn(usize) -> String,
) -> (String, Vec<SqlValue>) {
    let mut values = Vec::new();
    let push = |value: SqlValue, values: &mut Vec<SqlValue>| {
        values.push(value);
        mark(values.len())
    };
    // The column that orders the page: the key table's copy when it leads.
    let (mut sql, id) = match &filter.key {
        Some(key) => {
            let m = push(SqlValue::Text(key.clone()), &mut values);
            (
                format!(
                    "SELECT {SUMMARY_COLUMNS_OF_E} FROM execution_keys k JOIN executions e ON e.id = k.execution_id WHERE k.value = {m}"
                ),
                "k.execution_id",
            )
        }
        None => (
            format!("SELECT {SUMMARY_COLUMNS_OF_E} FROM executions e WHERE 1 = 1"),
            "e.id",
        ),
    };
    if let Some(scenario) = &filter.scenario {
        let m = push(SqlValue::Text(scenario.clone()), &mut values);
        sql.push_str(&format!(" AND e.scenario = {m}"));
    }
    if let Some(status) = filter.status {
        let m = push(SqlValue::Text(status.as_str().to_owned()), &mut values);
        sql.push_str(&format!(" AND e.status = {m}"));
    }
    if let Some(since) = filter.since {
        let m = push(SqlValue::Int(since.timestamp_micros()), &mut values);
        sql.push_str(&format!(" AND e.started_at >= {m}"));
    }
    if let Some(until) = filter.until {
        let m = push(SqlValue::Int(until.timestamp_micros()), &mut values);
        sql.push_str(&format!(" AND e.started_at < {m}"));
    }
    if let Some(after) = filter.after {
        let m = push(SqlValue::Text(after.id.to_string()), &mut values);
        sql.push_str(&format!(" AND {id} < {m}"));
    }
    let m = push(
        SqlValue::Int(filter.limit.unwrap_or(50) as i64),
        &mut values,
    );
    sql.push_str(&format!(" ORDER BY {id} DESC LIMIT {m}"));
    (sql, values)
}

/// The business keys of the executions `ids` (one page): `(execution_id,
/// name, value)` rows.
pub(crate) fn keys_query(ids: usize, mark: impl Fn(usize) -> String) -> String {
    let marks: Vec<String> = (1..=ids).map(mark).collect();
    format!(
        "SELECT execution_id, name, value FROM execution_keys WHERE execution_id IN ({})",
        marks.join(", ")
    )
}

/// A scenario's executions started since `{2}`, by status: a range of
/// the covering index `(scenario, started_at, status)`, no table rows read.
pub(crate) const ACTIVITY_COUNTS: &str =
    "SELECT status, COUNT(*) FROM executions WHERE scenario = {1} AND started_at >= {2} GROUP BY status";

/// A scenario's latest start: one seek at the end of its index range.
pub(crate) const ACTIVITY_LAST: &str =
    "SELECT MAX(started_at) FROM executions WHERE scenario = {1}";

/// A scenario's kept versions, newest first.
pub(crate) const VERSIONS: &str =
    "SELECT version, created_at FROM scenario_versions WHERE scenario = {1} ORDER BY created_at DESC, version";

/// `sql` with `{1}`, `{2}` written as parameter marks of a backend.
pub(crate) fn with_mark(sql: &str, mark: impl Fn(usize) -> String) -> String {
    sql.replace("{1}", &mark(1)).replace("{2}", &mark(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Cursor;

    #[test]
    fn a_key_page_reads_the_key_index_in_order_and_the_cursor_is_a_position() {
        let filter = ExecutionFilter {
            key: Some("lee@bigco.example".to_owned()),
            status: Some(crate::engine::ExecutionStatus::Failed),
            after: Some(
                "0190d3c4-0000-7000-8000-000000000001"
                    .parse::<Cursor>()
                    .unwrap(),
            ),
            limit: Some(51),
            ..ExecutionFilter::default()
        };
        let (sql, values) = list_query(&filter, |n| format!("${n}"));
        assert!(
            sql.contains("FROM execution_keys k JOIN executions e"),
            "{sql}"
        );
        assert!(sql.contains("k.value = $1 AND e.status = $2"), "{sql}");
        assert!(sql.contains("AND k.execution_id < $3"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY k.execution_id DESC LIMIT $4"),
            "{sql}"
        );
        assert_eq!(values.len(), 4);
        let (plain, _) = list_query(&ExecutionFilter::default(), |n| format!("?{n}"));
        assert!(plain.ends_with("ORDER BY e.id DESC LIMIT ?1"), "{plain}");
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_say_so() {
        let c: Cursor = "0190d3c4-0000-7000-8000-000000000001".parse().unwrap();
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in ["", "x.y", "12", "not-a-uuid"] {
            let e = bad.parse::<Cursor>().unwrap_err();
            assert!(e.contains("page position"), "{e}");
        }
    }
}
