//! Durable executions of the 10-step scenario through the library API, with
//! every step journaled to an SQLite file on disk (WAL, synchronous=NORMAL).
//!
//! `serial`: one execution at a time (each step waits for its commit).
//! `concurrent_16`: sixteen executions in flight on a two-thread runtime, as
//! the daemon runs them; the store's group commit shares each commit.
//! Reference measured in the same run: the same executions without a store.
//!
//! Run: `cargo bench --bench durable`

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scenarist::engine::{Engine, NoJournal, RunRequest, TriggerData};
use scenarist::runner::Runner;
use scenarist::store::{self, Store};

const IN_FLIGHT: usize = 16;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("tests/fixtures/valid/ten-steps.yaml");
    let loaded = scenarist::load::load_file(&file).expect("loads");
    let plan = scenarist::plan::compile(&loaded).expect("compiles");
    let input_text =
        std::fs::read_to_string(root.join("tests/fixtures/valid/ten-steps.input.json"))
            .expect("input");
    let body: serde_json::Value = serde_json::from_str(&input_text).expect("json");
    let request = RunRequest {
        trigger: TriggerData {
            body,
            ..TriggerData::default()
        },
        ..RunRequest::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = store::open(&url).expect("store");
    let runner = Runner::new(Engine::new(), store, HashMap::new());
    let engine = Engine::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("durable_ten_steps");
    group.throughput(Throughput::Elements(1));
    group.bench_function("serial", |b| {
        b.iter(|| {
            let execution = runtime
                .block_on(runner.start(&plan, request.clone(), &NoJournal, None))
                .expect("runs");
            assert!(execution.status.is_success());
        })
    });
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("concurrent_16", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let runs =
                    (0..IN_FLIGHT).map(|_| runner.start(&plan, request.clone(), &NoJournal, None));
                for execution in futures::future::join_all(runs).await {
                    assert!(execution.expect("runs").status.is_success());
                }
            })
        })
    });
    group.bench_function("reference_in_memory_concurrent_16", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let runs =
                    (0..IN_FLIGHT).map(|_| engine.execute(&plan, request.clone(), &NoJournal));
                for execution in futures::future::join_all(runs).await {
                    assert!(execution.expect("runs").status.is_success());
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
