//! The referral-operations report (`scenarist report`), pure part: from the
//! business events that `record` steps wrote and the counts of executions that
//! need a person, compute the totals of a period and its weekly series.
//! No I/O and no store here: the caller reads, this module computes, and
//! [`render`] / [`svg`] turn the result into text for people and machines.
//! Nothing is rounded in the data; rounding is the renderers' job.

pub mod render;
pub mod svg;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::Serialize;

/// Event name a `record` step writes when someone joins the programme.
pub const ENROLLED: &str = "enrolled";
/// Event name for a referral made; its key is the referred person's.
pub const REFERRED: &str = "referred";
/// Event name for a referral that met the programme's conditions; it shares
/// its key with the `referred` event of the same referral.
pub const QUALIFIED: &str = "qualified";
/// Event name for a reward paid out; its value is the amount.
pub const REWARD_ISSUED: &str = "reward_issued";

/// One business event a `record` step wrote; `(event, key)` is unique.
/// It is the report's raw material: scenarios say what happened in business
/// terms, so the report never has to interpret step outputs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BusinessEvent {
    /// `enrolled`, `referred`, `qualified`, `reward_issued`, or any other
    /// name (other names are kept by the store but ignored by this report).
    pub event: String,
    /// Identifies the subject, e.g. the referred person's email; the
    /// `referred` and `qualified` events of one referral share the key, which
    /// is how the time to qualify is measured.
    pub key: String,
    /// A figure attached to the event, e.g. the reward amount for
    /// `reward_issued`.
    pub value: Option<f64>,
    /// The scenario whose `record` step wrote the event, to report on one.
    pub scenario: String,
    /// The execution that wrote it, to trace a figure back to a run.
    pub execution_id: uuid::Uuid,
    /// When it was recorded: decides the period and the week it counts in.
    pub recorded_at: DateTime<Utc>,
}

/// Executions that need a person: counted over the same period, so that the
/// report shows next to the business figures what is stuck or broken.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExecutionCounts {
    /// Paused at a review step, waiting for someone to approve or reject.
    pub waiting_for_review: u64,
    /// Ended in failure.
    pub failed: u64,
    /// Started but never finished (e.g. interrupted and not resumed).
    pub incomplete: u64,
}

/// What to report on: the period `[since, until)` and optionally one
/// scenario. Kept apart from the events so the same filter is applied here
/// whatever the caller already filtered.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// First instant of the period (inclusive).
    pub since: DateTime<Utc>,
    /// End of the period (exclusive).
    pub until: DateTime<Utc>,
    /// Only events of this scenario when set; all scenarios otherwise.
    pub scenario: Option<String>,
}

/// The computed report: the request it answers, totals over the period and
/// one entry per week, in the shape the renderers and the JSON output use.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// First instant of the period (inclusive).
    pub since: DateTime<Utc>,
    /// End of the period (exclusive).
    pub until: DateTime<Utc>,
    /// The scenario reported on, `None` for all.
    pub scenario: Option<String>,
    /// Figures over the whole period.
    pub totals: Totals,
    /// One entry per ISO week touching the period, oldest first.
    pub weeks: Vec<Week>,
}

/// Figures over the whole period: what an ops person checks first.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    /// `enrolled` events.
    pub enrolments: u64,
    /// `referred` events.
    pub referred: u64,
    /// `qualified` events.
    pub qualified: u64,
    /// `qualified / referred` over the period; `None` when nothing was
    /// referred (a rate of nothing is not 0%).
    pub qualification_rate: Option<f64>,
    /// `reward_issued` events.
    pub rewards_issued: u64,
    /// Sum of the values of `reward_issued` events (missing or non-finite
    /// values count as 0).
    pub rewards_value: f64,
    /// Median, over the keys having both a `referred` and a `qualified`
    /// event in the period, of the hours between the two; `None` when there
    /// is no such pair.
    pub median_hours_to_qualify: Option<f64>,
    /// Executions waiting for a review.
    pub waiting_for_review: u64,
    /// Executions that failed.
    pub failed: u64,
    /// Executions that did not finish.
    pub incomplete: u64,
}

/// The figures of one ISO week (Monday to Sunday, UTC), for trends.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Week {
    /// The Monday the week starts on.
    pub week_start: NaiveDate,
    /// `enrolled` events of the week.
    pub enrolments: u64,
    /// `referred` events of the week.
    pub referred: u64,
    /// `qualified` events of the week.
    pub qualified: u64,
    /// `reward_issued` events of the week.
    pub rewards_issued: u64,
    /// Sum of the reward values of the week.
    pub rewards_value: f64,
}

impl Week {
    fn empty(week_start: NaiveDate) -> Self {
        Week {
            week_start,
            enrolments: 0,
            referred: 0,
            qualified: 0,
            rewards_issued: 0,
            rewards_value: 0.0,
        }
    }
}

/// Computes the report of `request` from `events` and `counts`.
///
/// Events outside `[since, until)`, of another scenario (when the request
/// names one) or with another name than the four known ones are ignored, even
/// if the caller already filtered: the report must not depend on how the
/// caller read the store. The weekly series has an entry for every week from
/// the week of `since` to the week of the period's last instant, zeros
/// included, so gaps are visible; an empty period (`until <= since`) has no
/// weeks.
pub fn build(request: &ReportRequest, events: &[BusinessEvent], counts: ExecutionCounts) -> Report {
    let mut weeks: BTreeMap<NaiveDate, Week> = week_starts(request.since, request.until)
        .into_iter()
        .map(|start| (start, Week::empty(start)))
        .collect();
    let mut totals = Totals {
        waiting_for_review: counts.waiting_for_review,
        failed: counts.failed,
        incomplete: counts.incomplete,
        ..Totals::default()
    };
    let mut referred_at: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut qualified_at: HashMap<&str, DateTime<Utc>> = HashMap::new();

    let in_request = |e: &&BusinessEvent| {
        e.recorded_at >= request.since
            && e.recorded_at < request.until
            && request.scenario.as_ref().is_none_or(|s| *s == e.scenario)
    };
    for e in events.iter().filter(in_request) {
        // Every event in the period falls in one of the weeks built above;
        // inserting a missing week only keeps the series summing to the
        // totals should that ever change.
        let start = week_start(e.recorded_at.date_naive());
        let week = weeks.entry(start).or_insert_with(|| Week::empty(start));
        match e.event.as_str() {
            ENROLLED => {
                totals.enrolments += 1;
                week.enrolments += 1;
            }
            REFERRED => {
                totals.referred += 1;
                week.referred += 1;
                keep_earliest(&mut referred_at, &e.key, e.recorded_at);
            }
            QUALIFIED => {
                totals.qualified += 1;
                week.qualified += 1;
                keep_earliest(&mut qualified_at, &e.key, e.recorded_at);
            }
            REWARD_ISSUED => {
                let value = e.value.filter(|v| v.is_finite()).unwrap_or(0.0);
                totals.rewards_issued += 1;
                totals.rewards_value += value;
                week.rewards_issued += 1;
                week.rewards_value += value;
            }
            _ => {}
        }
    }

    totals.qualification_rate =
        (totals.referred > 0).then(|| totals.qualified as f64 / totals.referred as f64);
    let hours: Vec<f64> = referred_at
        .iter()
        .filter_map(|(key, referred)| {
            let qualified = qualified_at.get(key)?;
            Some((*qualified - *referred).num_milliseconds() as f64 / 3_600_000.0)
        })
        .collect();
    totals.median_hours_to_qualify = median(hours);

    Report {
        since: request.since,
        until: request.until,
        scenario: request.scenario.clone(),
        totals,
        weeks: weeks.into_values().collect(),
    }
}

/// `(event, key)` is unique in the store; should a caller pass duplicates
/// anyway, the first occurrence is the one that happened.
fn keep_earliest<'a>(map: &mut HashMap<&'a str, DateTime<Utc>>, key: &'a str, at: DateTime<Utc>) {
    map.entry(key)
        .and_modify(|t| *t = (*t).min(at))
        .or_insert(at);
}

/// The Monday of the ISO week holding `date`.
fn week_start(date: NaiveDate) -> NaiveDate {
    let back = Days::new(u64::from(date.weekday().num_days_from_monday()));
    // Only fails at the very first representable date, which has no Monday
    // before it; that date then stands for its week.
    date.checked_sub_days(back).unwrap_or(date)
}

/// The Mondays of every week from the week of `since` to the week of the
/// last instant before `until`, oldest first.
fn week_starts(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<NaiveDate> {
    if until <= since {
        return Vec::new();
    }
    // `until` is exclusive: a period ending on Monday 00:00 does not reach
    // into that Monday's week.
    let until_day = until.date_naive();
    let last_day = if until.time() == chrono::NaiveTime::MIN {
        until_day.pred_opt().unwrap_or(until_day)
    } else {
        until_day
    };
    let last = week_start(last_day.max(since.date_naive()));
    let mut starts = Vec::new();
    let mut current = week_start(since.date_naive());
    while current <= last {
        starts.push(current);
        match current.checked_add_days(Days::new(7)) {
            Some(next) => current = next,
            None => break,
        }
    }
    starts
}

/// The median of `values`: the middle one, or the mean of the two middle
/// ones when their number is even; `None` when there are none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values.get(n / 2 - 1)? + values.get(n / 2)?) / 2.0),
    }
}

#[cfg(test)]
pub(crate) mod tests;
