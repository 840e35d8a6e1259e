//! The store's event methods on a real SQLite file: the race between an event
//! and a wait that is parking, idempotent emits, and what a wait is handed.
//! Each check takes a `dyn Store`, so every backend runs the same ones.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{EventWait, ExecutionStatus, NewEvent};
use scenarist::store::{self, EventFilter, Finish, NewExecution, Store};
use serde_json::{json, Map};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

async fn running(store: &dyn Store) -> Uuid {
    let id = Uuid::now_v7();
    store
        .start_execution(NewExecution {
            id,
            scenario: "journey".to_owned(),
            version: "v1".to_owned(),
            trigger: json!({}),
            vars: Map::new(),
            started_at: now(),
            owner: "test".to_owned(),
            replay_of: None,
        })
        .await
        .unwrap();
    id
}

fn wait(key: &str, after_seq: i64) -> EventWait {
    let at = now();
    EventWait {
        path: "deal_won".to_owned(),
        event: "deal.closed_won".to_owned(),
        key: key.to_owned(),
        since: at - Duration::hours(1),
        after_seq,
        waiting_since: at,
        deadline: at + Duration::days(90),
    }
}

fn event(key: &str, amount: i64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event: "deal.closed_won".to_owned(),
        key: key.to_owned(),
        data: json!({ "amount": amount }),
        received_at: now(),
        source: None,
    }
}

async fn park(store: &dyn Store, id: Uuid) {
    let at = now();
    store
        .finish_execution(
            id,
            Finish {
                status: ExecutionStatus::Waiting,
                error: None,
                finished_at: at,
                next_retry_at: Some(at + Duration::days(90)),
            },
        )
        .await
        .unwrap();
}

async fn status(store: &dyn Store, id: Uuid) -> ExecutionStatus {
    store.execution(id).await.unwrap().unwrap().summary.status
}

/// An event committed after the wait's look but before it parked is not
/// lost: the execution is queued the moment it parks.
async fn an_event_between_the_look_and_the_park_queues_the_execution(store: &dyn Store) {
    let id = running(store).await;
    assert!(store
        .await_event(id, &wait("lee", 0))
        .await
        .unwrap()
        .is_empty());
    let emitted = store.emit(&event("lee", 10), now()).await.unwrap();
    assert_eq!(emitted.resumed, vec![id]);
    assert_eq!(status(store, id).await, ExecutionStatus::Running);
    park(store, id).await;
    assert_eq!(status(store, id).await, ExecutionStatus::Queued);
    assert!(store
        .waits(&EventFilter::default())
        .await
        .unwrap()
        .is_empty());
}

/// A parked wait is queued by its event, listed until then, and another
/// key leaves it alone.
async fn a_parked_wait_is_woken_by_its_key_only(store: &dyn Store) {
    let id = running(store).await;
    assert!(store
        .await_event(id, &wait("kim", 0))
        .await
        .unwrap()
        .is_empty());
    park(store, id).await;
    let listed = store
        .waits(&EventFilter {
            key: Some("kim".to_owned()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].execution_id, id);
    let counts = store.waiting_by_event().await.unwrap();
    assert!(counts
        .iter()
        .any(|(e, n)| e == "deal.closed_won" && *n >= 1));

    let other = store.emit(&event("someone-else", 1), now()).await.unwrap();
    assert!(other.resumed.is_empty());
    assert_eq!(status(store, id).await, ExecutionStatus::Waiting);

    let mine = event("kim", 2);
    let emitted = store.emit(&mine, now()).await.unwrap();
    assert_eq!(emitted.resumed, vec![id]);
    assert!(!emitted.duplicate);
    assert_eq!(status(store, id).await, ExecutionStatus::Queued);
    // The same event again (a resumed emit step) is not committed twice.
    let again = store.emit(&mine, now()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.resumed, vec![id]);
    let kept = store
        .events(&EventFilter {
            key: Some("kim".to_owned()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].resumed, vec![id]);
}

/// A wait is handed the events after its cursor, oldest first, within its
/// window; older ones and later pages are not repeated.
async fn a_wait_sees_events_after_its_cursor_in_order(store: &dyn Store) {
    let id = running(store).await;
    for amount in [1, 2, 3] {
        store.emit(&event("ann", amount), now()).await.unwrap();
    }
    let events = store.await_event(id, &wait("ann", 0)).await.unwrap();
    let amounts: Vec<i64> = events
        .iter()
        .map(|e| e.data["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![1, 2, 3]);
    let last = events.last().unwrap().seq;
    assert!(store
        .await_event(id, &wait("ann", last))
        .await
        .unwrap()
        .is_empty());
    let mut late = wait("ann", 0);
    late.since = now() + Duration::seconds(1);
    let id2 = running(store).await;
    assert!(
        store.await_event(id2, &late).await.unwrap().is_empty(),
        "older than the window"
    );
    // Pruning removes them for good.
    assert!(
        store
            .prune_events(now() + Duration::seconds(1))
            .await
            .unwrap()
            >= 3
    );
    assert!(store
        .await_event(id, &wait("ann", 0))
        .await
        .unwrap()
        .is_empty());
}

/// Every backend's checks, in one place, for a fresh store.
async fn every_check(store: Arc<dyn Store>) {
    an_event_between_the_look_and_the_park_queues_the_execution(&*store).await;
    a_parked_wait_is_woken_by_its_key_only(&*store).await;
    a_wait_sees_events_after_its_cursor_in_order(&*store).await;
}

#[tokio::test]
async fn sqlite_keeps_events_and_wakes_waits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store: Arc<dyn Store> = store::open(&url).unwrap();
    every_check(store).await;
}
