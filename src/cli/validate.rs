//! `scenarist validate`: every problem in every file, with its location.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use scenarist::catalog::{Catalog, Entry};

use super::EXIT_FAILED;

pub fn validate(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let catalog = super::catalog(&super::default_paths(paths));
    print_problems(&catalog);
    let invalid = catalog.problems.len();
    let valid = catalog.entries.len();
    if invalid == 0 {
        eprintln!("{valid} scenario{} valid", plural(valid));
        Ok(ExitCode::SUCCESS)
    } else {
        let problems = catalog.problem_count();
        eprintln!(
            "{problems} problem{} in {invalid} file{}; {valid} scenario{} valid",
            plural(problems),
            plural(invalid),
            plural(valid)
        );
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

/// Prints each diagnostic with its source line and caret, to stderr.
pub fn print_problems(catalog: &Catalog) {
    for file in &catalog.problems {
        for diagnostic in &file.diagnostics {
            eprintln!("{}\n", diagnostic.render(file.source.as_deref()));
        }
    }
}

/// Loads and compiles one file for `run` and `graph`; prints problems and
/// returns `None` when it is not valid.
pub fn load_one(file: &Path) -> Option<Entry> {
    if file.is_dir() {
        eprintln!(
            "error: {} is a directory; give one scenario file",
            file.display()
        );
        return None;
    }
    let mut catalog = super::catalog(&[file.to_path_buf()]);
    if !catalog.problems.is_empty() {
        print_problems(&catalog);
        eprintln!("{}: the scenario is invalid; nothing ran", file.display());
        return None;
    }
    catalog.entries.pop()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
