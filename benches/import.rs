//! `apps import openapi` on Stripe's full description (4.2 MB of YAML, 468
//! operations), choosing the customers' operations as `--path /v1/customers`
//! would: the time of a whole import (parse, read, map, write), next to the
//! reference measured in the same run, parsing the YAML alone (the floor of
//! any import), and the process's peak memory.
//!
//! The description is not in the repository (its size; see
//! `tests/fixtures/openapi/README.md`): the bench reads it from
//! `VENDOR_APIS` (default `../shared/vendor-apis`, beside the project) and
//! says so and stops when it is not there.
//!
//! Run: `cargo bench --bench import` (IMPORT_ROUNDS, default 7).

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use scenarist::import::openapi::{self, Options};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The process's peak resident memory (`VmHWM`), in MB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let dir = std::env::var("VENDOR_APIS").unwrap_or_else(|_| "../shared/vendor-apis".to_owned());
    let path = std::path::Path::new(&dir).join("stripe-spec3-2023-09-12.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "import bench: {} is not there (set VENDOR_APIS); nothing measured",
            path.display()
        );
        return;
    };
    let rounds: usize = std::env::var("IMPORT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let options = Options {
        paths: vec!["/v1/customers".to_owned()],
        source: "stripe-spec3-2023-09-12.yaml".to_owned(),
        ..Options::default()
    };
    let (mut parse, mut whole) = (Vec::new(), Vec::new());
    let mut actions = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let root = openapi::parse(&text).expect("Stripe's description parses");
        parse.push(started.elapsed());
        drop(root);
        let started = Instant::now();
        let root = openapi::parse(&text).expect("parses");
        let imported = openapi::import(&root, &options).expect("imports");
        whole.push(started.elapsed());
        actions = imported.actions;
    }
    println!(
        "import of Stripe's description ({:.1} MB, --path /v1/customers: {actions} actions), medians of {rounds}:",
        text.len() as f64 / 1e6
    );
    println!(
        "  reference, parsing the YAML alone: {:>8.1} ms",
        median(parse).as_secs_f64() * 1000.0
    );
    println!(
        "  whole import:                      {:>8.1} ms",
        median(whole).as_secs_f64() * 1000.0
    );
    println!("  peak memory of the process:        {:>8.1} MB", peak_mb());
}
