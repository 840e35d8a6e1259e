//! A connected connection shared by three daemons on one PostgreSQL: 50
//! executions with an expired token make exactly one refresh request at
//! the authorization server; a refused refresh turns the connection
//! `needs_reconnect` (banner, `/metrics`), the executions stop `incomplete`,
//! and a reconnect lets every one of them finish, once. Needs
//! `SCENARIST_TEST_POSTGRES` (see `pg`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::connections_util::Setup;
use crate::daemon_util::eventually;
use crate::pg::Schema;
use crate::util::Scenarist;

async fn hook(client: &reqwest::Client, daemon: &str, n: usize) -> String {
    let response = client
        .post(format!("{daemon}/hooks/whoami"))
        .json(&serde_json::json!({ "n": n }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["execution_id"].as_str().unwrap().to_owned()
}

async fn statuses(store: &str) -> Vec<Value> {
    let out = Scenarist::new()
        .env("SCENARIST_STORE", store)
        .args(["executions", "list", "--limit", "1000", "--output", "json"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json().as_array().cloned().unwrap_or_default()
}

async fn all_in(store: &str, ids: &HashSet<String>, status: &str, seconds: u64) -> bool {
    eventually(seconds, || async {
        let rows = statuses(store).await;
        let there: HashSet<String> = rows
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.is_subset(&there)
    })
    .await
}

/// What the executions are, and the end of the first daemon's log.
async fn why(setup: &Setup) -> String {
    let rows = statuses(&setup.store()).await;
    let mut counts = std::collections::BTreeMap::new();
    for r in &rows {
        *counts
            .entry(format!("{} {}", r["status"], r["error"]))
            .or_insert(0) += 1;
    }
    let log = std::fs::read_to_string(setup.dir.path().join("daemon-0.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    format!("{counts:?}\n{}", tail.join("\n"))
}

#[tokio::test]
async fn three_daemons_refresh_an_expired_token_once_and_a_reconnect_resumes_what_a_refusal_stopped(
) {
    let Some(schema) = Schema::new("connect").await else {
        return;
    };
    // The first token is due a second after it is given (it lives 30s and
    // is renewed 29s before: oxide-auth's refresh tokens end with their
    // access token); the refreshed one lives an hour.
    let setup = Setup::with(
        30,
        "29s",
        Some(schema.url.clone()),
        "trigger: { webhook: { path: whoami } }",
    )
    .await;
    setup.connect().await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    setup.server.set_lifetime(3600);
    let daemons = vec![
        setup.serve(0).await,
        setup.serve(1).await,
        setup.serve(2).await,
    ];
    let client = reqwest::Client::new();
    let sends = (0..50).map(|n| {
        let (client, url) = (client.clone(), daemons[n % 3].url.clone());
        async move { hook(&client, &url, n).await }
    });
    let ids: HashSet<String> = futures::future::join_all(sends).await.into_iter().collect();
    assert!(
        all_in(&setup.store(), &ids, "succeeded", 60).await,
        "50 succeeded: {}",
        why(&setup).await
    );
    assert_eq!(
        setup.server.requests("refresh_token"),
        1,
        "exactly one refresh across three daemons"
    );
    assert_eq!(
        setup
            .server
            .served
            .load(std::sync::atomic::Ordering::SeqCst),
        50
    );

    // The provider revokes the grant: the next refresh is refused.
    setup.server.revoke_refresh_tokens(true);
    setup.server.revoke_access_tokens();
    let sends = (0..10).map(|n| {
        let (client, url) = (client.clone(), daemons[n % 3].url.clone());
        async move { hook(&client, &url, 100 + n).await }
    });
    let stopped: HashSet<String> = futures::future::join_all(sends).await.into_iter().collect();
    assert!(
        all_in(&setup.store(), &stopped, "incomplete", 60).await,
        "10 incomplete"
    );
    assert_eq!(
        setup.server.requests("refresh_token"),
        2,
        "one refused refresh, then no more asking"
    );
    let metrics = client
        .get(format!("{}/metrics", daemons[1].url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scenarist_connections{status=\"needs_reconnect\"} 1"),
        "{metrics}"
    );
    let home = client
        .get(format!("{}/ui", daemons[2].url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Connection <strong>crm</strong> needs to be reconnected"),
        "the banner"
    );

    setup.server.revoke_refresh_tokens(false);
    let printed = setup.connect().await;
    assert!(
        printed.contains("10 execution(s) waiting for it go on"),
        "{printed}"
    );
    assert!(
        all_in(&setup.store(), &stopped, "succeeded", 60).await,
        "10 resumed"
    );
    assert_eq!(
        setup
            .server
            .served
            .load(std::sync::atomic::Ordering::SeqCst),
        60,
        "each ran its request once"
    );
    let metrics = client
        .get(format!("{}/metrics", daemons[0].url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scenarist_connections{status=\"needs_reconnect\"} 0"),
        "{metrics}"
    );
    let logs: String = (0..3)
        .map(|n| {
            std::fs::read_to_string(setup.dir.path().join(format!("daemon-{n}.log")))
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        setup.leaked(&logs),
        Vec::<String>::new(),
        "no token in the daemons' logs"
    );
    for daemon in daemons {
        daemon.stop().await;
    }
    schema.drop().await;
}
