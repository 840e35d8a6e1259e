//! Benchmark of `scenarist test`: 200 cases of the example scenarios' test
//! files (`scenarios/*.test.yaml`, repeated until there are 200), run on the
//! real engine with an in-memory store each, mocked HTTP and virtual time.
//! Target: under 1 second of wall time for the 200 (median of 7 runs).
//! Reference, in the same run: reading and compiling the same files alone.
//!
//! Run: `cargo bench --bench scenario_tests`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use scenarist::testing;

const CASES: usize = 200;
const RUNS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let files = testing::find_test_files(&[PathBuf::from("scenarios")]).expect("scenarios/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut prepare_times = Vec::new();
    let mut run_times = Vec::new();
    let mut ran = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let prepared: Vec<_> = files
            .iter()
            .map(|f| {
                testing::prepare(f, None).unwrap_or_else(|_| panic!("{} is valid", f.display()))
            })
            .collect();
        prepare_times.push(started.elapsed());
        let per_round: usize = prepared.iter().map(|p| p.loaded.test.cases.len()).sum();
        let rounds = CASES.div_ceil(per_round);
        let started = Instant::now();
        ran = runtime.block_on(async {
            let mut n = 0;
            for _ in 0..rounds {
                for file in &prepared {
                    let result = testing::run_file(file, None).await;
                    assert!(
                        result.cases.iter().all(|c| c.passed()),
                        "{}",
                        file.loaded.file.display()
                    );
                    n += result.cases.len();
                }
            }
            n
        });
        run_times.push(started.elapsed());
    }
    let run = median(run_times);
    println!(
        "{ran} cases from {} test files: median {:.0} ms wall ({:.2} ms per case); reference, reading and compiling the files: {:.1} ms",
        files.len(),
        run.as_secs_f64() * 1000.0,
        run.as_secs_f64() * 1000.0 / ran as f64,
        median(prepare_times).as_secs_f64() * 1000.0
    );
}
