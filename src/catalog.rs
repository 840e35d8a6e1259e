//! A set of scenario files read together: what `validate`, `list` and the
//! daemon work from. Adds the checks that need more than one file: unique
//! scenario names and unique webhook paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::load::{load_file, LoadedScenario};
use crate::model::Trigger;
use crate::plan::{compile, Plan};

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
        let mut catalog = Catalog::default();
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
                    if let Err(more) = compile(&partial) {
                        let echoes = |d: &Diagnostic| {
                            failure
                                .failed_steps
                                .iter()
                                .any(|p| d.path.starts_with(p.as_str()))
                                || d.message.starts_with("unknown step")
                                || d.message.contains("__unreadable_step_")
                        };
                        diagnostics.extend(more.into_iter().filter(|d| !echoes(d)));
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
            Ok(loaded) => match compile(&loaded) {
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
        if path.is_dir() {
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
