//! Backpressure in seconds of work: a daemon whose executions do not
//! complete stops accepting events once its queue is longer than it can
//! work off, says when to come back, and loses none of those it accepted.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{downstream, scenario};
use crate::daemon_util::{eventually, executions, serve, ServeOptions};

#[tokio::test]
async fn a_queue_no_worker_can_work_off_answers_503_with_retry_after_and_keeps_what_it_took() {
    let (url, api) = downstream(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(scenarios.join("qualify.yaml"), scenario(&url, "")).unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    // One worker, held at the downstream: while nothing completes, 10 may wait.
    let daemon = serve(&ServeOptions {
        dir: &scenarios,
        store: &store,
        args: vec![
            "--workers".into(),
            "1".into(),
            "--max-backlog".into(),
            "10s".into(),
        ],
        env: Vec::new(),
        log: dir.path().join("daemon.log"),
    })
    .await;
    let client = reqwest::Client::new();
    let held = api.close().await;
    let send = |n: usize| {
        let (client, url) = (client.clone(), daemon.url.clone());
        async move {
            client
                .post(format!("{url}/hooks/qualify"))
                .json(&serde_json::json!({ "email": format!("lead{n}@example.com") }))
                .send()
                .await
                .unwrap()
        }
    };
    // A burst on a daemon that measured nothing yet is taken whole.
    let mut accepted = 0;
    for n in 0..30 {
        assert_eq!(send(n).await.status(), 202);
        accepted += 1;
    }
    // Once the queue stayed full for a second with nothing completed, the
    // daemon says so; the events sent meanwhile are accepted.
    let mut refused = None;
    for n in 30..200 {
        let answer = send(n).await;
        match answer.status().as_u16() {
            202 => accepted += 1,
            503 => {
                refused = Some(answer);
                break;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("a 503 within 170 sends, 8.5 s");
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.unwrap();
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("executions are waiting, no execution completed in the last 3 s"),
        "{error}"
    );
    drop(held);
    // Every accepted event runs once the downstream answers again.
    let url = daemon.url.clone();
    let done = eventually(30, || {
        let url = url.clone();
        async move { executions(&url, "status=succeeded").await.len() == accepted }
    })
    .await;
    assert!(done, "every accepted execution succeeded");
    assert_eq!(api.keys.lock().unwrap().len(), accepted);
    daemon.stop().await;
}
