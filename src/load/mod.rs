//! Reads a scenario file into the model, reporting problems with positions.
//!
//! Syntax errors come from serde_yaml with its own position; shape errors
//! (unknown keys, wrong types, bad durations) come from serde with a field path
//! that the [`SourceMap`] turns into a line and column. Each step is read on its
//! own, so one bad step does not hide the problems of the next.

pub mod app;
mod errors;
mod nesting;
mod sections;
mod source_map;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value as Yaml;

use crate::diagnostic::{Diagnostic, Position};
use crate::model::{Scenario, Step};
use errors::Errors;
pub use source_map::{join_index, join_key, SourceMap};

/// Scenario files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A scenario read from text, with what is needed to point at its lines later.
#[derive(Debug)]
pub struct LoadedScenario {
    pub file: PathBuf,
    pub source: String,
    pub scenario: Scenario,
    pub source_map: SourceMap,
    /// Field paths the loader could not read (`name`, `steps[2]`), each
    /// replaced by a placeholder so the rest can be checked: empty for a
    /// scenario that loaded. The compiler does not judge what is under them.
    pub unreadable: Vec<String>,
}

impl LoadedScenario {
    /// A diagnostic at the value of `path` in this file.
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.source_map.value(path), path, message)
    }
}

/// Why a file could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    pub diagnostics: Vec<Diagnostic>,
    /// When only some sections or steps were unreadable: the scenario with
    /// those replaced by placeholders (listed in its `unreadable`), so that
    /// the rest can still be checked.
    pub partial: Option<Box<LoadedScenario>>,
}

impl From<Vec<Diagnostic>> for LoadFailure {
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        LoadFailure {
            diagnostics,
            partial: None,
        }
    }
}

/// A file's bytes, or why not: at most one byte past [`MAX_FILE_BYTES`] is
/// read, so a huge file (or `/dev/zero`) is refused without being held in
/// memory. `kind` names the files in the message (`scenario`, `test`).
pub fn read_capped(file: &Path, kind: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() > MAX_FILE_BYTES {
        let size = match std::fs::metadata(file) {
            Ok(m) if m.len() > MAX_FILE_BYTES as u64 => format!("{} bytes", m.len()),
            _ => format!("more than {MAX_FILE_BYTES} bytes"),
        };
        return Err(format!(
            "the file is {size}; {kind} files are limited to {MAX_FILE_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

/// Reads and parses one file. Every problem found is returned.
pub fn load_file(file: &Path) -> Result<LoadedScenario, LoadFailure> {
    let whole = |message: String| LoadFailure::from(vec![Diagnostic::new(file, None, "", message)]);
    let bytes = read_capped(file, "scenario").map_err(whole)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    load_str(file, text)
}

/// Parses scenario text; `file` is only used in messages.
pub fn load_str(file: &Path, source: String) -> Result<LoadedScenario, LoadFailure> {
    if source.len() > MAX_FILE_BYTES {
        return Err(vec![Diagnostic::new(
            file,
            None,
            "",
            format!("the text is larger than {MAX_FILE_BYTES} bytes"),
        )]
        .into());
    }
    if let Some(d) = nesting_diagnostic(file, &source) {
        return Err(vec![d].into());
    }
    let document: Yaml = match serde_yaml::from_str(&source) {
        Ok(doc) => doc,
        Err(e) => return Err(vec![syntax_diagnostic(file, &e)].into()),
    };
    let source_map = SourceMap::build(&source);
    let errors = Errors {
        file,
        map: &source_map,
    };

    let mapping = match &document {
        Yaml::Mapping(m) => m,
        Yaml::Null => {
            return Err(vec![errors.at(
                "",
                "the file is empty: a scenario needs at least `name` and `steps`",
            )]
            .into())
        }
        _ => {
            return Err(vec![errors.at(
                "",
                "a scenario file must be a YAML mapping with `name` and `steps`",
            )]
            .into())
        }
    };

    let mut diagnostics = Vec::new();
    let mut failed_steps = Vec::new();
    let header = errors.read::<Scenario<Yaml>>(document.clone(), "");
    let steps = read_steps(
        &errors,
        mapping.get("steps"),
        "steps",
        &mut diagnostics,
        &mut failed_steps,
    );
    let on_failure = read_steps(
        &errors,
        mapping.get("on_failure"),
        "on_failure",
        &mut diagnostics,
        &mut failed_steps,
    );
    let header = match header {
        Ok(h) => Some(h),
        Err(d) => {
            // What reads on its own still makes a scenario to check.
            let readable = sections::readable_header(&errors, mapping);
            // Step errors are reported one by one above; do not repeat the first of them.
            let mut found = Vec::new();
            if !(d.path.starts_with("steps[") || d.path.starts_with("on_failure[")) {
                found.push(d);
            }
            // Every other section on its own, so that no problem hides another.
            for more in sections::problems(&errors, mapping) {
                if !found
                    .iter()
                    .any(|f| f.path == more.path && f.message == more.message)
                {
                    found.push(more);
                }
            }
            found.append(&mut diagnostics);
            found.sort_by_key(|d| d.position);
            diagnostics = found;
            readable.map(|(h, unreadable)| {
                failed_steps.extend(unreadable);
                h
            })
        }
    };
    let Some(h) = header else {
        return Err(diagnostics.into());
    };
    let loaded = LoadedScenario {
        file: file.to_path_buf(),
        source,
        scenario: Scenario {
            name: h.name,
            description: h.description,
            owner: h.owner,
            tags: h.tags,
            env: h.env,
            vars: h.vars,
            connections: h.connections,
            trigger: h.trigger,
            input: h.input,
            steps,
            on_failure,
            settings: h.settings,
        },
        source_map,
        unreadable: failed_steps,
    };
    if diagnostics.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadFailure {
            diagnostics,
            partial: Some(Box::new(loaded)),
        })
    }
}

/// A YAML document of another kind than a scenario (a test file): its value
/// and the map of its positions, or where its syntax is wrong. Limited like
/// a scenario file.
pub fn parse_document(file: &Path, source: &str) -> Result<(Yaml, SourceMap), Diagnostic> {
    if source.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            file,
            None,
            "",
            format!("the text is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    if let Some(d) = nesting_diagnostic(file, source) {
        return Err(d);
    }
    let document = serde_yaml::from_str(source).map_err(|e| syntax_diagnostic(file, &e))?;
    Ok((document, SourceMap::build(source)))
}

/// Deserializes a part of a document found at field path `base`; a failure
/// is positioned and worded as the scenario loader does (unknown keys with
/// "did you mean").
pub fn read_part<T: DeserializeOwned>(
    file: &Path,
    map: &SourceMap,
    value: Yaml,
    base: &str,
) -> Result<T, Diagnostic> {
    Errors { file, map }.read(value, base)
}

/// The problems of a mapping that did not read as a `T`, found key by key:
/// each key is read alone, beside `required` (placeholders for the keys `T`
/// cannot do without), so that one bad field does not hide the next. Each
/// problem is positioned as [`read_part`] positions it.
pub fn problems_by_key<T: DeserializeOwned>(
    file: &Path,
    map: &SourceMap,
    value: &Yaml,
    base: &str,
    required: &[(&str, Yaml)],
) -> Vec<Diagnostic> {
    let errors = Errors { file, map };
    let Yaml::Mapping(mapping) = value else {
        return errors
            .read::<T>(value.clone(), base)
            .err()
            .into_iter()
            .collect();
    };
    let mut found: Vec<Diagnostic> = Vec::new();
    for (key, field) in mapping {
        let mut alone = serde_yaml::Mapping::new();
        for (name, placeholder) in required {
            if key.as_str() != Some(name) {
                alone.insert(Yaml::String((*name).to_owned()), placeholder.clone());
            }
        }
        alone.insert(key.clone(), field.clone());
        if let Err(d) = errors.read::<T>(Yaml::Mapping(alone), base) {
            if !found
                .iter()
                .any(|f| f.path == d.path && f.message == d.message)
            {
                found.push(d);
            }
        }
    }
    // A required key that is missing is a problem of its own.
    for (name, _) in required {
        if !mapping.contains_key(*name) {
            let others = required
                .iter()
                .filter(|(other, _)| other != name)
                .map(|(other, v)| (Yaml::String((*other).to_owned()), v.clone()))
                .collect();
            if let Err(d) = errors.read::<T>(Yaml::Mapping(others), base) {
                found.push(d);
            }
        }
    }
    found.sort_by_key(|d| d.position);
    found
}

fn read_steps(
    errors: &Errors<'_>,
    list: Option<&Yaml>,
    field: &str,
    diagnostics: &mut Vec<Diagnostic>,
    failed: &mut Vec<String>,
) -> Vec<Step> {
    let Some(Yaml::Sequence(items)) = list else {
        return Vec::new();
    };
    let mut steps = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let path = join_index(field, index);
        match errors.read::<Step>(item.clone(), &path) {
            Ok(step) => steps.push(step),
            Err(d) => {
                diagnostics.push(d);
                steps.push(placeholder_step(index, item));
                failed.push(path);
            }
        }
    }
    steps
}

/// Stands in for an unreadable step so the others keep their index. It
/// keeps the step's id when that reads, so references to the step, and a
/// duplicate of its id, are still judged.
fn placeholder_step(index: usize, item: &Yaml) -> Step {
    let id = item
        .get("id")
        .and_then(Yaml::as_str)
        .and_then(|id| id.parse::<crate::model::StepId>().ok())
        .unwrap_or_else(|| {
            format!("{UNREADABLE_STEP_PREFIX}{index}")
                .parse()
                .expect("valid id")
        });
    let raw = crate::model::RawStep {
        id,
        set: Some(serde_json::Map::from_iter([(
            "unreadable".to_owned(),
            serde_json::Value::Null,
        )])),
        ..crate::model::RawStep::default()
    };
    Step::try_from(raw).expect("one kind")
}

/// The id of a placeholder whose own id did not read: references to steps
/// are not judged while one is there, since it may be the step they name.
pub const UNREADABLE_STEP_PREFIX: &str = "__unreadable_step_";

/// Flow collections nested deeper than the parser should be asked to read.
fn nesting_diagnostic(file: &Path, source: &str) -> Option<Diagnostic> {
    nesting::too_deep(source).map(|at| {
        let message = format!(
            "the YAML nests too deeply (more than {} levels)",
            nesting::MAX_DEPTH
        );
        Diagnostic::new(file, Some(at), "", message)
    })
}

fn syntax_diagnostic(file: &Path, error: &serde_yaml::Error) -> Diagnostic {
    let position = error.location().map(|l| Position {
        line: l.line(),
        col: l.column(),
    });
    let mut message = error.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let message = if message.contains("recursion limit exceeded") {
        "the YAML nests too deeply (more than 128 levels)".to_owned()
    } else if message.contains("repetition limit exceeded") {
        "the YAML expands its aliases too many times (an alias bomb?)".to_owned()
    } else {
        format!("invalid YAML: {message}")
    };
    Diagnostic::new(file, position, "", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        load_str(Path::new("t.yaml"), text.to_owned())
            .map(|_| Vec::new())
            .unwrap_or_else(|f| f.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn a_valid_scenario_loads() {
        let loaded = load_str(
            Path::new("t.yaml"),
            "name: ok\nsteps:\n  - id: a\n    set: { x: 1 }\n".to_owned(),
        )
        .unwrap();
        assert_eq!(loaded.scenario.steps.len(), 1);
    }

    #[test]
    fn unknown_key_points_at_the_key_with_a_suggestion() {
        let errors = errors_of("name: ok\nsteps:\n  - id: a\n    htp: { url: x }\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("t.yaml:4:5: steps[0].htp: unknown key `htp`; did you mean `http`?"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn every_bad_step_is_reported() {
        let errors = errors_of(
            "name: ok\nsteps:\n  - id: a\n    timeout: 5x\n    set: {}\n  - id: B\n    set: {}\n  - id: c\n",
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("t.yaml:4:14: steps[0].timeout: invalid duration `5x`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("steps[1].id: invalid step id `B`"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].contains("steps[2]: step `c` has no kind"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let errors = errors_of("name: ok\nsteps: [\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("t.yaml:3:1: invalid YAML"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        text.push_str("name: x\nsteps: []\n");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("alias"), "{}", errors[0]);
    }
}
