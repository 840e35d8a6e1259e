use super::*;

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test timestamp")
}

pub(crate) fn ev(
    event: &str,
    key: &str,
    value: Option<f64>,
    scenario: &str,
    when: &str,
) -> BusinessEvent {
    BusinessEvent {
        event: event.to_owned(),
        key: key.to_owned(),
        value,
        scenario: scenario.to_owned(),
        execution_id: uuid::Uuid::nil(),
        recorded_at: at(when),
    }
}

pub(crate) fn request(since: &str, until: &str, scenario: Option<&str>) -> ReportRequest {
    ReportRequest {
        since: at(since),
        until: at(until),
        scenario: scenario.map(str::to_owned),
    }
}

/// Three weeks of one programme: 4 enrolled, 3 referred, 2 qualified,
/// 2 rewards worth 150, plus an event name the report does not know.
pub(crate) fn fixture() -> Vec<BusinessEvent> {
    vec![
        ev("enrolled", "ann@x", None, "ref", "2026-11-04T09:00:00Z"),
        ev("enrolled", "bob@x", None, "ref", "2026-11-05T09:00:00Z"),
        ev("enrolled", "cat@x", None, "ref", "2026-11-17T09:00:00Z"),
        ev("enrolled", "dan@x", None, "ref", "2026-11-18T09:00:00Z"),
        ev("referred", "r1@x", None, "ref", "2026-11-04T10:00:00Z"),
        ev("referred", "r2@x", None, "ref", "2026-11-05T10:00:00Z"),
        ev("referred", "r3@x", None, "ref", "2026-11-17T10:00:00Z"),
        ev("qualified", "r1@x", None, "ref", "2026-11-04T20:00:00Z"),
        ev("qualified", "r2@x", None, "ref", "2026-11-17T10:00:00Z"),
        ev(
            "reward_issued",
            "r1@x",
            Some(50.0),
            "ref",
            "2026-11-05T12:00:00Z",
        ),
        ev(
            "reward_issued",
            "r2@x",
            Some(100.0),
            "ref",
            "2026-11-18T12:00:00Z",
        ),
        ev(
            "newsletter_sent",
            "ann@x",
            Some(1.0),
            "ref",
            "2026-11-06T12:00:00Z",
        ),
    ]
}

fn counts() -> ExecutionCounts {
    ExecutionCounts {
        waiting_for_review: 2,
        failed: 1,
        incomplete: 3,
    }
}

#[test]
fn totals_and_rate_on_a_small_fixture() {
    let req = request("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", None);
    let report = build(&req, &fixture(), counts());
    let t = &report.totals;
    assert_eq!(
        (t.enrolments, t.referred, t.qualified, t.rewards_issued),
        (4, 3, 2, 2)
    );
    assert_eq!(t.rewards_value, 150.0);
    assert_eq!(t.qualification_rate, Some(2.0 / 3.0));
    assert_eq!((t.waiting_for_review, t.failed, t.incomplete), (2, 1, 3));
    assert_eq!(report.since, req.since);
    assert_eq!(report.until, req.until);
    assert_eq!(report.scenario, None);
}

#[test]
fn rate_is_none_without_referrals() {
    let req = request("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", None);
    let events = vec![ev("qualified", "r1@x", None, "ref", "2026-11-04T20:00:00Z")];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.qualified, 1);
    assert_eq!(report.totals.qualification_rate, None);
    assert_eq!(report.totals.median_hours_to_qualify, None);
}

#[test]
fn events_outside_the_period_or_of_another_scenario_are_ignored() {
    let req = request("2026-11-04T00:00:00Z", "2026-11-11T00:00:00Z", Some("ref"));
    let events = vec![
        ev("referred", "in@x", None, "ref", "2026-11-04T00:00:00Z"),
        ev("referred", "before@x", None, "ref", "2026-11-03T23:59:59Z"),
        ev(
            "referred",
            "at-until@x",
            None,
            "ref",
            "2026-11-11T00:00:00Z",
        ),
        ev("referred", "other@x", None, "other", "2026-11-05T00:00:00Z"),
        ev(
            "reward_issued",
            "other@x",
            Some(10.0),
            "other",
            "2026-11-05T00:00:00Z",
        ),
        ev(
            "reward_issued",
            "in@x",
            Some(5.0),
            "ref",
            "2026-11-10T23:59:59Z",
        ),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.referred, 1);
    assert_eq!(report.totals.rewards_issued, 1);
    assert_eq!(report.totals.rewards_value, 5.0);
    assert_eq!(report.scenario.as_deref(), Some("ref"));
    let weekly: u64 = report.weeks.iter().map(|w| w.referred).sum();
    assert_eq!(weekly, 1);

    let all = build(
        &request("2026-11-04T00:00:00Z", "2026-11-11T00:00:00Z", None),
        &events,
        ExecutionCounts::default(),
    );
    assert_eq!(all.totals.referred, 2);
    assert_eq!(all.totals.rewards_value, 15.0);
}

#[test]
fn median_with_an_odd_number_of_pairs() {
    let req = request("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", None);
    let events = vec![
        ev("referred", "a", None, "s", "2026-11-02T00:00:00Z"),
        ev("qualified", "a", None, "s", "2026-11-02T10:00:00Z"), // 10 h
        ev("referred", "b", None, "s", "2026-11-03T00:00:00Z"),
        ev("qualified", "b", None, "s", "2026-11-04T00:00:00Z"), // 24 h
        ev("referred", "c", None, "s", "2026-11-05T00:00:00Z"),
        ev("qualified", "c", None, "s", "2026-11-05T02:30:00Z"), // 2.5 h
        ev("referred", "unpaired", None, "s", "2026-11-05T00:00:00Z"),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.median_hours_to_qualify, Some(10.0));
}

#[test]
fn median_with_an_even_number_of_pairs() {
    let req = request("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", None);
    let events = vec![
        ev("qualified", "b", None, "s", "2026-11-04T00:00:00Z"), // 24 h, listed first
        ev("referred", "a", None, "s", "2026-11-02T00:00:00Z"),
        ev("qualified", "a", None, "s", "2026-11-02T10:00:00Z"), // 10 h
        ev("referred", "b", None, "s", "2026-11-03T00:00:00Z"),
        ev("referred", "c", None, "s", "2026-11-05T00:00:00Z"),
        ev("qualified", "c", None, "s", "2026-11-05T02:30:00Z"), // 2.5 h
        ev("referred", "d", None, "s", "2026-11-06T00:00:00Z"),
        ev("qualified", "d", None, "s", "2026-11-08T00:00:00Z"), // 48 h
        ev("qualified", "lone", None, "s", "2026-11-08T00:00:00Z"),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.median_hours_to_qualify, Some(17.0));
}

#[test]
fn median_ignores_pairs_referred_before_the_period() {
    let req = request("2026-11-04T00:00:00Z", "2026-12-01T00:00:00Z", None);
    let events = vec![
        ev("referred", "old", None, "s", "2026-10-01T00:00:00Z"),
        ev("qualified", "old", None, "s", "2026-11-05T00:00:00Z"),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.median_hours_to_qualify, None);
    assert_eq!(report.totals.qualified, 1);
}

#[test]
fn a_duplicated_event_pairs_from_its_earliest_occurrence() {
    let req = request("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", None);
    let events = vec![
        ev("referred", "a", None, "s", "2026-11-02T06:00:00Z"),
        ev("referred", "a", None, "s", "2026-11-02T00:00:00Z"),
        ev("qualified", "a", None, "s", "2026-11-02T12:00:00Z"),
        ev("qualified", "a", None, "s", "2026-11-02T10:00:00Z"),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.median_hours_to_qualify, Some(10.0));
}

#[test]
fn weeks_start_on_monday_and_empty_weeks_are_zeros() {
    // 2026-11-04 is a Wednesday; 2026-11-25 a Wednesday three weeks on.
    let req = request("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", None);
    let report = build(&req, &fixture(), ExecutionCounts::default());
    let starts: Vec<String> = report
        .weeks
        .iter()
        .map(|w| w.week_start.to_string())
        .collect();
    assert_eq!(
        starts,
        ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    );
    for w in &report.weeks {
        assert_eq!(w.week_start.weekday(), chrono::Weekday::Mon);
    }
    let first = &report.weeks[0];
    assert_eq!(
        (
            first.enrolments,
            first.referred,
            first.qualified,
            first.rewards_issued
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(first.rewards_value, 50.0);
    assert_eq!(report.weeks[1], Week::empty(report.weeks[1].week_start));
    let third = &report.weeks[2];
    assert_eq!(
        (
            third.enrolments,
            third.referred,
            third.qualified,
            third.rewards_issued
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(third.rewards_value, 100.0);
    assert_eq!(report.weeks[3], Week::empty(report.weeks[3].week_start));
}

#[test]
fn a_period_ending_at_monday_midnight_stops_at_the_week_before() {
    let req = request("2026-11-02T00:00:00Z", "2026-11-16T00:00:00Z", None);
    let report = build(&req, &[], ExecutionCounts::default());
    let starts: Vec<String> = report
        .weeks
        .iter()
        .map(|w| w.week_start.to_string())
        .collect();
    assert_eq!(starts, ["2026-11-02", "2026-11-09"]);
}

#[test]
fn an_empty_period_has_no_weeks_and_a_short_one_has_one() {
    let empty = request("2026-11-04T00:00:00Z", "2026-11-04T00:00:00Z", None);
    assert!(build(&empty, &fixture(), ExecutionCounts::default())
        .weeks
        .is_empty());
    let reversed = request("2026-11-25T00:00:00Z", "2026-11-04T00:00:00Z", None);
    let report = build(&reversed, &fixture(), ExecutionCounts::default());
    assert!(report.weeks.is_empty());
    assert_eq!(report.totals.enrolments, 0);
    let short = request("2026-11-04T08:00:00Z", "2026-11-04T09:30:00Z", None);
    let report = build(&short, &fixture(), ExecutionCounts::default());
    assert_eq!(report.weeks.len(), 1);
    assert_eq!(report.weeks[0].enrolments, 1);
}

#[test]
fn reward_values_that_are_missing_or_not_finite_count_as_zero() {
    let req = request("2026-11-04T00:00:00Z", "2026-11-11T00:00:00Z", None);
    let events = vec![
        ev("reward_issued", "a", None, "s", "2026-11-04T01:00:00Z"),
        ev(
            "reward_issued",
            "b",
            Some(f64::NAN),
            "s",
            "2026-11-04T02:00:00Z",
        ),
        ev(
            "reward_issued",
            "c",
            Some(f64::INFINITY),
            "s",
            "2026-11-04T03:00:00Z",
        ),
        ev(
            "reward_issued",
            "d",
            Some(25.5),
            "s",
            "2026-11-04T04:00:00Z",
        ),
    ];
    let report = build(&req, &events, ExecutionCounts::default());
    assert_eq!(report.totals.rewards_issued, 4);
    assert_eq!(report.totals.rewards_value, 25.5);
    assert_eq!(report.weeks[0].rewards_value, 25.5);
}
