//! Correlated waits (`wait_for`, `emit`) with real processes: the daemon on a
//! SQLite file, the CLI, the admin API, SIGKILL and restarts, and a local
//! HTTP server standing in for the referral engine.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::daemon_util::eventually;
use crate::waits_util::{api_emit, hook, journey, signup, until_waiting, World};

#[tokio::test]
async fn a_wait_resumes_once_on_an_event_from_the_cli_and_from_the_api() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(&world.server.uri(), "      timeout: 90d", ""),
    );
    let daemon = world.serve().await;

    let lee = signup(&daemon, "lee@bigco.example").await;
    until_waiting(&world, &lee).await;
    let waits = world.waits(&["--key", "lee@bigco.example"]).await;
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0]["event"], "deal.closed_won");
    assert_eq!(waits[0]["step"], "deal_won");
    assert!(
        world.qualified().await.is_empty(),
        "nothing before the deal"
    );
    let approve = world.cli().args(["approve", &lee]).run().await;
    assert_ne!(approve.code, 0);
    assert!(
        approve
            .stderr
            .contains("waits for the event deal.closed_won [lee@bigco.example]"),
        "{}",
        approve.stderr
    );

    let emitted = world
        .emit(
            "deal.closed_won",
            "lee@bigco.example",
            json!({ "amount": 4000 }),
        )
        .await;
    assert_eq!(emitted["resumed"], json!([lee]));
    world.wait_status(&lee, "succeeded", 20).await;
    let doc = world.execution(&lee).await;
    let wait = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "deal_won")
        .unwrap()
        .clone();
    assert_eq!(wait["output"]["event_id"], emitted["event_id"]);
    assert_eq!(wait["output"]["data"]["amount"], 4000);
    assert_eq!(wait["output"]["timed_out"], false);

    // The same through the admin API.
    let kim = signup(&daemon, "kim@bigco.example").await;
    until_waiting(&world, &kim).await;
    let listed: Vec<Value> =
        reqwest::get(format!("{}/api/waits?key=kim@bigco.example", daemon.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let metrics = reqwest::get(format!("{}/metrics", daemon.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge_ok = eventually(5, || async {
        reqwest::get(format!("{}/metrics", daemon.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("scenarist_waiting_for_event{event=\"deal.closed_won\"} 1")
    })
    .await;
    assert!(gauge_ok, "{metrics}");
    let answer = api_emit(
        &daemon,
        "deal.closed_won",
        "kim@bigco.example",
        json!({ "amount": 900 }),
    )
    .await;
    assert_eq!(answer["resumed"], json!([kim]));
    world.wait_status(&kim, "succeeded", 20).await;

    let sent = world.qualified().await;
    assert_eq!(sent.len(), 2, "one qualification each: {sent:?}");
    // A second event for Lee resumes nothing: the wait is over.
    let again = world
        .emit(
            "deal.closed_won",
            "lee@bigco.example",
            json!({ "amount": 1 }),
        )
        .await;
    assert_eq!(again["resumed"], json!([]));
    let events = world
        .cli()
        .args(["events", "--key", "lee@bigco.example", "--output", "json"])
        .run()
        .await
        .json();
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert_eq!(events[1]["resumed"], json!([lee]), "{events:#}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.qualified().await.len(), 2);
    daemon.stop().await;
}

#[tokio::test]
async fn an_event_that_arrives_before_the_wait_starts_is_taken() {
    let world = World::new().await;
    // The sign-up's execution is accepted, then spends 2s before its wait:
    // the deal closes in between.
    world.write(
        "journey.yaml",
        &journey(
            &world.server.uri(),
            "      timeout: 90d",
            "  - id: settle\n    delay: { for: 2s }",
        ),
    );
    let daemon = world.serve().await;
    let lee = signup(&daemon, "lee@bigco.example").await;
    let emitted = world
        .emit(
            "deal.closed_won",
            "lee@bigco.example",
            json!({ "amount": 700 }),
        )
        .await;
    assert_eq!(emitted["resumed"], json!([]), "nobody waits yet");
    world.wait_status(&lee, "succeeded", 20).await;
    let sent = world.qualified().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["amount"], 700);

    // An event older than the execution is not taken without `lookback`...
    world
        .emit(
            "deal.closed_won",
            "old@bigco.example",
            json!({ "amount": 1 }),
        )
        .await;
    let old = signup(&daemon, "old@bigco.example").await;
    until_waiting(&world, &old).await;
    daemon.stop().await;

    // ...and is with one.
    world.write(
        "journey.yaml",
        &journey(
            &world.server.uri(),
            "      timeout: 90d\n      lookback: 1h",
            "",
        ),
    );
    let daemon = world.serve().await;
    world
        .emit(
            "deal.closed_won",
            "early@bigco.example",
            json!({ "amount": 2 }),
        )
        .await;
    let early = signup(&daemon, "early@bigco.example").await;
    world.wait_status(&early, "succeeded", 20).await;
    let doc = world.execution(&early).await;
    assert!(
        doc["steps"].to_string().contains("before the wait started"),
        "{doc:#}"
    );
    assert_eq!(world.status(&old).await, "waiting");
    daemon.stop().await;
}

#[tokio::test]
async fn an_event_resumes_every_waiter_of_its_key_and_no_other_and_match_false_keeps_waiting() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(
            &world.server.uri(),
            "      match: { value: \"{{ event.data.amount }}\", gte: 500 }\n      timeout: 90d",
            "",
        ),
    );
    let daemon = world.serve().await;
    let first = signup(&daemon, "lee@bigco.example").await;
    let second = signup(&daemon, "lee@bigco.example").await;
    let other = signup(&daemon, "kim@bigco.example").await;
    for id in [&first, &second, &other] {
        until_waiting(&world, id).await;
    }

    // Too small: both of Lee's executions see it, neither takes it.
    let small = world
        .emit(
            "deal.closed_won",
            "lee@bigco.example",
            json!({ "amount": 100 }),
        )
        .await;
    let mut resumed: Vec<String> = small["resumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    resumed.sort();
    let mut lees = vec![first.clone(), second.clone()];
    lees.sort();
    assert_eq!(resumed, lees);
    for id in [&first, &second] {
        until_waiting(&world, id).await;
    }
    assert!(world.qualified().await.is_empty());

    let big = world
        .emit(
            "deal.closed_won",
            "lee@bigco.example",
            json!({ "amount": 4000 }),
        )
        .await;
    assert_eq!(big["resumed"].as_array().unwrap().len(), 2);
    world.wait_status(&first, "succeeded", 20).await;
    world.wait_status(&second, "succeeded", 20).await;
    let sent = world.qualified().await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s["amount"] == 4000), "{sent:?}");
    assert_eq!(
        world.status(&other).await,
        "waiting",
        "another key is untouched"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn deadlines_pass_while_the_daemon_is_stopped_and_are_kept_after_the_restart() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(
            &world.server.uri(),
            "      timeout: 2s\n      on_timeout: continue",
            "",
        ),
    );
    let strict = journey(&world.server.uri(), "      timeout: 2s", "")
        .replace("name: journey", "name: strict")
        .replace("path: /signup", "path: /strict");
    world.write("strict.yaml", &strict);
    let daemon = world.serve().await;
    let lenient = signup(&daemon, "lee@bigco.example").await;
    let strict_id = hook(&daemon, "strict", json!({ "email": "kim@bigco.example" })).await;
    until_waiting(&world, &lenient).await;
    until_waiting(&world, &strict_id).await;
    let deadline = world.waits(&["--key", "kim@bigco.example"]).await[0]["deadline"].clone();
    daemon.stop().await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    let daemon = world.serve().await;
    world.wait_status(&lenient, "succeeded", 20).await;
    world.wait_status(&strict_id, "failed", 20).await;
    let doc = world.execution(&lenient).await;
    assert!(
        doc["steps"].to_string().contains("\"timed_out\":true"),
        "{doc:#}"
    );
    assert!(
        world.qualified().await.is_empty(),
        "a timed-out wait qualifies nothing"
    );
    let failed = world.execution(&strict_id).await;
    let error = failed["error"].as_str().unwrap();
    for part in ["deal_won", "deal.closed_won", "kim@bigco.example", "until"] {
        assert!(error.contains(part), "{part} missing from: {error}");
    }
    // The deadline it failed at is the one stored when the wait started.
    let stored: chrono::DateTime<chrono::Utc> = deadline.as_str().unwrap().parse().unwrap();
    assert!(
        error.contains(&stored.format("%Y-%m-%dT%H:%M:%S").to_string()),
        "{error} vs {stored}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_daemon_killed_right_after_an_event_committed_resumes_the_wait_once() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(&world.server.uri(), "      timeout: 90d", ""),
    );
    let daemon = world.serve().await;
    let lee = signup(&daemon, "lee@bigco.example").await;
    until_waiting(&world, &lee).await;
    let answer = api_emit(
        &daemon,
        "deal.closed_won",
        "lee@bigco.example",
        json!({ "amount": 4000 }),
    )
    .await;
    daemon.kill().await;
    assert_eq!(answer["resumed"], json!([lee]));

    let daemon = world.serve().await;
    world.wait_status(&lee, "succeeded", 20).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The kill may land while the resumed execution's request is in flight:
    // it is then sent again after the restart, with the same key.
    assert!(!world.qualified().await.is_empty());
    assert_eq!(world.qualified_keys().await.len(), 1, "one downstream call");
    daemon.stop().await;
}

/// The CRM's deal webhook turned into an event, and the journey waiting for it.
fn announcer(uri: &str) -> String {
    format!(
        r#"name: announce
trigger:
  webhook: {{ path: /deal }}
steps:
  - id: won
    emit:
      event: deal.closed_won
      key: "{{{{ trigger.body.email }}}}"
      data: {{ amount: "{{{{ trigger.body.amount }}}}" }}
  - id: tell
    http: {{ method: POST, url: "{uri}/crm", expect: [200] }}
"#
    )
}

#[tokio::test]
async fn a_resumed_or_replayed_execution_does_not_emit_twice() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(&world.server.uri(), "      timeout: 90d", ""),
    );
    // The CRM call fails once (the announcer stops incomplete), then works.
    Mock::given(method("POST"))
        .and(path("/crm"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&world.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&world.server)
        .await;
    let yaml = announcer(&world.server.uri())
        .replace("expect: [200] }", "expect: [200] }\n    on_error: break");
    world.write("announce.yaml", &yaml);
    let daemon = world.serve().await;
    let lee = signup(&daemon, "lee@bigco.example").await;
    until_waiting(&world, &lee).await;
    let deal = hook(
        &daemon,
        "deal",
        json!({ "email": "lee@bigco.example", "amount": 4000 }),
    )
    .await;
    world.wait_status(&lee, "succeeded", 20).await;
    daemon.stop().await;

    // A second waiter for the same key, then the announcer resumed and replayed.
    let daemon = world.serve().await;
    let kim = signup(&daemon, "lee@bigco.example").await;
    until_waiting(&world, &kim).await;
    daemon.stop().await;
    if world.status(&deal).await == "incomplete" {
        let retried = world.cli().args(["executions", "retry", &deal]).run().await;
        assert_eq!(retried.code, 0, "{}", retried.stderr);
    }
    let replayed = world
        .cli()
        .args(["replay", &deal, "--output", "json"])
        .run()
        .await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let replay = replayed.json();
    let won = replay["steps"]["won"].clone();
    assert!(
        won["detail"].as_str().unwrap().contains("already emitted"),
        "{replay:#}"
    );
    assert_eq!(
        won["output"]["resumed"], 1,
        "the first emit's waiter, not a new one"
    );
    let events = world
        .cli()
        .args(["events", "--output", "json"])
        .run()
        .await
        .json();
    assert_eq!(events.as_array().unwrap().len(), 1, "one event: {events:#}");
    assert_eq!(
        world.status(&kim).await,
        "waiting",
        "the later waiter was not resumed by a replay"
    );
    assert_eq!(world.status(&deal).await, "succeeded");
    assert_eq!(world.qualified().await.len(), 1);
}

#[tokio::test]
async fn bad_events_are_refused_with_a_clear_error() {
    let world = World::new().await;
    world.write(
        "journey.yaml",
        &journey(&world.server.uri(), "      timeout: 90d", ""),
    );
    let out = world.cli().args(["emit", "Deal Won", "lee"]).run().await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not an event name"),
        "{}",
        out.stderr
    );
    let out = world
        .cli()
        .args(["emit", "deal.won", "lee", "--data", "{nope"])
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--data is not JSON"), "{}", out.stderr);
    let daemon = world.serve().await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/events", daemon.url))
        .json(&json!({ "event": "deal.won" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client
        .post(format!("{}/api/events", daemon.url))
        .json(&json!({ "event": "deal.won", "key": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    daemon.stop().await;
}
