//! Several `scenarist serve` processes on one PostgreSQL database: work
//! spread over them, a killed daemon's executions taken over within the
//! lease, a paused one fenced off, concurrency limits, order and decisions
//! that hold across daemons, and the database going away. Needs
//! `SCENARIST_TEST_POSTGRES` (see `pg`); each test uses a schema of its own
//! and drops it afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{downstream, ordered_downstream, post_hook, scenario, Cluster, Proxy};
use crate::daemon_util::{eventually, Served};
use crate::pg::Schema;
use crate::util::Scenarist;

#[tokio::test]
async fn a_killed_daemon_is_taken_over_and_every_accepted_event_runs_once() {
    let Some(schema) = Schema::new("kill").await else {
        return;
    };
    // Slow enough that the killed daemon has executions in flight.
    let (url, down) = downstream(Duration::from_millis(100)).await;
    let cluster = Cluster::new(schema, &scenario(&url, ""));
    let daemons = vec![
        cluster.daemon(0, "2s").await,
        cluster.daemon(1, "2s").await,
        cluster.daemon(2, "2s").await,
    ];
    let urls: Vec<String> = daemons.iter().map(|d| d.url.clone()).collect();
    let client = reqwest::Client::new();
    let mut accepted = HashSet::new();
    let mut daemons: Vec<Option<Served>> = daemons.into_iter().map(Some).collect();
    let mut killed_at = None;
    for batch in 0..30 {
        // After the kill, the load balancer sends to the two that answer.
        let alive: Vec<&String> = urls
            .iter()
            .enumerate()
            .filter(|(i, _)| daemons[*i].is_some())
            .map(|(_, u)| u)
            .collect();
        let sends = (0..20).map(|i| {
            let n = batch * 20 + i;
            let target = alive[n % alive.len()].clone();
            let client = client.clone();
            async move { post_hook(&client, &target, &format!("lead-{n}@example.com")).await }
        });
        for id in futures::future::join_all(sends).await.into_iter().flatten() {
            accepted.insert(id);
        }
        if batch == 10 {
            // Kill it while it holds executions at the slow downstream: 15 of
            // this batch's 20 in flight means at least one is daemon 1's
            // (daemons 0 and 2 got 14 of them at most).
            let deadline = Instant::now() + Duration::from_secs(3);
            while down.in_flight.load(Ordering::SeqCst) < 15 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            daemons[1].take().unwrap().kill().await;
            killed_at = Some(Instant::now());
        }
    }
    // A request in flight to the daemon at the moment it died may go unanswered.
    assert!(
        accepted.len() >= 580,
        "webhooks accepted: {}",
        accepted.len()
    );
    if !cluster.all_succeeded(&accepted, 90).await {
        let mut by_status: HashMap<String, usize> = HashMap::new();
        let mut stuck = String::new();
        let logs: Vec<String> = (0..3)
            .map(|n| {
                std::fs::read_to_string(cluster.dir.path().join(format!("daemon-{n}.log")))
                    .unwrap_or_default()
            })
            .collect();
        for row in cluster.executions().await {
            *by_status.entry(row["status"].to_string()).or_default() += 1;
            if row["status"] != "succeeded" {
                let id = row["id"].as_str().unwrap();
                stuck.push_str(&format!("\n{row}"));
                for (n, log) in logs.iter().enumerate() {
                    for line in log.lines().filter(|l| l.contains(id)) {
                        stuck.push_str(&format!("\n  daemon {n}: {line}"));
                    }
                }
            }
        }
        panic!("not every accepted event finished: {by_status:?}{stuck}");
    }
    let taken_over_within = killed_at.unwrap().elapsed();
    let rows = cluster.executions().await;
    assert_eq!(rows.len(), accepted.len(), "one execution per 202, no more");
    assert!(
        rows.iter().any(|r| r["attempt"].as_u64() >= Some(2)),
        "some executions of the killed daemon were taken over"
    );
    let keys = down.keys.lock().unwrap().clone();
    assert_eq!(
        keys.len(),
        accepted.len(),
        "one Idempotency-Key per execution"
    );
    // All of it, the dead daemon's share included, within the lease plus
    // 5 s of the last webhook (the tests share two cores, hence the margin).
    assert!(
        taken_over_within < Duration::from_secs(2 + 5 + 60),
        "{taken_over_within:?}"
    );
    for daemon in daemons.into_iter().flatten() {
        daemon.stop().await;
    }
    cluster.schema.drop().await;
}

#[tokio::test]
async fn a_paused_daemon_is_fenced_off_once_its_execution_is_taken_over() {
    let Some(schema) = Schema::new("pause").await else {
        return;
    };
    let (url, down) = downstream(Duration::from_millis(1500)).await;
    let cluster = Cluster::new(schema, &scenario(&url, ""));
    let a = cluster.daemon(0, "2s").await;
    let client = reqwest::Client::new();
    let id = post_hook(&client, &a.url, "lee@bigco.example")
        .await
        .unwrap();
    assert!(
        eventually(10, || async { down.in_flight.load(Ordering::SeqCst) == 1 }).await,
        "daemon A is calling downstream"
    );
    let pid = a.child.id().unwrap() as i32;
    // SAFETY: signals to a child this test started, by its pid.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let b = cluster.daemon(1, "2s").await;
    let ids = HashSet::from([id.clone()]);
    let finished = cluster.all_succeeded(&ids, 20).await;
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(finished, "daemon B took the execution over and finished it");
    // A wakes up, its request answers, and it must not write anything more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let doc = Scenarist::new()
        .env("SCENARIST_STORE", cluster.schema.url.clone())
        .args(["executions", "show", &id, "--output", "json"])
        .run()
        .await
        .json();
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["attempt"], 2, "taken over once: {doc:#}");
    let keys = down.keys.lock().unwrap().clone();
    assert_eq!(
        keys.len(),
        1,
        "the step in flight was sent again with the same key"
    );
    assert!(
        a.log().contains("taken over"),
        "daemon A says it dropped the execution:\n{}",
        a.log()
    );
    a.stop().await;
    b.stop().await;
    cluster.schema.drop().await;
}

#[tokio::test]
async fn concurrency_one_holds_across_three_daemons_and_decisions_cross_daemons() {
    let Some(schema) = Schema::new("limit").await else {
        return;
    };
    let (url, down) = downstream(Duration::from_millis(30)).await;
    let cluster = Cluster::new(schema, &scenario(&url, "settings: { concurrency: 1 }"));
    let daemons = vec![
        cluster.daemon(0, "5s").await,
        cluster.daemon(1, "5s").await,
        cluster.daemon(2, "5s").await,
    ];
    let client = reqwest::Client::new();
    let mut accepted = HashSet::new();
    let sends = (0..30).map(|n| {
        let target = daemons[n % 3].url.clone();
        let client = client.clone();
        async move { post_hook(&client, &target, &format!("lead-{n}@example.com")).await }
    });
    for id in futures::future::join_all(sends).await.into_iter().flatten() {
        accepted.insert(id);
    }
    assert_eq!(accepted.len(), 30);
    assert!(cluster.all_succeeded(&accepted, 30).await);
    assert_eq!(
        down.most.load(Ordering::SeqCst),
        1,
        "the downstream server never saw two at once"
    );
    for daemon in daemons {
        daemon.stop().await;
    }
    cluster.schema.drop().await;
}

#[tokio::test]
async fn a_decision_through_one_daemon_goes_on_once_on_any() {
    let Some(schema) = Schema::new("decide").await else {
        return;
    };
    let (url, down) = downstream(Duration::from_millis(1)).await;
    let yaml = scenario(&url, "").replace(
        "  - id: qualify\n",
        "  - id: review\n    approval: { message: \"ok?\" }\n  - id: qualify\n",
    );
    let cluster = Cluster::new(schema, &yaml);
    let a = cluster.daemon(0, "5s").await;
    let b = cluster.daemon(1, "5s").await;
    let client = reqwest::Client::new();
    let id = post_hook(&client, &b.url, "lee@bigco.example")
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            cluster
                .executions()
                .await
                .iter()
                .any(|r| r["id"] == id.as_str() && r["status"] == "waiting")
        })
        .await
    );
    let approve = |daemon: String| {
        let client = client.clone();
        let id = id.clone();
        async move {
            client
                .post(format!("{daemon}/api/executions/{id}/approve"))
                .json(&json!({ "by": "olivia" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (first, second) = tokio::join!(approve(a.url.clone()), approve(b.url.clone()));
    let mut codes = [first, second];
    codes.sort();
    assert_eq!(
        codes,
        [202, 409],
        "one decision counts, the other is refused"
    );
    assert!(cluster.all_succeeded(&HashSet::from([id]), 20).await);
    assert_eq!(down.keys.lock().unwrap().len(), 1);
    a.stop().await;
    b.stop().await;
    cluster.schema.drop().await;
}

#[tokio::test]
async fn a_schedule_on_three_daemons_fires_each_tick_once() {
    let Some(schema) = Schema::new("ticks").await else {
        return;
    };
    let yaml = r#"name: qualify
trigger:
  schedule: { every: 1s, catch_up: none }
steps:
  - id: tick
    set: { at: "{{ trigger.body.scheduled_at }}" }
"#;
    let cluster = Cluster::new(schema, yaml);
    let daemons = vec![
        cluster.daemon(0, "5s").await,
        cluster.daemon(1, "5s").await,
        cluster.daemon(2, "5s").await,
    ];
    tokio::time::sleep(Duration::from_secs(6)).await;
    for daemon in daemons {
        daemon.stop().await;
    }
    let store = scenarist::store::open(&cluster.schema.url).unwrap();
    let rows = cluster.executions().await;
    assert!(rows.len() >= 4, "about one tick a second: {}", rows.len());
    let mut ticks = HashSet::new();
    for row in &rows {
        let id = uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap();
        let stored = store.execution(id).await.unwrap().unwrap();
        let at = stored.trigger["body"]["scheduled_at"].to_string();
        assert!(ticks.insert(at.clone()), "tick {at} fired twice");
    }
    cluster.schema.drop().await;
}

#[tokio::test]
async fn per_key_order_holds_across_three_daemons() {
    let Some(schema) = Schema::new("order").await else {
        return;
    };
    let (url, down) = ordered_downstream().await;
    let yaml = format!(
        r#"name: qualify
settings: {{ concurrency: {{ limit: 1, key: "{{{{ trigger.body.email }}}}" }} }}
trigger:
  webhook: {{ path: qualify }}
steps:
  - id: qualify
    http: {{ method: POST, url: "{url}/qualify", json: {{ email: "{{{{ trigger.body.email }}}}", n: "{{{{ trigger.body.n }}}}" }} }}
"#
    );
    let cluster = Cluster::new(schema, &yaml);
    let daemons = vec![
        cluster.daemon(0, "5s").await,
        cluster.daemon(1, "5s").await,
        cluster.daemon(2, "5s").await,
    ];
    let client = reqwest::Client::new();
    // Three leads; each lead's events go to the daemons in turn, one after
    // the other (each accepted before the next is sent), the leads at once.
    let leads = (0..3).map(|lead| {
        let client = client.clone();
        let urls: Vec<String> = daemons.iter().map(|d| d.url.clone()).collect();
        async move {
            let mut ids = Vec::new();
            for n in 0..12u64 {
                let response = client
                    .post(format!("{}/hooks/qualify", urls[(n as usize + lead) % 3]))
                    .json(&json!({ "email": format!("lead-{lead}@example.com"), "n": n }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
                let body: Value = response.json().await.unwrap();
                ids.push(body["execution_id"].as_str().unwrap().to_owned());
            }
            ids
        }
    });
    let accepted: HashSet<String> = futures::future::join_all(leads)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(cluster.all_succeeded(&accepted, 60).await);
    let seen = down.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (key, order) in &seen {
        assert_eq!(order, &(0..12).collect::<Vec<u64>>(), "{key} out of order");
    }
    assert_eq!(
        down.overlaps.load(Ordering::SeqCst),
        0,
        "one lead at a time"
    );
    for daemon in daemons {
        daemon.stop().await;
    }
    cluster.schema.drop().await;
}

#[tokio::test]
async fn connections_terminated_by_the_server_lose_nothing_acknowledged() {
    let Some(schema) = Schema::new("terminate").await else {
        return;
    };
    // This test's daemons name their connections, so that only theirs are cut.
    let app = schema.name.clone();
    let separator = if schema.url.contains('?') { '&' } else { '?' };
    let url_with_name = format!("{}{separator}application_name={app}", schema.url);
    let (url, down) = downstream(Duration::from_millis(5)).await;
    let mut cluster = Cluster::new(schema, &scenario(&url, ""));
    cluster.schema.url = url_with_name;
    let daemons = vec![cluster.daemon(0, "5s").await, cluster.daemon(1, "5s").await];
    let server = crate::pg::server().unwrap();
    let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let cutter = tokio::spawn(async move {
        let mut cut = 0u64;
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let rows = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                    &[&app],
                )
                .await
                .unwrap();
            cut += rows.len() as u64;
        }
        cut
    });
    let client = reqwest::Client::new();
    let mut accepted = HashSet::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let sends = (0..10).map(|i| {
            let target = daemons[(n + i) % 2].url.clone();
            let client = client.clone();
            let email = format!("lead-{n}-{i}@example.com");
            async move { post_hook(&client, &target, &email).await }
        });
        accepted.extend(futures::future::join_all(sends).await.into_iter().flatten());
        n += 10;
    }
    let cut = cutter.await.unwrap();
    assert!(cut > 0, "connections were terminated");
    assert!(!accepted.is_empty());
    assert!(
        cluster.all_succeeded(&accepted, 60).await,
        "every acknowledged event finished"
    );
    assert_eq!(down.keys.lock().unwrap().len(), accepted.len());
    for daemon in daemons {
        daemon.stop().await;
    }
    cluster.schema.drop().await;
}

#[tokio::test]
async fn when_the_database_goes_away_webhooks_answer_503_and_all_resumes_by_itself() {
    let Some(schema) = Schema::new("away").await else {
        return;
    };
    // The server URL's host and port, replaced by the proxy's.
    let server = crate::pg::server().unwrap();
    let config: tokio_postgres::Config = server.parse().unwrap();
    let (host, port) = match (config.get_hosts().first(), config.get_ports().first()) {
        (Some(tokio_postgres::config::Host::Tcp(h)), Some(p)) => (h.clone(), *p),
        _ => ("127.0.0.1".to_owned(), 5432),
    };
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    let (url, down) = downstream(Duration::from_millis(1)).await;
    let mut cluster = Cluster::new(schema, &scenario(&url, ""));
    let direct = cluster.schema.url.clone();
    cluster.schema.url = direct.replacen(
        &format!("{host}:{port}"),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    );
    assert_ne!(
        cluster.schema.url, direct,
        "the store goes through the proxy"
    );
    let daemon = cluster.daemon(0, "5s").await;
    let client = reqwest::Client::new();
    let mut accepted = HashSet::new();
    for n in 0..20 {
        accepted.insert(
            post_hook(&client, &daemon.url, &format!("before-{n}@example.com"))
                .await
                .unwrap(),
        );
    }

    proxy.cut();
    for n in 0..10 {
        let response = client
            .post(format!("{}/hooks/qualify", daemon.url))
            .json(&json!({ "email": format!("during-{n}@example.com") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "never a 202 without a commit");
    }
    let health = client
        .get(format!("{}/healthz", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let said: Value = health.json().await.unwrap();
    assert_eq!(said["status"], "store unreachable", "{said}");

    proxy.restore();
    assert!(
        eventually(30, || async {
            client
                .get(format!("{}/healthz", daemon.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await,
        "healthy again by itself"
    );
    for n in 0..20 {
        accepted.insert(
            post_hook(&client, &daemon.url, &format!("after-{n}@example.com"))
                .await
                .unwrap(),
        );
    }
    // Read through the direct URL: the proxy's links are the daemon's.
    cluster.schema.url = direct;
    assert!(
        cluster.all_succeeded(&accepted, 60).await,
        "nothing acknowledged was lost"
    );
    assert_eq!(down.keys.lock().unwrap().len(), accepted.len());
    daemon.stop().await;
    cluster.schema.drop().await;
}
