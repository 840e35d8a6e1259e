//! Which items of a poll's answer are new: pure functions of what the
//! answer holds and where the watch stands (its cursor date and its window
//! of ids already run), so that they are tested without a server.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::plan::PollStart;
use crate::store::Seen;

/// Ids a watch remembers at most, newest kept: enough for any page size an
/// API gives and for the items that share the cursor's date.
pub const WINDOW: usize = 10_000;

/// One item of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    pub date: Option<Value>,
    pub item: Value,
}

/// How the selection is made.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Set when the watch starts (or starts again): `now` runs nothing.
    pub seeding: Option<PollStart>,
    pub changes: bool,
    pub max_items: usize,
}

/// What a poll runs, and where the watch then stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub run: Vec<Found>,
    pub cursor_date: Option<Value>,
    pub seen: Vec<Seen>,
}

/// Picks the new items of `found` (in the answer's order, or by date when
/// items have one), at most `max_items`, and moves the window and the cursor
/// over exactly those: what is left runs on the next poll.
pub fn select(
    found: Vec<Found>,
    seen: &[Seen],
    cursor_date: Option<&Value>,
    rules: Rules,
) -> Selection {
    let (mut seen, mut cursor_date): (Vec<Seen>, Option<Value>) = match rules.seeding {
        None => (seen.to_vec(), cursor_date.cloned()),
        Some(PollStart::At(t)) => (
            Vec::new(),
            Some(Value::String(
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )),
        ),
        Some(_) => (Vec::new(), None),
    };
    // An id twice in one answer (pages that moved under us) counts once: the last.
    let mut unique: Vec<Found> = Vec::with_capacity(found.len());
    let mut at: HashMap<String, usize> = HashMap::with_capacity(found.len());
    for item in found {
        match at.get(&item.id) {
            Some(&i) => unique[i] = item,
            None => {
                at.insert(item.id.clone(), unique.len());
                unique.push(item);
            }
        }
    }
    if rules.seeding == Some(PollStart::Now) {
        for f in &unique {
            cursor_date = later(cursor_date, f.date.as_ref());
        }
        remember(&mut seen, &unique);
        return Selection {
            run: Vec::new(),
            cursor_date,
            seen,
        };
    }
    let known: HashMap<&str, &Option<Value>> =
        seen.iter().map(|(id, date)| (id.as_str(), date)).collect();
    let mut new: Vec<Found> = unique
        .into_iter()
        .filter(|f| {
            match known.get(f.id.as_str()).map(|date| (&f.id, *date)) {
                Some((_, before)) => {
                    rules.changes
                        && matches!((&f.date, before), (Some(now), Some(then)) if compare(now, then) == Ordering::Greater)
                }
                None => match (&f.date, &cursor_date) {
                    (Some(date), Some(cursor)) => compare(date, cursor) != Ordering::Less,
                    _ => true,
                },
            }
        })
        .collect();
    if new.iter().all(|f| f.date.is_some()) {
        new.sort_by(|a, b| {
            compare(
                a.date.as_ref().unwrap_or(&Value::Null),
                b.date.as_ref().unwrap_or(&Value::Null),
            )
        });
    }
    drop(known);
    new.truncate(rules.max_items);
    for f in &new {
        cursor_date = later(cursor_date, f.date.as_ref());
    }
    remember(&mut seen, &new);
    Selection {
        run: new,
        cursor_date,
        seen,
    }
}

/// Puts `found` at the window's newest end (moving ids seen before), and
/// keeps the newest [`WINDOW`]; linear in the window and the items.
fn remember(seen: &mut Vec<Seen>, found: &[Found]) {
    let moved: HashSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
    seen.retain(|(id, _)| !moved.contains(id.as_str()));
    seen.extend(found.iter().map(|f| (f.id.clone(), f.date.clone())));
    if seen.len() > WINDOW {
        seen.drain(..seen.len() - WINDOW);
    }
}

fn later(current: Option<Value>, date: Option<&Value>) -> Option<Value> {
    match (current, date) {
        (Some(c), Some(d)) if compare(d, &c) == Ordering::Greater => Some(d.clone()),
        (None, Some(d)) => Some(d.clone()),
        (current, _) => current,
    }
}

/// Microseconds since the epoch of a date: Unix seconds (milliseconds when
/// too large for seconds), as a number or a numeric string, or RFC 3339.
fn instant(value: &Value) -> Option<f64> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return chrono::DateTime::parse_from_rfc3339(s.trim())
                    .ok()
                    .map(|t| t.timestamp_micros() as f64)
            }
        },
        _ => None,
    }?;
    Some(if number.abs() >= 1e11 {
        number * 1e3
    } else {
        number * 1e6
    })
}

/// Dates compared as instants when both read as one, else as text.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => text(a).cmp(&text(b)),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn found(id: &str, date: i64) -> Found {
        Found {
            id: id.to_owned(),
            date: Some(json!(date)),
            item: json!({ "id": id, "created": date }),
        }
    }

    fn rules(seeding: Option<PollStart>, changes: bool) -> Rules {
        Rules {
            seeding,
            changes,
            max_items: 1000,
        }
    }

    fn ids(selection: &Selection) -> Vec<&str> {
        selection.run.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn start_now_remembers_everything_and_runs_nothing() {
        let s = select(
            vec![found("a", 10), found("b", 20)],
            &[],
            None,
            rules(Some(PollStart::Now), false),
        );
        assert!(s.run.is_empty());
        assert_eq!(s.cursor_date, Some(json!(20)));
        assert_eq!(s.seen.len(), 2);
        let next = select(
            vec![found("a", 10), found("b", 20), found("c", 30)],
            &s.seen,
            s.cursor_date.as_ref(),
            rules(None, false),
        );
        assert_eq!(ids(&next), ["c"]);
        assert_eq!(next.cursor_date, Some(json!(30)));
    }

    #[test]
    fn start_all_runs_everything_oldest_first_at_most_max_items() {
        let rules = Rules {
            seeding: Some(PollStart::All),
            changes: false,
            max_items: 2,
        };
        let s = select(
            vec![found("c", 30), found("a", 10), found("b", 20)],
            &[],
            None,
            rules,
        );
        assert_eq!(ids(&s), ["a", "b"]);
        assert_eq!(s.cursor_date, Some(json!(20)));
        let rest = select(
            vec![found("c", 30), found("a", 10), found("b", 20)],
            &s.seen,
            s.cursor_date.as_ref(),
            Rules {
                seeding: None,
                ..rules
            },
        );
        assert_eq!(ids(&rest), ["c"]);
    }

    #[test]
    fn a_start_time_skips_older_items() {
        let t = chrono::DateTime::from_timestamp(15, 0).unwrap();
        let s = select(
            vec![found("a", 10), found("b", 20)],
            &[],
            None,
            rules(Some(PollStart::At(t)), false),
        );
        assert_eq!(ids(&s), ["b"]);
    }

    #[test]
    fn changes_run_a_later_date_again_and_only_then() {
        let first = select(
            vec![found("a", 10)],
            &[],
            None,
            rules(Some(PollStart::All), true),
        );
        assert_eq!(ids(&first), ["a"]);
        let same = select(
            vec![found("a", 10)],
            &first.seen,
            first.cursor_date.as_ref(),
            rules(None, true),
        );
        assert!(same.run.is_empty());
        let updated = select(
            vec![found("a", 12)],
            &first.seen,
            first.cursor_date.as_ref(),
            rules(None, true),
        );
        assert_eq!(ids(&updated), ["a"]);
        let off = select(
            vec![found("a", 12)],
            &first.seen,
            first.cursor_date.as_ref(),
            rules(None, false),
        );
        assert!(off.run.is_empty());
    }

    #[test]
    fn items_without_dates_are_told_apart_by_the_window_alone() {
        let item = |id: &str| Found {
            id: id.to_owned(),
            date: None,
            item: json!({}),
        };
        let s = select(
            vec![item("x"), item("y"), item("x")],
            &[("y".to_owned(), None)],
            None,
            rules(None, false),
        );
        assert_eq!(ids(&s), ["x"]);
    }

    #[test]
    fn dates_compare_as_instants_across_forms() {
        assert_eq!(
            compare(&json!("2026-01-01T00:00:01Z"), &json!(1767225600)),
            Ordering::Greater
        );
        assert_eq!(
            compare(&json!(1767225600000_i64), &json!(1767225600)),
            Ordering::Equal
        );
        assert_eq!(
            compare(
                &json!("2026-01-01T01:00:00+01:00"),
                &json!("2026-01-01T00:00:00Z")
            ),
            Ordering::Equal
        );
    }
}
