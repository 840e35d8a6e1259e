//! A store that refuses writes under load and then takes them again, with
//! the same daemon running throughout: webhooks answer 503 meanwhile,
//! `/healthz` says the store is failing, and once writes succeed again every
//! acknowledged event finishes and nothing stays `running`.
//!
//! Two real faults: an SQLite file on a 16 MB tmpfs that a filler file fills
//! up and then gives back (needs `mount`: skipped with one line where it is
//! not permitted; 16 MB because SQLite's write-ahead log alone grows to
//! 4 MB before it is copied back, so on a 3 MB disk the log itself fills it
//! and no room ever comes back), and a PostgreSQL role whose sessions are switched to
//! read-only and back (`default_transaction_read_only`, its connections
//! terminated each time), which the postgres superuser can always do.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{downstream, scenario, Downstream};
use crate::daemon_util::{eventually, serve, ServeOptions, Served};

/// Events sent in all: before the fault, during it, after it.
const EVENTS: usize = 200;
const FAULT_AT: usize = 60;
const RECOVER_AT: usize = 140;

/// A way to make the store refuse writes and take them again.
trait Fault {
    async fn refuse(&self);
    async fn allow(&self);
}

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs {
    /// Keeps the mount point's parent until the end.
    _dir: tempfile::TempDir,
    mount: PathBuf,
    /// Tells the filler to stop.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    filler_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Tmpfs {
    /// `None` (after one line saying so) where mounting is not permitted.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .stderr(std::process::Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("skipping the full-disk test: this process may not mount a tmpfs");
            return None;
        }
        Some(Tmpfs {
            _dir: dir,
            mount,
            stop: Default::default(),
            filler_thread: Default::default(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Lazy: a daemon killed by a failing test may still hold the file.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

impl Fault for Tmpfs {
    /// Fills every free byte, and keeps taking whatever room appears (the
    /// store truncating its log frees some) until [`Fault::allow`], as a
    /// runaway log file of another program would.
    async fn refuse(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 4096];
        let stop = self.stop.clone();
        let full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let filled = full.clone();
        let filler = std::thread::spawn(move || {
            // At most about two minutes of it.
            for _ in 0..60_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if file.write_all(&chunk).is_err() {
                    filled.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        *self.filler_thread.lock().unwrap() = Some(filler);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !full.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(full.load(Ordering::SeqCst), "the tmpfs filled up");
    }

    async fn allow(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(filler) = self.filler_thread.lock().unwrap().take() {
            filler.join().unwrap();
        }
        std::fs::remove_file(self.filler()).unwrap();
    }
}

/// A role and a schema of this test's own on the test server; the role's
/// sessions are read-only while refused.
struct ReadOnlyRole {
    role: String,
    schema: String,
    server: String,
    /// The store URL: the role, its schema.
    url: String,
    dropped: std::sync::atomic::AtomicBool,
}

impl ReadOnlyRole {
    async fn new() -> Option<ReadOnlyRole> {
        let server = crate::pg::server()?;
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (role, schema) = (format!("t_faults_{tag}"), format!("t_faults_{tag}"));
        let admin = connect(&server).await;
        let database = admin
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN;
                 GRANT CREATE ON DATABASE \"{database}\" TO {role};
                 CREATE SCHEMA {schema} AUTHORIZATION {role};"
            ))
            .await
            .unwrap();
        // postgres://USER@HOST... -> postgres://ROLE@HOST...
        let (scheme, rest) = server.split_once("://").unwrap();
        let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
        let separator = if rest.contains('?') { '&' } else { '?' };
        let url = format!("{scheme}://{role}@{rest}{separator}schema={schema}");
        Some(ReadOnlyRole {
            role,
            schema,
            server,
            url,
            dropped: Default::default(),
        })
    }

    /// Ends the role's sessions, drops its schema, what it owns, and it.
    fn cleanup_sql(&self) -> String {
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
             DROP SCHEMA IF EXISTS {schema} CASCADE;
             DROP OWNED BY {role};
             DROP ROLE IF EXISTS {role};",
            role = self.role,
            schema = self.schema
        )
    }

    async fn set(&self, sql: &str) {
        let admin = connect(&self.server).await;
        let terminate = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'",
            self.role
        );
        admin
            .batch_execute(&format!("ALTER ROLE {} {sql}; {terminate};", self.role))
            .await
            .unwrap();
        // A session still starting up when the first terminate ran has no
        // user name in pg_stat_activity yet and keeps the old setting: end
        // those too, once they have one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin.batch_execute(&terminate).await.unwrap();
    }

    async fn drop(&self) {
        self.dropped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        crate::pg::execute_quietly(&self.server, &self.cleanup_sql()).await;
    }
}

/// A failing test unwinds through here: its role and schema go too.
impl Drop for ReadOnlyRole {
    fn drop(&mut self) {
        if !self.dropped.load(std::sync::atomic::Ordering::SeqCst) {
            crate::pg::execute_blocking(&self.server, self.cleanup_sql());
        }
    }
}

impl Fault for ReadOnlyRole {
    async fn refuse(&self) {
        self.set("SET default_transaction_read_only = on").await;
    }

    async fn allow(&self) {
        self.set("RESET default_transaction_read_only").await;
    }
}

async fn connect(server: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{} is set but PostgreSQL is unreachable: {e}",
                crate::pg::VARIABLE
            )
        });
    tokio::spawn(connection);
    client
}

/// What `/healthz` answers: its status code and body.
async fn health(client: &reqwest::Client, daemon: &str) -> (u16, Value) {
    match client.get(format!("{daemon}/healthz")).send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            (code, response.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({ "error": e.to_string() })),
    }
}

/// Every execution the daemon's API lists.
async fn executions(client: &reqwest::Client, daemon: &str) -> Option<Vec<Value>> {
    client
        .get(format!("{daemon}/api/executions?limit=1000"))
        .send()
        .await
        .ok()?
        .json::<Vec<Value>>()
        .await
        .ok()
}

/// Sends one event; the execution id when accepted, `Err(code)` otherwise.
async fn send(client: &reqwest::Client, daemon: &str, n: usize) -> Result<String, u16> {
    let response = client
        .post(format!("{daemon}/hooks/qualify"))
        .json(&json!({ "email": format!("lead-{n}@example.com") }))
        .send()
        .await
        .map_err(|_| 0u16)?;
    let code = response.status().as_u16();
    if code != 202 {
        return Err(code);
    }
    let body: Value = response.json().await.map_err(|_| code)?;
    Ok(body["execution_id"].as_str().unwrap().to_owned())
}

/// Drives the daemon through the fault; panics on anything lost or stuck.
/// `stops_executions`: the fault refuses every write, so the executions at
/// the downstream when it starts are stopped and must be resumed (a full
/// disk still takes a small write where a larger one failed and left its
/// room in the log: there, whether any is stopped is chance).
async fn load_through(
    fault: &impl Fault,
    daemon: &Served,
    down: &Downstream,
    stops_executions: bool,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = &daemon.url;
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let mut refused: Vec<(usize, u16)> = Vec::new();
    let mut saw_failing = None;
    for batch in 0..EVENTS / 4 {
        let first = batch * 4;
        if first == FAULT_AT {
            // Some executions are held at the downstream until the fault is
            // on: their next write fails, whatever the timing.
            let gate = down.close().await;
            let held = eventually(10, || async { down.in_flight.load(Ordering::SeqCst) > 0 }).await;
            assert!(held, "executions in flight when the fault starts");
            fault.refuse().await;
            drop(gate);
        }
        if first == RECOVER_AT {
            // While refused: 503s, and `/healthz` says so.
            let deadline = Instant::now() + Duration::from_secs(30);
            while saw_failing.is_none() && Instant::now() < deadline {
                let (code, body) = health(&client, url).await;
                if code == 503 && body["status"] == "failing" {
                    saw_failing = Some(body);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let failing = saw_failing.is_some();
            assert!(
                failing,
                "/healthz said failing while writes were refused:\n{}",
                daemon.log()
            );
            fault.allow().await;
        }
        let sends = (first..first + 4).map(|n| {
            let client = client.clone();
            async move { (n, send(&client, url, n).await) }
        });
        for (n, result) in futures::future::join_all(sends).await {
            match result {
                Ok(id) => {
                    accepted.insert(id, n);
                }
                Err(code) => refused.push((n, code)),
            }
        }
        // Right after a refusal, while the fault lasts.
        let in_fault = (FAULT_AT..RECOVER_AT).contains(&first);
        if in_fault && saw_failing.is_none() && refused.last().is_some_and(|(n, _)| *n >= first) {
            let (code, body) = health(&client, url).await;
            if code == 503 && body["status"] == "failing" {
                saw_failing = Some(body);
            }
        }
    }
    let during: Vec<&(usize, u16)> = refused
        .iter()
        .filter(|(n, _)| (FAULT_AT..RECOVER_AT).contains(n))
        .collect();
    assert!(
        !during.is_empty(),
        "some events were refused during the fault"
    );
    assert!(
        refused.iter().all(|(_, code)| *code == 503),
        "refused only with 503: {refused:?}"
    );
    assert!(
        accepted.values().filter(|n| **n < FAULT_AT).count() == FAULT_AT,
        "every event before the fault was accepted; refused: {refused:?}"
    );
    assert!(
        accepted.values().any(|n| *n >= RECOVER_AT),
        "events were accepted again after the fault; refused: {refused:?}"
    );

    // Nothing acknowledged lost, nothing left running, by the same daemon.
    let mut last = Vec::new();
    let mut settled = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !settled && Instant::now() < deadline {
        if let Some(rows) = executions(&client, url).await {
            settled = rows.iter().all(|r| r["status"] == "succeeded")
                && accepted
                    .keys()
                    .all(|id| rows.iter().any(|r| r["id"] == id.as_str()));
            last = rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !settled {
        let mut by_status: HashMap<String, usize> = HashMap::new();
        let mut stuck = String::new();
        for row in &last {
            *by_status.entry(row["status"].to_string()).or_default() += 1;
            if row["status"] != "succeeded" {
                stuck.push_str(&format!("\n{row}"));
            }
        }
        panic!(
            "not every accepted event finished: {by_status:?}{stuck}\n{}",
            daemon.log()
        );
    }
    let stored: HashSet<String> = last
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let acknowledged: HashSet<String> = accepted.keys().cloned().collect();
    assert_eq!(
        stored, acknowledged,
        "one execution per 202, none for a 503"
    );
    assert!(
        !stops_executions || last.iter().any(|r| r["attempt"].as_u64() >= Some(2)),
        "executions stopped by the fault were resumed (attempts: {:?}):\n{}",
        last.iter()
            .map(|r| r["attempt"].clone())
            .collect::<Vec<_>>(),
        daemon.log()
    );
    let healthy = eventually(30, || async {
        let (code, body) = health(&client, url).await;
        code == 200 && body["status"] == "ok"
    })
    .await;
    assert!(
        healthy,
        "/healthz ok again: {:?}",
        health(&client, url).await
    );
    let failing = saw_failing.unwrap();
    assert!(failing["store"].is_string(), "{failing}");
    assert!(failing["since"].is_string(), "{failing}");
}

fn options<'a>(dir: &'a Path, store: &'a str) -> ServeOptions<'a> {
    ServeOptions {
        dir,
        store,
        args: vec!["--workers".to_owned(), "8".to_owned()],
        env: vec![],
        log: dir.parent().unwrap().join("daemon.log"),
    }
}

fn scenarios(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join("scenarios/qualify.yaml"), scenario(url, "")).unwrap();
    dir
}

#[tokio::test]
async fn a_full_disk_under_load_loses_nothing_and_leaves_nothing_running() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let (url, down) = downstream(Duration::from_millis(200)).await;
    let dir = scenarios(&url);
    let store = format!("sqlite://{}", tmpfs.mount.join("store.db").display());
    let daemon = serve(&options(&dir.path().join("scenarios"), &store)).await;
    load_through(&tmpfs, &daemon, &down, false).await;
    assert_eq!(daemon.stop().await, 0);
}

#[tokio::test]
async fn a_read_only_database_under_load_loses_nothing_and_leaves_nothing_running() {
    let Some(role) = ReadOnlyRole::new().await else {
        return;
    };
    let (url, down) = downstream(Duration::from_millis(200)).await;
    let dir = scenarios(&url);
    let daemon = serve(&options(&dir.path().join("scenarios"), &role.url)).await;
    load_through(&role, &daemon, &down, true).await;
    assert_eq!(daemon.stop().await, 0);
    role.drop().await;
}
