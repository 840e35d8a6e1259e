//! `scenarist list`: what a folder of scenarios does, one line each.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_FAILED;

pub fn list(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let catalog = super::catalog(&super::default_paths(dir.into_iter().collect()));
    let mut rows = vec![[
        "NAME".to_owned(),
        "TRIGGER".to_owned(),
        "OWNER".to_owned(),
        "STEPS".to_owned(),
    ]];
    for entry in &catalog.entries {
        let s = &entry.loaded.scenario;
        let trigger = s.trigger.describe();
        let steps = count_steps(&s.steps);
        rows.push([
            s.name.to_string(),
            trigger,
            s.owner.clone().unwrap_or_else(|| "-".to_owned()),
            steps.to_string(),
        ]);
    }
    super::print_columns(&rows);
    for file in &catalog.problems {
        eprintln!(
            "{}: invalid ({} problem{}); run `scenarist validate {}`",
            file.file.display(),
            file.diagnostics.len(),
            if file.diagnostics.len() == 1 { "" } else { "s" },
            file.file.display()
        );
    }
    Ok(if catalog.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn count_steps(steps: &[scenarist::model::Step]) -> usize {
    steps
        .iter()
        .map(|s| 1 + count_steps_refs(&s.children()))
        .sum()
}

fn count_steps_refs(steps: &[&scenarist::model::Step]) -> usize {
    steps
        .iter()
        .map(|s| 1 + count_steps_refs(&s.children()))
        .sum()
}
