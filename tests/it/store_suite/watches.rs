//! Poll triggers' rows: a commit queues its executions with the cursor, and
//! every write goes through the generation it read, so a poll whose watch
//! moved meanwhile (another daemon, a reset) writes nothing at all.

use scenarist::store::{Store, WatchCommit, WatchFailure};
use serde_json::json;

use super::{new_execution, now, unique, Past, OWNER};

pub async fn a_poll_commits_its_executions_with_the_cursor_once(store: &dyn Store) {
    let scenario = unique("watch");
    assert_eq!(store.watch(&scenario).await.unwrap(), None);
    let mut past = Past::days_ago(400);
    let commit = |items: usize, date: i64, past: &mut Past| WatchCommit {
        fingerprint: "f1".to_owned(),
        cursor: json!({ "date": date }),
        seen: (0..items)
            .map(|i| (format!("id-{date}-{i}"), Some(json!(date))))
            .collect(),
        polled_at: now(),
        executions: (0..items)
            .map(|_| {
                let (id, at) = past.next();
                let mut new = new_execution(&scenario, at);
                new.id = id;
                new
            })
            .collect(),
        concurrency_key: None,
        items: items as u64,
    };
    // A first poll creates the row with its executions.
    let first = commit(2, 10, &mut past);
    let ids: Vec<_> = first.executions.iter().map(|e| e.id).collect();
    assert!(store.commit_watch(&scenario, None, first).await.unwrap());
    let state = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!(
        (state.fingerprint.as_str(), state.items, state.last_items),
        ("f1", 2, 2)
    );
    assert_eq!(state.cursor, json!({ "date": 10 }));
    assert_eq!(state.seen.len(), 2);
    for id in &ids {
        let stored = store
            .execution(*id)
            .await
            .unwrap()
            .expect("queued with the cursor");
        assert_eq!(stored.summary.status.as_str(), "queued");
    }
    // Two polls read the same generation: the second one writes nothing.
    let generation = Some(state.generation);
    assert!(store
        .commit_watch(&scenario, generation, commit(1, 20, &mut past))
        .await
        .unwrap());
    let late = commit(3, 30, &mut past);
    let late_ids: Vec<_> = late.executions.iter().map(|e| e.id).collect();
    assert!(!store
        .commit_watch(&scenario, generation, late)
        .await
        .unwrap());
    for id in late_ids {
        assert!(
            store.execution(id).await.unwrap().is_none(),
            "a superseded poll queued {id}"
        );
    }
    let state = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!((state.items, state.cursor["date"].clone()), (3, json!(20)));
    // A second creation of the row is refused too.
    assert!(!store
        .commit_watch(&scenario, None, commit(1, 40, &mut past))
        .await
        .unwrap());
}

pub async fn a_failure_a_claim_and_a_reset_move_the_generation(store: &dyn Store) {
    let scenario = unique("watch");
    let t = now();
    // A claim creates the row and holds it.
    let claimed = store
        .claim_watch(&scenario, None, OWNER, t)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(
        store
            .claim_watch(&scenario, None, "other", t)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_watch(&scenario, Some(claimed - 1), "other", t)
            .await
            .unwrap(),
        None
    );
    let state = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!(state.lease_owner.as_deref(), Some(OWNER));
    assert!(
        state.fingerprint.is_empty(),
        "not seeded until a poll commits"
    );
    let failure = WatchFailure {
        error: "GET /v1/items answered 503".to_owned(),
        polled_at: t,
        retry_at: t + chrono::Duration::seconds(2),
    };
    assert!(store
        .fail_watch(&scenario, Some(claimed), failure.clone())
        .await
        .unwrap());
    assert!(!store
        .fail_watch(&scenario, Some(claimed), failure)
        .await
        .unwrap());
    let failed = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!((failed.failures, failed.lease_owner.clone()), (1, None));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("GET /v1/items answered 503")
    );
    assert_eq!(failed.retry_at, Some(t + chrono::Duration::seconds(2)));
    // A reset is taken by the next poll; a poll that read before it commits nothing.
    store.reset_watch(&scenario, "all").await.unwrap();
    let reset = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!(
        (reset.restart.as_deref(), reset.failures, reset.retry_at),
        (Some("all"), 0, None)
    );
    let stale = WatchCommit {
        fingerprint: "f".to_owned(),
        cursor: json!({}),
        seen: Vec::new(),
        polled_at: t,
        executions: Vec::new(),
        concurrency_key: None,
        items: 0,
    };
    assert!(!store
        .commit_watch(&scenario, Some(failed.generation), stale.clone())
        .await
        .unwrap());
    assert!(store
        .commit_watch(&scenario, Some(reset.generation), stale)
        .await
        .unwrap());
    let done = store.watch(&scenario).await.unwrap().unwrap();
    assert_eq!((done.restart, done.last_error), (None, None));
    assert!(store
        .watches()
        .await
        .unwrap()
        .iter()
        .any(|w| w.scenario == scenario));
}
