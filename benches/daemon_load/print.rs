//! The bench's table: each build's figures, medians of the rounds, next to
//! the references measured in the same rounds.

use std::path::PathBuf;

use super::load::{median, MAX_CLIENTS};
use super::{Bench, Figures};

pub(crate) const CLIENT_COUNTS: [usize; 3] = [1, 8, MAX_CLIENTS];

/// One build's figures over the rounds.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) accepted: [Vec<Figures>; 3],
    pub(crate) after_run: [Vec<Figures>; 3],
    pub(crate) slow: Vec<Figures>,
    pub(crate) empty: Vec<Figures>,
    pub(crate) full: Vec<Figures>,
    pub(crate) shared_pg: Vec<Figures>,
}

/// A build to measure: its label, binary, and store of history.
pub(crate) struct Build {
    pub(crate) label: String,
    pub(crate) bench: Bench,
    pub(crate) history_db: PathBuf,
    pub(crate) results: Results,
}

pub(crate) fn pick(figures: &[Figures], f: fn(&Figures) -> f64) -> f64 {
    median(figures.iter().map(f).collect())
}

pub(crate) fn print_results(
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
