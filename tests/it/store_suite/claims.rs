//! Claims, fencing, heartbeats and resumes: who may run an execution, and when.

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{DataOp, DataRequest, ExecutionStatus, StepStatus};
use scenarist::store::{Admission, Enqueued, Finish, Store, StoreError};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    data_op, execution_in, finish, ms, new_execution, now, start, step, summary, unique, OWNER,
};

/// A claim takes an execution over once: the same expectation a second
/// time gets nothing; every claim counts an attempt.
pub(super) async fn a_claim_succeeds_once(store: &dyn Store) {
    let scenario = unique("claim");
    let t = now();
    let id = start(store, &scenario, t).await;
    let taken = store
        .claim(id, ExecutionStatus::Running, Some("suite"), "owner-b", t)
        .await
        .unwrap();
    assert_eq!(taken, Some(2));
    let after = summary(store, id).await;
    assert_eq!(after.status, ExecutionStatus::Running);
    assert_eq!(after.owner.as_deref(), Some("owner-b"));
    assert_eq!(after.attempt, 2);
    assert_eq!(
        store
            .claim(id, ExecutionStatus::Running, Some("suite"), "owner-c", t)
            .await
            .unwrap(),
        None,
        "the owner it was read with is gone"
    );
    assert_eq!(
        store
            .claim(
                id,
                ExecutionStatus::Incomplete,
                Some("owner-b"),
                "owner-c",
                t
            )
            .await
            .unwrap(),
        None,
        "not in the expected status"
    );
    let after = summary(store, id).await;
    assert_eq!(
        (after.owner.as_deref(), after.attempt),
        (Some("owner-b"), 2)
    );
    assert_eq!(
        store
            .claim(id, ExecutionStatus::Running, Some("owner-b"), "owner-c", t)
            .await
            .unwrap(),
        Some(3)
    );

    // An incomplete one, as `resume` claims it: with the status and owner it read.
    let stopped = execution_in(store, &scenario, t, ExecutionStatus::Incomplete).await;
    let read = summary(store, stopped).await;
    assert!(read.next_retry_at.is_some());
    let claimed = store
        .claim(
            stopped,
            read.status,
            read.owner.as_deref(),
            "owner-d",
            t + ms(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed, Some(2));
    let resumed = summary(store, stopped).await;
    assert_eq!(resumed.status, ExecutionStatus::Running);
    assert_eq!(resumed.owner.as_deref(), Some("owner-d"));
    assert_eq!(resumed.finished_at, None);
    assert_eq!(resumed.next_retry_at, None);
    assert_eq!(
        store
            .claim(
                stopped,
                read.status,
                read.owner.as_deref(),
                "owner-e",
                t + ms(2)
            )
            .await
            .unwrap(),
        None,
        "a second claim with the same expectation"
    );

    // Two processes at once: one wins.
    let raced = execution_in(store, &scenario, t, ExecutionStatus::Incomplete).await;
    let read = summary(store, raced).await;
    let (a, b) = futures::join!(
        store.claim(raced, read.status, read.owner.as_deref(), "racer-a", t),
        store.claim(raced, read.status, read.owner.as_deref(), "racer-b", t),
    );
    let wins = [a.unwrap(), b.unwrap()];
    assert_eq!(
        wins.iter().filter(|w| w.is_some()).count(),
        1,
        "exactly one of two concurrent claims: {wins:?}"
    );

    assert_eq!(
        store
            .claim(Uuid::now_v7(), ExecutionStatus::Running, None, "x", t)
            .await
            .unwrap(),
        None,
        "an unknown execution"
    );
}

/// After a takeover the new owner writes; the old owner's writes are either
/// taken (a store for one machine, where a takeover needs the old process
/// gone) or refused with `LeaseLost`, leaving nothing behind. A store that
/// keeps heartbeats is shared by several machines, so it must refuse them.
pub(super) async fn writes_after_a_takeover_are_fenced(store: &dyn Store) {
    let scenario = unique("fence");
    let t = now();
    let id = start(store, &scenario, t).await;
    store
        .record_step(
            id,
            OWNER,
            &step("first", "set", StepStatus::Succeeded, t + ms(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(
                id,
                ExecutionStatus::Running,
                Some(OWNER),
                "new-owner",
                t + ms(2)
            )
            .await
            .unwrap(),
        Some(2)
    );
    let fences = store
        .live_owners(now(), std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .is_some();
    let refused = |what: &str, outcome: Result<(), StoreError>| match outcome {
        Ok(()) => {
            assert!(
                !fences,
                "a store that keeps heartbeats took the old owner's {what}"
            );
            false
        }
        Err(StoreError::LeaseLost(lost)) => {
            assert_eq!(lost, id, "{what}");
            true
        }
        Err(e) => panic!("the old owner's {what}: {e}"),
    };

    let stale_step = store
        .record_step(
            id,
            OWNER,
            &step("stale", "set", StepStatus::Succeeded, t + ms(3)),
        )
        .await;
    if refused("step", stale_step) {
        let stored = store.execution(id).await.unwrap().unwrap();
        assert!(
            stored.steps.iter().all(|s| s.path != "stale"),
            "a refused step is not kept"
        );
    }
    let name = unique("fenced");
    let stale_data = data_op(
        store,
        id,
        "stale-put",
        (&name, "k"),
        DataOp::Put {
            value: json!("stale"),
            ttl: None,
        },
        t + ms(4),
    )
    .await
    .map(|_| ());
    if refused("data operation", stale_data) {
        let get = DataRequest {
            store: name.clone(),
            key: "k".to_owned(),
            op: DataOp::Get,
        };
        assert_eq!(
            store
                .data(id, "new-owner", "get", &get, t + ms(5))
                .await
                .unwrap(),
            Value::Null,
            "a refused put wrote nothing"
        );
    }
    let stale_finish = store
        .finish_execution(
            id,
            OWNER,
            Finish {
                status: ExecutionStatus::Failed,
                error: None,
                finished_at: t + ms(6),
                next_retry_at: None,
            },
        )
        .await;
    if refused("finish", stale_finish) {
        let after = summary(store, id).await;
        assert_eq!(after.status, ExecutionStatus::Running);
        assert_eq!(after.owner.as_deref(), Some("new-owner"));
    }

    // The owner's own writes always go through.
    store
        .record_step(
            id,
            "new-owner",
            &step("second", "set", StepStatus::Succeeded, t + ms(7)),
        )
        .await
        .unwrap();
    finish(
        store,
        id,
        "new-owner",
        ExecutionStatus::Succeeded,
        t + ms(8),
        None,
    )
    .await;
    let stored = store.execution(id).await.unwrap().unwrap();
    assert_eq!(stored.summary.status, ExecutionStatus::Succeeded);
    assert!(stored.steps.iter().any(|s| s.path == "first"));
    assert!(stored.steps.iter().any(|s| s.path == "second"));
}

/// A store that keeps heartbeats lists an owner as alive for a lease after
/// its latest beat; a store that keeps none says so with `None`.
pub(super) async fn heartbeats_say_who_is_alive(store: &dyn Store) {
    let owner = unique("host/4242");
    let never = unique("host/4243");
    let lease = std::time::Duration::from_secs(30);
    let t = now();
    store.heartbeat(&owner, t).await.unwrap();
    let Some(live) = store.live_owners(t + ms(10_000), lease).await.unwrap() else {
        return;
    };
    assert!(live.contains(&owner), "beat 10s ago, lease 30s");
    assert!(!live.contains(&never));
    // A late beat with an older time does not make it look older.
    store
        .heartbeat(&owner, t - Duration::minutes(5))
        .await
        .unwrap();
    let live = store
        .live_owners(t + ms(10_000), lease)
        .await
        .unwrap()
        .unwrap();
    assert!(live.contains(&owner), "the latest beat counts");
    let live = store
        .live_owners(t + ms(31_000), lease)
        .await
        .unwrap()
        .unwrap();
    assert!(!live.contains(&owner), "silent for longer than the lease");
    store.heartbeat(&owner, t + ms(40_000)).await.unwrap();
    let live = store
        .live_owners(t + ms(41_000), lease)
        .await
        .unwrap()
        .unwrap();
    assert!(live.contains(&owner), "alive again");
}

/// Every running execution is resumable; incomplete, waiting and queued
/// ones only once their time (`next_retry_at`) has come.
pub(super) async fn resumable_lists_running_and_due_executions(store: &dyn Store) {
    let scenario = unique("resumable");
    let t = now();
    let running = start(store, &scenario, t - Duration::hours(1)).await;
    let incomplete_due = start(store, &scenario, t - Duration::hours(1)).await;
    finish(
        store,
        incomplete_due,
        OWNER,
        ExecutionStatus::Incomplete,
        t - ms(2000),
        Some(t - ms(1000)),
    )
    .await;
    let incomplete_later = start(store, &scenario, t - Duration::hours(1)).await;
    finish(
        store,
        incomplete_later,
        OWNER,
        ExecutionStatus::Incomplete,
        t - ms(2000),
        Some(t + ms(60_000)),
    )
    .await;
    let waiting_due = start(store, &scenario, t - Duration::hours(1)).await;
    finish(
        store,
        waiting_due,
        OWNER,
        ExecutionStatus::Waiting,
        t - ms(2000),
        Some(t - ms(1)),
    )
    .await;
    let waiting_later = start(store, &scenario, t - Duration::hours(1)).await;
    finish(
        store,
        waiting_later,
        OWNER,
        ExecutionStatus::Waiting,
        t - ms(2000),
        Some(t + Duration::hours(1)),
    )
    .await;
    let succeeded = execution_in(
        store,
        &scenario,
        t - Duration::hours(1),
        ExecutionStatus::Succeeded,
    )
    .await;
    let failed = execution_in(
        store,
        &scenario,
        t - Duration::hours(1),
        ExecutionStatus::Failed,
    )
    .await;
    let filtered = execution_in(
        store,
        &scenario,
        t - Duration::hours(1),
        ExecutionStatus::Filtered,
    )
    .await;
    let queued = new_execution(&scenario, t - Duration::hours(1));
    let queued_id = queued.id;
    assert_eq!(
        store
            .enqueue(queued, Admission::default(), t)
            .await
            .unwrap(),
        Enqueued::Accepted(queued_id)
    );
    let mine = [
        running,
        incomplete_due,
        incomplete_later,
        waiting_due,
        waiting_later,
        succeeded,
        failed,
        filtered,
        queued_id,
    ];
    let resumable = |at: DateTime<Utc>| async move {
        let mut found: Vec<Uuid> = store
            .resumable(at)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .filter(|id| mine.contains(id))
            .collect();
        found.sort();
        found
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };

    assert_eq!(
        resumable(t).await,
        sorted(vec![running, incomplete_due, waiting_due]),
        "at t"
    );
    assert_eq!(
        resumable(t + ms(60_000)).await,
        sorted(vec![running, incomplete_due, incomplete_later, waiting_due]),
        "next_retry_at == now is due"
    );
    assert_eq!(
        resumable(t + Duration::days(2)).await,
        sorted(vec![
            running,
            incomplete_due,
            incomplete_later,
            waiting_due,
            waiting_later
        ]),
        "finished ones and freshly queued ones are never resumed"
    );
    let listed = store.resumable(t).await.unwrap();
    let due = listed.iter().find(|s| s.id == incomplete_due).unwrap();
    assert_eq!(due.status, ExecutionStatus::Incomplete);
    assert_eq!(
        due.next_retry_at,
        Some(t - ms(1000)),
        "next_retry_at to the microsecond"
    );
}
