//! Throughput of the interpreter on the 10-step scenario (set, filter, router,
//! for_each over 10 items, templates, JSONPath), without network or journal.
//!
//! Reference measured in the same run: parsing and re-serialising the same
//! input JSON, a fixed amount of work that tracks how fast the machine is now.
//!
//! Run: `cargo bench --bench engine`

use std::path::Path;

/// The same allocator as the `scenarist` binary, so the figures are what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use scenarist::engine::{Engine, NoJournal, RunRequest, TriggerData};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = scenarist::load::load_file(&root.join("tests/fixtures/valid/ten-steps.yaml"))
        .expect("loads");
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Engine::new();

    let mut group = c.benchmark_group("ten_steps");
    group.throughput(Throughput::Elements(1));
    // Each execution gets its own trigger, made outside the timing (it is the
    // caller's data, not the engine's work); the execution document is built
    // and dropped inside it.
    group.bench_function("execute_in_memory", |b| {
        b.iter_batched(
            || request.clone(),
            |request| {
                let execution = runtime
                    .block_on(engine.execute(&plan, request, &NoJournal))
                    .expect("runs");
                assert!(execution.status.is_success());
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("reference_json_roundtrip_of_input", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_str(&input_text).expect("json");
            serde_json::to_string(&value).expect("serialises")
        })
    });
    group.finish();

    c.bench_function("compile/ten_steps", |b| {
        b.iter(|| scenarist::plan::compile(&loaded).expect("compiles"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
