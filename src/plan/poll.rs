//! A compiled `poll` trigger: what the watcher (`runner::watch`) asks, and how
//! it reads the answer.

use chrono::{DateTime, Utc};

use super::{Expr, HttpPlan, RetryPolicy, ScheduleTrigger};

/// Pages one poll follows when `max_pages` is not given.
pub const DEFAULT_MAX_PAGES: u32 = 10;
/// New items one poll runs when `max_items` is not given.
pub const DEFAULT_MAX_ITEMS: u32 = 1000;

#[derive(Debug)]
pub struct PollPlan {
    /// When to poll (`catch_up` is always `none`: a poll asks for what is new,
    /// so a missed poll is covered by the next one).
    pub schedule: ScheduleTrigger,
    /// Its templates read `cursor`, `page`, `env` and `vars`.
    pub request: HttpPlan,
    pub retry: Option<RetryPolicy>,
    /// A JSONPath over the answer's body.
    pub items: Expr,
    /// `$.data` for `$.data[*]`: where the items must be, so that an answer
    /// without it is an error rather than "nothing new".
    pub items_container: Option<Expr>,
    /// Templates over `item`.
    pub id: Expr,
    pub date: Option<Expr>,
    /// A JSONPath over the answer's body.
    pub next_page: Option<Expr>,
    pub max_pages: u32,
    pub start: PollStart,
    pub max_items: u32,
    pub changes: bool,
    pub batch: bool,
    /// sha256 of what identifies the watch (request, items, id, date): when it
    /// changes, the watch starts again from `start`.
    pub fingerprint: String,
}

/// Where a new (or reset) watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStart {
    /// Remember what is there and run nothing.
    Now,
    /// Run every existing item.
    All,
    /// Run the items dated at or after this time.
    At(DateTime<Utc>),
}

impl PollStart {
    /// `now`, `all` or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<PollStart, String> {
        match text {
            "now" => Ok(PollStart::Now),
            "all" => Ok(PollStart::All),
            other => DateTime::parse_from_rfc3339(other)
                .map(|t| PollStart::At(t.with_timezone(&Utc)))
                .map_err(|_| {
                    format!("`{other}` is not a start: use `now`, `all` or an RFC 3339 time such as 2026-01-31T00:00:00Z")
                }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            PollStart::Now => "now".to_owned(),
            PollStart::All => "all".to_owned(),
            PollStart::At(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}
