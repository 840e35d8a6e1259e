//! The scenarios a daemon serves: read from a folder, and read again when a
//! file changes. An edit that does not validate is reported and the previous
//! version of that file keeps running.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::catalog::Catalog;
use crate::model::{Concurrency, HttpMethod};
use crate::plan::{Expr, Plan};

/// One valid scenario file.
pub struct Served {
    pub plan: Plan,
    pub source: String,
    pub file: PathBuf,
    /// `settings.concurrency`: the limit, and the key template if any.
    pub limit: Option<(u32, Option<Expr>)>,
}

/// Everything the daemon serves at one moment; replaced whole on reload.
#[derive(Default)]
pub struct Scenarios {
    pub by_name: BTreeMap<String, Arc<Served>>,
    /// `(method, path)` to scenario name.
    pub webhooks: HashMap<(HttpMethod, String), String>,
    /// What the folder looked like when read: paths with their modification time and size.
    fingerprint: Vec<(PathBuf, Option<SystemTime>, u64)>,
    /// The files that did not validate when the folder was last read.
    invalid: Vec<PathBuf>,
}

/// A problem found while reading the folder, for the log.
pub struct Problem {
    pub file: PathBuf,
    pub rendered: String,
}

impl Scenarios {
    /// Reads the folder. Files that do not validate are returned as problems;
    /// for each of them the scenario `previous` served from that file is kept.
    pub fn load(
        dir: &Path,
        apps: Option<&Path>,
        previous: Option<&Scenarios>,
    ) -> (Scenarios, Vec<Problem>) {
        let catalog = Catalog::load_with_apps(&[dir.to_path_buf()], apps.map(Path::to_path_buf));
        let mut problems = Vec::new();
        let mut by_name = BTreeMap::new();
        for entry in catalog.entries {
            let limit = concurrency(&entry.plan);
            let served = Served {
                source: entry.loaded.source.clone(),
                file: entry.loaded.file.clone(),
                plan: entry.plan,
                limit,
            };
            by_name.insert(served.plan.name.clone(), Arc::new(served));
        }
        for file in &catalog.problems {
            let rendered = file
                .diagnostics
                .iter()
                .map(|d| d.render(file.source.as_deref()))
                .collect::<Vec<_>>()
                .join("\n");
            problems.push(Problem {
                file: file.file.clone(),
                rendered,
            });
            if let Some(previous) = previous {
                for kept in previous.by_name.values().filter(|s| s.file == file.file) {
                    by_name
                        .entry(kept.plan.name.clone())
                        .or_insert_with(|| kept.clone());
                }
            }
        }
        let webhooks = by_name
            .values()
            .filter_map(|s| {
                s.plan
                    .webhook
                    .as_ref()
                    .map(|w| ((w.method, w.path.clone()), s.plan.name.clone()))
            })
            .collect();
        let scenarios = Scenarios {
            by_name,
            webhooks,
            fingerprint: fingerprint(dir, apps),
            invalid: problems.iter().map(|p| p.file.clone()).collect(),
        };
        (scenarios, problems)
    }

    /// The files that did not validate, as paths to show.
    pub fn problem_files(&self) -> Vec<String> {
        self.invalid
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    /// Whether the folder (or its apps) changed since it was read.
    pub fn changed(&self, dir: &Path, apps: Option<&Path>) -> bool {
        fingerprint(dir, apps) != self.fingerprint
    }

    /// Per-scenario limits, as the store's queue takes them.
    pub fn limits(&self) -> Vec<(String, u32)> {
        self.by_name
            .values()
            .filter_map(|s| s.limit.as_ref().map(|(n, _)| (s.plan.name.clone(), *n)))
            .collect()
    }
}

fn concurrency(plan: &Plan) -> Option<(u32, Option<Expr>)> {
    match plan.scenario.settings.concurrency.as_ref()? {
        Concurrency::Limit(n) => Some((*n, None)),
        Concurrency::Keyed { limit, key } => Some((
            *limit,
            key.as_deref().and_then(|k| Expr::compile_str(k).ok()),
        )),
    }
}

/// The scenario files (their `apps/` folder included) and the app files
/// beside the folder or in `--apps`: an edit of any of them reloads.
fn fingerprint(dir: &Path, apps: Option<&Path>) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    let apps = apps
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("..").join(crate::catalog::APPS_DIR));
    let mut stack = vec![dir.to_path_buf(), apps];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if crate::catalog::is_scenario_file(&path) {
                out.push((path, meta.modified().ok(), meta.len()));
            }
        }
    }
    out.sort();
    out
}
