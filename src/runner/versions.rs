//! A stored scenario version compiled again, with the apps it kept, so an
//! execution resumes or replays with the version it started with.

use std::path::Path;

use super::{Runner, RunnerError};
use crate::plan::Plan;
use crate::store::ExecutionSummary;

impl Runner {
    /// The plan of the version an execution ran, compiled from the stored text.
    pub async fn stored_plan(
        &self,
        stored: &ExecutionSummary,
    ) -> Result<(Plan, String), RunnerError> {
        let source = self
            .store
            .version_source(&stored.scenario, &stored.version)
            .await?
            .ok_or_else(|| RunnerError::MissingVersion {
                id: stored.id,
                scenario: stored.scenario.clone(),
                version: stored.version.clone(),
            })?;
        let label = format!(
            "{}@{}",
            stored.scenario,
            &stored.version[..12.min(stored.version.len())]
        );
        let shown = Path::new(&label);
        let failed = |diagnostics: Vec<crate::diagnostic::Diagnostic>| RunnerError::StoredVersion {
            scenario: stored.scenario.clone(),
            diagnostics: diagnostics
                .iter()
                .map(|d| d.render(Some(&source)))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        // The version keeps the apps it used: they are compiled from it, over
        // the built-in ones, so the calls are those the execution started with.
        let (scenario_text, app_texts) = crate::plan::unbundle(&source);
        let mut apps = crate::plan::app::builtin().clone();
        for text in app_texts {
            let mut loaded =
                crate::load::app::load_app_str(shown, text.to_owned()).map_err(&failed)?;
            // The version keeps the app's text, not its file: named after the
            // app, as its file was, so the file-name check accepts it.
            loaded.file = shown.join(format!("{}.yaml", loaded.app.app));
            let app = crate::plan::app::compile_app(&loaded).map_err(&failed)?;
            apps.insert(app.name.clone(), std::sync::Arc::new(app));
        }
        let loaded = crate::load::load_str(shown, scenario_text.to_owned())
            .map_err(|f| failed(f.diagnostics))?;
        let plan = crate::plan::compile_with(&loaded, &apps).map_err(failed)?;
        Ok((plan, source))
    }
}
