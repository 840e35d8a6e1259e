//! Schedules: each tick is committed with a unique key (scenario, scheduled
//! time) together with its execution, so a tick never fires twice, across
//! restarts and across processes sharing a store. After downtime `catch_up`
//! decides about the ticks that were missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Served, Shared};
use crate::model::CatchUp;
use crate::plan::ScheduleTrigger;
use crate::store::{Admission, Enqueued, NewExecution};

/// At most this many missed ticks are fired by `catch_up: all`.
const MAX_CATCH_UP: usize = 1000;

/// The first tick strictly after `after`.
pub fn next_tick(schedule: &ScheduleTrigger, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(after)
}

/// The ticks a stopped daemon missed, after `last` and up to `now`, as `catch_up` says.
pub fn missed_ticks(
    schedule: &ScheduleTrigger,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut missed = Vec::new();
    let mut at = last;
    while let Some(next) = next_tick(schedule, at) {
        if next > now {
            break;
        }
        missed.push(next);
        if missed.len() > MAX_CATCH_UP {
            missed.remove(0);
        }
        at = next;
    }
    match schedule.catch_up {
        CatchUp::None => Vec::new(),
        CatchUp::Last => missed.pop().into_iter().collect(),
        CatchUp::All => missed,
    }
}

pub(super) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    // Per scenario: the version whose schedule is followed, and its next tick.
    let mut next: HashMap<String, (String, DateTime<Utc>)> = HashMap::new();
    loop {
        let scenarios = shared.scenarios();
        let now = Utc::now();
        next.retain(|name, _| scenarios.by_name.contains_key(name));
        for served in scenarios.by_name.values() {
            let Some(schedule) = &served.plan.schedule else {
                next.remove(&served.plan.name);
                continue;
            };
            let name = &served.plan.name;
            match next.get(name) {
                Some((version, _)) if *version == served.plan.version => {}
                _ => {
                    // New, or edited: catch up from the last recorded tick, then follow.
                    if let Ok(Some(last)) = shared.store.last_tick(name).await {
                        for tick in missed_ticks(schedule, last, now) {
                            fire(&shared, served, tick).await;
                        }
                    }
                    if let Some(tick) = next_tick(schedule, now) {
                        next.insert(name.clone(), (served.plan.version.clone(), tick));
                    }
                }
            }
            if let Some((_, tick)) = next.get(name).cloned() {
                if tick <= now {
                    fire(&shared, served, tick).await;
                    if let Some(following) = next_tick(schedule, now) {
                        next.insert(name.clone(), (served.plan.version.clone(), following));
                    }
                }
            }
        }
        let soonest = next.values().map(|(_, t)| *t).min();
        let wait = soonest
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(5), Duration::from_millis(500));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// Queues the execution of one tick (once, whoever else tries).
async fn fire(shared: &Shared, served: &Served, scheduled_at: DateTime<Utc>) {
    let fired_at = Utc::now();
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let trigger = json!({
        "body": { "scheduled_at": stamp(scheduled_at), "fired_at": stamp(fired_at) },
        "headers": {},
        "query": {},
        "received_at": stamp(fired_at),
    });
    let ctx = super::trigger_context(served, shared.runner.env(), trigger.clone());
    let keys = shared.runner.business_keys(&served.plan, &ctx);
    let new = NewExecution {
        id: Uuid::now_v7(),
        scenario: served.plan.name.clone(),
        version: served.plan.version.clone(),
        trigger,
        vars: Map::new(),
        started_at: fired_at,
        owner: String::new(),
        replay_of: None,
        keys,
    };
    let admission = Admission {
        tick: Some(scheduled_at),
        ..Admission::default()
    };
    match shared.store.enqueue(new, admission, fired_at).await {
        Ok(Enqueued::Accepted(id)) => {
            shared.health.wrote();
            tracing::info!(scenario = %served.plan.name, %scheduled_at, execution = %id, "schedule tick");
            shared
                .metrics
                .schedule_ticks
                .get_or_create(&super::metrics::ScenarioLabels {
                    scenario: served.plan.name.clone(),
                })
                .inc();
            shared.wake.notify_one();
        }
        Ok(Enqueued::Duplicate(_)) => {}
        Err(e) => {
            shared.health.refused(&e);
            tracing::error!(scenario = %served.plan.name, error = %e, "cannot record a schedule tick")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(seconds: u64, catch_up: CatchUp) -> ScheduleTrigger {
        ScheduleTrigger {
            cron: None,
            every: Some(Duration::from_secs(seconds)),
            timezone: chrono_tz::UTC,
            catch_up,
        }
    }

    #[test]
    fn every_ticks_on_multiples_of_the_period() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T10:07:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let next = next_tick(&every(900, CatchUp::Last), t).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-25T10:15:00+00:00");
        assert_eq!(
            next_tick(&every(900, CatchUp::Last), next)
                .unwrap()
                .to_rfc3339(),
            "2026-11-25T10:30:00+00:00"
        );
    }

    #[test]
    fn catch_up_fires_none_the_last_or_all_missed_ticks() {
        let last = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = last + chrono::Duration::seconds(3 * 60 + 10);
        assert!(missed_ticks(&every(60, CatchUp::None), last, now).is_empty());
        let only_last = missed_ticks(&every(60, CatchUp::Last), last, now);
        assert_eq!(only_last, vec![last + chrono::Duration::minutes(3)]);
        let all = missed_ticks(&every(60, CatchUp::All), last, now);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn cron_follows_the_time_zone_across_daylight_saving() {
        let schedule = ScheduleTrigger {
            cron: Some("0 9 * * *".parse::<croner::Cron>().unwrap()),
            every: None,
            timezone: chrono_tz::Europe::Paris,
            catch_up: CatchUp::Last,
        };
        // Paris leaves summer time on 2026-10-25: 09:00 is 07:00 UTC before, 08:00 UTC after.
        let before = DateTime::parse_from_rfc3339("2026-10-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = next_tick(&schedule, before).unwrap();
        let second = next_tick(&schedule, first).unwrap();
        assert_eq!(first.to_rfc3339(), "2026-10-24T07:00:00+00:00");
        assert_eq!(second.to_rfc3339(), "2026-10-25T08:00:00+00:00");
    }
}
