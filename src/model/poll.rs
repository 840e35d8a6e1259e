//! The `poll` trigger: a request made on a schedule, whose answer's new items
//! each start an execution (Make's "Watch" modules).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::HttpStep;
use super::values::Duration;

/// Polls an API on a schedule and runs the scenario once per new item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// How often to ask (at least 1s). Exactly one of `every` and `cron`.
    pub every: Option<Duration>,
    /// 5 or 6 fields (seconds first when 6).
    pub cron: Option<String>,
    /// An IANA time zone name for `cron` (default UTC).
    pub timezone: Option<String>,
    /// The request, as an http step writes it. Its templates read `cursor`
    /// (`cursor.date`: the greatest date seen) and `page` (`page.next`: the
    /// next page's token); a query parameter that renders empty is left out.
    /// Exactly one of `request` and `uses`.
    pub request: Option<HttpStep>,
    /// An app's watch, `APP.TRIGGER` (e.g. `referral-factory.watch_users`):
    /// its request, items, id, date and pages.
    pub uses: Option<String>,
    /// The app watch's input, checked against its schema.
    #[serde(default)]
    pub with: serde_json::Map<String, serde_json::Value>,
    /// JSONPath of the items in an answer, e.g. `$.data[*]` (an app watch's by default).
    pub items: Option<String>,
    /// What makes an item the same item, e.g. `{{ item.id }}` (an app watch's by default).
    pub id: Option<String>,
    /// The item's date (RFC 3339 or Unix seconds); the cursor moves to the greatest seen.
    pub date: Option<String>,
    /// JSONPath of the next page's token in an answer; polls follow it up to `max_pages`.
    pub next_page: Option<String>,
    /// Pages followed within one poll (default 10).
    pub max_pages: Option<u32>,
    /// Where a new watch starts: `now` (default: remembers what is there, runs
    /// nothing), `all` (runs every existing item), or an RFC 3339 time.
    pub start: Option<String>,
    /// New items run per poll at most (default 1000); the rest on the next poll.
    pub max_items: Option<u32>,
    /// Run the same id again when its `date` is later (an update).
    #[serde(default)]
    pub changes: bool,
    /// One execution with every new item (`trigger.items`) instead of one each.
    #[serde(default)]
    pub batch: bool,
}
