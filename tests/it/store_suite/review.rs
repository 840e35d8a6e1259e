//! Review and report: decide, business events, counts.

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{
    record_output, DataOp, DataRequest, ExecutionStatus, StepRecord, StepStatus,
};
use scenarist::report::{BusinessEvent, ExecutionCounts};
use scenarist::store::{Decided, Store};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    assert_same_step, execution_in, ids, ms, now, parked_at, start, status, step, summary, unique,
    OWNER,
};

fn decision(path: &str, verdict: &str, at: DateTime<Utc>) -> StepRecord {
    let mut record = step(path, "approval", StepStatus::Succeeded, at);
    record.output = json!({ "decision": verdict, "by": "olivia", "comment": null, "decided_at": at.to_rfc3339() });
    record.detail = Some(format!("{verdict} by olivia"));
    record.duration_ms = 1500;
    record
}

/// A decision is kept only on an execution waiting at that approval step;
/// it queues the execution, due at once; a second decision changes nothing.
pub(super) async fn a_decision_is_kept_only_while_the_approval_waits(store: &dyn Store) {
    let scenario = unique("review");
    let t = now();
    assert_eq!(
        store
            .decide(Uuid::now_v7(), &decision("review", "approved", t), t)
            .await
            .unwrap(),
        Decided::NotFound
    );

    // Still running towards its park.
    let running = start(store, &scenario, t).await;
    store
        .record_step(
            running,
            OWNER,
            &step("review", "approval", StepStatus::Waiting, t),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .decide(running, &decision("review", "approved", t), t)
            .await
            .unwrap(),
        Decided::NotWaiting("running".to_owned())
    );

    // Waiting at a delay, not an approval.
    let delayed = parked_at(store, &scenario, t, "delay", "cool_off").await;
    assert_eq!(
        store
            .decide(delayed, &decision("cool_off", "approved", t), t)
            .await
            .unwrap(),
        Decided::NotWaiting("waiting".to_owned())
    );
    let kept = store.execution(delayed).await.unwrap().unwrap();
    assert_eq!(kept.summary.status, ExecutionStatus::Waiting);
    assert_eq!(kept.steps[0].kind, "delay");
    assert_eq!(kept.steps[0].status, StepStatus::Waiting);

    let waiting = parked_at(store, &scenario, t, "approval", "review").await;
    assert_eq!(
        store
            .decide(waiting, &decision("other_step", "approved", t), t)
            .await
            .unwrap(),
        Decided::NotWaiting("waiting".to_owned()),
        "a decision on a step that does not wait"
    );
    assert_eq!(status(store, waiting).await, ExecutionStatus::Waiting);

    let depth = store.queue_depth().await.unwrap();
    let at = t + ms(1500) + Duration::microseconds(5);
    let approved = decision("review", "approved", at);
    assert_eq!(
        store.decide(waiting, &approved, at).await.unwrap(),
        Decided::Queued
    );
    let decided = store.execution(waiting).await.unwrap().unwrap();
    assert_eq!(decided.summary.status, ExecutionStatus::Queued);
    assert_eq!(
        decided.steps.len(),
        1,
        "the decision replaces the waiting record"
    );
    assert_same_step(&decided.steps[0], &approved);
    assert_eq!(store.queue_depth().await.unwrap(), depth + 1);
    assert!(
        ids(&store.resumable(at).await.unwrap()).contains(&waiting),
        "a decided execution is due at once"
    );

    assert_eq!(
        store
            .decide(
                waiting,
                &decision("review", "rejected", at + ms(1)),
                at + ms(1)
            )
            .await
            .unwrap(),
        Decided::NotWaiting("queued".to_owned()),
        "the second decision"
    );
    let after = store.execution(waiting).await.unwrap().unwrap();
    assert_eq!(after.steps[0].output["decision"], json!("approved"));

    // Two reviewers at once: one decision counts.
    let raced = parked_at(store, &scenario, t, "approval", "review").await;
    let (yes, no) = (
        decision("review", "approved", at),
        decision("review", "rejected", at),
    );
    let (a, b) = futures::join!(store.decide(raced, &yes, at), store.decide(raced, &no, at));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|d| **d == Decided::Queued).count(),
        1,
        "{outcomes:?}"
    );

    // Whoever resumes it claims it as queued.
    let read = summary(store, waiting).await;
    assert_eq!(
        store
            .claim(
                waiting,
                read.status,
                read.owner.as_deref(),
                "worker",
                at + ms(2)
            )
            .await
            .unwrap(),
        Some(2)
    );
}

async fn record(
    store: &dyn Store,
    execution: Uuid,
    path: &str,
    event: &str,
    key: &str,
    value: Option<f64>,
    at: DateTime<Utc>,
) -> Value {
    let request = DataRequest {
        store: event.to_owned(),
        key: key.to_owned(),
        op: DataOp::Record {
            value,
            data: json!({ "plan": "pro" }),
        },
    };
    store
        .data(execution, OWNER, path, &request, at)
        .await
        .unwrap()
}

/// A `record` writes a business event once per (event, key), whoever
/// records it again; `business_events` filters by period and scenario.
pub(super) async fn business_events_are_unique_and_filtered(store: &dyn Store) {
    let scenario = unique("referrals");
    let other = unique("referrals");
    let referred = unique("referred");
    let qualified = unique("qualified");
    let ann = unique("ann");
    let bob = unique("bob");
    let tb = now() - Duration::days(3);
    let mine = start(store, &scenario, tb).await;
    let theirs = start(store, &other, tb).await;

    let first = record(store, mine, "rec", &referred, &ann, Some(10.0), tb).await;
    assert_eq!(first, record_output(&referred, &ann, Some(10.0), true));
    let again = record(
        store,
        theirs,
        "rec",
        &referred,
        &ann,
        Some(20.0),
        tb + ms(1000),
    )
    .await;
    assert_eq!(again["recorded"], json!(false), "{again}");
    assert_eq!(
        (&again["event"], &again["key"]),
        (&json!(referred), &json!(ann))
    );
    let other_event = record(store, mine, "rec2", &qualified, &ann, None, tb + ms(2000)).await;
    assert_eq!(
        other_event["recorded"],
        json!(true),
        "another event, same key"
    );
    let later = record(
        store,
        theirs,
        "rec3",
        &referred,
        &bob,
        Some(5.5),
        tb + Duration::hours(1),
    )
    .await;
    assert_eq!(later["recorded"], json!(true));

    // The step's result is kept with it.
    let stored = store.execution(mine).await.unwrap().unwrap();
    let step = stored
        .steps
        .iter()
        .find(|s| s.path == "rec")
        .expect("the record step");
    assert_eq!(step.kind, "record");
    assert_eq!(step.status, StepStatus::Succeeded);
    assert_eq!(step.output, first);

    let event =
        |event: &str, key: &str, value, scenario: &str, execution_id, recorded_at| BusinessEvent {
            event: event.to_owned(),
            key: key.to_owned(),
            value,
            scenario: scenario.to_owned(),
            execution_id,
            recorded_at,
        };
    let period_end = tb + Duration::days(1);
    assert_eq!(
        store
            .business_events(tb - ms(1), period_end, Some(&scenario))
            .await
            .unwrap(),
        vec![
            event(&referred, &ann, Some(10.0), &scenario, mine, tb),
            event(&qualified, &ann, None, &scenario, mine, tb + ms(2000)),
        ],
        "oldest first; the duplicate wrote nothing"
    );
    assert_eq!(
        store
            .business_events(tb - ms(1), period_end, Some(&other))
            .await
            .unwrap(),
        vec![event(
            &referred,
            &bob,
            Some(5.5),
            &other,
            theirs,
            tb + Duration::hours(1)
        )]
    );
    assert_eq!(
        store
            .business_events(tb, tb + ms(2000), Some(&scenario))
            .await
            .unwrap(),
        vec![event(&referred, &ann, Some(10.0), &scenario, mine, tb)],
        "since is inclusive, until exclusive"
    );
    assert!(store
        .business_events(
            tb + Duration::hours(1) + Duration::microseconds(1),
            period_end,
            Some(&other)
        )
        .await
        .unwrap()
        .is_empty());
    let everyone: Vec<BusinessEvent> = store
        .business_events(tb - ms(1), period_end, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.key == ann || e.key == bob)
        .collect();
    assert_eq!(everyone.len(), 3, "every scenario: {everyone:?}");
}

/// The report's counts: waiting reviews (whenever they started), failed
/// ones of the period, incomplete ones; per scenario or for all.
pub(super) async fn report_counts_what_needs_a_person(store: &dyn Store) {
    let scenario = unique("report");
    let other = unique("report");
    let t = now() - Duration::days(2);
    let (since, until) = (t - Duration::hours(1), t + Duration::hours(1));
    parked_at(store, &scenario, t, "approval", "review").await;
    parked_at(
        store,
        &scenario,
        t - Duration::hours(3),
        "approval",
        "review",
    )
    .await;
    parked_at(store, &scenario, t, "delay", "cool_off").await;
    execution_in(
        store,
        &scenario,
        t - Duration::minutes(10),
        ExecutionStatus::Failed,
    )
    .await;
    execution_in(
        store,
        &scenario,
        t - Duration::hours(2),
        ExecutionStatus::Failed,
    )
    .await;
    execution_in(store, &scenario, t, ExecutionStatus::Incomplete).await;
    execution_in(store, &scenario, t, ExecutionStatus::Succeeded).await;
    execution_in(store, &scenario, t, ExecutionStatus::Running).await;
    execution_in(store, &other, t, ExecutionStatus::Failed).await;
    execution_in(store, &other, t, ExecutionStatus::Incomplete).await;

    let mine = ExecutionCounts {
        waiting_for_review: 2,
        failed: 1,
        incomplete: 1,
    };
    assert_eq!(
        store
            .report_counts(since, until, Some(&scenario))
            .await
            .unwrap(),
        mine
    );
    assert_eq!(
        store
            .report_counts(since, until, Some(&other))
            .await
            .unwrap(),
        ExecutionCounts {
            waiting_for_review: 0,
            failed: 1,
            incomplete: 1,
        }
    );
    let all = store.report_counts(since, until, None).await.unwrap();
    assert!(
        all.waiting_for_review >= 2 && all.failed >= 2 && all.incomplete >= 2,
        "every scenario: {all:?}"
    );
}
