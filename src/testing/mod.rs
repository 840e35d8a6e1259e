//! `scenarist test`: scenario tests in `NAME.test.yaml` files, run on the
//! real engine, offline, in virtual time.
//!
//! A case gives the trigger, the answers of the http steps (mocks), the
//! decisions of approvals and the correlated events with their virtual
//! times, and what must hold at the end (status, steps, outputs, requests,
//! records, error). No request leaves the process; a request without a mock
//! fails its case and says which step would have sent what.

mod expect;
mod load;
mod mocks;
pub mod model;
mod output;
mod poll;
mod record;
mod run;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use expect::Failure;
pub use load::{check_against, load_test, LoadedTest};
pub use output::{json, junit, text};
pub use record::record;

use crate::diagnostic::Diagnostic;
use crate::plan::Plan;

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    /// Failures rendered `FILE:LINE:COL: path: message`.
    pub failures: Vec<String>,
    pub micros: u128,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The results of one test file.
#[derive(Debug)]
pub struct FileResult {
    pub file: PathBuf,
    pub scenario: String,
    pub cases: Vec<CaseResult>,
}

/// Every `*.test.yaml` under `paths` (files as given, folders recursively),
/// in name order.
pub fn find_test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut out);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, out);
        } else if crate::catalog::is_test_file(&path) {
            out.push(path);
        }
    }
}

/// A test file ready to run: read, its scenario compiled, both checked.
pub struct Prepared {
    pub loaded: LoadedTest,
    pub plan: Plan,
    pub source: String,
}

/// Reads a test file and its scenario; every problem of either, positioned.
/// `apps`: the `--apps` folder, when given (else `apps/` near the scenario).
pub fn prepare(
    file: &Path,
    apps: Option<&Path>,
) -> Result<Prepared, Vec<(Diagnostic, Option<String>)>> {
    let with = |ds: Vec<Diagnostic>, source: Option<&str>| {
        ds.into_iter()
            .map(|d| (d, source.map(str::to_owned)))
            .collect::<Vec<_>>()
    };
    let (loaded, mut problems) = load_test(file).map_err(|ds| {
        let source = std::fs::read_to_string(file).ok();
        with(ds, source.as_deref())
    })?;
    let scenario_file = loaded.scenario_file();
    let scenario = crate::load::load_file(&scenario_file).map_err(|failure| {
        let source = std::fs::read_to_string(&scenario_file).ok();
        let mut out = with(failure.diagnostics, source.as_deref());
        if out.is_empty() || !scenario_file.exists() {
            let at = if loaded.test.scenario.is_some() {
                "scenario"
            } else {
                ""
            };
            let message = format!(
                "the scenario under test, {}, cannot be read",
                scenario_file.display()
            );
            out = with(vec![loaded.diagnostic(at, message)], Some(&loaded.source));
        }
        out
    })?;
    let source = scenario.source.clone();
    let dir = scenario.file.parent().unwrap_or(std::path::Path::new("."));
    let (apps, _) = crate::catalog::apps_for(dir, apps);
    let plan = crate::plan::compile_with(&scenario, &apps)
        .map_err(|ds| with(ds, Some(&scenario.source)))?;
    problems.extend(check_against(&loaded, &plan));
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.position);
        return Err(with(problems, Some(&loaded.source)));
    }
    Ok(Prepared {
        loaded,
        plan,
        source,
    })
}

/// Runs the cases of a prepared file whose name contains `filter`.
pub async fn run_file(prepared: &Prepared, filter: Option<&str>) -> FileResult {
    let mut cases = Vec::new();
    let numbered = prepared
        .loaded
        .test
        .cases
        .iter()
        .zip(&prepared.loaded.numbers);
    for (case, &index) in numbered {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        let started = Instant::now();
        let outcome = run::run_case(&prepared.plan, &prepared.loaded.test, case).await;
        let failures = expect::check(index, case, &outcome)
            .into_iter()
            .map(|f| prepared.loaded.diagnostic(&f.path, f.message).to_string())
            .collect();
        cases.push(CaseResult {
            name: case.name.clone(),
            failures,
            micros: started.elapsed().as_micros(),
        });
    }
    FileResult {
        file: prepared.loaded.file.clone(),
        scenario: prepared.plan.name.clone(),
        cases,
    }
}
