//! Correlated events: emit, await_event, waits, events, prune_events.

use chrono::Duration;
use scenarist::engine::{EventWait, ExecutionStatus, NewEvent, StepStatus};
use scenarist::store::{EventFilter, Store};
use serde_json::json;
use uuid::Uuid;

use super::{finish, ms, now, start, status, step, summary, unique, OWNER};

fn wait(event: &str, key: &str, after_seq: i64) -> EventWait {
    let at = now();
    EventWait {
        path: "deal_won".to_owned(),
        event: event.to_owned(),
        key: key.to_owned(),
        since: at - Duration::hours(1),
        after_seq,
        waiting_since: at,
        deadline: at + Duration::days(90),
    }
}

fn event(name: &str, key: &str, amount: i64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event: name.to_owned(),
        key: key.to_owned(),
        data: json!({ "amount": amount }),
        received_at: now(),
        source: None,
    }
}

async fn park(store: &dyn Store, id: Uuid) {
    let at = now();
    finish(
        store,
        id,
        OWNER,
        ExecutionStatus::Waiting,
        at,
        Some(at + Duration::days(90)),
    )
    .await;
}

fn by_key(event: &str, key: &str) -> EventFilter {
    EventFilter {
        event: Some(event.to_owned()),
        key: Some(key.to_owned()),
        limit: None,
    }
}

/// An event committed after the wait's look but before it parked is not
/// lost: the execution is queued the moment it parks.
pub(super) async fn an_event_between_the_look_and_the_park_queues_the_execution(store: &dyn Store) {
    let name = unique("deal.closed_won");
    let key = unique("lee");
    let id = start(store, &unique("journey"), now()).await;
    assert!(store
        .await_event(id, &wait(&name, &key, 0))
        .await
        .unwrap()
        .is_empty());
    let emitted = store.emit(&event(&name, &key, 10), now()).await.unwrap();
    assert_eq!(emitted.resumed, vec![id]);
    assert_eq!(status(store, id).await, ExecutionStatus::Running);
    park(store, id).await;
    assert_eq!(status(store, id).await, ExecutionStatus::Queued);
    assert!(store.waits(&by_key(&name, &key)).await.unwrap().is_empty());
}

/// A parked wait is queued by its event, listed until then, and another
/// key leaves it alone.
pub(super) async fn a_parked_wait_is_woken_by_its_key_only(store: &dyn Store) {
    let name = unique("deal.closed_won");
    let key = unique("kim");
    let scenario = unique("journey");
    let id = start(store, &scenario, now()).await;
    let look = wait(&name, &key, 0);
    assert!(store.await_event(id, &look).await.unwrap().is_empty());
    park(store, id).await;
    let listed = store.waits(&by_key(&name, &key)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].execution_id, id);
    assert_eq!(listed[0].scenario, scenario);
    assert_eq!(listed[0].step, "deal_won");
    assert_eq!(
        (listed[0].event.as_str(), listed[0].key.as_str()),
        (name.as_str(), key.as_str())
    );
    assert_eq!(
        listed[0].waiting_since, look.waiting_since,
        "to the microsecond"
    );
    assert_eq!(listed[0].deadline, look.deadline);
    let counts = store.waiting_by_event().await.unwrap();
    assert!(counts.contains(&(name.clone(), 1)), "{counts:?}");

    let other = store
        .emit(&event(&name, &unique("someone-else"), 1), now())
        .await
        .unwrap();
    assert!(other.resumed.is_empty());
    assert_eq!(status(store, id).await, ExecutionStatus::Waiting);

    let mine = event(&name, &key, 2);
    let emitted = store.emit(&mine, now()).await.unwrap();
    assert_eq!(emitted.event_id, mine.id);
    assert_eq!(emitted.resumed, vec![id]);
    assert!(!emitted.duplicate);
    assert_eq!(status(store, id).await, ExecutionStatus::Queued);
    assert!(store.waits(&by_key(&name, &key)).await.unwrap().is_empty());
    let counts = store.waiting_by_event().await.unwrap();
    assert!(
        !counts.iter().any(|(e, n)| *e == name && *n > 0),
        "no longer counted: {counts:?}"
    );
    // The same event again (a resumed emit step) is not committed twice.
    let again = store.emit(&mine, now()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.resumed, vec![id]);
    let kept = store.events(&by_key(&name, &key)).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, mine.id);
    assert_eq!(kept[0].event, name);
    assert_eq!(kept[0].key, key);
    assert_eq!(kept[0].data, json!({ "amount": 2 }));
    assert_eq!(kept[0].received_at, mine.received_at, "to the microsecond");
    assert_eq!(kept[0].source, None);
    assert_eq!(kept[0].resumed, vec![id]);
}

/// A wait is handed the events after its cursor, oldest first, within its
/// window; older ones and later pages are not repeated.
pub(super) async fn a_wait_sees_events_after_its_cursor_in_order(store: &dyn Store) {
    let name = unique("deal.closed_won");
    let key = unique("ann");
    let scenario = unique("journey");
    let id = start(store, &scenario, now()).await;
    // Received fifteen years ago, so that pruning them prunes nothing else.
    let long_ago = now() - Duration::days(5475);
    let mut sent = Vec::new();
    for amount in [1, 2, 3] {
        let mut new = event(&name, &key, amount);
        new.received_at = long_ago + ms(amount);
        store.emit(&new, now()).await.unwrap();
        sent.push(new);
    }
    let from_then = |after_seq: i64| EventWait {
        since: long_ago - Duration::hours(1),
        ..wait(&name, &key, after_seq)
    };
    let events = store.await_event(id, &from_then(0)).await.unwrap();
    let amounts: Vec<i64> = events
        .iter()
        .map(|e| e.data["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![1, 2, 3]);
    for (got, want) in events.iter().zip(&sent) {
        assert_eq!(got.id, want.id);
        assert_eq!(
            (got.event.as_str(), got.key.as_str()),
            (name.as_str(), key.as_str())
        );
        assert_eq!(got.received_at, want.received_at, "to the microsecond");
    }
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "seq grows");
    let after_first = store
        .await_event(id, &from_then(events[0].seq))
        .await
        .unwrap();
    assert_eq!(
        after_first.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![sent[1].id, sent[2].id]
    );
    let last = events.last().unwrap().seq;
    assert!(store
        .await_event(id, &from_then(last))
        .await
        .unwrap()
        .is_empty());
    let id2 = start(store, &scenario, now()).await;
    assert!(
        store
            .await_event(id2, &wait(&name, &key, 0))
            .await
            .unwrap()
            .is_empty(),
        "older than the window"
    );
    // Pruning removes them for good.
    assert_eq!(store.prune_events(long_ago + ms(1000)).await.unwrap(), 3);
    assert!(store
        .await_event(id, &from_then(0))
        .await
        .unwrap()
        .is_empty());
    assert!(store.events(&by_key(&name, &key)).await.unwrap().is_empty());
}

/// Kept events come newest first, by name and key, with their source.
pub(super) async fn events_are_listed_newest_first(store: &dyn Store) {
    let name = unique("referral.paid");
    let (lee, kim) = (unique("lee"), unique("kim"));
    let source = start(store, &unique("journey"), now()).await;
    let first = event(&name, &lee, 1);
    let mut second = event(&name, &lee, 2);
    second.source = Some(source);
    let third = event(&name, &kim, 3);
    for e in [&first, &second, &third] {
        let emitted = store.emit(e, now()).await.unwrap();
        assert!(!emitted.duplicate && emitted.resumed.is_empty());
    }
    assert!(store.emit(&second, now()).await.unwrap().duplicate);
    let of = |key: Option<&str>, limit: Option<usize>| EventFilter {
        event: Some(name.clone()),
        key: key.map(str::to_owned),
        limit,
    };
    let listed = |filter: EventFilter| async move {
        store
            .events(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(of(None, None)).await,
        vec![third.id, second.id, first.id]
    );
    assert_eq!(
        listed(of(Some(&lee), None)).await,
        vec![second.id, first.id]
    );
    assert_eq!(listed(of(None, Some(2))).await, vec![third.id, second.id]);
    let kept = store.events(&of(Some(&lee), Some(1))).await.unwrap();
    assert_eq!(kept[0].source, Some(source));
    assert_eq!(kept[0].data, json!({ "amount": 2 }));
}

/// Waits are listed oldest first, by event and key; only parked ones are
/// listed and counted.
pub(super) async fn waits_are_listed_oldest_first(store: &dyn Store) {
    let name = unique("deal.closed_won");
    let (lee, kim) = (unique("lee"), unique("kim"));
    let scenario = unique("journey");
    let t = now();
    let older = start(store, &scenario, t).await;
    let newer = start(store, &scenario, t).await;
    let not_parked = start(store, &scenario, t).await;
    let look = |key: &str, since_minutes: i64| EventWait {
        waiting_since: t - Duration::minutes(since_minutes),
        ..wait(&name, key, 0)
    };
    store.await_event(newer, &look(&kim, 1)).await.unwrap();
    store.await_event(older, &look(&lee, 2)).await.unwrap();
    store.await_event(not_parked, &look(&lee, 3)).await.unwrap();
    park(store, older).await;
    park(store, newer).await;

    let waiting = |key: Option<&str>, limit: Option<usize>| {
        let filter = EventFilter {
            event: Some(name.clone()),
            key: key.map(str::to_owned),
            limit,
        };
        async move {
            store
                .waits(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|w| w.execution_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(waiting(None, None).await, vec![older, newer]);
    assert_eq!(waiting(None, Some(1)).await, vec![older]);
    assert_eq!(waiting(Some(&kim), None).await, vec![newer]);
    assert_eq!(waiting(Some(&lee), None).await, vec![older]);
    let counts = store.waiting_by_event().await.unwrap();
    assert!(counts.contains(&(name.clone(), 2)), "{counts:?}");
}

/// A wait ends when its step settles or its execution ends another way; an
/// event from before the wait's window does not wake it.
pub(super) async fn a_wait_ends_with_its_step_and_keeps_its_window(store: &dyn Store) {
    let name = unique("deal.closed_won");
    let scenario = unique("journey");

    // Parked, then resumed at its deadline: the step settles without an event.
    let key = unique("timed-out");
    let timed_out = start(store, &scenario, now()).await;
    store
        .await_event(timed_out, &wait(&name, &key, 0))
        .await
        .unwrap();
    park(store, timed_out).await;
    let read = summary(store, timed_out).await;
    store
        .claim(
            timed_out,
            read.status,
            read.owner.as_deref(),
            "worker",
            now(),
        )
        .await
        .unwrap()
        .expect("claimed");
    let mut settled = step("deal_won", "wait_for", StepStatus::Succeeded, now());
    settled.output = json!({ "timed_out": true });
    store
        .record_step(timed_out, "worker", &settled)
        .await
        .unwrap();
    let emitted = store.emit(&event(&name, &key, 1), now()).await.unwrap();
    assert!(emitted.resumed.is_empty(), "the settled wait is not woken");
    assert_eq!(status(store, timed_out).await, ExecutionStatus::Running);

    // Ended without parking (failed on the way): its wait goes with it.
    let key = unique("ended");
    let ended = start(store, &scenario, now()).await;
    store
        .await_event(ended, &wait(&name, &key, 0))
        .await
        .unwrap();
    finish(store, ended, OWNER, ExecutionStatus::Failed, now(), None).await;
    let emitted = store.emit(&event(&name, &key, 1), now()).await.unwrap();
    assert!(
        emitted.resumed.is_empty(),
        "the ended execution is not woken"
    );
    assert_eq!(status(store, ended).await, ExecutionStatus::Failed);

    // An event received before the wait's `since` does not wake it; one after does.
    let key = unique("window");
    let windowed = start(store, &scenario, now()).await;
    let since = now();
    let look = EventWait {
        since,
        ..wait(&name, &key, 0)
    };
    store.await_event(windowed, &look).await.unwrap();
    park(store, windowed).await;
    let mut early = event(&name, &key, 1);
    early.received_at = since - ms(1000);
    assert!(store.emit(&early, now()).await.unwrap().resumed.is_empty());
    assert_eq!(status(store, windowed).await, ExecutionStatus::Waiting);
    let mut late = event(&name, &key, 2);
    late.received_at = since + ms(1);
    assert_eq!(
        store.emit(&late, now()).await.unwrap().resumed,
        vec![windowed]
    );
    assert_eq!(status(store, windowed).await, ExecutionStatus::Queued);
}
