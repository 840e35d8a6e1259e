//! The execution filter as it travels in a URL's query (`?scenario=&status=
//! &since=&until=&key=&after=&limit=`), shared by `GET /api/executions` and
//! the dashboard, so a link to a filtered list means the same in both.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::ExecutionStatus;
use crate::store::{Cursor, ExecutionFilter};

/// The query as written: every field optional, empty fields ignored (a form
/// submits its empty inputs).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ExecutionQuery {
    pub scenario: Option<String>,
    pub status: Option<String>,
    /// A time (`2026-03-02`, `2026-03-02T09:00:00Z`) or a period back from
    /// now (`7d`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub key: Option<String>,
    /// The page position (an execution id) of the last row already seen.
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// Most rows one page may ask for.
pub const MAX_LIMIT: usize = 500;

fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A point in time from a query field: a date (midnight UTC), an RFC 3339
/// time, or a period before `now`.
fn instant(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let period: crate::model::Duration = text.parse().map_err(|_| {
        format!("{field}: `{text}` is neither a date (2026-03-02), a time (2026-03-02T09:00:00Z) nor a period (7d)")
    })?;
    period
        .before(now)
        .ok_or_else(|| format!("{field}: `{text}` is too long a period"))
}

impl ExecutionQuery {
    /// The store's filter, or what is wrong with the query (field first).
    pub fn filter(&self, now: DateTime<Utc>) -> Result<ExecutionFilter, String> {
        let status = match given(&self.status) {
            None => None,
            Some(s) => Some(
                s.parse::<ExecutionStatus>()
                    .map_err(|e| format!("status: {e}"))?,
            ),
        };
        let since = given(&self.since)
            .map(|t| instant("since", t, now))
            .transpose()?;
        let until = given(&self.until)
            .map(|t| instant("until", t, now))
            .transpose()?;
        let after = match given(&self.after) {
            None => None,
            Some(c) => Some(c.parse::<Cursor>().map_err(|e| format!("after: {e}"))?),
        };
        Ok(ExecutionFilter {
            scenario: given(&self.scenario).map(str::to_owned),
            status,
            since,
            until,
            key: given(&self.key).map(str::to_owned),
            after,
            limit: Some(self.limit.unwrap_or(50).clamp(1, MAX_LIMIT)),
        })
    }

    /// The same query at another page position, as a URL query string
    /// (empty fields left out).
    pub fn to_query_string(&self, after: Option<&Cursor>) -> String {
        let mut next = self.clone();
        next.after = after.map(|c| c.to_string());
        let pairs = [
            ("scenario", given(&next.scenario).map(str::to_owned)),
            ("status", given(&next.status).map(str::to_owned)),
            ("since", given(&next.since).map(str::to_owned)),
            ("until", given(&next.until).map(str::to_owned)),
            ("key", given(&next.key).map(str::to_owned)),
            ("after", next.after.clone()),
            ("limit", next.limit.map(|l| l.to_string())),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlencoding::encode(&v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_dates_periods_and_empty_fields() {
        let now = "2026-03-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let q = ExecutionQuery {
            status: Some("failed".into()),
            since: Some("2026-03-02".into()),
            until: Some("1d".into()),
            key: Some("  ".into()),
            ..Default::default()
        };
        let f = q.filter(now).unwrap();
        assert_eq!(f.since.unwrap().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-03-09T12:00:00+00:00");
        assert_eq!(f.key, None);
        assert_eq!(f.limit, Some(50));
        let bad = ExecutionQuery {
            since: Some("last week".into()),
            ..Default::default()
        };
        assert!(bad
            .filter(now)
            .unwrap_err()
            .starts_with("since: `last week`"));
        let bad = ExecutionQuery {
            status: Some("done".into()),
            ..Default::default()
        };
        assert!(bad.filter(now).unwrap_err().starts_with("status:"));
        let bad = ExecutionQuery {
            after: Some("x".into()),
            ..Default::default()
        };
        assert!(bad.filter(now).unwrap_err().starts_with("after:"));
    }

    #[test]
    fn the_query_string_keeps_the_filters_and_moves_the_page() {
        let q = ExecutionQuery {
            key: Some("lee@bigco.example".into()),
            status: Some("".into()),
            ..Default::default()
        };
        let cursor: Cursor = "0190d3c4-0000-7000-8000-000000000001".parse().unwrap();
        assert_eq!(
            q.to_query_string(Some(&cursor)),
            "key=lee%40bigco.example&after=0190d3c4-0000-7000-8000-000000000001"
        );
    }
}
