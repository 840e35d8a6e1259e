//! Scenario versions, executions and their steps: saving, reading, `find_ids`, `list`.

use chrono::Duration;
use scenarist::engine::{ExecutionError, ExecutionStatus, StepStatus};
use scenarist::store::{ExecutionFilter, Finish, NewExecution, Store};
use serde_json::{json, Map};
use uuid::Uuid;

use super::{assert_same_step, execution_in, id_at, ids, ms, new_execution, now, step, unique};

/// A version's text is kept per (scenario, version); saving it again is fine.
pub(super) async fn versions_are_kept_per_scenario_and_version(store: &dyn Store) {
    let scenario = unique("versions");
    let other = unique("versions");
    let source = "name: welcome\nsteps:\n  - id: hi\n    set: { greeting: \"Grüß dich\" }\n";
    assert_eq!(store.version_source(&scenario, "a1").await.unwrap(), None);
    store.save_version(&scenario, "a1", source).await.unwrap();
    store.save_version(&scenario, "a1", source).await.unwrap();
    store
        .save_version(&scenario, "b2", "name: welcome\n")
        .await
        .unwrap();
    assert_eq!(
        store
            .version_source(&scenario, "a1")
            .await
            .unwrap()
            .as_deref(),
        Some(source)
    );
    assert_eq!(
        store
            .version_source(&scenario, "b2")
            .await
            .unwrap()
            .as_deref(),
        Some("name: welcome\n")
    );
    assert_eq!(
        store.version_source(&scenario, "c3").await.unwrap(),
        None,
        "an unknown version"
    );
    assert_eq!(
        store.version_source(&other, "a1").await.unwrap(),
        None,
        "versions belong to their scenario"
    );
}

/// What `start_execution` commits comes back as it was, to the microsecond;
/// steps come in order and a step recorded again replaces its record.
pub(super) async fn an_execution_keeps_its_trigger_vars_steps_and_times(store: &dyn Store) {
    let scenario = unique("journal");
    let t0 = now() - Duration::minutes(5) + Duration::microseconds(7);
    let trigger = json!({
        "body": { "email": "ann@example.com", "amount": 12.5, "tags": ["a", null, { "ü": "é" }] },
        "headers": { "x-request-id": "r-1" },
        "query": { "dry": "no" },
        "received_at": "2026-01-02T03:04:05.678Z",
    });
    let mut vars = Map::new();
    vars.insert("tier".to_owned(), json!("gold"));
    vars.insert("limit".to_owned(), json!(3));
    let replayed = Uuid::now_v7();
    let id = Uuid::now_v7();
    store
        .start_execution(NewExecution {
            id,
            scenario: scenario.clone(),
            version: "sha256-abc".to_owned(),
            trigger: trigger.clone(),
            vars: vars.clone(),
            started_at: t0,
            owner: "host/1/start".to_owned(),
            replay_of: Some(replayed),
            keys: Vec::new(),
        })
        .await
        .unwrap();

    let running = store.execution(id).await.unwrap().expect("started");
    assert_eq!(running.summary.id, id);
    assert_eq!(running.summary.scenario, scenario);
    assert_eq!(running.summary.version, "sha256-abc");
    assert_eq!(running.summary.status, ExecutionStatus::Running);
    assert_eq!(running.summary.attempt, 1);
    assert_eq!(
        running.summary.started_at, t0,
        "started_at to the microsecond"
    );
    assert_eq!(running.summary.finished_at, None);
    assert_eq!(running.summary.next_retry_at, None);
    assert_eq!(running.summary.error_step, None);
    assert_eq!(running.summary.error, None);
    assert_eq!(running.summary.owner.as_deref(), Some("host/1/start"));
    assert_eq!(running.summary.replay_of, Some(replayed));
    assert_eq!(running.trigger, trigger);
    assert_eq!(running.vars, vars);
    assert!(running.steps.is_empty());

    let mut first = step(
        "crm",
        "http",
        StepStatus::Succeeded,
        t0 + Duration::microseconds(1),
    );
    first.input = Some(json!({ "method": "POST", "url": "https://crm.example/leads" }));
    first.output = json!({ "status": 201, "body": { "id": 7 } });
    first.duration_ms = 12;
    first.detail = Some("POST https://crm.example/leads -> 201".to_owned());
    let mut failed = step(
        "route/enterprise/notify#3",
        "http",
        StepStatus::Failed,
        t0 + ms(2),
    );
    failed.error = Some("HTTP 503".to_owned());
    failed.output = json!({ "status": 503 });
    let mut rerun = step(
        "route/enterprise/notify#3",
        "http",
        StepStatus::Succeeded,
        t0 + ms(3) + Duration::microseconds(3),
    );
    rerun.attempts = 3;
    rerun.output = json!({ "status": 200 });
    rerun.duration_ms = 40;
    let mut last = step("done", "set", StepStatus::Succeeded, t0 + ms(4));
    last.output = json!({ "qualified": true });
    for record in [&first, &failed, &rerun, &last] {
        store.record_step(id, "host/1/start", record).await.unwrap();
    }

    let at = t0 + ms(5) + Duration::microseconds(9);
    store
        .finish_execution(
            id,
            "host/1/start",
            Finish {
                status: ExecutionStatus::Failed,
                error: Some(ExecutionError {
                    step: "done".to_owned(),
                    message: "boom: ünïcode \"quoted\"".to_owned(),
                }),
                finished_at: at,
                next_retry_at: None,
            },
        )
        .await
        .unwrap();

    let stored = store.execution(id).await.unwrap().expect("kept");
    let paths: Vec<&str> = stored.steps.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["crm", "route/enterprise/notify#3", "done"],
        "one record per step path, in order"
    );
    assert_same_step(&stored.steps[0], &first);
    assert_same_step(&stored.steps[1], &rerun);
    assert_same_step(&stored.steps[2], &last);
    assert_eq!(stored.summary.status, ExecutionStatus::Failed);
    assert_eq!(
        stored.summary.finished_at,
        Some(at),
        "finished_at to the microsecond"
    );
    assert_eq!(stored.summary.started_at, t0);
    assert_eq!(stored.summary.error_step.as_deref(), Some("done"));
    assert_eq!(
        stored.summary.error.as_deref(),
        Some("boom: ünïcode \"quoted\"")
    );
    assert_eq!(stored.summary.duration_ms(), Some(5));
    assert_eq!(stored.trigger, trigger);
    assert_eq!(stored.vars, vars);

    assert!(store.execution(Uuid::now_v7()).await.unwrap().is_none());
}

/// `find_ids` completes a prefix of the id's text (dashes included, any case).
pub(super) async fn find_ids_completes_a_prefix(store: &dyn Store) {
    let scenario = unique("find");
    // Three ids of one millisecond nobody else uses share their first 13 characters.
    let at = now() - Duration::days(3000) + ms(i64::from(Uuid::new_v4().as_bytes()[0]));
    let mut made = Vec::new();
    for _ in 0..3 {
        let mut new = new_execution(&scenario, at);
        new.id = id_at(at);
        made.push(new.id);
        store.start_execution(new).await.unwrap();
    }
    made.sort();
    let text = made[0].to_string();
    let prefix = &text[..13];
    assert!(made.iter().all(|id| id.to_string().starts_with(prefix)));

    let mut found = store.find_ids(prefix).await.unwrap();
    found.sort();
    assert_eq!(found, made, "every id starting with `{prefix}`");
    let mut found = store.find_ids(&prefix.to_ascii_uppercase()).await.unwrap();
    found.sort();
    assert_eq!(found, made, "a prefix typed in capitals");
    assert_eq!(store.find_ids(&text).await.unwrap(), vec![made[0]]);
    assert_eq!(store.find_ids(&text[..20]).await.unwrap(), vec![made[0]]);
    assert!(store
        .find_ids(&Uuid::now_v7().to_string())
        .await
        .unwrap()
        .is_empty());
}

/// `list` filters by scenario, status, start time and count, newest first.
pub(super) async fn list_filters_and_puts_the_newest_first(store: &dyn Store) {
    let scenario = unique("list");
    let other = unique("list");
    let t0 = now() - Duration::hours(1);
    let e0 = execution_in(store, &scenario, t0, ExecutionStatus::Succeeded).await;
    let e1 = execution_in(store, &scenario, t0 + ms(1000), ExecutionStatus::Failed).await;
    let elsewhere = execution_in(store, &other, t0 + ms(1500), ExecutionStatus::Succeeded).await;
    let e2 = execution_in(store, &scenario, t0 + ms(2000), ExecutionStatus::Succeeded).await;
    let e3 = execution_in(store, &scenario, t0 + ms(3000), ExecutionStatus::Running).await;

    let list = |filter: ExecutionFilter| async move { ids(&store.list(&filter).await.unwrap()) };
    let of = |scenario: &str| ExecutionFilter {
        scenario: Some(scenario.to_owned()),
        ..ExecutionFilter::default()
    };

    assert_eq!(
        list(of(&scenario)).await,
        vec![e3, e2, e1, e0],
        "newest first"
    );
    assert_eq!(list(of(&other)).await, vec![elsewhere]);
    assert_eq!(
        list(ExecutionFilter {
            status: Some(ExecutionStatus::Succeeded),
            ..of(&scenario)
        })
        .await,
        vec![e2, e0]
    );
    assert_eq!(
        list(ExecutionFilter {
            since: Some(t0 + ms(2000)),
            ..of(&scenario)
        })
        .await,
        vec![e3, e2],
        "since is inclusive"
    );
    assert_eq!(
        list(ExecutionFilter {
            limit: Some(2),
            ..of(&scenario)
        })
        .await,
        vec![e3, e2]
    );
    assert_eq!(
        list(ExecutionFilter {
            status: Some(ExecutionStatus::Failed),
            since: Some(t0),
            limit: Some(10),
            ..of(&scenario)
        })
        .await,
        vec![e1]
    );
    let listed = store.list(&of(&scenario)).await.unwrap();
    assert_eq!(listed[0].status, ExecutionStatus::Running);
    assert_eq!(listed[0].started_at, t0 + ms(3000));
    assert_eq!(listed[2].status, ExecutionStatus::Failed);
    assert_eq!(listed[2].error_step.as_deref(), Some("s"));
    assert_eq!(
        listed[2].finished_at,
        Some(t0 + ms(1000) + Duration::minutes(1))
    );
}
