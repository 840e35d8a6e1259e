//! Minutes of load, not seconds: `scenarist serve` under a steady load for
//! `SOAK_SECONDS` (600 by default), a row per `ROW_SECONDS` (60), so that
//! whatever grows with the length of the load (the store's log, the store,
//! memory, the latency tail) shows.
//!
//! First the loopback reference (the downstream stand-in alone, 8 clients)
//! and the daemon's capacity (10 s of the same webhook at 32 clients, no
//! pacing: executions completed per second). Then the soak: 32 clients
//! together offering 80% of that capacity (`SOAK_LOAD` to change), on a
//! fresh SQLite store file with the daemon's default flags (`DAEMON_ARGS`
//! adds some, `SOAK_STORE_ARGS` adds `?max_log=...` and the like to the
//! store URL). Each row: answers' p50/p99/p999, answers and completions per
//! second, the log's and the store's size, the daemon's resident memory and
//! CPU. Last, each figure's trend: first row, last row, change per minute.
//!
//! With `SOAK_POSTGRES=postgres://USER@HOST:PORT/DB` the store is a fresh
//! schema on that server shared by two daemons (`SOAK_DAEMONS`), as several
//! daemons would share it, and each row has the schema's tables and indexes
//! and their share of dead rows instead of a log: the bloat autovacuum has
//! not reclaimed, as it grows or not.
//!
//! Run: `cargo bench --bench soak` (SOAK_SECONDS=600 ROW_SECONDS=60 by
//! default; `SOAK_HOOK=lead-after-run` soaks `respond: after_run` instead of
//! `202`). Bounded: it stops by itself after the soak and 30 s of drain at most.

mod load;

use std::time::{Duration, Instant};

use load::scenarios::write_scenarios;
use load::soak_store::SoakStore;
use load::{
    binary_under_test, cpu_time, drive, env_number, play_downstream_if_asked, runtime, Daemon,
    Downstream, MAX_CLIENTS,
};

/// One row of the soak.
struct Row {
    at_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    answers: f64,
    completed: f64,
    busy: u64,
    log_mb: f64,
    store_mb: f64,
    index_mb: f64,
    dead_pct: f64,
    rss_mb: f64,
    cpu_pct: f64,
    /// Times the log was cut back during the row, and the longest hold so far.
    cuts: f64,
    longest_cut_ms: f64,
}

/// One figure of a row, by name.
type Figure = fn(&Row) -> f64;

/// Resident memory of a process, from `/proc`.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A figure of the daemon's `/metrics` (`scenarist_store_log_truncations`).
async fn metric(client: &reqwest::Client, daemon: &str, name: &str) -> f64 {
    let Ok(answer) = client.get(format!("{daemon}/metrics")).send().await else {
        return f64::NAN;
    };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Least-squares slope of `values` against `xs`, per unit of `xs`.
fn slope(xs: &[f64], values: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, values.iter().sum::<f64>() / n);
    let cov: f64 = xs
        .iter()
        .zip(values)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

/// `count` daemons on one store, and their webhook's URLs.
async fn start_daemons(
    binary: &std::path::Path,
    scenarios: &std::path::Path,
    store: &str,
    count: usize,
    hook: &str,
) -> (Vec<Daemon>, Vec<String>) {
    let mut daemons = Vec::new();
    for _ in 0..count {
        daemons.push(Daemon::start(binary, scenarios, store).await);
    }
    let urls = daemons
        .iter()
        .map(|d| format!("{}/hooks/{hook}", d.url))
        .collect();
    (daemons, urls)
}

/// A figure summed over the daemons.
async fn metric_sum(client: &reqwest::Client, daemons: &[Daemon], name: &str) -> f64 {
    let mut sum = 0.0;
    for daemon in daemons {
        sum += metric(client, &daemon.url, name).await;
    }
    sum
}

fn main() {
    if play_downstream_if_asked() {
        return;
    }
    let soak_seconds = env_number("SOAK_SECONDS", 600.0).clamp(10.0, 6.0 * 3600.0);
    let row_seconds = env_number("ROW_SECONDS", 60.0).clamp(5.0, soak_seconds);
    let share = env_number("SOAK_LOAD", 0.8).clamp(0.05, 1.5);
    let hook = std::env::var("SOAK_HOOK").unwrap_or_else(|_| "lead".to_owned());
    let store_args = std::env::var("SOAK_STORE_ARGS").unwrap_or_default();
    let postgres = std::env::var("SOAK_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    let count = env_number("SOAK_DAEMONS", if postgres.is_some() { 2.0 } else { 1.0 })
        .clamp(1.0, 8.0) as usize;
    let binary = binary_under_test();
    runtime().block_on(async move {
        let downstream = Downstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let scenarios = write_scenarios(dir.path(), &downstream.url);

        let reference = drive(&[format!("{}/fast/alone", downstream.url)], 8, 5.0, None).await;
        let capacity = {
            let store = SoakStore::fresh(dir.path(), "capacity", postgres.as_deref());
            let (daemons, urls) = start_daemons(&binary, &scenarios, &store.url(&store_args), count, &hook).await;
            let before = downstream.calls().await;
            let load = drive(&urls, MAX_CLIENTS, 10.0, None).await;
            let completed = (downstream.calls().await - before) as f64 / load.elapsed.as_secs_f64();
            for daemon in daemons {
                daemon.stop().await;
            }
            store.drop_schema();
            load.rate().min(completed.max(1.0))
        };
        let rate = capacity * share;
        let store = SoakStore::fresh(dir.path(), "soak", postgres.as_deref());
        println!(
            "soak of scenarist serve ({hook}), {} daemon(s) on a {}{}; {}; {} cores",
            count,
            store.describe(),
            if store_args.is_empty() { String::new() } else { format!(" ?{store_args}") },
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
        println!(
            "reference: the downstream alone, 8 clients: {:.0} exchanges/s, p99 {:.2} ms",
            reference.rate(),
            reference.p(0.99)
        );
        println!(
            "capacity: {capacity:.0} executions/s (10 s, {MAX_CLIENTS} clients, unpaced); soak at {:.0}% of it: {rate:.0}/s offered by {MAX_CLIENTS} clients for {soak_seconds:.0} s",
            share * 100.0
        );

        let (daemons, urls) = start_daemons(&binary, &scenarios, &store.url(&store_args), count, &hook).await;
        let client = reqwest::Client::new();
        let on_postgres = postgres.is_some();
        // PostgreSQL has no log of ours to show: its tables, indexes and dead rows instead.
        let (log_head, store_head, cut_head, max_cut_head) = if on_postgres {
            ("index MB", "table MB", "dead%", "vacuums")
        } else {
            ("log MB", "store MB", "cuts", "max cut")
        };
        println!(
            "\n{:>6} {:>8} {:>8} {:>9} {:>9} {:>11} {:>5} {:>8} {:>9} {:>7} {:>6} {:>5} {:>8}",
            "min", "p50 ms", "p99 ms", "p999 ms", "answers/s", "completed/s", "503", log_head, store_head, "RSS MB", "CPU %", cut_head, max_cut_head
        );
        let mut cuts_before = 0.0;
        let started = Instant::now();
        let mut rows: Vec<Row> = Vec::new();
        let soak_start_calls = downstream.calls().await;
        let mut completed_before = soak_start_calls;
        let mut accepted = 0u64;
        let cpu_of = |daemons: &[Daemon]| daemons.iter().map(|d| cpu_time(d.pid)).sum::<Duration>();
        while started.elapsed().as_secs_f64() + 1.0 < soak_seconds {
            let left = soak_seconds - started.elapsed().as_secs_f64();
            let seconds = row_seconds.min(left);
            let cpu_before = cpu_of(&daemons);
            let load = drive(&urls, MAX_CLIENTS, seconds, Some(rate)).await;
            let cpu = cpu_of(&daemons) - cpu_before;
            let calls = downstream.calls().await;
            let cuts = metric_sum(&client, &daemons, "scenarist_store_log_truncations").await;
            let longest = metric_sum(&client, &daemons, "scenarist_store_longest_checkpoint_seconds").await;
            let size = store.size();
            accepted += load.ok;
            let elapsed = load.elapsed.as_secs_f64();
            let row = Row {
                at_s: started.elapsed().as_secs_f64(),
                p50_ms: load.p(0.5),
                p99_ms: load.p(0.99),
                p999_ms: load.p(0.999),
                answers: load.rate(),
                completed: (calls - completed_before) as f64 / elapsed,
                busy: load.busy,
                log_mb: size.log_mb,
                store_mb: size.store_mb,
                index_mb: size.index_mb,
                dead_pct: size.dead_pct,
                rss_mb: daemons.iter().map(|d| rss_mb(d.pid)).sum(),
                cpu_pct: cpu.as_secs_f64() * 100.0 / elapsed,
                cuts: if on_postgres { size.autovacuums } else { cuts - cuts_before },
                longest_cut_ms: longest * 1000.0,
            };
            cuts_before = cuts;
            completed_before = calls;
            assert_eq!(load.other, 0, "answers that were neither 2xx nor 503");
            let (a, b, c, d) = if on_postgres {
                (row.index_mb, row.store_mb, format!("{:.1}", row.dead_pct), format!("{:.0}", row.cuts))
            } else {
                (row.log_mb, row.store_mb, format!("{:.0}", row.cuts), format!("{:.1} ms", row.longest_cut_ms))
            };
            println!(
                "{:>6.1} {:>8.2} {:>8.2} {:>9.2} {:>9.0} {:>11.0} {:>5} {:>8.1} {:>9.1} {:>7.1} {:>6.0} {:>5} {:>8}",
                row.at_s / 60.0, row.p50_ms, row.p99_ms, row.p999_ms, row.answers, row.completed,
                row.busy, a, b, row.rss_mb, row.cpu_pct, c, d
            );
            rows.push(row);
        }
        // Every accepted event reaches the downstream; wait (bounded) for the tail.
        let until = Instant::now() + Duration::from_secs(30);
        let mut reached = downstream.calls().await - soak_start_calls;
        while reached < accepted && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
            reached = downstream.calls().await - soak_start_calls;
        }
        assert!(reached >= accepted, "{reached} of {accepted} accepted executions completed");
        let executions = accepted.max(1) as f64;
        let store_bytes = store.bytes();
        for daemon in daemons {
            daemon.stop().await;
        }

        println!("\ntrend (first row → last row; least-squares change per minute):");
        let minutes: Vec<f64> = rows.iter().map(|r| r.at_s / 60.0).collect();
        let mut figures: Vec<(&str, Figure)> = vec![
            ("p50 ms", |r| r.p50_ms),
            ("p99 ms", |r| r.p99_ms),
            ("p999 ms", |r| r.p999_ms),
            ("answers/s", |r| r.answers),
            ("completed/s", |r| r.completed),
        ];
        if on_postgres {
            figures.extend([
                ("table MB", (|r| r.store_mb) as Figure),
                ("index MB", |r| r.index_mb),
                ("dead rows %", |r| r.dead_pct),
            ]);
        } else {
            figures.extend([("log MB", (|r| r.log_mb) as Figure), ("store MB", |r| r.store_mb)]);
        }
        figures.extend([("RSS MB", (|r| r.rss_mb) as Figure), ("CPU %", |r| r.cpu_pct)]);
        for (name, figure) in figures {
            let values: Vec<f64> = rows.iter().map(figure).collect();
            let (first, last) = (values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN));
            let max = values.iter().copied().fold(f64::NAN, f64::max);
            println!(
                "  {name:<12} {first:>9.2} → {last:>9.2}  (max {max:.2}; {:+.3}/min)",
                slope(&minutes, &values)
            );
        }
        println!(
            "store per accepted execution: {:.0} bytes ({} executions, {})",
            store_bytes / executions,
            accepted,
            if on_postgres { "tables and indexes" } else { "database and log together" }
        );
        store.drop_schema();
        drop(downstream);
    });
}
