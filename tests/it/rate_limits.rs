//! `rate_limit:` on a connection, through the real daemon: a downstream
//! server on loopback records when each call arrives, and the calls of every
//! execution (of every daemon sharing a PostgreSQL store) must keep to the
//! rate. Only lower bounds on time are asserted (a slow machine only spreads
//! calls further apart), and upper bounds on counts per window.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;

use crate::daemon_util::{eventually, serve, ServeOptions, Served};
use crate::pg::Schema;

/// A downstream API that records arrival times; the first `refuse` calls
/// get `429` with `Retry-After: 2`.
#[derive(Clone)]
struct Downstream {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    url: String,
}

async fn downstream(refuse: usize) -> Downstream {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/calls",
        post(move || {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Instant::now());
                    seen.len()
                };
                if n <= refuse {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "2")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "{}").into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Downstream { arrivals, url }
}

impl Downstream {
    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// The most calls that arrived within any one second.
    fn busiest_second(&self) -> usize {
        let times = self.arrivals();
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

fn scenario(base: &str, rate: &str) -> String {
    format!(
        r#"name: paced
connections:
  api: {{ base_url: "{base}", rate_limit: {rate} }}
trigger:
  webhook: {{ path: paced }}
steps:
  - id: call
    http: {{ method: POST, connection: api, path: /calls, json: {{ n: "{{{{ trigger.body.n }}}}" }} }}
    retry: {{ attempts: 3, backoff: fixed, initial: 10ms }}
"#
    )
}

struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new(yaml: &str) -> Folder {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        std::fs::write(dir.path().join("scenarios/paced.yaml"), yaml).unwrap();
        Folder { dir }
    }

    async fn serve(&self, store: &str, log: &str) -> Served {
        serve(&ServeOptions {
            dir: &self.dir.path().join("scenarios"),
            store,
            args: Vec::new(),
            env: Vec::new(),
            log: self.dir.path().join(log),
        })
        .await
    }

    fn sqlite(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("store.db").display())
    }
}

/// Sends `count` events, spread over `daemons`, 16 at a time.
async fn send(daemons: &[&Served], count: usize) {
    let client = reqwest::Client::new();
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for n in 0..count {
        let url = format!("{}/hooks/paced", daemons[n % daemons.len()].url);
        let client = client.clone();
        pending.push(async move {
            let status = client
                .post(url)
                .json(&serde_json::json!({ "n": n }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 202);
        });
        if pending.len() >= 16 {
            pending.next().await;
        }
    }
    while pending.next().await.is_some() {}
}

#[tokio::test]
async fn three_hundred_executions_keep_to_twenty_calls_a_second() {
    let api = downstream(0).await;
    let folder = Folder::new(&scenario(&api.url, "{ rate: 20/s, burst: 5 }"));
    let daemon = folder.serve(&folder.sqlite(), "daemon.log").await;
    send(&[&daemon], 300).await;
    assert!(
        eventually(90, || async { api.arrivals().len() >= 300 }).await,
        "only {} calls arrived",
        api.arrivals().len()
    );
    let times = api.arrivals();
    assert_eq!(times.len(), 300, "one call per execution");
    let busiest = api.busiest_second();
    assert!(
        busiest <= 25,
        "{busiest} calls within one second (20/s plus a burst of 5)"
    );
    // 300 calls, 5 at once, then one every 50 ms: at least 14.75 s.
    let spread = times[299].duration_since(times[0]);
    assert!(spread >= Duration::from_millis(14_500), "{spread:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_slows_every_execution_on_the_connection() {
    let api = downstream(1).await;
    let folder = Folder::new(&scenario(&api.url, "10/s"));
    let daemon = folder.serve(&folder.sqlite(), "daemon.log").await;
    send(&[&daemon], 12).await;
    assert!(
        eventually(60, || async { api.arrivals().len() >= 13 }).await,
        "{} calls arrived",
        api.arrivals().len()
    );
    let times = api.arrivals();
    let refused = times[0];
    // Calls already on their way when the 429 came back may land; the
    // others wait out the 2 s the server asked of everyone.
    let early = times[1..]
        .iter()
        .filter(|t| t.duration_since(refused) < Duration::from_millis(1900))
        .count();
    assert!(
        early <= 2,
        "{early} calls within 2 s of the 429: {:?}",
        times
            .iter()
            .map(|t| t.duration_since(refused))
            .collect::<Vec<_>>()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn two_daemons_on_one_postgresql_store_share_the_pace() {
    let Some(schema) = Schema::new("pace").await else {
        return;
    };
    let api = downstream(0).await;
    let folder = Folder::new(&scenario(&api.url, "20/s"));
    let first = folder.serve(&schema.url, "first.log").await;
    let second = folder.serve(&schema.url, "second.log").await;
    send(&[&first, &second], 120).await;
    let arrived = eventually(90, || async { api.arrivals().len() >= 120 }).await;
    let busiest = api.busiest_second();
    let times = api.arrivals();
    first.stop().await;
    second.stop().await;
    schema.drop().await;
    assert!(arrived, "only {} calls arrived", times.len());
    assert!(
        busiest <= 21,
        "{busiest} calls within one second across both daemons (20/s)"
    );
    let spread = times[times.len() - 1].duration_since(times[0]);
    assert!(spread >= Duration::from_millis(5_800), "{spread:?}");
}
