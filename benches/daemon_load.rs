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

mod load;
#[path = "daemon_load/print.rs"]
mod print;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use load::scenarios::{fill_history, write_scenarios};
use load::{
    binary_under_test, cpu_time, drive, env_number, play_downstream_if_asked, runtime, Daemon,
    Downstream, MAX_CLIENTS,
};
use print::{print_results, Build, Results, CLIENT_COUNTS};

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

fn main() {
    if play_downstream_if_asked() {
        return;
    }
    let seconds = env_number("LOAD_SECONDS", 4.0).clamp(1.0, 60.0);
    let rounds = env_number("ROUNDS", 3.0).clamp(1.0, 9.0) as usize;
    let history = env_number("HISTORY", 1_000_000.0).clamp(0.0, 10_000_000.0) as u64;
    let binary = binary_under_test();
    let before = std::env::var_os("SCENARIST_BIN_BEFORE").map(PathBuf::from);
    let postgres = std::env::var("SCENARIST_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    runtime().block_on(async move {
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
