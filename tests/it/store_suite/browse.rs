//! What people browse: business keys, keyset pages, filters by time and key,
//! scenario activity and kept versions.

use chrono::Duration;
use scenarist::engine::ExecutionStatus;
use scenarist::store::{Admission, Cursor, ExecutionFilter, Store};

use super::{execution_in, ids, new_execution, now, unique, Past};

/// Keys written with `start_execution` and with `enqueue` are listed with
/// the execution, shown by `execution`, and found by value, newest first.
pub(super) async fn business_keys_are_kept_and_searchable(store: &dyn Store) {
    let scenario = unique("keys");
    let lead = format!("{}@bigco.example", unique("lee"));
    let t0 = now() - Duration::minutes(10);
    let mut started = new_execution(&scenario, t0);
    started.keys = vec![
        ("lead".to_owned(), lead.clone()),
        ("deal".to_owned(), "D-1".to_owned()),
    ];
    let first = started.id;
    store.start_execution(started).await.unwrap();
    let mut queued = new_execution(&scenario, t0 + Duration::seconds(1));
    // The same value under two names: listed once.
    queued.keys = vec![
        ("lead".to_owned(), lead.clone()),
        ("referrer".to_owned(), lead.clone()),
    ];
    let second = queued.id;
    store
        .enqueue(queued, Admission::default(), t0 + Duration::seconds(1))
        .await
        .unwrap();
    let mut other = new_execution(&scenario, t0 + Duration::seconds(2));
    other.keys = vec![("lead".to_owned(), format!("not-{lead}"))];
    store.start_execution(other).await.unwrap();

    let by_key = ExecutionFilter {
        key: Some(lead.clone()),
        ..ExecutionFilter::default()
    };
    let found = store.list(&by_key).await.unwrap();
    assert_eq!(ids(&found), vec![second, first], "newest first, once each");
    assert_eq!(found[1].keys.get("lead"), Some(&lead));
    assert_eq!(found[1].keys.get("deal").map(String::as_str), Some("D-1"));
    assert_eq!(found[0].keys.len(), 2, "{:?}", found[0].keys);
    let shown = store.execution(first).await.unwrap().unwrap();
    assert_eq!(shown.summary.keys.get("lead"), Some(&lead));

    let queued_only = ExecutionFilter {
        key: Some(lead.clone()),
        status: Some(ExecutionStatus::Queued),
        ..ExecutionFilter::default()
    };
    assert_eq!(ids(&store.list(&queued_only).await.unwrap()), vec![second]);
    let none = ExecutionFilter {
        key: Some(format!("{lead}.nobody")),
        ..ExecutionFilter::default()
    };
    assert!(store.list(&none).await.unwrap().is_empty());
    // Without a key filter, keys still come with each row.
    let all = ExecutionFilter {
        scenario: Some(scenario),
        ..ExecutionFilter::default()
    };
    let rows = store.list(&all).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.keys.contains_key("lead")), "{rows:?}");
}

/// Pages follow each other by position: no row twice, none missed, even
/// with several executions started at the same microsecond; `until` and
/// `since` bound the start time; the key filter pages the same way.
pub(super) async fn keyset_pages_cover_every_execution_once(store: &dyn Store) {
    let scenario = unique("pages");
    let key = unique("k");
    let mut past = Past::days_ago(300);
    let mut made = Vec::new();
    for i in 0..7 {
        // Pairs share a start time: the id breaks the tie.
        let (_, at) = if i % 2 == 0 {
            past.next()
        } else {
            (uuid::Uuid::nil(), made_time(&made))
        };
        let mut new = new_execution(&scenario, at);
        new.keys = vec![("lead".to_owned(), key.clone())];
        made.push((new.id, at));
        store.start_execution(new).await.unwrap();
    }
    made.sort_by_key(|m| std::cmp::Reverse((m.1, m.0)));
    let newest_first: Vec<uuid::Uuid> = made.iter().map(|m| m.0).collect();
    for by_key in [false, true] {
        let mut filter = ExecutionFilter {
            scenario: (!by_key).then(|| scenario.clone()),
            key: by_key.then(|| key.clone()),
            limit: Some(3),
            ..ExecutionFilter::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = store.list(&filter).await.unwrap();
            assert!(page.len() <= 3);
            seen.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == 3 => filter.after = Some(Cursor::of(last)),
                _ => break,
            }
        }
        assert_eq!(seen, newest_first, "by key: {by_key}");
    }
    let (oldest, newest) = (made[6].1, made[0].1);
    let window = ExecutionFilter {
        scenario: Some(scenario.clone()),
        since: Some(oldest + Duration::microseconds(1)),
        until: Some(newest),
        ..ExecutionFilter::default()
    };
    let inside = ids(&store.list(&window).await.unwrap());
    let want: Vec<uuid::Uuid> = made
        .iter()
        .filter(|m| m.1 > oldest && m.1 < newest)
        .map(|m| m.0)
        .collect();
    assert_eq!(want.len(), 4);
    assert_eq!(inside, want, "since is inclusive, until exclusive");
}

/// The start time of the last execution made (to make a tie), or now.
fn made_time(
    made: &[(uuid::Uuid, chrono::DateTime<chrono::Utc>)],
) -> chrono::DateTime<chrono::Utc> {
    made.last().map(|m| m.1).unwrap_or_else(now)
}

/// Per scenario: the last start (however old) and the period's counts by status.
pub(super) async fn activity_counts_recent_executions_by_status(store: &dyn Store) {
    let (busy, old) = (unique("busy"), unique("old"));
    let t = now() - Duration::hours(2);
    execution_in(store, &busy, t, ExecutionStatus::Succeeded).await;
    execution_in(
        store,
        &busy,
        t + Duration::seconds(1),
        ExecutionStatus::Succeeded,
    )
    .await;
    execution_in(
        store,
        &busy,
        t + Duration::seconds(2),
        ExecutionStatus::Failed,
    )
    .await;
    let long_ago = now() - Duration::days(40);
    execution_in(store, &old, long_ago, ExecutionStatus::Succeeded).await;

    let never = unique("never");
    let names = [busy.clone(), old.clone(), never.clone()];
    let activity = store
        .activity(&names, now() - Duration::days(7))
        .await
        .unwrap();
    let order: Vec<&str> = activity.iter().map(|a| a.scenario.as_str()).collect();
    assert_eq!(
        order,
        [busy.as_str(), old.as_str(), never.as_str()],
        "in the order asked"
    );
    assert_eq!(activity[2].last_started, None, "a scenario that never ran");
    assert!(activity[2].counts.is_empty());
    let of = |name: &str| activity.iter().find(|a| a.scenario == name).cloned();
    let busy_row = of(&busy).expect("busy scenario listed");
    assert_eq!(busy_row.counts.get("succeeded"), Some(&2));
    assert_eq!(busy_row.counts.get("failed"), Some(&1));
    assert_eq!(busy_row.last_started, Some(t + Duration::seconds(2)));
    let old_row = of(&old).expect("a scenario with only old executions is listed");
    assert!(old_row.counts.is_empty(), "{:?}", old_row.counts);
    assert_eq!(old_row.last_started, Some(long_ago));
}

/// Versions newest first, each once.
pub(super) async fn versions_are_listed_newest_first(store: &dyn Store) {
    let scenario = unique("versions");
    store
        .save_version(&scenario, "v-a", "name: a\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    store
        .save_version(&scenario, "v-b", "name: b\n")
        .await
        .unwrap();
    store
        .save_version(&scenario, "v-a", "name: a\n")
        .await
        .unwrap();
    let versions = store.versions(&scenario).await.unwrap();
    let names: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, ["v-b", "v-a"]);
    assert!(versions[0].saved_at >= versions[1].saved_at);
    assert!(store.versions(&unique("none")).await.unwrap().is_empty());
}
