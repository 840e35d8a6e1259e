//! Pruning finished executions.

use chrono::{DateTime, Duration};
use scenarist::engine::{ExecutionStatus, StepStatus};
use scenarist::store::{Admission, PruneRule, Store};

use super::{execution_in, finish, new_execution, now, start, step, unique, OWNER};

/// Prune deletes finished executions older than the cut, with per-scenario
/// cut-offs in place of the general one, and never one that may go on.
pub(super) async fn prune_deletes_only_finished_executions_before_the_cut(store: &dyn Store) {
    // Twenty years ago: nothing else in the store is that old.
    let base = now() - Duration::days(7300);
    let day = Duration::days(1);
    let general = unique("prune");
    let longer = unique("prune-keeps-longer");
    let shorter = unique("prune-keeps-shorter");
    let rule = PruneRule {
        before: base + day * 10,
        per_scenario: vec![
            (longer.clone(), base + day * 2),
            (shorter.clone(), base + day * 30),
        ],
    };

    let mut gone = Vec::new();
    let mut kept = Vec::new();
    // One with a step: its steps go with it.
    let with_steps = start(store, &general, base + day).await;
    store
        .record_step(
            with_steps,
            OWNER,
            &step("a", "set", StepStatus::Succeeded, base + day),
        )
        .await
        .unwrap();
    finish(
        store,
        with_steps,
        OWNER,
        ExecutionStatus::Succeeded,
        base + day,
        None,
    )
    .await;
    gone.push(with_steps);
    for status in [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Filtered,
        ExecutionStatus::Rejected,
    ] {
        gone.push(execution_in(store, &general, base + day, status).await);
    }
    for status in [
        ExecutionStatus::Running,
        ExecutionStatus::Incomplete,
        ExecutionStatus::Waiting,
    ] {
        kept.push(execution_in(store, &general, base + day, status).await);
    }
    let queued = new_execution(&general, base + day);
    kept.push(queued.id);
    store
        .enqueue(queued, Admission::default(), base + day)
        .await
        .unwrap();
    let recent = execution_in(store, &general, base + day * 20, ExecutionStatus::Succeeded).await;
    kept.push(recent);
    // Prune goes by when an execution ended: this one started before the cut
    // (it waited, say, for a review) but ended after it, so it is kept.
    let ended_late = start(store, &general, base + day * 5).await;
    finish(
        store,
        ended_late,
        OWNER,
        ExecutionStatus::Succeeded,
        base + day * 20,
        None,
    )
    .await;
    kept.push(ended_late);
    // Keeps its history longer: its own cut is day 2, not day 10.
    gone.push(execution_in(store, &longer, base + day, ExecutionStatus::Succeeded).await);
    let longer_kept =
        execution_in(store, &longer, base + day * 3, ExecutionStatus::Succeeded).await;
    kept.push(longer_kept);
    // Keeps it shorter: its own cut is day 30.
    gone.push(execution_in(store, &shorter, base + day * 20, ExecutionStatus::Succeeded).await);
    kept.push(execution_in(store, &shorter, base + day * 40, ExecutionStatus::Succeeded).await);

    assert_eq!(store.prune(&rule).await.unwrap(), gone.len() as u64);
    for id in &gone {
        assert!(
            store.execution(*id).await.unwrap().is_none(),
            "{id} should be pruned"
        );
    }
    for id in &kept {
        assert!(
            store.execution(*id).await.unwrap().is_some(),
            "{id} should be kept"
        );
    }
    assert_eq!(
        store.prune(&rule).await.unwrap(),
        0,
        "nothing more to prune"
    );

    // Leave no finished execution behind for the next run's general cut.
    let tidy = PruneRule {
        before: DateTime::from_timestamp(0, 0).unwrap(),
        per_scenario: vec![(general, now()), (longer, now()), (shorter, now())],
    };
    assert_eq!(store.prune(&tidy).await.unwrap(), 4);
    assert!(store.execution(recent).await.unwrap().is_none());
    assert!(store.execution(ended_late).await.unwrap().is_none());
    assert!(store.execution(longer_kept).await.unwrap().is_none());
    assert!(store.execution(kept[0]).await.unwrap().is_some(), "running");
}
