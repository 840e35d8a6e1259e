//! What the multi-daemon tests stand on: downstream servers that count
//! Idempotency-Keys, concurrency and per-key order; a cluster of real
//! `scenarist serve` processes on one PostgreSQL schema; a TCP proxy that
//! cuts the database away and brings it back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{json, Value};

use crate::daemon_util::{eventually, serve, ServeOptions, Served};
use crate::pg::Schema;
use crate::util::Scenarist;

/// A downstream API that counts requests by Idempotency-Key, holds each for
/// `hold`, and remembers how many it served at once at most.
#[derive(Default)]
pub struct Downstream {
    pub keys: Mutex<HashMap<String, usize>>,
    pub in_flight: AtomicUsize,
    pub most: AtomicUsize,
    hold: Duration,
    /// While closed, requests wait after their hold: a test makes sure some
    /// executions are at the downstream when it changes something.
    gate: tokio::sync::RwLock<()>,
}

impl Downstream {
    /// Holds every answer until the guard is dropped.
    pub async fn close(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }
}

pub async fn downstream(hold: Duration) -> (String, Arc<Downstream>) {
    let state = Arc::new(Downstream {
        hold,
        ..Downstream::default()
    });
    let app = axum::Router::new()
        .route(
            "/qualify",
            post(
                |State(s): State<Arc<Downstream>>, headers: HeaderMap| async move {
                    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    s.most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(s.hold).await;
                    drop(s.gate.read().await);
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    *s.keys.lock().unwrap().entry(key).or_default() += 1;
                    s.in_flight.fetch_sub(1, Ordering::SeqCst);
                    axum::Json(json!({ "ok": true }))
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

pub fn scenario(url: &str, settings: &str) -> String {
    format!(
        r#"name: qualify
{settings}
trigger:
  webhook: {{ path: qualify }}
steps:
  - id: only_real
    filter: {{ value: "{{{{ trigger.body.email }}}}", exists: true }}
  - id: lead
    set: {{ email: "{{{{ trigger.body.email }}}}" }}
  - id: qualify
    http: {{ method: POST, url: "{url}/qualify", json: {{ email: "{{{{ steps.lead.email }}}}" }} }}
"#
    )
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub schema: Schema,
}

impl Cluster {
    pub fn new(schema: Schema, yaml: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        std::fs::write(dir.path().join("scenarios/qualify.yaml"), yaml).unwrap();
        Cluster { dir, schema }
    }

    pub async fn daemon(&self, n: usize, lease: &str) -> Served {
        serve(&ServeOptions {
            dir: &self.dir.path().join("scenarios"),
            store: &self.schema.url,
            args: vec![
                "--lease".into(),
                lease.into(),
                "--workers".into(),
                "8".into(),
            ],
            env: vec![],
            log: self.dir.path().join(format!("daemon-{n}.log")),
        })
        .await
    }

    pub async fn executions(&self) -> Vec<Value> {
        let out = Scenarist::new()
            .env("SCENARIST_STORE", self.schema.url.clone())
            .args([
                "executions",
                "list",
                "--limit",
                "100000",
                "--output",
                "json",
            ])
            .run()
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json().as_array().cloned().unwrap_or_default()
    }

    pub async fn all_succeeded(&self, ids: &HashSet<String>, seconds: u64) -> bool {
        eventually(seconds, || async {
            let rows = self.executions().await;
            let done: HashSet<String> = rows
                .iter()
                .filter(|r| r["status"] == "succeeded")
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect();
            ids.is_subset(&done)
        })
        .await
    }
}

pub async fn post_hook(client: &reqwest::Client, daemon: &str, email: &str) -> Option<String> {
    let response = client
        .post(format!("{daemon}/hooks/qualify"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .ok()?;
    if response.status() != 202 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["execution_id"].as_str().map(str::to_owned)
}

/// A downstream API that remembers, per key, the order in which it was
/// called and whether two calls of one key overlapped.
#[derive(Default)]
pub struct Ordered {
    pub seen: Mutex<HashMap<String, Vec<u64>>>,
    busy: Mutex<HashSet<String>>,
    pub overlaps: AtomicUsize,
}

pub async fn ordered_downstream() -> (String, Arc<Ordered>) {
    let state = Arc::new(Ordered::default());
    let app = axum::Router::new()
        .route(
            "/qualify",
            post(
                |State(s): State<Arc<Ordered>>, axum::Json(body): axum::Json<Value>| async move {
                    let key = body["email"].as_str().unwrap_or_default().to_owned();
                    if !s.busy.lock().unwrap().insert(key.clone()) {
                        s.overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let n = body["n"].as_u64().unwrap_or_default();
                    s.seen
                        .lock()
                        .unwrap()
                        .entry(key.clone())
                        .or_default()
                        .push(n);
                    s.busy.lock().unwrap().remove(&key);
                    axum::Json(json!({ "ok": true }))
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

/// A TCP proxy in front of PostgreSQL that the test cuts and restores: the
/// database "goes away" for the daemon without touching the shared server.
pub struct Proxy {
    pub port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (accepting, kept) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                kept.lock().unwrap().push(link);
            }
        });
        Proxy { port, open, links }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
