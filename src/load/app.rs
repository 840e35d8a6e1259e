//! App files (`apps/NAME.yaml`) to the app model, with positions, as
//! scenario files are read.

use std::path::{Path, PathBuf};

use super::{parse_document, read_capped, read_part, SourceMap};
use crate::diagnostic::Diagnostic;
use crate::model::App;

/// An app file read, with what is needed to point at its lines.
#[derive(Debug)]
pub struct LoadedApp {
    pub file: PathBuf,
    pub source: String,
    pub app: App,
    pub source_map: SourceMap,
}

impl LoadedApp {
    /// A diagnostic at the value of `path` in this file.
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.source_map.value(path), path, message)
    }
}

/// Reads an app file from disk.
pub fn load_app_file(file: &Path) -> Result<LoadedApp, Vec<Diagnostic>> {
    let whole = |message: String| vec![Diagnostic::new(file, None, "", message)];
    let bytes = read_capped(file, "app").map_err(whole)?;
    let source =
        String::from_utf8(bytes).map_err(|_| whole("the file is not UTF-8 text".to_owned()))?;
    load_app_str(file, source)
}

/// Reads an app from its text; `file` names it in messages.
pub fn load_app_str(file: &Path, source: String) -> Result<LoadedApp, Vec<Diagnostic>> {
    let (document, source_map) = parse_document(file, &source).map_err(|d| vec![d])?;
    let app: App = read_part(file, &source_map, document, "").map_err(|d| vec![d])?;
    Ok(LoadedApp {
        file: file.to_path_buf(),
        source,
        app,
        source_map,
    })
}
