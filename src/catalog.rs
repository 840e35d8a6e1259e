//! A set of scenario files read together: what `validate`, `list` and the
//! daemon work from. Adds the checks that need more than one file: unique
//! scenario names and unique webhook paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::load::app::load_app_file;
use crate::load::{load_file, LoadedScenario};
use crate::model::Trigger;
use crate::plan::app::{builtin, compile_app, Apps};
use crate::plan::{compile_with, Plan};

/// The folder of app files, inside the scenarios' folder or beside it.
pub const APPS_DIR: &str = "apps";

/// The apps scenarios in `dir` may use: the built-in ones, replaced or
/// completed by `APPS_DIR` inside `dir` and beside it (`dir/../apps`), or by
/// `apps` alone when given (`--apps DIR`). Invalid app files are problems,
/// positioned like a scenario's, and left out.
pub fn apps_for(dir: &Path, apps: Option<&Path>) -> (Apps, Vec<FileProblems>) {
    let mut set = builtin().clone();
    let mut problems = Vec::new();
    let folders: Vec<PathBuf> = match apps {
        Some(dir) => vec![dir.to_path_buf()],
        None => {
            let beside = match dir.parent() {
                Some(parent) if !dir.as_os_str().is_empty() && dir != Path::new(".") => {
                    parent.join(APPS_DIR)
                }
                _ => Path::new("..").join(APPS_DIR),
            };
            vec![beside, dir.join(APPS_DIR)]
        }
    };
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_scenario_file(p))
            .collect();
        files.sort();
        for file in files {
            match load_app_file(&file)
                .and_then(|loaded| compile_app(&loaded).map(|app| (loaded, app)))
            {
                Ok((_, app)) => {
                    set.insert(app.name.clone(), std::sync::Arc::new(app));
                }
                Err(diagnostics) => problems.push(FileProblems {
                    source: crate::load::read_capped(&file, "app")
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok()),
                    file,
                    diagnostics,
                }),
            }
        }
    }
    (set, problems)
}

/// A valid scenario: its text (for positions) and its compiled plan.
#[derive(Debug)]
pub struct Entry {
    pub loaded: LoadedScenario,
    pub plan: Plan,
}

/// The outcome of reading a set of files: the valid ones, and every problem found.
#[derive(Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    /// Problems per file, with the file's text when it could be read (for snippets).
    pub problems: Vec<FileProblems>,
    pub files_read: usize,
    /// `--apps DIR`: the only folder of app files (instead of `apps/` near the scenarios).
    pub apps_dir: Option<PathBuf>,
    /// The apps read, per folder of scenarios.
    apps: HashMap<PathBuf, Apps>,
}

#[derive(Debug)]
pub struct FileProblems {
    pub file: PathBuf,
    pub source: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Catalog {
    /// Reads files and directories (recursively, `.yaml`/`.yml`), in name order.
    pub fn load(paths: &[PathBuf]) -> Catalog {
        Catalog::load_with_apps(paths, None)
    }

    /// As [`Catalog::load`], with the app files of `apps` only (`--apps DIR`).
    pub fn load_with_apps(paths: &[PathBuf], apps: Option<PathBuf>) -> Catalog {
        let mut catalog = Catalog {
            apps_dir: apps,
            ..Catalog::default()
        };
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                collect_files(path, &mut files, &mut catalog);
            } else if path.exists() {
                files.push(path.clone());
            } else {
                catalog.problems.push(FileProblems {
                    file: path.clone(),
                    source: None,
                    diagnostics: vec![Diagnostic::new(path, None, "", "no such file or directory")],
                });
            }
        }
        for file in files {
            catalog.files_read += 1;
            catalog.add_file(&file);
        }
        catalog.check_across_files();
        catalog
    }

    fn add_file(&mut self, file: &Path) {
        match load_file(file) {
            Err(failure) => {
                let mut diagnostics = failure.diagnostics;
                if let Some(partial) = failure.partial {
                    // Check what could be read too, so one bad step does not hide the rest.
                    // (The compiler leaves out what is under the unreadable parts.)
                    if let Err(more) = compile_with(&partial, &self.apps_near(file)) {
                        let placeholder = |d: &Diagnostic| {
                            d.message.contains(crate::load::UNREADABLE_STEP_PREFIX)
                        };
                        diagnostics.extend(more.into_iter().filter(|d| !placeholder(d)));
                        diagnostics.sort_by_key(|d| d.position);
                    }
                }
                // For the excerpts under each message; never more than the loader reads.
                let source = crate::load::read_capped(file, "scenario")
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                self.problems.push(FileProblems {
                    file: file.to_path_buf(),
                    source,
                    diagnostics,
                });
            }
            Ok(loaded) => match compile_with(&loaded, &self.apps_near(file)) {
                Ok(plan) => self.entries.push(Entry { loaded, plan }),
                Err(diagnostics) => self.problems.push(FileProblems {
                    file: file.to_path_buf(),
                    source: Some(loaded.source),
                    diagnostics,
                }),
            },
        }
    }

    /// Scenario names and webhook routes must be unique; the later file is the one reported.
    fn check_across_files(&mut self) {
        let mut names: HashMap<String, PathBuf> = HashMap::new();
        let mut hooks: HashMap<(String, String), PathBuf> = HashMap::new();
        let mut rejected = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let loaded = &entry.loaded;
            let mut diagnostics = Vec::new();
            let name = loaded.scenario.name.to_string();
            if let Some(first) = names.get(&name) {
                diagnostics.push(loaded.diagnostic(
                    "name",
                    format!(
                        "scenario name `{name}` is already used by {}",
                        first.display()
                    ),
                ));
            } else {
                names.insert(name, loaded.file.clone());
            }
            if let Trigger::Webhook(hook) = &loaded.scenario.trigger {
                let key = (
                    hook.method.as_str().to_owned(),
                    hook.path.trim_matches('/').to_owned(),
                );
                if let Some(first) = hooks.get(&key) {
                    diagnostics.push(loaded.diagnostic(
                        "trigger.webhook.path",
                        format!(
                            "webhook {} /hooks/{} is already served by {}",
                            key.0,
                            key.1,
                            first.display()
                        ),
                    ));
                } else {
                    hooks.insert(key, loaded.file.clone());
                }
            }
            if !diagnostics.is_empty() {
                rejected.push((index, diagnostics));
            }
        }
        for (index, diagnostics) in rejected.into_iter().rev() {
            let entry = self.entries.remove(index);
            self.problems.push(FileProblems {
                file: entry.loaded.file.clone(),
                source: Some(entry.loaded.source),
                diagnostics,
            });
        }
        self.problems.sort_by(|a, b| a.file.cmp(&b.file));
    }

    /// The apps of the scenario file's folder, read once per folder.
    fn apps_near(&mut self, file: &Path) -> Apps {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        if let Some(apps) = self.apps.get(&dir) {
            return apps.clone();
        }
        let (apps, problems) = apps_for(&dir, self.apps_dir.as_deref());
        for problem in problems {
            if !self.problems.iter().any(|p| p.file == problem.file) {
                self.problems.push(problem);
            }
        }
        self.apps.insert(dir, apps.clone());
        apps
    }

    pub fn problem_count(&self) -> usize {
        self.problems.iter().map(|p| p.diagnostics.len()).sum()
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>, catalog: &mut Catalog) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            catalog.problems.push(FileProblems {
                file: dir.to_path_buf(),
                source: None,
                diagnostics: vec![Diagnostic::new(
                    dir,
                    None,
                    "",
                    format!("cannot read the directory: {e}"),
                )],
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() && path.file_name().is_some_and(|n| n == APPS_DIR) {
            // App files, read by `apps_for`, not scenarios.
            continue;
        } else if path.is_dir() {
            collect_files(&path, files, catalog);
        } else if is_scenario_file(&path) {
            files.push(path);
        }
    }
}

/// A scenario file: `.yaml` or `.yml`, but not a test file (`NAME.test.yaml`,
/// read by `scenarist test`) beside it.
pub fn is_scenario_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !is_test_file(path)
}

/// A scenario test file: `NAME.test.yaml` (or `.test.yml`).
pub fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}
