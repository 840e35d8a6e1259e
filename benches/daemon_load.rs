//! Speed of `scenarist serve` under load, every figure next to its reference
//! measured by the same load generator in the same run, medians of `ROUNDS`.
//!
//! The scenario is the one a webhook of a referral program usually runs:
//! filter, set, one HTTP POST to an API, on an SQLite file, with the daemon's
//! default flags. The load generator (32 HTTP/1.1 clients at most, keep-alive,
//! each waiting for its answer) runs in this process, the downstream API
//! stand-in and the daemon each in their own. Per round:
//!
//! - reference: the downstream stand-in alone at 1, 8 and 32 clients (the
//!   loopback limit of this generator on this machine);
//! - `202`: answers per second and latency (median, p99) at 1, 8 and 32
//!   clients; executions completed per second during the load against those
//!   accepted; 503s; how long the backlog took to drain after the load (the
//!   backlog in seconds of work); the daemon's CPU per execution;
//! - `after_run`: the same scenario answering with its execution's result, at
//!   1, 8 and 32 clients, against half the reference (an execution is two
//!   exchanges on loopback: the webhook and the POST);
//! - a downstream that answers in 200 ms, offered 700 webhooks/s: completions
//!   per second with the default workers;
//! - history: the 202 phase at 32 clients on a store holding 1,000,000
//!   finished executions (3,000,000 steps), right after the same on an
//!   empty store;
//! - when `SCENARIST_TEST_POSTGRES` names a server: two daemons sharing one
//!   PostgreSQL schema, 1,100 webhooks/s offered, completions and p99.
//!
//! Run: `cargo bench --bench daemon_load` (about 6 minutes; builds the release
//! binary first). `LOAD_SECONDS` (default 4) is each phase's load,
//! `ROUNDS` (default 3) the rounds, `HISTORY` (default 1000000) the finished
//! executions of the history phase (0 skips it), `SCENARIST_BIN` another
//! binary to measure, `SCENARIST_BIN_BEFORE` a second one (an older build)
//! measured in the same rounds, phase after phase, against the same
//! references: what a change bought, on a machine whose speed drifts.
//! `DAEMON_ARGS` adds flags to every daemon (`--workers 32`, say).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncBufReadExt, BufReader};

const MAX_CLIENTS: usize = 32;

/// The API stand-in, in a process of its own as a real API would be (and
/// as the daemon is): `/fast/...` answers at once, `/slow/...` after 200 ms,
/// `GET /calls` tells how many POSTs it took.
async fn serve_downstream() {
    let calls = Arc::new(AtomicU64::new(0));
    let (fast, slow, count) = (calls.clone(), calls.clone(), calls);
    let app = Router::new()
        .route(
            "/fast/{*path}",
            post(move || {
                fast.fetch_add(1, Ordering::Relaxed);
                async { "{\"ok\":true}" }
            }),
        )
        .route(
            "/slow/{*path}",
            post(move || {
                slow.fetch_add(1, Ordering::Relaxed);
                async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "{\"ok\":true}"
                }
            }),
        )
        .route(
            "/calls",
            get(move || async move { count.load(Ordering::Relaxed).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

struct Downstream {
    url: String,
    client: reqwest::Client,
    /// The stand-in's process, for the handle that started it.
    _child: Option<tokio::process::Child>,
}

impl Downstream {
    async fn start() -> Downstream {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .env(DOWNSTREAM_ROLE, "1")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the downstream stand-in");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        Downstream {
            url: first.trim_start_matches("listening on ").to_owned(),
            client: reqwest::Client::new(),
            _child: Some(child),
        }
    }

    async fn calls(&self) -> u64 {
        let answer = self.client.get(format!("{}/calls", self.url)).send().await;
        answer.unwrap().text().await.unwrap().parse().unwrap()
    }
}

/// Set in the environment of the process that plays the downstream API.
const DOWNSTREAM_ROLE: &str = "DAEMON_LOAD_DOWNSTREAM";

/// What a load of one phase saw.
struct Load {
    ok: u64,
    busy: u64,
    other: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// `clients` clients posting to `urls` (client `i` to `urls[i % len]`) for
/// `seconds`, each waiting for its answer; with `rate`, together at most
/// that many requests per second.
async fn drive(urls: &[String], clients: usize, seconds: f64, rate: Option<f64>) -> Load {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (url, counter) = (urls[i % urls.len()].clone(), counter.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut load = Load {
                    ok: 0,
                    busy: 0,
                    other: 0,
                    latencies_us: Vec::new(),
                    elapsed: Duration::ZERO,
                };
                let every = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
                let mut next = start
                    + every
                        .map(|e| e.mul_f64(i as f64 / clients as f64))
                        .unwrap_or_default();
                while Instant::now() < deadline {
                    if let Some(every) = every {
                        tokio::time::sleep_until(next.into()).await;
                        next += every;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let body =
                        format!(r#"{{"email":"Lead{n}@Example.com","referral_code":"R{n}"}}"#);
                    let sent = Instant::now();
                    match client.post(&url).body(body).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            load.ok += 1;
                            load.latencies_us.push(sent.elapsed().as_micros() as u64);
                        }
                        Ok(r) if r.status() == 503 => {
                            let _ = r.bytes().await;
                            load.busy += 1;
                        }
                        _ => load.other += 1,
                    }
                }
                load
            })
        })
        .collect();
    let mut all = Load {
        ok: 0,
        busy: 0,
        other: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let load = task.await.unwrap();
        all.ok += load.ok;
        all.busy += load.busy;
        all.other += load.other;
        all.latencies_us.extend(load.latencies_us);
    }
    all.elapsed = start.elapsed();
    all.latencies_us.sort_unstable();
    all
}

/// User plus system CPU time of a process.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(fields.iter().sum::<u64>() as f64 / ticks)
}

struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    url: String,
}

impl Daemon {
    async fn start(binary: &Path, scenarios: &Path, store: &str) -> Daemon {
        let mut child = tokio::process::Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--dir",
            ])
            .arg(scenarios)
            .args(
                std::env::var("DAEMON_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("SCENARIST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start scenarist serve");
        let pid = child.id().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Daemon {
            child,
            pid,
            url: first.trim_start_matches("listening on ").to_owned(),
        }
    }

    async fn stop(mut self) {
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// One phase's figures.
#[derive(Clone, Copy, Default)]
struct Figures {
    answers: f64,
    median_ms: f64,
    p99_ms: f64,
    /// Executions completed per second while the load ran.
    completed_during: f64,
    /// Accepted per second while the load ran.
    accepted_during: f64,
    busy: f64,
    /// Seconds from the end of the load until the last execution completed.
    drain_s: f64,
    cpu_us: f64,
}

struct Bench {
    binary: PathBuf,
    downstream: Downstream,
    seconds: f64,
}

impl Bench {
    /// Runs `clients` against `hook` of a daemon on `store`.
    async fn phase(
        &self,
        scenarios: &Path,
        store: &str,
        hook: &str,
        clients: usize,
        rate: Option<f64>,
    ) -> Figures {
        self.phase_on(1, scenarios, store, hook, clients, rate)
            .await
    }

    /// Runs `clients` against `hook` of `daemons` daemons sharing `store`.
    async fn phase_on(
        &self,
        daemons: usize,
        scenarios: &Path,
        store: &str,
        hook: &str,
        clients: usize,
        rate: Option<f64>,
    ) -> Figures {
        let mut running = Vec::new();
        for _ in 0..daemons {
            running.push(Daemon::start(&self.binary, scenarios, store).await);
        }
        let urls: Vec<String> = running
            .iter()
            .map(|d| format!("{}/hooks/{hook}", d.url))
            .collect();
        let cpu_of = |running: &[Daemon]| running.iter().map(|d| cpu_time(d.pid)).sum::<Duration>();
        let before = self.downstream.calls().await;
        let cpu_before = cpu_of(&running);
        let load = drive(&urls, clients, self.seconds, rate).await;
        let during = self.downstream.calls().await - before;
        let load_ended = Instant::now();
        // Every accepted event reaches the downstream; wait (bounded) for the tail.
        let wait_until = load_ended + Duration::from_secs(120);
        let mut completed = during;
        while completed < load.ok && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
            completed = self.downstream.calls().await - before;
        }
        let drain = load_ended.elapsed();
        let cpu = cpu_of(&running) - cpu_before;
        for daemon in running {
            daemon.stop().await;
        }
        assert_eq!(load.other, 0, "answers that were neither 2xx nor 503");
        assert!(completed >= load.ok, "{completed} of {} completed", load.ok);
        Figures {
            answers: load.rate(),
            median_ms: load.p(0.5),
            p99_ms: load.p(0.99),
            completed_during: during as f64 / load.elapsed.as_secs_f64(),
            accepted_during: load.rate(),
            busy: load.busy as f64,
            drain_s: drain.as_secs_f64(),
            cpu_us: cpu.as_secs_f64() * 1e6 / completed.max(1) as f64,
        }
    }
}

fn write_scenarios(dir: &Path, downstream: &str) -> PathBuf {
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for (name, respond, route) in [
        ("lead", "", "fast"),
        ("lead-after-run", "respond: after_run", "fast"),
        ("lead-slow-api", "", "slow"),
    ] {
        std::fs::write(
            scenarios.join(format!("{name}.yaml")),
            format!(
                r#"name: {name}
trigger:
  webhook: {{ path: {name}, {respond} }}
steps:
  - id: referred
    filter: {{ value: "{{{{ trigger.body.referral_code }}}}", exists: true }}
  - id: lead
    set: {{ email: "{{{{ lower trigger.body.email }}}}", code: "{{{{ trigger.body.referral_code }}}}" }}
  - id: crm
    http: {{ method: POST, url: "{downstream}/{route}/crm/leads", json: "{{{{ steps.lead }}}}" }}
"#
            )
            .replace(", }", " }"),
        )
        .unwrap();
    }
    scenarios
}

/// Multiplies the finished executions already in `path` (and their steps)
/// into `count` more, older than any, as months of history would be.
fn fill_history(path: &Path, count: u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN;
         CREATE TEMP TABLE model AS SELECT * FROM executions WHERE status = 'succeeded' LIMIT 1;
         CREATE TEMP TABLE model_steps AS SELECT * FROM steps WHERE execution_id = (SELECT id FROM model);
         CREATE TEMP TABLE n AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) SELECT i FROM n;
         INSERT INTO executions (id, scenario, version, status, trigger_doc, vars, attempt, started_at,
                                 updated_at, finished_at, next_retry_at, error_step, error, owner, replay_of, concurrency_key)
           SELECT printf('00000000-0000-7000-8000-%012x', i), scenario, version, status, trigger_doc, vars, attempt,
                  started_at - i * 1000000, updated_at - i * 1000000, finished_at - i * 1000000, NULL, NULL, NULL, NULL, NULL, NULL
           FROM model, n;
         INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
           SELECT printf('00000000-0000-7000-8000-%012x', i), path, step_key, kind, status, attempts, input, output, error, detail,
                  started_at - i * 1000000, duration_ms
           FROM model_steps, n;
         COMMIT; PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;"
    ))
    .unwrap();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    values[values.len() / 2]
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const CLIENT_COUNTS: [usize; 3] = [1, 8, MAX_CLIENTS];

/// One build's figures over the rounds.
#[derive(Default)]
struct Results {
    accepted: [Vec<Figures>; 3],
    after_run: [Vec<Figures>; 3],
    slow: Vec<Figures>,
    empty: Vec<Figures>,
    full: Vec<Figures>,
    shared_pg: Vec<Figures>,
}

/// A build to measure: its label, binary, and store of history.
struct Build {
    label: String,
    bench: Bench,
    history_db: PathBuf,
    results: Results,
}

fn pick(figures: &[Figures], f: fn(&Figures) -> f64) -> f64 {
    median(figures.iter().map(f).collect())
}

fn print_results(
    build: &Build,
    reference: &[Vec<f64>],
    reference_p99: &[Vec<f64>],
    history: u64,
    postgres: bool,
) {
    let r = &build.results;
    println!("\n{}:\n", build.label);
    println!("| clients | reference: downstream alone | 202: answers/s | 202: median / p99 ms | completed/s during load (% of accepted) | drain after load | 503s | CPU per execution | after_run: executions/s (% of loopback limit) | after_run: median / p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, clients) in CLIENT_COUNTS.into_iter().enumerate() {
        let limit = median(reference[i].clone());
        let (a, w) = (&r.accepted[i], &r.after_run[i]);
        println!(
            "| {clients} | {:.0}/s (p99 {:.2} ms) | {:.0} | {:.2} / {:.2} | {:.0} ({:.0}%) | {:.2} s | {:.0} | {:.0} µs | {:.0} ({:.0}% of {:.0}) | {:.2} / {:.2} |",
            limit,
            median(reference_p99[i].clone()),
            pick(a, |f| f.answers),
            pick(a, |f| f.median_ms),
            pick(a, |f| f.p99_ms),
            pick(a, |f| f.completed_during),
            100.0 * pick(a, |f| f.completed_during / f.accepted_during),
            pick(a, |f| f.drain_s),
            pick(a, |f| f.busy),
            pick(a, |f| f.cpu_us),
            pick(w, |f| f.answers),
            100.0 * pick(w, |f| f.answers) / (limit / 2.0),
            limit / 2.0,
            pick(w, |f| f.median_ms),
            pick(w, |f| f.p99_ms),
        );
    }
    println!(
        "\n- downstream answering in 200 ms, 700 webhooks/s offered by {MAX_CLIENTS} clients: {:.0} completed/s during the load (202 p99 {:.2} ms, drained {:.2} s after), CPU per execution {:.0} µs",
        pick(&r.slow, |f| f.completed_during),
        pick(&r.slow, |f| f.p99_ms),
        pick(&r.slow, |f| f.drain_s),
        pick(&r.slow, |f| f.cpu_us),
    );
    if history > 0 {
        println!(
            "- {history} finished executions in the store, {MAX_CLIENTS} clients: {:.0} answers/s, {:.0} completed/s, p99 {:.2} ms; an empty store just before: {:.0} answers/s, {:.0} completed/s, p99 {:.2} ms",
            pick(&r.full, |f| f.answers),
            pick(&r.full, |f| f.completed_during),
            pick(&r.full, |f| f.p99_ms),
            pick(&r.empty, |f| f.answers),
            pick(&r.empty, |f| f.completed_during),
            pick(&r.empty, |f| f.p99_ms),
        );
    }
    if postgres {
        println!(
            "- two daemons on one PostgreSQL schema, 1,100 webhooks/s offered by {MAX_CLIENTS} clients: {:.0} completed/s during the load, 202 median {:.2} ms, p99 {:.2} ms, drained {:.2} s after, CPU per execution {:.0} µs (both daemons; PostgreSQL's own not counted)",
            pick(&r.shared_pg, |f| f.completed_during),
            pick(&r.shared_pg, |f| f.median_ms),
            pick(&r.shared_pg, |f| f.p99_ms),
            pick(&r.shared_pg, |f| f.drain_s),
            pick(&r.shared_pg, |f| f.cpu_us),
        );
    }
}

fn main() {
    if std::env::var_os(DOWNSTREAM_ROLE).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        return runtime.block_on(serve_downstream());
    }
    let seconds = env_number("LOAD_SECONDS", 4.0).clamp(1.0, 60.0);
    let rounds = env_number("ROUNDS", 3.0).clamp(1.0, 9.0) as usize;
    let history = env_number("HISTORY", 1_000_000.0).clamp(0.0, 10_000_000.0) as u64;
    let binary = std::env::var_os("SCENARIST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scenarist")));
    let before = std::env::var_os("SCENARIST_BIN_BEFORE").map(PathBuf::from);
    let postgres = std::env::var("SCENARIST_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let downstream = Downstream::start().await;
        let downstream_url = downstream.url.clone();
        let dir = tempfile::tempdir().unwrap();
        let scenarios = write_scenarios(dir.path(), &downstream_url);
        let mut builds = vec![(format!("{}", binary.display()), binary)];
        if let Some(before) = before {
            builds.push((format!("{} (SCENARIST_BIN_BEFORE), in the same rounds", before.display()), before));
        }
        let mut builds: Vec<Build> = builds
            .into_iter()
            .enumerate()
            .map(|(n, (label, binary))| Build {
                label,
                bench: Bench {
                    binary,
                    downstream: Downstream {
                        url: downstream.url.clone(),
                        client: reqwest::Client::new(),
                        _child: None,
                    },
                    seconds,
                },
                history_db: dir.path().join(format!("history-{n}.db")),
                results: Results::default(),
            })
            .collect();
        if history > 0 {
            for build in &builds {
                let filled = Instant::now();
                let store = format!("sqlite://{}", build.history_db.display());
                build.bench.phase(&scenarios, &store, "lead", 8, Some(500.0)).await;
                tokio::task::block_in_place(|| fill_history(&build.history_db, history));
                eprintln!(
                    "history of {}: {history} finished executions added in {:.0} s ({:.0} MB)",
                    build.label,
                    filled.elapsed().as_secs_f64(),
                    std::fs::metadata(&build.history_db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
                );
            }
        }
        let mut reference: Vec<Vec<f64>> = vec![Vec::new(); 3];
        let mut reference_p99: Vec<Vec<f64>> = vec![Vec::new(); 3];
        for round in 0..rounds {
            for (n, build) in builds.iter_mut().enumerate() {
                let (bench, r) = (&build.bench, &mut build.results);
                let store = |name: &str| {
                    format!("sqlite://{}", dir.path().join(format!("{name}-{round}-{n}.db")).display())
                };
                for (i, clients) in CLIENT_COUNTS.into_iter().enumerate() {
                    if n == 0 {
                        let alone = drive(&[format!("{downstream_url}/fast/alone")], clients, seconds, None).await;
                        reference[i].push(alone.rate());
                        reference_p99[i].push(alone.p(0.99));
                    }
                    let fresh = store(&format!("accepted-{clients}"));
                    r.accepted[i].push(bench.phase(&scenarios, &fresh, "lead", clients, None).await);
                    let fresh = store(&format!("after-run-{clients}"));
                    r.after_run[i].push(bench.phase(&scenarios, &fresh, "lead-after-run", clients, None).await);
                }
                r.slow.push(
                    bench
                        .phase(&scenarios, &store("slow"), "lead-slow-api", MAX_CLIENTS, Some(700.0))
                        .await,
                );
                if history > 0 {
                    // Side by side, so that the machine's mood is the same for both.
                    let fresh = store("history-empty");
                    r.empty.push(bench.phase(&scenarios, &fresh, "lead", MAX_CLIENTS, None).await);
                    let full = format!("sqlite://{}", build.history_db.display());
                    r.full.push(bench.phase(&scenarios, &full, "lead", MAX_CLIENTS, None).await);
                }
                if let Some(server) = &postgres {
                    let schema = format!("bench_{}_{round}_{n}", std::process::id());
                    let separator = if server.contains('?') { '&' } else { '?' };
                    let store = format!("{server}{separator}schema={schema}");
                    r.shared_pg.push(
                        bench
                            .phase_on(2, &scenarios, &store, "lead", MAX_CLIENTS, Some(1100.0))
                            .await,
                    );
                    let _ = std::process::Command::new("psql")
                        .arg(server)
                        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
                        .output();
                }
            }
            eprintln!("round {} of {rounds} done", round + 1);
        }
        println!(
            "scenarist serve, default flags, SQLite file; {seconds} s of load per phase, medians of {rounds} rounds; {}; {} cores",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
        for build in &builds {
            print_results(build, &reference, &reference_p99, history, postgres.is_some());
        }
        if postgres.is_none() {
            println!("\n(no PostgreSQL phase: set SCENARIST_TEST_POSTGRES=postgres://USER@HOST:PORT/DB)");
        }
        drop(downstream);
    });
}
