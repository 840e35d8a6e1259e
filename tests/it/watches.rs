//! Poll triggers against a real local API that pages its items: each new item
//! runs once (with `changes` on and off, from every `start`), across a crash
//! while the answer is held, a failing API, hot reloads, `reset` and `poll`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use serde_json::{json, Value};

use crate::daemon_util::{eventually, executions, serve, ServeOptions};
use crate::util::Scenarist;

/// A paged API of items `{ id, created, amount }`, oldest first:
/// `GET /v1/items?created_after=T&starting_after=ID` answers three at a time.
#[derive(Default)]
pub struct Api {
    pub items: Mutex<Vec<Value>>,
    /// Answers 500 while above zero (counting down).
    pub failing: AtomicU32,
    /// Holds each answer this long (milliseconds), to crash a daemon meanwhile.
    pub hold_ms: AtomicU32,
    pub requests: AtomicU32,
    /// Requests for a first page: one per poll.
    pub polls: AtomicU32,
}

impl Api {
    pub fn add(&self, id: &str, created: i64) {
        self.items
            .lock()
            .unwrap()
            .push(json!({ "id": id, "created": created, "amount": 10 }));
    }

    pub fn update(&self, id: &str, created: i64) {
        let mut items = self.items.lock().unwrap();
        items.retain(|i| i["id"] != id);
        items.push(json!({ "id": id, "created": created, "amount": 20 }));
    }
}

pub async fn api() -> (String, Arc<Api>) {
    let state = Arc::new(Api::default());
    let app = axum::Router::new()
        .route(
            "/v1/items",
            axum::routing::get(
                |State(api): State<Arc<Api>>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    api.requests.fetch_add(1, Ordering::SeqCst);
                    if !q.contains_key("starting_after") {
                        api.polls.fetch_add(1, Ordering::SeqCst);
                    }
                    let hold = api.hold_ms.load(Ordering::SeqCst);
                    if hold > 0 {
                        tokio::time::sleep(Duration::from_millis(hold as u64)).await;
                    }
                    if api.failing.load(Ordering::SeqCst) > 0 {
                        api.failing.fetch_sub(1, Ordering::SeqCst);
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(json!({ "error": "down for maintenance" })),
                        );
                    }
                    let after: i64 = q
                        .get("created_after")
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(i64::MIN);
                    let mut items: Vec<Value> = api
                        .items
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|i| i["created"].as_i64().unwrap() >= after)
                        .cloned()
                        .collect();
                    items.sort_by_key(|i| {
                        (
                            i["created"].as_i64().unwrap(),
                            i["id"].as_str().unwrap().to_owned(),
                        )
                    });
                    if let Some(start) = q.get("starting_after") {
                        if let Some(at) = items.iter().position(|i| i["id"] == start.as_str()) {
                            items.drain(..=at);
                        }
                    }
                    let more = items.len() > 3;
                    items.truncate(3);
                    let next = if more {
                        items.last().map(|i| i["id"].clone())
                    } else {
                        None
                    };
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({ "data": items, "next": next })),
                    )
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

/// A scenario that polls the API every second and keeps each item's id.
pub fn watching(url: &str, extra: &str) -> String {
    format!(
        r#"name: watch-items
trigger:
  poll:
    every: 1s
    request:
      url: "{url}/v1/items"
      query: {{ created_after: "{{{{ cursor.date }}}}", starting_after: "{{{{ page.next }}}}" }}
    items: $.data[*]
    id: "{{{{ item.id }}}}"
    date: "{{{{ item.created }}}}"
    next_page: $.next
{extra}
steps:
  - id: seen
    set: {{ item: "{{{{ trigger.item.id }}}}", amount: "{{{{ trigger.item.amount }}}}" }}
"#
    )
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub store: String,
}

impl Setup {
    pub fn new(yaml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        std::fs::write(dir.path().join("scenarios/watch-items.yaml"), yaml).unwrap();
        let store = format!("sqlite://{}", dir.path().join("store.db").display());
        Setup { dir, store }
    }

    pub fn rewrite(&self, yaml: &str) {
        std::fs::write(self.dir.path().join("scenarios/watch-items.yaml"), yaml).unwrap();
    }

    pub fn options(&self) -> ServeOptions<'_> {
        ServeOptions {
            dir: Box::leak(self.dir.path().join("scenarios").into_boxed_path()),
            store: &self.store,
            args: vec![],
            env: vec![],
            log: self.dir.path().join("daemon.log"),
        }
    }

    pub fn cli(&self) -> Scenarist {
        Scenarist::new()
            .env("SCENARIST_STORE", self.store.clone())
            .in_dir(self.dir.path())
    }
}

/// The items the scenario ran, in the order they were accepted.
pub async fn ran(url: &str) -> Vec<String> {
    let mut rows = executions(url, "scenario=watch-items").await;
    rows.reverse();
    let client = reqwest::Client::new();
    let mut items = Vec::new();
    for row in rows {
        let shown: Value = client
            .get(format!(
                "{url}/api/executions/{}",
                row["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = shown["trigger"]["item"]["id"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let amount = shown["trigger"]["item"]["amount"].as_i64().unwrap_or(0);
        items.push(if amount == 20 { format!("{id}*") } else { id });
    }
    items
}

async fn wait_for_items(url: &str, count: usize) -> Vec<String> {
    eventually(15, || {
        let url = url.to_owned();
        async move { ran(&url).await.len() >= count }
    })
    .await;
    // A poll or two more: anything run twice would show now.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ran(url).await
}

#[tokio::test]
async fn start_now_runs_only_what_arrives_after_it_and_each_item_once() {
    let (url, api) = api().await;
    for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        api.add(id, 100 + i as i64);
    }
    let setup = Setup::new(&watching(&url, ""));
    let daemon = serve(&setup.options()).await;
    // The first poll remembers the five and runs none of them.
    assert!(eventually(10, || async { api.requests.load(Ordering::SeqCst) >= 4 }).await);
    api.add("f", 200);
    api.add("g", 200);
    api.update("a", 300);
    let items = wait_for_items(&daemon.url, 2).await;
    assert_eq!(items, ["f", "g"], "{}", daemon.log());
    daemon.stop().await;
}

#[tokio::test]
async fn start_all_runs_every_item_across_pages_and_changes_run_updates_again() {
    let (url, api) = api().await;
    for i in 0..7 {
        api.add(&format!("i{i}"), 100 + i);
    }
    let setup = Setup::new(&watching(&url, "    start: all\n    changes: true"));
    let daemon = serve(&setup.options()).await;
    let items = wait_for_items(&daemon.url, 7).await;
    assert_eq!(items, ["i0", "i1", "i2", "i3", "i4", "i5", "i6"]);
    api.update("i2", 500);
    api.add("i7", 501);
    let items = wait_for_items(&daemon.url, 9).await;
    assert_eq!(&items[7..], ["i2*", "i7"], "{}", daemon.log());
    daemon.stop().await;
}

#[tokio::test]
async fn a_start_time_runs_the_items_dated_from_it() {
    let (url, api) = api().await;
    api.add("old", 1_700_000_000);
    api.add("new", 1_800_000_000);
    let setup = Setup::new(&watching(&url, "    start: 2025-01-01T00:00:00Z"));
    let daemon = serve(&setup.options()).await;
    let items = wait_for_items(&daemon.url, 1).await;
    assert_eq!(items, ["new"]);
    daemon.stop().await;
}

#[tokio::test]
async fn a_daemon_killed_while_the_answer_is_held_loses_nothing_and_runs_nothing_twice() {
    let (url, api) = api().await;
    api.add("a", 100);
    let setup = Setup::new(&watching(&url, ""));
    let daemon = serve(&setup.options()).await;
    assert!(eventually(10, || async { api.requests.load(Ordering::SeqCst) >= 2 }).await);
    api.add("b", 200);
    api.add("c", 201);
    // The next answer is held for 3 s: the daemon dies with it in hand.
    api.hold_ms.store(3000, Ordering::SeqCst);
    let asked = api.requests.load(Ordering::SeqCst);
    assert!(eventually(10, || async { api.requests.load(Ordering::SeqCst) > asked }).await);
    daemon.kill().await;
    api.hold_ms.store(0, Ordering::SeqCst);
    let daemon = serve(&setup.options()).await;
    let items = wait_for_items(&daemon.url, 2).await;
    assert_eq!(items, ["b", "c"], "{}", daemon.log());
    daemon.stop().await;
}

#[tokio::test]
async fn a_failing_api_backs_off_keeps_the_cursor_shows_the_error_and_recovers() {
    let (url, api) = api().await;
    api.add("a", 100);
    let setup = Setup::new(&watching(&url, ""));
    let daemon = serve(&setup.options()).await;
    assert!(eventually(10, || async { api.requests.load(Ordering::SeqCst) >= 2 }).await);
    api.failing.store(3, Ordering::SeqCst);
    api.add("b", 200);
    // While it fails, `triggers` shows the error and the cursor has not moved.
    let shown = || async {
        let out = setup
            .cli()
            .args(["triggers", "list", "--output", "json"])
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()[0].clone()
    };
    let mut row = Value::Null;
    for _ in 0..100 {
        row = shown().await;
        if row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(row["cursor"]["date"], 100, "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("down for maintenance"),
        "{row}"
    );
    let items = wait_for_items(&daemon.url, 1).await;
    assert_eq!(items, ["b"], "{}", daemon.log());
    let metrics = reqwest::get(format!("{}/metrics", daemon.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scenarist_poll_errors_total{scenario=\"watch-items\"} 3"),
        "{metrics}"
    );
    let row = shown().await;
    assert_eq!(
        (row["last_error"].clone(), row["cursor"]["date"].clone()),
        (Value::Null, json!(200))
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_hot_reload_keeps_the_cursor_and_a_changed_request_starts_again() {
    let (url, api) = api().await;
    api.add("a", 100);
    let setup = Setup::new(&watching(&url, "    start: all"));
    let daemon = serve(&setup.options()).await;
    assert_eq!(wait_for_items(&daemon.url, 1).await, ["a"]);
    // Another step: the same request, the same cursor.
    setup.rewrite(&watching(&url, "    start: all").replace("id: seen", "id: kept"));
    api.add("b", 200);
    assert_eq!(wait_for_items(&daemon.url, 2).await, ["a", "b"]);
    // Another request: the watch starts again from `start: all`.
    setup.rewrite(&watching(&url, "    start: all").replace("$.data[*]", "$.data.*"));
    let items = wait_for_items(&daemon.url, 4).await;
    assert_eq!(items, ["a", "b", "a", "b"], "{}", daemon.log());
    assert!(
        daemon.log().contains("the watch starts again"),
        "{}",
        daemon.log()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn reset_and_poll_from_the_terminal() {
    let (url, api) = api().await;
    api.add("a", 100);
    api.add("b", 200);
    let setup = Setup::new(&watching(&url, ""));
    // No daemon: `poll` starts the watch (start: now, nothing queued).
    let first = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("started from now"),
        "{}",
        first.stdout
    );
    api.add("c", 300);
    let second = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert!(second.stdout.contains("1 new item(s)"), "{}", second.stdout);
    let again = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert!(again.stdout.contains("nothing new"), "{}", again.stdout);
    let reset = setup
        .cli()
        .args(["triggers", "reset", "watch-items", "--start", "all"])
        .run()
        .await;
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    let all = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert!(all.stdout.contains("3 new item(s)"), "{}", all.stdout);
    let listed = setup.cli().args(["triggers"]).run().await;
    assert!(
        listed.stdout.contains("watch-items") && listed.stdout.contains("3/4"),
        "{}",
        listed.stdout
    );
    // Bad inputs: what and where, a non-zero exit, nothing changed.
    let bad = setup
        .cli()
        .args(["triggers", "reset", "watch-item", "--start", "all"])
        .run()
        .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("did you mean `watch-items`"),
        "{}",
        bad.stderr
    );
    let bad = setup
        .cli()
        .args(["triggers", "reset", "watch-items", "--start", "yesterday"])
        .run()
        .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`yesterday` is not a start"),
        "{}",
        bad.stderr
    );
    // The queued executions run once a daemon is up.
    let daemon = serve(&setup.options()).await;
    let items = wait_for_items(&daemon.url, 4).await;
    assert_eq!(items, ["c", "a", "b", "c"]);
    daemon.stop().await;
}

/// Three daemons on one PostgreSQL, polling every second for 10 s while 500
/// items arrive: each item runs exactly once.
#[tokio::test]
async fn three_daemons_on_postgresql_run_each_item_exactly_once() {
    let Some(schema) = crate::pg::Schema::new("watch").await else {
        return;
    };
    let (url, api) = api().await;
    let yaml = watching(&url, "    start: all\n    max_pages: 200")
        .replace("name: watch-items", "name: qualify");
    let cluster = crate::cluster::Cluster::new(schema, &yaml);
    let started = std::time::Instant::now();
    let daemons = vec![
        cluster.daemon(0, "5s").await,
        cluster.daemon(1, "5s").await,
        cluster.daemon(2, "5s").await,
    ];
    for n in 0..500 {
        api.add(&format!("item-{n:03}"), 1000 + n / 7);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = scenarist::store::open(&cluster.schema.url).unwrap();
    let mut ids = Vec::new();
    for _ in 0..100 {
        let rows = cluster.executions().await;
        ids = Vec::new();
        for row in &rows {
            let id = uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap();
            let stored = store.execution(id).await.unwrap().unwrap();
            ids.push(stored.trigger["item"]["id"].as_str().unwrap().to_owned());
        }
        if ids.len() >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = cluster.executions().await;
    for daemon in daemons {
        daemon.stop().await;
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 500, "items lost");
    assert_eq!(rows.len(), 500, "an item ran twice");
    let polls = api.polls.load(Ordering::SeqCst) as f64;
    let seconds = started.elapsed().as_secs_f64();
    cluster.schema.drop().await;
    // About one poll a second, not one per daemon and second.
    assert!(
        polls <= seconds * 1.5 + 3.0,
        "{polls} polls in {seconds:.1} s: daemons polled the same tick"
    );
}

/// An app's watch: the built-in Referral Factory app's `watch_users`, against
/// the referral engine's stand-in; each participant who joins runs once.
#[tokio::test]
async fn an_app_watch_runs_each_new_participant_once() {
    let standins = scenarist::standins::StandIns::start().await.unwrap();
    standins.with_state(|s| s.join("early@example.com", "Early", "ann@example.com"));
    let yaml = r#"name: watch-items
trigger:
  poll:
    uses: referral-factory.watch_users
    every: 1s
steps:
  - id: seen
    set: { email: "{{ trigger.item.email }}" }
"#;
    let setup = Setup::new(yaml);
    let mut options = setup.options();
    options.env = standins.env();
    let daemon = serve(&options).await;
    let row = || async {
        let out = setup
            .cli()
            .args(["triggers", "--output", "json"])
            .run()
            .await;
        out.json()[0].clone()
    };
    for _ in 0..100 {
        if row().await["started"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standins.with_state(|s| {
        s.join("zoe@example.com", "Zoe", "ann@example.com");
        s.join("lee@example.com", "Lee", "ann@example.com");
    });
    assert!(
        eventually(15, || async {
            executions(&daemon.url, "scenario=watch-items").await.len() >= 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let rows = executions(&daemon.url, "scenario=watch-items").await;
    let mut emails = Vec::new();
    for row in &rows {
        let shown: Value = reqwest::get(format!(
            "{}/api/executions/{}",
            daemon.url,
            row["id"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        emails.push(
            shown["trigger"]["item"]["email"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    emails.sort();
    assert_eq!(
        emails,
        ["lee@example.com", "zoe@example.com"],
        "{}",
        daemon.log()
    );
    daemon.stop().await;
}

/// `batch: true`: one execution with every new item of the poll.
#[tokio::test]
async fn a_batch_poll_starts_one_execution_with_every_new_item() {
    let (url, api) = api().await;
    api.add("a", 100);
    let yaml = watching(&url, "    batch: true").replace(
        "set: { item: \"{{ trigger.item.id }}\", amount: \"{{ trigger.item.amount }}\" }",
        "set: { count: \"{{ len trigger.items }}\" }",
    );
    let setup = Setup::new(&yaml);
    let first = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert!(
        first.stdout.contains("started from now"),
        "{}{}",
        first.stdout,
        first.stderr
    );
    for (i, id) in ["b", "c", "d", "e"].iter().enumerate() {
        api.add(id, 200 + i as i64);
    }
    let second = setup
        .cli()
        .args(["triggers", "poll", "watch-items"])
        .run()
        .await;
    assert!(
        second
            .stdout
            .contains("4 new item(s): 1 execution(s) queued"),
        "{}{}",
        second.stdout,
        second.stderr
    );
    let daemon = serve(&setup.options()).await;
    assert!(
        eventually(10, || async {
            !executions(&daemon.url, "scenario=watch-items&status=succeeded")
                .await
                .is_empty()
        })
        .await
    );
    let rows = executions(&daemon.url, "scenario=watch-items").await;
    assert_eq!(rows.len(), 1);
    let shown: Value = reqwest::get(format!(
        "{}/api/executions/{}",
        daemon.url,
        rows[0]["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = shown["trigger"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "c", "d", "e"]);
    daemon.stop().await;
}
