//! Text renderings of a [`Report`]: an aligned table for an ops person at a
//! terminal, pretty JSON for tools, CSV of the weekly series for spreadsheets.
//! This is where figures get rounded; every output ends with a newline.

use std::fmt::Write;

use super::{Report, Totals};

/// The report as plain text for a person: the period, the totals as aligned
/// `label  value` lines, then the weekly series as aligned columns.
/// No colours, so it reads the same in a terminal, a file or an email.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "Referral report, {} to {}",
        report.since.date_naive(),
        report.until.date_naive()
    );
    if let Some(scenario) = &report.scenario {
        let _ = write!(out, ", scenario {}", printable(scenario));
    }
    out.push_str("\n\n");
    out.push_str(&totals_lines(&report.totals));
    out.push('\n');
    if report.weeks.is_empty() {
        out.push_str("No weeks: the period is empty.\n");
        return out;
    }
    let mut rows = vec![[
        "Week",
        "Enrolled",
        "Referred",
        "Qualified",
        "Rewards",
        "Value",
    ]
    .map(str::to_owned)
    .to_vec()];
    for w in &report.weeks {
        rows.push(vec![
            w.week_start.to_string(),
            w.enrolments.to_string(),
            w.referred.to_string(),
            w.qualified.to_string(),
            w.rewards_issued.to_string(),
            money(w.rewards_value),
        ]);
    }
    out.push_str(&columns(&rows));
    out
}

/// The report as pretty JSON: the [`Report`] fields as they are named in
/// Rust (snake_case), instants as RFC 3339 strings, weeks as `YYYY-MM-DD`,
/// nothing rounded, `null` for figures that do not exist.
pub fn json(report: &Report) -> String {
    // Serializing these types cannot fail: no maps, and serde_json writes
    // non-finite numbers as null.
    let mut out = serde_json::to_string_pretty(report).expect("a Report always serializes to JSON");
    out.push('\n');
    out
}

/// The weekly series as CSV, one row per week, oldest first; values are
/// numbers and dates, so nothing needs quoting. Reward values have two
/// decimals, like money.
pub fn csv(report: &Report) -> String {
    let mut out =
        String::from("week_start,enrolments,referred,qualified,rewards_issued,rewards_value\n");
    for w in &report.weeks {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.2}",
            w.week_start, w.enrolments, w.referred, w.qualified, w.rewards_issued, w.rewards_value
        );
    }
    out
}

fn totals_lines(t: &Totals) -> String {
    let lines = [
        ("Enrolments", t.enrolments.to_string()),
        ("Referred", t.referred.to_string()),
        ("Qualified", t.qualified.to_string()),
        ("Qualification rate", rate(t.qualification_rate)),
        (
            "Rewards issued",
            format!("{} ({})", t.rewards_issued, money(t.rewards_value)),
        ),
        (
            "Median time to qualify",
            duration(t.median_hours_to_qualify),
        ),
        ("Waiting for review", t.waiting_for_review.to_string()),
        ("Failed executions", t.failed.to_string()),
        ("Incomplete executions", t.incomplete.to_string()),
    ];
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in lines {
        let _ = writeln!(out, "{label:<width$}  {value}");
    }
    out
}

/// A ratio as a percentage with one decimal, `n/a` when there is none.
fn rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Hours in the unit a person reads best: days from one day on, hours below.
fn duration(hours: Option<f64>) -> String {
    match hours {
        None => "n/a".to_owned(),
        Some(h) if h.abs() >= 24.0 => format!("{:.1} days", h / 24.0),
        Some(h) => format!("{h:.1} hours"),
    }
}

fn money(value: f64) -> String {
    format!("{value:.2}")
}

/// Control characters (e.g. a terminal escape in a scenario name) would
/// garble the table; they are shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Aligned columns, two spaces apart: the first (labels) to the left, the
/// others (numbers) to the right.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(out, "{cell:<width$}");
            } else {
                let _ = write!(out, "  {cell:>width$}");
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{fixture, request};
    use crate::report::{build, ExecutionCounts};

    fn report() -> Report {
        let req = request("2026-11-04T00:00:00Z", "2026-11-25T00:00:00Z", Some("ref"));
        build(
            &req,
            &fixture(),
            ExecutionCounts {
                waiting_for_review: 2,
                failed: 1,
                incomplete: 0,
            },
        )
    }

    fn empty_report() -> Report {
        build(
            &request("2026-11-04T00:00:00Z", "2026-11-11T00:00:00Z", None),
            &[],
            ExecutionCounts::default(),
        )
    }

    /// The value on the line of `label`, or panics naming the label.
    fn value_of<'a>(table: &'a str, label: &str) -> &'a str {
        table
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no line {label:?} in\n{table}"))
            .trim()
    }

    #[test]
    fn table_has_the_period_scenario_and_formatted_totals() {
        let table = table(&report());
        let first = table.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "Referral report, 2026-11-04 to 2026-11-25, scenario ref"
        );
        assert_eq!(value_of(&table, "Qualification rate"), "66.7%");
        assert_eq!(value_of(&table, "Rewards issued"), "2 (150.00)");
        assert_eq!(value_of(&table, "Enrolments"), "4");
        assert_eq!(value_of(&table, "Waiting for review"), "2");
        // Pairs: r1 10 h, r2 12 days (r3 not qualified): median 6.2 days.
        assert_eq!(value_of(&table, "Median time to qualify"), "6.2 days");
        assert!(!table.contains('\u{1b}'), "no ANSI escapes");
    }

    #[test]
    fn table_says_n_a_when_there_is_no_rate_nor_median() {
        let table = table(&empty_report());
        assert_eq!(value_of(&table, "Qualification rate"), "n/a");
        assert_eq!(value_of(&table, "Median time to qualify"), "n/a");
        assert_eq!(value_of(&table, "Rewards issued"), "0 (0.00)");
        assert_eq!(
            table.lines().next(),
            Some("Referral report, 2026-11-04 to 2026-11-11")
        );
    }

    #[test]
    fn table_aligns_totals_values_and_week_columns() {
        let table = table(&report());
        let lines: Vec<&str> = table.lines().collect();
        let value_columns: Vec<usize> = lines[2..11]
            .iter()
            .map(|l| {
                l.find("  ")
                    .map_or(0, |gap| l.len() - l[gap..].trim_start().len())
            })
            .collect();
        assert!(
            value_columns
                .iter()
                .all(|c| *c == value_columns[0] && *c > 0),
            "{table}"
        );
        let weekly: Vec<&str> = lines[12..].to_vec();
        assert_eq!(weekly.len(), 1 + 4, "header and four weeks:\n{table}");
        assert!(weekly[0].starts_with("Week"));
        assert!(weekly[1].starts_with("2026-11-02"));
        assert!(weekly.iter().all(|l| l.len() == weekly[0].len()), "{table}");
        assert!(weekly[1].ends_with("50.00"));
    }

    #[test]
    fn durations_use_days_from_one_day_and_hours_below() {
        assert_eq!(duration(Some(60.0)), "2.5 days");
        assert_eq!(duration(Some(5.0)), "5.0 hours");
        assert_eq!(duration(Some(24.0)), "1.0 days");
        assert_eq!(duration(None), "n/a");
        assert_eq!(rate(Some(1.0)), "100.0%");
        assert_eq!(rate(Some(2.0 / 3.0)), "66.7%");
    }

    #[test]
    fn table_strips_control_characters_from_the_scenario() {
        let mut r = empty_report();
        r.scenario = Some("a\u{1b}[31mb".to_owned());
        assert!(table(&r)
            .lines()
            .next()
            .is_some_and(|l| l.ends_with("scenario a?[31mb")));
    }

    #[test]
    fn csv_has_the_header_and_one_row_per_week() {
        let csv = csv(&report());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "week_start,enrolments,referred,qualified,rewards_issued,rewards_value"
        );
        assert_eq!(lines.len(), 1 + 4);
        assert_eq!(lines[1], "2026-11-02,2,2,1,1,50.00");
        assert_eq!(lines[2], "2026-11-09,0,0,0,0,0.00");
        assert!(lines.iter().all(|l| l.split(',').count() == 6));
        assert!(csv.ends_with('\n'));
    }

    #[test]
    fn json_has_stable_snake_case_fields_and_iso_dates() {
        let value: serde_json::Value = serde_json::from_str(&json(&report())).expect("valid JSON");
        assert_eq!(value["since"], "2026-11-04T00:00:00Z");
        assert_eq!(value["until"], "2026-11-25T00:00:00Z");
        assert_eq!(value["scenario"], "ref");
        assert_eq!(value["weeks"][0]["week_start"], "2026-11-02");
        assert_eq!(value["weeks"][0]["rewards_value"], 50.0);
        let totals = value["totals"].as_object().expect("totals object");
        let keys: Vec<&str> = totals.keys().map(String::as_str).collect();
        let mut expected = vec![
            "enrolments",
            "referred",
            "qualified",
            "qualification_rate",
            "rewards_issued",
            "rewards_value",
            "median_hours_to_qualify",
            "waiting_for_review",
            "failed",
            "incomplete",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(totals["qualification_rate"], 2.0 / 3.0, "not rounded");

        let none: serde_json::Value =
            serde_json::from_str(&json(&empty_report())).expect("valid JSON");
        assert!(none["scenario"].is_null());
        assert!(none["totals"]["qualification_rate"].is_null());
        assert!(none["totals"]["median_hours_to_qualify"].is_null());
    }
}
