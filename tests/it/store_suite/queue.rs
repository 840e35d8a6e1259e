//! The queue: enqueue, ticks, claim_queued, queue_depth.

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::ExecutionStatus;
use scenarist::store::{Admission, DedupeKey, Enqueued, ExecutionFilter, Store};
use serde_json::json;
use uuid::Uuid;

use super::{finish, ids, ms, new_execution, now, start, status, summary, unique, Past, OWNER};

/// A dedupe key is checked and taken with the enqueue: a second event with
/// the key gets the first one's id and queues nothing, until the key expires.
pub(super) async fn enqueue_takes_a_dedupe_key_with_the_execution(store: &dyn Store) {
    let scenario = unique("webhook");
    let other = unique("webhook");
    let key = unique("delivery");
    let t = now();
    let depth = store.queue_depth().await.unwrap();
    let held_until = |until: DateTime<Utc>| Admission {
        dedupe: Some(DedupeKey {
            key: key.clone(),
            expires_at: until,
        }),
        ..Admission::default()
    };

    let mut first = new_execution(&scenario, t);
    first.trigger =
        json!({ "body": { "email": "lee@bigco.example" }, "headers": { "x-sig": "***" } });
    first.vars.insert("source".to_owned(), json!("webhook"));
    let (first_id, trigger, vars) = (first.id, first.trigger.clone(), first.vars.clone());
    assert_eq!(
        store
            .enqueue(first, held_until(t + Duration::hours(1)), t)
            .await
            .unwrap(),
        Enqueued::Accepted(first_id)
    );
    let queued = store.execution(first_id).await.unwrap().expect("queued");
    assert_eq!(queued.summary.status, ExecutionStatus::Queued);
    assert_eq!(queued.summary.scenario, scenario);
    assert_eq!(queued.summary.started_at, t);
    assert_eq!(queued.summary.attempt, 1);
    assert_eq!(queued.trigger, trigger);
    assert_eq!(queued.vars, vars);
    assert!(queued.steps.is_empty());

    let second = new_execution(&scenario, t + ms(1000));
    let second_id = second.id;
    assert_eq!(
        store
            .enqueue(second, held_until(t + Duration::hours(1)), t + ms(1000))
            .await
            .unwrap(),
        Enqueued::Duplicate(first_id)
    );
    assert!(
        store.execution(second_id).await.unwrap().is_none(),
        "nothing queued for a duplicate"
    );
    assert_eq!(store.queue_depth().await.unwrap(), depth + 1);

    let elsewhere = new_execution(&other, t);
    let elsewhere_id = elsewhere.id;
    assert_eq!(
        store
            .enqueue(elsewhere, held_until(t + Duration::hours(1)), t)
            .await
            .unwrap(),
        Enqueued::Accepted(elsewhere_id),
        "dedupe keys belong to their scenario"
    );

    // Two hours later the key has expired: it no longer blocks, and the new execution holds it.
    let later = t + Duration::hours(2);
    let third = new_execution(&scenario, later);
    let third_id = third.id;
    assert_eq!(
        store
            .enqueue(third, held_until(later + Duration::hours(1)), later)
            .await
            .unwrap(),
        Enqueued::Accepted(third_id)
    );
    let fourth = new_execution(&scenario, later);
    assert_eq!(
        store
            .enqueue(
                fourth,
                held_until(later + Duration::hours(1)),
                later + ms(1)
            )
            .await
            .unwrap(),
        Enqueued::Duplicate(third_id)
    );
    assert_eq!(
        store
            .dedupe(
                &scenario,
                &key,
                Uuid::now_v7(),
                later + Duration::hours(1),
                later + ms(2)
            )
            .await
            .unwrap(),
        Some(third_id),
        "`dedupe` sees the key `enqueue` took"
    );
    // An event without a key is never a duplicate.
    let plain = new_execution(&scenario, later);
    let plain_id = plain.id;
    assert_eq!(
        store
            .enqueue(plain, Admission::default(), later)
            .await
            .unwrap(),
        Enqueued::Accepted(plain_id)
    );
    assert_eq!(store.queue_depth().await.unwrap(), depth + 4);
}

/// A schedule's tick is recorded with its execution: the same tick again
/// queues nothing (and names the first execution); `last_tick` is the latest.
pub(super) async fn a_tick_is_queued_once_and_the_latest_is_remembered(store: &dyn Store) {
    let scenario = unique("schedule");
    let other = unique("schedule");
    assert_eq!(store.last_tick(&scenario).await.unwrap(), None);
    let t = now();
    let tick = t - Duration::minutes(2) + Duration::microseconds(1);
    let at_tick = |tick: DateTime<Utc>| Admission {
        tick: Some(tick),
        ..Admission::default()
    };

    let first = new_execution(&scenario, t);
    let first_id = first.id;
    assert_eq!(
        store.enqueue(first, at_tick(tick), t).await.unwrap(),
        Enqueued::Accepted(first_id)
    );
    assert_eq!(
        store.last_tick(&scenario).await.unwrap(),
        Some(tick),
        "to the microsecond"
    );

    let again = new_execution(&scenario, t + ms(5));
    let again_id = again.id;
    assert_eq!(
        store
            .enqueue(again, at_tick(tick), t + ms(5))
            .await
            .unwrap(),
        Enqueued::Duplicate(first_id),
        "the same tick twice"
    );
    assert!(store.execution(again_id).await.unwrap().is_none());
    let queued = store
        .list(&ExecutionFilter {
            scenario: Some(scenario.clone()),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&queued), vec![first_id], "one execution for one tick");

    let next_tick = tick + Duration::minutes(1);
    let next = new_execution(&scenario, t + ms(10));
    let next_id = next.id;
    assert_eq!(
        store
            .enqueue(next, at_tick(next_tick), t + ms(10))
            .await
            .unwrap(),
        Enqueued::Accepted(next_id)
    );
    assert_eq!(store.last_tick(&scenario).await.unwrap(), Some(next_tick));

    // A catch-up of an older tick is queued, but the latest stays the latest.
    let earlier = new_execution(&scenario, t + ms(20));
    let earlier_id = earlier.id;
    assert_eq!(
        store
            .enqueue(earlier, at_tick(tick - Duration::minutes(1)), t + ms(20))
            .await
            .unwrap(),
        Enqueued::Accepted(earlier_id)
    );
    assert_eq!(store.last_tick(&scenario).await.unwrap(), Some(next_tick));

    // Ticks belong to their scenario.
    let elsewhere = new_execution(&other, t);
    let elsewhere_id = elsewhere.id;
    assert_eq!(
        store.enqueue(elsewhere, at_tick(tick), t).await.unwrap(),
        Enqueued::Accepted(elsewhere_id)
    );
    assert_eq!(store.last_tick(&other).await.unwrap(), Some(tick));
}

/// Queues an execution of the past (older than anything else in the queue).
async fn queued(store: &dyn Store, past: &mut Past, scenario: &str, key: Option<&str>) -> Uuid {
    let (id, at) = past.next();
    let mut new = new_execution(scenario, at);
    new.id = id;
    new.vars.insert("n".to_owned(), json!(id.to_string()));
    let admission = Admission {
        concurrency_key: key.map(str::to_owned),
        ..Admission::default()
    };
    assert_eq!(
        store.enqueue(new, admission, at).await.unwrap(),
        Enqueued::Accepted(id)
    );
    id
}

async fn claim_queued(
    store: &dyn Store,
    owner: &str,
    limits: &[(String, u32)],
    max: usize,
) -> Vec<Uuid> {
    store
        .claim_queued(owner, limits, now(), max)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.summary.id)
        .collect()
}

/// Ends executions as their owner.
async fn succeed(store: &dyn Store, owner: &str, ids: &[Uuid]) {
    for id in ids {
        finish(store, *id, owner, ExecutionStatus::Succeeded, now(), None).await;
    }
}

/// `claim_queued` takes the oldest first, no more than `max`, marks them
/// running for the owner and hands back what they need to run;
/// `queue_depth` counts what is still queued.
pub(super) async fn claim_queued_takes_the_oldest_up_to_max(store: &dyn Store) {
    let scenario = unique("queue");
    let mut past = Past::days_ago(3650);
    let depth = store.queue_depth().await.unwrap();
    let first = queued(store, &mut past, &scenario, None).await;
    let second = queued(store, &mut past, &scenario, None).await;
    let third = queued(store, &mut past, &scenario, None).await;
    assert_eq!(store.queue_depth().await.unwrap(), depth + 3);

    let claimed = store.claim_queued("worker-1", &[], now(), 2).await.unwrap();
    assert_eq!(
        claimed.iter().map(|s| s.summary.id).collect::<Vec<_>>(),
        vec![first, second],
        "the two oldest"
    );
    assert_eq!(store.queue_depth().await.unwrap(), depth + 1);
    for stored in &claimed {
        assert_eq!(stored.summary.status, ExecutionStatus::Running);
        assert_eq!(stored.summary.owner.as_deref(), Some("worker-1"));
        assert_eq!(stored.summary.scenario, scenario);
        assert_eq!(
            stored.trigger,
            json!({ "body": { "n": 1 }, "headers": {}, "query": {} })
        );
        assert_eq!(stored.vars["n"], json!(stored.summary.id.to_string()));
        let kept = summary(store, stored.summary.id).await;
        assert_eq!(kept.status, ExecutionStatus::Running);
        assert_eq!(kept.owner.as_deref(), Some("worker-1"));
    }
    assert_eq!(claim_queued(store, "worker-2", &[], 1).await, vec![third]);
    assert_eq!(store.queue_depth().await.unwrap(), depth);
    assert_eq!(
        summary(store, third).await.owner.as_deref(),
        Some("worker-2")
    );
    succeed(store, "worker-1", &[first, second]).await;
    succeed(store, "worker-2", &[third]).await;
}

/// A scenario's limit counts its running executions, whoever started them.
pub(super) async fn claim_queued_respects_a_scenario_limit(store: &dyn Store) {
    let limited = unique("limited");
    let free = unique("unlimited");
    let limits = vec![(limited.clone(), 1)];
    let mut past = Past::days_ago(3640);
    let running = start(store, &limited, now()).await;
    let q1 = queued(store, &mut past, &limited, None).await;
    let q2 = queued(store, &mut past, &limited, None).await;
    let s1 = queued(store, &mut past, &free, None).await;

    assert_eq!(
        claim_queued(store, "w", &limits, 1).await,
        vec![s1],
        "the limited ones wait while one of theirs runs"
    );
    assert_eq!(status(store, q1).await, ExecutionStatus::Queued);
    succeed(store, OWNER, &[running]).await;
    let s2 = queued(store, &mut past, &free, None).await;
    assert_eq!(
        claim_queued(store, "w", &limits, 2).await,
        vec![q1, s2],
        "one of the limited scenario, and the next one that has room"
    );
    assert_eq!(status(store, q2).await, ExecutionStatus::Queued);
    succeed(store, "w", &[q1]).await;
    assert_eq!(claim_queued(store, "w", &limits, 1).await, vec![q2]);
    succeed(store, "w", &[q2, s1, s2]).await;
}

/// With a concurrency key the limit holds per key, in order: a second
/// execution of a key waits for the first, another key goes ahead.
pub(super) async fn claim_queued_keeps_the_order_of_a_concurrency_key(store: &dyn Store) {
    let scenario = unique("keyed");
    let free = unique("unlimited");
    let limits = vec![(scenario.clone(), 1)];
    let mut past = Past::days_ago(3630);
    let k1 = queued(store, &mut past, &scenario, Some("lee@bigco.example")).await;
    let k2 = queued(store, &mut past, &scenario, Some("lee@bigco.example")).await;
    let other = queued(store, &mut past, &scenario, Some("kim@smallco.example")).await;
    let sentinel = queued(store, &mut past, &free, None).await;

    assert_eq!(
        claim_queued(store, "w", &limits, 2).await,
        vec![k1, other],
        "the second of a key is passed over, another key is not"
    );
    assert_eq!(
        claim_queued(store, "w", &limits, 1).await,
        vec![sentinel],
        "still not the second of the key while the first runs"
    );
    assert_eq!(status(store, k2).await, ExecutionStatus::Queued);
    succeed(store, "w", &[k1]).await;
    assert_eq!(claim_queued(store, "w", &limits, 1).await, vec![k2]);
    succeed(store, "w", &[k2, other, sentinel]).await;
}

/// An event admitted to start at once is committed running, owned by the
/// process that will run it: never in the queue (so never claimed), and
/// resumable like any running execution if that process dies.
pub(super) async fn an_execution_started_at_once_skips_the_queue(store: &dyn Store) {
    let scenario = unique("started");
    let t = now();
    let depth = store.queue_depth().await.unwrap();
    let mut new = new_execution(&scenario, t);
    new.owner = OWNER.to_owned();
    let id = new.id;
    let admission = Admission {
        start: true,
        ..Admission::default()
    };
    assert_eq!(
        store.enqueue(new, admission, t).await.unwrap(),
        Enqueued::Accepted(id)
    );
    let stored = store.execution(id).await.unwrap().expect("stored");
    assert_eq!(stored.summary.status, ExecutionStatus::Running);
    assert_eq!(stored.summary.owner.as_deref(), Some(OWNER));
    assert_eq!(stored.summary.attempt, 1);
    assert_eq!(store.queue_depth().await.unwrap(), depth);
    let resumable = store.resumable(t + ms(20)).await.unwrap();
    assert!(resumable.iter().any(|r| r.id == id));
    finish(
        store,
        id,
        OWNER,
        ExecutionStatus::Succeeded,
        t + ms(30),
        None,
    )
    .await;
}
